//! A histogram of durations on log-spaced bins, for times that span seconds to weeks
//! (gaps between a user's jobs, run times): fine where durations are short and dense,
//! coarse where they are long and rare, in a fixed number of counters that persist as
//! a short JSON array and merge by adding.

use serde::{Deserialize, Serialize};

/// Bins per factor of ten.
const PER_DECADE: f64 = 8.0;
/// The first bin holds `[0, 1 s)`; bin `k >= 1` holds `[10^((k-1)/8), 10^(k/8))` seconds.
/// 57 bins reach 10^7 s (116 days); longer durations go in the last.
const BINS: usize = 57;

/// Counts of durations (seconds) in log-spaced bins; none are kept until the first
/// duration (most users of a large log never fill most of theirs).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogHistogram {
    counts: Vec<u64>,
}

/// The lower edge of bin `k`, in seconds.
fn lower(k: usize) -> f64 {
    static EDGES: std::sync::LazyLock<[f64; BINS + 1]> = std::sync::LazyLock::new(|| {
        let mut e = [0.0; BINS + 1];
        for (k, x) in e.iter_mut().enumerate().skip(1) {
            *x = 10f64.powf((k as f64 - 1.0) / PER_DECADE);
        }
        e
    });
    EDGES[k]
}

fn bin(seconds: f64) -> usize {
    if seconds < 1.0 {
        0
    } else {
        ((seconds.log10() * PER_DECADE).floor() as usize + 1).min(BINS - 1)
    }
}

impl LogHistogram {
    /// Counts one duration; negative and non-finite ones count as 0 s and as the longest.
    pub fn add(&mut self, seconds: f64) {
        let s = if seconds.is_nan() { 0.0 } else { seconds };
        self.counts.resize(BINS, 0);
        self.counts[bin(s.max(0.0))] += 1;
    }

    /// How many durations were counted.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// The share of durations at most `seconds`, interpolated linearly inside a bin
    /// (0 with no counts).
    pub fn cdf(&self, seconds: f64) -> f64 {
        let total = self.total();
        if total == 0 || seconds < 0.0 {
            return 0.0;
        }
        1.0 - self.above(seconds) / total as f64
    }

    /// How many durations were counted above `seconds` (interpolated inside a bin).
    pub fn above(&self, seconds: f64) -> f64 {
        if self.counts.is_empty() {
            return 0.0;
        }
        let k = bin(seconds.max(0.0));
        let beyond: u64 = self.counts[k + 1..].iter().sum();
        let (lo, hi) = (lower(k), lower(k + 1));
        let within = if k == BINS - 1 {
            0.0
        } else {
            ((seconds - lo) / (hi - lo)).clamp(0.0, 1.0)
        };
        beyond as f64 + (1.0 - within) * self.counts[k] as f64
    }

    /// The `q` quantile: the bin of the nearest rank, at the rank's place among the
    /// bin's counts (each at the middle of its share); `None` with no counts.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total == 0 {
            return None;
        }
        let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
        let mut seen = 0.0;
        for (k, &c) in self.counts.iter().enumerate() {
            if c > 0 && seen + c as f64 >= rank {
                let (lo, hi) = (lower(k), lower(k + 1));
                return Some(lo + (hi - lo) * ((rank - seen - 0.5) / c as f64));
            }
            seen += c as f64;
        }
        Some(lower(BINS - 1))
    }

    /// Whether the file's counters have the expected shape.
    pub fn is_valid(&self) -> bool {
        self.counts.is_empty() || self.counts.len() == BINS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_are_log_spaced_and_the_cdf_is_monotone() {
        assert_eq!(bin(0.5), 0);
        assert_eq!(bin(1.0), 1);
        assert_eq!(bin(10.0), 9);
        assert_eq!(bin(1e12), BINS - 1);
        let mut h = LogHistogram::default();
        for s in [5.0, 30.0, 30.0, 600.0, 7200.0] {
            h.add(s);
        }
        assert_eq!(h.total(), 5);
        let mut last = 0.0;
        for s in [0.0, 4.0, 5.0, 29.0, 31.0, 100.0, 599.0, 601.0, 1e4, 1e9] {
            let c = h.cdf(s);
            assert!(c >= last, "cdf({s}) = {c} < {last}");
            last = c;
        }
        assert_eq!(h.cdf(4.0), 0.0);
        assert!((h.cdf(40.0) - 0.6).abs() < 1e-12);
        assert_eq!(h.cdf(1e4), 1.0);
    }

    #[test]
    fn quantiles_fall_in_the_bin_of_their_rank() {
        let mut h = LogHistogram::default();
        for s in [10.0, 100.0, 1000.0, 10000.0] {
            h.add(s);
        }
        let q = |p| h.quantile(p).unwrap();
        assert!(q(0.25) >= 10.0 && q(0.25) < 10f64.powf(1.125));
        assert!(q(0.5) >= 100.0 && q(0.5) < 10f64.powf(2.125));
        assert!(q(1.0) >= 10000.0 && q(1.0) < 10f64.powf(4.125));
        assert_eq!(LogHistogram::default().quantile(0.5), None);
    }
}
