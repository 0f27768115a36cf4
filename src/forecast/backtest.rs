//! Rolling-origin backtests and the error metrics they are judged by.
//!
//! A window cuts the history at an origin, forecasts the next horizon with every
//! candidate and keeps the actuals. Selection, calibration and `--evaluate` all
//! read the same windows, so they agree on what "better" means.

use super::method::{median_path, Candidate, Method, Path};
use std::collections::BTreeMap;

/// Window log error ratios are clipped to this, so one window where seasonal naive
/// happens to be exact (a flat stretch) cannot decide the selection alone.
const LOG_CLIP: f64 = 2.0;

/// The members of the ensemble, when present.
pub const ENSEMBLE: [Method; 4] = [
    Method::Ets,
    Method::MstlEts,
    Method::RecentMean,
    Method::ShiftedNaive,
];

/// One backtest window: what every candidate forecast from one origin, and what happened.
#[derive(Debug, Clone)]
pub struct Window {
    /// Where the history was cut.
    pub origin: usize,
    /// The samples that followed the origin, one horizon of them.
    pub actual: Vec<f64>,
    /// Each candidate's forecast from the origin; a candidate that failed is absent.
    pub paths: BTreeMap<Method, Path>,
    /// The in-sample MASE scale: mean absolute seasonal difference before the origin.
    pub scale: f64,
}

impl Window {
    /// MAE of `method`'s point forecast, if it produced one.
    pub fn mae(&self, method: Method) -> Option<f64> {
        self.paths.get(&method).map(|p| mae(&p.point, &self.actual))
    }

    /// MAE of `method` relative to seasonal naive on this window.
    pub fn rel_error(&self, method: Method) -> Option<f64> {
        let naive = self.mae(Method::SeasonalNaive)?;
        let eps = 1e-9 * self.scale.max(1e-9);
        Some((self.mae(method)? + eps) / (naive + eps))
    }
}

/// Forecasts from one origin with every candidate (and their ensemble); failures are skipped.
pub fn forecast_all(
    history: &[f64],
    candidates: &[Box<dyn Candidate>],
    horizon: usize,
    q: f64,
) -> BTreeMap<Method, Path> {
    let mut paths: BTreeMap<Method, Path> = candidates
        .iter()
        .filter_map(|c| {
            let p = c.forecast(history, horizon, q).ok()?;
            p.is_finite().then_some((c.method(), p))
        })
        .collect();
    if let Some(e) = ensemble(&paths) {
        paths.insert(Method::Ensemble, e);
    }
    paths
}

/// The median of the ensemble members present, if there are at least two.
pub fn ensemble(paths: &BTreeMap<Method, Path>) -> Option<Path> {
    let members: Vec<&Path> = ENSEMBLE.iter().filter_map(|m| paths.get(m)).collect();
    (members.len() >= 2).then(|| median_path(&members))
}

/// Adds more candidates' forecasts to existing windows of `y` (the ensemble is redone).
pub fn extend(y: &[f64], windows: &mut [Window], candidates: &[Box<dyn Candidate>], q: f64) {
    for w in windows {
        let more = forecast_all(&y[..w.origin], candidates, w.actual.len(), q);
        w.paths.remove(&Method::Ensemble);
        w.paths.extend(more);
        if let Some(e) = ensemble(&w.paths) {
            w.paths.insert(Method::Ensemble, e);
        }
    }
}

/// Backtests from `origins` origins, `spacing` steps apart, the last one a horizon
/// before the end; origins leaving under `min_train` samples are dropped.
pub fn rolling(
    y: &[f64],
    candidates: &[Box<dyn Candidate>],
    plan: &Origins,
    q: f64,
) -> Vec<Window> {
    (0..plan.count)
        .filter_map(|k| {
            let origin = y.len().checked_sub(plan.horizon + k * plan.spacing)?;
            (origin >= plan.min_train).then_some(origin)
        })
        .map(|origin| window(y, origin, candidates, plan, q))
        .collect()
}

/// Where a rolling backtest cuts.
#[derive(Debug, Clone, Copy)]
pub struct Origins {
    /// Origins to try, the latest a horizon before the end; one too early is skipped.
    pub count: usize,
    /// Samples between consecutive origins.
    pub spacing: usize,
    /// Samples forecast from each origin.
    pub horizon: usize,
    /// The fewest samples of history an origin must leave before it.
    pub min_train: usize,
    /// Seasonal lag of the MASE scale, in samples (1 when the history is not seasonal).
    pub season: usize,
}

fn window(
    y: &[f64],
    origin: usize,
    candidates: &[Box<dyn Candidate>],
    plan: &Origins,
    q: f64,
) -> Window {
    let history = &y[..origin];
    Window {
        origin,
        actual: y[origin..origin + plan.horizon].to_vec(),
        paths: forecast_all(history, candidates, plan.horizon, q),
        scale: mase_scale(history, plan.season),
    }
}

/// Mean absolute seasonal difference (lag 1 where the history is shorter than a season).
pub fn mase_scale(history: &[f64], season: usize) -> f64 {
    let lag = if history.len() > season { season } else { 1 };
    let n = history.len().saturating_sub(lag);
    if n == 0 {
        return 0.0;
    }
    let total: f64 = history[lag..]
        .iter()
        .zip(history)
        .map(|(a, b)| (a - b).abs())
        .sum();
    total / n as f64
}

/// Mean of `ln(rel_error)` over the windows where `method` ran: lower is better.
pub fn score(windows: &[Window], method: Method) -> Option<f64> {
    let logs: Vec<f64> = windows
        .iter()
        .filter_map(|w| w.rel_error(method))
        .map(|r| r.ln().clamp(-LOG_CLIP, LOG_CLIP))
        .collect();
    (!logs.is_empty()).then(|| logs.iter().sum::<f64>() / logs.len() as f64)
}

/// Mean absolute error of a forecast against the actuals, forecasts clamped at zero.
pub fn mae(forecast: &[f64], actual: &[f64]) -> f64 {
    let total: f64 = forecast
        .iter()
        .zip(actual)
        .map(|(f, a)| (f.max(0.0) - a).abs())
        .sum();
    total / actual.len().max(1) as f64
}

/// Share of actuals at or below the quantile forecast.
pub fn coverage(quantile: &[f64], actual: &[f64]) -> f64 {
    let hits = quantile.iter().zip(actual).filter(|(q, a)| a <= q).count();
    hits as f64 / actual.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::method::{RecentMean, SeasonalNaive};

    #[test]
    fn rolling_windows_cut_at_the_right_origins() {
        let y: Vec<f64> = (0..40).map(|i| (i % 4) as f64).collect();
        let candidates: Vec<Box<dyn Candidate>> =
            vec![Box::new(SeasonalNaive { season: 4 }), Box::new(RecentMean)];
        let plan = Origins {
            count: 3,
            spacing: 5,
            horizon: 2,
            min_train: 30,
            season: 4,
        };
        let windows = rolling(&y, &candidates, &plan, 0.9);
        assert_eq!(windows.len(), 2, "the third origin (28) is under min_train");
        assert_eq!(windows[0].actual, vec![2.0, 3.0]);
        assert_eq!(windows[0].mae(Method::SeasonalNaive), Some(0.0));
        assert_eq!(windows[0].scale, 0.0);
        assert!(score(&windows, Method::RecentMean).unwrap() > 0.0);
    }

    #[test]
    fn metrics() {
        assert_eq!(mae(&[1.0, -3.0], &[2.0, 1.0]), 1.0);
        assert_eq!(coverage(&[1.0, 1.0, 1.0, 1.0], &[0.0, 1.0, 2.0, 3.0]), 0.5);
        assert_eq!(mase_scale(&[1.0, 3.0, 2.0], 1), 1.5);
    }
}
