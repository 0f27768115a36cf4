//! One series of samples, held compactly: runs of evenly spaced timestamps and 4-byte values.

use std::collections::BTreeMap;

/// One instance's samples of one resource, sorted by time, one value per timestamp.
///
/// Held compactly, since a region's telemetry is hundreds of millions of samples:
/// times as runs of equal spacing and values as `f32`, so a regularly sampled
/// series costs 4 bytes a sample instead of 16. Values keep seven significant
/// digits, more than collectors measure: read back, a value written with seven
/// or fewer is exactly the number in the file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub(super) runs: Vec<Run>,
    values: Vec<f32>,
    /// The CSV line where this series first appeared, for error messages.
    pub first_line: u64,
}

/// `len` samples at `start`, `start + step`, `start + 2 step`, …
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Run {
    start: i64,
    step: i64,
    len: u32,
}

impl Run {
    fn time(&self, k: usize) -> i64 {
        self.start + self.step * k as i64
    }

    fn last(&self) -> i64 {
        self.time(self.len as usize - 1)
    }
}

impl Series {
    /// A series of `points` in any order; a repeated time keeps its last value.
    pub fn from_points(points: impl IntoIterator<Item = (i64, f64)>, first_line: u64) -> Series {
        let mut s = Series {
            first_line,
            ..Series::default()
        };
        for (t, v) in points {
            s.push(t, v);
        }
        s.normalise();
        s
    }

    /// Appends a sample, in any order (see [`Series::normalise`]).
    pub(super) fn push(&mut self, t: i64, v: f64) {
        match self.runs.last_mut() {
            Some(run) if run.len == 1 => (run.step, run.len) = (t - run.start, 2),
            Some(run) if run.len < u32::MAX && run.time(run.len as usize) == t => run.len += 1,
            _ => self.runs.push(Run {
                start: t,
                step: 0,
                len: 1,
            }),
        }
        self.values.push(v as f32);
    }

    /// Appends the samples of `other`, read after these.
    pub(super) fn append(&mut self, other: Series) {
        for r in other.runs {
            match self.runs.last_mut() {
                Some(last)
                    if last.len > 1
                        && r.len > 1
                        && last.step == r.step
                        && last.time(last.len as usize) == r.start
                        && last.len.checked_add(r.len).is_some() =>
                {
                    last.len += r.len;
                }
                _ => self.runs.push(r),
            }
        }
        self.values.extend(other.values);
    }

    /// Sorts by time and keeps the last value of a repeated time; returns how many were dropped.
    pub(super) fn normalise(&mut self) -> u64 {
        let sorted = self.runs.iter().all(|r| r.len == 1 || r.step > 0)
            && self.runs.windows(2).all(|w| w[1].start > w[0].last());
        if sorted {
            return 0;
        }
        let mut points: Vec<(i64, f64)> = self.points().collect();
        points.sort_by_key(|&(t, _)| t);
        let before = points.len();
        // After a stable sort, equal times keep their order: keep the last one.
        points.reverse();
        points.dedup_by_key(|p| p.0);
        points.reverse();
        (self.runs, self.values) = (Vec::new(), Vec::new());
        for (t, v) in &points {
            self.push(*t, *v);
        }
        (before - points.len()) as u64
    }

    /// How many samples it holds.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether it holds no samples.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The time of its last sample.
    pub fn last_time(&self) -> Option<i64> {
        self.runs.last().map(Run::last)
    }

    /// The time of its first sample.
    pub fn first_time(&self) -> Option<i64> {
        self.runs.first().map(|r| r.start)
    }

    /// All `(unix seconds, value)` samples in time order.
    pub fn points(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        let times = self
            .runs
            .iter()
            .flat_map(|r| (0..r.len as usize).map(move |k| r.time(k)));
        times.zip(self.values())
    }

    /// All values in time order.
    pub fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.values.iter().map(|&v| widen(v))
    }

    /// The samples with times in `[from, to)`, in time order.
    pub fn window(&self, from: i64, to: i64) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        let mut offset = 0;
        for r in &self.runs {
            let n = r.len as usize;
            if r.start >= to {
                break;
            }
            if r.last() >= from {
                // Runs of more than one sample have a positive step once normalised.
                let index = |t: i64| ((t - r.start + r.step - 1) / r.step) as usize;
                let lo = if r.start >= from { 0 } else { index(from) };
                let hi = if r.last() < to { n } else { index(to) };
                out.extend((lo..hi).map(|k| (r.time(k), widen(self.values[offset + k]))));
            }
            offset += n;
        }
        out
    }

    /// The most common spacing between consecutive samples, in seconds (the smaller on a tie).
    pub fn step_seconds(&self) -> Option<i64> {
        let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
        for r in self.runs.iter().filter(|r| r.len > 1) {
            *counts.entry(r.step).or_default() += r.len as usize - 1;
        }
        for w in self.runs.windows(2) {
            *counts.entry(w[1].start - w[0].last()).or_default() += 1;
        }
        most_common(counts)
    }
}

/// A stored value as read: the `f32` rounded to seven significant digits. That is
/// the number in the file whenever it had seven or fewer (below about 8.6e9, where
/// `f32` is finer than that decimal grid), so data such as `27.884` stays exact.
fn widen(v: f32) -> f64 {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let x = f64::from(v);
    if x == 0.0 {
        return x;
    }
    let digits = 6 - x.abs().log10().floor() as i32;
    match usize::try_from(digits.unsigned_abs())
        .ok()
        .and_then(|k| POW10.get(k))
    {
        Some(&s) if digits >= 0 => (x * s).round() / s,
        Some(&s) => (x / s).round() * s,
        None => x,
    }
}

/// The most common spacing between consecutive `(time, value)` points (the
/// smaller one on a tie), if there are two points.
pub fn most_common_step(points: &[(i64, f64)]) -> Option<i64> {
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for w in points.windows(2) {
        *counts.entry(w[1].0 - w[0].0).or_default() += 1;
    }
    most_common(counts)
}

fn most_common(counts: BTreeMap<i64, usize>) -> Option<i64> {
    counts
        .into_iter()
        .max_by_key(|&(step, n)| (n, std::cmp::Reverse(step)))
        .map(|(step, _)| step)
}
