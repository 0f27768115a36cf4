//! Regular grids: every model assumes evenly spaced samples, real telemetry is not.
//!
//! Samples are snapped to the series' own step counted back from its newest
//! sample (Bitbrains jitters by a second either way); a slot hit twice keeps the
//! later sample, and missing slots are filled by linear interpolation and counted.

/// A series on a regular grid ending at `end`.
#[derive(Debug, Clone, PartialEq)]
pub struct Grid {
    /// One value per slot, oldest first; empty slots interpolated.
    pub values: Vec<f64>,
    /// Seconds between values.
    pub step: i64,
    /// The timestamp of the last value.
    pub end: i64,
    /// Slots that had no sample and were interpolated.
    pub filled: usize,
}

/// Puts sorted `(time, value)` points on a grid of `step` seconds.
pub fn regularise(points: &[(i64, f64)], step: i64) -> Grid {
    let step = step.max(1);
    let Some(&(end, _)) = points.last() else {
        return Grid {
            values: Vec::new(),
            step,
            end: 0,
            filled: 0,
        };
    };
    let slot = |t: i64| ((end - t) as f64 / step as f64).round() as usize;
    let len = slot(points[0].0) + 1;
    let mut slots: Vec<Option<f64>> = vec![None; len];
    for &(t, v) in points {
        let i = len - 1 - slot(t).min(len - 1);
        slots[i] = Some(v);
    }
    let filled = slots.iter().filter(|s| s.is_none()).count();
    Grid {
        values: interpolate(&slots),
        step,
        end,
        filled,
    }
}

/// Fills `None` runs linearly between their known neighbours (the ends are always known).
fn interpolate(slots: &[Option<f64>]) -> Vec<f64> {
    let mut out = Vec::with_capacity(slots.len());
    let mut last = (0usize, slots.first().copied().flatten().unwrap_or(0.0));
    for (i, s) in slots.iter().enumerate() {
        let Some(v) = *s else { continue };
        let (j, prev) = last;
        for k in j + 1..i {
            out.push(prev + (v - prev) * (k - j) as f64 / (i - j) as f64);
        }
        out.push(v);
        last = (i, v);
    }
    out
}

/// Means of consecutive blocks of `factor` values, aligned so the last block ends at the end.
pub fn aggregate(values: &[f64], factor: usize) -> Vec<f64> {
    if factor <= 1 {
        return values.to_vec();
    }
    let skip = values.len() % factor;
    values[skip..]
        .chunks(factor)
        .map(|c| c.iter().sum::<f64>() / c.len() as f64)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_interpolated_and_counted() {
        let g = regularise(&[(0, 1.0), (300, 2.0), (1200, 5.0)], 300);
        assert_eq!(g.values, vec![1.0, 2.0, 3.0, 4.0, 5.0]);
        assert_eq!((g.filled, g.end, g.step), (2, 1200, 300));
    }

    #[test]
    fn jitter_snaps_to_the_grid() {
        let g = regularise(&[(0, 1.0), (299, 2.0), (601, 3.0)], 300);
        assert_eq!((g.values, g.filled), (vec![1.0, 2.0, 3.0], 0));
    }

    #[test]
    fn aggregation_aligns_to_the_end() {
        assert_eq!(aggregate(&[9.0, 1.0, 3.0, 2.0, 4.0], 2), vec![2.0, 3.0]);
        assert_eq!(aggregate(&[1.0, 2.0], 1), vec![1.0, 2.0]);
    }
}
