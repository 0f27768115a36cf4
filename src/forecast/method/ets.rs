//! Exponential smoothing (augurs' AutoETS) on a day of aggregated samples, and MSTL with an
//! ETS trend for series with several seasons. The costly candidates: milliseconds a fit.

use super::{Candidate, Method, Path};
use crate::forecast::grid::aggregate;
use augurs::ets::model::{
    ErrorComponent, Model, ModelType, SeasonalComponent, TrendComponent, Unfit,
};
use augurs::ets::{AutoETS, FittedAutoETS};
use augurs::mstl::{FittedTrendModel, MSTLModel, TrendModel};
use augurs::{Fit, Forecast, Predict};
use std::borrow::Cow;

/// Non-seasonal AutoETS on the most recent `window` samples, averaged over blocks of
/// `factor` samples; `spec` pins the model.
pub struct Ets {
    /// Recent samples fitted (a day's worth).
    pub window: usize,
    /// Samples per block mean (the `fit_step_minutes` fitting step).
    pub factor: usize,
    /// The ETS model to refit, e.g. `ANN` or `AANd`; `None` searches with AutoETS.
    pub spec: Option<String>,
}

impl Candidate for Ets {
    fn method(&self) -> Method {
        Method::Ets
    }

    fn forecast(&self, y: &[f64], horizon: usize, q: f64) -> Result<Path, String> {
        let y = aggregate(&y[y.len().saturating_sub(self.window)..], self.factor);
        let steps = horizon.div_ceil(self.factor);
        let failed = |e: augurs::ets::Error| format!("ETS fit failed ({e})");
        let pinned = self
            .spec
            .as_deref()
            .and_then(|s| pinned_ets(s).ok()?.fit(&y).ok());
        let (mut path, spec) = match pinned {
            Some(m) => (predict(&m, steps, q)?, spec_of(&m)),
            None => {
                let fitted = additive_ets().fit(&y).map_err(failed)?;
                (predict(&fitted, steps, q)?, spec_of(fitted.model()))
            }
        };
        path = path.expand(self.factor, horizon);
        path.spec = Some(spec);
        Ok(path)
    }
}

/// The spec that pins `m` next time: its type plus `d` when damped.
pub(super) fn spec_of(m: &Model) -> String {
    format!("{}{}", m.model_type(), if m.damped() { "d" } else { "" })
}

/// AutoETS over the additive-error, non-seasonal models: a pinned one then refits
/// on any window, zeros included.
fn additive_ets() -> AutoETS {
    AutoETS::new(1, "AZN").expect("AZN is a valid spec")
}

/// One non-seasonal ETS model from a spec such as `ANN`, `AAN` or `AAN` + `d` (damped).
///
/// Built directly rather than as a one-model AutoETS: augurs 0.10's AutoETS
/// finds no model for a pinned `N` trend, so `ANN` would search again every time.
pub(super) fn pinned_ets(spec: &str) -> Result<Unfit, String> {
    let bad = || format!("bad ETS spec `{spec}`");
    let (body, damped) = match spec.strip_suffix('d') {
        Some(s) => (s, true),
        None => (spec, false),
    };
    let mut parts = body.chars();
    let error = match parts.next() {
        Some('A') => ErrorComponent::Additive,
        Some('M') => ErrorComponent::Multiplicative,
        _ => return Err(bad()),
    };
    let trend = match parts.next() {
        Some('N') => TrendComponent::None,
        Some('A') => TrendComponent::Additive,
        Some('M') => TrendComponent::Multiplicative,
        _ => return Err(bad()),
    };
    if parts.as_str() != "N" || (damped && trend == TrendComponent::None) {
        return Err(bad());
    }
    let season = SeasonalComponent::None;
    Ok(Unfit::new(ModelType {
        error,
        trend,
        season,
    })
    .damped(damped)
    // Only the one-step forecast enters the likelihood; the default 3 only adds AMSE bookkeeping.
    .nmse(1))
}

/// MSTL's trend model: non-seasonal ETS (pinned, or searched when `pinned` is
/// `None`) fitted on the last `window` values of the deseasonalised series only.
/// A one-hour forecast needs the recent trend, and fitting a week costs 3.5× as much.
#[derive(Debug)]
struct TrendEts {
    pinned: Option<Unfit>,
    window: usize,
}

#[derive(Debug)]
enum TrendFit {
    Pinned(Model),
    Searched(FittedAutoETS),
}

type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

impl TrendModel for TrendEts {
    fn name(&self) -> Cow<'_, str> {
        Cow::Borrowed("ETS")
    }

    fn fit(&self, y: &[f64]) -> Result<Box<dyn FittedTrendModel + Sync + Send>, BoxError> {
        let y = &y[y.len().saturating_sub(self.window)..];
        Ok(Box::new(match &self.pinned {
            Some(m) => TrendFit::Pinned(m.clone().fit(y)?),
            None => TrendFit::Searched(additive_ets().fit(y)?),
        }))
    }
}

impl FittedTrendModel for TrendFit {
    fn predict_inplace(
        &self,
        horizon: usize,
        level: Option<f64>,
        forecast: &mut Forecast,
    ) -> Result<(), BoxError> {
        match self {
            TrendFit::Pinned(m) => Ok(m.predict_inplace(horizon, level, forecast)?),
            TrendFit::Searched(m) => Ok(m.predict_inplace(horizon, level, forecast)?),
        }
    }

    fn predict_in_sample_inplace(
        &self,
        level: Option<f64>,
        forecast: &mut Forecast,
    ) -> Result<(), BoxError> {
        match self {
            TrendFit::Pinned(m) => Ok(m.predict_in_sample_inplace(level, forecast)?),
            TrendFit::Searched(m) => Ok(m.predict_in_sample_inplace(level, forecast)?),
        }
    }

    fn training_data_size(&self) -> Option<usize> {
        Some(match self {
            TrendFit::Pinned(m) => m.training_data_size(),
            TrendFit::Searched(m) => m.training_data_size(),
        })
    }
}

/// MSTL decomposes the last this many of its longest period.
const MSTL_SEASONS: usize = 3;

/// MSTL's trend model: level only. Over a one-hour horizon the deseasonalised
/// level is what matters; a trended model cost three times the CPU per fit (a
/// third of the cold path) and changed no selected forecast on the public traces.
const MSTL_TREND: &str = "ANN";

/// MSTL with the given periods and a level-only ETS trend (fitted on the last
/// `window` samples), on block means of `factor` samples (periods are multiples
/// of `factor`) over the last three longest periods.
pub struct MstlEts {
    /// Seasonal periods, in samples.
    pub periods: Vec<usize>,
    /// Samples per block mean (the `fit_step_minutes` fitting step).
    pub factor: usize,
    /// Samples of the deseasonalised series the trend is fitted on (a day's worth).
    pub window: usize,
}

impl Candidate for MstlEts {
    fn method(&self) -> Method {
        Method::MstlEts
    }

    fn forecast(&self, y: &[f64], horizon: usize, q: f64) -> Result<Path, String> {
        let periods: Vec<usize> = self.periods.iter().map(|p| p / self.factor).collect();
        // Three of the longest season are enough to estimate it, at under half the STL cost of a week.
        let keep = MSTL_SEASONS * self.periods.iter().max().copied().unwrap_or(0);
        let y = aggregate(&y[y.len().saturating_sub(keep)..], self.factor);
        let window = self.window.div_ceil(self.factor);
        let trend = |pinned| TrendEts { pinned, window };
        // Should the level-only fit fail, the trend model is searched.
        let fitted = pinned_ets(MSTL_TREND)
            .ok()
            .and_then(|t| MSTLModel::new(periods.clone(), trend(Some(t))).fit(&y).ok())
            .map_or_else(|| MSTLModel::new(periods, trend(None)).fit(&y), Ok)
            .map_err(|e| format!("MSTL fit failed ({e})"))?;
        let steps = horizon.div_ceil(self.factor);
        Ok(predict(&fitted, steps, q)?.expand(self.factor, horizon))
    }
}

/// Predicts `horizon` steps; the q-quantile is the matching bound of a two-sided interval.
fn predict(model: &impl Predict, horizon: usize, q: f64) -> Result<Path, String> {
    let level = (2.0 * q - 1.0).abs();
    let forecast = model
        .predict(horizon, (level > 0.0).then_some(level))
        .map_err(|e| format!("prediction failed ({e})"))?;
    let base = match forecast.intervals {
        Some(i) if q > 0.5 => i.upper,
        Some(i) => i.lower,
        None => forecast.point.clone(),
    };
    Ok(Path {
        point: forecast.point,
        base,
        spec: None,
    })
}
