//! The `cgroup` backend: allocations as Linux cgroup limits, one group per instance.
//!
//! cgroup v2 (`cgroup.controllers` at the root) uses `<root>/<instance>/cpu.max`
//! and `memory.max`; v1 (`cpu/` and `memory/` hierarchies under the root) uses
//! `cpu.cfs_quota_us` over `cpu.cfs_period_us` and `memory.limit_in_bytes`.
//! Every write is read back, and memory is never set below current usage, which
//! would make the kernel reclaim or kill. Cgroups have no bandwidth limit and no
//! notion of hosts, so `net` resizes and migrations fail with a clear message.

use super::{classify, Backend, BackendError, Context, Effect, Op};
use crate::file::FileError;
use crate::resource::Resource;
use crate::units::MIB;
use std::path::{Path, PathBuf};

/// The CFS period written when a group has none (100 ms, the kernel default).
const PERIOD_US: i64 = 100_000;
/// The kernel rounds memory limits to pages.
const PAGE: f64 = 4096.0;

/// Which cgroup version is mounted at the root.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// Cgroups under one root.
#[derive(Debug, Clone)]
pub struct Cgroup {
    /// The cgroup root: the v2 mount, or the directory holding v1's `cpu/` and `memory/`.
    pub root: PathBuf,
    /// Which version is mounted there, which decides the files written.
    pub version: Version,
}

impl Cgroup {
    /// Detects the version mounted at `root`.
    pub fn detect(root: &Path) -> Result<Cgroup, BackendError> {
        let version = if root.join("cgroup.controllers").is_file() {
            Version::V2
        } else if root.join("cpu").is_dir() && root.join("memory").is_dir() {
            Version::V1
        } else {
            return Err(BackendError::Failed(format!(
                "{}: no cgroup here: neither cgroup.controllers (v2) nor cpu/ and memory/ (v1)",
                root.display()
            )));
        };
        Ok(Cgroup {
            root: root.to_owned(),
            version,
        })
    }

    /// The group directory of `instance` for a controller (`cpu` or `memory`): always a
    /// direct child of the root (v2) or of the controller's directory (v1). Ids are checked
    /// where they enter; an id that would still leave the root is refused here too.
    fn group(&self, controller: &str, instance: &str) -> Result<PathBuf, BackendError> {
        let mut parts = Path::new(instance).components();
        let single = matches!(
            (parts.next(), parts.next()),
            (Some(std::path::Component::Normal(_)), None)
        );
        if !single || crate::id::check(instance).is_err() {
            return Err(BackendError::Failed(format!(
                "{}: refusing instance id `{}`: its group would not be a direct child of the root",
                self.root.display(),
                instance.escape_default()
            )));
        }
        Ok(match self.version {
            Version::V2 => self.root.join(instance),
            Version::V1 => self.root.join(controller).join(instance),
        })
    }

    /// Creates the group if needed (v2: enabling the cpu and memory controllers first).
    fn ensure(&self, controller: &str, instance: &str) -> Result<PathBuf, BackendError> {
        let dir = self.group(controller, instance)?;
        if !dir.is_dir() {
            if self.version == Version::V2 {
                let control = self.root.join("cgroup.subtree_control");
                write(&control, "+cpu +memory")?;
            }
            std::fs::create_dir(&dir).map_err(|source| FileError::io(&dir, source))?;
        }
        Ok(dir)
    }

    /// The current value of `resource` for `instance`, in fleet units.
    pub fn read(&self, instance: &str, resource: Resource) -> Result<f64, BackendError> {
        match (resource, self.version) {
            (Resource::Cpu, Version::V2) => {
                let text = read(&self.group("cpu", instance)?.join("cpu.max"))?;
                let mut parts = text.split_whitespace();
                let (quota, period) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
                if quota == "max" {
                    return Ok(f64::INFINITY);
                }
                Ok(number(quota, "cpu.max")? / number(period, "cpu.max")?)
            }
            (Resource::Cpu, Version::V1) => {
                let dir = self.group("cpu", instance)?;
                let quota = number(&read(&dir.join("cpu.cfs_quota_us"))?, "cpu.cfs_quota_us")?;
                if quota < 0.0 {
                    return Ok(f64::INFINITY);
                }
                Ok(quota / number(&read(&dir.join("cpu.cfs_period_us"))?, "cpu.cfs_period_us")?)
            }
            (Resource::Mem, _) => {
                let text = read(&self.group("memory", instance)?.join(self.mem_file()))?;
                if text == "max" {
                    return Ok(f64::INFINITY);
                }
                Ok(number(&text, self.mem_file())? / MIB)
            }
            (Resource::Net, _) => Err(no_net()),
        }
    }

    fn mem_file(&self) -> &'static str {
        match self.version {
            Version::V2 => "memory.max",
            Version::V1 => "memory.limit_in_bytes",
        }
    }

    /// Memory in use by the group, in bytes.
    fn usage(&self, instance: &str) -> Result<f64, BackendError> {
        let file = match self.version {
            Version::V2 => "memory.current",
            Version::V1 => "memory.usage_in_bytes",
        };
        let path = self.group("memory", instance)?.join(file);
        number(&read(&path)?, file)
    }

    fn set(&self, instance: &str, resource: Resource, to: f64) -> Result<(), BackendError> {
        match resource {
            Resource::Cpu => {
                let dir = self.ensure("cpu", instance)?;
                match self.version {
                    Version::V2 => {
                        let quota = (to * PERIOD_US as f64).round() as i64;
                        write(&dir.join("cpu.max"), &format!("{quota} {PERIOD_US}"))
                    }
                    Version::V1 => {
                        let period_file = dir.join("cpu.cfs_period_us");
                        let period = match read(&period_file) {
                            Ok(p) => number(&p, "cpu.cfs_period_us")?,
                            Err(_) => {
                                write(&period_file, &PERIOD_US.to_string())?;
                                PERIOD_US as f64
                            }
                        };
                        let quota = (to * period).round() as i64;
                        write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())
                    }
                }
            }
            Resource::Mem => {
                let dir = self.ensure("memory", instance)?;
                let bytes = (to * MIB).round();
                let usage = self.usage(instance)?;
                if bytes < usage {
                    return Err(BackendError::Failed(format!(
                        "{}: refusing to set memory of `{instance}` to {to} MiB, below its current usage of {:.1} MiB",
                        dir.display(),
                        usage / MIB
                    )));
                }
                write(&dir.join(self.mem_file()), &format!("{}", bytes as i64))
            }
            Resource::Net => Err(no_net()),
        }
    }

    fn tolerance(resource: Resource) -> f64 {
        match resource {
            Resource::Mem => PAGE / MIB,
            _ => 1.0 / PERIOD_US as f64,
        }
    }
}

impl Backend for Cgroup {
    fn apply(&mut self, op: &Op, _: Context) -> Result<(), BackendError> {
        let Op::Resize {
            instance,
            resource,
            from,
            to,
        } = op
        else {
            return Err(unsupported(op));
        };
        self.set(instance, *resource, *to)?;
        let seen = self.read(instance, *resource)?;
        match classify(seen, *from, *to, Self::tolerance(*resource), "value") {
            Effect::Applied => Ok(()),
            _ => Err(BackendError::Failed(format!(
                "{}: wrote {resource} {to} for `{instance}` but read back {seen}",
                self.group("cpu", instance)?.display()
            ))),
        }
    }

    fn observe(&mut self, op: &Op, _: Context) -> Result<Effect, BackendError> {
        let Op::Resize {
            instance,
            resource,
            from,
            to,
        } = op
        else {
            return Err(unsupported(op));
        };
        if !self
            .group(
                if *resource == Resource::Cpu {
                    "cpu"
                } else {
                    "memory"
                },
                instance,
            )?
            .is_dir()
        {
            return Ok(Effect::NotApplied);
        }
        let seen = self.read(instance, *resource)?;
        let what = format!("{resource} of `{instance}`");
        Ok(classify(
            seen,
            *from,
            *to,
            Self::tolerance(*resource),
            &what,
        ))
    }
}

fn no_net() -> BackendError {
    BackendError::Failed(
        "the cgroup backend cannot set net: cgroups have no bandwidth limit; use the exec backend"
            .into(),
    )
}

fn unsupported(op: &Op) -> BackendError {
    let what = match op {
        Op::Pool { .. } => "start or stop pool instances",
        _ => "migrate between hosts",
    };
    BackendError::Failed(format!(
        "the cgroup backend cannot {what}; use the exec backend"
    ))
}

fn read(path: &Path) -> Result<String, BackendError> {
    std::fs::read_to_string(path)
        .map(|t| t.trim().to_owned())
        .map_err(|source| FileError::io(path, source).into())
}

fn write(path: &Path, value: &str) -> Result<(), BackendError> {
    std::fs::write(path, value).map_err(|source| FileError::io(path, source).into())
}

fn number(text: &str, file: &str) -> Result<f64, BackendError> {
    text.trim()
        .parse()
        .map_err(|_| BackendError::Failed(format!("{file}: `{text}` is not a number")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cx() -> Context<'static> {
        Context {
            plan: "p",
            action: "a01",
        }
    }

    fn resize(resource: Resource, from: f64, to: f64) -> Op {
        Op::Resize {
            instance: "vm1".into(),
            resource,
            from,
            to,
        }
    }

    /// A fake v2 tree: the kernel's files as plain files.
    fn fake_v2(dir: &Path) {
        std::fs::write(dir.join("cgroup.controllers"), "cpu memory").unwrap();
        std::fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
        let g = dir.join("vm1");
        std::fs::create_dir(&g).unwrap();
        std::fs::write(g.join("cpu.max"), "200000 100000\n").unwrap();
        std::fs::write(g.join("memory.max"), format!("{}\n", 2048u64 * 1_048_576)).unwrap();
        std::fs::write(
            g.join("memory.current"),
            format!("{}\n", 1024u64 * 1_048_576),
        )
        .unwrap();
    }

    #[test]
    fn v2_writes_reads_back_and_observes() {
        let dir = tempfile::tempdir().unwrap();
        fake_v2(dir.path());
        let mut b = Cgroup::detect(dir.path()).unwrap();
        assert_eq!(b.version, Version::V2);
        let op = resize(Resource::Cpu, 2.0, 1.5);
        assert_eq!(b.observe(&op, cx()).unwrap(), Effect::NotApplied);
        b.apply(&op, cx()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("vm1/cpu.max")).unwrap(),
            "150000 100000"
        );
        assert_eq!(b.observe(&op, cx()).unwrap(), Effect::Applied);
        let mem = resize(Resource::Mem, 2048.0, 3072.0);
        b.apply(&mem, cx()).unwrap();
        assert_eq!(b.read("vm1", Resource::Mem).unwrap(), 3072.0);
        let e = b
            .apply(&resize(Resource::Mem, 3072.0, 512.0), cx())
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("below its current usage of 1024.0 MiB"),
            "{e}"
        );
        assert_eq!(b.read("vm1", Resource::Mem).unwrap(), 3072.0);
        std::fs::write(dir.path().join("vm1/cpu.max"), "90000 100000").unwrap();
        assert!(matches!(b.observe(&op, cx()).unwrap(), Effect::Unknown(_)));
        assert!(b
            .apply(&resize(Resource::Net, 1.0, 2.0), cx())
            .unwrap_err()
            .to_string()
            .contains("cannot set net"));
    }

    #[test]
    fn v1_uses_cfs_quota_and_limit_in_bytes() {
        let dir = tempfile::tempdir().unwrap();
        for d in ["cpu/vm1", "memory/vm1"] {
            std::fs::create_dir_all(dir.path().join(d)).unwrap();
        }
        std::fs::write(dir.path().join("cpu/vm1/cpu.cfs_period_us"), "50000\n").unwrap();
        std::fs::write(dir.path().join("cpu/vm1/cpu.cfs_quota_us"), "-1\n").unwrap();
        std::fs::write(
            dir.path().join("memory/vm1/memory.limit_in_bytes"),
            "9223372036854771712\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("memory/vm1/memory.usage_in_bytes"),
            "1048576\n",
        )
        .unwrap();
        let mut b = Cgroup::detect(dir.path()).unwrap();
        assert_eq!(b.version, Version::V1);
        b.apply(&resize(Resource::Cpu, 1.0, 0.5), cx()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join("cpu/vm1/cpu.cfs_quota_us")).unwrap(),
            "25000"
        );
        b.apply(&resize(Resource::Mem, 1.0, 256.0), cx()).unwrap();
        assert_eq!(b.read("vm1", Resource::Mem).unwrap(), 256.0);
    }

    /// Defence in depth: ids are checked where they enter, and the backend still refuses
    /// any id whose group would not be a direct child of its root.
    #[test]
    fn ids_that_would_leave_the_root_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir(&root).unwrap();
        fake_v2(&root);
        let mut b = Cgroup::detect(&root).unwrap();
        for id in ["../outside", "/abs", "..", "a/b", "-x"] {
            let op = Op::Resize {
                instance: id.into(),
                resource: Resource::Cpu,
                from: 1.0,
                to: 0.5,
            };
            let e = b.apply(&op, cx()).unwrap_err().to_string();
            assert!(e.contains("refusing instance id"), "{id}: {e}");
            assert!(b.observe(&op, cx()).is_err(), "{id}");
        }
        let outside: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(outside.len(), 1, "only the root itself: {outside:?}");
    }

    #[test]
    fn detection_names_the_root() {
        let dir = tempfile::tempdir().unwrap();
        let e = Cgroup::detect(dir.path()).unwrap_err().to_string();
        assert!(e.contains("no cgroup here"), "{e}");
    }
}
