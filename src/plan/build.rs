//! Building a plan from a problem and its solution: actions, their reasons, the header.

use super::order::link_dependencies;
use super::{
    Action, Change, ForecastRecord, ForecastSummary, Header, Plan, SolverSummary, TelemetrySummary,
    Totals,
};
use crate::fleet::Fleet;
use crate::forecast::{Demand, Forecasts};
use crate::problem::{Problem, Solution};
use crate::resource::Resource;
use crate::solve::mip::SolverStats;
use crate::telemetry::Telemetry;
use crate::units::{rfc3339, round6, MIB};
use chrono::Duration;
use std::fmt::Write as _;

/// Everything a plan records about how it was made.
pub struct Inputs<'a> {
    /// The fleet planned against; its fingerprint goes into the plan.
    pub fleet: &'a Fleet,
    /// The telemetry read, for `[plan.telemetry]`.
    pub telemetry: &'a Telemetry,
    /// The forecasts the plan was sized against, recorded as its `[[forecast]]` tables.
    pub forecasts: &'a Forecasts,
    /// The problem solved, with the model file's policy.
    pub problem: &'a Problem,
    /// The strategy that made the solution: `mip` or `greedy`.
    pub strategy: &'a str,
    /// How the solve ended, for `[plan.solver]`.
    pub stats: &'a SolverStats,
    /// Whether to record wall-clock solve time (off for reproducible `--now` runs).
    pub record_timing: bool,
}

impl Plan {
    /// Builds the plan for `solution`, with its id and digest.
    pub fn build(inputs: &Inputs, solution: &Solution) -> Plan {
        let p = inputs.problem;
        let now = inputs.forecasts.now;
        let before = p.assess(&p.unchanged());
        let after = p.assess(solution);
        let later = p.instances.first().map_or(0, |i| i.ahead.len());
        let ahead = later > 0;
        let actions = actions(p, inputs.forecasts, solution);
        let header = Header {
            id: String::new(),
            created_at: rfc3339(now),
            expires_at: rfc3339(now + Duration::minutes(i64::from(p.policy.plan_ttl_minutes))),
            interval_minutes: p.policy.interval_minutes,
            strategy: inputs.strategy.to_owned(),
            fleet_fingerprint: inputs.fleet.fingerprint(),
            digest: String::new(),
            telemetry: telemetry_summary(inputs),
            forecast: ForecastSummary {
                quantile: p.policy.forecast.quantile,
                horizon_minutes: p.policy.forecast.horizon_minutes,
                methods: inputs
                    .forecasts
                    .method_counts()
                    .into_iter()
                    .map(|(m, n)| (method_name(m), n))
                    .collect(),
            },
            solver: SolverSummary {
                status: inputs.stats.status.name().to_owned(),
                objective: round6(inputs.stats.objective),
                best_bound: inputs.stats.best_bound.map(round6),
                gap: inputs.stats.gap().map(round6),
                variables: inputs.stats.variables,
                constraints: inputs.stats.constraints,
                parts: inputs.stats.parts,
                solve_seconds: inputs.record_timing.then(|| round6(inputs.stats.seconds)),
                lookahead_intervals: ahead.then_some(later as u32 + 1),
                objective_later: ahead.then(|| round6(after.later)),
            },
            totals: Totals {
                shortfall_before: round6(before.shortfall),
                shortfall_after: round6(after.shortfall),
                objective_before: round6(before.objective),
                changes: after.changes,
                migrations: after.migrations,
                swaps: solution.swaps.len(),
                bytes_moved: after.bytes_moved as u64,
                credits_moved: round6(after.credits_moved),
            },
        };
        let mut plan = Plan {
            plan: header,
            actions,
            forecasts: forecast_records(inputs.forecasts),
        };
        let tail = plan.tail_toml();
        let stamp = now.format("%Y%m%dT%H%M%SZ");
        plan.plan.id = format!("{stamp}-{}", &plan.digest_with(&tail)[..8]);
        plan.plan.digest = plan.digest_with(&tail);
        plan
    }
}

fn method_name(m: crate::forecast::Method) -> String {
    m.name().to_owned()
}

fn forecast_records(f: &Forecasts) -> Vec<ForecastRecord> {
    f.demands
        .iter()
        .map(|((instance, resource), d)| ForecastRecord {
            instance: instance.clone(),
            resource: *resource,
            method: method_name(d.method),
            quantile: round6(d.quantile),
            mean: round6(d.mean),
            last: round6(d.last),
        })
        .collect()
}

fn telemetry_summary(inputs: &Inputs) -> TelemetrySummary {
    let f = inputs.forecasts;
    TelemetrySummary {
        file: inputs
            .telemetry
            .path
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned()),
        history_start: f.history_start.map_or(String::new(), rfc3339),
        history_end: f.history_end.map_or(String::new(), rfc3339),
        samples: f.samples,
        duplicates: inputs.telemetry.stats.duplicates,
        out_of_order: inputs.telemetry.stats.out_of_order,
        gaps_filled: f.gaps_filled,
    }
}

/// Why an allocation should change, in words an operator can check.
fn reason(p: &Problem, forecasts: &Forecasts, i: usize, r: Resource, to: f64) -> String {
    let inst = &p.instances[i];
    let unit = r.unit();
    let Some(d) = forecasts.get(&inst.id, r) else {
        return format!("no telemetry for {r}: kept at {} {unit}", inst.current[r]);
    };
    let (before, after) = (p.shortfall(i, r, inst.current[r]), p.shortfall(i, r, to));
    let mut text = format!(
        "{}; planned allocation {} -> {to} {unit}; predicted shortfall {before:.3} -> {after:.3} units",
        forecast_text(p, i, d, r),
        inst.current[r],
    );
    append_note(&mut text, d);
    text
}

/// `forecast p90 7.562 cores (seasonal_naive)`: what instance `i` was sized for, the whole
/// horizon's peak, or with look-ahead its first interval's (`… this interval`).
fn forecast_text(p: &Problem, i: usize, d: &Demand, r: Resource) -> String {
    let q = (p.policy.forecast.quantile * 100.0).round();
    let inst = &p.instances[i];
    let (value, when) = match (inst.ahead.is_empty(), inst.demand[r]) {
        (false, Some(first)) => (first, " this interval"),
        _ => (d.quantile, ""),
    };
    let mut text = format!(
        "forecast p{q} {value:.3} {}{when} ({})",
        r.unit(),
        method_name(d.method)
    );
    // The evidence rule raised the demand above the forecast (docs/formats.md, "Evidence").
    if let Some(planned) = inst.demand[r].filter(|&planned| planned > value + 1e-9) {
        let _ = write!(
            text,
            "; usage above the allocation in the last {} min: planned for {planned:.3}",
            p.policy.forecast.evidence_minutes
        );
    }
    text
}

fn append_note(text: &mut String, d: &Demand) {
    if !d.note.is_empty() {
        let _ = write!(text, "; {}", d.note);
    }
}

/// Turns a solution into ordered actions with dependencies.
pub(super) fn actions(p: &Problem, forecasts: &Forecasts, s: &Solution) -> Vec<Action> {
    let mut out: Vec<Action> = Vec::new();
    let mut alloc: Vec<_> = p.instances.iter().map(|i| i.current).collect();
    for (i, inst) in p.instances.iter().enumerate() {
        if s.host[i] != inst.host {
            let bytes = (inst.current.mem * MIB) as u64;
            let (from, to) = (&p.hosts[inst.host], &p.hosts[s.host[i]]);
            let scope = if from.cell == to.cell {
                "inside cell"
            } else {
                "across cells"
            };
            let reason = format!(
                "host {} cannot meet predicted demand; move {:.0} MiB {scope} {} -> {}",
                from.id, inst.current.mem, from.cell, to.cell
            );
            let change = Change::Migrate {
                from_host: from.id.clone(),
                to_host: to.id.clone(),
                bytes,
            };
            out.push(action(&inst.id, change, reason));
        }
    }
    for sw in &s.swaps {
        let (d, j) = (&p.instances[sw.donor], &p.instances[sw.receiver]);
        let r = sw.resource;
        let (from, donor_from) = (alloc[sw.receiver][r], alloc[sw.donor][r]);
        alloc[sw.receiver][r] = round6(from + sw.amount);
        alloc[sw.donor][r] = round6(donor_from - sw.amount);
        let donor_forecast = forecasts
            .get(&d.id, r)
            .map_or(String::new(), |f| forecast_text(p, sw.donor, f, r));
        let why = format!(
            "donor {} ({donor_forecast}) gives {donor_from} -> {}; receiver {}",
            d.id,
            alloc[sw.donor][r],
            reason(p, forecasts, sw.receiver, r, s.alloc[sw.receiver][r]),
        );
        let change = Change::Swap {
            donor: d.id.clone(),
            resource: r,
            from,
            to: alloc[sw.receiver][r],
            amount: sw.amount,
            credits: sw.credits,
        };
        out.push(action(&j.id, change, why));
    }
    for (i, inst) in p.instances.iter().enumerate() {
        for r in Resource::ALL {
            let (from, to) = (alloc[i][r], s.alloc[i][r]);
            if (to - from).abs() > 1e-9 {
                let change = Change::Resize {
                    resource: r,
                    from,
                    to,
                };
                out.push(action(&inst.id, change, reason(p, forecasts, i, r, to)));
            }
        }
    }
    for (k, pool) in p.pools.iter().enumerate() {
        let (from, to) = (pool.warm, s.warm[k]);
        if from != to {
            let why = format!(
                "profiler target {} warm of {}; {} -> {to} warm on {}",
                pool.target.unwrap_or(from),
                pool.total,
                from,
                p.hosts[pool.host].id
            );
            let change = Change::Pool {
                from: f64::from(from),
                to: f64::from(to),
            };
            out.push(action(&pool.id, change, why));
        }
    }
    for (k, a) in out.iter_mut().enumerate() {
        a.id = format!("a{:02}", k + 1);
    }
    link_dependencies(p, s, &mut out);
    out
}

/// An action on `instance`; ids and dependencies are filled in once all are built.
fn action(instance: &str, change: Change, reason: String) -> Action {
    Action {
        id: String::new(),
        instance: instance.to_owned(),
        change,
        reason,
        depends_on: Vec::new(),
        skip: false,
    }
}
