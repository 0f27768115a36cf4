//! One action of a plan: an enum of changes in code, one flat table in the file.

use crate::resource::Resource;
use serde::{Deserialize, Serialize};

/// What an action does: the `kind` of its table in the plan file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Move an instance to another host.
    Migrate,
    /// Move some of one resource from a donor to a receiver on the same host, for credits.
    Swap,
    /// Change one instance's allocation of one resource.
    Resize,
    /// Start or stop warm instances of a pool.
    Pool,
}

/// What one action changes, with exactly the fields its kind needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The instance moves between hosts, copying `bytes` of memory.
    Migrate {
        /// The host it leaves.
        from_host: String,
        /// The host it lands on.
        to_host: String,
        /// Its memory allocation in bytes: what the move copies.
        bytes: u64,
    },
    /// `donor` gives `amount` of `resource` to the instance, whose allocation goes `from` ->
    /// `to`, and the instance pays the donor `credits`.
    Swap {
        /// The instance that gives.
        donor: String,
        /// The resource moved.
        resource: Resource,
        /// The receiver's allocation before, in the resource's unit (cores, MiB, Mbps).
        from: f64,
        /// The receiver's allocation after, in the resource's unit.
        to: f64,
        /// What moves from donor to receiver, in the resource's unit.
        amount: f64,
        /// Credits the receiver pays the donor.
        credits: f64,
    },
    /// The instance's allocation of `resource` goes `from` -> `to`.
    Resize {
        /// The resource resized.
        resource: Resource,
        /// The allocation before, in the resource's unit (cores, MiB, Mbps).
        from: f64,
        /// The allocation after, in the resource's unit.
        to: f64,
    },
    /// The pool's warm count goes `from` -> `to`.
    Pool {
        /// Warm instances before.
        from: f64,
        /// Warm instances after.
        to: f64,
    },
}

/// One step of a plan. In the file it is one flat table whose `kind` says which fields
/// follow (`Record`); reading checks that each kind has exactly its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Record", into = "Record")]
pub struct Action {
    /// `a01`, `a02`, … in plan order: what `depends_on` refers to.
    pub id: String,
    /// The instance changed (the receiver of a swap; the pool, for a pool change).
    pub instance: String,
    /// What it changes, with its kind's fields.
    pub change: Change,
    /// Why it is proposed, in words an operator can check (forecast, allocation, host).
    pub reason: String,
    /// Ids of the actions that must be done before this one runs.
    pub depends_on: Vec<String>,
    /// Set by an operator to leave it, and everything that depends on it, out of the apply;
    /// the only field that may be edited.
    pub skip: bool,
}

impl Action {
    /// Its kind, from its change.
    pub fn kind(&self) -> Kind {
        match self.change {
            Change::Migrate { .. } => Kind::Migrate,
            Change::Swap { .. } => Kind::Swap,
            Change::Resize { .. } => Kind::Resize,
            Change::Pool { .. } => Kind::Pool,
        }
    }

    /// The resource a resize or swap changes.
    pub fn resource(&self) -> Option<Resource> {
        match self.change {
            Change::Swap { resource, .. } | Change::Resize { resource, .. } => Some(resource),
            Change::Migrate { .. } | Change::Pool { .. } => None,
        }
    }

    /// The donor of a swap.
    pub fn donor(&self) -> Option<&str> {
        match &self.change {
            Change::Swap { donor, .. } => Some(donor),
            _ => None,
        }
    }

    /// The credits a swap's receiver pays.
    pub fn credits(&self) -> Option<f64> {
        match self.change {
            Change::Swap { credits, .. } => Some(credits),
            _ => None,
        }
    }

    /// The host a migration leaves.
    pub fn from_host(&self) -> Option<&str> {
        match &self.change {
            Change::Migrate { from_host, .. } => Some(from_host),
            _ => None,
        }
    }

    /// The host a migration lands on.
    pub fn to_host(&self) -> Option<&str> {
        match &self.change {
            Change::Migrate { to_host, .. } => Some(to_host),
            _ => None,
        }
    }

    /// Its numbers, named as in the file.
    pub fn numbers(&self) -> Vec<(&'static str, f64)> {
        match self.change {
            Change::Migrate { .. } => Vec::new(),
            Change::Swap {
                from,
                to,
                amount,
                credits,
                ..
            } => vec![
                ("from", from),
                ("to", to),
                ("amount", amount),
                ("credits", credits),
            ],
            Change::Resize { from, to, .. } | Change::Pool { from, to } => {
                vec![("from", from), ("to", to)]
            }
        }
    }

    /// Whether it is a resize or pool change downwards (it frees room on its host).
    pub fn is_shrink(&self) -> bool {
        match self.change {
            Change::Resize { from, to, .. } | Change::Pool { from, to } => to < from,
            Change::Migrate { .. } | Change::Swap { .. } => false,
        }
    }
}

/// An action as the plan file holds it: one table, the fields of its `kind` set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Record {
    id: String,
    kind: Kind,
    instance: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    donor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    resource: Option<Resource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    amount: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    from_host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    to_host: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    credits: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    bytes: Option<u64>,
    reason: String,
    depends_on: Vec<String>,
    skip: bool,
}

impl From<Action> for Record {
    fn from(a: Action) -> Record {
        let mut r = Record {
            id: a.id,
            kind: Kind::Resize,
            instance: a.instance,
            donor: None,
            resource: None,
            from: None,
            to: None,
            amount: None,
            from_host: None,
            to_host: None,
            credits: None,
            bytes: None,
            reason: a.reason,
            depends_on: a.depends_on,
            skip: a.skip,
        };
        match a.change {
            Change::Migrate {
                from_host,
                to_host,
                bytes,
            } => {
                r.kind = Kind::Migrate;
                (r.from_host, r.to_host, r.bytes) = (Some(from_host), Some(to_host), Some(bytes));
            }
            Change::Swap {
                donor,
                resource,
                from,
                to,
                amount,
                credits,
            } => {
                r.kind = Kind::Swap;
                (r.donor, r.resource) = (Some(donor), Some(resource));
                (r.from, r.to, r.amount, r.credits) =
                    (Some(from), Some(to), Some(amount), Some(credits));
            }
            Change::Resize { resource, from, to } => {
                (r.resource, r.from, r.to) = (Some(resource), Some(from), Some(to));
            }
            Change::Pool { from, to } => {
                r.kind = Kind::Pool;
                (r.from, r.to) = (Some(from), Some(to));
            }
        }
        r
    }
}

impl TryFrom<Record> for Action {
    type Error = String;

    fn try_from(r: Record) -> Result<Action, String> {
        let kind = r.kind.name();
        let present = [
            ("donor", r.donor.is_some()),
            ("resource", r.resource.is_some()),
            ("from", r.from.is_some()),
            ("to", r.to.is_some()),
            ("amount", r.amount.is_some()),
            ("from_host", r.from_host.is_some()),
            ("to_host", r.to_host.is_some()),
            ("credits", r.credits.is_some()),
            ("bytes", r.bytes.is_some()),
        ];
        let own: &[&str] = match r.kind {
            Kind::Migrate => &["from_host", "to_host", "bytes"],
            Kind::Swap => &["donor", "resource", "from", "to", "amount", "credits"],
            Kind::Resize => &["resource", "from", "to"],
            Kind::Pool => &["from", "to"],
        };
        if let Some((name, _)) = present.iter().find(|(n, set)| *set && !own.contains(n)) {
            return Err(format!("action {}: a {kind} has no `{name}`", r.id));
        }
        let id = r.id.as_str();
        let change = match r.kind {
            Kind::Migrate => Change::Migrate {
                from_host: need(r.from_host, id, kind, "from_host")?,
                to_host: need(r.to_host, id, kind, "to_host")?,
                bytes: need(r.bytes, id, kind, "bytes")?,
            },
            Kind::Swap => Change::Swap {
                donor: need(r.donor, id, kind, "donor")?,
                resource: need(r.resource, id, kind, "resource")?,
                from: need(r.from, id, kind, "from")?,
                to: need(r.to, id, kind, "to")?,
                amount: need(r.amount, id, kind, "amount")?,
                credits: need(r.credits, id, kind, "credits")?,
            },
            Kind::Resize => Change::Resize {
                resource: need(r.resource, id, kind, "resource")?,
                from: need(r.from, id, kind, "from")?,
                to: need(r.to, id, kind, "to")?,
            },
            Kind::Pool => Change::Pool {
                from: need(r.from, id, kind, "from")?,
                to: need(r.to, id, kind, "to")?,
            },
        };
        Ok(Action {
            id: r.id,
            instance: r.instance,
            change,
            reason: r.reason,
            depends_on: r.depends_on,
            skip: r.skip,
        })
    }
}

/// A field its kind needs, or an error naming the action, its kind and the field.
fn need<T>(v: Option<T>, id: &str, kind: &str, name: &str) -> Result<T, String> {
    v.ok_or_else(|| format!("action {id}: a {kind} needs `{name}`"))
}

impl Kind {
    /// The kind as the plan file spells it.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Migrate => "migrate",
            Kind::Swap => "swap",
            Kind::Resize => "resize",
            Kind::Pool => "pool",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Plan, PlanError};
    use super::*;
    use crate::file::FileError;

    /// Each kind of action has exactly its own fields: the file says which, and a table
    /// with a field of another kind, or without one of its own, is refused at its line.
    #[test]
    fn an_action_has_exactly_the_fields_of_its_kind() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/golden/fixture.lookahead4.plan.toml"
        ))
        .unwrap();
        let plan: Plan = toml::from_str(&text).unwrap();
        let kinds: Vec<Kind> = plan.actions.iter().map(Action::kind).collect();
        assert!(kinds.contains(&Kind::Swap) && kinds.contains(&Kind::Migrate));
        // Read and written again, the file is the same to the byte.
        assert_eq!(plan.to_text(), text);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.plan.toml");
        let resize = text.find("kind = \"resize\"").unwrap();
        let swap = text.find("kind = \"swap\"").unwrap();
        let line_of = |at: usize| text[..at].lines().count() + 1;
        for (edited, at, message) in [
            (
                text.replacen("kind = \"resize\"", "kind = \"resize\"\ndonor = \"63\"", 1),
                resize,
                "a resize has no `donor`",
            ),
            (
                text.replacen("kind = \"swap\"", "kind = \"migrate\"", 1),
                swap,
                "a migrate has no `donor`",
            ),
            (
                text.replacen("amount = ", "amounts = ", 1),
                swap,
                "unknown field `amounts`",
            ),
        ] {
            std::fs::write(&path, edited).unwrap();
            match Plan::read(&path) {
                Err(PlanError::File(FileError::Invalid {
                    line, message: m, ..
                })) => {
                    assert!(m.contains(message), "{m}");
                    assert!(line > 0 && line <= line_of(at) + 12, "line {line}: {m}");
                }
                other => panic!("{other:?}"),
            }
        }
    }
}
