//! The plan: a reviewable, tamper-evident TOML file of actions with their reasons.
//!
//! A plan is built from a problem and a solution, written with a digest over
//! everything except the operators' `skip` flags, and read back only through
//! [`Plan::verify`], which refuses tampered, expired, stale or already applied
//! plans. The executor accepts nothing but the [`VerifiedPlan`] that returns.

mod action;
mod build;
mod io;
mod order;
mod review;
mod verify;

pub use action::{Action, Change, Kind};
pub use build::Inputs;

use crate::resource::Resource;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Why a plan file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: plan was modified after it was written (digest {found} does not match its content {expected}); only `skip` may be edited")]
    Tampered {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("{path}: plan expired at {expires_at} (now {now}); run `chameleon plan` again")]
    Expired {
        path: PathBuf,
        expires_at: String,
        now: String,
    },
    #[error("{path}: plan is stale: it was made for fleet {planned} but the fleet is now {current}; run `chameleon plan` again")]
    Stale {
        path: PathBuf,
        planned: String,
        current: String,
    },
    #[error("{path}: plan {id} was already applied to this fleet; nothing to do")]
    AlreadyApplied { path: PathBuf, id: String },
    #[error("{path}: plan was made at {created_at}, after now ({now}); check --now or the clock")]
    Early {
        path: PathBuf,
        created_at: String,
        now: String,
    },
}

/// The telemetry a plan was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySummary {
    pub file: String,
    pub history_start: String,
    pub history_end: String,
    pub samples: usize,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Grid slots without a sample, interpolated before forecasting.
    #[serde(default)]
    pub gaps_filled: usize,
}

/// The forecasts a plan was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastSummary {
    pub quantile: f64,
    pub horizon_minutes: u32,
    /// How many series each method forecast.
    pub methods: BTreeMap<String, usize>,
}

/// Solver statistics; `solve_seconds` only for live runs (not pinned with `--now`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SolverSummary {
    pub status: String,
    pub objective: f64,
    pub best_bound: f64,
    pub gap: f64,
    pub variables: usize,
    pub constraints: usize,
    /// Independent parts solved (cells, and POP partitions of large cells).
    pub parts: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solve_seconds: Option<f64>,
    /// Intervals planned jointly (`--lookahead`); this plan holds only the first. Absent for 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookahead_intervals: Option<u32>,
    /// The part of `objective` from the later intervals, with look-ahead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective_later: Option<f64>,
}

/// Plan-wide totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    /// Predicted shortfall in cost units (1 core, 1 GiB, 100 Mbps), before and after.
    pub shortfall_before: f64,
    pub shortfall_after: f64,
    pub objective_before: f64,
    pub changes: usize,
    pub migrations: usize,
    pub swaps: usize,
    pub bytes_moved: u64,
    pub credits_moved: f64,
}

/// The plan header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub id: String,
    pub created_at: String,
    pub expires_at: String,
    pub interval_minutes: u32,
    /// `mip` or `greedy`.
    pub strategy: String,
    /// sha256 of the fleet state the plan was made against.
    pub fleet_fingerprint: String,
    /// sha256 of this plan with `digest` empty and every `skip` false.
    pub digest: String,
    pub telemetry: TelemetrySummary,
    pub forecast: ForecastSummary,
    pub solver: SolverSummary,
    pub totals: Totals,
}

/// A plan file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub plan: Header,
    #[serde(default, rename = "action")]
    pub actions: Vec<Action>,
    /// The forecasts the plan used, for accuracy feedback (`chameleon forecast --evaluate --plans`).
    #[serde(default, rename = "forecast", skip_serializing_if = "Vec::is_empty")]
    pub forecasts: Vec<ForecastRecord>,
}

/// One series' forecast as a plan used it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastRecord {
    pub instance: String,
    pub resource: Resource,
    pub method: String,
    /// The quantile of the peak over the horizon.
    pub quantile: f64,
    /// The mean point forecast over the horizon.
    pub mean: f64,
    pub last: f64,
}

/// A plan that passed [`Plan::verify`] against the current fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedPlan(Plan);

impl VerifiedPlan {
    /// The verified plan.
    pub fn plan(&self) -> &Plan {
        &self.0
    }

    /// When the plan was made: the time its changes are stamped with.
    pub fn created_at(&self) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&self.0.plan.created_at)
            .expect("checked by verify")
            .with_timezone(&Utc)
    }
}

impl Plan {
    /// Whether the plan proposes any change.
    pub fn has_changes(&self) -> bool {
        !self.actions.is_empty()
    }
}
