//! The review table operators read before applying a plan.

use super::{Action, Change, Plan};
use std::fmt::Write as _;

impl Plan {
    /// A readable summary for review.
    pub fn summary(&self) -> String {
        let h = &self.plan;
        let t = &h.totals;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "plan {}  strategy {}  created {}  expires {}",
            h.id, h.strategy, h.created_at, h.expires_at
        );
        let bound = match (h.solver.best_bound, h.solver.gap) {
            (Some(b), Some(gap)) => format!("bound {b:.3}  gap {:.4}%", gap * 100.0),
            _ => "no bound".to_owned(),
        };
        let _ = writeln!(
            out,
            "solver {}  objective {:.3} (before {:.3})  {bound}",
            h.solver.status, h.solver.objective, t.objective_before,
        );
        if let (Some(n), Some(later)) = (h.solver.lookahead_intervals, h.solver.objective_later) {
            let _ = writeln!(
                out,
                "look-ahead {n} intervals: this plan is the first; {later:.3} of the objective is the later ones"
            );
        }
        let _ = writeln!(
            out,
            "shortfall {:.3} -> {:.3} units  changes {}  swaps {}  migrations {}  bytes moved {}  credits moved {:.2}\n",
            t.shortfall_before, t.shortfall_after, t.changes, t.swaps, t.migrations, t.bytes_moved, t.credits_moved
        );
        let _ = writeln!(
            out,
            "{:<5} {:<8} {:<28} {:<5} {:>22} {:>8}  {:<10} skip",
            "id", "kind", "instance", "res", "change", "credits", "depends"
        );
        for a in &self.actions {
            let _ = writeln!(
                out,
                "{:<5} {:<8} {:<28} {:<5} {:>22} {:>8}  {:<10} {}",
                a.id,
                a.kind().name(),
                a.instance,
                a.resource().map_or("-".into(), |r| r.to_string()),
                change_text(a),
                a.credits().map_or("-".into(), |c| format!("{c:.2}")),
                if a.depends_on.is_empty() {
                    "-".into()
                } else {
                    a.depends_on.join(",")
                },
                a.skip
            );
        }
        if self.actions.is_empty() {
            let _ = writeln!(out, "(no changes)");
        }
        out
    }
}

fn change_text(a: &Action) -> String {
    match &a.change {
        Change::Migrate {
            from_host, to_host, ..
        } => format!("{from_host} -> {to_host}"),
        Change::Swap { amount, donor, .. } => format!("+{amount} from {donor}"),
        Change::Resize { from, to, .. } => format!("{from} -> {to}"),
        Change::Pool { from, to } => format!("{from} -> {to} warm"),
    }
}
