//! Forecasting (the seed's LPE, docs/glossary.md#lpe): a calibrated quantile of each instance's demand over the planning window.
//!
//! The optimiser sizes capacity against forecasts, not against the last sample, so
//! every `(instance, resource)` series gets a [`Demand`]. Each series is put on a
//! regular grid ([`grid`]), its candidates ([`method`]) are compared by a
//! rolling-origin backtest ([`backtest`]) and the winner's quantile is corrected
//! conformally ([`calibrate`]). The choice is persisted ([`state`]) so that later
//! runs only refit it, and an unchanged series is not refitted at all. Short,
//! flat or failing series fall back to simpler rules, and the `note` says why.

pub mod backtest;
pub mod calibrate;
pub mod evaluate;
pub mod grid;
pub mod method;
pub mod select;
mod series;
pub mod shift;
pub mod spikes;
pub mod state;

pub use method::Method;
pub use series::forecast_series;
use state::State;

use crate::resource::Resource;
use crate::telemetry::{Series, Telemetry};
use chrono::{DateTime, Duration, Utc};
use indicatif::ProgressBar;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Forecast settings, read from the `[forecast]` table of the planning model file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The quantile of demand to plan for, in (0, 1).
    pub quantile: f64,
    /// The planning window.
    pub horizon_minutes: u32,
    /// The seasonal period (a day by default). With the horizon it is also the window whose
    /// peak is an instance's ceiling, and how long room above it is priced as unused.
    pub season_minutes: u32,
    /// Only the last this many days before `now` are used.
    pub history_days: u32,
    /// Rolling-origin backtest origins used for model selection.
    pub origins: usize,
    /// Minutes between backtest origins.
    pub origin_spacing_minutes: u32,
    /// The augurs models fit block means of this many minutes (the planning step).
    pub fit_step_minutes: u32,
    /// Model selection is redone when older than this.
    pub reselect_hours: u32,
    /// The selection state file (relative to the working directory); empty disables it.
    pub state: String,
    /// The optimiser never shrinks an instance below this quantile of its usage over this
    /// many hours before now (0: no floor), so an on/off burster, idle between bursts the
    /// next hour's forecast cannot see, is not caught small by its next burst.
    pub shrink_floor_hours: u32,
    /// The quantile of that usage, in (0, 1], that makes the shrink floor.
    pub shrink_floor_quantile: f64,
    /// Evidence beats forecasts: an instance whose usage over this many minutes before now
    /// (0: off) peaked above its allocation plans for at least that peak plus
    /// `evidence_margin`, whatever its forecast, cool-down and hysteresis say.
    pub evidence_minutes: u32,
    /// The share added to that peak (0.15 plans for 1.15 × the peak), from 0 to 10; the
    /// ceiling adds it to its peak too.
    pub evidence_margin: f64,
    /// A memory shortage kills processes where a CPU shortage slows them: memory is never
    /// shrunk below its peak over `shrink_floor_hours` plus this share, from 0 to 10
    /// (docs/decisions.md#memory-floor).
    pub memory_floor_margin: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            quantile: 0.9,
            horizon_minutes: 60,
            season_minutes: 1440,
            history_days: 7,
            origins: 6,
            origin_spacing_minutes: 60,
            fit_step_minutes: 15,
            reselect_hours: 24,
            state: "models/forecast-state.json".into(),
            shrink_floor_hours: 12,
            shrink_floor_quantile: 0.9,
            evidence_minutes: 15,
            evidence_margin: 0.15,
            memory_floor_margin: 0.15,
        }
    }
}

impl Settings {
    /// Minutes of history whose peak is the ceiling: a season and the horizon, so the same
    /// hours on the day before are in it.
    pub fn ceiling_minutes(&self) -> u32 {
        self.season_minutes + self.horizon_minutes
    }

    /// Checks the ranges serde cannot express; the error names the key at fault.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let fractions = [
            ("quantile", self.quantile, 0.0, 1.0, "in (0, 1)"),
            (
                "shrink_floor_quantile",
                self.shrink_floor_quantile,
                0.0,
                1.0 + 1e-12,
                "in (0, 1]",
            ),
        ];
        for (key, v, lo, hi, range) in fractions {
            if !(v > lo && v < hi) {
                return Err((key, format!("forecast.{key} = {v} must be {range}")));
            }
        }
        let margins = [
            ("evidence_margin", self.evidence_margin),
            ("memory_floor_margin", self.memory_floor_margin),
        ];
        for (key, v) in margins {
            if !(0.0..=10.0).contains(&v) {
                return Err((key, format!("forecast.{key} = {v} must be in [0, 10]")));
            }
        }
        // (key, value, least, most): a week of horizon, a year of history, and so on;
        // beyond these a run would allocate or loop for nothing.
        let week = 7 * 1440;
        let counts = [
            ("horizon_minutes", self.horizon_minutes, 1, week),
            ("season_minutes", self.season_minutes, 1, 4 * week),
            ("history_days", self.history_days, 1, 366),
            (
                "origin_spacing_minutes",
                self.origin_spacing_minutes,
                1,
                week,
            ),
            ("fit_step_minutes", self.fit_step_minutes, 1, 1440),
            ("reselect_hours", self.reselect_hours, 0, 366 * 24),
            ("shrink_floor_hours", self.shrink_floor_hours, 0, 366 * 24),
            ("evidence_minutes", self.evidence_minutes, 0, 1440),
        ];
        for (key, v, lo, hi) in counts {
            if v < lo || v > hi {
                return Err((
                    key,
                    format!("forecast.{key} = {v} must be from {lo} to {hi}"),
                ));
            }
        }
        if self.origins > 1000 {
            let v = self.origins;
            return Err((
                "origins",
                format!("forecast.origins = {v} must be from 0 to 1000"),
            ));
        }
        Ok(())
    }
}

/// The forecast demand of one series over the horizon. All values finite and `>= 0`.
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    /// The requested quantile of the peak: max over horizon steps of the per-step quantile.
    pub quantile: f64,
    /// The per-step quantiles over the horizon, `step` seconds apart; empty when the demand
    /// is flat (a fallback rule), so every step is `quantile`.
    pub path: Vec<f64>,
    /// Seconds between the steps of `path` (0 for a fallback).
    pub step: i64,
    /// Mean point forecast over the horizon.
    pub mean: f64,
    /// Last observed value.
    pub last: f64,
    /// The method that produced it, or the fallback rule.
    pub method: Method,
    /// Empty, or why a fallback was used.
    pub note: String,
}

impl Demand {
    /// A demand that is not a model's forecast.
    pub fn fixed(values: &[f64], quantile: f64, method: Method, note: String) -> Demand {
        let mean = values.iter().sum::<f64>() / values.len().max(1) as f64;
        Demand {
            quantile,
            path: Vec::new(),
            step: 0,
            mean,
            last: values.last().copied().unwrap_or(0.0),
            method,
            note,
        }
    }

    /// Summarises a path with its calibrated quantile, clamped at zero.
    fn from_path(
        path: &method::Path,
        step: i64,
        offset: Option<f64>,
        values: &[f64],
        method: Method,
        note: String,
    ) -> Demand {
        let clamp = |v: f64| if v.is_finite() { v.max(0.0) } else { 0.0 };
        let steps = path.point.len().max(1) as f64;
        let quantiles = calibrate::quantile_path(path, offset);
        Demand {
            quantile: quantiles.iter().fold(0.0, |m, &q| m.max(q)),
            path: quantiles,
            step,
            mean: path.point.iter().map(|&p| clamp(p)).sum::<f64>() / steps,
            last: values.last().copied().unwrap_or(0.0),
            method,
            note,
        }
    }

    /// The demand of each of `n` planning intervals of `interval` seconds: the peak of the
    /// per-step quantiles whose steps overlap it (step `k` covers `k·step` to `(k+1)·step`
    /// seconds after the forecast origin), the last interval taking the rest of the horizon.
    /// One interval is the whole horizon's peak, `quantile` itself.
    pub fn by_interval(&self, interval: i64, n: usize) -> Vec<f64> {
        if n <= 1 || self.path.len() <= 1 || self.step <= 0 {
            return vec![self.quantile; n.max(1)];
        }
        let (len, interval) = (self.path.len(), interval.max(1));
        (0..n)
            .map(|t| {
                let first = ((t as i64 * interval / self.step) as usize).min(len - 1);
                let end = match t + 1 == n {
                    true => len,
                    false => (((t as i64 + 1) * interval + self.step - 1) / self.step) as usize,
                };
                self.path[first..end.clamp(first + 1, len)]
                    .iter()
                    .fold(f64::NEG_INFINITY, |m, &q| m.max(q))
            })
            .collect()
    }
}

/// How a series' demand was obtained this run, for the run log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Work {
    /// Selection by backtest (new, stale or changed settings).
    Selected,
    /// The stored selection, refitted on new data.
    Refitted,
    /// Unchanged history: the stored demand.
    Reused,
    /// A fallback rule; nothing to store.
    Fallback,
    /// A recent level shift: selected on the history since it; the stored entry is dropped.
    Shifted,
}

impl Work {
    /// The word used in the run log.
    pub fn name(self) -> &'static str {
        match self {
            Work::Selected => "selected",
            Work::Refitted => "refitted",
            Work::Reused => "reused",
            Work::Fallback => "fallback",
            Work::Shifted => "shifted",
        }
    }
}

/// Demand forecasts for every series with history in the window.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Forecasts {
    /// Each series' demand, by instance id and resource.
    pub demands: BTreeMap<(String, Resource), Demand>,
    /// The planning time (`--now`): the history ends there and the horizon starts.
    pub now: DateTime<Utc>,
    /// The oldest sample used, over all series.
    pub history_start: Option<DateTime<Utc>>,
    /// The newest sample used, over all series.
    pub history_end: Option<DateTime<Utc>>,
    /// Samples used, over all series.
    pub samples: usize,
    /// Grid slots without a sample, interpolated, over all series.
    pub gaps_filled: usize,
    /// How many series each kind of work produced.
    pub work: BTreeMap<Work, usize>,
    /// Per series, the `shrink_floor_quantile` of its samples over the last
    /// `shrink_floor_hours` (when that is set): what a shrink must leave it.
    pub floors: BTreeMap<(String, Resource), f64>,
    /// Per series whose history covers the last season and horizon, its peak over them times
    /// 1 + `evidence_margin`: allocation above it (and the demand) went unused that long.
    pub ceilings: BTreeMap<(String, Resource), f64>,
    /// Per series, the peak of its samples over the last `evidence_minutes` (when set).
    pub peaks: BTreeMap<(String, Resource), f64>,
}

impl Forecasts {
    /// Forecasts every series from its samples in `[now - history_days, now)`, selecting afresh.
    pub fn build(telemetry: &Telemetry, now: DateTime<Utc>, settings: &Settings) -> Forecasts {
        Self::build_with_state(telemetry, now, settings, &mut State::default())
    }

    /// Like [`Forecasts::build`], reusing the selections in `state` and updating it.
    pub fn build_with_state(
        telemetry: &Telemetry,
        now: DateTime<Utc>,
        settings: &Settings,
        state: &mut State,
    ) -> Forecasts {
        let start = (now - Duration::days(i64::from(settings.history_days))).timestamp();
        let since = (now - Duration::hours(i64::from(settings.shrink_floor_hours))).timestamp();
        let ceiling_since =
            (now - Duration::minutes(i64::from(settings.ceiling_minutes()))).timestamp();
        let evidence = (now - Duration::minutes(i64::from(settings.evidence_minutes))).timestamp();
        let keys: Vec<(&Key, &Series)> = telemetry.series.iter().collect();
        let bar = progress(keys.len() as u64);
        // Each window is decoded where it is forecast, so only a few are in memory at once.
        let outcomes: Vec<Option<(series::Outcome, Window)>> = keys
            .par_iter()
            .map(|&(key, s)| {
                bar.inc(1);
                let w = s.window(start, now.timestamp());
                let (first, last) = (w.first()?.0, w.last()?.0);
                let mut recent: Vec<f64> = match settings.shrink_floor_hours {
                    0 => Vec::new(),
                    _ => w.iter().filter(|p| p.0 >= since).map(|p| p.1).collect(),
                };
                // Only a history that covers the whole window says what went unused in it.
                let ceiling = (first <= ceiling_since)
                    .then(|| {
                        (w.iter().rev())
                            .take_while(|p| p.0 >= ceiling_since)
                            .map(|p| p.1)
                    })
                    .and_then(|recent| recent.reduce(f64::max))
                    .map(|high| high * (1.0 + settings.evidence_margin));
                let floor = (!recent.is_empty()).then(|| {
                    let q = method::empirical_quantile(&mut recent, settings.shrink_floor_quantile);
                    match key.1 {
                        Resource::Mem => {
                            let high = recent.iter().copied().fold(f64::MIN, f64::max);
                            q.max(high * (1.0 + settings.memory_floor_margin))
                        }
                        _ => q,
                    }
                });
                let peak = match settings.evidence_minutes {
                    0 => None,
                    // The window is in time order: only its tail is read.
                    _ => (w.iter().rev())
                        .take_while(|p| p.0 >= evidence)
                        .map(|p| p.1)
                        .reduce(f64::max),
                };
                let outcome =
                    series::forecast_key(key, &w, now, settings, state.get(key, settings));
                let window = Window {
                    first,
                    last,
                    samples: w.len(),
                    floor,
                    ceiling,
                    peak,
                };
                Some((outcome, window))
            })
            .collect();
        bar.finish_and_clear();
        let mut out = Forecasts {
            now,
            ..Forecasts::default()
        };
        let (mut entries, mut dropped) = (Vec::new(), Vec::new());
        for ((key, _), found) in keys.into_iter().zip(outcomes) {
            let Some((o, w)) = found else { continue };
            if o.work == Work::Shifted {
                dropped.push(key.clone());
            }
            if let Some(floor) = w.floor {
                out.floors.insert(key.clone(), floor);
            }
            if let Some(ceiling) = w.ceiling {
                out.ceilings.insert(key.clone(), ceiling);
            }
            if let Some(peak) = w.peak {
                out.peaks.insert(key.clone(), peak);
            }
            out.record(key, &w, o.demand, o.gaps, o.work);
            entries.extend(o.entry);
        }
        state.update(settings, entries, &dropped);
        out
    }

    fn record(&mut self, key: &Key, w: &Window, d: Demand, gaps: usize, work: Work) {
        let first = DateTime::from_timestamp(w.first, 0);
        let last = DateTime::from_timestamp(w.last, 0);
        self.history_start = self.history_start.min(first).or(first);
        self.history_end = self.history_end.max(last);
        self.samples += w.samples;
        self.gaps_filled += gaps;
        *self.work.entry(work).or_default() += 1;
        self.demands.insert(key.clone(), d);
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

type Key = (String, Resource);

/// What the run log and the floors keep of one series' history window
/// (`[now - history_days, now)`).
struct Window {
    first: i64,
    last: i64,
    samples: usize,
    /// The `shrink_floor_quantile` of its last `shrink_floor_hours`, if any.
    floor: Option<f64>,
    /// Its peak over the last season and horizon times 1 + `evidence_margin`, if the history
    /// covers them.
    ceiling: Option<f64>,
    /// The peak of its last `evidence_minutes`, if any.
    peak: Option<f64>,
}

/// A progress bar on stderr for long runs, hidden under `CI` or when stderr is not a terminal.
fn progress(len: u64) -> ProgressBar {
    crate::progress::bar(len, 1000, "forecast {bar:40} {pos}/{len} series, eta {eta}")
}

#[cfg(test)]
mod tests {
    use super::series::tests::{noise, with_quantile};
    use super::*;
    use std::path::Path as FsPath;

    #[test]
    fn demand_by_interval_takes_each_slice_of_the_horizon_at_its_peak() {
        let path = [1.0, 5.0, 2.0, 3.0, 1.0, 1.0, 4.0, 0.5, 0.5, 0.5, 0.5, 6.0];
        let d = Demand {
            path: path.to_vec(),
            step: 300,
            ..Demand::fixed(&[], 6.0, Method::SeasonalNaive, String::new())
        };
        // Twelve five-minute steps: four intervals of 15 minutes, or one of the whole hour.
        assert_eq!(d.by_interval(900, 4), vec![5.0, 3.0, 4.0, 6.0]);
        assert_eq!(d.by_interval(900, 1), vec![6.0]);
        // Two intervals of 15 minutes: the second takes the rest of the horizon.
        assert_eq!(d.by_interval(900, 2), vec![5.0, 6.0]);
        // Ten-minute steps: the step from 10 to 20 minutes counts in both intervals it overlaps.
        let ten = Demand {
            path: vec![1.0, 8.0, 2.0, 3.0, 1.0, 1.0],
            step: 600,
            ..d.clone()
        };
        assert_eq!(ten.by_interval(900, 4), vec![8.0, 8.0, 3.0, 1.0]);
        // Intervals shorter than a step take each step they overlap.
        let coarse = Demand {
            path: vec![2.0, 7.0],
            step: 1800,
            ..d.clone()
        };
        assert_eq!(coarse.by_interval(900, 4), vec![2.0, 2.0, 7.0, 7.0]);
        // A flat demand (a fallback rule) is the same in every interval.
        let flat = Demand {
            path: Vec::new(),
            ..d
        };
        assert_eq!(flat.by_interval(900, 3), vec![6.0; 3]);
    }

    #[test]
    fn settings_read_from_toml_with_defaults() {
        let s: Settings = toml::from_str("quantile = 0.95").unwrap();
        assert_eq!(s, with_quantile(0.95));
        assert!(toml::from_str::<Settings>("quantil = 0.95").is_err());
        assert!(with_quantile(1.0).validate().is_err());
        assert!(Settings::default().validate().is_ok());
    }

    fn telemetry(csv: &str) -> Telemetry {
        Telemetry::from_reader(FsPath::new("t.csv"), csv.as_bytes()).unwrap()
    }

    #[test]
    fn build_uses_only_the_history_window() {
        let t = telemetry(
            "timestamp,instance,resource,value\n\
             2024-01-01T00:00:00Z,a,cpu,9\n\
             2024-01-09T00:00:00Z,a,cpu,1\n\
             2024-01-09T00:05:00Z,a,cpu,2\n\
             2024-01-09T00:10:00Z,a,cpu,5\n\
             2024-01-09T00:05:00Z,b,mem,512\n\
             2024-01-09T00:10:00Z,b,mem,512\n\
             2024-01-09T01:00:00Z,c,net,3\n",
        );
        let now = "2024-01-09T00:10:00Z".parse().unwrap();
        let f = Forecasts::build(&t, now, &Settings::default());
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
        assert_eq!(
            f.method_counts(),
            BTreeMap::from([(Method::RecentPeak, 1), (Method::Constant, 1)])
        );
    }

    #[test]
    fn peaks_are_the_maximum_of_the_last_evidence_minutes() {
        let t = telemetry(
            "timestamp,instance,resource,value\n\
             2024-01-09T10:40:00Z,a,cpu,9\n\
             2024-01-09T10:50:00Z,a,cpu,3\n\
             2024-01-09T10:55:00Z,a,cpu,2\n\
             2024-01-09T11:00:00Z,a,cpu,1\n",
        );
        let now = "2024-01-09T11:05:00Z".parse().unwrap();
        let peak = |minutes| {
            let s = Settings {
                evidence_minutes: minutes,
                ..Settings::default()
            };
            Forecasts::build(&t, now, &s)
                .peaks
                .get(&("a".into(), Resource::Cpu))
                .copied()
        };
        assert_eq!(peak(15), Some(3.0), "10:50 to 11:05");
        assert_eq!(peak(30), Some(9.0));
        assert_eq!(peak(0), None, "off");
        assert_eq!(peak(2), None, "no sample in the last 2 minutes");
    }

    #[test]
    fn floors_are_the_quantile_of_the_recent_window() {
        let t = telemetry(
            "timestamp,instance,resource,value\n\
             2024-01-09T00:00:00Z,a,cpu,9\n\
             2024-01-09T10:00:00Z,a,cpu,1\n\
             2024-01-09T10:30:00Z,a,cpu,4\n\
             2024-01-09T11:00:00Z,a,cpu,2\n",
        );
        let now = "2024-01-09T11:05:00Z".parse().unwrap();
        let settings = |hours, q| Settings {
            shrink_floor_hours: hours,
            shrink_floor_quantile: q,
            ..Settings::default()
        };
        let floor = |s: &Settings| {
            Forecasts::build(&t, now, s)
                .floors
                .get(&("a".into(), Resource::Cpu))
                .copied()
        };
        assert_eq!(
            floor(&settings(2, 1.0)),
            Some(4.0),
            "the 9 is older than 2 h"
        );
        assert_eq!(floor(&settings(12, 1.0)), Some(9.0));
        assert_eq!(floor(&settings(2, 0.5)), Some(2.0));
        assert_eq!(floor(&settings(0, 1.0)), None, "0 hours: no floor");
    }

    /// The ceiling is the peak of the last season and horizon (25 hours) with the evidence
    /// margin.
    #[test]
    fn ceilings_are_the_seasons_peak_with_the_margin() {
        let t = telemetry(
            "timestamp,instance,resource,value\n\
             2024-01-08T09:00:00Z,a,cpu,20\n\
             2024-01-09T10:00:00Z,a,cpu,1\n\
             2024-01-09T10:30:00Z,a,cpu,8\n\
             2024-01-09T11:00:00Z,a,cpu,2\n",
        );
        let now = "2024-01-09T11:05:00Z".parse().unwrap();
        let ceiling = |margin| {
            let s = Settings {
                evidence_margin: margin,
                ..Settings::default()
            };
            Forecasts::build(&t, now, &s).ceilings[&("a".into(), Resource::Cpu)]
        };
        assert_eq!(ceiling(0.0), 8.0, "the 20 is older than 25 hours");
        assert!((ceiling(0.15) - 9.2).abs() < 1e-9);
        // Without the 20, the history starts an hour ago: it cannot say what went unused.
        let short = telemetry(
            "timestamp,instance,resource,value\n\
             2024-01-09T10:00:00Z,a,cpu,1\n\
             2024-01-09T11:00:00Z,a,cpu,2\n",
        );
        let f = Forecasts::build(&short, now, &Settings::default());
        assert!(f.ceilings.is_empty() && !f.demands.is_empty());
    }

    /// Memory keeps a margin over its recent peak, CPU only the quantile.
    #[test]
    fn memory_floors_keep_a_margin_over_the_recent_peak() {
        let t = telemetry(
            "timestamp,instance,resource,value\n\
             2024-01-09T10:00:00Z,a,cpu,1\n\
             2024-01-09T10:30:00Z,a,cpu,8\n\
             2024-01-09T11:00:00Z,a,cpu,2\n\
             2024-01-09T10:00:00Z,a,mem,1000\n\
             2024-01-09T10:30:00Z,a,mem,4000\n\
             2024-01-09T11:00:00Z,a,mem,2000\n",
        );
        let now = "2024-01-09T11:05:00Z".parse().unwrap();
        let floors = |margin| {
            let s = Settings {
                shrink_floor_quantile: 0.5,
                memory_floor_margin: margin,
                ..Settings::default()
            };
            let f = Forecasts::build(&t, now, &s).floors;
            (
                f[&("a".into(), Resource::Cpu)],
                f[&("a".into(), Resource::Mem)],
            )
        };
        assert_eq!(floors(0.0), (2.0, 4000.0), "the peak, not the median 2000");
        let (cpu, mem) = floors(0.15);
        assert_eq!(cpu, 2.0, "cpu keeps the quantile");
        assert!((mem - 4600.0).abs() < 1e-9, "1.15 × the 4000 peak: {mem}");
    }

    /// Two days of a noisy series `a`, five-minute steps, with one gap.
    fn two_days() -> Telemetry {
        let mut csv = String::from("timestamp,instance,resource,value\n");
        let start = DateTime::parse_from_rfc3339("2024-01-01T00:00:00Z").unwrap();
        for (i, e) in noise(576, 5).iter().enumerate().filter(|(i, _)| *i != 100) {
            let t = start + Duration::minutes(5 * i as i64);
            csv += &format!("{},a,cpu,{}\n", t.to_rfc3339(), 4.0 + e);
        }
        telemetry(&csv)
    }

    #[test]
    fn state_skips_selection_until_it_is_stale() {
        let (t, settings) = (two_days(), Settings::default());
        let now: DateTime<Utc> = "2024-01-03T00:00:00Z".parse().unwrap();
        let mut state = State::default();
        let cold = Forecasts::build_with_state(&t, now, &settings, &mut state);
        assert_eq!(cold.work, BTreeMap::from([(Work::Selected, 1)]));
        assert_eq!(cold.gaps_filled, 1);
        let again = Forecasts::build_with_state(&t, now, &settings, &mut state);
        assert_eq!(again.work, BTreeMap::from([(Work::Reused, 1)]));
        assert_eq!(again.demands, cold.demands);
        let later = now - Duration::hours(1);
        let unchanged =
            Forecasts::build_with_state(&t, now + Duration::hours(1), &settings, &mut state);
        assert_eq!(unchanged.work, BTreeMap::from([(Work::Reused, 1)]));
        let window = Forecasts::build_with_state(&t, later, &settings, &mut state);
        assert_eq!(window.work, BTreeMap::from([(Work::Selected, 1)]));
        let stale =
            Forecasts::build_with_state(&t, later + Duration::hours(25), &settings, &mut state);
        assert_eq!(stale.work, BTreeMap::from([(Work::Selected, 1)]));
    }

    #[test]
    fn a_level_shift_since_the_last_run_triggers_reselection() {
        let settings = Settings::default();
        let now: DateTime<Utc> = "2024-01-02T22:00:00Z".parse().unwrap();
        let mut t = two_days();
        let mut state = State::default();
        Forecasts::build_with_state(&t, now, &settings, &mut state);
        let series = t.series.values_mut().next().unwrap();
        let shifted = series.points().map(|(time, v)| {
            let after = time >= now.timestamp();
            (time, if after { v + 100.0 } else { v })
        });
        *series = Series::from_points(shifted.collect::<Vec<_>>(), series.first_line);
        let f = Forecasts::build_with_state(&t, now + Duration::minutes(90), &settings, &mut state);
        assert_eq!(f.work, BTreeMap::from([(Work::Shifted, 1)]));
        let d = f.get("a", Resource::Cpu).unwrap();
        assert!(d.quantile > 100.0 && d.mean > 100.0, "{d:?}");
        assert!(d.note.contains("level shift 90 min ago"), "{}", d.note);
        assert!(
            state.is_empty(),
            "the entry from before the shift is dropped"
        );
    }

    #[test]
    fn new_samples_refit_the_stored_selection_and_state_round_trips() {
        let (t, settings) = (two_days(), Settings::default());
        let now: DateTime<Utc> = "2024-01-02T23:00:00Z".parse().unwrap();
        let mut state = State::default();
        Forecasts::build_with_state(&t, now, &settings, &mut state);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("models/state.json");
        state.save(&path).unwrap();
        let mut loaded = State::load(&path).unwrap();
        assert_eq!(loaded.len(), 1);
        let next = now + Duration::minutes(30);
        let f = Forecasts::build_with_state(&t, next, &settings, &mut loaded);
        assert_eq!(f.work, BTreeMap::from([(Work::Refitted, 1)]));
        assert!(State::load(&dir.path().join("missing.json"))
            .unwrap()
            .is_empty());
        std::fs::write(&path, "{ not json").unwrap();
        let e = State::load(&path).unwrap_err().to_string();
        assert!(e.contains("state.json:1"), "{e}");
    }
}
