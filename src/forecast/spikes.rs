//! One-off spikes: removed from old history so that seasonal methods do not repeat them.
//!
//! A single spike a day ago is what seasonal naive, shifted naive and MSTL's
//! seasonal component forecast for the same hour today (and MSTL for days). An
//! isolated sample (or pair) far outside its neighbours is replaced by their
//! median in the model input, unless a comparable excursion occurs at the same
//! time of day on another day: a spike that recurs daily (a cron job) is the
//! daily profile, and seasonal methods should repeat it. The recent history
//! that the backtest scores is left as it was: calibration must see real
//! spikes, and the newest samples may be the start of a level shift rather
//! than a spike.

/// A sample is a spike when it is this many noise widths from its neighbourhood's median.
const SPIKE_SIGMAS: f64 = 8.0;
/// Neighbours on each side: runs of up to this many samples count as one-off.
const HALF_WINDOW: usize = 2;
/// A spike recurs when, within this many samples of the same time of day on
/// another day, a sample departs from its own neighbourhood in the same direction
/// by at least [`RECUR_SHARE`] of the spike's departure: a daily job drifts by a
/// sample or two and its size varies.
const RECUR_SLACK: usize = 2;
/// See [`RECUR_SLACK`]: half the size, still at least four noise widths, which
/// noise alone reaches about once in 30,000 samples.
const RECUR_SHARE: f64 = 0.5;

/// `y` with isolated spikes before the last `keep` samples replaced, except those
/// that recur at the same time of day (`season` samples apart); the count replaced.
pub fn clean(y: &[f64], keep: usize, season: usize) -> (Vec<f64>, usize) {
    let mut out = y.to_vec();
    let end = y.len().saturating_sub(keep.max(HALF_WINDOW));
    if end <= HALF_WINDOW {
        return (out, 0);
    }
    let mut diffs: Vec<f64> = y.windows(2).map(|w| (w[1] - w[0]).abs()).collect();
    // The noise of one sample: the median absolute difference, scaled to a normal σ, over √2.
    let mid = diffs.len() / 2;
    let noise =
        1.4826 * *diffs.select_nth_unstable_by(mid, f64::total_cmp).1 / std::f64::consts::SQRT_2;
    if noise <= 0.0 {
        return (out, 0);
    }
    let mut replaced = 0;
    for i in HALF_WINDOW..end {
        let departure = y[i] - local_median(y, i);
        if departure.abs() > SPIKE_SIGMAS * noise && !recurs(y, i, departure, season) {
            out[i] = y[i] - departure;
            replaced += 1;
        }
    }
    (out, replaced)
}

/// The median of the samples within [`HALF_WINDOW`] of `i` (fewer at the ends).
fn local_median(y: &[f64], i: usize) -> f64 {
    let window = &y[i.saturating_sub(HALF_WINDOW)..(i + HALF_WINDOW + 1).min(y.len())];
    let mut sorted = [0.0; 2 * HALF_WINDOW + 1];
    let sorted = &mut sorted[..window.len()];
    sorted.copy_from_slice(window);
    sorted.sort_unstable_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

/// Whether a departure like `departure` at `i` occurs near the same time of day on another day.
fn recurs(y: &[f64], i: usize, departure: f64, season: usize) -> bool {
    if season <= 2 * RECUR_SLACK {
        return false;
    }
    let last = y.len() - 1;
    let earlier = (1..=i / season).map(|k| i - k * season);
    let later = (1..).map(|k| i + k * season).take_while(|&c| c <= last);
    earlier
        .chain(later)
        .flat_map(|c| c.saturating_sub(RECUR_SLACK)..=(c + RECUR_SLACK).min(last))
        .any(|j| {
            let d = y[j] - local_median(y, j);
            d * departure > 0.0 && d.abs() >= RECUR_SHARE * departure.abs()
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::forecast::series::tests::noise;

    #[test]
    fn isolated_spikes_are_replaced_outside_the_kept_tail() {
        let mut y: Vec<f64> = noise(300, 1).iter().map(|e| 10.0 + e).collect();
        y[100] = 500.0;
        y[150] = 400.0;
        y[151] = 420.0;
        y[295] = 500.0;
        let (clean, replaced) = clean(&y, 20, 288);
        assert_eq!(replaced, 3);
        assert!(clean[100] < 12.0 && clean[150] < 12.0 && clean[151] < 12.0);
        assert_eq!(clean[295], 500.0, "the kept tail is untouched");
        assert_eq!(clean[..100], y[..100]);
    }

    #[test]
    fn steps_and_flat_series_are_left_alone() {
        let step: Vec<f64> = (0..200).map(|i| if i < 100 { 1.0 } else { 50.0 }).collect();
        assert_eq!(clean(&step, 10, 288), (step.clone(), 0));
        assert_eq!(clean(&[3.0; 50], 10, 288).1, 0);
        assert_eq!(clean(&[1.0, 9.0], 0, 288).1, 0);
    }

    #[test]
    fn spikes_recurring_at_the_same_time_of_day_are_kept() {
        const DAY: usize = 288;
        let mut y: Vec<f64> = noise(4 * DAY, 2).iter().map(|e| 10.0 + e).collect();
        // A two-sample job at the same time every day, one day a sample late and smaller.
        for day in 0..4 {
            let at = day * DAY + 100 + usize::from(day == 2);
            y[at] = if day == 2 { 40.0 } else { 60.0 };
            y[at + 1] = 55.0;
        }
        // A one-off spike, and a spike and a dip a day apart: opposite excursions do not recur.
        y[DAY + 200] = 70.0;
        y[2 * DAY + 30] = 70.0;
        y[3 * DAY + 30] = -50.0;
        let (clean, replaced) = clean(&y, 24, DAY);
        assert_eq!(replaced, 3, "only the one-off spikes");
        for at in [DAY + 200, 2 * DAY + 30, 3 * DAY + 30] {
            assert!((clean[at] - 10.0).abs() < 2.0, "{at}: {}", clean[at]);
        }
        for day in 0..4 {
            let at = day * DAY + 100 + usize::from(day == 2);
            assert_eq!(clean[at..at + 2], y[at..at + 2], "day {day}");
        }
    }
}
