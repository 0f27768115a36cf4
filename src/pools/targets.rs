//! The resource pool coordinator: warm-instance targets per pool, for the optimiser to
//! trade against everything else on their hosts.
//!
//! `plan --jobs FILE` predicts them: the user profiles (docs/glossary.md#profiler) of
//! each pool, brought up to date with the job log, give the distribution of the
//! instances that jobs arriving before the next plan (one interval plus a cold start)
//! will ask for, and the target is its `[pools] quantile`. An operator may bring their
//! own targets instead (`plan --pool-targets FILE`, a small TOML file), which override
//! the predicted ones pool by pool. Without either, pools keep their counts and only
//! their capacity use is planned around.

use crate::file::{key_line, parse_toml, FileError};
use crate::fleet::Fleet;
use crate::jobs::Job;
use crate::profile::demand::new_demand;
use crate::profile::seed::SeedWeights;
use crate::profile::{arrival, Book};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The model file's `[pools]`: how warm targets are predicted from job history and
/// what a missing or an idle warm instance costs the optimiser.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PoolSettings {
    /// Keep warm this quantile of the instances that jobs arriving within the
    /// horizon (start-up plus the review or planning interval) will ask for.
    pub quantile: f64,
    /// The pool replay's `chameleon` strategy keeps an idle warm instance when it is
    /// expected to spare at least this many jobs a cold start per review window.
    pub idle_price: f64,
    /// Seconds between reviews of the warm count in the pool replay.
    pub review_seconds: f64,
    /// Seconds a cold instance takes to start.
    pub cold_start_seconds: f64,
    /// Per cost unit of each warm instance short of its target, per interval: a job
    /// that will wait for a cold start.
    pub cold_start_cost: f64,
    /// Per cost unit of each warm instance above its target, per interval.
    pub idle_warm_cost: f64,
    /// Where the user profiles persist, relative to the working dir; "" disables.
    pub state: String,
    /// The seed formula counts users active within this many minutes.
    pub seed_active_minutes: f64,
    /// The seed formula's factor weights.
    pub seed: SeedWeights,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            quantile: 0.99,
            idle_price: 0.01,
            review_seconds: 60.0,
            cold_start_seconds: 60.0,
            cold_start_cost: 100.0,
            idle_warm_cost: 1.0,
            state: "models/profiles.json".to_owned(),
            seed_active_minutes: 10.0,
            seed: SeedWeights::default(),
        }
    }
}

impl PoolSettings {
    /// The first setting out of range, as (key, message).
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        let q = self.quantile;
        if !(q > 0.0 && q < 1.0) {
            return Err((
                "quantile",
                format!("pools.quantile = {q} must be between 0 and 1"),
            ));
        }
        let positive = [
            ("idle_price", self.idle_price),
            ("review_seconds", self.review_seconds),
            ("seed_active_minutes", self.seed_active_minutes),
        ];
        let non_negative = [
            ("cold_start_seconds", self.cold_start_seconds),
            ("cold_start_cost", self.cold_start_cost),
            ("idle_warm_cost", self.idle_warm_cost),
            ("frequency", self.seed.frequency),
            ("intensity", self.seed.intensity),
            ("complexity", self.seed.complexity),
            ("duration", self.seed.duration),
        ];
        for (key, v) in positive {
            if !(v.is_finite() && v > 0.0 && v <= 1e9) {
                return Err((
                    key,
                    format!("pools.{key} = {v} must be > 0 and at most 1e9"),
                ));
            }
        }
        for (key, v) in non_negative {
            if !(v.is_finite() && (0.0..=1e9).contains(&v)) {
                return Err((key, format!("pools {key} = {v} must be from 0 to 1e9")));
            }
        }
        Ok(())
    }
}

/// One pool's predicted target and what it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    /// The pool's id.
    pub pool: String,
    /// Warm instances to keep unused: the quantile, capped at the pool's size.
    pub target: u32,
    /// The expected instances asked for by arriving jobs.
    pub mean: f64,
    /// Instances held by jobs running at `now`.
    pub running: u32,
}

/// Targets for the fleet's pools that have job history in `book`, at Unix time `now`.
pub fn predict_targets(
    book: &Book,
    fleet: &Fleet,
    jobs: &[Job],
    now: f64,
    horizon: f64,
    settings: &PoolSettings,
) -> Vec<Prediction> {
    let mut out = Vec::new();
    for pool in &fleet.pools {
        let Some(profiles) = book.pools.get(&pool.id) else {
            continue;
        };
        let outlook = new_demand(profiles, now, horizon);
        let running = jobs
            .iter()
            .filter(|j| j.pool == pool.id)
            .filter(|j| {
                let a = arrival(j);
                a <= now && (j.censored || a + j.run_seconds > now)
            })
            .map(|j| j.instances)
            .sum();
        out.push(Prediction {
            pool: pool.id.clone(),
            target: outlook
                .quantile(settings.quantile)
                .min(pool.warm + pool.cold),
            mean: outlook.mean(),
            running,
        });
    }
    out
}

/// Warm-instance targets by pool id, e.g. `web = 3`.
pub fn read_targets(path: &Path, fleet: &Fleet) -> Result<BTreeMap<String, u32>, FileError> {
    parse_targets(path, &crate::file::read(path)?, fleet)
}

/// Parses targets; every pool named must exist in `fleet`.
pub fn parse_targets(
    path: &Path,
    text: &str,
    fleet: &Fleet,
) -> Result<BTreeMap<String, u32>, FileError> {
    let invalid = |line, message: String| FileError::invalid(path, line, message);
    let targets: BTreeMap<String, u32> = parse_toml(path, text)?;
    let line_of_key = |id: &str| key_line(text, id).unwrap_or(1);
    for (id, &target) in &targets {
        let Some(pool) = fleet.pools.iter().find(|p| &p.id == id) else {
            return Err(invalid(
                line_of_key(id),
                format!("unknown pool `{id}` (not in the fleet)"),
            ));
        };
        let size = u64::from(pool.warm) + u64::from(pool.cold);
        if u64::from(target) > size {
            return Err(invalid(
                line_of_key(id),
                format!("pool `{id}` has {size} instances (warm and cold); a target of {target} cannot be met"),
            ));
        }
    }
    Ok(targets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fleet() -> Fleet {
        let text = r#"
[[host]]
id = "h0"
cell = "c0"
cpu = 8.0
mem = 8192.0
net = 1000.0

[[pool]]
id = "web"
host = "h0"
warm = 1
cold = 3
cpu = 1.0
mem = 1024.0
net = 10.0
"#;
        Fleet::parse(Path::new("fleet.toml"), text).unwrap()
    }

    #[test]
    fn reads_targets_and_names_bad_lines() {
        let path = Path::new("targets.toml");
        let t = parse_targets(path, "# from the profiler\nweb = 3\n", &fleet()).unwrap();
        assert_eq!(t["web"], 3);
        let e = parse_targets(path, "web = 3\nbatch = 1\n", &fleet())
            .unwrap_err()
            .to_string();
        assert_eq!(e, "targets.toml:2: unknown pool `batch` (not in the fleet)");
        let e = parse_targets(path, "\nweb = -1\n", &fleet())
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("targets.toml:2: "), "{e}");
    }
}
