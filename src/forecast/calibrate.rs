//! Conformal correction: make the requested quantile cover that share of actuals.
//!
//! augurs' intervals assume Gaussian, independent errors; CPU traces are neither.
//! The backtest windows give the scores `actual - base quantile`; shifting the
//! base by their conformal q-quantile restores coverage whatever the model.

use super::backtest::Window;
use super::method::Method;

/// The offset to add to `method`'s base quantile, or 0 without backtest scores.
pub fn offset(windows: &[Window], method: Method, q: f64) -> f64 {
    let mut scores: Vec<f64> = windows
        .iter()
        .filter_map(|w| {
            let p = w.paths.get(&method)?;
            Some(p.base.iter().zip(&w.actual).map(|(b, a)| a - b.max(0.0)))
        })
        .flatten()
        .collect();
    conformal_quantile(&mut scores, q)
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
    fn conformal_rank_is_conservative() {
        let mut s: Vec<f64> = (1..=9).map(f64::from).collect();
        assert_eq!(conformal_quantile(&mut s, 0.9), 9.0);
        let mut s: Vec<f64> = (1..=19).map(f64::from).collect();
        assert_eq!(conformal_quantile(&mut s, 0.9), 18.0);
        assert_eq!(conformal_quantile(&mut [], 0.9), 0.0);
    }
}
