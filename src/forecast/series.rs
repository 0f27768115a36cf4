//! One series' forecast: fallbacks, then a fresh selection or the stored one.
//!
//! This is where the persisted state pays off: a fresh entry with the same
//! history fingerprint is reused as is, a fresh entry with new samples only
//! refits its method, and anything else is selected again.

use super::method::Path;
use super::select::{self, Context, Selection};
use super::state::{Entry, Fingerprint};
use super::{grid, Demand, Key, Method, Settings, Work};
use super::{shift, spikes};
use crate::telemetry::most_common_step;
use chrono::{DateTime, Utc};

/// One series' result.
pub(super) struct Outcome {
    pub demand: Demand,
    /// The new state entry; `None` with `work` = `Shifted` drops the stored one.
    pub entry: Option<Entry>,
    pub gaps: usize,
    pub work: Work,
}

/// Forecasts one series, reusing `prior` where it is fresh.
pub(super) fn forecast_key(
    key: &Key,
    points: &[(i64, f64)],
    now: DateTime<Utc>,
    settings: &Settings,
    prior: Option<&Entry>,
) -> Outcome {
    let step = most_common_step(points).unwrap_or(1);
    let grid = grid::regularise(points, step);
    let (y, gaps) = (&grid.values, grid.filled);
    let outcome = |demand, entry, work| Outcome {
        demand,
        entry,
        gaps,
        work,
    };
    if let Some(demand) = select::fallback(y) {
        return outcome(demand, None, Work::Fallback);
    }
    let fingerprint = Fingerprint {
        step,
        end: grid.end,
        samples: points.len(),
        sum: y.iter().sum(),
    };
    let ctx = Context::new(settings, step);
    let prior = prior.filter(|e| is_fresh(key, e, now, settings));
    // An entry written before paths were stored is refitted once, for the look-ahead.
    if let Some(e) = prior.filter(|e| e.fingerprint == fingerprint && !e.path.is_empty()) {
        // Stored only when that same history showed no level shift.
        return outcome(cached(e, y), Some(e.clone()), Work::Reused);
    }
    if let Some(at) = shift::last_shift(y, step) {
        // Nothing is stored: once the shift is older than the search, selection sees all.
        return outcome(since_shift(y, at, step, &ctx), None, Work::Shifted);
    }
    let clean = spikes::clean(y, ctx.backtest_span(), ctx.season).0;
    let (selection, selected_at, work, ets) = match prior {
        Some(e) if !shifted(e, points) => {
            (e.selection.clone(), e.selected_at, Work::Refitted, None)
        }
        _ => {
            let selected = select::select(&clean, &ctx);
            (selected.selection, now, Work::Selected, selected.ets)
        }
    };
    let (mut demand, selection) = finish(&clean, &ctx, selection, ets);
    demand.last = y.last().copied().unwrap_or(0.0);
    let entry = Entry {
        instance: key.0.clone(),
        resource: key.1,
        selection,
        selected_at,
        fingerprint,
        quantile: demand.quantile,
        path: demand.path.clone(),
        mean: demand.mean,
    };
    outcome(demand, Some(entry), work)
}

/// Whether at least three new samples arrived since the stored forecast and three
/// quarters of them lie more than twice the band width (`quantile - mean`) from
/// its mean: a level shift, so the choice is re-made now rather than at the next
/// scheduled re-selection. Noise alone rarely leaves twice a p90 band.
fn shifted(e: &Entry, points: &[(i64, f64)]) -> bool {
    let new = &points[points.partition_point(|p| p.0 <= e.fingerprint.end)..];
    let width = (e.quantile - e.mean).abs().max(1e-9);
    let outside = new
        .iter()
        .filter(|p| (p.1 - e.mean).abs() > 2.0 * width)
        .count();
    new.len() >= 3 && 4 * outside >= 3 * new.len()
}

/// Whether a stored selection is still current: made at or before `now`, with
/// none of this series' re-selection times in between. Each series re-selects
/// every `reselect_hours` at its own offset (a hash of its key), so a cron run
/// every 15 minutes re-selects about 1/96 of a fleet, not all of it once a day.
fn is_fresh(key: &Key, e: &Entry, now: DateTime<Utc>, settings: &Settings) -> bool {
    let period = i64::from(settings.reselect_hours) * 3600;
    if period == 0 || e.selected_at > now {
        return false;
    }
    let offset = reselect_offset(key, period);
    let slot = |t: DateTime<Utc>| (t.timestamp() - offset).div_euclid(period);
    slot(e.selected_at) == slot(now)
}

/// Seconds into each re-selection period at which `key` re-selects: FNV-1a of
/// the instance and resource names, stable across runs and platforms.
pub(super) fn reselect_offset(key: &Key, period: i64) -> i64 {
    let bytes = key.0.bytes().chain([0]).chain(key.1.name().bytes());
    let hash = bytes.fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    (hash % period.max(1).unsigned_abs()) as i64
}

fn cached(e: &Entry, y: &[f64]) -> Demand {
    Demand {
        quantile: e.quantile,
        path: e.path.clone(),
        step: e.fingerprint.step,
        mean: e.mean,
        last: y.last().copied().unwrap_or(0.0),
        method: e.selection.method,
        note: e.selection.note.clone(),
    }
}

/// Refits the selection on the whole history; a failure falls back to the recent peak.
fn finish(
    y: &[f64],
    ctx: &Context,
    mut selection: Selection,
    ets: Option<Path>,
) -> (Demand, Selection) {
    match select::refit(y, ctx, &selection, ets) {
        Ok((path, spec)) => {
            selection.spec = spec.or(selection.spec);
            let d = Demand::from_path(
                &path,
                ctx.step,
                selection.offset,
                y,
                selection.method,
                selection.note.clone(),
            );
            (d, selection)
        }
        Err(e) => {
            let peak = y.iter().fold(0.0, |m: f64, &v| m.max(v));
            let d = Demand::fixed(y, peak, Method::RecentPeak, format!("{e}: recent peak"));
            // A flat path, stored, so the entry is reused like any other.
            let path = vec![peak];
            (Demand { path, ..d }, selection)
        }
    }
}

/// Forecasts one series of evenly spaced samples, `step_seconds` apart, selecting afresh.
pub fn forecast_series(values: &[f64], step_seconds: i64, settings: &Settings) -> Demand {
    if let Some(d) = select::fallback(values) {
        return d;
    }
    let ctx = Context::new(settings, step_seconds);
    if let Some(at) = shift::last_shift(values, step_seconds) {
        return since_shift(values, at, step_seconds, &ctx);
    }
    let clean = spikes::clean(values, ctx.backtest_span(), ctx.season).0;
    let selected = select::select(&clean, &ctx);
    let mut d = finish(&clean, &ctx, selected.selection, selected.ets).0;
    d.last = values.last().copied().unwrap_or(0.0);
    d
}

/// The forecast from the history since a level shift at `at` alone, selected afresh.
fn since_shift(y: &[f64], at: usize, step: i64, ctx: &Context) -> Demand {
    let since = &y[at..];
    let mut d = match select::fallback(since) {
        Some(d) => d,
        None => {
            let selected = select::select(since, ctx);
            finish(since, ctx, selected.selection, selected.ets).0
        }
    };
    let minutes = since.len() as i64 * step / 60;
    let shift = format!("level shift {minutes} min ago: fitted on the history since");
    d.note = if d.note.is_empty() {
        shift
    } else {
        format!("{shift}; {}", d.note)
    };
    d.last = y.last().copied().unwrap_or(0.0);
    d
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use proptest::prelude::*;

    const DAY: usize = 288;

    /// Deterministic noise in [-1, 1).
    pub(crate) fn noise(n: usize, seed: u64) -> Vec<f64> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 11) as f64 / (1u64 << 52) as f64 - 1.0
            })
            .collect()
    }

    /// A daily cosine (peak 70 at the start of each day) plus noise of amplitude `amp`.
    fn daily(days: usize, amp: f64) -> Vec<f64> {
        let period = DAY as f64;
        noise(days * DAY, 7)
            .iter()
            .enumerate()
            .map(|(i, e)| 50.0 + 20.0 * (std::f64::consts::TAU * i as f64 / period).cos() + amp * e)
            .collect()
    }

    pub(crate) fn with_quantile(quantile: f64) -> Settings {
        Settings {
            quantile,
            ..Settings::default()
        }
    }

    #[test]
    fn constant_series_forecasts_its_value_and_says_so() {
        let d = forecast_series(&[3.5; 100], 300, &Settings::default());
        assert_eq!(
            (d.method, d.quantile, d.mean, d.last),
            (Method::Constant, 3.5, 3.5, 3.5)
        );
        assert!(d.note.contains("constant series"), "{}", d.note);
    }

    #[test]
    fn zero_series_is_a_constant_fallback() {
        let d = forecast_series(&[0.0; 700], 300, &Settings::default());
        assert_eq!((d.method, d.quantile), (Method::Constant, 0.0));
        assert!(d.note.contains("all-zero"), "{}", d.note);
    }

    #[test]
    fn empty_series_falls_back_to_zero() {
        let d = forecast_series(&[], 300, &Settings::default());
        assert_eq!((d.method, d.quantile), (Method::RecentPeak, 0.0));
        assert!(d.note.contains("no samples"), "{}", d.note);
    }

    #[test]
    fn short_history_uses_non_seasonal_candidates_and_says_so() {
        let values: Vec<f64> = noise(100, 1).iter().map(|e| 10.0 + e).collect();
        let d = forecast_series(&values, 300, &Settings::default());
        assert!(
            !matches!(d.method, Method::MstlEts | Method::SeasonalNaive),
            "{d:?}"
        );
        assert!(d.note.contains("< 2 seasons"), "{}", d.note);
        assert!(d.quantile > d.mean && d.quantile < 15.0, "{d:?}");
    }

    #[test]
    fn very_short_history_uses_recent_peak() {
        let d = forecast_series(&[1.0, 4.0, 2.0], 300, &Settings::default());
        assert_eq!(
            (d.method, d.quantile, d.last),
            (Method::RecentPeak, 4.0, 2.0)
        );
        assert!(d.note.contains("3 samples"), "{}", d.note);
    }

    #[test]
    fn failing_refit_falls_back_to_the_recent_peak() {
        let ctx = Context::new(&Settings::default(), 300);
        let selection = Selection {
            method: Method::MstlEts,
            periods: Vec::new(),
            spec: None,
            offset: None,
            note: String::new(),
            screened: false,
        };
        let (d, _) = finish(&[1.0, 5.0, 2.0], &ctx, selection, None);
        assert_eq!((d.method, d.quantile), (Method::RecentPeak, 5.0));
        assert!(d.note.contains("mstl_ets failed"), "{}", d.note);
    }

    #[test]
    fn reselection_is_spread_over_the_day() {
        let settings = Settings::default();
        let t0: DateTime<Utc> = "2024-01-01T00:00:00Z".parse().unwrap();
        let entry = |instance: String, selected_at| Entry {
            instance,
            resource: crate::resource::Resource::Cpu,
            selection: Selection {
                method: Method::Ets,
                periods: Vec::new(),
                spec: None,
                offset: None,
                note: String::new(),
                screened: false,
            },
            selected_at,
            fingerprint: Fingerprint {
                step: 300,
                end: 0,
                samples: 0,
                sum: 0.0,
            },
            quantile: 0.0,
            path: Vec::new(),
            mean: 0.0,
        };
        let keys: Vec<Key> = (0..960)
            .map(|i| (format!("vm-{i}"), crate::resource::Resource::Cpu))
            .collect();
        let mut entries: Vec<Entry> = keys.iter().map(|k| entry(k.0.clone(), t0)).collect();
        let mut reselections = vec![0; keys.len()];
        let mut busiest = 0;
        for run in 1..=96 {
            let now = t0 + chrono::Duration::minutes(15 * run);
            let mut count = 0;
            for (i, (k, e)) in keys.iter().zip(&mut entries).enumerate() {
                if !is_fresh(k, e, now, &settings) {
                    *e = entry(k.0.clone(), now);
                    reselections[i] += 1;
                    count += 1;
                }
            }
            busiest = busiest.max(count);
        }
        assert!(reselections.iter().all(|&n| n == 1), "{reselections:?}");
        assert!(busiest <= 30, "{busiest} of 960 in one run");
        let future = entry(keys[0].0.clone(), t0 + chrono::Duration::hours(1));
        assert!(!is_fresh(&keys[0], &future, t0, &settings));
    }

    #[test]
    fn seasonal_series_forecasts_near_the_true_peak() {
        let d = forecast_series(&daily(4, 1.0), 300, &Settings::default());
        assert!(d.note.is_empty(), "{}", d.note);
        assert!(d.quantile > d.mean, "{d:?}");
        assert!((d.quantile - 70.0).abs() < 4.0, "{d:?}");
    }

    #[test]
    fn a_level_shift_does_not_poison_the_forecast() {
        let mut values = daily(4, 1.0);
        let n = values.len();
        for v in &mut values[n - 36..] {
            *v += 100.0;
        }
        let d = forecast_series(&values, 300, &Settings::default());
        assert!(d.mean > 130.0 && d.quantile > 150.0, "{d:?}");
    }

    #[test]
    fn a_level_shift_is_followed_within_half_an_hour_to_two_hours() {
        for minutes in [30, 60, 120] {
            let k = minutes / 5;
            let mut up = daily(4, 1.0);
            let n = up.len();
            for v in &mut up[n - k..] {
                *v += 100.0;
            }
            let d = forecast_series(&up, 300, &Settings::default());
            assert!(d.mean > 160.0 && d.quantile > 165.0, "{minutes} min: {d:?}");
            assert!(d.note.contains("level shift"), "{}", d.note);
            let mut down = daily(4, 1.0);
            for v in &mut down[n - k..] {
                *v -= 60.0;
            }
            let d = forecast_series(&down, 300, &Settings::default());
            assert!(d.quantile < 20.0, "{minutes} min: {d:?}");
        }
    }

    #[test]
    fn a_one_off_spike_does_not_inflate_the_forecast() {
        // Spikes two hours ago and a day before the coming hour (which seasonal methods repeat).
        for at in [24, 288 - 6] {
            let mut values = daily(4, 1.0);
            let n = values.len();
            values[n - at] += 500.0;
            let d = forecast_series(&values, 300, &Settings::default());
            assert!(
                d.quantile < 80.0 && d.mean < 75.0,
                "spike {at} samples ago: {d:?}"
            );
        }
    }

    #[test]
    fn higher_quantiles_are_not_lower() {
        let seasonal = daily(4, 8.0);
        let short: Vec<f64> = noise(200, 3).iter().map(|e| 20.0 + 5.0 * e).collect();
        for values in [seasonal, short] {
            let p50 = forecast_series(&values, 300, &with_quantile(0.5));
            let p95 = forecast_series(&values, 300, &with_quantile(0.95));
            assert_eq!(p50.method, p95.method);
            assert!(p95.quantile >= p50.quantile, "{p50:?} {p95:?}");
        }
    }

    #[test]
    fn forecasts_are_deterministic() {
        let values = daily(3, 5.0);
        let settings = Settings::default();
        assert_eq!(
            forecast_series(&values, 300, &settings),
            forecast_series(&values, 300, &settings)
        );
    }

    /// Arbitrary series plus adversarial shapes: spikes, steps, zeros, tiny and huge values.
    fn adversarial() -> impl Strategy<Value = Vec<f64>> {
        let any = proptest::collection::vec(0.0..1e4f64, 0..700);
        let spiky = (
            proptest::collection::vec(0.0..1.0f64, 600..700),
            0usize..600,
            1e3..1e9f64,
        )
            .prop_map(|(mut v, at, spike)| {
                v[at] = spike;
                v
            });
        let step = (1usize..699, 0.0..1e6f64)
            .prop_map(|(at, level)| (0..700).map(|i| if i < at { 0.0 } else { level }).collect());
        let tiny = proptest::collection::vec(0.0..1e-12f64, 20..400);
        prop_oneof![any, spiky, step, tiny]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn outputs_are_finite_and_non_negative(
            values in adversarial(),
            quantile in 0.05..0.99f64,
        ) {
            let d = forecast_series(&values, 300, &with_quantile(quantile));
            for v in [d.quantile, d.mean, d.last] {
                prop_assert!(v.is_finite() && v >= 0.0, "{:?}", d);
            }
        }
    }
}
