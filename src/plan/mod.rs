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
    /// Reading or parsing the plan file failed.
    #[error(transparent)]
    File(#[from] crate::file::FileError),
    /// The plan was edited beyond `skip` after it was written.
    #[error("{path}: plan was modified after it was written (digest {found} does not match its content {expected}); only `skip` may be edited")]
    Tampered {
        /// The plan file.
        path: PathBuf,
        /// The digest of the plan's content.
        expected: String,
        /// The digest written in the plan.
        found: String,
    },
    /// The plan's expiry time has passed.
    #[error("{path}: plan expired at {expires_at} (now {now}); run `chameleon plan` again")]
    Expired {
        /// The plan file.
        path: PathBuf,
        /// When the plan expired.
        expires_at: String,
        /// The current time.
        now: String,
    },
    /// The fleet changed since the plan was made.
    #[error("{path}: plan is stale: it was made for fleet {planned} but the fleet is now {current}; run `chameleon plan` again")]
    Stale {
        /// The plan file.
        path: PathBuf,
        /// The fingerprint of the fleet the plan was made for.
        planned: String,
        /// The fingerprint of the fleet now.
        current: String,
    },
    /// The plan was already applied to this fleet.
    #[error("{path}: plan {id} was already applied to this fleet; nothing to do")]
    AlreadyApplied {
        /// The plan file.
        path: PathBuf,
        /// The plan's id.
        id: String,
    },
    /// The plan was made after the current time.
    #[error("{path}: plan was made at {created_at}, after now ({now}); check --now or the clock")]
    Early {
        /// The plan file.
        path: PathBuf,
        /// When the plan was made.
        created_at: String,
        /// The current time.
        now: String,
    },
}

/// The telemetry a plan was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySummary {
    /// The telemetry file's name, without its directory.
    pub file: String,
    /// RFC 3339 UTC time of the oldest sample used, over all series; empty if none was.
    pub history_start: String,
    /// RFC 3339 UTC time of the newest sample used, over all series; empty if none was.
    pub history_end: String,
    /// Samples used, over all series.
    pub samples: usize,
    /// Rows that repeated a timestamp of their series; the last value was kept.
    pub duplicates: u64,
    /// Rows older than an earlier row of their series; series are sorted before use.
    pub out_of_order: u64,
    /// Grid slots without a sample, interpolated before forecasting.
    #[serde(default)]
    pub gaps_filled: usize,
}

/// The forecasts a plan was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastSummary {
    /// The quantile demand was forecast at (`[forecast] quantile`), such as 0.9 for p90.
    pub quantile: f64,
    /// How far each forecast looks ahead, in minutes.
    pub horizon_minutes: u32,
    /// How many series each method forecast.
    pub methods: BTreeMap<String, usize>,
}

/// Solver statistics; `solve_seconds` only for live runs (not pinned with `--now`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SolverSummary {
    /// How the solve ended: `optimal`, `time_limit`, `time_limit_greedy_fallback` or
    /// `heuristic` (no solver ran).
    pub status: String,
    /// The plan's objective: the weighted cost (`[weights]`) the optimiser minimises.
    pub objective: f64,
    /// A proven lower bound on `objective`: HiGHS' own for a plan solved whole, the LP
    /// relaxation of the whole program widened to every migration the parts and the plan
    /// make for a plan solved in parts (`[solver] bound_instances`). Absent when no solver
    /// ran or no bound was solved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_bound: Option<f64>,
    /// Relative distance from `objective` down to `best_bound` (0.01 is 1%); absent with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gap: Option<f64>,
    /// Columns of the program, summed over parts; 0 when no solver ran.
    pub variables: usize,
    /// Rows of the program, summed over parts; 0 when no solver ran.
    pub constraints: usize,
    /// Independent parts solved (cells, and POP partitions of large cells).
    pub parts: usize,
    /// Wall-clock seconds spent solving.
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
    /// Predicted shortfall in cost units once the plan is applied.
    pub shortfall_after: f64,
    /// The objective of leaving the fleet unchanged, to set against `solver.objective`.
    pub objective_before: f64,
    /// Instances the plan changes (resized, swapped or migrated; pools not counted).
    pub changes: usize,
    /// Instances the plan migrates.
    pub migrations: usize,
    /// Donor → receiver swaps.
    pub swaps: usize,
    /// Memory copied by migrations, in bytes.
    pub bytes_moved: u64,
    /// Credits paid by swap receivers to their donors.
    pub credits_moved: f64,
}

/// The plan header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    /// Creation time and digest prefix, as `20240307T000000Z-321f2a49`.
    pub id: String,
    /// RFC 3339 UTC time the plan was made (`--now`); its changes are stamped with it.
    pub created_at: String,
    /// RFC 3339 UTC time from which `apply` refuses the plan (`plan_ttl_minutes` later).
    pub expires_at: String,
    /// Minutes between plans, from the model file.
    pub interval_minutes: u32,
    /// `mip` or `greedy`.
    pub strategy: String,
    /// sha256 of the fleet state the plan was made against.
    pub fleet_fingerprint: String,
    /// sha256 of this plan with `digest` empty and every `skip` false.
    pub digest: String,
    /// `[plan.telemetry]`: the history the forecasts were made from.
    pub telemetry: TelemetrySummary,
    /// `[plan.forecast]`: how demand was forecast.
    pub forecast: ForecastSummary,
    /// `[plan.solver]`: how the solve ended.
    pub solver: SolverSummary,
    /// `[plan.totals]`: what the plan changes and what that buys.
    pub totals: Totals,
}

/// A plan file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// The `[plan]` header.
    pub plan: Header,
    /// The changes, one `[[action]]` table each; `depends_on`, not file order, decides what runs
    /// first.
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
    /// The instance's id.
    pub instance: String,
    /// The resource forecast.
    pub resource: Resource,
    /// The forecasting method used, as `seasonal_naive`.
    pub method: String,
    /// The quantile of the peak over the horizon.
    pub quantile: f64,
    /// The mean point forecast over the horizon.
    pub mean: f64,
    /// The last observed value, in the resource's unit.
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
