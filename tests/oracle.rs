//! A brute-force oracle for the MIP on tiny problems, with and without look-ahead.
//!
//! Every final allocation vector (and, where migration is on, every host choice)
//! is enumerated, together with every integer donor → receiver flow on the same
//! host; each candidate is checked against the constraints exactly as
//! docs/formats.md states them and priced with `Problem::assess`. HiGHS must find
//! the same minimum, and never do worse than greedy. With look-ahead, every path of
//! allocations over the intervals is enumerated with every swap flow in each.

use chameleon::policy::Policy;
use chameleon::problem::{HostSpec, InstanceSpec, Problem, Solution, Swap};
use chameleon::resource::{PerResource, Resource};
use chameleon::solve::greedy;
use chameleon::solve::mip::{self, SolveStatus};
use chameleon::units::round6;

use crate::util::Rng;

const TOL: f64 = 1e-9;

/// A random tiny problem: only cpu adjustable; mem and net fixed.
fn generate(seed: u64) -> Problem {
    let mut rng = Rng::new(seed);
    let mut policy = Policy::default();
    policy.solver.relative_gap = 0.0;
    let g = rng.pick(&[0.25, 0.5, 0.75, 1.0]);
    policy.granularity.cpu = g;
    policy.credit_price.cpu = rng.pick(&[10.0, 20.0, 60.0]);
    policy.weights.change = rng.pick(&[0.5, 2.0, 5.0]);
    policy.weights.idle = rng.pick(&[0.5, 1.0, 3.0]);
    policy.weights.shortfall = rng.pick(&[5.0, 100.0]);
    policy.weights.unit_move = rng.pick(&[0.5, 1.0]);
    // No fixed swap cost (pairs chosen after solving) or one (pairs in the program).
    policy.weights.swap = rng.pick(&[0.0, 1.0, 5.0]);
    policy.disruption.max_changes_percent = 100.0;
    // Hysteresis of one or two steps.
    policy.disruption.min_change.cpu = g * rng.pick(&[1.0, 1.0, 2.0]);
    if rng.chance(30) {
        policy.disruption.max_changes = 1 + rng.below(3);
        policy.disruption.max_changes_per_host = 1 + rng.below(3);
    }
    let migrate = seed.is_multiple_of(4);
    if migrate {
        policy.disruption.max_migrations = if rng.chance(80) { 1 + rng.below(2) } else { 0 };
    }
    let n_hosts = if migrate { 2 } else { 1 + rng.below(2) };
    let n_inst = 2 + rng.below(2);
    let mut instances = Vec::new();
    for k in 0..n_inst {
        // Spread the instances so that migrating cases have someone on each host sometimes.
        let host = if k < n_hosts && rng.chance(70) {
            k
        } else {
            rng.below(n_hosts)
        };
        let current = g * (4 + rng.below(3)) as f64;
        let down = rng.below(5) as f64;
        let mut up = rng.below(5) as f64;
        if down == 0.0 && up == 0.0 {
            up = 1.0;
        }
        // Sometimes off-grid bounds, to exercise the floor in the step count.
        let frac = if rng.chance(25) { 0.5 * g } else { 0.0 };
        let min = current - down * g - if down < 4.0 { frac } else { 0.0 };
        let max = current + up * g + if up < 4.0 { frac } else { 0.0 };
        // Bimodal demand: likely donors (below current) and likely receivers (above).
        let demand = if rng.chance(50) {
            rng.below((current * 20.0) as usize + 1) as f64 / 20.0
        } else {
            current + rng.below(((max - current + 2.0 * g) * 20.0) as usize + 1) as f64 / 20.0
        };
        let mem = 256.0 * (1 + rng.below(8)) as f64;
        let net = 10.0 * (1 + rng.below(10)) as f64;
        let credit_cap = rng.pick(&[0.0, 10.0, 60.0, 200.0, 200.0]);
        let credits = (rng.below((credit_cap * 4.0) as usize + 1)) as f64 / 4.0;
        // Baseline earnings around the forecast use, so the predicted burn sometimes bites.
        let earn_rate = 60.0 * demand * rng.pick(&[0.0, 0.8, 1.0, 1.0, 1.5]);
        instances.push(InstanceSpec {
            id: format!("i{k}"),
            host,
            current: PerResource {
                cpu: current,
                mem,
                net,
            },
            min: PerResource { cpu: min, mem, net },
            max: PerResource { cpu: max, mem, net },
            demand: PerResource {
                cpu: Some(demand),
                mem: None,
                net: None,
            },
            floor: Default::default(),
            // Sometimes a season's peak below the allocation, whose idle room costs more.
            ceiling: PerResource {
                cpu: rng
                    .chance(40)
                    .then(|| rng.below((max * 20.0) as usize + 1) as f64 / 20.0),
                mem: None,
                net: None,
            },
            credits,
            credit_cap,
            earn_rate,
            // In its cool-down: nothing may change.
            frozen: rng.chance(10),
            held: Default::default(),
            cooling: 0,
            ahead: Vec::new(),
            candidates: Vec::new(),
        });
    }
    let mut hosts = Vec::new();
    for h in 0..n_hosts {
        let used = |r: Resource| -> f64 {
            instances
                .iter()
                .filter(|i| i.host == h)
                .map(|i| i.current[r])
                .sum()
        };
        let cpu = used(Resource::Cpu)
            + if rng.chance(60) && !(migrate && h == 1) {
                g * rng.pick(&[0.0, 0.0, 1.0, 2.0])
            } else {
                g * (4 + rng.below(12)) as f64
            };
        let mem = used(Resource::Mem)
            + 256.0
                * if migrate && rng.chance(70) {
                    40.0
                } else {
                    rng.pick(&[0.0, 2.0, 40.0])
                };
        let net = used(Resource::Net)
            + 10.0
                * if migrate && rng.chance(70) {
                    100.0
                } else {
                    rng.pick(&[0.0, 3.0, 100.0])
                };
        hosts.push(HostSpec {
            id: format!("h{h}"),
            cell: format!("c{}", if rng.chance(50) { 0 } else { h }),
            capacity: PerResource { cpu, mem, net },
        });
    }
    if migrate {
        for inst in &mut instances {
            if rng.chance(80) && !inst.frozen {
                inst.candidates = vec![1 - inst.host];
            }
        }
    }
    Problem {
        hosts,
        instances,
        pools: Vec::new(),
        policy,
    }
}

fn steps(x: f64, g: f64) -> i64 {
    (x / g + 1e-9).floor().max(0.0) as i64
}

/// The range of cpu steps of instance `i`: `(down, up)` bounds.
fn bounds(p: &Problem, i: usize) -> (i64, i64) {
    let inst = &p.instances[i];
    if !inst.adjustable(Resource::Cpu) {
        return (0, 0);
    }
    let g = p.policy.granularity.cpu;
    (
        steps(inst.current.cpu - inst.min.cpu, g),
        steps(inst.max.cpu - inst.current.cpu, g),
    )
}

/// Same-host donor → receiver pairs exactly as `add_swaps` creates them (cpu only here).
fn pairs(p: &Problem) -> Vec<(usize, usize)> {
    let g = p.policy.granularity.cpu;
    let adjustable = |i: usize| p.instances[i].adjustable(Resource::Cpu);
    let mut out = Vec::new();
    for h in 0..p.hosts.len() {
        let on: Vec<usize> = p.on_host(h).filter(|&i| adjustable(i)).collect();
        let donors = on
            .iter()
            .copied()
            .filter(|&i| p.instances[i].current.cpu - p.instances[i].min.cpu >= g - 1e-9);
        let receivers: Vec<usize> = on
            .iter()
            .copied()
            .filter(|&j| {
                p.instances[j]
                    .demand
                    .cpu
                    .is_some_and(|d| d > p.instances[j].current.cpu)
            })
            .collect();
        for i in donors {
            for &j in receivers.iter().filter(|&&j| j != i) {
                out.push((i, j));
            }
        }
    }
    out
}

/// The smallest shrink on host `h`, in steps: the hysteresis minimum, or one step where the
/// residents' predicted shortfall (the highest of any interval) exceeds the host's free
/// room, as there a one-step shrink funds a short neighbour (docs/formats.md, `min_change`).
fn min_shrink(p: &Problem, h: usize) -> i64 {
    let on: Vec<&InstanceSpec> = p.instances.iter().filter(|i| i.host == h).collect();
    let pools: f64 = p
        .pools
        .iter()
        .filter(|pool| pool.host == h)
        .map(|pool| f64::from(pool.warm) * pool.size.cpu)
        .sum();
    let free = p.hosts[h].capacity.cpu - pools - on.iter().map(|i| i.current.cpu).sum::<f64>();
    let short: f64 = on
        .iter()
        .map(|i| {
            let peak = i.ahead.iter().filter_map(|d| d.cpu).chain(i.demand.cpu);
            peak.map(|d| (d - i.current.cpu).max(0.0))
                .fold(0.0, f64::max)
        })
        .sum();
    if short > free.max(0.0) + TOL {
        1
    } else {
        p.policy.min_steps(Resource::Cpu) as i64
    }
}

/// Everything but the flows: bounds, capacity per host and resource, and budgets.
fn placement_ok(p: &Problem, k: &[i64], host: &[usize]) -> bool {
    let g = p.policy.granularity.cpu;
    let over: Vec<bool> = (0..p.hosts.len())
        .map(|h| {
            p.on_host(h)
                .map(|i| p.instances[i].current.cpu)
                .sum::<f64>()
                > p.hosts[h].capacity.cpu + TOL
        })
        .collect();
    for (i, inst) in p.instances.iter().enumerate() {
        let (d, u) = bounds(p, i);
        // Hysteresis binds shrinks in place (a grow meets a forecast above the allocation
        // and has no minimum); a migrant may resize by any step as it lands.
        let stays = host[i] == inst.host;
        let ms = min_shrink(p, inst.host);
        if k[i] < -d || k[i] > u || (stays && k[i] < 0 && -k[i] < ms) {
            return false;
        }
        // Nothing shrinks below its forecast, except in place on an over-capacity host.
        let below = inst.current.cpu + g * (k[i] as f64) < inst.demand.cpu.unwrap_or(0.0) - TOL;
        if k[i] < 0 && below && !(stays && over[inst.host]) {
            return false;
        }
        if host[i] != inst.host && !inst.candidates.contains(&host[i]) {
            return false;
        }
    }
    for h in 0..p.hosts.len() {
        for r in Resource::ALL {
            // Final allocations on the host, plus instances leaving it at their current size
            // (they are still there while the others land).
            let used: f64 = (0..p.instances.len())
                .map(|i| {
                    let c = p.instances[i].current[r];
                    let fin = if r == Resource::Cpu {
                        c + g * k[i] as f64
                    } else {
                        c
                    };
                    let mut u = 0.0;
                    if host[i] == h {
                        u += fin;
                    }
                    if p.instances[i].host == h && host[i] != h {
                        u += c;
                    }
                    u
                })
                .sum();
            if used > p.hosts[h].capacity[r] + TOL {
                return false;
            }
        }
    }
    let changed: Vec<bool> = (0..p.instances.len())
        .map(|i| k[i] != 0 || host[i] != p.instances[i].host)
        .collect();
    let dis = &p.policy.disruption;
    if changed.iter().filter(|&&c| c).count() > dis.change_limit(p.instances.len()) {
        return false;
    }
    for h in 0..p.hosts.len() {
        if p.on_host(h).filter(|&i| changed[i]).count() > dis.max_changes_per_host {
            return false;
        }
    }
    let migrations = (0..p.instances.len())
        .filter(|&i| host[i] != p.instances[i].host)
        .count();
    migrations <= dis.max_migrations
}

/// The flow constraints: give/take, swap_stay, cover and credits.
fn flows_ok(p: &Problem, k: &[i64], host: &[usize], pairs: &[(usize, usize)], f: &[i64]) -> bool {
    let g = p.policy.granularity.cpu;
    let n = p.instances.len();
    let up = |i: usize| k[i].max(0);
    let down = |i: usize| (-k[i]).max(0);
    let moved = |i: usize| host[i] != p.instances[i].host;
    let (mut give, mut take) = (vec![0i64; n], vec![0i64; n]);
    for (&(i, j), &x) in pairs.iter().zip(f) {
        if x < 0 || (x > 0 && (moved(i) || moved(j))) {
            return false;
        }
        give[i] += x;
        take[j] += x;
    }
    if (0..n).any(|i| give[i] > down(i) || take[i] > up(i)) {
        return false;
    }
    for h in 0..p.hosts.len() {
        let on: Vec<usize> = p
            .on_host(h)
            .filter(|&i| p.instances[i].adjustable(Resource::Cpu))
            .collect();
        let grows: i64 = on.iter().filter(|&&i| !moved(i)).map(|&i| up(i)).sum();
        let swapped: i64 = pairs
            .iter()
            .zip(f)
            .filter(|((i, _), _)| p.instances[*i].host == h)
            .map(|(_, &x)| x)
            .sum();
        let used: f64 = p.on_host(h).map(|i| p.instances[i].current.cpu).sum();
        let freed = (p.hosts[h].capacity.cpu - used).max(0.0)
            + p.on_host(h)
                .filter(|&i| moved(i))
                .map(|i| p.instances[i].current.cpu)
                .sum::<f64>();
        if g * (grows - swapped) as f64 > freed + TOL {
            return false;
        }
    }
    let price = p.swap_price(Resource::Cpu, g);
    for (m, inst) in p.instances.iter().enumerate() {
        if !pairs.iter().any(|&(i, j)| i == m || j == m) {
            continue;
        }
        let paid = price * take[m] as f64;
        let got = price * give[m] as f64;
        if paid > p.spendable(m) + TOL || got > inst.credit_cap - inst.credits + TOL {
            return false;
        }
    }
    true
}

/// The feasible integer flow for `(k, host)` with the fewest donor → receiver pairs (each
/// pays the fixed swap cost), if there is one.
fn find_flows(
    p: &Problem,
    k: &[i64],
    host: &[usize],
    pairs: &[(usize, usize)],
) -> Option<Vec<i64>> {
    let limit: Vec<i64> = pairs
        .iter()
        .map(|&(i, j)| (-k[i]).max(0).min(k[j].max(0)))
        .collect();
    let used = |f: &[i64]| f.iter().filter(|&&x| x > 0).count();
    let mut f = vec![0i64; pairs.len()];
    let mut best: Option<Vec<i64>> = None;
    loop {
        let better = best.as_ref().is_none_or(|b| used(&f) < used(b));
        if better && flows_ok(p, k, host, pairs, &f) {
            best = Some(f.clone());
        }
        // The next flow, as an odometer over each pair's range.
        let mut at = 0;
        while at < f.len() && f[at] == limit[at] {
            f[at] = 0;
            at += 1;
        }
        if at == f.len() {
            return best;
        }
        f[at] += 1;
    }
}

fn solution(
    p: &Problem,
    k: &[i64],
    host: &[usize],
    pairs: &[(usize, usize)],
    f: &[i64],
) -> Solution {
    let g = p.policy.granularity.cpu;
    Solution {
        alloc: p
            .instances
            .iter()
            .enumerate()
            .map(|(i, inst)| PerResource {
                cpu: round6(inst.current.cpu + g * k[i] as f64),
                ..inst.current
            })
            .collect(),
        host: host.to_vec(),
        swaps: pairs
            .iter()
            .zip(f)
            .filter(|(_, &x)| x > 0)
            .map(|(&(donor, receiver), &x)| {
                let amount = round6(x as f64 * g);
                Swap {
                    donor,
                    receiver,
                    resource: Resource::Cpu,
                    amount,
                    credits: p.swap_price(Resource::Cpu, amount),
                }
            })
            .collect(),
        warm: Vec::new(),
        ahead: Vec::new(),
    }
}

/// The brute-force minimum and one solution attaining it.
fn brute_force(p: &Problem) -> (f64, Solution, usize) {
    let n = p.instances.len();
    let pairs = pairs(p);
    let ranges: Vec<(i64, i64)> = (0..n).map(|i| bounds(p, i)).collect();
    let choices: Vec<Vec<usize>> = p
        .instances
        .iter()
        .map(|inst| {
            let mut v = vec![inst.host];
            v.extend(&inst.candidates);
            v
        })
        .collect();
    let mut best: Option<(f64, Solution)> = None;
    let mut feasible = 0;
    let mut k: Vec<i64> = ranges.iter().map(|&(d, _)| -d).collect();
    loop {
        // Every host choice for this allocation.
        let mut pick = vec![0usize; n];
        loop {
            let host: Vec<usize> = (0..n).map(|i| choices[i][pick[i]]).collect();
            if placement_ok(p, &k, &host) {
                if let Some(f) = find_flows(p, &k, &host, &pairs) {
                    feasible += 1;
                    let s = solution(p, &k, &host, &pairs, &f);
                    let obj = p.assess(&s).objective;
                    if !best.as_ref().is_some_and(|(b, _)| obj >= *b) {
                        best = Some((obj, s));
                    }
                }
            }
            let mut at = 0;
            while at < n {
                pick[at] += 1;
                if pick[at] < choices[at].len() {
                    break;
                }
                pick[at] = 0;
                at += 1;
            }
            if at == n {
                break;
            }
        }
        let mut at = 0;
        while at < n {
            k[at] += 1;
            if k[at] <= ranges[at].1 {
                break;
            }
            k[at] = -ranges[at].0;
            at += 1;
        }
        if at == n {
            break;
        }
    }
    let (obj, s) = best.expect("the unchanged solution is always feasible");
    (obj, s, feasible)
}

/// Checks a strategy's solution against the MIP's constraints, with its own swaps as flows.
fn check_solution(p: &Problem, s: &Solution) -> Result<(), String> {
    let g = p.policy.granularity.cpu;
    let n = p.instances.len();
    let mut k = vec![0i64; n];
    for (i, inst) in p.instances.iter().enumerate() {
        let delta = (s.alloc[i].cpu - inst.current.cpu) / g;
        if (delta - delta.round()).abs() > 1e-6 {
            return Err(format!(
                "{}: cpu change {delta} is not whole steps",
                inst.id
            ));
        }
        k[i] = delta.round() as i64;
        if s.alloc[i].mem != inst.current.mem || s.alloc[i].net != inst.current.net {
            return Err(format!("{}: fixed resource changed", inst.id));
        }
    }
    if !placement_ok(p, &k, &s.host) {
        return Err("bounds, capacity or budget violated".into());
    }
    let pairs = pairs(p);
    let mut f = vec![0i64; pairs.len()];
    for sw in &s.swaps {
        let Some(at) = pairs
            .iter()
            .position(|&(i, j)| (i, j) == (sw.donor, sw.receiver))
        else {
            return Err(format!(
                "swap {}>{} is not a valid pair",
                sw.donor, sw.receiver
            ));
        };
        f[at] += (sw.amount / g).round() as i64;
        if (sw.credits - p.swap_price(sw.resource, sw.amount)).abs() > 1e-9 {
            return Err("swap credits mispriced".into());
        }
    }
    if !flows_ok(p, &k, &s.host, &pairs, &f) {
        return Err(format!("flows {f:?} violate give/take/cover/credits"));
    }
    Ok(())
}

const CASES: u64 = 800;

#[test]
fn mip_matches_brute_force_on_tiny_problems() {
    let mut migrating_cases = 0;
    let mut nontrivial = 0;
    let mut swapping_cases = 0;
    let mut paired_cases = 0;
    let mut tight = 0;
    for seed in 0..CASES {
        let p = generate(seed);
        let (bf, bf_solution, feasible) = brute_force(&p);
        assert!(feasible > 0);
        let lp = mip::relaxation_bound(&p).unwrap();
        assert!(
            lp <= bf + 1e-6,
            "seed {seed}: LP bound {lp} above the optimum {bf}"
        );
        if lp >= bf - 1e-6 {
            tight += 1;
        }
        check_solution(&p, &bf_solution).expect("brute force solution is feasible");
        let (s, stats) =
            mip::solve(&p, None).unwrap_or_else(|e| panic!("seed {seed}: MIP failed: {e}\n{p:#?}"));
        assert_eq!(stats.status, SolveStatus::Optimal, "seed {seed}");
        let assessed = p.assess(&s).objective;
        assert!(
            (stats.objective - assessed).abs() <= 1e-6,
            "seed {seed}: reported {} vs assessed {assessed}",
            stats.objective
        );
        if let Err(e) = check_solution(&p, &s) {
            panic!("seed {seed}: MIP solution violates the model: {e}\n{s:#?}\n{p:#?}");
        }
        assert!(
            (assessed - bf).abs() <= 1e-6,
            "seed {seed}: MIP {assessed} vs brute force {bf}\nMIP {s:#?}\nBF {bf_solution:#?}\n{p:#?}"
        );
        let gr = greedy::solve(&p);
        let gr_obj = p.assess(&gr).objective;
        assert!(
            assessed <= gr_obj + 1e-6,
            "seed {seed}: MIP {assessed} worse than greedy {gr_obj}"
        );
        if s.host != p.unchanged().host {
            migrating_cases += 1;
        }
        if !s.swaps.is_empty() {
            swapping_cases += 1;
            if p.policy.weights.swap > 0.0 {
                paired_cases += 1;
            }
        }
        if s != p.unchanged() {
            nontrivial += 1;
        }
    }
    // The generator must actually exercise the interesting parts of the model.
    assert!(
        nontrivial >= CASES / 3,
        "only {nontrivial} non-trivial cases"
    );
    eprintln!(
        "{CASES} cases: {nontrivial} non-trivial, {swapping_cases} with swaps \
         ({paired_cases} paired in the program), {migrating_cases} migrating; \
         the LP relaxation is exact in {tight}"
    );
    // The host's own bounds on each instance's moves, written into the program, make the
    // relaxation exact in 787 of these cases (726 without them).
    assert!(
        tight >= CASES * 95 / 100,
        "the LP relaxation is exact in only {tight}"
    );
    assert!(migrating_cases >= 2, "too few cases migrated");
    assert!(swapping_cases >= 10, "too few cases swapped");
    assert!(
        paired_cases >= 5,
        "too few cases swapped with a fixed swap cost"
    );
}

/// A hand-made full host with one receiver and two donors.
fn one_host(receiver_credits: f64) -> Problem {
    let mut p = generate(1);
    p.policy.granularity.cpu = 0.5;
    p.policy.credit_price.cpu = 60.0; // 0.5 core * 60 * 0.25 h = 7.5 credits a step
    p.policy.disruption.max_changes = 50;
    p.policy.disruption.max_changes_per_host = 8;
    p.policy.disruption.min_change.cpu = 0.5;
    let inst = |id: &str, cpu: f64, demand: f64, credits: f64| InstanceSpec {
        id: id.into(),
        host: 0,
        current: PerResource {
            cpu,
            mem: 1024.0,
            net: 10.0,
        },
        min: PerResource {
            cpu: 0.5,
            mem: 1024.0,
            net: 10.0,
        },
        max: PerResource {
            cpu: 4.0,
            mem: 1024.0,
            net: 10.0,
        },
        demand: PerResource {
            cpu: Some(demand),
            mem: None,
            net: None,
        },
        floor: Default::default(),
        ceiling: Default::default(),
        credits,
        credit_cap: 100.0,
        // Earns as much as it burns at 3 cores, so its whole balance is spendable.
        earn_rate: 180.0,
        frozen: false,
        held: Default::default(),
        cooling: 0,
        ahead: Vec::new(),
        candidates: vec![],
    };
    p.hosts = vec![HostSpec {
        id: "h0".into(),
        cell: "c0".into(),
        capacity: PerResource {
            cpu: 4.0,
            mem: 4096.0,
            net: 100.0,
        },
    }];
    p.instances = vec![
        inst("rx", 2.0, 3.0, receiver_credits),
        inst("dn", 2.0, 1.0, 0.0),
    ];
    p
}

/// The MIP's plan for `p`, after checking that it costs what brute force finds.
fn solve_as_brute_force(p: &Problem) -> Solution {
    let (bf, _, _) = brute_force(p);
    let (s, stats) = mip::solve(p, None).unwrap();
    assert!(
        (stats.objective - bf).abs() < 1e-6,
        "{} vs {bf}",
        stats.objective
    );
    s
}

/// Growing beyond free capacity needs a swap, which the receiver must afford.
#[test]
fn cover_row_needs_swap_and_credits() {
    // Full host: receiver wants +1 core, donor has 1 spare core. Credits for one step only.
    let p = one_host(7.5);
    let s = solve_as_brute_force(&p);
    assert_eq!(s.alloc[0].cpu, 2.5, "one affordable step: {s:#?}");
    assert_eq!(s.swaps.len(), 1);
    assert_eq!(p.balances(&s), vec![0.0, 7.5]);
}

/// The relaxation knows what the host can give: the receiver's credits pay for one step
/// of the two it wants, so its grow is one step or none, and the donor's shrink is only
/// worth the step the receiver can take. The LP relaxation then costs what the plan does,
/// where a coefficient of two steps let it buy the one step with half a change.
#[test]
fn the_relaxation_prices_a_grow_the_host_can_fund_only_in_part() {
    for credits in [7.5, 20.0] {
        let p = one_host(credits);
        let (bf, _, _) = brute_force(&p);
        let lp = mip::relaxation_bound(&p).unwrap();
        assert!(
            (lp - bf).abs() < 1e-6,
            "credits {credits}: LP {lp} vs optimum {bf}"
        );
    }
}

/// When the host's bounds leave nothing to decide (a receiver with no credits on a full
/// host, a donor with nothing to spare), HiGHS solves an LP and reports no MIP bound; the
/// plan's bound is then its own, exact, objective.
#[test]
fn a_program_with_nothing_to_decide_reports_its_objective_as_bound() {
    let mut p = one_host(0.0);
    p.instances[1].demand.cpu = Some(2.0);
    let (bf, _, _) = brute_force(&p);
    let (_, stats) = mip::solve(&p, None).unwrap();
    assert_eq!(stats.status, SolveStatus::Optimal);
    assert!(
        (stats.objective - bf).abs() < 1e-6,
        "{} vs {bf}",
        stats.objective
    );
    assert_eq!(
        (stats.best_bound, stats.gap()),
        (Some(stats.objective), Some(0.0)),
        "{stats:?}"
    );
}

/// With a fixed cost per swap the program pairs donors itself: the receiver takes both
/// steps from the donor that can give them, in one swap rather than two.
#[test]
fn a_fixed_swap_cost_takes_from_the_fewest_donors() {
    let mut p = one_host(20.0);
    let mut small = p.instances[1].clone();
    (small.id, small.current.cpu, small.demand.cpu) = ("sm".into(), 1.0, Some(0.5));
    p.instances.push(small);
    p.hosts[0].capacity.cpu = 5.0;
    for swap in [0.0, 5.0] {
        p.policy.weights.swap = swap;
        let s = solve_as_brute_force(&p);
        assert_eq!(s.alloc[0].cpu, 3.0, "the receiver gets both steps: {s:#?}");
        if swap > 0.0 {
            assert_eq!(s.swaps.len(), 1, "{s:#?}");
            assert_eq!((s.swaps[0].donor, s.swaps[0].amount), (1, 1.0));
        }
    }
}

/// A tiny look-ahead problem: one host, cpu only, two intervals (three instances) or three
/// (two instances), no migrations, random cool-downs, credits and budgets.
fn generate_ahead(seed: u64) -> Problem {
    let mut p = generate(seed * 4 + 1);
    let mut rng = Rng::new(seed ^ 0xA4EAD);
    p.policy.weights.swap = 0.0;
    p.policy.disruption.max_migrations = 0;
    p.policy.disruption.cooldown_minutes = rng.pick(&[0, 20, 60]);
    // Everyone on one host, with a little room or none.
    let g = p.policy.granularity.cpu;
    p.hosts.truncate(1);
    for inst in &mut p.instances {
        inst.host = 0;
    }
    let used = |r: Resource| p.instances.iter().map(|i| i.current[r]).sum::<f64>();
    p.hosts[0].capacity = PerResource {
        cpu: used(Resource::Cpu) + g * rng.pick(&[0.0, 1.0, 2.0, 6.0]),
        mem: used(Resource::Mem),
        net: used(Resource::Net),
    };
    let later = if p.instances.len() == 2 { 2 } else { 1 };
    for inst in &mut p.instances {
        // At most three steps either way, to keep the enumeration small.
        inst.min.cpu = inst.min.cpu.max(inst.current.cpu - 3.0 * g);
        inst.max.cpu = inst.max.cpu.min(inst.current.cpu + 3.0 * g);
        inst.candidates.clear();
        let top = ((inst.max.cpu + g) * 20.0) as usize;
        inst.ahead = (0..later)
            .map(|_| PerResource {
                cpu: Some(rng.below(top + 1) as f64 / 20.0),
                mem: None,
                net: None,
            })
            .collect();
        inst.cooling = rng.pick(&[0, 0, 10, 25]);
        let short = inst.demand.cpu.is_some_and(|d| d > inst.current.cpu + 1e-9);
        inst.frozen = inst.cooling > 0 && !short;
    }
    p
}

/// Where the look-ahead search stands after some intervals.
#[derive(Clone)]
struct Path {
    /// Steps from the current allocation, per interval so far.
    levels: Vec<Vec<i64>>,
    /// Per instance: credits paid less received so far, received so far, paid so far.
    net: Vec<f64>,
    got: Vec<f64>,
    /// The last interval each instance changed in.
    last_change: Vec<Option<usize>>,
}

/// Brute force over every allocation path and every swap flow of a [`generate_ahead`]
/// problem, with the rules of docs/formats.md ("Look-ahead") stated directly.
fn brute_force_ahead(p: &Problem) -> (f64, Solution) {
    let n = p.instances.len();
    let intervals = 1 + p.instances[0].ahead.len();
    let g = p.policy.granularity.cpu;
    let ms = min_shrink(p, 0);
    let start = Path {
        levels: Vec::new(),
        net: vec![0.0; n],
        got: vec![0.0; n],
        last_change: vec![None; n],
    };
    let mut best: Option<(f64, Solution)> = None;
    let mut stack = vec![start];
    while let Some(path) = stack.pop() {
        let j = path.levels.len();
        if j == intervals {
            let level =
                |t: usize, i: usize| p.instances[i].current.cpu + g * path.levels[t][i] as f64;
            let alloc = |t: usize, i: usize| PerResource {
                cpu: round6(level(t, i)),
                ..p.instances[i].current
            };
            let s = Solution {
                alloc: (0..n).map(|i| alloc(0, i)).collect(),
                host: vec![0; n],
                swaps: Vec::new(),
                warm: Vec::new(),
                ahead: (1..intervals)
                    .map(|t| (0..n).map(|i| alloc(t, i)).collect())
                    .collect(),
            };
            let obj = p.assess(&s).objective;
            if !best.as_ref().is_some_and(|(b, _)| obj >= *b) {
                best = Some((obj, s));
            }
            continue;
        }
        let prev: Vec<i64> = path.levels.last().cloned().unwrap_or(vec![0; n]);
        // Every level vector for interval j.
        let ranges: Vec<Vec<i64>> = (0..n).map(|i| levels_at(p, i, j, &prev)).collect();
        let mut pick = vec![0usize; n];
        'levels: loop {
            let k: Vec<i64> = (0..n).map(|i| ranges[i][pick[i]]).collect();
            if let Some(next) = step_ok(p, &path, &prev, &k, j, ms) {
                stack.extend(next);
            }
            let mut at = 0;
            while at < n {
                pick[at] += 1;
                if pick[at] < ranges[at].len() {
                    continue 'levels;
                }
                pick[at] = 0;
                at += 1;
            }
            break;
        }
    }
    best.expect("holding everything is feasible")
}

/// The levels instance `i` may take in interval `j`, before the rules between instances.
fn levels_at(p: &Problem, i: usize, j: usize, prev: &[i64]) -> Vec<i64> {
    let inst = &p.instances[i];
    let g = p.policy.granularity.cpu;
    let (d, u) = bounds(p, i);
    let over =
        p.instances.iter().map(|x| x.current.cpu).sum::<f64>() > p.hosts[0].capacity.cpu + TOL;
    // The lowest level the first interval allows: its forecast (whole steps above it, at
    // least the hysteresis minimum), or anything on an over-capacity host.
    let ms = min_shrink(p, 0);
    let above = |dem: f64| steps(inst.current.cpu - dem, g);
    let first_low = if over {
        if d >= ms {
            d
        } else {
            0
        }
    } else {
        let a = above(inst.demand.cpu.unwrap_or(0.0)).min(d);
        if a >= ms {
            a
        } else {
            0
        }
    };
    // Never above the whole step that covers the highest forecast of any interval: beyond
    // it a resize only adds idle cost.
    let top = inst.demand.cpu.map_or(0, |now| {
        let peak = inst.ahead.iter().filter_map(|a| a.cpu).fold(now, f64::max);
        ((peak - inst.current.cpu) / g).ceil().max(0.0) as i64
    });
    if j == 0 {
        return (-d..=u.min(top))
            .filter(|&k| k >= 0 || (-k >= ms && k >= -first_low))
            .collect();
    }
    let t = j - 1;
    let (lo, hi) = limits_of(p, i);
    if hi <= lo {
        return vec![prev[i]];
    }
    let hi = hi.min(top);
    let floor = (-lo).min(above(inst.ahead[t].cpu.unwrap_or(0.0)).max(first_low));
    (-floor..=hi).collect()
}

/// Whole steps `(−down, up)` within the instance's min and max.
fn limits_of(p: &Problem, i: usize) -> (i64, i64) {
    let inst = &p.instances[i];
    let g = p.policy.granularity.cpu;
    (
        -steps(inst.current.cpu - inst.min.cpu, g),
        steps(inst.max.cpu - inst.current.cpu, g),
    )
}

/// The paths that continue `path` with levels `k` in interval `j`, one per feasible flow.
fn step_ok(
    p: &Problem,
    path: &Path,
    prev: &[i64],
    k: &[i64],
    j: usize,
    ms: i64,
) -> Option<Vec<Path>> {
    let n = p.instances.len();
    let g = p.policy.granularity.cpu;
    let inst = |i: usize| &p.instances[i];
    if j == 0 && !placement_ok(p, k, &vec![0; n]) {
        return None;
    }
    let delta: Vec<i64> = (0..n).map(|i| k[i] - prev[i]).collect();
    let dis = &p.policy.disruption;
    let changed: Vec<usize> = (0..n).filter(|&i| delta[i] != 0).collect();
    if changed.len() > dis.change_limit(n) || changed.len() > dis.max_changes_per_host {
        return None;
    }
    for &i in &changed {
        if delta[i] < 0 && -delta[i] < ms {
            return None;
        }
        // Later, within a cool-down (from before the plan, or of a change planned earlier),
        // an instance may only grow.
        if j > 0 {
            let starts = j as u64 * u64::from(p.policy.interval_minutes);
            let recent = path.last_change[i].is_some_and(|s| {
                (j - s) as u64 * u64::from(p.policy.interval_minutes)
                    < u64::from(dis.cooldown_minutes)
            });
            if (recent || u64::from(inst(i).cooling) > starts) && delta[i] < 0 {
                return None;
            }
        }
    }
    let used = |lv: &[i64]| -> f64 { (0..n).map(|i| inst(i).current.cpu + g * lv[i] as f64).sum() };
    let cap = p.hosts[0].capacity.cpu;
    if used(k) > cap + TOL {
        return None;
    }
    let free = (cap - used(prev)).max(0.0);
    let growth: i64 = delta.iter().map(|&x| x.max(0)).sum();
    let price = p.swap_price(Resource::Cpu, g);
    // Every split of takes among growers and gives among shrinkers with equal totals.
    let mut out = Vec::new();
    let takes = splits(&delta.iter().map(|&x| x.max(0)).collect::<Vec<_>>());
    let gives = splits(&delta.iter().map(|&x| (-x).max(0)).collect::<Vec<_>>());
    for take in &takes {
        let taken: i64 = take.iter().sum();
        if g * (growth - taken) as f64 > free + TOL {
            continue;
        }
        for give in gives.iter().filter(|e| e.iter().sum::<i64>() == taken) {
            let mut next = path.clone();
            let mut ok = true;
            for i in 0..n {
                let (pay, get) = (price * take[i] as f64, price * give[i] as f64);
                let room = inst(i).credit_cap - inst(i).credits;
                if j == 0 {
                    ok &= pay <= p.spendable(i) + TOL && get <= room + TOL;
                } else {
                    ok &= take[i] == 0 || pay + path.net[i] <= p.spendable_by(i, j) + TOL;
                    // Received so far less paid before this interval stays under the cap.
                    let paid_before = path.net[i] + path.got[i];
                    ok &= give[i] == 0 || path.got[i] + get - paid_before <= room + TOL;
                }
                next.net[i] += pay - get;
                next.got[i] += get;
            }
            if !ok {
                continue;
            }
            next.levels.push(k.to_vec());
            for &i in &changed {
                next.last_change[i] = Some(j);
            }
            out.push(next);
        }
    }
    (!out.is_empty()).then_some(out)
}

/// Every vector `x` with `0 <= x[i] <= most[i]`.
fn splits(most: &[i64]) -> Vec<Vec<i64>> {
    let mut out = vec![Vec::new()];
    for &m in most {
        out = out
            .into_iter()
            .flat_map(|v| {
                (0..=m).map(move |x| {
                    let mut w = v.clone();
                    w.push(x);
                    w
                })
            })
            .collect();
    }
    out
}

#[test]
fn lookahead_matches_brute_force_on_tiny_problems() {
    let (mut differs_from_myopic, mut later_changes) = (0, 0);
    // Seed 15847 (found in a run of 20,000 seeds): the brute force grew an instance beyond
    // every forecast, only so that it could shrink by the hysteresis minimum later. The
    // documented rule (docs/formats.md, "Look-ahead") forbids that, and now so does it.
    for seed in (0..300).chain([15847]) {
        let p = generate_ahead(seed);
        let (bf, bf_solution) = brute_force_ahead(&p);
        let (s, stats) =
            mip::solve(&p, None).unwrap_or_else(|e| panic!("seed {seed}: MIP failed: {e}\n{p:#?}"));
        assert_eq!(stats.status, SolveStatus::Optimal, "seed {seed}");
        assert!(
            (stats.objective - bf).abs() <= 1e-6 * bf.abs().max(1.0),
            "seed {seed}: MIP {} vs brute force {bf}\n{p:#?}\nMIP {s:?}\nbrute force {bf_solution:?}",
            stats.objective
        );
        let greedy = greedy::solve(&p);
        assert!(
            stats.objective <= p.assess(&greedy).objective + 1e-9,
            "seed {seed}"
        );
        later_changes += usize::from((0..s.ahead.len()).any(|t| {
            (0..p.instances.len()).any(|i| {
                s.later(t, i)
                    != if t == 0 {
                        s.alloc[i]
                    } else {
                        s.later(t - 1, i)
                    }
            })
        }));
        let mut myopic = p.clone();
        for inst in &mut myopic.instances {
            inst.ahead.clear();
        }
        let (m, _) = mip::solve(&myopic, None).unwrap();
        differs_from_myopic += usize::from(m.alloc != s.alloc);
    }
    // The cases exercise what look-ahead adds.
    assert!(
        later_changes >= 30,
        "{later_changes} cases plan later changes"
    );
    assert!(
        differs_from_myopic >= 10,
        "{differs_from_myopic} first intervals differ from myopic"
    );
}
