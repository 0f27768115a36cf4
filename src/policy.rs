//! The planning model file (`models/*.toml`): every knob of the optimisation.
//!
//! Granularity, cost weights, credit prices, forecast settings, solver limits
//! and disruption budgets live in one reviewed file, so a plan can always be
//! traced back to the numbers that produced it. Unknown keys are errors.

use crate::file::{key_line, parse_toml, FileError};
use crate::forecast;
use crate::pools::targets::PoolSettings;
use crate::resource::{PerResource, Resource};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// The whole planning model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Minutes between planning runs; the window each plan covers.
    pub interval_minutes: u32,
    /// A plan expires this many minutes after it is created.
    pub plan_ttl_minutes: u32,
    /// Plan this many intervals jointly and emit only the first (1: this interval alone).
    /// Each interval is then provisioned for its own part of the forecast horizon.
    #[serde(default = "one")]
    pub lookahead_intervals: u32,
    /// Allocations change in whole steps of this size.
    pub granularity: PerResource<f64>,
    /// The size of one cost unit per resource (1 core, 1 GiB, 100 Mbps by default).
    pub unit: PerResource<f64>,
    /// Objective weights (`[weights]`).
    pub weights: Weights,
    /// Credits a receiver pays a donor per cost unit swapped, per hour of the interval.
    pub credit_price: PerResource<f64>,
    /// How demand is forecast (`[forecast]`).
    pub forecast: forecast::Settings,
    /// HiGHS limits and partitioning into parts (`[solver]`).
    pub solver: SolverLimits,
    /// Limits on churn: change budgets, hysteresis, cool-down (`[disruption]`).
    pub disruption: Disruption,
    /// Which migrations the optimiser considers (`[migration]`).
    pub migration: Migration,
    /// Warm pools: predicting their targets from job history and pricing them.
    #[serde(default)]
    pub pools: PoolSettings,
}

/// Objective weights, all per cost unit of their quantity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    /// Per unit of predicted demand above allocation.
    pub shortfall: f64,
    /// Fixed disruption cost per changed instance.
    pub change: f64,
    /// Fixed cost per donor → receiver swap (cache invalidation), on top of `change`.
    /// Zero leaves pairing to after the solve, with fewer variables.
    #[serde(default)]
    pub swap: f64,
    /// Per unit resized or swapped.
    pub unit_move: f64,
    /// Per GiB of memory moved by a migration inside a cell.
    pub migration_per_gib: f64,
    /// Multiplier on migration cost when crossing cells.
    pub cross_cell_factor: f64,
    /// Per unit of allocation above predicted demand.
    pub idle: f64,
}

/// HiGHS limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SolverLimits {
    /// Wall-clock limit of each HiGHS solve (each part, the rescue, and the bound's LP), in
    /// seconds.
    pub time_limit_seconds: f64,
    /// HiGHS stops once its relative gap to the best bound is at most this (1e-4 = 0.01%).
    pub relative_gap: f64,
    /// 1 keeps solves reproducible.
    pub threads: u32,
    /// Split cells larger than this many instances into independently solved parts (0: never).
    pub partition_instances: usize,
    /// A plan solved in parts gets a proven bound, the widened LP of
    /// [`crate::solve::decompose::bound`], on fleets of up to this many instances (0: never);
    /// larger ones report none. At 10,000 instances it costs up to a few times the solve, within
    /// `time_limit_seconds`.
    #[serde(default = "bound_instances")]
    pub bound_instances: usize,
}

fn bound_instances() -> usize {
    2_000
}

/// How much one plan may change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Disruption {
    /// At most this many instances change per interval.
    pub max_changes: usize,
    /// At most this many instances change on any one host.
    pub max_changes_per_host: usize,
    /// At most this many migrations per interval.
    pub max_migrations: usize,
    /// At most this share of the fleet's instances change per interval, in percent.
    pub max_changes_percent: f64,
    /// Hysteresis: a shrink moves by at least this much or not at all (one step on a tight
    /// host); a grow has no minimum (docs/decisions.md#grow-without-hysteresis).
    pub min_change: PerResource<f64>,
    /// An instance changed less than this many minutes ago is left alone, unless its
    /// forecast exceeds its allocation.
    pub cooldown_minutes: u32,
}

impl Disruption {
    /// The number of instances that may change among `instances`: the tighter of the
    /// absolute and the percentage budget.
    pub fn change_limit(&self, instances: usize) -> usize {
        let share = (self.max_changes_percent / 100.0 * instances as f64 + 1e-9).floor();
        self.max_changes.min(share as usize)
    }
}

/// Which migrations the optimiser may consider.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Migration {
    /// Candidate hosts per instance besides its own (0 disables migration).
    pub candidates: usize,
    /// Whether instances may migrate across cells; without it each cell is its own program.
    pub allow_cross_cell: bool,
}

fn one() -> u32 {
    1
}

impl Default for Policy {
    fn default() -> Self {
        toml::from_str(DEFAULT).expect("the built-in model file is valid")
    }
}

/// The shipped `models/default.toml`, also the built-in default.
pub const DEFAULT: &str = include_str!("../models/default.toml");

impl Policy {
    /// Reads and validates a planning model file.
    pub fn read(path: &Path) -> Result<Policy, FileError> {
        Self::parse(path, &crate::file::read(path)?)
    }

    /// Reads `path`, or returns the built-in default when there is none.
    pub fn load(path: Option<&Path>) -> Result<Policy, FileError> {
        path.map_or_else(|| Ok(Policy::default()), Policy::read)
    }

    /// Parses and validates model TOML; `path` is used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Policy, FileError> {
        let policy: Policy = parse_toml(path, text)?;
        policy
            .validate()
            .map_err(|(key, m)| FileError::invalid(path, key_line(text, key).unwrap_or(1), m))?;
        Ok(policy)
    }

    fn validate(&self) -> Result<(), (&'static str, String)> {
        let positive = |v: f64| v.is_finite() && v > 0.0;
        let non_negative = |v: f64| v.is_finite() && v >= 0.0;
        let per_resource = [
            (
                "granularity",
                &self.granularity,
                positive as fn(f64) -> bool,
                "> 0",
            ),
            ("unit", &self.unit, positive, "> 0"),
            ("credit_price", &self.credit_price, non_negative, ">= 0"),
            (
                "min_change",
                &self.disruption.min_change,
                non_negative,
                ">= 0",
            ),
        ];
        for (key, values, ok, bound) in per_resource {
            if let Some((r, v)) = values.iter().find(|(_, v)| !ok(**v)) {
                return Err((
                    key,
                    format!("{key}.{r} = {v} must be a finite number {bound}"),
                ));
            }
        }
        let w = &self.weights;
        // Finite, and small enough that HiGHS can still price a plan with them.
        let weights = [
            ("shortfall", w.shortfall),
            ("change", w.change),
            ("unit_move", w.unit_move),
            ("swap", w.swap),
            ("migration_per_gib", w.migration_per_gib),
            ("idle", w.idle),
        ];
        if let Some((key, v)) = weights
            .into_iter()
            .find(|(_, v)| !(non_negative(*v) && *v <= 1e9))
        {
            return Err((key, format!("weights.{key} = {v} must be from 0 to 1e9")));
        }
        if !(w.cross_cell_factor.is_finite() && w.cross_cell_factor >= 1.0) {
            let v = w.cross_cell_factor;
            return Err((
                "cross_cell_factor",
                format!("weights.cross_cell_factor = {v} must be a finite number >= 1"),
            ));
        }
        let s = &self.solver;
        if !(positive(s.time_limit_seconds) && s.time_limit_seconds <= 86_400.0) {
            let v = s.time_limit_seconds;
            let m = format!("solver.time_limit_seconds = {v} must be > 0 and at most 86400");
            return Err(("time_limit_seconds", m));
        }
        if !(non_negative(s.relative_gap) && s.relative_gap <= 1.0) {
            let v = s.relative_gap;
            return Err((
                "relative_gap",
                format!("solver.relative_gap = {v} must be from 0 to 1"),
            ));
        }
        if !(1..=256).contains(&s.threads) {
            let v = s.threads;
            return Err((
                "threads",
                format!("solver.threads = {v} must be from 1 to 256"),
            ));
        }
        let pct = self.disruption.max_changes_percent;
        if !(pct.is_finite() && (0.0..=100.0).contains(&pct)) {
            return Err((
                "max_changes_percent",
                format!("max_changes_percent = {pct} must be a number from 0 to 100"),
            ));
        }
        self.forecast.validate()?;
        self.pools.validate()?;
        for (key, v) in [
            ("interval_minutes", self.interval_minutes),
            ("plan_ttl_minutes", self.plan_ttl_minutes),
        ] {
            if !(1..=7 * 1440).contains(&v) {
                return Err((key, format!("{key} = {v} must be from 1 to 10080 (a week)")));
            }
        }
        self.check_lookahead()
            .map_err(|m| ("lookahead_intervals", m))?;
        Ok(())
    }

    /// Plans `n` intervals jointly from now on (the `--lookahead` option), if they fit in
    /// the forecast horizon.
    pub fn set_lookahead(&mut self, n: u32) -> Result<(), String> {
        self.lookahead_intervals = n;
        self.check_lookahead()
    }

    fn check_lookahead(&self) -> Result<(), String> {
        let (n, horizon) = (self.lookahead_intervals, self.forecast.horizon_minutes);
        if n == 0 || u64::from(n) * u64::from(self.interval_minutes) > u64::from(horizon) {
            return Err(format!(
                "lookahead_intervals = {n} must be at least 1, and {n} intervals of {} minutes \
                 must fit in forecast.horizon_minutes = {horizon}",
                self.interval_minutes
            ));
        }
        Ok(())
    }

    /// Hysteresis in whole steps of `r`: the smallest change allowed (at least one step).
    pub fn min_steps(&self, r: Resource) -> f64 {
        (self.disruption.min_change[r] / self.granularity[r] - 1e-9)
            .ceil()
            .max(1.0)
    }

    /// Hours in one planning interval.
    pub fn interval_hours(&self) -> f64 {
        f64::from(self.interval_minutes) / 60.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_file_parses() {
        let p = Policy::default();
        assert_eq!(p.granularity.cpu, 0.25);
        assert_eq!(p.forecast.quantile, 0.9);
    }

    #[test]
    fn change_limit_is_the_tighter_budget() {
        let mut d = Policy::default().disruption;
        (d.max_changes, d.max_changes_percent) = (50, 50.0);
        assert_eq!(d.change_limit(12), 6);
        assert_eq!(d.change_limit(1000), 50);
        d.max_changes_percent = 0.0;
        assert_eq!(d.change_limit(1000), 0);
    }

    #[test]
    fn hysteresis_is_whole_steps_of_at_least_one() {
        let mut p = Policy::default();
        p.disruption.min_change.cpu = 0.6; // granularity 0.25: 3 steps
        p.disruption.min_change.mem = 0.0;
        assert_eq!(p.min_steps(Resource::Cpu), 3.0);
        assert_eq!(p.min_steps(Resource::Mem), 1.0);
        let text = DEFAULT.replace("max_changes_percent = 50.0", "max_changes_percent = 150.0");
        let e = Policy::parse(Path::new("m.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("max_changes_percent = 150"), "{e}");
    }

    #[test]
    fn rejects_bad_values_with_line() {
        let text = DEFAULT.replace("quantile = 0.9", "quantile = 1.5");
        let e = Policy::parse(Path::new("m.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("m.toml:31:") && e.contains("quantile = 1.5"),
            "{e}"
        );
        let text = DEFAULT.replace("threads = 1", "threads = \"many\"");
        let e = Policy::parse(Path::new("m.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid type"), "{e}");
    }

    #[test]
    fn rejects_non_finite_and_negative_numbers_at_their_line() {
        let cases = [
            (
                "cross_cell_factor = 3.0",
                "cross_cell_factor = nan",
                "cross_cell_factor",
                "= NaN must be",
            ),
            (
                "time_limit_seconds = 30.0",
                "time_limit_seconds = -1.0",
                "time_limit_seconds",
                "time_limit_seconds = -1 must be > 0",
            ),
            (
                "cpu = 60.0",
                "cpu = -60.0",
                "credit_price",
                "credit_price.cpu = -60",
            ),
            (
                "cpu = 0.25",
                "cpu = 0.0",
                "granularity",
                "granularity.cpu = 0 must be",
            ),
            (
                "shrink_floor_quantile = 0.9",
                "shrink_floor_quantile = 1.5",
                "shrink_floor_quantile",
                "shrink_floor_quantile = 1.5 must be in (0, 1]",
            ),
        ];
        for (from, to, key, what) in cases {
            let text = DEFAULT.replacen(from, to, 1);
            let line = 1 + text.lines().position(|l| l.starts_with(key)).unwrap();
            let e = Policy::parse(Path::new("m.toml"), &text)
                .unwrap_err()
                .to_string();
            assert!(
                e.starts_with(&format!("m.toml:{line}: ")) && e.contains(what),
                "{e}"
            );
        }
    }
}
