//! Undoing one action: what it changed, as it was before.

use super::step::Places;
use crate::fleet::ledger::micro;
use crate::fleet::{Fleet, Instance, Pool};
use crate::plan::{Action, Kind};

/// What an action changes, as it was before: the instances it names (receiver and donor)
/// or its pool. [`step`] touches nothing else, so restoring this undoes the action; the
/// durable apply walks a rollback back through these instead of through copies of the fleet.
#[derive(Debug, Clone)]
pub(super) struct Undo {
    instances: Vec<(usize, Instance)>,
    pools: Vec<(usize, Pool)>,
}

impl Undo {
    pub(super) fn of(fleet: &Fleet, places: &Places, a: &Action) -> Undo {
        if a.kind() == Kind::Pool {
            let pools = places.pools.get(&a.instance).into_iter();
            return Undo {
                instances: Vec::new(),
                pools: pools.map(|&k| (k, fleet.pools[k].clone())).collect(),
            };
        }
        let ids = std::iter::once(a.instance.as_str()).chain(a.donor());
        let mut named: Vec<usize> = ids
            .filter_map(|id| places.instances.get(id).copied())
            .collect();
        named.sort_unstable();
        named.dedup();
        Undo {
            instances: named
                .into_iter()
                .map(|k| (k, fleet.instances[k].clone()))
                .collect(),
            pools: Vec::new(),
        }
    }

    /// Puts the recorded instances and pool back into `fleet`.
    pub(super) fn restore(&self, fleet: &mut Fleet) {
        for (k, i) in &self.instances {
            fleet.instances[*k] = i.clone();
        }
        for (k, p) in &self.pools {
            fleet.pools[*k] = p.clone();
        }
    }

    /// Copies what the action changed from `from` into `to`.
    pub(super) fn copy(&self, from: &Fleet, to: &mut Fleet) {
        for (k, _) in &self.instances {
            to.instances[*k] = from.instances[*k].clone();
        }
        for (k, _) in &self.pools {
            to.pools[*k] = from.pools[*k].clone();
        }
    }

    /// The credit movements (micro-credits) from the recorded state to `now`, by instance.
    pub(super) fn moves(&self, now: &Fleet) -> Vec<(String, i64)> {
        self.instances
            .iter()
            .filter_map(|(k, was)| {
                let delta = micro(now.instances[*k].credits) - micro(was.credits);
                (delta != 0).then(|| (was.id.clone(), delta))
            })
            .collect()
    }
}
