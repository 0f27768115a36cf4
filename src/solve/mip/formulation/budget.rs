//! The first interval's disruption budgets: how many instances change, in all and on each
//! host, and how many migrate.
//!
//! Each is one row over the change indicators (or the migration columns), which
//! [`instance`](super::instance) switches on for any step or migration: an instance counts
//! once however many resources it changes. The later intervals' budgets are
//! [`ahead`](super::ahead)'s.

use super::{Decisions, Program};
use crate::problem::Problem;
use good_lp::{constraint, Expression};

/// The three budget rows: changes in all, changes per host, migrations.
pub(super) fn add_budgets(p: &Problem, m: &mut Program, d: &Decisions) {
    let dis = &p.policy.disruption;
    let all: Expression = d.change.iter().flatten().copied().sum();
    m.row(
        "budget_changes".into(),
        constraint!(all <= dis.change_limit(p.instances.len()) as f64),
    );
    for (h, host) in p.hosts.iter().enumerate() {
        let here: Expression = d.residents[h].iter().filter_map(|&i| d.change[i]).sum();
        m.row(
            format!("budget_host[{}]", host.id),
            constraint!(here <= dis.max_changes_per_host as f64),
        );
    }
    let moves: Expression = d.migrate.iter().flatten().map(|&(_, x)| x).sum();
    m.row(
        "budget_migrations".into(),
        constraint!(moves <= dis.max_migrations as f64),
    );
}

#[cfg(test)]
mod tests {
    use crate::problem::{Problem, Solution};
    use crate::solve::mip::formulation::tests::{host, this_interval};
    use crate::solve::mip::solve;

    /// Three instances, each a core short, on a host with room for all.
    fn short() -> Problem {
        this_interval(16.0, &[(1.0, 0.0, 2.0); 3])
    }

    fn changed(p: &Problem, s: &Solution) -> usize {
        (0..p.instances.len()).filter(|&i| p.changes(s, i)).count()
    }

    #[test]
    fn the_change_budget_caps_how_many_instances_change() {
        let mut p = short();
        p.policy.disruption.max_changes = 2;
        assert_eq!(changed(&p, &solve(&p, None).unwrap().0), 2);
    }

    #[test]
    fn the_host_budget_caps_how_many_instances_change_on_each_host() {
        let mut p = short();
        p.policy.disruption.max_changes_per_host = 1;
        assert_eq!(changed(&p, &solve(&p, None).unwrap().0), 1);
    }

    #[test]
    fn the_migration_budget_caps_how_many_instances_move() {
        // A full host whose three instances are each a core short, and an empty one.
        let mut p = this_interval(3.0, &[(1.0, 0.0, 2.0); 3]);
        p.hosts.push(host("h1", 16.0));
        for inst in &mut p.instances {
            inst.candidates = vec![1];
        }
        for budget in [1, 2] {
            p.policy.disruption.max_migrations = budget;
            let (s, _) = solve(&p, None).unwrap();
            let moved = s.host.iter().filter(|&&h| h == 1).count();
            assert_eq!(moved, budget);
        }
    }
}
