//! What a replay measures: realised demand scored against the allocation in force.
//!
//! Each sample stands for its series' step (the most common spacing), so shortage
//! and slack integrate to resource-hours: core-hours, GiB-hours and Mbps-hours.
//! Totals add resources in cost units (1 core, 1 GiB, 100 Mbps, from the model
//! file), the same units the optimiser's objective uses.

use crate::resource::{PerResource, Resource};
use crate::units::round6;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;

/// A sample is short when demand exceeds the allocation by more than this.
const EPS: f64 = 1e-9;

/// One strategy's running totals.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Tally {
    /// Demand above allocation, in resource-hours (mem in GiB-hours).
    pub shortage: PerResource<f64>,
    /// Allocation above demand, in resource-hours (mem in GiB-hours).
    pub slack: PerResource<f64>,
    /// Samples scored, per resource.
    pub samples: PerResource<u64>,
    /// Samples whose demand exceeded the allocation in force, per resource.
    pub short_samples: PerResource<u64>,
    /// Instance-samples scored: `(instance, timestamp)` pairs with a sample.
    pub instance_samples: u64,
    /// Instance-samples short in any resource.
    pub short_instance_samples: u64,
    /// Instances changed, summed over plans.
    pub changes: u64,
    /// Migrations, summed over plans.
    pub migrations: u64,
    /// Memory copied by migrations (bytes).
    pub bytes_moved: u64,
    /// Credits paid by swap receivers.
    pub credits_spent: f64,
    /// Wall-clock seconds per planning interval (empty when timing is off).
    pub plan_seconds: Vec<f64>,
    /// Cumulative shortage and slack in cost units after each interval, for plots.
    pub cumulative: Vec<(f64, f64)>,
}

/// Realised samples of one interval: per `(instance, resource)`, the `(time, value)`
/// pairs and the hours each stands for.
pub type Window<'a> = Vec<(&'a str, Resource, f64, Vec<(i64, f64)>)>;

impl Tally {
    /// Scores one interval's realised samples against `alloc(instance, resource)`.
    pub fn score(
        &mut self,
        window: &Window,
        alloc: impl Fn(&str, Resource) -> f64,
        unit: &PerResource<f64>,
    ) {
        let mut pairs: BTreeMap<(&str, i64), bool> = BTreeMap::new();
        for &(id, r, hours, ref points) in window {
            let a = alloc(id, r);
            let scale = if r == Resource::Mem { 1024.0 } else { 1.0 };
            for &(t, v) in points {
                let short = v > a + EPS;
                self.shortage[r] += (v - a).max(0.0) * hours / scale;
                self.slack[r] += (a - v).max(0.0) * hours / scale;
                self.samples[r] += 1;
                self.short_samples[r] += u64::from(short);
                *pairs.entry((id, t)).or_default() |= short;
            }
        }
        self.instance_samples += pairs.len() as u64;
        self.short_instance_samples += pairs.values().filter(|&&s| s).count() as u64;
        self.cumulative
            .push((in_units(&self.shortage, unit), in_units(&self.slack, unit)));
    }
}

/// Resource-hours (mem in GiB-hours) summed in cost units.
pub(super) fn in_units(v: &PerResource<f64>, unit: &PerResource<f64>) -> f64 {
    Resource::ALL
        .iter()
        .map(|&r| {
            let scale = if r == Resource::Mem { 1024.0 } else { 1.0 };
            v[r] * scale / unit[r]
        })
        .sum()
}

/// The keys the report promises under `strategies.<name>`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Realised cpu demand above the allocation in force (core-hours).
    pub shortage_cpu_core_hours: f64,
    /// Realised mem demand above the allocation in force (GiB-hours).
    pub shortage_mem_gib_hours: f64,
    /// Short instance-samples / instance-samples.
    pub violation_rate: f64,
    /// Allocated cpu above realised demand (core-hours).
    pub slack_cpu_core_hours: f64,
    /// Allocated mem above realised demand (GiB-hours).
    pub slack_mem_gib_hours: f64,
    /// Instances changed, summed over plans.
    pub changes: u64,
    /// Migrations, summed over plans.
    pub migrations: u64,
    /// Memory copied by migrations (bytes).
    pub bytes_moved: u64,
    /// `null` when timing is off (`--no-timing`), so reports compare byte for byte.
    pub plan_seconds_p50: Option<f64>,
}

/// Everything else measured, under `details.<name>`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Details {
    /// Per resource, in core-hours, GiB-hours and Mbps-hours.
    pub shortage: PerResource<f64>,
    /// Allocation above realised demand, per resource, in the same units.
    pub slack: PerResource<f64>,
    /// Per resource, the share of samples that are short.
    pub violation_rate: PerResource<f64>,
    /// All resources in cost units (1 core, 1 GiB, 100 Mbps by default) times hours.
    pub shortage_units_hours: f64,
    /// Slack of all resources in cost units times hours.
    pub slack_units_hours: f64,
    /// Credits paid by swap receivers.
    pub credits_spent: f64,
    /// The longest planning time of any interval (seconds); `null` with `--no-timing`.
    pub plan_seconds_max: Option<f64>,
}

impl Tally {
    /// The promised keys, rounded to six decimals.
    pub fn summary(&self) -> Summary {
        Summary {
            shortage_cpu_core_hours: round6(self.shortage.cpu),
            shortage_mem_gib_hours: round6(self.shortage.mem),
            violation_rate: round6(ratio(self.short_instance_samples, self.instance_samples)),
            slack_cpu_core_hours: round6(self.slack.cpu),
            slack_mem_gib_hours: round6(self.slack.mem),
            changes: self.changes,
            migrations: self.migrations,
            bytes_moved: self.bytes_moved,
            plan_seconds_p50: self.percentile(0.5),
        }
    }

    /// The other metrics, rounded to six decimals.
    pub fn details(&self, unit: &PerResource<f64>) -> Details {
        Details {
            shortage: PerResource::from_fn(|r| round6(self.shortage[r])),
            slack: PerResource::from_fn(|r| round6(self.slack[r])),
            violation_rate: PerResource::from_fn(|r| {
                round6(ratio(self.short_samples[r], self.samples[r]))
            }),
            shortage_units_hours: round6(in_units(&self.shortage, unit)),
            slack_units_hours: round6(in_units(&self.slack, unit)),
            credits_spent: round6(self.credits_spent),
            plan_seconds_max: self.percentile(1.0),
        }
    }

    /// The nearest-rank percentile of planning time, if timed.
    fn percentile(&self, q: f64) -> Option<f64> {
        let mut xs = self.plan_seconds.clone();
        if xs.is_empty() {
            return None;
        }
        xs.sort_by(f64::total_cmp);
        let k = ((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len());
        Some(round6(xs[k - 1]))
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// A fixed-width table, one row per strategy, with total shortage, slack and
/// changes as ratios of `greedy`'s and `oracle`'s (where those ran).
pub fn table(rows: &[(String, Summary, Details)]) -> String {
    let find = |name: &str| rows.iter().find(|(n, _, _)| n == name);
    let (greedy, oracle) = (find("greedy"), find("oracle"));
    let mut out = format!(
        "{:<9} {:>10} {:>10} {:>7} {:>10} {:>10} {:>8} {:>6} {:>12} {:>9}   {:>8} {:>8} {:>8}   {:>8} {:>8}\n",
        "strategy", "short_cpu", "short_mem", "viol%", "slack_cpu", "slack_mem", "changes",
        "migr", "bytes_moved", "p50_s", "short/g", "slack/g", "chg/g", "short/o", "slack/o"
    );
    let _ = writeln!(
        out,
        "{:<9} {:>10} {:>10} {:>7} {:>10} {:>10}",
        "", "core-h", "GiB-h", "", "core-h", "GiB-h"
    );
    for (name, s, d) in rows {
        let vs = |base: Option<&(String, Summary, Details)>,
                  f: &dyn Fn(&Summary, &Details) -> f64| {
            base.map_or("-".into(), |(_, bs, bd)| ratio_text(f(s, d), f(bs, bd)))
        };
        let short = |_: &Summary, d: &Details| d.shortage_units_hours;
        let slack = |_: &Summary, d: &Details| d.slack_units_hours;
        let churn = |s: &Summary, _: &Details| s.changes as f64;
        let _ = writeln!(
            out,
            "{:<9} {:>10.3} {:>10.3} {:>7.2} {:>10.3} {:>10.3} {:>8} {:>6} {:>12} {:>9}   {:>8} {:>8} {:>8}   {:>8} {:>8}",
            name,
            s.shortage_cpu_core_hours,
            s.shortage_mem_gib_hours,
            s.violation_rate * 100.0,
            s.slack_cpu_core_hours,
            s.slack_mem_gib_hours,
            s.changes,
            s.migrations,
            s.bytes_moved,
            s.plan_seconds_p50.map_or("-".into(), |v| format!("{v:.3}")),
            vs(greedy, &short),
            vs(greedy, &slack),
            vs(greedy, &churn),
            vs(oracle, &short),
            vs(oracle, &slack),
        );
    }
    out +=
        "short and slack ratios compare totals in cost units (1 core, 1 GiB, 100 Mbps) x hours; \
            /g is against greedy, /o against oracle\n";
    out
}

fn ratio_text(a: f64, b: f64) -> String {
    if b.abs() < 1e-12 {
        if a.abs() < 1e-12 { "1.00" } else { "inf" }.into()
    } else {
        format!("{:.2}", a / b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let t = Tally {
            plan_seconds: vec![0.4, 0.1, 0.3, 0.2],
            ..Tally::default()
        };
        assert_eq!(t.percentile(0.5), Some(0.2));
        assert_eq!(t.percentile(1.0), Some(0.4));
        assert_eq!(Tally::default().percentile(0.5), None);
    }

    #[test]
    fn ratios_print_inf_only_for_a_zero_base() {
        assert_eq!(ratio_text(1.0, 2.0), "0.50");
        assert_eq!(ratio_text(0.0, 0.0), "1.00");
        assert_eq!(ratio_text(1.0, 0.0), "inf");
    }
}
