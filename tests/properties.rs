//! Property tests over random small fleets and forecasts, end to end:
//! problem → strategy → plan → verify → execute.
//!
//! Every case is generated from one proptest-chosen seed (printed on failure),
//! so a failing case can be replayed exactly.

use chameleon::executor::{self, backend::Spec, OnFailure};
use chameleon::fleet::ledger::Ledger;
use chameleon::fleet::{Allocation, Fleet, Host, Instance, Pool};
use chameleon::forecast::{Demand, Forecasts, Method};
use chameleon::plan::{self, Plan, PlanError};
use chameleon::planner::Strategy;
use chameleon::policy::Policy;
use chameleon::problem::{Problem, Solution, Swap};
use chameleon::resource::Resource;
use chameleon::solve::{decompose, mip};
use chameleon::telemetry::Telemetry;
use chrono::{DateTime, Duration, TimeZone, Utc};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

use crate::util::Rng;

const EPS: f64 = 1e-6;
const STRATEGIES: [Strategy; 2] = [Strategy::Mip, Strategy::Greedy];

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 5, 12, 0, 0).unwrap()
}

/// Grid step per resource, matching the default model's granularity.
fn grid(r: Resource) -> f64 {
    match r {
        Resource::Cpu => 0.25,
        Resource::Mem => 256.0,
        Resource::Net => 10.0,
    }
}

fn allocation(rng: &mut Rng, r: Resource) -> Allocation {
    let g = grid(r);
    let min = g * (1 + rng.below(4)) as f64;
    let alloc = min + g * rng.below(9) as f64;
    let max = alloc + g * rng.below(9) as f64;
    Allocation { alloc, min, max }
}

/// A valid fleet of 2–3 hosts and 3–8 instances, every host within capacity.
fn fleet(rng: &mut Rng) -> Fleet {
    let n_hosts = 2 + rng.below(2);
    let n_inst = 3 + rng.below(6);
    let instances: Vec<Instance> = (0..n_inst)
        .map(|k| {
            let earn_rate = rng.pick(&[0.0, 0.5, 1.0, 5.0]);
            let cap = earn_rate * 24.0;
            Instance {
                id: format!("vm-{k}"),
                host: format!("h{}", rng.below(n_hosts)),
                pool: None,
                credits: rng.below((cap * 4.0) as usize + 1) as f64 / 4.0,
                earn_rate,
                changed_at: None,
                cpu: allocation(rng, Resource::Cpu),
                mem: allocation(rng, Resource::Mem),
                net: allocation(rng, Resource::Net),
            }
        })
        .collect();
    // Pools of spare instances on some hosts.
    let mut pools: Vec<Pool> = Vec::new();
    for h in 0..n_hosts {
        if rng.chance(50) {
            pools.push(Pool {
                id: format!("pool-{h}"),
                host: format!("h{h}"),
                warm: rng.below(3) as u32,
                cold: rng.below(3) as u32,
                cpu: grid(Resource::Cpu) * (1 + rng.below(4)) as f64,
                mem: grid(Resource::Mem) * (1 + rng.below(4)) as f64,
                net: grid(Resource::Net) * (1 + rng.below(2)) as f64,
            });
        }
    }
    let mut hosts = Vec::new();
    for h in 0..n_hosts {
        let id = format!("h{h}");
        let mut cap = [0.0; 3];
        for (c, r) in cap.iter_mut().zip(Resource::ALL) {
            let used: f64 = instances
                .iter()
                .filter(|i| i.host == id)
                .map(|i| i.resource(r).alloc)
                .sum::<f64>()
                + pools
                    .iter()
                    .filter(|p| p.host == id)
                    .map(|p| f64::from(p.warm) * p.size()[r])
                    .sum::<f64>();
            let slack = if rng.chance(50) {
                rng.below(3)
            } else {
                4 + rng.below(20)
            };
            *c = used + grid(r) * slack as f64;
        }
        hosts.push(Host {
            id,
            cell: format!("c{}", h % 2),
            cpu: cap[0],
            mem: cap[1],
            net: cap[2],
        });
    }
    Fleet {
        last_plan: None,
        hosts,
        instances,
        pools,
    }
}

/// Forecasts for most series, around and beyond the current allocations: a path of 12
/// five-minute steps (the default one-hour horizon) whose peak is the quantile.
fn forecasts(rng: &mut Rng, fleet: &Fleet) -> Forecasts {
    let mut demands = BTreeMap::new();
    for inst in &fleet.instances {
        for r in Resource::ALL {
            if !rng.chance(85) {
                continue;
            }
            let a = inst.resource(r);
            let top = (a.max * 1.3 + grid(r)) * 100.0;
            let path: Vec<f64> = (0..12)
                .map(|_| rng.below(top as usize + 1) as f64 / 100.0)
                .collect();
            let quantile = path.iter().fold(0.0, |m: f64, &q| m.max(q));
            demands.insert(
                (inst.id.clone(), r),
                Demand {
                    quantile,
                    path,
                    step: 300,
                    mean: quantile * 0.8,
                    last: quantile * 0.7,
                    method: Method::SeasonalNaive,
                    note: String::new(),
                },
            );
        }
    }
    // Some series peaked recently above their forecast: a floor no shrink goes below.
    let mut floors = BTreeMap::new();
    for (key, d) in &demands {
        if rng.chance(30) {
            floors.insert(key.clone(), d.quantile * rng.pick(&[1.2, 1.5, 3.0]));
        }
    }
    Forecasts {
        samples: demands.len() * 10,
        floors,
        demands,
        now: now(),
        history_start: Some(now() - Duration::days(7)),
        history_end: Some(now() - Duration::minutes(5)),
        ..Forecasts::default()
    }
}

fn policy() -> Policy {
    let mut p = Policy::default();
    // Exact optima, so objectives can be compared across problems.
    p.solver.relative_gap = 0.0;
    p
}

struct Case {
    fleet: Fleet,
    /// The profiler's warm targets, for some pools.
    targets: BTreeMap<String, u32>,
    forecasts: Forecasts,
    policy: Policy,
    rng: Rng,
}

fn case(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let mut fleet = fleet(&mut rng);
    // Some instances were changed recently: inside or outside the cool-down.
    for inst in &mut fleet.instances {
        if rng.chance(30) {
            inst.changed_at = Some(now() - Duration::minutes(rng.pick(&[10, 45, 90])));
        }
    }
    let forecasts = forecasts(&mut rng, &fleet);
    let mut targets = BTreeMap::new();
    for p in &fleet.pools {
        if rng.chance(70) {
            targets.insert(p.id.clone(), rng.below(5) as u32);
        }
    }
    let mut policy = policy();
    // Half the cases pair swaps in the program, at a fixed cost per swap.
    policy.weights.swap = rng.pick(&[0.0, 2.0]);
    // Some plan two to four 15-minute intervals jointly (the horizon is one hour).
    policy.lookahead_intervals = rng.pick(&[1, 1, 2, 4]);
    // Hysteresis of one step (none) or the shipped two.
    policy.disruption.min_change.cpu = grid(Resource::Cpu) * rng.pick(&[1.0, 2.0]);
    // Per-host budgets that bind.
    policy.disruption.max_changes_per_host = rng.pick(&[1, 2, 8]);
    Case {
        fleet,
        targets,
        forecasts,
        policy,
        rng,
    }
}

/// Solves with `strategy` and builds the plan.
fn plan_for(c: &Case, strategy: Strategy, telemetry: &Telemetry) -> (Plan, Solution) {
    let problem = problem_of(c, &c.fleet);
    let (solution, stats) = strategy
        .solve(&problem)
        .unwrap_or_else(|e| panic!("{} failed: {e}", strategy.name()));
    let inputs = plan::Inputs {
        fleet: &c.fleet,
        telemetry,
        forecasts: &c.forecasts,
        problem: &problem,
        strategy: strategy.name(),
        stats: &stats,
        record_timing: false,
    };
    (Plan::build(&inputs, &solution), solution)
}

/// The case's planning problem on `fleet`, with the cool-down applied.
fn problem_of(c: &Case, fleet: &Fleet) -> Problem {
    let mut p = Problem::new(fleet, &c.forecasts, &c.policy);
    p.apply_cooldown(fleet, now());
    p.set_pool_targets(&c.targets);
    p
}

/// The disruption rules a solution must keep: hysteresis (every shrink in place is zero or
/// at least the minimum change, one step on a tight host), the cool-down (frozen instances stay as they are), the budgets
/// (changes per host counted where the instance started), and the cell policy.
fn check_disruption(p: &Problem, s: &Solution) -> Result<(), String> {
    let a = p.assess(s);
    let dis = &p.policy.disruption;
    if a.changes > dis.change_limit(p.instances.len()) || a.migrations > dis.max_migrations {
        return Err(format!(
            "{} changes, {} migrations over budget",
            a.changes, a.migrations
        ));
    }
    let mut per_host = vec![0; p.hosts.len()];
    for (i, inst) in p.instances.iter().enumerate() {
        let moved = s.host[i] != inst.host;
        let resized = Resource::ALL
            .iter()
            .any(|&r| (s.alloc[i][r] - inst.current[r]).abs() > 1e-9);
        per_host[inst.host] += usize::from(moved || resized);
        if moved && !p.policy.migration.allow_cross_cell && !p.same_cell(inst.host, s.host[i]) {
            return Err(format!("{} crossed cells", inst.id));
        }
    }
    if let Some(h) = (0..p.hosts.len()).find(|&h| per_host[h] > dis.max_changes_per_host) {
        return Err(format!("{} changes on {}", per_host[h], p.hosts[h].id));
    }
    // A resource never flows both into and out of one instance: that would move credits
    // for nothing.
    for sw in &s.swaps {
        let back = |x: &&Swap| x.resource == sw.resource && x.donor == sw.receiver;
        if let Some(x) = s.swaps.iter().find(back) {
            return Err(format!(
                "{} both takes and gives {}: {sw:?}, {x:?}",
                p.instances[sw.receiver].id, sw.resource
            ));
        }
    }
    let tight = p.tight_hosts();
    for (i, inst) in p.instances.iter().enumerate() {
        for r in Resource::ALL {
            let shrink = (inst.current[r] - s.alloc[i][r]).max(0.0);
            let delta = (s.alloc[i][r] - inst.current[r]).abs();
            let least = p.min_shrink_steps(r, tight[inst.host][r]) * p.policy.granularity[r];
            // Hysteresis binds shrinks in place; a grow, or a migrant landing, may move by
            // any step.
            let in_place = s.host[i] == inst.host;
            if delta > 1e-9 && (inst.frozen || (in_place && shrink > 1e-9 && shrink < least - 1e-9))
            {
                return Err(format!(
                    "{} moved {r} by {delta} (min {least}, frozen {})",
                    inst.id, inst.frozen
                ));
            }
        }
        if inst.frozen && s.host[i] != inst.host {
            return Err(format!("{} migrated during its cool-down", inst.id));
        }
        // Donors give only their excess: nothing shrinks below what it keeps (its forecast,
        // or its recent peak if higher), except in place on a host already over capacity.
        let over = |r: Resource| {
            let used: f64 = p
                .on_host(inst.host)
                .map(|j| p.instances[j].current[r])
                .sum();
            used > p.hosts[inst.host].capacity[r] + EPS
        };
        for r in Resource::ALL {
            let Some(keep) = inst.keep(r) else { continue };
            let shrunk = s.alloc[i][r] < inst.current[r] - EPS;
            if shrunk && s.alloc[i][r] < keep - EPS && (s.host[i] != inst.host || !over(r)) {
                return Err(format!(
                    "{} {r} shrunk to {} below what it keeps, {keep}",
                    inst.id, s.alloc[i][r]
                ));
            }
        }
    }
    check_later(p, s)
}

/// The later intervals of a look-ahead keep the same rules: every host within capacity
/// (instances where the first interval leaves them, pools as it leaves them), every
/// allocation within bounds, hysteresis, the change budgets, and within a cool-down growth
/// only. (Credits are not checked here: a solution does not record later swaps; the oracle
/// checks them.)
fn check_later(p: &Problem, s: &Solution) -> Result<(), String> {
    let later = p.instances.first().map_or(0, |i| i.ahead.len());
    let dis = &p.policy.disruption;
    let minutes = u64::from(p.policy.interval_minutes);
    let tight = p.tight_hosts();
    // Per instance, the intervals (0 is the first) in which it changes.
    let mut changed_at: Vec<Vec<usize>> = p
        .instances
        .iter()
        .enumerate()
        .map(|(i, inst)| {
            let moved = s.host[i] != inst.host || s.alloc[i] != inst.current;
            if moved {
                vec![0]
            } else {
                Vec::new()
            }
        })
        .collect();
    for t in 0..later {
        let mut used = vec![[0.0f64; 3]; p.hosts.len()];
        for (k, pool) in p.pools.iter().enumerate() {
            for (j, r) in Resource::ALL.into_iter().enumerate() {
                used[pool.host][j] += f64::from(s.warm[k]) * pool.size[r];
            }
        }
        let mut changes = 0;
        for (i, inst) in p.instances.iter().enumerate() {
            let (before, after) = (
                if t == 0 {
                    s.alloc[i]
                } else {
                    s.later(t - 1, i)
                },
                s.later(t, i),
            );
            let mut changed = false;
            for (j, r) in Resource::ALL.into_iter().enumerate() {
                used[s.host[i]][j] += after[r];
                if after[r] < inst.min[r] - EPS || after[r] > inst.max[r] + EPS {
                    return Err(format!(
                        "{} {r} at +{}: {} outside bounds",
                        inst.id,
                        t + 1,
                        after[r]
                    ));
                }
                let delta = (before[r] - after[r]).max(0.0);
                // One step on a tight host, as in the first interval.
                let least = p.min_shrink_steps(r, tight[inst.host][r]) * p.policy.granularity[r];
                if delta > 1e-9 && delta < least - 1e-9 {
                    return Err(format!(
                        "{} {r} at +{}: moved {delta} < {least}",
                        inst.id,
                        t + 1
                    ));
                }
                changed |= delta > 1e-9;
                // Within a cool-down (left from before the plan, or after a change planned
                // earlier) an instance may only grow.
                let starts = (t as u64 + 1) * minutes;
                let cooling = u64::from(inst.cooling) > starts
                    || changed_at[i].iter().any(|&k| {
                        (t as u64 + 1 - k as u64) * minutes < u64::from(dis.cooldown_minutes)
                    });
                if cooling && after[r] < before[r] - 1e-9 {
                    return Err(format!(
                        "{} {r} at +{}: shrunk {} -> {} in its cool-down",
                        inst.id,
                        t + 1,
                        before[r],
                        after[r]
                    ));
                }
            }
            if changed {
                changed_at[i].push(t + 1);
            }
            changes += usize::from(changed);
        }
        if changes > dis.change_limit(p.instances.len()) {
            return Err(format!("{changes} changes at +{} over budget", t + 1));
        }
        for (h, host) in p.hosts.iter().enumerate() {
            for (j, r) in Resource::ALL.into_iter().enumerate() {
                if used[h][j] > host.capacity[r] + EPS {
                    return Err(format!(
                        "{} {r} at +{}: {} > {}",
                        host.id,
                        t + 1,
                        used[h][j],
                        host.capacity[r]
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Checks one intermediate fleet state; returns what is wrong, if anything.
fn check_state(f: &Fleet, total: f64) -> Vec<String> {
    let mut bad = Vec::new();
    for h in &f.hosts {
        let used = f.used(&h.id);
        for r in Resource::ALL {
            if used[r] > h.capacity()[r] + EPS {
                bad.push(format!(
                    "host {} {r}: used {} > capacity {}",
                    h.id,
                    used[r],
                    h.capacity()[r]
                ));
            }
        }
    }
    if (f.total_credits() - total).abs() > EPS {
        bad.push(format!("total credits {} != {total}", f.total_credits()));
    }
    for i in &f.instances {
        if i.credits < -EPS || i.credits > i.credit_cap() + EPS {
            bad.push(format!(
                "{}: balance {} outside [0, {}]",
                i.id,
                i.credits,
                i.credit_cap()
            ));
        }
        for r in Resource::ALL {
            let a = i.resource(r);
            if a.alloc < a.min - EPS || a.alloc > a.max + EPS {
                bad.push(format!("{} {r}: alloc {} outside bounds", i.id, a.alloc));
            }
        }
    }
    bad
}

/// `PROPTEST_CASES` overrides the default count, for longer soak runs.
fn config(cases: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    ProptestConfig {
        cases,
        failure_persistence: None,
        // Cases come from a seed; shrinking the seed means nothing.
        max_shrink_iters: 0,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config(24))]

    /// Both strategies' plans, with random actions skipped, execute without ever
    /// overcommitting a host or creating or losing credits; a second verify of the
    /// applied plan is refused as already applied.
    #[test]
    fn execution_is_safe_with_skips(seed in any::<u64>()) {
        let mut c = case(seed);
        let telemetry = Telemetry::default();
        let path = Path::new("test.plan.toml");
        let total = c.fleet.total_credits();
        prop_assert!(check_state(&c.fleet, total).is_empty(), "generator made an invalid fleet");
        for strategy in STRATEGIES {
            let (mut plan, _) = plan_for(&c, strategy, &telemetry);
            let skip_any = c.rng.chance(50);
            for a in &mut plan.actions {
                a.skip = skip_any && c.rng.chance(30);
            }
            let skipped = plan.actions.iter().any(|a| a.skip);
            let verified = plan
                .clone()
                .verify(path, &c.fleet, now() + Duration::minutes(1))
                .unwrap_or_else(|e| panic!("seed {seed} {}: verify failed: {e}", strategy.name()));
            let mut problems: Vec<String> = Vec::new();
            let mut steps = 0;
            let outcome = executor::execute(&verified, &c.fleet, path, &mut |f: &Fleet| {
                steps += 1;
                for m in check_state(f, total) {
                    problems.push(format!("after step {steps}: {m}"));
                }
            });
            let outcome = outcome.unwrap_or_else(|e| {
                panic!(
                    "seed {seed} {} (skips: {skipped}): execute failed: {e}\n{}",
                    strategy.name(),
                    plan.summary()
                )
            });
            prop_assert!(problems.is_empty(), "seed {seed} {}: {problems:?}\n{}", strategy.name(), plan.summary());
            prop_assert_eq!(outcome.applied.len() + outcome.skipped.len(), plan.actions.len());
            if !skipped {
                // The whole plan ran: the fleet now holds the solution.
                prop_assert!(outcome.skipped.is_empty());
            }
            let again = plan.clone().verify(path, &outcome.fleet, now() + Duration::minutes(2));
            prop_assert!(
                matches!(again, Err(PlanError::AlreadyApplied { .. })),
                "seed {seed}: second verify gave {again:?}"
            );
        }
    }

    /// The MIP is never worse than greedy, both (and the MIP's warm start) keep the
    /// disruption rules, and more capacity never raises the optimum.
    #[test]
    fn mip_beats_greedy_and_is_monotone_in_capacity(seed in any::<u64>()) {
        let mut c = case(seed);
        let problem = problem_of(&c, &c.fleet);
        let (mip, mip_stats) = Strategy::Mip.solve(&problem).expect("mip solves");
        let (greedy, greedy_stats) = Strategy::Greedy.solve(&problem).expect("greedy solves");
        for (name, s) in [("mip", &mip), ("greedy", &greedy)] {
            let checked = check_disruption(&problem, s);
            prop_assert!(checked.is_ok(), "seed {seed}: {name}: {:?}", checked);
        }
        prop_assert!(
            mip_stats.objective <= greedy_stats.objective + EPS,
            "seed {seed}: mip {} > greedy {}", mip_stats.objective, greedy_stats.objective
        );
        // The warm start keeps the same rules, is never worse than greedy, and HiGHS takes
        // it: with no time to search, it is the incumbent (an infeasible one is dropped).
        let start = mip::warm_start(&problem, &greedy);
        let checked = check_disruption(&problem, &start);
        prop_assert!(checked.is_ok(), "seed {seed}: start: {:?}", checked);
        let start_objective = problem.assess(&start).objective;
        prop_assert!(start_objective <= greedy_stats.objective + EPS);
        let mut instant = problem.clone();
        instant.policy.solver.time_limit_seconds = 0.0;
        let taken = mip::solve(&instant, Some(&start));
        prop_assert!(
            taken.as_ref().is_ok_and(|(_, st)| st.objective <= start_objective + EPS),
            "seed {seed}: HiGHS refused the warm start: {:?}", taken.map(|(_, st)| st)
        );
        // The program prices exactly what `assess` prices, later intervals included: at a
        // zero gap, HiGHS' bound is the assessed objective.
        prop_assert!(
            mip_stats.best_bound.is_some_and(|b| (b - mip_stats.objective).abs() <= EPS * mip_stats.objective.abs().max(1.0)),
            "seed {seed}: bound {:?} vs assessed {}", mip_stats.best_bound, mip_stats.objective
        );
        // Also from a cold start, which must reach the same optimum.
        let (_, cold) = mip::solve(&problem, None).expect("mip solves cold");
        prop_assert!(
            (cold.objective - mip_stats.objective).abs() <= EPS,
            "seed {seed}: cold {} vs warm {}", cold.objective, mip_stats.objective
        );
        let mut bigger = c.fleet.clone();
        let h = c.rng.below(bigger.hosts.len());
        let host = &mut bigger.hosts[h];
        let extra = |rng: &mut Rng, r| grid(r) * rng.below(8) as f64;
        host.cpu += extra(&mut c.rng, Resource::Cpu);
        host.mem += extra(&mut c.rng, Resource::Mem);
        host.net += extra(&mut c.rng, Resource::Net);
        // The same program with more capacity: candidate pruning (a heuristic that reads
        // capacity) is held fixed, so only the capacity rows change.
        let mut roomier = problem_of(&c, &bigger);
        for (wide, narrow) in roomier.instances.iter_mut().zip(&problem.instances) {
            wide.candidates = narrow.candidates.clone();
        }
        // Solved whole: the partitioned path would choose candidates again, per part.
        let (_, more) = mip::solve(&roomier, None).expect("mip solves");
        prop_assert!(
            more.objective <= cold.objective + EPS,
            "seed {seed}: more capacity on h{h} raised the optimum {} -> {}",
            cold.objective, more.objective
        );
    }

    /// Same inputs, same plan text; applying the full plan yields the solution's fleet,
    /// and the applied plan is then refused as already applied.
    #[test]
    fn plans_are_deterministic_and_apply_once(seed in any::<u64>()) {
        let c = case(seed);
        let telemetry = Telemetry::default();
        let path = Path::new("test.plan.toml");
        for strategy in STRATEGIES {
            let (first, solution) = plan_for(&c, strategy, &telemetry);
            let (second, _) = plan_for(&c, strategy, &telemetry);
            prop_assert_eq!(first.to_text(), second.to_text());
            let verified = first
                .clone()
                .verify(path, &c.fleet, now())
                .expect("fresh plan verifies");
            let outcome = executor::execute(&verified, &c.fleet, path, &mut |_| {})
                .unwrap_or_else(|e| panic!("seed {seed} {}: {e}\n{}", strategy.name(), first.summary()));
            prop_assert_eq!(outcome.applied.len(), first.actions.len());
            prop_assert_eq!(outcome.fleet.last_plan.as_deref(), Some(first.plan.id.as_str()));
            // The durable apply (sim backend, journal, ledger) writes the same fleet, and the
            // ledger agrees with its credits.
            let dir = tempfile::tempdir().unwrap();
            let fleet_path = dir.path().join("fleet.toml");
            c.fleet.write_atomic(&fleet_path).unwrap();
            let plan_path = first.write(dir.path()).unwrap();
            let request = executor::Request {
                plan: Some(&plan_path),
                fleet: &fleet_path,
                ledger: None,
                backend: &Spec::Sim,
                on_failure: OnFailure::Stop,
                resume: false,
                wait: std::time::Duration::ZERO,
                now: now(),
            };
            let report = executor::apply(&request)
                .unwrap_or_else(|e| panic!("seed {seed} {}: durable apply: {e}", strategy.name()));
            prop_assert_eq!(&report.fleet, &outcome.fleet);
            prop_assert_eq!(&Fleet::read(&fleet_path).unwrap(), &outcome.fleet);
            Ledger::open(&report.ledger)
                .unwrap()
                .check_fleet(&outcome.fleet, &fleet_path)
                .unwrap_or_else(|e| panic!("seed {seed}: {e}"));
            // The fleet now holds exactly the solution (instances keep their order).
            for (k, inst) in outcome.fleet.instances.iter().enumerate() {
                let host = &c.fleet.hosts[solution.host[k]].id;
                prop_assert_eq!(&inst.host, host, "seed {}: {} host", seed, inst.id);
                for r in Resource::ALL {
                    prop_assert!(
                        (inst.resource(r).alloc - solution.alloc[k][r]).abs() <= EPS,
                        "seed {seed}: {} {r} is {} not {}", inst.id, inst.resource(r).alloc, solution.alloc[k][r]
                    );
                }
            }
            for (k, pool) in outcome.fleet.pools.iter().enumerate() {
                prop_assert_eq!(pool.warm, solution.warm[k], "seed {}: pool {} warm", seed, &pool.id);
                prop_assert_eq!(pool.warm + pool.cold, c.fleet.pools[k].warm + c.fleet.pools[k].cold);
            }
            let again = first.clone().verify(path, &outcome.fleet, now());
            prop_assert!(
                matches!(again, Err(PlanError::AlreadyApplied { .. })),
                "seed {seed}: second verify gave {again:?}"
            );
        }
    }
}

proptest! {
    // About one case in sixteen leaves a part's short instance for the rescue to move.
    #![proptest_config(config(200))]

    /// Split into parts of a host or two, where each part's migrations can only go to its
    /// own hosts, the merged plan (with the rescue's moves across parts) keeps the same
    /// rules: the disruption budgets (per host too), hysteresis and the cell policy, never
    /// worse than greedy, and it executes without overcommitting a host or creating or
    /// losing credits.
    #[test]
    fn partitioned_plans_keep_the_rules_and_execute(seed in any::<u64>()) {
        let mut c = case(seed);
        c.policy.lookahead_intervals = 1;
        c.policy.solver.partition_instances = c.rng.pick(&[1, 2, 3]);
        // Cells that may not be crossed (they also split the problem by cell).
        c.policy.migration.allow_cross_cell = c.rng.chance(50);
        let problem = problem_of(&c, &c.fleet);
        let telemetry = Telemetry::default();
        let (plan, mip) = plan_for(&c, Strategy::Mip, &telemetry);
        let checked = check_disruption(&problem, &mip);
        prop_assert!(checked.is_ok(), "seed {seed}: {:?}", checked);
        let (_, greedy) = plan_for(&c, Strategy::Greedy, &telemetry);
        let (m, g) = (problem.assess(&mip).objective, problem.assess(&greedy).objective);
        prop_assert!(m <= g + EPS, "seed {seed}: mip {m} > greedy {g}");
        let path = Path::new("test.plan.toml");
        let total = c.fleet.total_credits();
        let verified = plan
            .clone()
            .verify(path, &c.fleet, now())
            .unwrap_or_else(|e| panic!("seed {seed}: verify failed: {e}"));
        let mut problems: Vec<String> = Vec::new();
        let outcome = executor::execute(&verified, &c.fleet, path, &mut |f: &Fleet| {
            problems.extend(check_state(f, total));
        })
        .unwrap_or_else(|e| panic!("seed {seed}: execute failed: {e}\n{}", plan.summary()));
        prop_assert!(problems.is_empty(), "seed {seed}: {problems:?}\n{}", plan.summary());
        for (k, inst) in outcome.fleet.instances.iter().enumerate() {
            prop_assert_eq!(&inst.host, &c.fleet.hosts[mip.host[k]].id, "seed {}", seed);
        }
    }
}

/// Regression: the MIP places a migrant by its *final* size, but the executor moves it at
/// its *current* size and resizes afterwards, so a plan that migrates an instance into
/// room it only fits after shrinking cannot be executed.
#[test]
fn migrate_then_shrink_is_executable() {
    let alloc = |alloc, min, max| Allocation { alloc, min, max };
    let fleet = Fleet {
        last_plan: None,
        pools: Vec::new(),
        hosts: vec![
            Host {
                id: "h0".into(),
                cell: "c0".into(),
                cpu: 4.0,
                mem: 1536.0,
                net: 100.0,
            },
            Host {
                id: "h1".into(),
                cell: "c0".into(),
                cpu: 2.0,
                mem: 8192.0,
                net: 100.0,
            },
        ],
        instances: vec![Instance {
            id: "vm-a".into(),
            host: "h0".into(),
            pool: None,
            credits: 0.0,
            earn_rate: 1.0,
            changed_at: None,
            cpu: alloc(4.0, 0.25, 4.0),
            mem: alloc(1024.0, 256.0, 4096.0),
            net: alloc(10.0, 10.0, 10.0),
        }],
    };
    let demand = |quantile| Demand {
        quantile,
        path: Vec::new(),
        step: 0,
        mean: quantile,
        last: quantile,
        method: Method::SeasonalNaive,
        note: String::new(),
    };
    let mut demands = BTreeMap::new();
    demands.insert(("vm-a".to_string(), Resource::Cpu), demand(1.0));
    demands.insert(("vm-a".to_string(), Resource::Mem), demand(2560.0));
    let forecasts = Forecasts {
        demands,
        now: now(),
        history_start: None,
        history_end: None,
        samples: 2,
        ..Forecasts::default()
    };
    let c = Case {
        fleet,
        targets: BTreeMap::new(),
        forecasts,
        policy: policy(),
        rng: Rng::new(0),
    };
    let telemetry = Telemetry::default();
    let (plan, _) = plan_for(&c, Strategy::Mip, &telemetry);
    let path = Path::new("test.plan.toml");
    let verified = plan
        .clone()
        .verify(path, &c.fleet, now())
        .expect("verifies");
    if let Err(e) = executor::execute(&verified, &c.fleet, path, &mut |_| {}) {
        panic!("{e}\n{}", plan.summary());
    }
}

/// A plan solved in parts reports a bound it is never below: the LP relaxation of the whole
/// program widened to every move the parts and the rescue make. The whole program's own LP
/// is no such bound (its movers are pruned differently): it lies above the plan in some of
/// these cases, which is what the widening is for.
#[test]
fn a_plan_in_parts_is_never_below_its_bound() {
    let (mut partitioned, mut whole_above) = (0, 0);
    for seed in 0..2400 {
        let mut c = case(seed);
        c.policy.lookahead_intervals = 1;
        c.policy.solver.partition_instances = c.rng.pick(&[1, 2, 3]);
        c.policy.migration.allow_cross_cell = c.rng.chance(50);
        let p = problem_of(&c, &c.fleet);
        let (s, stats) = decompose::solve_mip(&p).expect("solves");
        if stats.parts < 2 {
            continue;
        }
        partitioned += 1;
        let objective = p.assess(&s).objective;
        assert!(
            stats.best_bound.is_some(),
            "seed {seed}: small fleets get a bound"
        );
        let parts = decompose::split(&p);
        let bound = decompose::bound(&p, &parts, &s).expect("lp solves");
        assert!(
            bound <= objective + EPS,
            "seed {seed}: bound {bound} above the plan's objective {objective}"
        );
        if mip::relaxation_bound(&p).expect("lp solves") > objective + EPS {
            whole_above += 1;
        }
    }
    assert!(partitioned > 2000, "{partitioned} cases in parts");
    assert!(
        whole_above > 0,
        "the cases never tell a widened bound from the whole LP"
    );
}
