//! One planning run: load and cross-check the inputs, forecast, and solve with a strategy.
//!
//! `plan` and `compare` share this path, so both see exactly the same
//! forecasts and problem. Cross-file checks live here: telemetry naming an
//! instance the fleet does not have is an error at the line where it appears.

use crate::file::FileError;
use crate::fleet::ledger::Ledger;
use crate::fleet::lock::FleetLock;
use crate::fleet::Fleet;
use crate::forecast::state::State;
use crate::forecast::Forecasts;
use crate::jobs::JobsError;
use crate::named::named_enum;
use crate::policy::Policy;
use crate::pools::targets;
use crate::problem::{Problem, Solution};
use crate::profile::Book;
use crate::solve::decompose;
use crate::solve::greedy;
use crate::solve::mip::{SolveError, SolveStatus, SolverStats};
use crate::telemetry::{Telemetry, TelemetryError};
use crate::units::rfc3339;
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Why a planning run could not start or finish.
#[derive(Debug, thiserror::Error)]
pub enum PlannerError {
    /// Reading, writing or parsing a file failed.
    #[error(transparent)]
    File(#[from] FileError),
    /// The telemetry could not be read.
    #[error(transparent)]
    Telemetry(#[from] TelemetryError),
    /// The solver failed.
    #[error("{fleet}: {source}")]
    Solve {
        /// The fleet file.
        fleet: PathBuf,
        /// The solver's error.
        #[source]
        source: SolveError,
    },
    /// The jobs could not be read.
    #[error(transparent)]
    Jobs(#[from] JobsError),
    /// The telemetry names an instance the fleet does not have.
    #[error("{path}:{line}: unknown instance `{instance}` (not in {fleet})")]
    UnknownInstance {
        /// The telemetry file.
        path: PathBuf,
        /// The line that names it.
        line: u64,
        /// The instance's name.
        instance: String,
        /// The fleet file.
        fleet: PathBuf,
    },
    /// The telemetry has no samples in the forecast's history window.
    #[error(
        "{path}: no samples in the {days} days before {now}: telemetry is stale or --now is wrong"
    )]
    StaleTelemetry {
        /// The telemetry file.
        path: PathBuf,
        /// The history window, in days.
        days: u32,
        /// The current time.
        now: String,
    },
    /// The `--lookahead` option is invalid; the message says how.
    #[error("--lookahead: {0}")]
    Lookahead(String),
    /// The fleet lock was not taken.
    #[error(transparent)]
    Lock(#[from] crate::fleet::lock::LockError),
    /// The ledger refused the operation.
    #[error(transparent)]
    Ledger(#[from] crate::fleet::ledger::LedgerError),
}

named_enum!(
    /// A planning strategy, by the name written into plans.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Strategy: "planning strategy" {
        /// The joint mixed-integer program, solved with HiGHS.
        Mip = "mip",
        /// The seed's greedy `decide_swap`.
        Greedy = "greedy",
    }
);

impl Strategy {
    /// Solves `p`; the MIP is warm-started from greedy (per part), so it is never worse.
    pub fn solve(self, p: &Problem) -> Result<(Solution, SolverStats), SolveError> {
        match self {
            Strategy::Mip => decompose::solve_mip(p),
            Strategy::Greedy => {
                let clock = Instant::now();
                let greedy = greedy::solve(p);
                let seconds = clock.elapsed().as_secs_f64();
                let stats = SolverStats::heuristic(p, &greedy, SolveStatus::Heuristic, seconds);
                Ok((greedy, stats))
            }
        }
    }
}

/// Where a run's inputs come from.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInputs {
    /// Fleet state file (TOML): hosts, instances, pools and credit balances.
    pub fleet: PathBuf,
    /// Canonical telemetry CSV (`timestamp,instance,resource,value`).
    pub telemetry: PathBuf,
    /// Planning model file (default: the built-in models/default.toml).
    pub model: Option<PathBuf>,
    /// Warm-instance target per pool (`web = 3`), brought by the operator; overrides
    /// the predicted target of each pool it names.
    pub pool_targets: Option<PathBuf>,
    /// A canonical jobs CSV: profile its users and predict each pool's warm target.
    pub jobs: Option<PathBuf>,
    /// Plan N intervals jointly and emit only the first (default: the model file's
    /// `lookahead_intervals`).
    pub lookahead: Option<u32>,
}

/// The loaded, cross-checked inputs of a run and the problem they define.
pub struct Run {
    /// Held for the whole run: no apply changes the fleet while it is planned for.
    _lock: FleetLock,
    /// The paths and options the run was given.
    pub inputs: RunInputs,
    /// The fleet state as read, before this run's plan.
    pub fleet: Fleet,
    /// Its path and ingest counts; the samples are dropped once forecast.
    pub telemetry: Telemetry,
    /// The planning model file (or the built-in default), with `--lookahead` applied.
    pub policy: Policy,
    /// Every series' demand, with the shrink floors, ceilings and recent peaks.
    pub forecasts: Forecasts,
    /// The problem to solve, with cool-downs and pool targets applied.
    pub problem: Problem,
    /// Seconds spent forecasting.
    pub forecast_seconds: f64,
    /// The model selection state, updated by this run's forecasts.
    pub state: State,
    /// The pools' user profiles, updated with `--jobs`.
    pub profiles: Option<Book>,
    /// The pool targets predicted from `--jobs`.
    pub predictions: Vec<targets::Prediction>,
    /// What was accepted but looks wrong, said on stderr before the plan is written.
    pub warnings: Vec<String>,
}

impl Run {
    /// Takes the fleet's lock (failing at once if an apply or another plan holds it),
    /// refuses a fleet with an unfinished apply, then loads fleet, telemetry and model
    /// file, checks them against each other and forecasts. The lock is held until the
    /// run is dropped, so a plan and its saved state come from one fleet state.
    pub fn prepare(inputs: &RunInputs, now: DateTime<Utc>) -> Result<Run, PlannerError> {
        let (fleet_path, telemetry_path) = (inputs.fleet.as_path(), inputs.telemetry.as_path());
        let model = inputs.model.as_deref();
        let lock = FleetLock::acquire(fleet_path, Duration::ZERO)?;
        Ledger::check_settled(fleet_path, &Ledger::default_path(fleet_path))?;
        let fleet = Fleet::read(fleet_path)?;
        fleet.check_changed_before(fleet_path, now)?;
        // What parsing the fleet's TOML freed goes back before the samples are read.
        release_freed_memory();
        let mut telemetry = Telemetry::read(telemetry_path)?;
        let mut policy = Policy::load(model)?;
        if let Some(n) = inputs.lookahead {
            policy.set_lookahead(n).map_err(PlannerError::Lookahead)?;
        }
        if let Some((instance, line)) = telemetry.first_unknown(&fleet) {
            return Err(PlannerError::UnknownInstance {
                path: telemetry_path.to_owned(),
                line,
                instance: instance.to_owned(),
                fleet: fleet_path.to_owned(),
            });
        }
        let mut state = match policy.forecast.state.as_str() {
            "" => State::default(),
            path => State::load(Path::new(path))?,
        };
        let clock = Instant::now();
        let forecasts = Forecasts::build_with_state(&telemetry, now, &policy.forecast, &mut state);
        let mut warnings = telemetry_warnings(&telemetry, now);
        // The samples are not needed once forecast; at fleet scale they are most of the memory.
        telemetry.series.clear();
        release_freed_memory();
        if forecasts.samples == 0 {
            return Err(PlannerError::StaleTelemetry {
                path: telemetry_path.to_owned(),
                days: policy.forecast.history_days,
                now: rfc3339(now),
            });
        }
        let forecast_seconds = clock.elapsed().as_secs_f64();
        let mut problem = Problem::new(&fleet, &forecasts, &policy);
        problem.apply_cooldown(&fleet, now);
        let mut targets = BTreeMap::new();
        let mut book = None;
        let mut predictions = Vec::new();
        if let Some(path) = &inputs.jobs {
            let jobs = crate::jobs::read(path)?;
            let mut profiles = match policy.pools.state.as_str() {
                "" => Book::default(),
                state => Book::load(Path::new(state))?,
            };
            let t = now.timestamp() as f64;
            profiles.update(&jobs, Some(t));
            let horizon =
                f64::from(policy.interval_minutes) * 60.0 + policy.pools.cold_start_seconds;
            predictions =
                targets::predict_targets(&profiles, &fleet, &jobs, t, horizon, &policy.pools);
            targets.extend(predictions.iter().map(|p| (p.pool.clone(), p.target)));
            let unknown: BTreeSet<&str> = jobs
                .iter()
                .map(|j| j.pool.as_str())
                .filter(|id| !fleet.pools.iter().any(|p| &p.id == id))
                .collect();
            if !unknown.is_empty() {
                let names: Vec<&str> = unknown.into_iter().collect();
                warnings.push(format!(
                    "{}: jobs of pool(s) not in the fleet were profiled but not planned: {}",
                    path.display(),
                    names.join(", ")
                ));
            }
            book = Some(profiles);
        }
        if let Some(path) = &inputs.pool_targets {
            targets.extend(targets::read_targets(path, &fleet)?);
        }
        if !targets.is_empty() {
            problem.set_pool_targets(&targets);
        }
        Ok(Run {
            _lock: lock,
            inputs: inputs.clone(),
            fleet,
            telemetry,
            policy,
            forecasts,
            problem,
            forecast_seconds,
            state,
            profiles: book,
            predictions,
            warnings,
        })
    }

    /// Solves the run's problem with `strategy`; an infeasible fleet is reported against its file.
    pub fn solve(&self, strategy: Strategy) -> Result<(Solution, SolverStats), PlannerError> {
        strategy
            .solve(&self.problem)
            .map_err(|source| PlannerError::Solve {
                fleet: self.inputs.fleet.clone(),
                source,
            })
    }

    /// Writes the updated selection state and profiles where the model file says
    /// (nowhere if empty).
    pub fn save_state(&self) -> Result<(), PlannerError> {
        if let (Some(book), false) = (&self.profiles, self.policy.pools.state.is_empty()) {
            book.save(Path::new(&self.policy.pools.state))?;
        }
        match self.policy.forecast.state.as_str() {
            "" => Ok(()),
            path => Ok(self.state.save(Path::new(path))?),
        }
    }
}

/// What the telemetry holds that the plan will not use, or that may be cut short.
fn telemetry_warnings(telemetry: &Telemetry, now: DateTime<Utc>) -> Vec<String> {
    let path = telemetry.path.display();
    let mut warnings = Vec::new();
    if let (n @ 1.., Some(latest)) = telemetry.after(now.timestamp()) {
        let latest = DateTime::from_timestamp(latest, 0).map_or(String::new(), rfc3339);
        warnings.push(format!(
            "{path}: {n} samples after --now {} (the latest at {latest}) were not used",
            rfc3339(now)
        ));
    }
    if let Some(line) = telemetry.stats.unended_line {
        warnings.push(format!(
            "{path}:{line}: the last line has no line end, as in a file cut while it was written; its row was read as it stands"
        ));
    }
    warnings
}

/// Hands memory freed so far back to the system. glibc keeps freed blocks for reuse by
/// the thread arena that freed them; without this, the samples read by worker threads
/// stayed resident while the main thread built the plan (peak 4.4 GB at 100k, 3.4 with).
fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free heap pages to the kernel; it has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::lock::LockError;

    #[test]
    fn a_run_holds_the_fleet_lock_and_refuses_a_held_one() {
        let dir = tempfile::tempdir().unwrap();
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
        let fleet = dir.path().join("fleet.toml");
        std::fs::copy(root.join("fleet.toml"), &fleet).unwrap();
        let inputs = RunInputs {
            fleet: fleet.clone(),
            telemetry: root.join("telemetry.csv"),
            model: None,
            pool_targets: None,
            jobs: None,
            lookahead: None,
        };
        let now = "2024-03-07T00:00:00Z".parse().unwrap();
        let held = FleetLock::acquire(&fleet, Duration::ZERO).unwrap();
        let Err(PlannerError::Lock(LockError::Busy { .. })) = Run::prepare(&inputs, now) else {
            panic!("a run started while the lock was held");
        };
        drop(held);
        let run = Run::prepare(&inputs, now).unwrap();
        assert!(matches!(
            FleetLock::acquire(&fleet, Duration::ZERO),
            Err(LockError::Busy { .. })
        ));
        drop(run);
        FleetLock::acquire(&fleet, Duration::ZERO).unwrap();
    }
}
