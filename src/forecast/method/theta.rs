//! The standard Theta method: simple exponential smoothing with drift, on the
//! seasonally adjusted series where the daily season is significant.
//!
//! It won the M3 competition with two lines (the linear trend and SES), and
//! Hyndman and Billah (2003) showed it is SES with a drift of half the trend's
//! slope: forecast `h` is `ℓ_n + b/2 · ((1 − (1 − α)^n) / α + h − 1)`, `ℓ` the
//! SES level, `b` the least-squares slope. Seasonality is tested as R's
//! `forecast::thetaf` does (the autocorrelation at the seasonal lag against its
//! 90% Bartlett bound) and removed by classical multiplicative decomposition,
//! additive where a block is zero (a ratio cannot take it). The base quantile
//! adds the q-quantile of the one-step residuals. Under a millisecond a fit, on
//! block means.

use super::{empirical_quantile, Candidate, Method, Path};
use crate::forecast::grid::aggregate;

/// The one-sided 90% normal quantile of the seasonality test.
const SEASONAL_Z: f64 = 1.645;

/// Theta on block means of `factor` samples over the whole history; `season`
/// samples per season (1: no seasonal adjustment).
pub struct Theta {
    /// The season, in samples.
    pub season: usize,
    /// Samples per block mean (the `fit_step_minutes` fitting step).
    pub factor: usize,
}

impl Candidate for Theta {
    fn method(&self) -> Method {
        Method::Theta
    }

    fn forecast(&self, y: &[f64], horizon: usize, q: f64) -> Result<Path, String> {
        let factor = self.factor.max(1);
        let x = aggregate(y, factor);
        if x.len() < 4 {
            return Err(format!("theta needs 4 blocks, has {}", x.len()));
        }
        let m = if self.season.is_multiple_of(factor) {
            self.season / factor
        } else {
            1
        };
        let steps = horizon.div_ceil(factor);
        let seasons = (m > 1 && x.len() >= 2 * m && is_seasonal(&x, m)).then(|| Seasons::of(&x, m));
        let adjusted: Vec<f64> = match &seasons {
            Some(s) => (0..x.len()).map(|i| s.remove(x[i], i)).collect(),
            None => x.clone(),
        };
        let (alpha, level, mut residuals) = ses(&adjusted);
        let n = adjusted.len() as f64;
        let drift = slope(&adjusted) / 2.0;
        let carried = (1.0 - (1.0 - alpha).powf(n)) / alpha;
        let offset = empirical_quantile(&mut residuals, q);
        let point: Vec<f64> = (0..steps)
            .map(|h| {
                let p = level + drift * (carried + h as f64);
                seasons.as_ref().map_or(p, |s| s.restore(p, x.len() + h))
            })
            .collect();
        let path = Path {
            base: point.iter().map(|p| p + offset).collect(),
            point,
            spec: None,
        };
        Ok(path.expand(factor, horizon))
    }
}

/// Whether the autocorrelation at lag `m` exceeds its 90% bound under the
/// hypothesis of no seasonality, `1.645 · √((1 + 2 Σ_{k<m} r_k²) / n)`.
fn is_seasonal(x: &[f64], m: usize) -> bool {
    let n = x.len();
    let mean = x.iter().sum::<f64>() / n as f64;
    let d: Vec<f64> = x.iter().map(|v| v - mean).collect();
    let variance: f64 = d.iter().map(|v| v * v).sum();
    if variance <= 0.0 {
        return false;
    }
    let r = |k: usize| d[k..].iter().zip(&d).map(|(a, b)| a * b).sum::<f64>() / variance;
    let below: f64 = (1..m).map(|k| r(k).powi(2)).sum();
    r(m).abs() > SEASONAL_Z * ((1.0 + 2.0 * below) / n as f64).sqrt()
}

/// Classical decomposition's seasonal indices, one per position in the season.
struct Seasons {
    index: Vec<f64>,
    multiplicative: bool,
}

impl Seasons {
    /// The indices of `x` with season `m` (at least two seasons long): the mean per
    /// position of `x` over (or less) its centred moving average, normalised.
    fn of(x: &[f64], m: usize) -> Seasons {
        let multiplicative = x.iter().all(|&v| v > 0.0);
        let trend = centred_average(x, m);
        let (mut sums, mut counts) = (vec![0.0; m], vec![0usize; m]);
        for (i, t) in trend.iter().enumerate() {
            let Some(t) = t else { continue };
            sums[i % m] += if multiplicative { x[i] / t } else { x[i] - t };
            counts[i % m] += 1;
        }
        let mut index: Vec<f64> = sums
            .iter()
            .zip(&counts)
            .map(|(s, &c)| s / c.max(1) as f64)
            .collect();
        let mean = index.iter().sum::<f64>() / m as f64;
        for v in &mut index {
            *v = if multiplicative { *v / mean } else { *v - mean };
        }
        Seasons {
            index,
            multiplicative,
        }
    }

    /// `v` at block `i` with its season removed.
    fn remove(&self, v: f64, i: usize) -> f64 {
        let s = self.index[i % self.index.len()];
        if self.multiplicative {
            v / s
        } else {
            v - s
        }
    }

    /// `v` at block `i` with its season put back.
    fn restore(&self, v: f64, i: usize) -> f64 {
        let s = self.index[i % self.index.len()];
        if self.multiplicative {
            v * s
        } else {
            v + s
        }
    }
}

/// The centred moving average of order `m` (2 × `m` when `m` is even) at each
/// position where the window fits.
fn centred_average(x: &[f64], m: usize) -> Vec<Option<f64>> {
    let half = m / 2;
    let weight = |j: usize| {
        if m.is_multiple_of(2) && (j == 0 || j == m) {
            0.5
        } else {
            1.0
        }
    };
    let span = if m.is_multiple_of(2) { m + 1 } else { m };
    (0..x.len())
        .map(|i| {
            let start = i.checked_sub(half)?;
            let window = x.get(start..start + span)?;
            Some(
                window
                    .iter()
                    .enumerate()
                    .map(|(j, v)| weight(j) * v)
                    .sum::<f64>()
                    / m as f64,
            )
        })
        .collect()
}

/// Simple exponential smoothing started at the first value, its smoothing
/// parameter minimising the squared one-step errors (golden-section search):
/// the parameter, the final level and the one-step residuals.
fn ses(x: &[f64]) -> (f64, f64, Vec<f64>) {
    let sse = |alpha: f64| {
        let mut level = x[0];
        let mut total = 0.0;
        for &v in &x[1..] {
            total += (v - level).powi(2);
            level += alpha * (v - level);
        }
        total
    };
    let ratio = (5f64.sqrt() - 1.0) / 2.0;
    let (mut lo, mut hi) = (1e-4, 1.0);
    let (mut a, mut b) = (hi - ratio * (hi - lo), lo + ratio * (hi - lo));
    let (mut fa, mut fb) = (sse(a), sse(b));
    // Each step keeps one of the two inner points: 30 steps narrow α to 1e-6.
    for _ in 0..30 {
        if fa <= fb {
            (hi, b, fb) = (b, a, fa);
            a = hi - ratio * (hi - lo);
            fa = sse(a);
        } else {
            (lo, a, fa) = (a, b, fb);
            b = lo + ratio * (hi - lo);
            fb = sse(b);
        }
    }
    let alpha = (lo + hi) / 2.0;
    let mut level = x[0];
    let residuals = x[1..]
        .iter()
        .map(|&v| {
            let e = v - level;
            level += alpha * e;
            e
        })
        .collect();
    (alpha, level, residuals)
}

/// The least-squares slope of `x` against its index.
fn slope(x: &[f64]) -> f64 {
    let n = x.len() as f64;
    let (mt, my) = ((n - 1.0) / 2.0, x.iter().sum::<f64>() / n);
    let (mut cov, mut var) = (0.0, 0.0);
    for (i, v) in x.iter().enumerate() {
        let t = i as f64 - mt;
        cov += t * (v - my);
        var += t * t;
    }
    if var > 0.0 {
        cov / var
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_continued_by_ses_with_half_its_slope_as_drift() {
        // On an exact line SES tracks the level with alpha near 1, and the drift
        // (half the slope) carried over (1 - (1 - α)^n) / α ≈ 1 step plus h - 1
        // more: the Hyndman and Billah form gives ℓ_n + b/2 · h.
        let y: Vec<f64> = (0..100).map(|i| 10.0 + 2.0 * i as f64).collect();
        let p = Theta {
            season: 1,
            factor: 1,
        }
        .forecast(&y, 3, 0.9)
        .unwrap();
        for (h, v) in p.point.iter().enumerate() {
            let expected = 208.0 + (h as f64 + 1.0);
            assert!(
                (v - expected).abs() < 0.2,
                "step {h}: {v} against {expected}"
            );
        }
    }

    #[test]
    fn a_significant_season_is_removed_and_put_back() {
        // A multiplicative daily pattern on a flat level: the forecast repeats it.
        let pattern = [1.0, 1.0, 2.0, 4.0, 2.0, 1.0, 0.5, 0.5];
        let y: Vec<f64> = (0..80).map(|i| 10.0 * pattern[i % 8]).collect();
        assert!(is_seasonal(&y, 8));
        let p = Theta {
            season: 8,
            factor: 1,
        }
        .forecast(&y, 8, 0.9)
        .unwrap();
        for (h, v) in p.point.iter().enumerate() {
            assert!((v - 10.0 * pattern[h]).abs() < 0.3, "step {h}: {v}");
        }
        let flat = Theta {
            season: 1,
            factor: 1,
        }
        .forecast(&y, 8, 0.9)
        .unwrap();
        assert!(flat.point.iter().all(|v| (v - flat.point[0]).abs() < 0.5));
    }

    #[test]
    fn noise_is_not_seasonal() {
        let x = crate::forecast::series::tests::noise(600, 11);
        assert!(!is_seasonal(&x, 96));
    }
}
