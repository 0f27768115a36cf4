//! The naive family: seasonal naive, seasonal naive moved to the current level, and the
//! recent mean. Cheap (microseconds), and the yardstick every other method is scored against.

use super::{empirical_quantile, Candidate, Method, Path};

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
