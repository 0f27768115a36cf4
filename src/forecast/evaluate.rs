//! Accuracy feedback: rolling-origin evaluation of every candidate and of the selection.
//!
//! For each series and each of `origins` origins, spaced `spacing` apart back from its
//! end (consecutive horizons by default; 24 origins 7 hours apart cover a week at every
//! hour of the day), the engine runs as a planning run would at that origin (selection
//! on the history before it, then a forecast) and is scored on what followed: MASE
//! against seasonal naive, the error ratio to seasonal naive on the same window (also
//! clipped in log, and against seasonal naive on the raw, uncleaned history), quantile
//! coverage and bias.

use super::backtest::{coverage, mae, mase_scale};
use super::grid;
use super::method::{Method, Path};
use super::select::{self, Context, Selection};
use super::{calibrate, Settings};
use super::{shift, spikes};
use crate::resource::Resource;
use crate::telemetry::{Series, Telemetry};
use chrono::{DateTime, Utc};
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

/// One method's forecast on one evaluation window, scored.
#[derive(Debug, Clone, Copy)]
struct Score {
    mase: f64,
    rel: f64,
    /// Against seasonal naive on the raw history (no spike cleaning).
    rel_raw: f64,
    hits: usize,
    steps: usize,
    error: f64,
    actual: f64,
    seconds: f64,
}

/// Aggregate accuracy of one method (or of the selection) over windows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    /// Windows scored.
    pub windows: usize,
    /// Median over windows of MASE: MAE over the in-sample mean absolute seasonal difference.
    pub mase_median: f64,
    /// Share of windows with a MASE below 1.
    pub share_mase_below_1: f64,
    /// Geometric mean over windows of MAE(method) / MAE(seasonal naive).
    pub rel_error_geomean: f64,
    /// The same with each window's log ratio clipped to ±2, so one near-zero denominator
    /// cannot move it.
    pub rel_error_clipped_geomean: f64,
    /// Against seasonal naive on the raw history, before spike cleaning.
    pub rel_error_raw_geomean: f64,
    /// Share of windows whose MAE is below seasonal naive's.
    pub share_beats_seasonal_naive: f64,
    /// Share of actuals at or below the quantile forecast.
    pub coverage: f64,
    /// Summed (forecast - actual) over summed actuals.
    pub bias: f64,
    /// Mean seconds per series and window (selected: selection plus refit).
    pub seconds: f64,
}

/// The evaluation report; written as JSON by `chameleon forecast --evaluate --report`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// The quantile forecast, `[forecast] quantile`.
    pub quantile: f64,
    /// Minutes forecast from each origin.
    pub horizon_minutes: u32,
    /// Origins per series (`--origins`).
    pub origins: usize,
    /// Minutes between origins.
    pub origin_spacing_minutes: u32,
    /// Series in the telemetry, skipped ones included.
    pub series: usize,
    /// Series left out: fallbacks (constant, short) or too little history.
    pub skipped: usize,
    /// Each candidate method's metrics, by method name, over every window it ran on.
    pub methods: BTreeMap<String, Metrics>,
    /// The selection's metrics: the method chosen at each origin, scored on what followed.
    pub selected: Metrics,
    /// 90% interval of the selection's `rel_error_geomean`, from 2000 bootstrap resamples of
    /// the series (each with all its windows).
    pub selected_rel_interval: (f64, f64),
    /// How often each method was selected.
    pub selected_methods: BTreeMap<String, usize>,
    /// The selection's metrics per instance id.
    pub by_instance: BTreeMap<String, Metrics>,
    /// The selection's metrics per resource (`cpu`, `mem`, `net`).
    pub by_resource: BTreeMap<String, Metrics>,
}

/// One series' scored windows.
#[derive(Default)]
pub struct SeriesScores {
    methods: BTreeMap<Method, Vec<Score>>,
    selected: Vec<Score>,
    choices: Vec<Method>,
    /// Whether to keep the windows themselves.
    keep: bool,
    /// The windows, when kept (newest first, as `selected`).
    kept: Vec<Kept>,
}

/// One window's samples and the selection's forecast, kept for a peer to forecast the
/// same window (`chameleon forecast --evaluate --windows`).
#[derive(Debug, Clone, PartialEq)]
struct Kept {
    history: Vec<f64>,
    actual: Vec<f64>,
    selected: Vec<f64>,
}

/// One evaluation window exactly as it was scored.
#[derive(Debug, Clone, PartialEq)]
pub struct Window {
    /// The instance of the series.
    pub instance: String,
    /// The resource of the series.
    pub resource: Resource,
    /// Which origin: 0 is the newest, a horizon before the series' end.
    pub origin: usize,
    /// Seconds between samples.
    pub step_seconds: i64,
    /// The history before the origin on the regular grid, before spike cleaning: at most
    /// `history_days`.
    pub history: Vec<f64>,
    /// The samples that followed the origin.
    pub actual: Vec<f64>,
    /// The point forecast a planning run would have used (the `selected` row's).
    pub selected: Vec<f64>,
}

impl SeriesScores {
    /// Records a forecast that `method` made and that was used.
    pub fn push(&mut self, method: Method, yard: &Yardstick, path: &Path) {
        let score = yard.score(path, None, 0.0);
        self.methods.entry(method).or_default().push(score);
        self.selected.push(score);
        self.choices.push(method);
    }
}

/// Evaluates every series at `origins` origins, `spacing_minutes` apart (0: a horizon),
/// the last one a horizon before `now` (default: each series' end).
pub fn evaluate(
    telemetry: &Telemetry,
    settings: &Settings,
    origins: usize,
    spacing_minutes: u32,
    now: Option<DateTime<Utc>>,
) -> Report {
    evaluate_windows(telemetry, settings, (origins, spacing_minutes), now, false).0
}

/// As [`evaluate`], and with `keep` also every scored window, so that another forecaster
/// can be run on exactly the same histories and scored on the same samples.
pub fn evaluate_windows(
    telemetry: &Telemetry,
    settings: &Settings,
    (origins, spacing_minutes): (usize, u32),
    now: Option<DateTime<Utc>>,
    keep: bool,
) -> (Report, Vec<Window>) {
    let spacing = match spacing_minutes {
        0 => settings.horizon_minutes,
        m => m,
    };
    let keys: Vec<_> = telemetry.series.iter().collect();
    let mut scored: Vec<Option<SeriesScores>> = keys
        .par_iter()
        .map(|(_, s)| evaluate_series(s, settings, (origins, spacing), now, keep))
        .collect();
    let mut windows = Vec::new();
    for (((instance, resource), series), s) in keys.iter().zip(&mut scored) {
        let (Some(s), Some(step)) = (s, series.step_seconds()) else {
            continue;
        };
        for (origin, k) in std::mem::take(&mut s.kept).into_iter().enumerate() {
            windows.push(Window {
                instance: instance.clone(),
                resource: *resource,
                origin,
                step_seconds: step,
                history: k.history,
                actual: k.actual,
                selected: k.selected,
            });
        }
    }
    let scored = keys
        .iter()
        .zip(&scored)
        .map(|((k, _), s)| ((*k).clone(), s.as_ref()));
    let mut report = Report::new(settings, origins, scored);
    report.origin_spacing_minutes = spacing;
    (report, windows)
}

impl Report {
    /// Aggregates per-series scores (`None`: the series was skipped).
    pub fn new<'a>(
        settings: &Settings,
        origins: usize,
        scored: impl Iterator<Item = ((String, Resource), Option<&'a SeriesScores>)>,
    ) -> Report {
        let scored: Vec<_> = scored.collect();
        let mut report = Report {
            quantile: settings.quantile,
            horizon_minutes: settings.horizon_minutes,
            origins,
            origin_spacing_minutes: settings.horizon_minutes,
            series: scored.len(),
            skipped: scored.iter().filter(|s| s.1.is_none()).count(),
            methods: BTreeMap::new(),
            selected: Metrics::of(&[]),
            selected_rel_interval: (1.0, 1.0),
            selected_methods: BTreeMap::new(),
            by_instance: BTreeMap::new(),
            by_resource: BTreeMap::new(),
        };
        report.fill(&scored);
        report
    }

    fn fill(&mut self, scored: &[((String, Resource), Option<&SeriesScores>)]) {
        let mut methods: BTreeMap<Method, Vec<Score>> = BTreeMap::new();
        let mut selected = Vec::new();
        let mut by_instance: BTreeMap<String, Vec<Score>> = BTreeMap::new();
        let mut by_resource: BTreeMap<String, Vec<Score>> = BTreeMap::new();
        for (key, s) in scored {
            let Some(s) = s else { continue };
            for (m, v) in &s.methods {
                methods.entry(*m).or_default().extend(v);
            }
            for m in &s.choices {
                *self
                    .selected_methods
                    .entry(m.name().to_owned())
                    .or_default() += 1;
            }
            selected.extend(&s.selected);
            by_instance
                .entry(key.0.clone())
                .or_default()
                .extend(&s.selected);
            by_resource
                .entry(key.1.to_string())
                .or_default()
                .extend(&s.selected);
        }
        self.methods = methods
            .iter()
            .map(|(m, v)| (m.name().to_owned(), Metrics::of(v)))
            .collect();
        self.selected = Metrics::of(&selected);
        let per_series: Vec<&[Score]> = scored
            .iter()
            .filter_map(|(_, s)| s.map(|s| &s.selected[..]))
            .collect();
        self.selected_rel_interval = bootstrap_rel(&per_series);
        self.by_instance = by_instance
            .iter()
            .map(|(k, v)| (k.clone(), Metrics::of(v)))
            .collect();
        self.by_resource = by_resource
            .iter()
            .map(|(k, v)| (k.clone(), Metrics::of(v)))
            .collect();
    }

    /// A fixed-width table of the per-method and selected metrics.
    pub fn table(&self) -> String {
        let mut out = format!(
            "{:<16} {:>7} {:>11} {:>10} {:>9} {:>9} {:>9} {:>9} {:>8} {:>7} {:>9}\n",
            "method",
            "windows",
            "mase_median",
            "mase<1",
            "rel_geo",
            "rel_clip",
            "rel_raw",
            "beats_sn",
            "coverage",
            "bias",
            "ms/series"
        );
        let selected = "selected".to_owned();
        let rows = self
            .methods
            .iter()
            .chain(std::iter::once((&selected, &self.selected)));
        for (name, m) in rows {
            out += &format!(
                "{:<16} {:>7} {:>11.3} {:>10.3} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>8.3} {:>7.3} {:>9.1}\n",
                name,
                m.windows,
                m.mase_median,
                m.share_mase_below_1,
                m.rel_error_geomean,
                m.rel_error_clipped_geomean,
                m.rel_error_raw_geomean,
                m.share_beats_seasonal_naive,
                m.coverage,
                m.bias,
                m.seconds * 1000.0
            );
        }
        out
    }
}

/// 90% interval of the geometric mean relative error, resampling whole series.
fn bootstrap_rel(series: &[&[Score]]) -> (f64, f64) {
    if series.is_empty() {
        return (1.0, 1.0);
    }
    let mut rng = crate::synth::rng::SplitMix(0x5EED);
    let mut draws: Vec<f64> = (0..2000)
        .map(|_| {
            let (mut sum, mut n) = (0.0, 0usize);
            for _ in 0..series.len() {
                let s = series[rng.below(series.len())];
                sum += s.iter().map(|w| w.rel.ln()).sum::<f64>();
                n += s.len();
            }
            (sum / n.max(1) as f64).exp()
        })
        .collect();
    draws.sort_by(f64::total_cmp);
    (draws[100], draws[1899])
}

impl Metrics {
    fn of(scores: &[Score]) -> Metrics {
        let n = scores.len();
        let share = |f: &dyn Fn(&Score) -> bool| {
            scores.iter().filter(|s| f(s)).count() as f64 / n.max(1) as f64
        };
        let mut mases: Vec<f64> = scores.iter().map(|s| s.mase).collect();
        let actual: f64 = scores.iter().map(|s| s.actual).sum();
        Metrics {
            windows: n,
            mase_median: if n == 0 {
                0.0
            } else {
                super::method::empirical_quantile(&mut mases, 0.5)
            },
            share_mase_below_1: share(&|s| s.mase < 1.0),
            rel_error_geomean: (scores.iter().map(|s| s.rel.ln()).sum::<f64>() / n.max(1) as f64)
                .exp(),
            rel_error_clipped_geomean: (scores
                .iter()
                .map(|s| s.rel.ln().clamp(-2.0, 2.0))
                .sum::<f64>()
                / n.max(1) as f64)
                .exp(),
            rel_error_raw_geomean: (scores.iter().map(|s| s.rel_raw.ln()).sum::<f64>()
                / n.max(1) as f64)
                .exp(),
            share_beats_seasonal_naive: share(&|s| s.rel < 1.0),
            coverage: scores.iter().map(|s| s.hits).sum::<usize>() as f64
                / scores.iter().map(|s| s.steps).sum::<usize>().max(1) as f64,
            bias: scores.iter().map(|s| s.error).sum::<f64>() / actual.max(f64::MIN_POSITIVE),
            seconds: scores.iter().map(|s| s.seconds).sum::<f64>() / n.max(1) as f64,
        }
    }
}

fn evaluate_series(
    series: &Series,
    settings: &Settings,
    (origins, spacing_minutes): (usize, u32),
    now: Option<DateTime<Utc>>,
    keep: bool,
) -> Option<SeriesScores> {
    let step = series.step_seconds()?;
    let end = now.map_or(i64::MAX, |t| t.timestamp());
    let y = grid::regularise(&series.window(i64::MIN, end), step).values;
    let ctx = Context::new(settings, step);
    let history = (i64::from(settings.history_days) * 86_400 / step.max(1)) as usize;
    let spacing = (i64::from(spacing_minutes) * 60 / step.max(1)).max(1) as usize;
    let mut out = SeriesScores {
        keep,
        ..SeriesScores::default()
    };
    for origin in origin_positions(y.len(), ctx.horizon, spacing, origins)? {
        let start = origin.checked_sub(history.min(origin))?;
        evaluate_window(
            &y[start..origin],
            &y[origin..origin + ctx.horizon],
            (&ctx, step),
            &mut out,
        )?;
    }
    Some(out)
}

/// Where the `origins` evaluation windows of a series of `len` samples start, newest first:
/// the last a horizon before the end, each earlier one `spacing` samples before the next.
/// `None` when the series is too short for all of them.
fn origin_positions(
    len: usize,
    horizon: usize,
    spacing: usize,
    origins: usize,
) -> Option<Vec<usize>> {
    (0..origins)
        .map(|k| len.checked_sub(horizon + k * spacing))
        .collect()
}

/// Runs selection and every candidate on `history`, scores them on `actual`.
fn evaluate_window(
    history: &[f64],
    actual: &[f64],
    (ctx, step): (&Context, i64),
    out: &mut SeriesScores,
) -> Option<()> {
    if select::fallback(history).is_some() {
        return None;
    }
    let raw = history;
    let cleaned = spikes::clean(history, ctx.backtest_span(), ctx.season).0;
    let history = &cleaned[..];
    let clock = Instant::now();
    let select::Selected {
        selection, windows, ..
    } = select::select(history, ctx);
    let selection_seconds = clock.elapsed().as_secs_f64();
    let (paths, seconds) = timed_paths(history, ctx, &selection);
    let naive = paths.get(&Method::SeasonalNaive)?;
    // Seasonal naive on the raw history: the value one season before each step.
    let raw_naive: Vec<f64> = (0..actual.len())
        .map(|h| match raw.len().checked_sub(ctx.season) {
            Some(at) if ctx.season > 0 => raw[at + h % ctx.season],
            _ => raw.last().copied().unwrap_or(0.0),
        })
        .collect();
    let yard = Yardstick {
        actual,
        naive_mae: mae(&naive.point, actual),
        raw_naive_mae: mae(&raw_naive, actual),
        scale: mase_scale(
            history,
            if history.len() > ctx.season {
                ctx.season
            } else {
                1
            },
        ),
    };
    for (m, p) in &paths {
        let offset = calibrate::offset(&windows, *m, ctx.q);
        let t = seconds.get(m).copied().unwrap_or(0.0);
        out.methods
            .entry(*m)
            .or_default()
            .push(yard.score(p, offset, t));
    }
    let chosen = match shift::last_shift(raw, step) {
        // As a planning run would: the forecast from the history since the shift.
        Some(at) => {
            let clock = Instant::now();
            let (method, path, offset) = since_shift(&raw[at..], ctx);
            let t = clock.elapsed().as_secs_f64();
            (method, path, offset, t)
        }
        None => {
            let t = selection_seconds + seconds.get(&selection.method).copied().unwrap_or(0.0);
            let path = paths.get(&selection.method)?.clone();
            (selection.method, path, selection.offset, t)
        }
    };
    out.selected.push(yard.score(&chosen.1, chosen.2, chosen.3));
    out.choices.push(chosen.0);
    if out.keep {
        out.kept.push(Kept {
            history: raw.to_vec(),
            actual: actual.to_vec(),
            selected: chosen.1.point,
        });
    }
    Some(())
}

/// The method, path and offset a planning run uses on the history since a level shift.
fn since_shift(since: &[f64], ctx: &Context) -> (Method, Path, Option<f64>) {
    let flat = |d: super::Demand| Path {
        point: vec![d.mean; ctx.horizon],
        base: vec![d.quantile; ctx.horizon],
        spec: None,
    };
    if let Some(d) = select::fallback(since) {
        return (d.method, flat(d), None);
    }
    let selected = select::select(since, ctx);
    let selection = selected.selection;
    match select::refit(since, ctx, &selection, selected.ets) {
        Ok((path, _)) => (selection.method, path, selection.offset),
        Err(_) => {
            let peak = since.iter().fold(0.0, |m: f64, &v| m.max(v));
            let d = super::Demand::fixed(since, peak, Method::RecentPeak, String::new());
            (Method::RecentPeak, flat(d), None)
        }
    }
}

/// Every candidate's forecast from one origin with the seconds each took.
fn timed_paths(
    history: &[f64],
    ctx: &Context,
    selection: &Selection,
) -> (BTreeMap<Method, Path>, BTreeMap<Method, f64>) {
    let mut seconds = BTreeMap::new();
    let mut paths = BTreeMap::new();
    for c in select::candidates(history, ctx, &selection.periods, selection.spec.clone()) {
        let clock = Instant::now();
        if let Ok(p) = c.forecast(history, ctx.horizon, ctx.q) {
            if p.is_finite() {
                paths.insert(c.method(), p);
            }
        }
        seconds.insert(c.method(), clock.elapsed().as_secs_f64());
    }
    if let Some(e) = super::backtest::ensemble(&paths) {
        let members: f64 = super::backtest::ENSEMBLE
            .iter()
            .filter_map(|m| seconds.get(m))
            .sum();
        seconds.insert(Method::Ensemble, members);
        paths.insert(Method::Ensemble, e);
    }
    (paths, seconds)
}

/// What every method on one window is compared with.
pub struct Yardstick<'a> {
    /// The samples that followed the origin.
    pub actual: &'a [f64],
    /// MAE of seasonal naive on the same window.
    pub naive_mae: f64,
    /// MAE of seasonal naive on the raw (uncleaned) history.
    pub raw_naive_mae: f64,
    /// The MASE scale of the history before the window.
    pub scale: f64,
}

impl Yardstick<'_> {
    fn score(&self, path: &Path, offset: Option<f64>, seconds: f64) -> Score {
        let err = mae(&path.point, self.actual);
        let eps = 1e-9 * self.scale.max(1e-9);
        let quantile = calibrate::quantile_path(path, offset);
        Score {
            mase: err / self.scale.max(eps),
            rel: (err + eps) / (self.naive_mae + eps),
            rel_raw: (err + eps) / (self.raw_naive_mae + eps),
            hits: (coverage(&quantile, self.actual) * self.actual.len() as f64).round() as usize,
            steps: self.actual.len(),
            error: path
                .point
                .iter()
                .zip(self.actual)
                .map(|(p, a)| p.max(0.0) - a)
                .sum(),
            actual: self.actual.iter().sum(),
            seconds,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn score(rel: f64) -> Score {
        Score {
            mase: 1.0,
            rel,
            rel_raw: rel / 2.0,
            hits: 1,
            steps: 1,
            error: 0.0,
            actual: 1.0,
            seconds: 0.0,
        }
    }

    #[test]
    fn the_clipped_mean_bounds_each_window_and_the_raw_ratio_has_its_own() {
        let m = Metrics::of(&[score(4f64.exp()), score((-1f64).exp())]);
        assert!((m.rel_error_geomean - 1.5f64.exp()).abs() < 1e-9);
        assert!((m.rel_error_clipped_geomean - 0.5f64.exp()).abs() < 1e-9);
        assert!((m.rel_error_raw_geomean - 1.5f64.exp() / 2.0).abs() < 1e-9);
    }

    /// 24 origins 7 hours apart (84 samples of 5 minutes) span a week and start at every
    /// hour of the day once; too short a series has none.
    #[test]
    fn spaced_origins_reach_back_a_week_at_every_hour() {
        let len = 10 * 288;
        let at = origin_positions(len, 12, 84, 24).unwrap();
        assert_eq!(
            (at[0], at[1], at[23]),
            (len - 12, len - 96, len - 12 - 23 * 84)
        );
        let hours: std::collections::BTreeSet<usize> = at.iter().map(|&o| o / 12 % 24).collect();
        assert_eq!(hours.len(), 24);
        assert_eq!(origin_positions(100, 12, 84, 24), None);
    }

    /// The kept windows are the ones scored: the selection's ratio to seasonal naive on the
    /// raw history, recomputed from them alone, is the report's, and nothing is kept unasked.
    #[test]
    fn kept_windows_are_exactly_the_scored_ones() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/telemetry.csv");
        let t = Telemetry::read(std::path::Path::new(path)).unwrap();
        let settings = Settings::default();
        let (report, windows) = evaluate_windows(&t, &settings, (3, 60), None, true);
        assert_eq!(windows.len(), report.selected.windows);
        assert!(windows.len() >= 3);
        let season = (u64::from(settings.season_minutes) * 60) as usize;
        let logs: Vec<f64> = windows
            .iter()
            .map(|w| {
                assert_eq!(w.actual.len(), w.selected.len());
                let s = season / w.step_seconds as usize;
                let at = w.history.len() - s;
                let naive: Vec<f64> = (0..w.actual.len()).map(|h| w.history[at + h % s]).collect();
                // As `Yardstick::score`: a tiny floor scaled to the cleaned history.
                let ctx = Context::new(&settings, w.step_seconds);
                let cleaned = spikes::clean(&w.history, ctx.backtest_span(), ctx.season).0;
                let eps = 1e-9 * mase_scale(&cleaned, s).max(1e-9);
                ((mae(&w.selected, &w.actual) + eps) / (mae(&naive, &w.actual) + eps)).ln()
            })
            .collect();
        let geo = (logs.iter().sum::<f64>() / logs.len() as f64).exp();
        assert!((geo - report.selected.rel_error_raw_geomean).abs() < 1e-6 * geo);
        let (again, none) = evaluate_windows(&t, &settings, (3, 60), None, false);
        assert!(none.is_empty());
        assert_eq!(
            again.selected.rel_error_raw_geomean,
            report.selected.rel_error_raw_geomean
        );
    }
}
