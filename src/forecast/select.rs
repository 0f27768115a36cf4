//! Model selection for one series: fallbacks, candidates, backtest, choice, refit.
//!
//! Selection is the expensive step (every candidate at every origin); its result,
//! a [`Selection`], is small and is what [`super::state`] persists so that later
//! runs only refit the chosen method.

use super::backtest::{self, Origins, Window};
use super::calibrate;
use super::method::{
    Candidate, Ets, Method, MstlEts, Path, RecentMean, SeasonalNaive, ShiftedNaive, Vpa,
};
use super::{Demand, Settings};
use augurs::seasons::{Detector as _, PeriodogramDetector};
use serde::{Deserialize, Serialize};

/// Below this many samples no model is fitted: the forecast is the recent peak.
pub const MIN_MODEL_SAMPLES: usize = 24;
/// ETS only sees the most recent day: a one-hour forecast does not need more, and a
/// fit on 96 blocks costs a third of one on 192.
const ETS_WINDOW_SECONDS: i64 = 86_400;
/// The VPA recommender's default histogram half-life.
const VPA_HALF_LIFE_SECONDS: i64 = 86_400;
/// Blocks per season for period detection: a power of two, so a season is one FFT bin.
const DETECT_BLOCKS_PER_SEASON: usize = 32;
/// A cheap candidate whose mean log error ratio to seasonal naive is at most this
/// (about 0.6× its error) is kept without fitting ETS or MSTL.
pub const SCREEN_SCORE: f64 = -0.5;
/// Detected periods within this relative distance of a day (or week) count as one.
const PERIOD_TOLERANCE: f64 = 0.1;

/// The chosen method of one series and what it takes to refit it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Selection {
    /// The method with the best backtest score.
    pub method: Method,
    /// MSTL periods in samples (empty when no season was detected).
    pub periods: Vec<usize>,
    /// The pinned ETS model, e.g. `ANN` or `AANd` (damped).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
    /// The conformal offset added to the point forecast (none: the method's own quantile).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<f64>,
    /// Why a restricted candidate set was used, or empty.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub note: String,
    /// A cheap candidate was good enough, so ETS and MSTL were not fitted (nor
    /// are they members of the ensemble).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub screened: bool,
}

/// What [`select`] found: the choice, the backtest windows behind it and the
/// full-history ETS forecast of the model search, which [`refit`] reuses
/// rather than fitting the same model to the same samples again.
pub struct Selected {
    /// The choice, as the selection state stores it.
    pub selection: Selection,
    /// The backtest windows it was chosen on (also what its offset was calibrated on).
    pub windows: Vec<Window>,
    /// AutoETS's forecast from the full history, when ETS was fitted.
    pub ets: Option<Path>,
}

/// One series' settings in samples.
#[derive(Debug, Clone, Copy)]
pub struct Context {
    /// Seconds between samples.
    pub step: i64,
    /// Samples forecast: the horizon, rounded up to whole samples.
    pub horizon: usize,
    /// Samples per season.
    pub season: usize,
    /// The quantile to forecast, `[forecast] quantile`.
    pub q: f64,
    /// Backtest origins, `[forecast] origins`.
    pub origins: usize,
    /// Samples between backtest origins.
    pub spacing: usize,
    /// Recent samples ETS is fitted on (a day's worth).
    pub ets_window: usize,
    /// The VPA histogram's half-life, in samples (24 h).
    pub half_life: usize,
    /// Samples per block for the augurs models (the fitting step).
    pub factor: usize,
}

impl Context {
    /// Converts the settings to samples of `step` seconds.
    pub fn new(settings: &Settings, seconds: i64) -> Context {
        let step = seconds.max(1).unsigned_abs();
        let samples = |minutes: u32| ((u64::from(minutes) * 60).div_ceil(step).max(1)) as usize;
        Context {
            step: seconds.max(1),
            horizon: samples(settings.horizon_minutes),
            season: (u64::from(settings.season_minutes) * 60 / step) as usize,
            q: settings.quantile,
            origins: settings.origins,
            spacing: samples(settings.origin_spacing_minutes),
            ets_window: (ETS_WINDOW_SECONDS.unsigned_abs() / step).max(1) as usize,
            half_life: (VPA_HALF_LIFE_SECONDS.unsigned_abs() / step).max(1) as usize,
            factor: (u64::from(settings.fit_step_minutes) * 60 / step).max(1) as usize,
        }
    }

    /// Whether the history covers two seasons and a horizon.
    fn seasonal(&self, n: usize) -> bool {
        self.season >= 2 && n >= 2 * self.season + self.horizon
    }

    /// Samples from the first backtest origin to the end: their spikes stay in.
    pub fn backtest_span(&self) -> usize {
        self.origins * self.spacing + self.horizon
    }

    fn origins(&self, n: usize) -> Origins {
        let seasonal = self.seasonal(n);
        Origins {
            count: self.origins,
            spacing: self.spacing,
            horizon: self.horizon,
            min_train: if seasonal {
                2 * self.season
            } else {
                MIN_MODEL_SAMPLES
            },
            season: if seasonal { self.season } else { 1 },
        }
    }
}

/// The forecast for series that cannot or need not be modelled, with the reason.
pub fn fallback(y: &[f64]) -> Option<Demand> {
    let n = y.len();
    if n == 0 {
        return Some(Demand::fixed(
            y,
            0.0,
            Method::RecentPeak,
            "no samples".into(),
        ));
    }
    if y.iter().all(|v| (v - y[0]).abs() <= 1e-9) {
        let what = if y[0] == 0.0 { "all-zero" } else { "constant" };
        let note = format!("{what} series: forecast is its value");
        return Some(Demand::fixed(y, y[0], Method::Constant, note));
    }
    if n < MIN_MODEL_SAMPLES {
        let note = format!("history {n} samples < {MIN_MODEL_SAMPLES}: recent peak");
        let peak = y.iter().fold(0.0, |m: f64, &v| m.max(v));
        return Some(Demand::fixed(y, peak, Method::RecentPeak, note));
    }
    None
}

/// The daily (and weekly) periods augurs' periodogram finds in `y`, in samples.
///
/// The periodogram resolves periods as FFT length / k, so the series is averaged
/// to 32 blocks a day (a day is then exactly one bin) and centred, so that the
/// lowest bin does not just pick up the level.
pub fn periods(y: &[f64], ctx: &Context) -> Vec<usize> {
    if !ctx.seasonal(y.len()) {
        return Vec::new();
    }
    let factor = (ctx.season / DETECT_BLOCKS_PER_SEASON).max(1);
    let blocks = super::grid::aggregate(y, factor);
    let mean = blocks.iter().sum::<f64>() / blocks.len().max(1) as f64;
    let centred: Vec<f64> = blocks.iter().map(|v| v - mean).collect();
    let detector = PeriodogramDetector::builder()
        .max_period((centred.len() / 2).min(u32::MAX as usize) as u32)
        .build();
    let found = detector.detect(&centred);
    let near = |target: usize| {
        found
            .iter()
            .any(|&p| (p as f64 * factor as f64 / target as f64 - 1.0).abs() <= PERIOD_TOLERANCE)
    };
    [ctx.season, 7 * ctx.season]
        .into_iter()
        .filter(|p| p % ctx.factor == 0)
        .filter(|&p| y.len() >= 2 * p + ctx.horizon && near(p))
        .collect()
}

/// The candidates for a series with these periods; `spec` pins the ETS model.
pub fn candidates(
    y: &[f64],
    ctx: &Context,
    periods: &[usize],
    spec: Option<String>,
) -> Vec<Box<dyn Candidate>> {
    let season = if ctx.seasonal(y.len()) { ctx.season } else { 1 };
    let mut out: Vec<Box<dyn Candidate>> = vec![
        Box::new(SeasonalNaive { season }),
        Box::new(Ets {
            window: ctx.ets_window,
            factor: ctx.factor,
            spec,
        }),
        Box::new(Vpa {
            half_life: ctx.half_life,
        }),
        Box::new(RecentMean),
    ];
    if season > 1 {
        out.push(Box::new(ShiftedNaive { season }));
    }
    if !periods.is_empty() {
        out.push(Box::new(MstlEts {
            periods: periods.to_vec(),
            factor: ctx.factor,
            window: ctx.ets_window,
        }));
    }
    out
}

/// Whether a candidate needs a model fit (milliseconds, not microseconds).
fn is_costly(m: Method) -> bool {
    matches!(m, Method::Ets | Method::MstlEts)
}

/// Whether a seasonal cheap candidate beat the recent mean in the backtest: only
/// then can MSTL's seasonal components pay for their fit.
fn seasonal_helps(windows: &[Window]) -> bool {
    let score = |m| backtest::score(windows, m).unwrap_or(f64::INFINITY);
    score(Method::SeasonalNaive).min(score(Method::ShiftedNaive)) < score(Method::RecentMean)
}

/// The method with the lowest mean log error ratio over `windows`.
fn best(windows: &[Window]) -> Option<(Method, f64)> {
    let methods = windows.first()?.paths.keys().copied();
    methods
        .filter_map(|m| Some((m, backtest::score(windows, m)?)))
        .min_by(|a, b| a.1.total_cmp(&b.1))
}

/// Backtests the candidates and keeps the one with the lowest mean log error ratio.
///
/// The cheap candidates go first; only where none of them has a score of at most
/// [`SCREEN_SCORE`] are ETS and MSTL fitted and added to the same windows.
pub fn select(y: &[f64], ctx: &Context) -> Selected {
    let periods = periods(y, ctx);
    let (cheap, costly): (Vec<_>, Vec<_>) = candidates(y, ctx, &periods, None)
        .into_iter()
        .partition(|c| !is_costly(c.method()));
    let mut windows = backtest::rolling(y, &cheap, &ctx.origins(y.len()), ctx.q);
    let screened = best(&windows).is_some_and(|(_, score)| score <= SCREEN_SCORE);
    let (mut spec, mut ets) = (None, None);
    if !screened {
        // AutoETS searches its model space once, on the full history; the backtest refits that model.
        ets = costly
            .iter()
            .find(|c| c.method() == Method::Ets)
            .and_then(|c| c.forecast(y, ctx.horizon, ctx.q).ok())
            .filter(Path::is_finite);
        spec = ets.as_ref().and_then(|p| p.spec.clone());
        let costly: Vec<_> = candidates(y, ctx, &periods, spec.clone())
            .into_iter()
            .filter(|c| match c.method() {
                Method::Ets => true,
                Method::MstlEts => seasonal_helps(&windows),
                _ => false,
            })
            .collect();
        backtest::extend(y, &mut windows, &costly, ctx.q);
    }
    let method = best(&windows).map_or(Method::Ets, |(m, _)| m);
    let note = if ctx.seasonal(y.len()) {
        String::new()
    } else {
        let needed = 2 * ctx.season + ctx.horizon;
        format!(
            "history {} samples < 2 seasons + horizon ({needed}): non-seasonal candidates",
            y.len()
        )
    };
    let selection = Selection {
        method,
        periods,
        spec,
        offset: calibrate::offset(&windows, method, ctx.q),
        note,
        screened,
    };
    Selected {
        selection,
        windows,
        ets,
    }
}

/// Refits the selected method on the whole history; the returned spec pins ETS next time.
///
/// `ets` is the ETS forecast on this same history, if one was already made.
pub fn refit(
    y: &[f64],
    ctx: &Context,
    selection: &Selection,
    ets: Option<Path>,
) -> Result<(Path, Option<String>), String> {
    let candidates = candidates(y, ctx, &selection.periods, selection.spec.clone());
    let needed: Vec<Box<dyn Candidate>> = candidates
        .into_iter()
        .filter(|c| uses(selection.method, c.method()))
        .filter(|c| !(selection.screened && is_costly(c.method())))
        .collect();
    let ets = ets.filter(|_| needed.iter().any(|c| c.method() == Method::Ets));
    let needed: Vec<_> = needed
        .into_iter()
        .filter(|c| !(ets.is_some() && c.method() == Method::Ets))
        .collect();
    let mut paths = backtest::forecast_all(y, &needed, ctx.horizon, ctx.q);
    if let Some(p) = ets {
        paths.insert(Method::Ets, p);
        paths.remove(&Method::Ensemble);
        if let Some(e) = backtest::ensemble(&paths) {
            paths.insert(Method::Ensemble, e);
        }
    }
    let spec = paths.get(&Method::Ets).and_then(|p| p.spec.clone());
    let path = paths
        .remove(&selection.method)
        .ok_or_else(|| format!("{} failed on the full history", selection.method.name()))?;
    Ok((path, spec))
}

/// Whether forecasting with `selected` needs candidate `c`.
fn uses(selected: Method, c: Method) -> bool {
    selected == c || (selected == Method::Ensemble && backtest::ENSEMBLE.contains(&c))
}
