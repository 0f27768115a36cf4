//! Dry-run comparison of strategies on the same forecasts and problem.
//!
//! The MIP and the greedy baseline are priced by the one objective in
//! [`Problem::assess`](crate::problem::Problem::assess), so the table answers
//! "what does optimising buy us" without applying anything.

use crate::planner::{PlannerError, Run, Strategy};
use std::fmt::Write as _;
use std::time::Instant;

/// One strategy's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// `none` (the do-nothing baseline), `mip` or `greedy`.
    pub strategy: &'static str,
    /// The solver status's name, as in `[plan.solver] status`; `-` for `none`.
    pub status: String,
    /// The plan's objective, priced by [`Problem::assess`](crate::problem::Problem::assess).
    pub objective: f64,
    /// Predicted shortfall after the plan, in cost units.
    pub shortfall: f64,
    /// Instances the plan changes.
    pub changes: usize,
    /// Swaps in the plan.
    pub swaps: usize,
    /// Migrations in the plan.
    pub migrations: usize,
    /// Memory the plan's migrations copy (bytes).
    pub bytes_moved: f64,
    /// Credits the plan's swap receivers pay their donors.
    pub credits_moved: f64,
    /// Wall-clock time to solve (seconds).
    pub seconds: f64,
}

/// Solves `p` with every strategy, plus the do-nothing baseline.
pub fn compare(run: &Run) -> Result<Vec<Row>, PlannerError> {
    let p = &run.problem;
    let before = p.assess(&p.unchanged());
    let mut rows = vec![Row {
        strategy: "none",
        status: "-".into(),
        objective: before.objective,
        shortfall: before.shortfall,
        changes: 0,
        swaps: 0,
        migrations: 0,
        bytes_moved: 0.0,
        credits_moved: 0.0,
        seconds: 0.0,
    }];
    for strategy in [Strategy::Mip, Strategy::Greedy] {
        let clock = Instant::now();
        let (solution, stats) = run.solve(strategy)?;
        let a = p.assess(&solution);
        rows.push(Row {
            strategy: strategy.name(),
            status: stats.status.name().to_owned(),
            objective: a.objective,
            shortfall: a.shortfall,
            changes: a.changes,
            swaps: solution.swaps.len(),
            migrations: a.migrations,
            bytes_moved: a.bytes_moved,
            credits_moved: a.credits_moved,
            seconds: clock.elapsed().as_secs_f64(),
        });
    }
    Ok(rows)
}

/// A fixed-width table of the rows.
pub fn render(rows: &[Row]) -> String {
    let mut out = format!(
        "{:<8} {:<10} {:>12} {:>10} {:>8} {:>6} {:>10} {:>14} {:>10} {:>9}\n",
        "strategy",
        "status",
        "objective",
        "shortfall",
        "changes",
        "swaps",
        "migrations",
        "bytes_moved",
        "credits",
        "seconds"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<8} {:<10} {:>12.3} {:>10.3} {:>8} {:>6} {:>10} {:>14.0} {:>10.2} {:>9.3}",
            r.strategy,
            r.status,
            r.objective,
            r.shortfall,
            r.changes,
            r.swaps,
            r.migrations,
            r.bytes_moved,
            r.credits_moved,
            r.seconds
        );
    }
    out
}
