//! Candidate forecasting methods behind one trait, so backtests can treat them alike.
//!
//! Each candidate turns a regular history into a [`Path`]: a point forecast per
//! step and a *base* quantile per step (its own interval where it has one,
//! otherwise the point). Calibration later shifts the base by a conformal offset.

mod ets;
mod naive;
mod vpa;

pub use ets::{Ets, MstlEts};
pub use naive::{naive_point, RecentMean, SeasonalNaive, ShiftedNaive};
pub use vpa::Vpa;

use serde::{Deserialize, Serialize};

/// How a [`super::Demand`] was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Each step repeats the value one season earlier: the yardstick the others are scored by.
    SeasonalNaive,
    /// augurs MSTL (daily, and weekly with two weeks of history) with a level-only ETS trend.
    MstlEts,
    /// augurs AutoETS over the additive-error, non-seasonal models, on the last day.
    Ets,
    /// Kubernetes VPA style: exponentially decaying histogram, quantile plus 15%.
    Vpa,
    /// The mean of the last horizon of samples.
    RecentMean,
    /// Seasonal naive shifted by how far the last horizon moved from a season earlier.
    ShiftedNaive,
    /// The per-step median of the other candidates' point forecasts.
    Ensemble,
    /// Fallback: the recent peak (history too short, or a failed refit).
    RecentPeak,
    /// Fallback for a constant or all-zero series: its value.
    Constant,
}

impl Method {
    /// Every method, candidates and fallbacks, in declaration order.
    pub const ALL: [Method; 9] = [
        Method::SeasonalNaive,
        Method::MstlEts,
        Method::Ets,
        Method::Vpa,
        Method::RecentMean,
        Method::ShiftedNaive,
        Method::Ensemble,
        Method::RecentPeak,
        Method::Constant,
    ];

    /// The name used in plans, state and reports.
    pub fn name(self) -> &'static str {
        match self {
            Method::SeasonalNaive => "seasonal_naive",
            Method::MstlEts => "mstl_ets",
            Method::Ets => "ets",
            Method::Vpa => "vpa",
            Method::RecentMean => "recent_mean",
            Method::ShiftedNaive => "shifted_naive",
            Method::Ensemble => "ensemble",
            Method::RecentPeak => "recent_peak",
            Method::Constant => "constant",
        }
    }
}

/// A forecast over the horizon.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// The point forecast per step, in the series' units.
    pub point: Vec<f64>,
    /// The uncalibrated quantile per step.
    pub base: Vec<f64>,
    /// The ETS model AutoETS chose (e.g. `AANd`), to refit it alone next time.
    pub spec: Option<String>,
}

impl Path {
    /// A path whose quantile is its point forecast.
    pub fn point_only(point: Vec<f64>) -> Path {
        Path {
            base: point.clone(),
            point,
            spec: None,
        }
    }

    /// Repeats each step `factor` times and keeps the first `horizon` steps.
    fn expand(self, factor: usize, horizon: usize) -> Path {
        let stretch = |v: Vec<f64>| -> Vec<f64> {
            v.into_iter()
                .flat_map(|x| std::iter::repeat_n(x, factor.max(1)))
                .take(horizon)
                .collect()
        };
        Path {
            point: stretch(self.point),
            base: stretch(self.base),
            spec: self.spec,
        }
    }

    /// Whether every value is finite.
    pub fn is_finite(&self) -> bool {
        self.point.iter().chain(&self.base).all(|v| v.is_finite())
    }
}

/// A forecasting method configured for one series.
pub trait Candidate: Sync {
    /// Which method this is, as backtests, plans and the selection state name it.
    fn method(&self) -> Method;
    /// Forecasts `horizon` steps after `y` at quantile `q`.
    fn forecast(&self, y: &[f64], horizon: usize, q: f64) -> Result<Path, String>;
}

/// The per-step median of several point forecasts (all of the same length).
pub fn median_path(paths: &[&Path]) -> Path {
    let horizon = paths.first().map_or(0, |p| p.point.len());
    let point = (0..horizon)
        .map(|i| {
            let mut xs: Vec<f64> = paths.iter().map(|p| p.point[i]).collect();
            empirical_quantile(&mut xs, 0.5)
        })
        .collect();
    Path::point_only(point)
}

/// Linear-interpolated quantile (R type 7) of a non-empty slice (reordered in place).
///
/// A selection, not a sort: seasonal naive takes this of every seasonal
/// difference at every backtest origin.
pub fn empirical_quantile(xs: &mut [f64], q: f64) -> f64 {
    let pos = q.clamp(0.0, 1.0) * (xs.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let (_, &mut low, above) = xs.select_nth_unstable_by(lo, f64::total_cmp);
    if pos == lo as f64 {
        return low;
    }
    let high = above.iter().copied().fold(f64::INFINITY, f64::min);
    low + (high - low) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::ets::{pinned_ets, spec_of};
    use super::vpa::weighted_quantile;
    use super::*;

    #[test]
    fn seasonal_naive_repeats_the_last_season() {
        let y = [1.0, 2.0, 3.0, 1.0, 2.0, 3.0];
        let p = SeasonalNaive { season: 3 }.forecast(&y, 4, 0.9).unwrap();
        assert_eq!(p.point, vec![1.0, 2.0, 3.0, 1.0]);
        assert_eq!(p.base, p.point);
    }

    #[test]
    fn shifted_naive_moves_last_season_to_the_current_level() {
        let y = [1.0, 2.0, 1.0, 2.0, 11.0, 12.0];
        let p = ShiftedNaive { season: 2 }.forecast(&y, 2, 0.9).unwrap();
        assert_eq!(p.point, vec![21.0, 22.0]);
        assert!(ShiftedNaive { season: 6 }.forecast(&y, 2, 0.9).is_err());
    }

    #[test]
    fn vpa_adds_fifteen_percent_to_the_decayed_quantile() {
        let y = [10.0; 50];
        let p = Vpa { half_life: 10 }.forecast(&y, 2, 0.9).unwrap();
        assert_eq!(p.point, vec![10.0, 10.0]);
        assert!((p.base[0] - 11.5).abs() < 1e-9, "{p:?}");
    }

    #[test]
    fn ets_reports_and_accepts_its_spec() {
        let y: Vec<f64> = (0..200).map(|i| 10.0 + (i % 7) as f64 * 0.3).collect();
        let auto = Ets {
            window: 100,
            factor: 1,
            spec: None,
        };
        let path = auto.forecast(&y, 3, 0.9).unwrap();
        let spec = path.spec.clone().unwrap();
        let pinned = Ets {
            window: 100,
            factor: 1,
            spec: Some(spec),
        };
        assert_eq!(pinned.forecast(&y, 3, 0.9).unwrap(), path);
        assert!(pinned_ets("XYZ").is_err());
    }

    #[test]
    fn every_additive_spec_pins_exactly_that_model() {
        let y: Vec<f64> = (0..200)
            .map(|i| 10.0 + ((i * 7919) % 13) as f64 * 0.3)
            .collect();
        for spec in ["ANN", "AAN", "AANd"] {
            let m = pinned_ets(spec).unwrap().fit(&y).unwrap();
            assert_eq!(spec_of(&m), spec);
        }
        assert!(pinned_ets("ANNd").is_err());
        assert!(pinned_ets("AAA").is_err());
    }

    #[test]
    fn weighted_quantile_matches_a_sorted_scan() {
        let mut s = 7u64;
        let mut next = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1);
            (s >> 40) as f64
        };
        for n in [1, 5, 17, 300, 2016] {
            // Few distinct values, so there are many ties.
            let pairs: Vec<(f64, f64)> = (0..n).map(|_| (next() % 23.0, next() % 5.0)).collect();
            let mut sorted = pairs.clone();
            sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
            let total: f64 = sorted.iter().map(|p| p.1).sum();
            for q in [0.0, 0.1, 0.5, 0.9, 1.0] {
                let mut acc = 0.0;
                let scan = sorted
                    .iter()
                    .find(|p| {
                        acc += p.1;
                        acc >= q * total
                    })
                    .map_or(sorted[n - 1].0, |p| p.0);
                let mut work = pairs.clone();
                assert_eq!(weighted_quantile(&mut work, q), scan, "n {n}, q {q}");
            }
        }
    }

    #[test]
    fn empirical_quantile_interpolates_like_r_type_7() {
        let mut xs = [5.0, 1.0, 4.0, 2.0, 3.0];
        assert_eq!(empirical_quantile(&mut xs, 0.5), 3.0);
        assert!((empirical_quantile(&mut xs, 0.9) - 4.6).abs() < 1e-12);
        assert_eq!(empirical_quantile(&mut xs, 1.0), 5.0);
        assert_eq!(empirical_quantile(&mut [2.0], 0.3), 2.0);
    }

    #[test]
    fn median_of_paths_is_per_step() {
        let a = Path::point_only(vec![1.0, 5.0]);
        let b = Path::point_only(vec![2.0, 4.0]);
        let c = Path::point_only(vec![3.0, 0.0]);
        assert_eq!(median_path(&[&a, &b, &c]).point, vec![2.0, 4.0]);
    }
}
