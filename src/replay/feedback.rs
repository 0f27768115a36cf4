//! Accuracy feedback from past plans (telemetry scoring forecasts; docs/glossary.md#vcim): each plan records the
//! forecasts it was sized against; once its horizon has passed, telemetry says how
//! they did, scored like a backtest window.
//!
//! A plan records the peak quantile over the horizon and the mean, so coverage
//! here is the share of actual samples at or below the recorded peak quantile.

use crate::forecast::backtest::{mae, mase_scale};
use crate::forecast::evaluate::{Report, SeriesScores, Yardstick};
use crate::forecast::grid;
use crate::forecast::method::Path;
use crate::forecast::{Method, Settings};
use crate::plan::{ForecastRecord, Plan};
use crate::resource::Resource;
use crate::telemetry::{Series, Telemetry};
use chrono::DateTime;
use std::collections::BTreeMap;

/// Scores every recorded forecast whose horizon the telemetry covers.
pub fn evaluate_plans(telemetry: &Telemetry, plans: &[Plan], settings: &Settings) -> Report {
    let mut scores: BTreeMap<(String, Resource), SeriesScores> = BTreeMap::new();
    for plan in plans {
        let Some(t0) = DateTime::parse_from_rfc3339(&plan.plan.created_at)
            .ok()
            .map(|t| t.timestamp())
        else {
            continue;
        };
        let horizon = i64::from(plan.plan.forecast.horizon_minutes) * 60;
        for record in &plan.forecasts {
            let key = (record.instance.clone(), record.resource);
            let Some(series) = telemetry.series.get(&key) else {
                continue;
            };
            if let Some((method, yard_parts)) = score_parts(series, t0, horizon, settings, record) {
                let (actual, naive, scale) = yard_parts;
                // The recorded telemetry is raw: its seasonal naive is both yardsticks.
                let yard = Yardstick {
                    naive_mae: mae(&naive, &actual),
                    raw_naive_mae: mae(&naive, &actual),
                    actual: &actual,
                    scale,
                };
                let path = Path {
                    point: vec![record.mean; actual.len()],
                    base: vec![record.quantile; actual.len()],
                    spec: None,
                };
                scores.entry(key).or_default().push(method, &yard, &path);
            }
        }
    }
    let scored = scores.iter().map(|(k, s)| (k.clone(), Some(s)));
    Report::new(settings, plans.len(), scored)
}

type Parts = (Vec<f64>, Vec<f64>, f64);

/// The actuals after `t0`, seasonal naive for them and the MASE scale before `t0`.
fn score_parts(
    series: &Series,
    t0: i64,
    horizon: i64,
    settings: &Settings,
    record: &ForecastRecord,
) -> Option<(Method, Parts)> {
    let method = method_named(&record.method)?;
    let season = i64::from(settings.season_minutes) * 60;
    let window = |a: i64, b: i64| -> Vec<f64> { series.window(a, b).iter().map(|p| p.1).collect() };
    let actual = window(t0, t0 + horizon);
    let naive = window(t0 - season, t0 - season + horizon);
    let n = actual.len().min(naive.len());
    if n == 0 {
        return None;
    }
    let step = series.step_seconds()?.max(1);
    let start = t0 - i64::from(settings.history_days) * 86_400;
    let history = grid::regularise(&series.window(start, t0), step).values;
    let scale = mase_scale(&history, (season / step) as usize);
    Some((method, (actual[..n].to_vec(), naive[..n].to_vec(), scale)))
}

fn method_named(name: &str) -> Option<Method> {
    Method::ALL.into_iter().find(|m| m.name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn method_names_round_trip() {
        for m in Method::ALL {
            assert_eq!(method_named(m.name()), Some(m));
        }
        assert_eq!(method_named("prophet"), None);
    }
}
