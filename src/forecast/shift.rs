//! Level shifts: a series that moved to a new level is modelled from the move on.
//!
//! A history that spans a shift poisons every candidate: seasonal naive and
//! MSTL repeat the old level for a day, VPA's histogram keeps it for days, ETS
//! smooths across it. augurs' Bayesian online changepoint detector proposes
//! where the recent history changed regime; a proposal counts as a level shift
//! only if the median moved by several noise widths and the samples since stay
//! on the new side (not a spike, not the daily cycle). The forecast then uses
//! the history since the shift alone, and its note says so.

use augurs::changepoint::{Detector, NormalGammaDetector};

/// Only the last this many seconds are searched: older shifts are inside every
/// backtest window's history, so selection already avoids the methods they poison.
const RECENT_SECONDS: i64 = 6 * 3600;
/// A shift moves the median by more than this many robust standard deviations
/// of the noise (first differences) before it.
const MIN_SIGMAS: f64 = 6.0;
/// Samples after the change needed to call it lasting.
const MIN_AFTER: usize = 3;
/// Share of the samples since the change that must lie past the midpoint between the levels.
const MIN_ON_NEW_SIDE: f64 = 0.8;

/// The index where the latest level shift in the last six hours of `y` starts, if any.
pub fn last_shift(y: &[f64], step_seconds: i64) -> Option<usize> {
    let recent = (RECENT_SECONDS / step_seconds.max(1)).max(1) as usize;
    let start = y.len().saturating_sub(recent);
    let tail = &y[start..];
    if tail.len() < 4 * MIN_AFTER {
        return None;
    }
    // Only splits that pass the level-shift test can be accepted, so where none
    // does the changepoint detector (most of this function's cost) cannot change the answer.
    let splits = MIN_AFTER..=tail.len() - MIN_AFTER;
    if !has_jump(tail)
        || !splits
            .clone()
            .any(|c| is_level_shift(&tail[..c], &tail[c..]))
    {
        return None;
    }
    let centre = median(tail);
    let scale = mad(tail, centre).max(1e-9 * (centre.abs() + 1e-9));
    let z: Vec<f64> = tail.iter().map(|v| (v - centre) / scale).collect();
    let proposals = NormalGammaDetector::default().detect_changepoints(&z);
    // augurs reports the last sample of the old run; the new level starts one later.
    proposals
        .into_iter()
        .map(|c| c + 1)
        .rev()
        .filter(|c| splits.contains(c))
        .find(|&c| is_level_shift(&tail[..c], &tail[c..]))
        .map(|c| start + c + settling(&tail[..c], &tail[c..]))
}

/// A cheap necessary condition for [`is_level_shift`] at some split (with half
/// its margin), so the changepoint detector only runs where a jump is possible.
fn has_jump(tail: &[f64]) -> bool {
    let diffs: Vec<f64> = tail.windows(2).map(|w| w[1] - w[0]).collect();
    let noise = mad(&diffs, median(&diffs)) / std::f64::consts::SQRT_2;
    let floor = 1e-9 * (median(tail).abs() + 1e-9);
    (2 * MIN_AFTER..=tail.len() - MIN_AFTER).any(|c| {
        let (old, new) = levels(&tail[..c], &tail[c..]);
        (new - old).abs() > 0.5 * MIN_SIGMAS * noise.max(floor)
    })
}

/// Leading samples of `after` still on the old side of the midpoint (the ramp into the shift).
fn settling(before: &[f64], after: &[f64]) -> usize {
    let (old, new) = levels(before, after);
    let mid = (old + new) / 2.0;
    after
        .iter()
        .take_while(|&&v| (v - mid) * (new - old) <= 0.0)
        .count()
}

/// The level just before the change and just after it.
fn levels(before: &[f64], after: &[f64]) -> (f64, f64) {
    let old = median(&before[before.len().saturating_sub(2 * MIN_AFTER)..]);
    (old, median(&after[..MIN_AFTER.min(after.len())]))
}

/// Whether `after` sits at a new level compared with `before`: the samples just
/// after the change differ from those just before by a jump (a ramp such as the
/// daily cycle moves only a little from one sample to the next), and the samples
/// since stay past the midpoint.
fn is_level_shift(before: &[f64], after: &[f64]) -> bool {
    let (old, new) = levels(before, after);
    let diffs: Vec<f64> = before.windows(2).map(|w| w[1] - w[0]).collect();
    // The noise of one sample: MAD of the differences over √2, robust to the daily cycle.
    let noise = mad(&diffs, median(&diffs)) / std::f64::consts::SQRT_2;
    let mid = (old + new) / 2.0;
    let past = after
        .iter()
        .filter(|&&v| (v - mid) * (new - old) > 0.0)
        .count();
    (new - old).abs() > MIN_SIGMAS * noise.max(1e-9 * (old.abs() + 1e-9))
        && past as f64 >= MIN_ON_NEW_SIDE * after.len() as f64
}

fn median(xs: &[f64]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    super::method::empirical_quantile(&mut v, 0.5)
}

/// Median absolute deviation from `centre`, scaled to a normal standard deviation.
fn mad(xs: &[f64], centre: f64) -> f64 {
    let dev: Vec<f64> = xs.iter().map(|v| (v - centre).abs()).collect();
    1.4826 * median(&dev)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::series::tests::noise;

    fn level(n: usize, value: f64, amp: f64, seed: u64) -> Vec<f64> {
        noise(n, seed).iter().map(|e| value + amp * e).collect()
    }

    #[test]
    fn a_lasting_shift_is_found_where_it_starts() {
        for after in [3, 6, 12, 24] {
            let mut y = level(300, 10.0, 0.5, 1);
            y.extend(level(after, 40.0, 0.5, 2));
            assert_eq!(last_shift(&y, 300), Some(300), "{after} samples after");
        }
        let mut down = level(300, 1.0, 0.005, 3);
        down.push(0.76);
        down.extend(level(10, 0.02, 0.001, 4));
        assert_eq!(
            last_shift(&down, 300),
            Some(301),
            "the ramp sample is left out"
        );
    }

    #[test]
    fn spikes_noise_and_the_daily_cycle_are_not_shifts() {
        let mut spiky = level(300, 10.0, 0.5, 5);
        spiky[280] = 500.0;
        spiky[296] = 500.0;
        spiky[297] = 480.0;
        assert_eq!(last_shift(&spiky, 300), None);
        assert_eq!(last_shift(&level(300, 10.0, 3.0, 6), 300), None);
        let daily: Vec<f64> = noise(900, 7)
            .iter()
            .enumerate()
            .map(|(i, e)| 50.0 + 20.0 * (std::f64::consts::TAU * i as f64 / 288.0).cos() + e)
            .collect();
        assert_eq!(last_shift(&daily, 300), None);
        assert_eq!(last_shift(&[1.0; 10], 300), None);
    }
}
