//! Conformal correction: make the requested quantile cover that share of actuals.
//!
//! augurs' intervals assume Gaussian, independent errors; CPU traces are neither,
//! and a spike in the history can inflate an interval (or VPA's histogram) for
//! days. The backtest windows give residuals `actual - point`; the point plus
//! their conformal q-quantile covers that share of actuals whatever the model.
//! Without backtest windows, the method's own quantile stands.

use super::backtest::Window;
use super::method::{Method, Path};

/// The offset to add to `method`'s point forecast, if the backtest had windows.
pub fn offset(windows: &[Window], method: Method, q: f64) -> Option<f64> {
    let mut scores: Vec<f64> = windows
        .iter()
        .filter_map(|w| {
            let p = w.paths.get(&method)?;
            Some(p.point.iter().zip(&w.actual).map(|(f, a)| a - f.max(0.0)))
        })
        .flatten()
        .collect();
    (!scores.is_empty()).then(|| conformal_quantile(&mut scores, q))
}

/// The calibrated quantile per step, clamped at zero.
pub fn quantile_path(path: &Path, offset: Option<f64>) -> Vec<f64> {
    let clamp = |v: f64| if v.is_finite() { v.max(0.0) } else { 0.0 };
    match offset {
        Some(o) => path.point.iter().map(|p| clamp(p.max(0.0) + o)).collect(),
        None => path.base.iter().map(|&b| clamp(b)).collect(),
    }
}

/// The `ceil((n + 1) q)`-th smallest score (the split-conformal rank), 0 for none.
pub fn conformal_quantile(scores: &mut [f64], q: f64) -> f64 {
    let n = scores.len();
    if n == 0 {
        return 0.0;
    }
    scores.sort_by(f64::total_cmp);
    let rank = ((n + 1) as f64 * q).ceil() as usize;
    scores[rank.clamp(1, n) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_applies_to_the_point_and_the_base_stands_without_windows() {
        let path = Path {
            point: vec![1.0, -2.0],
            base: vec![3.0, 4.0],
            spec: None,
        };
        assert_eq!(quantile_path(&path, Some(0.5)), vec![1.5, 0.5]);
        assert_eq!(quantile_path(&path, None), vec![3.0, 4.0]);
        assert_eq!(offset(&[], Method::Ets, 0.9), None);
    }

    #[test]
    fn conformal_rank_is_conservative() {
        let mut s: Vec<f64> = (1..=9).map(f64::from).collect();
        assert_eq!(conformal_quantile(&mut s, 0.9), 9.0);
        let mut s: Vec<f64> = (1..=19).map(f64::from).collect();
        assert_eq!(conformal_quantile(&mut s, 0.9), 18.0);
        assert_eq!(conformal_quantile(&mut [], 0.9), 0.0);
    }
}
