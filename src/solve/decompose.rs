//! Decomposition: split a large problem into independent parts solved in parallel.
//!
//! Without cross-cell migration, cells share nothing but the fleet-wide
//! budgets, so each cell is its own program. A cell larger than the model
//! file's `partition_instances` is split further, POP-style (docs/glossary.md#pop-part): its hosts are
//! dealt into balanced random groups solved independently. Dealing is
//! stratified by predicted headroom, so every group gets crowded hosts and
//! hosts with room for their migrants alike
//! (docs/decisions.md#stratified-pop-parts). The change budget is shared out where
//! the warm start would spend it (migrations: in proportion to instances that
//! may move). Each part is warm-started from its own greedy plan or a better
//! one, so the merged plan is never worse than greedy's per part. The merged
//! plan then goes through [`crate::solve::rescue`], which moves instances across parts.

use crate::problem::{Problem, Solution, Swap};
use crate::solve::greedy;
use crate::solve::mip::{self, SolveError, SolveStatus, SolverStats};
use crate::solve::rescue;
use crate::synth::rng::SplitMix;
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Seed of the shuffle that deals hosts into parts: fixed, so plans stay reproducible.
const SEED: u64 = 0x5EED;

/// One independent part: a subproblem and where its instances sit in the whole.
#[derive(Debug, Clone, PartialEq)]
pub struct Part {
    /// The subproblem: the part's hosts, instances and pools, with its share of the budgets.
    pub problem: Problem,
    /// Global index of each of the part's instances.
    pub instances: Vec<usize>,
    /// Global index of each of the part's hosts.
    pub hosts: Vec<usize>,
    /// Global index of each of the part's pools.
    pub pools: Vec<usize>,
}

/// Splits `p` into parts by cell (unless cross-cell migration is allowed) and by size.
pub fn split(p: &Problem) -> Vec<Part> {
    let limit = p.policy.solver.partition_instances;
    let residents = p.residents();
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (h, host) in p.hosts.iter().enumerate() {
        let key = if p.policy.migration.allow_cross_cell {
            ""
        } else {
            host.cell.as_str()
        };
        groups.entry(key).or_default().push(h);
    }
    let mut rng = SplitMix(SEED);
    let (headroom, _) = p.predicted_headroom();
    let mut host_sets = Vec::new();
    for hosts in groups.into_values() {
        let n: usize = hosts.iter().map(|&h| residents[h].len()).sum();
        if limit == 0 || n <= limit {
            host_sets.push(hosts);
        } else {
            let k = n.div_ceil(limit);
            host_sets.extend(pop_split(hosts, k, &residents, &headroom, &mut rng));
        }
    }
    let mut parts: Vec<Part> = host_sets
        .into_iter()
        .map(|hosts| restrict(p, hosts, &residents))
        .collect();
    // Budgets, by largest remainder so none is lost to rounding. Changes go where they are
    // worth most: each part gets what its hosts would use of the whole budget in the warm
    // start, and any left over in proportion to instances. Migrations go in proportion to
    // the instances that may migrate.
    let dis = &p.policy.disruption;
    let limit = dis.change_limit(p.instances.len());
    let changes = if parts.len() == 1 {
        vec![limit]
    } else {
        let per_host = mip::host_budgets(p);
        let valued: Vec<usize> = parts
            .iter()
            .map(|part| part.hosts.iter().map(|&h| per_host[h]).sum())
            .collect();
        let rest = apportion(
            limit - valued.iter().sum::<usize>(),
            parts.iter().map(|part| part.instances.len()),
        );
        valued.into_iter().zip(rest).map(|(a, b)| a + b).collect()
    };
    let movers = parts.iter().map(|part| {
        let can_move = |i: &&crate::problem::InstanceSpec| !i.candidates.is_empty();
        part.problem.instances.iter().filter(can_move).count()
    });
    let migrations = apportion(dis.max_migrations, movers);
    for ((part, c), m) in parts.iter_mut().zip(changes).zip(migrations) {
        let d = &mut part.problem.policy.disruption;
        (d.max_changes, d.max_changes_percent, d.max_migrations) = (c, 100.0, m);
        // Keep only as many movers as the part's own migration budget can use.
        part.problem.choose_candidates();
    }
    parts
}

/// Splits `total` in proportion to `weights`: floors first, then one more to the largest
/// remainders (earlier parts first on ties), so the shares sum to `total` when any weight is set.
fn apportion(total: usize, weights: impl Iterator<Item = usize>) -> Vec<usize> {
    let weights: Vec<usize> = weights.collect();
    let sum: usize = weights.iter().sum();
    if sum == 0 {
        return vec![0; weights.len()];
    }
    let mut shares: Vec<usize> = weights.iter().map(|&w| total * w / sum).collect();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    order.sort_by_key(|&k| (std::cmp::Reverse(total * weights[k] % sum), k));
    let left = total - shares.iter().sum::<usize>();
    for &k in order.iter().take(left) {
        shares[k] += 1;
    }
    shares
}

/// Deals hosts to `k` groups, each next host to the group with fewest instances. Hosts go
/// from least to most predicted `headroom`, shuffled within each stratum of `k`, so every
/// group draws about one host from each stratum.
fn pop_split(
    mut hosts: Vec<usize>,
    k: usize,
    residents: &[Vec<usize>],
    headroom: &[f64],
    rng: &mut SplitMix,
) -> Vec<Vec<usize>> {
    hosts.sort_by(|&a, &b| headroom[a].total_cmp(&headroom[b]).then(a.cmp(&b)));
    for stratum in hosts.chunks_mut(k) {
        rng.shuffle(stratum);
    }
    let mut groups: Vec<(usize, Vec<usize>)> = vec![(0, Vec::new()); k];
    for h in hosts {
        let g = (0..k).min_by_key(|&g| (groups[g].0, g)).expect("k > 0");
        // An empty host counts as one, or they would all go to one group.
        groups[g].0 += residents[h].len().max(1);
        groups[g].1.push(h);
    }
    groups
        .into_iter()
        .map(|(_, mut hs)| {
            hs.sort_unstable();
            hs
        })
        .filter(|hs| !hs.is_empty())
        .collect()
}

/// The subproblem on `hosts`; [`split`] shares out the budgets afterwards.
fn restrict(p: &Problem, hosts: Vec<usize>, residents: &[Vec<usize>]) -> Part {
    let mut instances: Vec<usize> = hosts
        .iter()
        .flat_map(|&h| residents[h].iter().copied())
        .collect();
    instances.sort_unstable();
    let local_host: BTreeMap<usize, usize> =
        hosts.iter().enumerate().map(|(k, &h)| (h, k)).collect();
    let policy = p.policy.clone();
    let pools: Vec<usize> = (0..p.pools.len())
        .filter(|&k| local_host.contains_key(&p.pools[k].host))
        .collect();
    let mut problem = Problem {
        hosts: hosts.iter().map(|&h| p.hosts[h].clone()).collect(),
        instances: instances
            .iter()
            .map(|&i| {
                let mut inst = p.instances[i].clone();
                inst.host = local_host[&inst.host];
                inst
            })
            .collect(),
        pools: pools
            .iter()
            .map(|&k| {
                let mut pool = p.pools[k].clone();
                pool.host = local_host[&pool.host];
                pool
            })
            .collect(),
        policy,
    };
    problem.choose_candidates();
    Part {
        problem,
        instances,
        hosts,
        pools,
    }
}

/// Solves every part with the MIP (warm-started from greedy) in parallel, merges them, and
/// lets the rescue spend the migrations the parts left.
pub fn solve_mip(p: &Problem) -> Result<(Solution, SolverStats), SolveError> {
    let clock = Instant::now();
    let parts = split(p);
    let results: Vec<Result<(Solution, SolverStats), SolveError>> = parts
        .par_iter()
        .map(|part| {
            // Never worse than greedy: the start is greedy's plan or a better one.
            let greedy = greedy::solve(&part.problem);
            let start = mip::warm_start(&part.problem, &greedy);
            match mip::solve(&part.problem, Some(&start)) {
                Err(SolveError::NoIncumbent(_)) => Ok(fallback(&part.problem, greedy)),
                other => other,
            }
        })
        .collect();
    let mut solved = Vec::with_capacity(parts.len());
    for r in results {
        solved.push(r?);
    }
    let merged = merge(p, &parts, solved.iter().map(|(s, _)| s));
    let solution = match parts.len() {
        1 => merged,
        _ => rescue::rescue(p, merged),
    };
    let objective = p.assess(&solution).objective;
    // The parts' bounds add up to a bound on plans as dealt into parts only: the rescue's
    // moves across parts can take the plan below it, so several parts need the widened LP.
    let best_bound = match parts.len() {
        1 => solved[0].1.best_bound.map(|b| b.min(objective)),
        _ if p.instances.len() <= p.policy.solver.bound_instances => {
            bound(p, &parts, &solution).map(|b| b.min(objective))
        }
        _ => None,
    };
    // The worst part's status: a fallback over a time limit over optimal.
    let status = solved
        .iter()
        .map(|(_, st)| st.status)
        .max_by_key(|&st| match st {
            SolveStatus::Optimal | SolveStatus::Heuristic => 0,
            SolveStatus::TimeLimit => 1,
            SolveStatus::GreedyFallback => 2,
        })
        .unwrap_or(SolveStatus::Optimal);
    let stats = SolverStats {
        status,
        objective,
        best_bound,
        seconds: clock.elapsed().as_secs_f64(),
        variables: solved.iter().map(|(_, st)| st.variables).sum(),
        constraints: solved.iter().map(|(_, st)| st.constraints).sum(),
        parts: parts.len(),
    };
    Ok((solution, stats))
}

/// A lower bound on the objective of `plan`, made in `parts` of `p`: the LP relaxation of
/// the whole program, its migration columns widened to every move any part may make and
/// every move the plan makes (the rescue's among them). The plan is a solution of that
/// program, so no plan that migrates along those columns costs less than the bound. The
/// whole program's own LP is no bound here: the parts and the rescue migrate outside its
/// pruned candidates. `None` under look-ahead, where a candidate forbids later resizes and
/// widening would cut plans off, or when HiGHS does not solve the LP to optimality.
pub fn bound(p: &Problem, parts: &[Part], plan: &Solution) -> Option<f64> {
    if !plan.ahead.is_empty() {
        return None;
    }
    let mut widened = p.clone();
    for part in parts {
        for (inst, &i) in part.problem.instances.iter().zip(&part.instances) {
            let global = inst.candidates.iter().map(|&h| part.hosts[h]);
            widened.instances[i].candidates.extend(global);
        }
    }
    for (i, &h) in plan.host.iter().enumerate() {
        if h != p.instances[i].host {
            widened.instances[i].candidates.push(h);
        }
    }
    for inst in &mut widened.instances {
        inst.candidates.sort_unstable();
        inst.candidates.dedup();
    }
    mip::relaxation_bound(&widened).ok()
}

/// A plan is always produced: if HiGHS stops without an incumbent, the part keeps greedy's plan.
fn fallback(p: &Problem, start: Solution) -> (Solution, SolverStats) {
    let stats = SolverStats::heuristic(p, &start, SolveStatus::GreedyFallback, 0.0);
    (start, stats)
}

/// Exports each part's exact program: `path` itself for one part, `stem.partK.ext` for several.
pub fn export(p: &Problem, path: &Path) -> Result<Vec<PathBuf>, SolveError> {
    let parts = split(p);
    let mut written = Vec::with_capacity(parts.len());
    for (k, part) in parts.iter().enumerate() {
        let file = if parts.len() == 1 {
            path.to_owned()
        } else {
            let stem = path
                .file_stem()
                .map_or(String::new(), |s| s.to_string_lossy().into_owned());
            let ext = path
                .extension()
                .map_or(String::new(), |e| e.to_string_lossy().into_owned());
            path.with_file_name(format!("{stem}.part{k}.{ext}"))
        };
        mip::export(&part.problem, &file)?;
        written.push(file);
    }
    Ok(written)
}

/// Maps part solutions back onto the whole problem.
pub fn merge<'a>(
    p: &Problem,
    parts: &[Part],
    solutions: impl Iterator<Item = &'a Solution>,
) -> Solution {
    let mut whole = p.unchanged();
    let later = p.instances.first().map_or(0, |i| i.ahead.len());
    whole.ahead = vec![whole.alloc.clone(); later];
    for (part, s) in parts.iter().zip(solutions) {
        for (k, &i) in part.instances.iter().enumerate() {
            whole.alloc[i] = s.alloc[k];
            whole.host[i] = part.hosts[s.host[k]];
            for (t, ahead) in whole.ahead.iter_mut().enumerate() {
                ahead[i] = s.later(t, k);
            }
        }
        for (k, &pool) in part.pools.iter().enumerate() {
            whole.warm[pool] = s.warm[k];
        }
        whole.swaps.extend(s.swaps.iter().map(|sw| Swap {
            donor: part.instances[sw.donor],
            receiver: part.instances[sw.receiver],
            ..sw.clone()
        }));
    }
    whole
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::Policy;
    use crate::problem::{HostSpec, InstanceSpec};
    use crate::resource::PerResource;

    fn problem(cells: usize, hosts_per_cell: usize, per_host: usize) -> Problem {
        let mut policy = Policy::default();
        policy.migration.allow_cross_cell = false;
        let hosts: Vec<HostSpec> = (0..cells * hosts_per_cell)
            .map(|h| HostSpec {
                id: format!("h{h}"),
                cell: format!("c{}", h / hosts_per_cell),
                capacity: PerResource {
                    cpu: 4.0,
                    mem: 4096.0,
                    net: 100.0,
                },
            })
            .collect();
        let instances = (0..hosts.len() * per_host)
            .map(|i| InstanceSpec {
                id: format!("i{i}"),
                host: i / per_host,
                current: PerResource {
                    cpu: 1.0,
                    mem: 1024.0,
                    net: 10.0,
                },
                min: PerResource {
                    cpu: 0.25,
                    mem: 256.0,
                    net: 10.0,
                },
                max: PerResource {
                    cpu: 4.0,
                    mem: 4096.0,
                    net: 10.0,
                },
                demand: PerResource {
                    cpu: Some(0.5 + (i % 3) as f64 * 0.6),
                    mem: None,
                    net: None,
                },
                floor: Default::default(),
                ceiling: Default::default(),
                credits: 50.0,
                credit_cap: 100.0,
                earn_rate: 120.0,
                frozen: false,
                held: Default::default(),
                cooling: 0,
                ahead: Vec::new(),
                candidates: Vec::new(),
            })
            .collect();
        let mut p = Problem {
            hosts,
            instances,
            pools: Vec::new(),
            policy,
        };
        p.choose_candidates();
        p
    }

    #[test]
    fn apportion_loses_nothing_to_rounding() {
        assert_eq!(apportion(10, [40, 40, 20].into_iter()), vec![4, 4, 2]);
        assert_eq!(apportion(1, [40, 40, 20].into_iter()), vec![1, 0, 0]);
        assert_eq!(apportion(2, [10, 30, 0].into_iter()), vec![1, 1, 0]);
        assert_eq!(apportion(5, [3, 3, 3].into_iter()), vec![2, 2, 1]);
        assert_eq!(apportion(5, [0, 0].into_iter()), vec![0, 0]);
    }

    #[test]
    fn splits_by_cell_then_by_size_and_covers_everything() {
        let mut p = problem(2, 4, 3);
        assert_eq!(split(&p).len(), 2);
        p.policy.solver.partition_instances = 6;
        let parts = split(&p);
        assert_eq!(parts.len(), 4);
        let mut seen: Vec<usize> = parts.iter().flat_map(|x| x.instances.clone()).collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..24).collect::<Vec<_>>());
        for part in &parts {
            let cells: std::collections::BTreeSet<&str> =
                part.problem.hosts.iter().map(|h| h.cell.as_str()).collect();
            assert_eq!(cells.len(), 1, "a part never spans cells");
            for inst in &part.problem.instances {
                assert!(inst
                    .candidates
                    .iter()
                    .all(|&h| h < part.problem.hosts.len()));
            }
        }
    }

    /// Each part gets one host of each headroom stratum: with four groups of three
    /// instances' hosts, the four crowded hosts go one to each part, whatever the shuffle.
    #[test]
    fn every_part_gets_crowded_and_roomy_hosts_alike() {
        let mut p = problem(1, 16, 3);
        let crowded = [1, 6, 7, 12];
        for inst in p.instances.iter_mut() {
            let demand = if crowded.contains(&inst.host) {
                1.5
            } else {
                0.5
            };
            inst.demand.cpu = Some(demand);
        }
        p.policy.solver.partition_instances = 12;
        let parts = split(&p);
        assert_eq!(parts.len(), 4);
        for part in &parts {
            let mine = part.hosts.iter().filter(|h| crowded.contains(h)).count();
            assert_eq!(mine, 1, "{:?}", part.hosts);
        }
    }

    /// Empty hosts, the roomiest of all, are spread over the parts too.
    #[test]
    fn empty_hosts_are_spread_over_the_parts() {
        let mut p = problem(1, 16, 3);
        for inst in p.instances.iter_mut().filter(|i| i.host >= 12) {
            inst.host -= 12;
        }
        p.choose_candidates();
        p.policy.solver.partition_instances = 12;
        let parts = split(&p);
        assert_eq!(parts.len(), 4);
        for part in &parts {
            let empty = part.hosts.iter().filter(|&&h| h >= 12).count();
            assert_eq!(empty, 1, "{:?}", part.hosts);
        }
    }

    /// Parts get the changes the warm start would make on their hosts: a part with nothing
    /// worth changing gets none while the budget is short, and no change is lost.
    #[test]
    fn change_budgets_follow_value_and_add_up() {
        // Cell c0 (hosts 0–3) has nothing worth changing.
        let mut p = problem(2, 4, 3);
        for inst in p.instances.iter_mut().filter(|i| i.host < 4) {
            inst.demand.cpu = Some(inst.current.cpu);
        }
        p.policy.solver.partition_instances = 6;
        p.policy.disruption.max_changes_percent = 100.0;
        for limit in [2, 5, 24] {
            p.policy.disruption.max_changes = limit;
            let parts = split(&p);
            assert_eq!(parts.len(), 4);
            let budgets: Vec<usize> = parts
                .iter()
                .map(|x| x.problem.policy.disruption.max_changes)
                .collect();
            assert_eq!(budgets.iter().sum::<usize>(), limit, "{budgets:?}");
            let per_host = mip::host_budgets(&p);
            let wanted: usize = per_host.iter().sum();
            for (part, &b) in parts.iter().zip(&budgets) {
                let quiet = part.hosts.iter().all(|&h| h < 4);
                if quiet && wanted >= limit {
                    assert_eq!(b, 0, "limit {limit}: {budgets:?}");
                }
                assert!(b >= part.hosts.iter().map(|&h| per_host[h]).sum::<usize>());
            }
        }
    }

    #[test]
    fn partitioned_solve_matches_whole_when_cells_are_independent() {
        let mut p = problem(2, 2, 3);
        p.policy.disruption.max_changes = 1000;
        p.policy.disruption.max_changes_percent = 100.0;
        p.policy.disruption.max_migrations = 1000;
        let (whole, _) = mip::solve(&p, None).unwrap();
        let (parts, stats) = solve_mip(&p).unwrap();
        assert_eq!(stats.parts, 2);
        let (a, b) = (p.assess(&whole).objective, p.assess(&parts).objective);
        assert!(
            (a - b).abs() < 1e-6 * a.abs().max(1.0),
            "whole {a} vs parts {b}"
        );
        assert!(b <= p.assess(&greedy::solve(&p)).objective + 1e-9);
    }
}
