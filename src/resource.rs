//! The three resources Chameleon plans for, and a small fixed-size map over them.
//!
//! Every stage (telemetry, forecasts, the MIP, plans) indexes by resource, so one
//! `Copy` enum with a stable order keeps iteration deterministic and cheap.

use crate::named::named_enum;
use serde::{Deserialize, Serialize};

named_enum!(
    /// A plannable resource. Units: `cpu` in cores, `mem` in MiB, `net` in Mbps.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    #[serde(rename_all = "lowercase")]
    pub enum Resource: "resource" {
        /// Processor, in cores.
        Cpu = "cpu",
        /// Memory, in MiB.
        Mem = "mem",
        /// Network bandwidth, in Mbps.
        Net = "net",
    }
);

impl Resource {
    /// The unit the resource is measured in.
    pub fn unit(self) -> &'static str {
        match self {
            Resource::Cpu => "cores",
            Resource::Mem => "MiB",
            Resource::Net => "Mbps",
        }
    }
}

/// One value per resource, serialised as a `{ cpu, mem, net }` table.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct PerResource<T> {
    /// The value for `cpu` (in cores, when it is an amount of the resource).
    pub cpu: T,
    /// The value for `mem` (in MiB, when it is an amount of the resource).
    pub mem: T,
    /// The value for `net` (in Mbps, when it is an amount of the resource).
    pub net: T,
}

impl<T> PerResource<T> {
    /// Builds a map by calling `f` for each resource in canonical order.
    pub fn from_fn(mut f: impl FnMut(Resource) -> T) -> Self {
        PerResource {
            cpu: f(Resource::Cpu),
            mem: f(Resource::Mem),
            net: f(Resource::Net),
        }
    }

    /// Iterates `(resource, &value)` in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = (Resource, &T)> {
        Resource::ALL.into_iter().map(move |r| (r, &self[r]))
    }
}

impl<T> std::ops::Index<Resource> for PerResource<T> {
    type Output = T;
    fn index(&self, r: Resource) -> &T {
        match r {
            Resource::Cpu => &self.cpu,
            Resource::Mem => &self.mem,
            Resource::Net => &self.net,
        }
    }
}

impl<T> std::ops::IndexMut<Resource> for PerResource<T> {
    fn index_mut(&mut self, r: Resource) -> &mut T {
        match r {
            Resource::Cpu => &mut self.cpu,
            Resource::Mem => &mut self.mem,
            Resource::Net => &mut self.net,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_names() {
        for r in Resource::ALL {
            assert_eq!(r.name().parse::<Resource>().unwrap(), r);
        }
        assert!("disk".parse::<Resource>().is_err());
    }

    #[test]
    fn per_resource_indexes_each_field() {
        let mut m = PerResource::from_fn(|r| r.name().len());
        m[Resource::Net] = 7;
        assert_eq!((m.cpu, m.mem, m.net), (3, 3, 7));
    }
}
