//! The fleet state: hosts with capacities and the instances placed on them.
//!
//! This is the planner's view of the world (the seed's RPM, docs/glossary.md#rpm) and the
//! file the `sim` backend rewrites.
//! It is read strictly (unknown fields, duplicate or unknown ids, negative or
//! non-finite numbers are errors naming the file and line), fingerprinted so a
//! plan can prove it was made against this exact state, and written atomically.

pub mod ledger;
pub mod lock;

use crate::file::{hex, parse_toml, write_atomic, FileError};
use crate::resource::{PerResource, Resource};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;
use std::path::Path;

/// Credits accrue for at most this many hours of baseline earnings.
pub const CREDIT_CAP_HOURS: f64 = 24.0;

/// A physical host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Host {
    /// The host's id, unique in the fleet.
    pub id: String,
    /// The failure/network domain; crossing cells costs more to migrate.
    pub cell: String,
    /// Capacity in cores.
    pub cpu: f64,
    /// Capacity in MiB.
    pub mem: f64,
    /// Capacity in Mbps.
    pub net: f64,
}

impl Host {
    /// Capacity per resource.
    pub fn capacity(&self) -> PerResource<f64> {
        PerResource {
            cpu: self.cpu,
            mem: self.mem,
            net: self.net,
        }
    }
}

/// One resource's allocation on an instance, with its bounds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Allocation {
    /// What the instance holds now, in the resource's unit (cores, MiB, Mbps).
    pub alloc: f64,
    /// The least the planner may allocate, in the same unit.
    pub min: f64,
    /// The most the planner may allocate, in the same unit.
    pub max: f64,
}

/// A pool of spare instances on one host: `warm` ones run (and use `size` each of the
/// host's capacity) ready to take load at once; `cold` ones are stopped and use nothing.
/// How many should be warm is the profiler's call, fed to the planner as a target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    /// The pool's id, unique among pools.
    pub id: String,
    /// The id of the host its instances run on.
    pub host: String,
    /// Instances running, each using the pool's size of the host's capacity.
    pub warm: u32,
    /// Instances stopped, using nothing; a plan may start up to this many.
    pub cold: u32,
    /// Cores used by each warm instance.
    pub cpu: f64,
    /// MiB used by each warm instance.
    pub mem: f64,
    /// Mbps used by each warm instance.
    pub net: f64,
}

impl Pool {
    /// What one warm instance uses, per resource.
    pub fn size(&self) -> PerResource<f64> {
        PerResource {
            cpu: self.cpu,
            mem: self.mem,
            net: self.net,
        }
    }
}

/// A virtual instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Instance {
    /// The instance's id, unique in the fleet (the telemetry's `instance` column).
    pub id: String,
    /// The id of the host it runs on.
    pub host: String,
    /// The id of the `[[pool]]` it belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Burst-credit balance (1 credit = 1 vCPU-minute at 100%).
    pub credits: f64,
    /// Baseline earnings in credits per hour; the balance is capped at 24 h of them.
    pub earn_rate: f64,
    /// When an applied plan last changed this instance, for the optimiser's cool-down.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_at: Option<DateTime<Utc>>,
    /// Its CPU allocation and bounds, in cores.
    pub cpu: Allocation,
    /// Its memory allocation and bounds, in MiB.
    pub mem: Allocation,
    /// Its network allocation and bounds, in Mbps.
    pub net: Allocation,
}

impl Instance {
    /// The allocation of one resource.
    pub fn resource(&self, r: Resource) -> &Allocation {
        match r {
            Resource::Cpu => &self.cpu,
            Resource::Mem => &self.mem,
            Resource::Net => &self.net,
        }
    }

    /// The allocation of one resource, mutably.
    pub fn resource_mut(&mut self, r: Resource) -> &mut Allocation {
        match r {
            Resource::Cpu => &mut self.cpu,
            Resource::Mem => &mut self.mem,
            Resource::Net => &mut self.net,
        }
    }

    /// The credit cap: 24 hours of baseline earnings.
    pub fn credit_cap(&self) -> f64 {
        self.earn_rate * CREDIT_CAP_HOURS
    }
}

/// The whole fleet, as stored in `fleet.toml`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fleet {
    /// The id of the last plan applied to this state, so a second apply is a no-op.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_plan: Option<String>,
    /// The `[[host]]` tables.
    #[serde(default, rename = "host")]
    pub hosts: Vec<Host>,
    /// The `[[instance]]` tables.
    #[serde(default, rename = "instance")]
    pub instances: Vec<Instance>,
    /// The `[[pool]]` tables: spare instances, warm or cold, per host.
    #[serde(default, rename = "pool", skip_serializing_if = "Vec::is_empty")]
    pub pools: Vec<Pool>,
}

impl Fleet {
    /// Reads and validates a fleet file.
    pub fn read(path: &Path) -> Result<Fleet, FileError> {
        Self::parse(path, &crate::file::read(path)?)
    }

    /// Parses and validates fleet TOML; `path` is used in messages.
    pub fn parse(path: &Path, text: &str) -> Result<Fleet, FileError> {
        let fleet: Fleet = parse_toml(path, text)?;
        fleet
            .validate()
            .map_err(|(entry, message)| FileError::invalid(path, entry.line_in(text), message))?;
        Ok(fleet)
    }

    /// Fails if an instance was changed after `now` (a wrong clock or `--now`, or a hand
    /// edit): its cool-down would hold it for as long as the stamp lies ahead.
    pub fn check_changed_before(&self, path: &Path, now: DateTime<Utc>) -> Result<(), FileError> {
        let Some((k, i, at)) = self
            .instances
            .iter()
            .enumerate()
            .find_map(|(k, i)| Some((k, i, i.changed_at.filter(|&t| t > now)?)))
        else {
            return Ok(());
        };
        let line = crate::file::read_text(path)
            .map_or(0, |text| Entry::Instance(k, "changed_at").line_in(&text));
        Err(FileError::Invalid {
            path: path.to_owned(),
            line,
            message: format!(
                "instance `{}`: changed_at {} is after the planning time {}; fix the clock, --now or the entry",
                i.id,
                at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                now.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            ),
        })
    }

    fn validate(&self) -> Result<(), (Entry, String)> {
        let mut seen = BTreeSet::new();
        for (k, h) in self.hosts.iter().enumerate() {
            crate::id::check(&h.id).map_err(|m| (Entry::Host(k, "id"), format!("host {m}")))?;
            if !seen.insert(h.id.as_str()) {
                return Err((
                    Entry::Host(k, "id"),
                    format!("duplicate host id `{}`", h.id),
                ));
            }
            for (r, &c) in h.capacity().iter() {
                if !c.is_finite() || c < 0.0 {
                    let message = format!(
                        "host `{}`: {r} capacity {c} must be a finite number >= 0",
                        h.id
                    );
                    return Err((Entry::Host(k, r.name()), message));
                }
            }
        }
        let hosts = seen;
        let mut seen = BTreeSet::new();
        for (k, i) in self.instances.iter().enumerate() {
            crate::id::check(&i.id)
                .map_err(|m| (Entry::Instance(k, "id"), format!("instance {m}")))?;
            if !seen.insert(i.id.as_str()) {
                return Err((
                    Entry::Instance(k, "id"),
                    format!("duplicate instance id `{}`", i.id),
                ));
            }
            if !hosts.contains(i.host.as_str()) {
                let message = format!("instance `{}`: unknown host `{}`", i.id, i.host);
                return Err((Entry::Instance(k, "host"), message));
            }
            validate_instance(i).map_err(|(key, m)| {
                (Entry::Instance(k, key), format!("instance `{}`: {m}", i.id))
            })?;
            if let Some(pool) = i.pool.as_deref() {
                if !self.pools.iter().any(|p| p.id == pool) {
                    let message = format!("instance `{}`: unknown pool `{pool}`", i.id);
                    return Err((Entry::Instance(k, "pool"), message));
                }
            }
        }
        let mut seen = BTreeSet::new();
        for (k, p) in self.pools.iter().enumerate() {
            let problem = if let Err(m) = crate::id::check(&p.id) {
                Some(("id", format!("pool {m}")))
            } else if !seen.insert(p.id.as_str()) {
                Some(("id", format!("duplicate pool id `{}`", p.id)))
            } else if p.warm.checked_add(p.cold).is_none() {
                Some((
                    "cold",
                    format!("pool `{}`: warm + cold must fit in 32 bits", p.id),
                ))
            } else if !hosts.contains(p.host.as_str()) {
                Some((
                    "host",
                    format!("pool `{}`: unknown host `{}`", p.id, p.host),
                ))
            } else {
                p.size()
                    .iter()
                    .find(|(_, v)| !(v.is_finite() && **v >= 0.0))
                    .map(|(r, v)| {
                        let m =
                            format!("pool `{}`: {r} size {v} must be a finite number >= 0", p.id);
                        (r.name(), m)
                    })
            };
            if let Some((key, message)) = problem {
                return Err((Entry::Pool(k, key), message));
            }
        }
        Ok(())
    }

    /// Looks up a host by id.
    pub fn host(&self, id: &str) -> Option<&Host> {
        self.hosts.iter().find(|h| h.id == id)
    }

    /// Looks up an instance by id.
    pub fn instance(&self, id: &str) -> Option<&Instance> {
        self.instances.iter().find(|i| i.id == id)
    }

    /// Looks up an instance by id, mutably.
    pub fn instance_mut(&mut self, id: &str) -> Option<&mut Instance> {
        self.instances.iter_mut().find(|i| i.id == id)
    }

    /// The sum of allocations on a host, warm pool instances included.
    pub fn used(&self, host: &str) -> PerResource<f64> {
        PerResource::from_fn(|r| {
            let instances: f64 = self
                .instances
                .iter()
                .filter(|i| i.host == host)
                .map(|i| i.resource(r).alloc)
                .sum();
            let pools: f64 = self
                .pools
                .iter()
                .filter(|p| p.host == host)
                .map(|p| f64::from(p.warm) * p.size()[r])
                .sum();
            instances + pools
        })
    }

    /// The sum of all credit balances.
    pub fn total_credits(&self) -> f64 {
        self.instances.iter().map(|i| i.credits).sum()
    }

    /// The canonical TOML text of this fleet.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("a fleet always serialises")
    }

    /// sha256 over hosts and instances (not `last_plan`), hex-encoded.
    pub fn fingerprint(&self) -> String {
        let state = Fleet {
            last_plan: None,
            ..self.clone()
        };
        hex(&Sha256::digest(state.to_toml().as_bytes()))
    }

    /// Writes the fleet atomically: temp file, fsync, rename, fsync of the directory.
    pub fn write_atomic(&self, path: &Path) -> Result<(), FileError> {
        write_atomic(path, self.to_toml().as_bytes()).map_err(|source| FileError::io(path, source))
    }
}

fn validate_instance(i: &Instance) -> Result<(), (&'static str, String)> {
    for r in Resource::ALL {
        let a = i.resource(r);
        let problem = if ![a.alloc, a.min, a.max]
            .iter()
            .all(|v| v.is_finite() && *v >= 0.0)
        {
            format!("{r} alloc, min and max must be finite numbers >= 0")
        } else if a.min > a.max {
            format!("{r} min {} is above max {}", a.min, a.max)
        } else if a.alloc < a.min || a.alloc > a.max {
            format!("{r} alloc {} is outside [{}, {}]", a.alloc, a.min, a.max)
        } else {
            continue;
        };
        return Err((r.name(), problem));
    }
    if !(i.earn_rate.is_finite() && i.earn_rate >= 0.0) {
        return Err((
            "earn_rate",
            format!("earn_rate {} must be a finite number >= 0", i.earn_rate),
        ));
    }
    if !(i.credits.is_finite() && i.credits >= 0.0 && i.credits <= i.credit_cap() + 1e-9) {
        let cap = i.credit_cap();
        return Err((
            "credits",
            format!(
                "credits {} must lie between 0 and the cap {cap} (24 h of earnings)",
                i.credits
            ),
        ));
    }
    Ok(())
}

/// Which `[[host]]` or `[[instance]]` entry, and which key in it, an error is about.
#[derive(Clone, Copy)]
enum Entry {
    Host(usize, &'static str),
    Instance(usize, &'static str),
    Pool(usize, &'static str),
}

impl Entry {
    /// The 1-based line of the key inside the entry (or of the entry's header), 0 if not found.
    fn line_in(self, text: &str) -> usize {
        let (header, k, key) = match self {
            Entry::Host(k, key) => ("[[host]]", k, key),
            Entry::Instance(k, key) => ("[[instance]]", k, key),
            Entry::Pool(k, key) => ("[[pool]]", k, key),
        };
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        let Some(start) = lines
            .iter()
            .enumerate()
            .filter(|(_, l)| **l == header)
            .nth(k)
            .map(|(n, _)| n)
        else {
            return 0;
        };
        let is_key = |l: &str| {
            let rest = l.strip_prefix(key).unwrap_or("#");
            rest.trim_start().starts_with('=') || l == format!("[instance.{key}]")
        };
        let entry = lines[start + 1..]
            .iter()
            .take_while(|l| !l.starts_with("[["))
            .position(|l| is_key(l));
        entry.map_or(start + 1, |n| start + n + 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[host]]
id = "h0"
cell = "c0"
cpu = 8.0
mem = 16384.0
net = 1000.0

[[instance]]
id = "a"
host = "h0"
credits = 10.0
earn_rate = 6.0
cpu = { alloc = 2.0, min = 0.5, max = 4.0 }
mem = { alloc = 2048.0, min = 256.0, max = 8192.0 }
net = { alloc = 100.0, min = 10.0, max = 500.0 }
"#;

    fn err(text: &str) -> String {
        Fleet::parse(Path::new("f.toml"), text)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn parses_and_fingerprints_stably() {
        let f = Fleet::parse(Path::new("f.toml"), GOOD).unwrap();
        assert_eq!(f.instances[0].credit_cap(), 144.0);
        let again = Fleet::parse(Path::new("f.toml"), &f.to_toml()).unwrap();
        assert_eq!(f, again);
        assert_eq!(f.fingerprint(), again.fingerprint());
        assert_eq!(f.fingerprint().len(), 64);
    }

    #[test]
    fn reports_unknown_host_with_line() {
        let e = err(&GOOD.replace("host = \"h0\"", "host = \"h9\""));
        assert_eq!(e, "f.toml:11: instance `a`: unknown host `h9`");
    }

    #[test]
    fn reports_negative_capacity_and_duplicates() {
        let e = err(&GOOD.replace("cpu = 8.0", "cpu = -8.0"));
        assert!(e.starts_with("f.toml:5: host `h0`: cpu capacity -8"), "{e}");
        let dup = format!("{GOOD}\n{}", &GOOD[GOOD.find("[[instance]]").unwrap()..]);
        assert!(
            err(&dup).contains("f.toml:19: duplicate instance id `a`"),
            "{}",
            err(&dup)
        );
    }

    #[test]
    fn reports_malformed_toml_and_bounds() {
        assert!(err("[[host]\nid=1").starts_with("f.toml:1:"));
        let e = err(&GOOD.replace("alloc = 2.0", "alloc = 9.0"));
        assert!(e.contains("cpu alloc 9 is outside [0.5, 4]"), "{e}");
        let e = err(&GOOD.replace("credits = 10.0", "credits = 1000.0"));
        assert!(e.contains("cap 144"), "{e}");
        assert!(err(&GOOD.replace("earn_rate", "earn_rat")).contains("unknown field"));
    }

    #[test]
    fn writes_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("fleet.toml");
        let f = Fleet::parse(Path::new("f.toml"), GOOD).unwrap();
        f.write_atomic(&p).unwrap();
        assert_eq!(Fleet::read(&p).unwrap(), f);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
