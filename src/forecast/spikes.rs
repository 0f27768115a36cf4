//! One-off spikes: removed from old history so that seasonal methods do not repeat them.
//!
//! A single spike a day ago is what seasonal naive, shifted naive and MSTL's
//! seasonal component forecast for the same hour today (and MSTL for days). An
//! isolated sample (or pair) far outside its neighbours is replaced by their
//! median in the model input. The recent history that the backtest scores is
//! left as it was: calibration must see real spikes, and the newest samples
//! may be the start of a level shift rather than a spike.

/// A sample is a spike when it is this many noise widths from its neighbourhood's median.
const SPIKE_SIGMAS: f64 = 8.0;
/// Neighbours on each side: runs of up to this many samples count as one-off.
const HALF_WINDOW: usize = 2;

/// `y` with isolated spikes before the last `keep` samples replaced; the count replaced.
pub fn clean(y: &[f64], keep: usize) -> (Vec<f64>, usize) {
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
        let mut window = [0.0; 2 * HALF_WINDOW + 1];
        window.copy_from_slice(&y[i - HALF_WINDOW..=i + HALF_WINDOW]);
        window.sort_unstable_by(f64::total_cmp);
        let local = window[HALF_WINDOW];
        if (y[i] - local).abs() > SPIKE_SIGMAS * noise {
            out[i] = local;
            replaced += 1;
        }
    }
    (out, replaced)
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
        let (clean, replaced) = clean(&y, 20);
        assert_eq!(replaced, 3);
        assert!(clean[100] < 12.0 && clean[150] < 12.0 && clean[151] < 12.0);
        assert_eq!(clean[295], 500.0, "the kept tail is untouched");
        assert_eq!(clean[..100], y[..100]);
    }

    #[test]
    fn steps_and_flat_series_are_left_alone() {
        let step: Vec<f64> = (0..200).map(|i| if i < 100 { 1.0 } else { 50.0 }).collect();
        assert_eq!(clean(&step, 10), (step.clone(), 0));
        assert_eq!(clean(&[3.0; 50], 10).1, 0);
        assert_eq!(clean(&[1.0, 9.0], 0).1, 0);
    }
}
