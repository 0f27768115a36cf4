//! The MIP's warm start: the change budget spent where it is worth most, host by host.
//!
//! Greedy (the seed's baseline) serves receivers in fleet order until the change budget runs
//! out, and never uses free room or shrinks idle instances, so its plans cost about twice the
//! optimum. HiGHS improves on such a start only after its root cuts and sub-MIPs; a part
//! stopped by its time limit keeps it. This start is near the optimum instead: each host
//! adds, one at a time, the change that lowers its cost most per change (a donor shrinking
//! to what it keeps, a receiver growing into free room or buying a donor's steps with
//! credits, or the two together), and the fleet's budget goes to the hosts' best next
//! changes. The same choice shares the budget out among POP parts. It plans no
//! migrations: room for one comes from shrinks on the target host that compete with that
//! host's own plan, and a version that made them was no better on the scale bench.
//! The start is the better of this plan and greedy's, so the MIP stays never worse than greedy.

use crate::problem::{Problem, Solution, Swap};
use crate::resource::{PerResource, Resource};
use crate::units::round6;
use std::collections::BinaryHeap;

/// One host's plans, each adding one or two instances to the last: `(gain over changing
/// nothing, the instances it changes)`.
struct HostPlans {
    steps: Vec<(f64, Vec<usize>)>,
}

/// The plan that spends `p`'s change budget on the hosts' most valuable changes, or
/// `greedy` if that is cheaper.
pub fn plan(p: &Problem, greedy: &Solution) -> Solution {
    let mut s = p.unchanged();
    s.warm.clone_from(&greedy.warm);
    let residents = p.residents();
    for (h, set) in decide(p).iter().enumerate() {
        let planned = evaluate(p, h, &residents[h], set);
        for (i, a) in planned.allocs {
            s.alloc[i] = a;
        }
        s.swaps.extend(planned.swaps);
    }
    if p.assess(&s).objective <= p.assess(greedy).objective {
        s
    } else {
        greedy.clone()
    }
}

/// How many changes the start makes on each host (the instances it picks there).
pub fn host_budgets(p: &Problem) -> Vec<usize> {
    decide(p).iter().map(Vec::len).collect()
}

/// The instances the start changes, per host.
fn decide(p: &Problem) -> Vec<Vec<usize>> {
    let limit = p.policy.disruption.change_limit(p.instances.len());
    budgeted(&host_plans(p), limit)
}

/// Each host's plans, growing by the addition that gains most per change while any gains.
fn host_plans(p: &Problem) -> Vec<HostPlans> {
    let residents = p.residents();
    let per_host = p.policy.disruption.max_changes_per_host;
    (0..p.hosts.len())
        .map(|h| {
            let on = &residents[h];
            let mut set: Vec<usize> = Vec::new();
            let mut steps = Vec::new();
            let mut now = 0.0;
            loop {
                let left = per_host.min(on.len()) - set.len();
                let outside: Vec<usize> = on
                    .iter()
                    .copied()
                    .filter(|&i| !set.contains(&i) && movable(p, i))
                    .collect();
                // A receiver may need a donor that gains nothing alone: try each candidate
                // alone and with the two outsiders that could give most of what it lacks.
                let donors = |i: usize| {
                    let mut ds: Vec<(f64, usize)> = outside
                        .iter()
                        .filter(|&&d| d != i)
                        .map(|&d| (fit(p, i, d), d))
                        .filter(|&(f, _)| f > 0.0)
                        .collect();
                    ds.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                    ds.into_iter().take(2).map(|(_, d)| d)
                };
                let mut best: Option<(f64, Vec<usize>)> = None;
                let mut trial = set.clone();
                for &i in &outside {
                    for add in std::iter::once(vec![i]).chain(donors(i).map(|d| vec![i, d])) {
                        if add.len() > left {
                            continue;
                        }
                        trial.extend(&add);
                        let per = (evaluate(p, h, on, &trial).gain - now) / add.len() as f64;
                        trial.truncate(set.len());
                        if per > 1e-9 && best.as_ref().is_none_or(|(b, _)| per > *b) {
                            best = Some((per, add));
                        }
                    }
                }
                let Some((_, add)) = best else { break };
                set.extend(add);
                now = evaluate(p, h, on, &set).gain;
                steps.push((now, set.clone()));
            }
            HostPlans { steps }
        })
        .collect()
}

/// How much of what receiver `i` lacks donor `d` could give, in units over resources.
fn fit(p: &Problem, i: usize, d: usize) -> f64 {
    let (rec, don) = (&p.instances[i], &p.instances[d]);
    Resource::ALL
        .iter()
        .filter_map(|&r| {
            let spare = (don.current[r] - don.keep(r)?).max(0.0);
            Some(rec.want(r).min(spare) / p.policy.unit[r])
        })
        .sum()
}

/// Spends the change budget: each unit to the host whose next change gains most per change.
fn budgeted(plans: &[HostPlans], mut budget: usize) -> Vec<Vec<usize>> {
    // Per host: how many of its steps are taken.
    let mut taken = vec![0usize; plans.len()];
    let size = |h: usize, k: usize| {
        if k == 0 {
            0
        } else {
            plans[h].steps[k - 1].1.len()
        }
    };
    let gain = |h: usize, k: usize| if k == 0 { 0.0 } else { plans[h].steps[k - 1].0 };
    let next = |h: usize, k: usize| -> Option<(u64, std::cmp::Reverse<usize>)> {
        (k < plans[h].steps.len()).then(|| {
            let per = (gain(h, k + 1) - gain(h, k)) / (size(h, k + 1) - size(h, k)) as f64;
            (((per.max(0.0) * 1e6) as u64), std::cmp::Reverse(h))
        })
    };
    let mut heap: BinaryHeap<(u64, std::cmp::Reverse<usize>)> =
        (0..plans.len()).filter_map(|h| next(h, 0)).collect();
    while let Some((_, std::cmp::Reverse(h))) = heap.pop() {
        let k = taken[h];
        let cost = size(h, k + 1) - size(h, k);
        if cost > budget {
            continue;
        }
        budget -= cost;
        taken[h] += 1;
        if let Some(e) = next(h, taken[h]) {
            heap.push(e);
        }
    }
    plans
        .iter()
        .zip(taken)
        .map(|(pl, k)| {
            if k == 0 {
                Vec::new()
            } else {
                pl.steps[k - 1].1.clone()
            }
        })
        .collect()
}

/// Whether instance `i` may change at all this interval.
fn movable(p: &Problem, i: usize) -> bool {
    Resource::ALL.iter().any(|&r| p.instances[i].adjustable(r))
}

/// What a host's plan changes and gains.
struct HostPlan {
    /// Over changing nothing.
    gain: f64,
    /// Each changed instance's new allocation.
    allocs: Vec<(usize, PerResource<f64>)>,
    swaps: Vec<Swap>,
}

/// The best plan on host `h` that changes only the instances in `set`.
fn evaluate(p: &Problem, h: usize, on: &[usize], set: &[usize]) -> HostPlan {
    let w = &p.policy.weights;
    let mut alloc: Vec<PerResource<f64>> = set.iter().map(|&i| p.instances[i].current).collect();
    let mut swaps = Vec::new();
    let (mut paid, mut got) = (vec![0.0; set.len()], vec![0.0; set.len()]);
    let mut gain = 0.0;
    let pool_use = p.pools.iter().filter(|pool| pool.host == h);
    for r in Resource::ALL {
        let g = p.policy.granularity[r];
        let ms = p.policy.min_steps(r);
        let steps = |x: f64| (x / g + 1e-9).floor().max(0.0);
        let step_price = p.swap_price(r, g);
        let used: f64 = on.iter().map(|&i| p.instances[i].current[r]).sum::<f64>()
            + pool_use
                .clone()
                .map(|pool| f64::from(pool.warm) * pool.size[r])
                .sum::<f64>();
        let mut free = steps(p.hosts[h].capacity[r] - used);
        // Donors: shrink to what they keep where that pays; otherwise only as far as they give.
        let mut spare: Vec<(usize, f64)> = Vec::new();
        let mut pays = vec![false; set.len()];
        for (k, &i) in set.iter().enumerate() {
            let inst = &p.instances[i];
            if !inst.adjustable(r) {
                continue;
            }
            let cur = inst.current[r];
            let keep = inst.keep(r).expect("adjustable");
            let down = steps(cur - keep).min(steps(cur - inst.min[r]));
            if down >= ms {
                let to = round6(cur - down * g);
                pays[k] = cost(p, i, r, to) < cost(p, i, r, cur) - 1e-9;
                spare.push((k, down));
            }
        }
        spare.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let offered: Vec<(usize, f64)> = spare.clone();
        // Receivers: grow toward the forecast (to the step covering this interval's, within
        // the program's span), most short first.
        let mut wants: Vec<(f64, usize, f64)> = Vec::new();
        for (k, &i) in set.iter().enumerate() {
            let inst = &p.instances[i];
            if !inst.adjustable(r) || spare.iter().any(|s| s.0 == k) {
                continue;
            }
            let cur = inst.current[r];
            let first = inst.demand[r].expect("adjustable");
            let peak = inst.ahead.iter().filter_map(|d| d[r]).fold(first, f64::max);
            let want = ((peak - cur) / g).ceil().max(0.0);
            if want < 1.0 {
                continue;
            }
            let most = want.min(steps(inst.max[r] - cur));
            let aim = ((first - cur) / g).ceil().clamp(1.0, most.max(1.0));
            if most >= 1.0 {
                wants.push((first - cur, k, aim.min(most)));
            }
        }
        wants.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        // Donors' steps first, to receivers that can pay for them; then free room, which
        // costs no credits, to what is still missing. A receiver that gets less than the
        // hysteresis minimum gets nothing.
        let mut bought: Vec<Vec<(usize, f64)>> = vec![Vec::new(); wants.len()];
        for (w, &(_, k, aim)) in wants.iter().enumerate() {
            let i = set[k];
            let mut can = ((p.spendable(i) - paid[k] - 1e-6) / step_price + 1e-9).floor();
            let mut need = aim;
            for (d, left) in spare.iter_mut() {
                let donor = &p.instances[set[*d]];
                let room = ((donor.credit_cap - donor.credits - got[*d] - 1e-6) / step_price
                    + 1e-9)
                    .floor();
                let n = need.min(*left).min(room).min(can);
                if n >= 1.0 {
                    bought[w].push((*d, n));
                    *left -= n;
                    got[*d] += n * step_price;
                    paid[k] += n * step_price;
                    need -= n;
                    can -= n;
                }
            }
        }
        for (w, &(_, k, aim)) in wants.iter().enumerate() {
            let i = set[k];
            let cur = p.instances[i].current[r];
            let bought_steps: f64 = bought[w].iter().map(|b| b.1).sum();
            let from_free = free.min(aim - bought_steps);
            let total = from_free + bought_steps;
            if total >= 1.0 {
                free -= from_free;
                alloc[k][r] = round6(cur + total * g);
                for &(d, n) in &bought[w] {
                    let amount = round6(n * g);
                    swaps.push(Swap {
                        donor: set[d],
                        receiver: i,
                        resource: r,
                        amount,
                        credits: p.swap_price(r, amount),
                    });
                }
            } else {
                for &(d, n) in &bought[w] {
                    if let Some(s) = spare.iter_mut().find(|s| s.0 == d) {
                        s.1 += n;
                    }
                    got[d] -= n * step_price;
                    paid[k] -= n * step_price;
                }
            }
        }
        for (k, down) in offered {
            let given = down - spare.iter().find(|s| s.0 == k).map_or(0.0, |s| s.1);
            let cur = p.instances[set[k]].current[r];
            if pays[k] {
                alloc[k][r] = round6(cur - down * g);
            } else if given >= 1.0 {
                alloc[k][r] = round6(cur - given.max(ms) * g);
            }
        }
        for (k, &i) in set.iter().enumerate() {
            gain += cost(p, i, r, p.instances[i].current[r]) - cost(p, i, r, alloc[k][r]);
        }
    }
    let mut out = Vec::new();
    for (k, &i) in set.iter().enumerate() {
        if alloc[k] != p.instances[i].current {
            gain -= w.change;
            out.push((i, alloc[k]));
        }
    }
    HostPlan {
        gain,
        allocs: out,
        swaps,
    }
}

/// Instance `i`'s cost in `r` at allocation `a` held through every interval, plus the cost
/// of moving there from its allocation before the plan.
fn cost(p: &Problem, i: usize, r: Resource, a: f64) -> f64 {
    let inst = &p.instances[i];
    let later: f64 = inst
        .ahead
        .iter()
        .map(|d| p.mismatch_against(d[r], r, a))
        .sum();
    p.mismatch_cost(i, r, a)
        + later
        + p.policy.weights.unit_move * (a - inst.current[r]).abs() / p.policy.unit[r]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use crate::synth::scenario::{self, ScenarioOptions};
    use std::collections::HashMap;

    /// A synthetic fleet of `n` instances on `n / 20` hosts, demand the last hour's peak.
    fn fleet(n: usize, seed: u64, policy: &Policy) -> Problem {
        let opts = ScenarioOptions {
            instances: n,
            hosts: n / 20,
            cells: 1,
            days: 1,
            seed,
            step_minutes: 15,
            overcommit: 1.3,
            start: "2024-01-01T00:00:00Z".parse().unwrap(),
        };
        let (fleet, recent) = scenario::generate(&opts, policy).unwrap();
        let index: HashMap<String, usize> = (0..n).map(|k| (format!("vm{k:06}"), k)).collect();
        Problem::with_demand(&fleet, policy, |id, r| recent[index[id]][r])
    }

    /// HiGHS takes the start as its incumbent (it would drop an infeasible one and find
    /// nothing in no time), it is well below greedy's cost, and it keeps every budget.
    #[test]
    fn the_start_is_feasible_within_budget_and_beats_greedy() {
        for seed in 1..=4 {
            let mut policy = Policy::default();
            policy.disruption.max_changes = 25;
            policy.solver.time_limit_seconds = 0.0;
            let p = fleet(100, seed, &policy);
            let greedy = crate::solve::greedy::solve(&p);
            let start = plan(&p, &greedy);
            let (g, s) = (p.assess(&greedy), p.assess(&start));
            assert!(
                s.objective < 0.8 * g.objective,
                "seed {seed}: {s:?} vs {g:?}"
            );
            assert!(s.changes <= 25);
            let residents = p.residents();
            for on in &residents {
                let changed = on
                    .iter()
                    .filter(|&&i| start.alloc[i] != p.instances[i].current);
                assert!(changed.count() <= p.policy.disruption.max_changes_per_host);
            }
            let (solved, stats) = crate::solve::mip::solve(&p, Some(&start)).expect("an incumbent");
            assert!(
                stats.objective <= s.objective + 1e-6,
                "seed {seed}: {stats:?}"
            );
            assert!(p.assess(&solved).objective <= s.objective + 1e-6);
        }
    }

    /// The budget goes to the host where a change is worth most, not to the first one.
    #[test]
    fn the_budget_goes_where_a_change_is_worth_most() {
        let mut policy = Policy::default();
        policy.disruption.max_changes = 3;
        let mut p = fleet(100, 1, &policy);
        let gains: Vec<f64> = host_plans(&p)
            .iter()
            .map(|pl| pl.steps.first().map_or(0.0, |s| s.0))
            .collect();
        let best = (0..gains.len())
            .max_by(|&a, &b| gains[a].total_cmp(&gains[b]))
            .unwrap();
        let budgets = host_budgets(&p);
        assert_eq!(budgets.iter().sum::<usize>(), 3);
        assert!(budgets[best] >= 1, "{budgets:?} {gains:?}");
        p.policy.disruption.max_changes = 0;
        assert_eq!(host_budgets(&p).iter().sum::<usize>(), 0);
        assert_eq!(
            plan(&p, &crate::solve::greedy::solve(&p)),
            crate::solve::greedy::solve(&p)
        );
    }
}
