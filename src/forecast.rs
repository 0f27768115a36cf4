//! Load Prediction Engine: a quantile of each instance's peak demand over the planning window.
//!
//! The optimiser sizes capacity against forecasts, not against the last sample, so
//! every `(instance, resource)` series gets a [`Demand`]: the requested quantile of
//! the peak over the horizon. Seasonal series choose between a seasonal naive model
//! and MSTL + AutoETS by a holdout backtest; short, flat or failing series fall back
//! to simpler rules, and the `note` says why so the run log can explain every number.

use crate::resource::Resource;
use crate::telemetry::{Series, Telemetry};
use augurs::ets::AutoETS;
use augurs::mstl::MSTLModel;
use augurs::{Fit, Predict};
use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Below this many samples no model is fitted: the forecast is the recent peak.
const MIN_MODEL_SAMPLES: usize = 24;

/// Forecast settings, read from the `[forecast]` table of the planning model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The quantile of peak demand to plan for, in (0, 1).
    pub quantile: f64,
    /// The planning window.
    pub horizon_minutes: u32,
    /// The seasonal period (a day by default).
    pub season_minutes: u32,
    /// Only the last this many days before `now` are used.
    pub history_days: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            quantile: 0.9,
            horizon_minutes: 60,
            season_minutes: 1440,
            history_days: 7,
        }
    }
}

impl Settings {
    /// Checks the ranges serde cannot express.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.quantile > 0.0 && self.quantile < 1.0) {
            return Err(format!(
                "forecast.quantile {} must be in (0, 1)",
                self.quantile
            ));
        }
        let zero = [
            ("horizon_minutes", self.horizon_minutes),
            ("season_minutes", self.season_minutes),
            ("history_days", self.history_days),
        ];
        match zero.iter().find(|(_, v)| *v == 0) {
            Some((name, _)) => Err(format!("forecast.{name} must be positive")),
            None => Ok(()),
        }
    }
}

/// How a [`Demand`] was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    SeasonalNaive,
    MstlEts,
    Ets,
    RecentPeak,
    Constant,
}

/// The forecast demand of one series over the horizon. All values finite and `>= 0`.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    /// The requested quantile of the peak: max over horizon steps of the per-step quantile.
    pub quantile: f64,
    /// Mean point forecast over the horizon.
    pub mean: f64,
    /// Last observed value.
    pub last: f64,
    pub method: Method,
    /// Empty, or why a fallback was used.
    pub note: String,
}

/// Demand forecasts for every series with history in the window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Forecasts {
    pub demands: BTreeMap<(String, Resource), Demand>,
    pub now: DateTime<Utc>,
    /// The oldest sample used, over all series.
    pub history_start: Option<DateTime<Utc>>,
    /// The newest sample used, over all series.
    pub history_end: Option<DateTime<Utc>>,
    /// Samples used, over all series.
    pub samples: usize,
}

impl Forecasts {
    /// Forecasts every series from its samples in `[now - history_days, now)`.
    pub fn build(telemetry: &Telemetry, now: DateTime<Utc>, settings: &Settings) -> Forecasts {
        let start = (now - Duration::days(i64::from(settings.history_days))).timestamp();
        let end = now.timestamp();
        let mut out = Forecasts {
            now,
            ..Forecasts::default()
        };
        let (mut first, mut newest) = (i64::MAX, i64::MIN);
        for (key, series) in &telemetry.series {
            let lo = series.points.partition_point(|&(t, _)| t < start);
            let hi = series.points.partition_point(|&(t, _)| t < end);
            let Some(window) = series.points.get(lo..hi).filter(|w| !w.is_empty()) else {
                continue;
            };
            first = first.min(window[0].0);
            newest = newest.max(window[window.len() - 1].0);
            out.samples += window.len();
            out.demands
                .insert(key.clone(), forecast_window(window, settings));
        }
        out.history_start = DateTime::from_timestamp(first, 0);
        out.history_end = DateTime::from_timestamp(newest, 0);
        out
    }

    /// The demand of one instance and resource, if it had history.
    pub fn get(&self, instance: &str, r: Resource) -> Option<&Demand> {
        self.demands.get(&(instance.to_owned(), r))
    }

    /// How many series each method produced, for the run log.
    pub fn method_counts(&self) -> BTreeMap<Method, usize> {
        let mut counts = BTreeMap::new();
        for d in self.demands.values() {
            *counts.entry(d.method).or_default() += 1;
        }
        counts
    }
}

fn forecast_window(window: &[(i64, f64)], settings: &Settings) -> Demand {
    let series = Series {
        points: window.to_vec(),
        first_line: 0,
    };
    // A single sample has no spacing; it falls back to the recent peak whatever the step.
    let step = series.step_seconds().unwrap_or(1);
    let values: Vec<f64> = window.iter().map(|&(_, v)| v).collect();
    forecast_series(&values, step, settings)
}

/// Forecasts one series of evenly spaced samples, `step_seconds` apart.
pub fn forecast_series(values: &[f64], step_seconds: i64, settings: &Settings) -> Demand {
    let n = values.len();
    let step = step_seconds.max(1).unsigned_abs();
    let horizon = (u64::from(settings.horizon_minutes) * 60)
        .div_ceil(step)
        .max(1) as usize;
    let season = (u64::from(settings.season_minutes) * 60 / step) as usize;
    let q = settings.quantile;
    if n == 0 {
        return recent_peak(values, "no samples: recent peak".into());
    }
    if values.iter().all(|v| (v - values[0]).abs() <= 1e-9) {
        return fixed(values, values[0], Method::Constant, String::new());
    }
    if n < MIN_MODEL_SAMPLES {
        let note = format!("history {n} samples < {MIN_MODEL_SAMPLES}: recent peak");
        return recent_peak(values, note);
    }
    let needed = 2 * season + horizon;
    let result = if season < 2 {
        ets(
            values,
            horizon,
            q,
            format!("season of {season} step(s) is too short: non-seasonal ETS"),
        )
    } else if n < needed {
        let note =
            format!("history {n} samples < 2 seasons + horizon ({needed}): non-seasonal ETS");
        ets(values, horizon, q, note)
    } else {
        seasonal(values, horizon, season, q)
    };
    result.unwrap_or_else(|e| recent_peak(values, format!("{e}: recent peak")))
}

/// A forecast over the horizon: point and requested quantile per step.
struct Path {
    point: Vec<f64>,
    quantile: Vec<f64>,
}

impl Path {
    /// Summarises the path, clamping negatives to zero; non-finite output is an error.
    fn demand(self, values: &[f64], method: Method, note: String) -> Result<Demand, String> {
        if self
            .point
            .iter()
            .chain(&self.quantile)
            .any(|v| !v.is_finite())
        {
            return Err(format!("{method:?} produced a non-finite forecast"));
        }
        let mean = self.point.iter().map(|v| v.max(0.0)).sum::<f64>() / self.point.len() as f64;
        Ok(Demand {
            quantile: self.quantile.iter().fold(0.0, |m, &v| m.max(v)),
            mean,
            last: values[values.len() - 1],
            method,
            note,
        })
    }
}

fn fixed(values: &[f64], quantile: f64, method: Method, note: String) -> Demand {
    let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
    Demand {
        quantile,
        mean,
        last: values.last().copied().unwrap_or(0.0),
        method,
        note,
    }
}

fn recent_peak(values: &[f64], note: String) -> Demand {
    let peak = values.iter().fold(0.0, |m: f64, &v| m.max(v));
    fixed(values, peak, Method::RecentPeak, note)
}

fn ets(values: &[f64], horizon: usize, q: f64, note: String) -> Result<Demand, String> {
    let fitted = AutoETS::non_seasonal()
        .fit(values)
        .map_err(|e| format!("ETS fit failed ({e})"))?;
    predict_path(&fitted, horizon, q)?.demand(values, Method::Ets, note)
}

/// Backtests seasonal naive against MSTL + ETS on the last horizon, then refits the winner.
fn seasonal(values: &[f64], horizon: usize, season: usize, q: f64) -> Result<Demand, String> {
    let (train, test) = values.split_at(values.len() - horizon);
    let naive_mae = mae(&naive_point(train, season, horizon), test);
    let mstl = mstl_model(season);
    let backtest = mstl.fit(train).map_err(|e| e.to_string());
    let mstl_mae = match backtest.and_then(|m| predict_path(&m, horizon, 0.5)) {
        Ok(path) => mae(&path.point, test),
        Err(e) => {
            let note = format!("MSTL backtest failed ({e}): seasonal naive");
            return seasonal_naive(values, horizon, season, q).demand(
                values,
                Method::SeasonalNaive,
                note,
            );
        }
    };
    if mstl_mae < naive_mae {
        let fitted = mstl
            .fit(values)
            .map_err(|e| format!("MSTL fit failed ({e})"))?;
        predict_path(&fitted, horizon, q)?.demand(values, Method::MstlEts, String::new())
    } else {
        seasonal_naive(values, horizon, season, q).demand(
            values,
            Method::SeasonalNaive,
            String::new(),
        )
    }
}

fn mstl_model(season: usize) -> MSTLModel<augurs::ets::trend::AutoETSTrendModel> {
    MSTLModel::new(vec![season], AutoETS::non_seasonal().into_trend_model())
}

/// Predicts `horizon` steps; the q-quantile is the matching bound of a two-sided interval.
fn predict_path(model: &impl Predict, horizon: usize, q: f64) -> Result<Path, String> {
    let level = (2.0 * q - 1.0).abs();
    let forecast = model
        .predict(horizon, (level > 0.0).then_some(level))
        .map_err(|e| format!("prediction failed ({e})"))?;
    let quantile = match forecast.intervals {
        Some(i) if q > 0.5 => i.upper,
        Some(i) => i.lower,
        None => forecast.point.clone(),
    };
    Ok(Path {
        point: forecast.point,
        quantile,
    })
}

/// Each step repeats the value one season earlier.
fn naive_point(values: &[f64], season: usize, horizon: usize) -> Vec<f64> {
    let base = values.len() - season;
    (0..horizon).map(|i| values[base + i % season]).collect()
}

/// Seasonal naive with the empirical q-quantile of the seasonal differences as the offset.
fn seasonal_naive(values: &[f64], horizon: usize, season: usize, q: f64) -> Path {
    let point = naive_point(values, season, horizon);
    let mut diffs: Vec<f64> = values[season..]
        .iter()
        .zip(values)
        .map(|(a, b)| a - b)
        .collect();
    let offset = empirical_quantile(&mut diffs, q);
    Path {
        quantile: point.iter().map(|p| p + offset).collect(),
        point,
    }
}

/// Linear-interpolated quantile (R type 7) of a non-empty slice.
fn empirical_quantile(xs: &mut [f64], q: f64) -> f64 {
    xs.sort_by(f64::total_cmp);
    let pos = q.clamp(0.0, 1.0) * (xs.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    xs[lo] + (xs[hi] - xs[lo]) * (pos - lo as f64)
}

fn mae(forecast: &[f64], actual: &[f64]) -> f64 {
    let total: f64 = forecast
        .iter()
        .zip(actual)
        .map(|(f, a)| (f - a).abs())
        .sum();
    total / actual.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::Path as FsPath;

    const DAY: usize = 288;

    /// Deterministic noise in [-1, 1).
    fn noise(n: usize, seed: u64) -> Vec<f64> {
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

    fn with_quantile(quantile: f64) -> Settings {
        Settings {
            quantile,
            ..Settings::default()
        }
    }

    #[test]
    fn constant_series_forecasts_its_value() {
        let d = forecast_series(&[3.5; 100], 300, &Settings::default());
        assert_eq!(
            (d.method, d.quantile, d.mean, d.last),
            (Method::Constant, 3.5, 3.5, 3.5)
        );
    }

    #[test]
    fn short_history_uses_non_seasonal_ets() {
        let values: Vec<f64> = noise(100, 1).iter().map(|e| 10.0 + e).collect();
        let d = forecast_series(&values, 300, &Settings::default());
        assert_eq!(d.method, Method::Ets, "{d:?}");
        assert!(d.note.contains("non-seasonal ETS"), "{}", d.note);
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
    fn seasonal_series_forecasts_near_the_true_peak() {
        let d = forecast_series(&daily(4, 1.0), 300, &Settings::default());
        assert!(
            matches!(d.method, Method::SeasonalNaive | Method::MstlEts),
            "{d:?}"
        );
        assert!(d.note.is_empty(), "{}", d.note);
        assert!(d.quantile > d.mean, "{d:?}");
        assert!((d.quantile - 70.0).abs() < 4.0, "{d:?}");
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

    #[test]
    fn settings_read_from_toml_with_defaults() {
        let s: Settings = toml::from_str("quantile = 0.95").unwrap();
        assert_eq!(s, with_quantile(0.95));
        assert!(toml::from_str::<Settings>("quantil = 0.95").is_err());
        assert!(with_quantile(1.0).validate().is_err());
        assert!(Settings::default().validate().is_ok());
    }

    #[test]
    fn build_uses_only_the_history_window() {
        let csv = "timestamp,instance,resource,value\n\
                   2024-01-01T00:00:00Z,a,cpu,9\n\
                   2024-01-09T00:00:00Z,a,cpu,1\n\
                   2024-01-09T00:05:00Z,a,cpu,2\n\
                   2024-01-09T00:10:00Z,a,cpu,5\n\
                   2024-01-09T00:05:00Z,b,mem,512\n\
                   2024-01-09T00:10:00Z,b,mem,512\n\
                   2024-01-09T01:00:00Z,c,net,3\n";
        let telemetry = Telemetry::from_reader(FsPath::new("t.csv"), csv.as_bytes()).unwrap();
        let now = "2024-01-09T00:10:00Z".parse().unwrap();
        let f = Forecasts::build(&telemetry, now, &Settings::default());
        assert_eq!(f.demands.len(), 2);
        assert_eq!(f.samples, 3);
        assert_eq!(
            f.history_start,
            Some("2024-01-09T00:00:00Z".parse().unwrap())
        );
        assert_eq!(f.history_end, Some("2024-01-09T00:05:00Z".parse().unwrap()));
        let a = f.get("a", Resource::Cpu).unwrap();
        assert_eq!(
            (a.method, a.quantile, a.last),
            (Method::RecentPeak, 2.0, 2.0)
        );
        assert_eq!(f.get("b", Resource::Mem).unwrap().method, Method::Constant);
        assert!(f.get("c", Resource::Net).is_none());
        let counts = f.method_counts();
        assert_eq!(
            counts,
            BTreeMap::from([(Method::RecentPeak, 1), (Method::Constant, 1)])
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn outputs_are_finite_and_non_negative(
            values in proptest::collection::vec(0.0..1e4f64, 0..700),
            quantile in 0.05..0.99f64,
        ) {
            let d = forecast_series(&values, 300, &with_quantile(quantile));
            for v in [d.quantile, d.mean, d.last] {
                prop_assert!(v.is_finite() && v >= 0.0, "{:?}", d);
            }
        }
    }
}
