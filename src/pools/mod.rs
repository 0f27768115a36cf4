//! Pool replay: how many jobs of a real job log would have waited for a cold instance,
//! and how many idle warm instance-hours it took, under each warm-pool strategy.
//!
//! Each job needs `instances` instances of its pool for `run_seconds` from its start
//! (or, without one, its submit) time. Each `pool` value is replayed on its own (or
//! all jobs in one pool) by the discrete-event simulator in [`sim`]; the strategies
//! ([`strategy`], [`hybrid`]) decide what stays warm. With a fit cut-off, the whole log
//! is replayed (learners see every job before it, and keep learning online from the
//! past only), but only what happens from the cut-off on is counted, so knobs can be
//! chosen on the earlier days and judged on the later ones. Besides each strategy's
//! reported setting, each knob is swept for the trade-off curve.

pub mod hybrid;
pub mod metrics;
pub mod plot;
pub mod sim;
pub mod strategy;

use crate::jobs::Job;
use chrono::{DateTime, SecondsFormat, Utc};
use hybrid::{Hybrid, HybridParams};
use metrics::{Metrics, Summary};
use serde::Serialize;
use sim::Demand;
use std::collections::BTreeMap;
use strategy::{KeepAlive, Oracle, Reactive, Strategy};

/// A strategy family, as named on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    KeepAlive,
    Reactive,
    Hybrid,
    Oracle,
}

impl std::str::FromStr for Family {
    type Err = String;
    fn from_str(s: &str) -> Result<Family, String> {
        match s {
            "keepalive" => Ok(Family::KeepAlive),
            "reactive" => Ok(Family::Reactive),
            "hybrid" => Ok(Family::Hybrid),
            "oracle" => Ok(Family::Oracle),
            _ => Err(format!(
                "unknown pool strategy `{s}` (keepalive, reactive, hybrid, oracle)"
            )),
        }
    }
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::KeepAlive => "keepalive",
            Family::Reactive => "reactive",
            Family::Hybrid => "hybrid",
            Family::Oracle => "oracle",
        }
    }

    /// The knob swept for the trade-off curve, and its values.
    fn sweep(self) -> (&'static str, Vec<f64>) {
        let minutes = vec![0.0, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 240.0];
        match self {
            Family::KeepAlive => ("keep_alive_minutes", minutes),
            Family::Oracle => ("idle_budget_minutes", minutes),
            Family::Reactive => (
                "buffer_instances",
                vec![0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0],
            ),
            Family::Hybrid => ("tail_percentile", vec![0.5, 0.75, 0.9, 0.95, 0.99]),
        }
    }

    /// The settings reported in the table.
    fn reported(self) -> Vec<f64> {
        match self {
            Family::KeepAlive => vec![10.0, 20.0],
            Family::Oracle => vec![10.0],
            Family::Reactive => vec![REACTIVE_BUFFER],
            Family::Hybrid => vec![HybridParams::default().tail],
        }
    }
}

/// The reactive strategy's reported buffer, in instances.
pub const REACTIVE_BUFFER: f64 = 16.0;

/// One strategy at one knob value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Setting {
    pub family: Family,
    pub knob: f64,
}

impl Setting {
    /// A fresh strategy for one pool.
    pub fn build(&self, cold_start: f64) -> Box<dyn Strategy> {
        match self.family {
            Family::KeepAlive => Box::new(KeepAlive {
                seconds: self.knob * 60.0,
            }),
            Family::Reactive => Box::new(Reactive {
                buffer: self.knob as u32,
            }),
            Family::Hybrid => Box::new(Hybrid::new(HybridParams {
                tail: self.knob,
                ..HybridParams::default()
            })),
            Family::Oracle => Box::new(Oracle {
                budget: self.knob * 60.0,
                cold_start,
            }),
        }
    }

    /// The table's name for it, e.g. `keepalive-10m`.
    pub fn label(&self) -> String {
        match self.family {
            Family::KeepAlive | Family::Oracle => format!("{}-{}m", self.family.name(), self.knob),
            Family::Reactive => format!("reactive-{}", self.knob),
            Family::Hybrid => format!("hybrid-p{}", self.knob * 100.0),
        }
    }
}

/// What to replay and how.
#[derive(Debug, Clone)]
pub struct Config {
    pub families: Vec<Family>,
    pub cold_start_seconds: f64,
    /// Count only jobs (and starts, idle time) from this time on.
    pub fit_until: Option<DateTime<Utc>>,
    /// Replay all jobs against one pool, ignoring the `pool` column.
    pub one_pool: bool,
}

/// A strategy setting and its figures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub strategy: String,
    pub family: Family,
    pub knob: f64,
    pub metrics: Summary,
}

/// One family's trade-off curve.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Curve {
    pub family: Family,
    pub knob: String,
    pub points: Vec<Row>,
}

/// The pool replay's result, written as the report JSON.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub jobs: usize,
    pub pools: Vec<String>,
    /// What the hybrid policy keys its histograms on.
    pub application: &'static str,
    pub cold_start_seconds: f64,
    pub start: String,
    pub end: String,
    /// The first counted time (the log's start without a cut-off).
    pub judged_from: String,
    pub rows: Vec<Row>,
    pub curves: Vec<Curve>,
    pub hybrid: HybridParams,
}

/// The log as demands, per pool, in arrival order; and the origin time.
struct Log {
    origin: DateTime<Utc>,
    end: DateTime<Utc>,
    pools: BTreeMap<String, Vec<Demand>>,
}

fn arrival(j: &Job) -> DateTime<Utc> {
    j.start.unwrap_or(j.submit)
}

fn seconds(t: DateTime<Utc>, origin: DateTime<Utc>) -> f64 {
    (t - origin).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6
}

impl Log {
    fn new(jobs: &[Job], one_pool: bool) -> Log {
        let origin = jobs.iter().map(arrival).min().expect("at least one job");
        let end = jobs.iter().map(arrival).max().expect("at least one job");
        let mut apps: BTreeMap<&str, usize> = BTreeMap::new();
        let mut pools: BTreeMap<String, Vec<Demand>> = BTreeMap::new();
        for j in jobs {
            let n = apps.len();
            let app = *apps.entry(j.user.as_str()).or_insert(n);
            let pool = if one_pool { "all" } else { j.pool.as_str() };
            pools.entry(pool.to_owned()).or_default().push(Demand {
                arrival: seconds(arrival(j), origin),
                run: j.run_seconds,
                instances: j.instances,
                app,
            });
        }
        for demands in pools.values_mut() {
            demands.sort_by(|a, b| a.arrival.total_cmp(&b.arrival));
        }
        Log { origin, end, pools }
    }

    fn replay(&self, setting: &Setting, cold_start: f64, from: f64) -> Summary {
        let mut total = Metrics::new(from);
        for demands in self.pools.values() {
            let mut strategy = setting.build(cold_start);
            total.merge(sim::simulate(demands, strategy.as_mut(), cold_start, from));
        }
        total.summary()
    }
}

/// Replays `jobs` under each family's reported settings and its sweep.
pub fn replay(jobs: &[Job], config: &Config) -> Report {
    let log = Log::new(jobs, config.one_pool);
    let from_time = config.fit_until.unwrap_or(log.origin);
    // Without a cut-off everything counts, pre-warms booting before the first job too.
    let from = config
        .fit_until
        .map_or(f64::NEG_INFINITY, |t| seconds(t, log.origin));
    let cold = config.cold_start_seconds;
    let row = |family: Family, knob: f64| {
        let setting = Setting { family, knob };
        Row {
            strategy: setting.label(),
            family,
            knob,
            metrics: log.replay(&setting, cold, from),
        }
    };
    let mut families = config.families.clone();
    families.sort();
    families.dedup();
    let rows = families
        .iter()
        .flat_map(|&f| f.reported().into_iter().map(move |k| (f, k)))
        .map(|(f, k)| row(f, k))
        .collect();
    let curves = families
        .iter()
        .map(|&family| {
            let (knob, values) = family.sweep();
            Curve {
                family,
                knob: knob.to_owned(),
                points: values.into_iter().map(|k| row(family, k)).collect(),
            }
        })
        .collect();
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    Report {
        jobs: jobs.len(),
        pools: log.pools.keys().cloned().collect(),
        application: "user",
        cold_start_seconds: cold,
        start: time(log.origin),
        end: time(log.end),
        judged_from: time(from_time),
        rows,
        curves,
        hybrid: HybridParams::default(),
    }
}

impl Report {
    /// The terminal table: each reported setting, with ratios to `keepalive-10m` and
    /// to `oracle-10m` where those were replayed.
    pub fn table(&self) -> String {
        let find = |f: Family| {
            self.rows
                .iter()
                .find(|r| r.family == f && r.knob == 10.0)
                .map(|r| &r.metrics)
        };
        let (ka, oracle) = (find(Family::KeepAlive), find(Family::Oracle));
        let ratio = |a: f64, b: Option<f64>| match b {
            Some(b) if b > 0.0 => format!("{:.2}", a / b),
            Some(_) if a == 0.0 => "1.00".to_owned(),
            _ => "-".to_owned(),
        };
        let mut out = format!(
            "pool replay: {} jobs in {} pool(s), {} to {}, judged from {}, cold start {} s\n",
            self.jobs,
            self.pools.len(),
            self.start,
            self.end,
            self.judged_from,
            self.cold_start_seconds
        );
        out += &format!(
            "{:<16} {:>6} {:>8} {:>7} {:>9} {:>9} {:>10} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
            "strategy",
            "jobs",
            "delayed",
            "share",
            "delay_h",
            "p95_s",
            "idle_ih",
            "starts",
            "dly/ka10",
            "idl/ka10",
            "dly/orc",
            "idl/orc"
        );
        for r in &self.rows {
            let m = &r.metrics;
            let d = m.delayed as f64;
            out += &format!(
                "{:<16} {:>6} {:>8} {:>7.3} {:>9.2} {:>9.1} {:>10.1} {:>8} {:>8} {:>8} {:>8} {:>8}\n",
                r.strategy,
                m.jobs,
                m.delayed,
                m.delayed_share,
                m.total_delay_hours,
                m.p95_delay_seconds,
                m.idle_instance_hours,
                m.instance_starts,
                ratio(d, ka.map(|k| k.delayed as f64)),
                ratio(m.idle_instance_hours, ka.map(|k| k.idle_instance_hours)),
                ratio(d, oracle.map(|o| o.delayed as f64)),
                ratio(m.idle_instance_hours, oracle.map(|o| o.idle_instance_hours)),
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::{sim, Demand, Family, Setting, Summary};
    use proptest::prelude::*;

    fn arb_demands() -> impl proptest::strategy::Strategy<Value = Vec<Demand>> {
        proptest::collection::vec((0u32..3000, 0u32..400, 1u32..4, 0usize..3), 1..25).prop_map(
            |mut v| {
                v.sort();
                v.into_iter()
                    .map(|(a, r, n, app)| Demand {
                        arrival: f64::from(a),
                        run: f64::from(r),
                        instances: n,
                        app,
                    })
                    .collect()
            },
        )
    }

    fn run(demands: &[Demand], setting: &Setting, cold: f64) -> Summary {
        let mut s = setting.build(cold);
        sim::simulate(demands, s.as_mut(), cold, f64::NEG_INFINITY).summary()
    }

    proptest! {
        /// No strategy whose longest warm-and-unused stretch fits the oracle's idle
        /// budget delays fewer jobs than the oracle at that budget.
        #[test]
        fn the_oracle_is_never_beaten_on_cold_starts_at_its_idle_budget(
            demands in arb_demands(),
            cold in 1u32..200,
            budget in 0u32..20,
            knob in 0u32..20,
            buffer in 0u32..4,
        ) {
            let cold = f64::from(cold);
            let oracle = run(&demands, &Setting { family: Family::Oracle, knob: f64::from(budget) * 0.25 }, cold);
            let others = [
                Setting { family: Family::KeepAlive, knob: f64::from(knob) * 0.25 },
                Setting { family: Family::Reactive, knob: f64::from(buffer) },
                Setting { family: Family::Hybrid, knob: 0.99 },
            ];
            for setting in others {
                let s = run(&demands, &setting, cold);
                if s.longest_idle_seconds <= f64::from(budget) * 15.0 {
                    prop_assert!(
                        oracle.delayed <= s.delayed,
                        "{} delays {} < oracle's {}", setting.label(), s.delayed, oracle.delayed
                    );
                }
            }
        }

        #[test]
        fn the_replay_is_deterministic(demands in arb_demands(), cold in 0u32..200) {
            for family in [Family::KeepAlive, Family::Reactive, Family::Hybrid, Family::Oracle] {
                let setting = Setting { family, knob: 2.0 };
                let a = run(&demands, &setting, f64::from(cold));
                let b = run(&demands, &setting, f64::from(cold));
                prop_assert_eq!(a, b);
            }
        }
    }
}
