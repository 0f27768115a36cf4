//! Candidate forecasting methods behind one trait, so backtests can treat them alike.
//!
//! Each candidate turns a regular history into a [`Path`]: a point forecast per
//! step and a *base* quantile per step (its own interval where it has one,
//! otherwise the point). Calibration later shifts the base by a conformal offset.

use super::grid::aggregate;
use augurs::ets::model::{
    ErrorComponent, Model, ModelType, SeasonalComponent, TrendComponent, Unfit,
};
use augurs::ets::{AutoETS, FittedAutoETS};
use augurs::mstl::{FittedTrendModel, MSTLModel, TrendModel};
use augurs::{Fit, Forecast, Predict};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;

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

/// Each step repeats the value one season earlier; the base adds the q-quantile of
/// the seasonal differences.
pub struct SeasonalNaive {
    /// The season, in samples.
    pub season: usize,
}

impl Candidate for SeasonalNaive {
    fn method(&self) -> Method {
        Method::SeasonalNaive
    }

    fn forecast(&self, y: &[f64], horizon: usize, q: f64) -> Result<Path, String> {
        let s = self.season.clamp(1, y.len().max(1));
        let point = naive_point(y, s, horizon);
        let mut diffs: Vec<f64> = y[s..].iter().zip(y).map(|(a, b)| a - b).collect();
        let offset = if diffs.is_empty() {
            0.0
        } else {
            empirical_quantile(&mut diffs, q)
        };
        Ok(Path {
            base: point.iter().map(|p| p + offset).collect(),
            point,
            spec: None,
        })
    }
}

/// The value `season` steps before each horizon step (cycling if the horizon is longer).
pub fn naive_point(y: &[f64], season: usize, horizon: usize) -> Vec<f64> {
    let s = season.clamp(1, y.len());
    let base = y.len() - s;
    (0..horizon).map(|i| y[base + i % s]).collect()
}

/// Non-seasonal AutoETS on the most recent `window` samples, averaged over blocks of
/// `factor` samples; `spec` pins the model.
pub struct Ets {
    /// Recent samples fitted (a day's worth).
    pub window: usize,
    /// Samples per block mean (the `fit_step_minutes` fitting step).
    pub factor: usize,
    /// The ETS model to refit, e.g. `ANN` or `AANd`; `None` searches with AutoETS.
    pub spec: Option<String>,
}

impl Candidate for Ets {
    fn method(&self) -> Method {
        Method::Ets
    }

    fn forecast(&self, y: &[f64], horizon: usize, q: f64) -> Result<Path, String> {
        let y = aggregate(&y[y.len().saturating_sub(self.window)..], self.factor);
        let steps = horizon.div_ceil(self.factor);
        let failed = |e: augurs::ets::Error| format!("ETS fit failed ({e})");
        let pinned = self
            .spec
            .as_deref()
            .and_then(|s| pinned_ets(s).ok()?.fit(&y).ok());
        let (mut path, spec) = match pinned {
            Some(m) => (predict(&m, steps, q)?, spec_of(&m)),
            None => {
                let fitted = additive_ets().fit(&y).map_err(failed)?;
                (predict(&fitted, steps, q)?, spec_of(fitted.model()))
            }
        };
        path = path.expand(self.factor, horizon);
        path.spec = Some(spec);
        Ok(path)
    }
}

/// The spec that pins `m` next time: its type plus `d` when damped.
fn spec_of(m: &Model) -> String {
    format!("{}{}", m.model_type(), if m.damped() { "d" } else { "" })
}

/// AutoETS over the additive-error, non-seasonal models: a pinned one then refits
/// on any window, zeros included.
fn additive_ets() -> AutoETS {
    AutoETS::new(1, "AZN").expect("AZN is a valid spec")
}

/// One non-seasonal ETS model from a spec such as `ANN`, `AAN` or `AAN` + `d` (damped).
///
/// Built directly rather than as a one-model AutoETS: augurs 0.10's AutoETS
/// finds no model for a pinned `N` trend, so `ANN` would search again every time.
fn pinned_ets(spec: &str) -> Result<Unfit, String> {
    let bad = || format!("bad ETS spec `{spec}`");
    let (body, damped) = match spec.strip_suffix('d') {
        Some(s) => (s, true),
        None => (spec, false),
    };
    let mut parts = body.chars();
    let error = match parts.next() {
        Some('A') => ErrorComponent::Additive,
        Some('M') => ErrorComponent::Multiplicative,
        _ => return Err(bad()),
    };
    let trend = match parts.next() {
        Some('N') => TrendComponent::None,
        Some('A') => TrendComponent::Additive,
        Some('M') => TrendComponent::Multiplicative,
        _ => return Err(bad()),
    };
    if parts.as_str() != "N" || (damped && trend == TrendComponent::None) {
        return Err(bad());
    }
    let season = SeasonalComponent::None;
    Ok(Unfit::new(ModelType {
        error,
        trend,
        season,
    })
    .damped(damped)
    // Only the one-step forecast enters the likelihood; the default 3 only adds AMSE bookkeeping.
    .nmse(1))
}

/// MSTL's trend model: non-seasonal ETS (pinned, or searched when `pinned` is
/// `None`) fitted on the last `window` values of the deseasonalised series only.
/// A one-hour forecast needs the recent trend, and fitting a week costs 3.5× as much.
#[derive(Debug)]
struct TrendEts {
    pinned: Option<Unfit>,
    window: usize,
}

#[derive(Debug)]
enum TrendFit {
    Pinned(Model),
    Searched(FittedAutoETS),
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl TrendModel for TrendEts {
    fn name(&self) -> Cow<'_, str> {
        Cow::Borrowed("ETS")
    }

    fn fit(&self, y: &[f64]) -> Result<Box<dyn FittedTrendModel + Sync + Send>, BoxError> {
        let y = &y[y.len().saturating_sub(self.window)..];
        Ok(Box::new(match &self.pinned {
            Some(m) => TrendFit::Pinned(m.clone().fit(y)?),
            None => TrendFit::Searched(additive_ets().fit(y)?),
        }))
    }
}

impl FittedTrendModel for TrendFit {
    fn predict_inplace(
        &self,
        horizon: usize,
        level: Option<f64>,
        forecast: &mut Forecast,
    ) -> Result<(), BoxError> {
        match self {
            TrendFit::Pinned(m) => Ok(m.predict_inplace(horizon, level, forecast)?),
            TrendFit::Searched(m) => Ok(m.predict_inplace(horizon, level, forecast)?),
        }
    }

    fn predict_in_sample_inplace(
        &self,
        level: Option<f64>,
        forecast: &mut Forecast,
    ) -> Result<(), BoxError> {
        match self {
            TrendFit::Pinned(m) => Ok(m.predict_in_sample_inplace(level, forecast)?),
            TrendFit::Searched(m) => Ok(m.predict_in_sample_inplace(level, forecast)?),
        }
    }

    fn training_data_size(&self) -> Option<usize> {
        Some(match self {
            TrendFit::Pinned(m) => m.training_data_size(),
            TrendFit::Searched(m) => m.training_data_size(),
        })
    }
}

/// MSTL decomposes the last this many of its longest period.
const MSTL_SEASONS: usize = 3;

/// MSTL's trend model: level only. Over a one-hour horizon the deseasonalised
/// level is what matters; a trended model cost three times the CPU per fit (a
/// third of the cold path) and changed no selected forecast on the public traces.
const MSTL_TREND: &str = "ANN";

/// MSTL with the given periods and a level-only ETS trend (fitted on the last
/// `window` samples), on block means of `factor` samples (periods are multiples
/// of `factor`) over the last three longest periods.
pub struct MstlEts {
    /// Seasonal periods, in samples.
    pub periods: Vec<usize>,
    /// Samples per block mean (the `fit_step_minutes` fitting step).
    pub factor: usize,
    /// Samples of the deseasonalised series the trend is fitted on (a day's worth).
    pub window: usize,
}

impl Candidate for MstlEts {
    fn method(&self) -> Method {
        Method::MstlEts
    }

    fn forecast(&self, y: &[f64], horizon: usize, q: f64) -> Result<Path, String> {
        let periods: Vec<usize> = self.periods.iter().map(|p| p / self.factor).collect();
        // Three of the longest season are enough to estimate it, at under half the STL cost of a week.
        let keep = MSTL_SEASONS * self.periods.iter().max().copied().unwrap_or(0);
        let y = aggregate(&y[y.len().saturating_sub(keep)..], self.factor);
        let window = self.window.div_ceil(self.factor);
        let trend = |pinned| TrendEts { pinned, window };
        // Should the level-only fit fail, the trend model is searched.
        let fitted = pinned_ets(MSTL_TREND)
            .ok()
            .and_then(|t| MSTLModel::new(periods.clone(), trend(Some(t))).fit(&y).ok())
            .map_or_else(|| MSTLModel::new(periods, trend(None)).fit(&y), Ok)
            .map_err(|e| format!("MSTL fit failed ({e})"))?;
        let steps = horizon.div_ceil(self.factor);
        Ok(predict(&fitted, steps, q)?.expand(self.factor, horizon))
    }
}

/// Predicts `horizon` steps; the q-quantile is the matching bound of a two-sided interval.
fn predict(model: &impl Predict, horizon: usize, q: f64) -> Result<Path, String> {
    let level = (2.0 * q - 1.0).abs();
    let forecast = model
        .predict(horizon, (level > 0.0).then_some(level))
        .map_err(|e| format!("prediction failed ({e})"))?;
    let base = match forecast.intervals {
        Some(i) if q > 0.5 => i.upper,
        Some(i) => i.lower,
        None => forecast.point.clone(),
    };
    Ok(Path {
        point: forecast.point,
        base,
        spec: None,
    })
}

/// VPA recommender style: samples weighted by `2^(-age / half_life)`; the point is
/// the weighted median and the base the weighted q-quantile plus 15%.
pub struct Vpa {
    /// Age, in samples, at which a sample's weight halves (24 h).
    pub half_life: usize,
}

impl Candidate for Vpa {
    fn method(&self) -> Method {
        Method::Vpa
    }

    fn forecast(&self, y: &[f64], horizon: usize, q: f64) -> Result<Path, String> {
        let decay = 0.5f64.powf(1.0 / self.half_life.max(1) as f64);
        let mut weight = 1.0 / decay;
        let mut weighted: Vec<(f64, f64)> = y
            .iter()
            .rev()
            .map(|&v| {
                weight *= decay;
                (v, weight)
            })
            .collect();
        let median = weighted_quantile(&mut weighted, 0.5);
        let upper = weighted_quantile(&mut weighted, q) * 1.15;
        Ok(Path {
            point: vec![median; horizon],
            base: vec![upper; horizon],
            spec: None,
        })
    }
}

/// The smallest value whose cumulative weight, in value order, reaches `q` of the total.
///
/// Quickselect on weights rather than a sort (VPA runs at every backtest origin);
/// `pairs` is reordered.
fn weighted_quantile(pairs: &mut [(f64, f64)], q: f64) -> f64 {
    let mut target = q * pairs.iter().map(|p| p.1).sum::<f64>();
    let mut rest = pairs;
    while rest.len() > 16 {
        let mid = rest.len() / 2;
        let (below, pivot, above) = rest.select_nth_unstable_by(mid, |a, b| a.0.total_cmp(&b.0));
        let weight: f64 = below.iter().map(|p| p.1).sum();
        if weight >= target && !below.is_empty() {
            rest = below;
        } else if weight + pivot.1 >= target || above.is_empty() {
            return pivot.0;
        } else {
            target -= weight + pivot.1;
            rest = above;
        }
    }
    rest.sort_unstable_by(|a, b| a.0.total_cmp(&b.0));
    let mut acc = 0.0;
    for &(v, w) in rest.iter() {
        acc += w;
        if acc >= target {
            return v;
        }
    }
    rest.last().map_or(0.0, |p| p.0)
}

/// The mean of the last `horizon` samples, flat over the horizon.
pub struct RecentMean;

impl Candidate for RecentMean {
    fn method(&self) -> Method {
        Method::RecentMean
    }

    fn forecast(&self, y: &[f64], horizon: usize, _q: f64) -> Result<Path, String> {
        let tail = &y[y.len().saturating_sub(horizon.max(1))..];
        let mean = tail.iter().sum::<f64>() / tail.len().max(1) as f64;
        Ok(Path::point_only(vec![mean; horizon]))
    }
}

/// Seasonal naive moved to the current level: each step is the value a season
/// earlier plus the difference between the last horizon's mean and its mean a season earlier.
pub struct ShiftedNaive {
    /// The season, in samples.
    pub season: usize,
}

impl Candidate for ShiftedNaive {
    fn method(&self) -> Method {
        Method::ShiftedNaive
    }

    fn forecast(&self, y: &[f64], horizon: usize, _q: f64) -> Result<Path, String> {
        let (n, s) = (y.len(), self.season);
        let k = horizon.max(1);
        if n < s + k || s == 0 {
            return Err(format!("shifted naive needs {} samples, has {n}", s + k));
        }
        let mean = |w: &[f64]| w.iter().sum::<f64>() / w.len() as f64;
        let shift = mean(&y[n - k..]) - mean(&y[n - s - k..n - s]);
        let point = naive_point(y, s, horizon)
            .iter()
            .map(|v| v + shift)
            .collect();
        Ok(Path::point_only(point))
    }
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
