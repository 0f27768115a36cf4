//! How the optimiser scales: greedy vs the partitioned MIP on synthetic fleets.
//!
//! `cargo bench --bench scale -- [SIZES…]` (default 1000 10000). `SCALE_PART` sets the
//! instances per POP part (default 100), `SCALE_LIMIT` and `SCALE_GAP` each part's time
//! limit in seconds and relative gap (default 5 and 0.01), `SCALE_SKIP_LP` skips the
//! partitioned plan's bound (the widened LP of `decompose::bound`, timed on its own row,
//! not in the MIP's) and `SCALE_SKIP_WHOLE` the unpartitioned solve. Each size N
//! is N instances on N/20 hosts in cells of 2000, shaped like the fixture traces, with the last
//! hour's peak as the demand (this measures the optimiser, not forecasting).
//! The MIP runs in POP parts of 100 instances, 5 s and 1% gap each (by default); the
//! unpartitioned solve (N <= 2000) gets 60 s. Prints one row per size and
//! configuration; see benches/RESULTS.md.

use chameleon::policy::Policy;
use chameleon::problem::Problem;
use chameleon::resource::Resource;
use chameleon::solve::decompose;
use chameleon::solve::greedy;
use chameleon::solve::mip;
use chameleon::synth::scenario::{self, ScenarioOptions};
use std::time::Instant;

/// The environment variable `name` parsed, or `default`.
fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn problem(instances: usize, cells: usize, policy: &Policy) -> Problem {
    let opts = ScenarioOptions {
        instances,
        hosts: instances / 20,
        cells,
        days: 1,
        seed: 1,
        step_minutes: 15,
        overcommit: 1.3,
        start: "2024-01-01T00:00:00Z".parse().unwrap(),
    };
    let (fleet, recent) = scenario::generate(&opts, policy).expect("valid options");
    let index: std::collections::HashMap<String, usize> =
        (0..instances).map(|k| (format!("vm{k:06}"), k)).collect();
    Problem::with_demand(&fleet, policy, |id, r: Resource| recent[index[id]][r])
}

fn row(label: &str, n: usize, p: &Problem, greedy_objective: f64, f: impl FnOnce() -> String) {
    let clock = Instant::now();
    let detail = f();
    println!(
        "{label:<28} {n:>7} {:>6} {:>9.2} {greedy_objective:>14.1} {detail}",
        p.hosts.len(),
        clock.elapsed().as_secs_f64()
    );
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1000, 10000]
    } else {
        sizes
    };
    println!(
        "{:<28} {:>7} {:>6} {:>9} {:>14} objective / bound / gap / parts / mip÷greedy",
        "configuration", "inst", "hosts", "seconds", "greedy obj"
    );
    for n in sizes {
        let mut policy = Policy::default();
        policy.migration.allow_cross_cell = false;
        policy.solver.partition_instances = env_or("SCALE_PART", 100);
        policy.solver.time_limit_seconds = env_or("SCALE_LIMIT", 5.0);
        policy.solver.relative_gap = env_or("SCALE_GAP", 0.01);
        policy.disruption.max_changes = n / 4;
        policy.disruption.max_migrations = n / 100;
        policy.solver.bound_instances = 0;
        let cells = (n / 2000).max(1);
        let p = problem(n, cells, &policy);
        let clock = Instant::now();
        let g = p.assess(&greedy::solve(&p)).objective;
        println!(
            "{:<28} {n:>7} {:>6} {:>9.2} {g:>14.1}",
            "greedy",
            p.hosts.len(),
            clock.elapsed().as_secs_f64()
        );
        let mut plan = None;
        row("mip, parts by cell", n, &p, g, || {
            let (s, st) = decompose::solve_mip(&p).expect("solves");
            let o = p.assess(&s).objective;
            plan = Some(s);
            format!("{o:.1} / - / - / {} / {:.4}", st.parts, o / g)
        });
        let plan = plan.expect("the row ran");
        if std::env::var_os("SCALE_SKIP_LP").is_none() {
            // The LP takes about as long as the solve at 10k and far longer at 100k (2,393 s
            // beside other jobs): not the parts' time limit.
            let mut q = p.clone();
            q.policy.solver.time_limit_seconds = 3600.0;
            row("bound (widened lp)", n, &p, g, || {
                let parts = decompose::split(&q);
                let b = decompose::bound(&q, &parts, &plan);
                let o = q.assess(&plan).objective;
                b.map_or("no bound".into(), |b| {
                    let gap = mip::relative_gap(o, b);
                    format!("bound {b:.1}, plan {:.4}% above it", gap * 100.0)
                })
            });
        }
        if n <= 2000 && std::env::var_os("SCALE_SKIP_WHOLE").is_none() {
            let mut one = p.clone();
            one.policy.migration.allow_cross_cell = true;
            one.policy.solver.partition_instances = 0;
            one.policy.solver.time_limit_seconds = 60.0;
            row("mip, unpartitioned", n, &one, g, || {
                let (s, st) = mip::solve(&one, Some(&greedy::solve(&one))).expect("solves");
                let o = one.assess(&s).objective;
                format!(
                    "{o:.1} / {:.1} / {:.4}% / 1 / {:.4}",
                    st.best_bound.unwrap_or(f64::NAN),
                    st.gap().unwrap_or(f64::NAN) * 100.0,
                    o / g
                )
            });
        }
    }
}
