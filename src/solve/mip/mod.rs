//! The optimiser (the seed's CARB, docs/glossary.md#carb): one mixed-integer program over the fleet.
//!
//! It chooses resizes in granularity steps, explicit donor → receiver swaps
//! paid for in credits, and migrations to pruned candidate hosts, minimising
//! predicted shortfall plus disruption, movement and idle costs (see
//! `docs/formats.md`). This module runs HiGHS on the program from
//! `formulation`, reports status, bound and gap, exports the exact model,
//! and explains infeasibility in terms of hosts and rows.

mod formulation;
#[cfg(test)]
pub(crate) use formulation::tests::host;
mod start;

pub use start::{host_budgets, plan as warm_start};

use crate::named::named_enum;
use crate::problem::{Problem, Solution};
use crate::resource::Resource;
use formulation::{build, read_solution, start_values, Decisions};
use good_lp::{highs, SolverModel};
use highs::{HighsModelStatus, HighsSolutionStatus};
use std::ffi::CString;
use std::path::Path;
use std::time::Instant;

/// Why the optimiser produced no plan.
#[derive(Debug, thiserror::Error)]
pub enum SolveError {
    /// No plan satisfies every constraint.
    #[error("the planning problem is infeasible:\n  {}", conflicts.join("\n  "))]
    Infeasible {
        /// The constraints that conflict.
        conflicts: Vec<String>,
    },
    /// HiGHS reported an error.
    #[error("HiGHS failed: {0}")]
    Solver(String),
    /// HiGHS stopped before it found any feasible plan.
    #[error("HiGHS stopped ({0}) before finding any feasible plan")]
    NoIncumbent(SolveStatus),
    /// Writing the model to a file failed.
    #[error("{path}: cannot export the model: {message}")]
    Export {
        /// The model file.
        path: std::path::PathBuf,
        /// Why it could not be written.
        message: String,
    },
}

named_enum!(
    /// How a plan's solve ended, as the plan's `solver.status` spells it.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum SolveStatus: "solver status" {
        /// Every part was solved to its gap.
        Optimal = "optimal",
        /// Some part stopped at its time limit with a feasible plan.
        TimeLimit = "time_limit",
        /// Some part stopped before HiGHS found any plan, and kept greedy's.
        GreedyFallback = "time_limit_greedy_fallback",
        /// No solver ran: greedy or a baseline's rule.
        Heuristic = "heuristic",
    }
);

/// What HiGHS reported, written into every plan.
#[derive(Debug, Clone, PartialEq)]
pub struct SolverStats {
    /// How the solve ended.
    pub status: SolveStatus,
    /// The plan's objective value, as the MIP prices it.
    pub objective: f64,
    /// A proven lower bound on the objective of every plan the solve could have made:
    /// HiGHS' own for one program, the widened LP of [`crate::solve::decompose::bound`]
    /// for a plan solved in parts. `None` when no solver ran or no bound was solved.
    pub best_bound: Option<f64>,
    /// Wall-clock seconds the solve took (the plan's `solve_seconds`).
    pub seconds: f64,
    /// Columns of the program, summed over parts.
    pub variables: usize,
    /// Rows of the program, summed over parts.
    pub constraints: usize,
    /// How many independent parts were solved (see [`crate::solve::decompose`]).
    pub parts: usize,
}

impl SolverStats {
    /// Relative distance to the bound: (objective − best bound) / |objective|, at least 0;
    /// `None` without a bound.
    pub fn gap(&self) -> Option<f64> {
        self.best_bound.map(|b| relative_gap(self.objective, b))
    }

    /// The figures of a plan no solver made (`status` says whose it is): its objective as
    /// assessed, and no bound.
    pub fn heuristic(p: &Problem, s: &Solution, status: SolveStatus, seconds: f64) -> SolverStats {
        let objective = p.assess(s).objective;
        SolverStats {
            status,
            objective,
            best_bound: None,
            seconds,
            variables: 0,
            constraints: 0,
            parts: 1,
        }
    }
}

/// The program loaded into HiGHS, with handles to read its solution.
struct Loaded {
    model: highs::Model,
    decisions: Decisions,
    names: Vec<String>,
    rows: Vec<String>,
    /// Without integer columns HiGHS solves an LP, and reports no MIP bound.
    integers: usize,
}

fn load(p: &Problem, relaxed: bool) -> Result<Loaded, SolveError> {
    let (program, decisions) = build(p, relaxed);
    let rows: Vec<String> = program.rows.iter().map(|(name, _)| name.clone()).collect();
    let mut hp = program.vars.minimise(program.objective).using(highs);
    for (_, c) in program.rows {
        hp.add_constraint(c);
    }
    let model = hp
        .try_into_inner()
        .map_err(|e| SolveError::Solver(e.to_string()))?;
    Ok(Loaded {
        model,
        decisions,
        names: program.names,
        rows,
        integers: program.integers.get(),
    })
}

/// Solves the problem with HiGHS, warm-started from `start` (typically the greedy plan).
pub fn solve(p: &Problem, start: Option<&Solution>) -> Result<(Solution, SolverStats), SolveError> {
    let Loaded {
        mut model,
        decisions: d,
        names,
        rows,
        integers,
    } = load(p, false)?;
    let limits = &p.policy.solver;
    let options = [
        model.try_set_option("output_flag", false),
        model.try_set_option("time_limit", limits.time_limit_seconds),
        model.try_set_option("mip_rel_gap", limits.relative_gap),
        model.try_set_option("threads", limits.threads.max(1) as i32),
        // Restarting after root presolve, symmetry detection and reliable pseudo-costs at
        // every candidate cost more than they save (docs/decisions.md#solver-options).
        model.try_set_option("mip_allow_restart", false),
        model.try_set_option("mip_detect_symmetry", false),
        model.try_set_option("mip_pscost_minreliable", 2),
        // With a start near the optimum (see `start`), the heuristics that hunt for a
        // first incumbent cost more than they find, and RENS (a sub-MIP around the root LP)
        // mostly repeats what RINS around the start finds (docs/decisions.md#solver-options).
        model.try_set_option("mip_heuristic_run_feasibility_jump", start.is_none()),
        model.try_set_option("mip_heuristic_run_root_reduced_cost", start.is_none()),
        model.try_set_option("mip_heuristic_run_rens", start.is_none()),
    ];
    if let Some(Err(e)) = options.into_iter().find(Result::is_err) {
        return Err(SolveError::Solver(format!("invalid solver option: {e:?}")));
    }
    if let Some(s) = start {
        // HiGHS checks the start itself and ignores it if it is not feasible.
        let cols = start_values(p, &d, s, names.len());
        let _ = model.try_set_solution(Some(&cols), None, None, None);
    }
    let clock = Instant::now();
    let solved = model
        .try_solve()
        .map_err(|e| SolveError::Solver(format!("{e:?}")))?;
    let seconds = clock.elapsed().as_secs_f64();
    let status = match solved.status() {
        HighsModelStatus::Optimal => SolveStatus::Optimal,
        HighsModelStatus::ReachedTimeLimit | HighsModelStatus::ReachedIterationLimit => {
            SolveStatus::TimeLimit
        }
        HighsModelStatus::Infeasible | HighsModelStatus::UnboundedOrInfeasible => {
            return Err(SolveError::Infeasible {
                conflicts: diagnose(p),
            })
        }
        other => return Err(SolveError::Solver(format!("model status {other:?}"))),
    };
    if solved.primal_solution_status() != HighsSolutionStatus::Feasible {
        return Err(SolveError::NoIncumbent(status));
    }
    let solution = read_solution(p, &d, solved.get_solution().columns());
    let objective = p.assess(&solution).objective;
    // An LP's optimum is exact; HiGHS leaves its MIP bound at 0 then. A bound HiGHS does
    // not report is no bound, not a zero gap.
    let best_bound = match integers {
        0 => Some(objective),
        _ => solved
            .double_info_value(c"mip_dual_bound")
            .ok()
            .filter(|b| b.is_finite())
            .map(|b| b.min(objective)),
    };
    let stats = SolverStats {
        status,
        objective,
        best_bound,
        seconds,
        variables: names.len(),
        constraints: rows.len(),
        parts: 1,
    };
    Ok((solution, stats))
}

/// The optimum of the LP relaxation: a lower bound on every plan this program can express.
/// It is not one for a partitioned plan, whose parts and rescue may migrate instances to
/// hosts outside the whole program's pruned candidates: [`crate::solve::decompose::bound`]
/// widens the program first. Within the model file's time limit.
pub fn relaxation_bound(p: &Problem) -> Result<f64, SolveError> {
    let mut model = load(p, true)?.model;
    model.make_quiet();
    let _ = model.try_set_option("threads", p.policy.solver.threads.max(1) as i32);
    let _ = model.try_set_option("time_limit", p.policy.solver.time_limit_seconds);
    let solved = model
        .try_solve()
        .map_err(|e| SolveError::Solver(format!("{e:?}")))?;
    match solved.status() {
        HighsModelStatus::Optimal => Ok(solved.objective_value()),
        other => Err(SolveError::Solver(format!("LP relaxation: {other:?}"))),
    }
}

/// The relative gap between an objective and a lower bound, as HiGHS defines it.
pub fn relative_gap(objective: f64, bound: f64) -> f64 {
    if objective.abs() < 1e-9 {
        0.0
    } else {
        ((objective - bound) / objective.abs()).max(0.0)
    }
}

/// Writes the exact program, with named rows and columns, as `.lp` or `.mps` (by extension).
pub fn export(p: &Problem, path: &Path) -> Result<(), SolveError> {
    let fail = |message: String| SolveError::Export {
        path: path.to_owned(),
        message,
    };
    match path.extension().and_then(|e| e.to_str()) {
        Some("lp" | "mps") => {}
        _ => return Err(fail("the file name must end in .lp or .mps".into())),
    }
    let Loaded {
        mut model,
        names,
        rows,
        ..
    } = load(p, false)?;
    let ptr = model.as_mut_ptr();
    let name_all = |names: &[String], pass: NameFn| -> Result<(), SolveError> {
        for (k, name) in names.iter().enumerate() {
            let c = CString::new(portable_name(name)).expect("names have no NUL");
            // SAFETY: `ptr` is a live Highs instance owned by `model`; `k` is in range
            // because names are listed in column/row order; `c` outlives the call.
            let status = unsafe { pass(ptr, k as highs_sys::HighsInt, c.as_ptr()) };
            if status != 0 {
                return Err(fail(format!("HiGHS rejected the name `{name}`")));
            }
        }
        Ok(())
    };
    name_all(&names, highs_sys::Highs_passColName)?;
    name_all(&rows, highs_sys::Highs_passRowName)?;
    let file = CString::new(path.to_string_lossy().into_owned())
        .map_err(|_| fail("path contains NUL".into()))?;
    // SAFETY: as above; HiGHS writes the file and returns a status code.
    let status = unsafe { highs_sys::Highs_writeModel(ptr, file.as_ptr()) };
    if status != 0 {
        return Err(fail(format!("HiGHS returned status {status}")));
    }
    Ok(())
}

type NameFn = unsafe extern "C" fn(
    *const std::ffi::c_void,
    highs_sys::HighsInt,
    *const std::ffi::c_char,
) -> highs_sys::HighsInt;

/// Model-file-safe names: `cap[h0,cpu]` becomes `cap(h0,cpu)`, `a>b` becomes `a.to.b`.
fn portable_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for ch in name.chars() {
        match ch {
            '[' => out.push('('),
            ']' => out.push(')'),
            '>' => out.push_str(".to."),
            c if c.is_ascii_alphanumeric() || "_.,()".contains(c) => out.push(c),
            _ => out.push('_'),
        }
    }
    out
}

/// Explains infeasibility: hosts whose instances' minimums cannot fit, or budgets too tight.
fn diagnose(p: &Problem) -> Vec<String> {
    let mut conflicts = Vec::new();
    for (h, host) in p.hosts.iter().enumerate() {
        for r in Resource::ALL {
            let floor: f64 = p.on_host(h).map(|i| p.instances[i].min[r]).sum();
            if floor > host.capacity[r] + 1e-9 {
                conflicts.push(format!(
                    "cap[{},{r}]: minimum allocations {floor} {} exceed capacity {}",
                    host.id,
                    r.unit(),
                    host.capacity[r]
                ));
            }
        }
    }
    if conflicts.is_empty() {
        conflicts.push(format!(
            "budget_changes / budget_host / budget_migrations: hosts are over capacity and the \
             disruption budget ({} changes, {} per host, {} migrations) does not allow enough changes to fix them",
            p.policy.disruption.change_limit(p.instances.len()),
            p.policy.disruption.max_changes_per_host,
            p.policy.disruption.max_migrations
        ));
    }
    conflicts
}
