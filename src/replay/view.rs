//! What a strategy may see at one planning interval, and what it is scored on.
//!
//! The rolling horizon lives here: forecasts and baseline estimates use only
//! samples before the interval; the samples inside it are the realised demand
//! that is scored (and that only the oracle and foresight plan for; foresight also
//! sees the intervals after it).

use super::metrics::Window;
use super::{strategy, Kind, Options};
use crate::forecast::state::State;
use crate::forecast::Forecasts;
use crate::policy::Policy;
use crate::resource::Resource;
use crate::telemetry::Telemetry;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

/// Demand estimates of one baseline at one interval, and the seconds they took.
pub(super) struct Estimates {
    pub demand: BTreeMap<(String, Resource), f64>,
    /// `foresight` only: the realised peaks of the intervals after this one (`None` where
    /// an interval has no samples).
    pub ahead: BTreeMap<(String, Resource), Vec<Option<f64>>>,
    pub seconds: f64,
}

/// The telemetry one interval may see or is scored on.
pub(super) struct Views<'a> {
    /// Samples in `[t, t + interval)`: what is scored, and what the oracle plans for.
    pub realised: Window<'a>,
    pub estimates: BTreeMap<Kind, Estimates>,
    pub forecasts: Option<(Forecasts, f64)>,
}

/// Hours each sample of a series stands for: its most common spacing.
pub(super) fn step_hours(telemetry: &Telemetry) -> HashMap<(String, Resource), (i64, f64)> {
    telemetry
        .series
        .iter()
        .map(|(key, s)| {
            let step = s.step_seconds().unwrap_or(300).max(1);
            (key.clone(), (step, step as f64 / 3600.0))
        })
        .collect()
}

/// What the strategies may see at `now` and what they are scored on until `until`.
pub(super) fn views<'a>(
    telemetry: &'a Telemetry,
    policy: &Policy,
    opts: &Options,
    steps: &HashMap<(String, Resource), (i64, f64)>,
    now: DateTime<Utc>,
    until: i64,
    state: &mut State,
) -> Views<'a> {
    let t = now.timestamp();
    let interval = i64::from(opts.interval_minutes) * 60;
    let history = i64::from(policy.forecast.history_days) * 86_400;
    let mut realised: Window = Vec::new();
    let mut estimates: BTreeMap<Kind, Estimates> = BTreeMap::new();
    let peak = |s: &crate::telemetry::Series, from: i64| {
        values(&s.window(from, from + interval))
            .into_iter()
            .reduce(f64::max)
    };
    for kind in [Kind::Reactive, Kind::Vpa, Kind::Oracle, Kind::Foresight] {
        if !opts.strategies.contains(&kind) {
            continue;
        }
        let clock = Instant::now();
        let mut map = BTreeMap::new();
        let mut ahead = BTreeMap::new();
        for (key, s) in &telemetry.series {
            if kind == Kind::Foresight {
                let later = (1..strategy::FORESIGHT_INTERVALS)
                    .map(|k| peak(s, t + i64::from(k) * interval))
                    .collect();
                ahead.insert(key.clone(), later);
            }
            let estimate = match kind {
                Kind::Reactive => strategy::reactive_estimate(&values(&s.window(t - interval, t))),
                Kind::Vpa => {
                    strategy::vpa_estimate(&values(&s.window(t - history, t)), steps[key].0)
                }
                _ => values(&s.window(t, until)).iter().copied().reduce(f64::max),
            };
            if let Some(v) = estimate {
                map.insert(key.clone(), v);
            }
        }
        let seconds = clock.elapsed().as_secs_f64();
        estimates.insert(
            kind,
            Estimates {
                demand: map,
                ahead,
                seconds,
            },
        );
    }
    for (key, s) in &telemetry.series {
        let points = s.window(t, until);
        if !points.is_empty() {
            realised.push((key.0.as_str(), key.1, steps[key].1, points));
        }
    }
    // Foresight keeps the shrink floors the forecasts carry.
    let needed = |k: &Kind| k.uses_forecasts() || *k == Kind::Foresight;
    let forecasts = opts.strategies.iter().any(needed).then(|| {
        let clock = Instant::now();
        let f = Forecasts::build_with_state(telemetry, now, &policy.forecast, state);
        (f, clock.elapsed().as_secs_f64())
    });
    Views {
        realised,
        estimates,
        forecasts,
    }
}

fn values(points: &[(i64, f64)]) -> Vec<f64> {
    points.iter().map(|p| p.1).collect()
}
