//! The order actions run in: shrinks before the grows they make room for, a migrant's shrink
//! before its move, an instance's resize after its swaps.

use super::{Action, Kind};
use crate::problem::{Problem, Solution};
use std::collections::HashMap;

/// Shrinks before the grows they make room for; a migrated instance shrinks before it moves
/// and grows after; an instance's resize after its swaps.
pub(super) fn link_dependencies(p: &Problem, s: &Solution, actions: &mut [Action]) {
    let mut final_host: HashMap<&str, &str> = p
        .instances
        .iter()
        .enumerate()
        .map(|(i, inst)| (inst.id.as_str(), p.hosts[s.host[i]].id.as_str()))
        .collect();
    for pool in &p.pools {
        final_host.insert(pool.id.as_str(), p.hosts[pool.host].id.as_str());
    }
    // An action only ever waits for actions on its host or on its own instance (see
    // `depends`), so only those are checked: linear in plan size, not quadratic.
    let snapshot = actions.to_vec();
    let mut by_host: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_instance: HashMap<&str, Vec<usize>> = HashMap::new();
    for (k, b) in snapshot.iter().enumerate() {
        by_host
            .entry(final_host[b.instance.as_str()])
            .or_default()
            .push(k);
        if let Some(from) = b.from_host() {
            by_host.entry(from).or_default().push(k);
        }
        by_instance.entry(b.instance.as_str()).or_default().push(k);
        if let Some(donor) = b.donor() {
            by_instance.entry(donor).or_default().push(k);
        }
    }
    for a in actions.iter_mut() {
        let on_host = by_host.get(final_host[a.instance.as_str()]);
        let own = by_instance.get(a.instance.as_str());
        let mut candidates: Vec<usize> =
            on_host.into_iter().chain(own).flatten().copied().collect();
        candidates.sort_unstable();
        candidates.dedup();
        let deps = candidates
            .into_iter()
            .map(|k| &snapshot[k])
            .filter(|b| b.id != a.id && depends(a, b, &final_host));
        a.depends_on = deps.map(|b| b.id.clone()).collect();
    }
}

/// Whether action `a` must wait for action `b`. `final_host` maps instances to where they end up.
fn depends(a: &Action, b: &Action, final_host: &HashMap<&str, &str>) -> bool {
    let is_shrink = Action::is_shrink;
    // A pool that stops warm instances frees every resource on its host.
    let frees = |x: &Action| x.kind() == Kind::Pool || x.resource() == a.resource();
    let same_instance = a.instance == b.instance;
    let a_host = final_host[a.instance.as_str()];
    let shrinks_on_a_host = is_shrink(b) && final_host[b.instance.as_str()] == a_host;
    let same_resource_swap =
        b.kind() == Kind::Swap && involves(b, &a.instance) && b.resource() == a.resource();
    let leaves_a_host = b.from_host() == Some(a_host);
    match a.kind() {
        // Swaps record the receiver's allocation before them: run them in plan order.
        Kind::Swap => same_resource_swap && ordinal(&b.id) < ordinal(&a.id),
        // A migrant shrinks on its old host first, so it lands at its smaller size.
        Kind::Migrate => is_shrink(b) && (same_instance || shrinks_on_a_host),
        Kind::Resize | Kind::Pool if is_shrink(a) => same_resource_swap,
        Kind::Pool => shrinks_on_a_host || leaves_a_host,
        Kind::Resize => {
            let frees_room = (shrinks_on_a_host && frees(b)) || leaves_a_host;
            let own_move = same_instance && b.kind() == Kind::Migrate;
            frees_room || own_move || same_resource_swap
        }
    }
}

/// The position of an action id `aNN` in its plan.
fn ordinal(id: &str) -> usize {
    id.trim_start_matches('a').parse().unwrap_or(usize::MAX)
}

fn involves(swap: &Action, instance: &str) -> bool {
    swap.instance == instance || swap.donor() == Some(instance)
}

#[cfg(test)]
mod tests {
    use super::super::build::actions;
    use super::*;
    use crate::forecast::Forecasts;
    use crate::synth::scenario::{self, ScenarioOptions};

    /// Linking by host and instance finds exactly what checking every pair of actions finds.
    #[test]
    fn dependencies_match_checking_every_pair() {
        let mut policy = crate::policy::Policy::default();
        policy.disruption.max_changes = 100;
        policy.disruption.max_migrations = 10;
        policy.solver.relative_gap = 0.05;
        let opts = ScenarioOptions {
            instances: 100,
            hosts: 5,
            cells: 1,
            days: 1,
            seed: 3,
            step_minutes: 15,
            overcommit: 1.3,
            start: "2024-01-01T00:00:00Z".parse().unwrap(),
        };
        let (fleet, recent) = scenario::generate(&opts, &policy).unwrap();
        let index: HashMap<String, usize> = (0..opts.instances)
            .map(|k| (format!("vm{k:06}"), k))
            .collect();
        let p = Problem::with_demand(&fleet, &policy, |id, r| recent[index[id]][r]);
        let (s, _) = crate::solve::decompose::solve_mip(&p).unwrap();
        let linked = actions(&p, &Forecasts::default(), &s);
        let kinds = |k: Kind| linked.iter().filter(|a| a.kind() == k).count();
        assert!(
            kinds(Kind::Migrate) > 0 && kinds(Kind::Swap) > 0,
            "{linked:?}"
        );
        let final_host: HashMap<&str, &str> = p
            .instances
            .iter()
            .enumerate()
            .map(|(i, inst)| (inst.id.as_str(), p.hosts[s.host[i]].id.as_str()))
            .collect();
        let mut edges = 0;
        for a in &linked {
            let every_pair: Vec<String> = linked
                .iter()
                .filter(|b| b.id != a.id && depends(a, b, &final_host))
                .map(|b| b.id.clone())
                .collect();
            assert_eq!(a.depends_on, every_pair, "{}", a.id);
            edges += every_pair.len();
        }
        assert!(edges > 0);
    }
}
