//! Backends: where an action's change is made real, one operation at a time.
//!
//! An action becomes a short list of [`Op`]s (a swap is the donor's shrink,
//! then the receiver's grow). A backend can apply an op and observe whether an
//! op is already in effect; observing is what lets `apply --resume` finish an
//! action that was interrupted without running any part of it twice.

mod cgroup;
mod exec;

pub use cgroup::Cgroup;
pub use exec::Exec;

use super::step::Places;
use crate::fleet::Fleet;
use crate::plan::{Action, Change};
use crate::resource::Resource;
use crate::units::round6;
use std::path::PathBuf;

/// Why a backend could not be set up or an op failed.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// Reading or writing a file failed.
    #[error(transparent)]
    File(#[from] crate::file::FileError),
    /// The backend failed; the message says how.
    #[error("{0}")]
    Failed(String),
}

/// One change to one instance.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    /// Set one instance's allocation of one resource.
    Resize {
        /// The instance's id.
        instance: String,
        /// The resource resized.
        resource: Resource,
        /// The allocation before, in the resource's unit (cores, MiB, Mbps).
        from: f64,
        /// The allocation after, in the resource's unit.
        to: f64,
    },
    /// Move one instance to another host.
    Migrate {
        /// The instance's id.
        instance: String,
        /// The host it leaves.
        from_host: String,
        /// The host it lands on.
        to_host: String,
    },
    /// Start or stop warm instances of a pool, from one warm count to another.
    Pool {
        /// The pool's id.
        pool: String,
        /// Warm instances before.
        from: u32,
        /// Warm instances after.
        to: u32,
    },
}

impl Op {
    /// The op that undoes this one.
    pub fn inverse(&self) -> Op {
        match self.clone() {
            Op::Resize {
                instance,
                resource,
                from,
                to,
            } => Op::Resize {
                instance,
                resource,
                from: to,
                to: from,
            },
            Op::Migrate {
                instance,
                from_host,
                to_host,
            } => Op::Migrate {
                instance,
                from_host: to_host,
                to_host: from_host,
            },
            Op::Pool { pool, from, to } => Op::Pool {
                pool,
                from: to,
                to: from,
            },
        }
    }

    /// The ops of `action` in the fleet state `before` (which it must be valid in), whose
    /// instances `places` finds.
    pub(super) fn of(action: &Action, before: &Fleet, places: &Places) -> Vec<Op> {
        let alloc = |id: &str, r: Resource| {
            places
                .instance(before, id)
                .map_or(0.0, |i| i.resource(r).alloc)
        };
        let resize = |instance: &str, resource, from: f64, to: f64| Op::Resize {
            instance: instance.to_owned(),
            resource,
            from,
            to: round6(to),
        };
        match &action.change {
            Change::Pool { from, to } => vec![Op::Pool {
                pool: action.instance.clone(),
                from: before
                    .pools
                    .iter()
                    .find(|p| p.id == action.instance)
                    .map_or(*from as u32, |p| p.warm),
                to: *to as u32,
            }],
            Change::Resize { resource, to, .. } => vec![resize(
                &action.instance,
                *resource,
                alloc(&action.instance, *resource),
                *to,
            )],
            Change::Swap {
                donor,
                resource,
                amount,
                ..
            } => {
                let r = *resource;
                let (d, i) = (alloc(donor, r), alloc(&action.instance, r));
                vec![
                    resize(donor, r, d, d - amount),
                    resize(&action.instance, r, i, i + amount),
                ]
            }
            Change::Migrate {
                from_host, to_host, ..
            } => vec![Op::Migrate {
                instance: action.instance.clone(),
                from_host: from_host.clone(),
                to_host: to_host.clone(),
            }],
        }
    }
}

/// Whether an op is in effect.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// The op's new value (allocation, host or warm count) is in effect.
    Applied,
    /// The old value is still in effect: the op has yet to run.
    NotApplied,
    /// Neither the old nor the new value, or the backend cannot tell.
    Unknown(String),
}

/// Labels that command templates and logs can refer to.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The plan's id (`{plan}` in exec templates).
    pub plan: &'a str,
    /// The action's id, as `a01` (`{action}` in exec templates).
    pub action: &'a str,
}

/// Makes ops real.
pub trait Backend {
    /// Whether every op of `ops` can be made here (a template for each kind, a program that
    /// exists), checked before the first one runs so that a bad setup does not end a run
    /// half done.
    fn check(&self, _ops: &[Op]) -> Result<(), BackendError> {
        Ok(())
    }
    /// Makes `op` real; an error fails its action.
    fn apply(&mut self, op: &Op, cx: Context) -> Result<(), BackendError>;
    /// Whether `op` is in effect: how a resume, or an apply after a failed op, knows whether
    /// to run it or undo it.
    fn observe(&mut self, op: &Op, cx: Context) -> Result<Effect, BackendError>;
}

/// The `sim` backend: the journal and the fleet file are the whole world, so there is
/// nothing more to do, and an interrupted op is simply run again.
pub struct Sim;

impl Backend for Sim {
    fn apply(&mut self, _: &Op, _: Context) -> Result<(), BackendError> {
        Ok(())
    }

    fn observe(&mut self, _: &Op, _: Context) -> Result<Effect, BackendError> {
        Ok(Effect::NotApplied)
    }
}

/// Which backend to use, as chosen on the command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Spec {
    /// No real change: the journal and the fleet file are the whole world ([`Sim`]).
    Sim,
    /// Cgroups under this root, one group per instance.
    Cgroup(PathBuf),
    /// Command templates from this TOML file.
    Exec(PathBuf),
}

impl Spec {
    /// The name recorded in the journal.
    pub fn name(&self) -> &'static str {
        match self {
            Spec::Sim => "sim",
            Spec::Cgroup(_) => "cgroup",
            Spec::Exec(_) => "exec",
        }
    }

    /// Sets the backend up (detecting the cgroup version, reading the templates).
    pub fn open(&self) -> Result<Box<dyn Backend>, BackendError> {
        Ok(match self {
            Spec::Sim => Box::new(Sim),
            Spec::Cgroup(root) => Box::new(Cgroup::detect(root)?),
            Spec::Exec(path) => Box::new(Exec::read(path)?),
        })
    }
}

/// Whether two allocations are equal at the six decimals plans are written with.
pub(crate) fn same(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance
}

/// Classifies an observed value against an op's old and new values.
pub(crate) fn classify(seen: f64, from: f64, to: f64, tolerance: f64, what: &str) -> Effect {
    if same(seen, to, tolerance) {
        Effect::Applied
    } else if same(seen, from, tolerance) {
        Effect::NotApplied
    } else {
        Effect::Unknown(format!("{what} is {seen}, neither {from} nor {to}"))
    }
}
