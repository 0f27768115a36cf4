//! The seed's greedy `decide_swap`, implemented faithfully as the baseline strategy.
//!
//! For each instance whose forecast exceeds its allocation, find instances on
//! the same host with excess, take the one with the most, and swap
//! `min(gap, excess)` if the receiver has the credits to pay. One swap per
//! instance and resource per interval, within the same disruption budget the
//! MIP obeys, so the two are compared fairly.

use crate::problem::{round6, Problem, Solution, Swap};
use crate::resource::Resource;
use std::collections::BTreeSet;

/// Runs `decide_swap` for every instance and resource, in fleet order.
pub fn solve(p: &Problem) -> Solution {
    let mut s = p.unchanged();
    let mut balance: Vec<f64> = p.instances.iter().map(|i| i.credits).collect();
    let mut changed = BTreeSet::new();
    for j in 0..p.instances.len() {
        for r in Resource::ALL {
            if let Some(swap) = decide_swap(p, &s, &balance, &changed, j, r) {
                balance[swap.receiver] -= swap.credits;
                balance[swap.donor] += swap.credits;
                s.alloc[swap.receiver][r] = round6(s.alloc[swap.receiver][r] + swap.amount);
                s.alloc[swap.donor][r] = round6(s.alloc[swap.donor][r] - swap.amount);
                changed.extend([swap.receiver, swap.donor]);
                s.swaps.push(swap);
            }
        }
    }
    s
}

/// The seed's pseudocode for one instance `j` and resource `r`.
fn decide_swap(
    p: &Problem,
    s: &Solution,
    balance: &[f64],
    changed: &BTreeSet<usize>,
    j: usize,
    r: Resource,
) -> Option<Swap> {
    let inst = &p.instances[j];
    let g = p.policy.granularity[r];
    let demand = inst.demand[r]?;
    let gap = demand - s.alloc[j][r];
    if gap <= 0.0 || !inst.adjustable(r) {
        return None;
    }
    let (donor, excess) = select_best_instance(p, s, j, r)?;
    let room = inst.max[r] - s.alloc[j][r];
    let steps = (gap / g - 1e-9)
        .ceil()
        .min((excess / g + 1e-9).floor())
        .min((room / g + 1e-9).floor());
    let amount = round6(steps * g);
    if amount <= 0.0 || !within_budget(p, changed, &[j, donor]) {
        return None;
    }
    let credits = p.swap_price(r, amount);
    let credit_sufficient = balance[j] >= credits;
    let donor_fits = balance[donor] + credits <= p.instances[donor].credit_cap + 1e-9;
    (credit_sufficient && donor_fits).then_some(Swap {
        donor,
        receiver: j,
        resource: r,
        amount,
        credits,
    })
}

/// The same-host instance with the most excess (allocation above forecast, above minimum).
fn select_best_instance(p: &Problem, s: &Solution, j: usize, r: Resource) -> Option<(usize, f64)> {
    let g = p.policy.granularity[r];
    p.on_host(p.instances[j].host)
        .filter(|&i| i != j && p.instances[i].adjustable(r))
        .filter_map(|i| {
            let inst = &p.instances[i];
            let spare = (s.alloc[i][r] - inst.demand[r]?).min(s.alloc[i][r] - inst.min[r]);
            let excess = (spare / g + 1e-9).floor() * g;
            (excess >= g).then_some((i, excess))
        })
        .max_by(|a, b| a.1.partial_cmp(&b.1).expect("finite").then(b.0.cmp(&a.0)))
}

/// Whether changing these instances stays within the disruption budget.
fn within_budget(p: &Problem, changed: &BTreeSet<usize>, who: &[usize]) -> bool {
    let mut after = changed.clone();
    after.extend(who.iter().copied());
    let per_host_ok = p.hosts.iter().enumerate().all(|(h, _)| {
        after.iter().filter(|&&i| p.instances[i].host == h).count()
            <= p.policy.disruption.max_changes_per_host
    });
    after.len() <= p.policy.disruption.max_changes && per_host_ok
}
