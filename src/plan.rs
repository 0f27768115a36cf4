//! The plan: a reviewable, tamper-evident TOML file of actions with their reasons.
//!
//! A plan is built from a problem and a solution, written with a digest over
//! everything except the operators' `skip` flags, and read back only through
//! [`Plan::verify`], which refuses tampered, expired, stale or already applied
//! plans. The executor accepts nothing but the [`VerifiedPlan`] that returns.

use crate::file::{hex, toml_error, write_atomic};
use crate::fleet::Fleet;
use crate::forecast::{Demand, Forecasts};
use crate::problem::{round6, Problem, Solution, MIB};
use crate::resource::Resource;
use crate::solve::mip::SolverStats;
use crate::telemetry::Telemetry;
use chrono::{DateTime, Duration, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Why a plan file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Invalid {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: plan was modified after it was written (digest {found} does not match its content {expected}); only `skip` may be edited")]
    Tampered {
        path: PathBuf,
        expected: String,
        found: String,
    },
    #[error("{path}: plan expired at {expires_at} (now {now}); run `chameleon plan` again")]
    Expired {
        path: PathBuf,
        expires_at: String,
        now: String,
    },
    #[error("{path}: plan is stale: it was made for fleet {planned} but the fleet is now {current}; run `chameleon plan` again")]
    Stale {
        path: PathBuf,
        planned: String,
        current: String,
    },
    #[error("{path}: plan {id} was already applied to this fleet; nothing to do")]
    AlreadyApplied { path: PathBuf, id: String },
    #[error("{path}: plan was made at {created_at}, after now ({now}); check --now or the clock")]
    Early {
        path: PathBuf,
        created_at: String,
        now: String,
    },
}

/// What an action does: the `kind` of its table in the plan file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Migrate,
    Swap,
    Resize,
    /// Start or stop warm instances of a pool.
    Pool,
}

/// What one action changes, with exactly the fields its kind needs.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// The instance moves between hosts, copying `bytes` of memory.
    Migrate {
        from_host: String,
        to_host: String,
        bytes: u64,
    },
    /// `donor` gives `amount` of `resource` to the instance, whose allocation goes `from` ->
    /// `to`, and the instance pays the donor `credits`.
    Swap {
        donor: String,
        resource: Resource,
        from: f64,
        to: f64,
        amount: f64,
        credits: f64,
    },
    /// The instance's allocation of `resource` goes `from` -> `to`.
    Resize {
        resource: Resource,
        from: f64,
        to: f64,
    },
    /// The pool's warm count goes `from` -> `to`.
    Pool { from: f64, to: f64 },
}

/// One step of a plan. In the file it is one flat table whose `kind` says which fields
/// follow ([`Record`]); reading checks that each kind has exactly its own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Record", into = "Record")]
pub struct Action {
    pub id: String,
    /// The instance changed (the receiver of a swap; the pool, for a pool change).
    pub instance: String,
    pub change: Change,
    pub reason: String,
    pub depends_on: Vec<String>,
    pub skip: bool,
}

impl Action {
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
        let need = |v: Option<f64>, name: &str| {
            v.ok_or_else(|| format!("action {}: a {kind} needs `{name}`", r.id))
        };
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
        let resource = || {
            r.resource
                .ok_or_else(|| format!("action {}: a {kind} needs `resource`", r.id))
        };
        let text = |v: &Option<String>, name: &str| {
            v.clone()
                .ok_or_else(|| format!("action {}: a {kind} needs `{name}`", r.id))
        };
        let change = match r.kind {
            Kind::Migrate => Change::Migrate {
                from_host: text(&r.from_host, "from_host")?,
                to_host: text(&r.to_host, "to_host")?,
                bytes: r
                    .bytes
                    .ok_or_else(|| format!("action {}: a {kind} needs `bytes`", r.id))?,
            },
            Kind::Swap => Change::Swap {
                donor: text(&r.donor, "donor")?,
                resource: resource()?,
                from: need(r.from, "from")?,
                to: need(r.to, "to")?,
                amount: need(r.amount, "amount")?,
                credits: need(r.credits, "credits")?,
            },
            Kind::Resize => Change::Resize {
                resource: resource()?,
                from: need(r.from, "from")?,
                to: need(r.to, "to")?,
            },
            Kind::Pool => Change::Pool {
                from: need(r.from, "from")?,
                to: need(r.to, "to")?,
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

/// The telemetry a plan was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelemetrySummary {
    pub file: String,
    pub history_start: String,
    pub history_end: String,
    pub samples: usize,
    pub duplicates: u64,
    pub out_of_order: u64,
    /// Grid slots without a sample, interpolated before forecasting.
    #[serde(default)]
    pub gaps_filled: usize,
}

/// The forecasts a plan was made from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastSummary {
    pub quantile: f64,
    pub horizon_minutes: u32,
    /// How many series each method forecast.
    pub methods: BTreeMap<String, usize>,
}

/// Solver statistics; `solve_seconds` only for live runs (not pinned with `--now`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SolverSummary {
    pub status: String,
    pub objective: f64,
    pub best_bound: f64,
    pub gap: f64,
    pub variables: usize,
    pub constraints: usize,
    /// Independent parts solved (cells, and POP partitions of large cells).
    pub parts: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solve_seconds: Option<f64>,
    /// Intervals planned jointly (`--lookahead`); this plan holds only the first. Absent for 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lookahead_intervals: Option<u32>,
    /// The part of `objective` from the later intervals, with look-ahead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub objective_later: Option<f64>,
}

/// Plan-wide totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Totals {
    /// Predicted shortfall in cost units (1 core, 1 GiB, 100 Mbps), before and after.
    pub shortfall_before: f64,
    pub shortfall_after: f64,
    pub objective_before: f64,
    pub changes: usize,
    pub migrations: usize,
    pub swaps: usize,
    pub bytes_moved: u64,
    pub credits_moved: f64,
}

/// The plan header.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub id: String,
    pub created_at: String,
    pub expires_at: String,
    pub interval_minutes: u32,
    /// `mip` or `greedy`.
    pub strategy: String,
    /// sha256 of the fleet state the plan was made against.
    pub fleet_fingerprint: String,
    /// sha256 of this plan with `digest` empty and every `skip` false.
    pub digest: String,
    pub telemetry: TelemetrySummary,
    pub forecast: ForecastSummary,
    pub solver: SolverSummary,
    pub totals: Totals,
}

/// A plan file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    pub plan: Header,
    #[serde(default, rename = "action")]
    pub actions: Vec<Action>,
    /// The forecasts the plan used, for accuracy feedback (`chameleon forecast --evaluate --plans`).
    #[serde(default, rename = "forecast", skip_serializing_if = "Vec::is_empty")]
    pub forecasts: Vec<ForecastRecord>,
}

/// One series' forecast as a plan used it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForecastRecord {
    pub instance: String,
    pub resource: Resource,
    pub method: String,
    /// The quantile of the peak over the horizon.
    pub quantile: f64,
    /// The mean point forecast over the horizon.
    pub mean: f64,
    pub last: f64,
}

/// A plan that passed [`Plan::verify`] against the current fleet.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedPlan(Plan);

impl VerifiedPlan {
    /// The verified plan.
    pub fn plan(&self) -> &Plan {
        &self.0
    }

    /// When the plan was made: the time its changes are stamped with.
    pub fn created_at(&self) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(&self.0.plan.created_at)
            .expect("checked by verify")
            .with_timezone(&Utc)
    }
}

/// Everything a plan records about how it was made.
pub struct Inputs<'a> {
    pub fleet: &'a Fleet,
    pub telemetry: &'a Telemetry,
    pub forecasts: &'a Forecasts,
    pub problem: &'a Problem,
    pub strategy: &'a str,
    pub stats: &'a SolverStats,
    /// Whether to record wall-clock solve time (off for reproducible `--now` runs).
    pub record_timing: bool,
}

const PREAMBLE: &str =
    "# Chameleon plan. Review the actions below; set `skip = true` on any you do not want,\n\
# then run `chameleon apply <this file> --fleet <fleet.toml>`. Any other edit voids the plan.\n\n";

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
                best_bound: round6(inputs.stats.best_bound),
                gap: round6(inputs.stats.gap),
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

    /// Whether the plan proposes any change.
    pub fn has_changes(&self) -> bool {
        !self.actions.is_empty()
    }

    /// sha256 of the canonical text with `digest` cleared and every `skip` false.
    pub fn compute_digest(&self) -> String {
        self.digest_with(&self.tail_toml())
    }

    /// [`compute_digest`](Self::compute_digest), given the text of the forecasts.
    fn digest_with(&self, tail: &str) -> String {
        let mut plan = self.plan.clone();
        plan.digest.clear();
        let mut actions = self.actions.clone();
        actions.iter_mut().for_each(|a| a.skip = false);
        let head = head_toml(&plan, &actions);
        hex(&Sha256::new()
            .chain_update(head.as_bytes())
            .chain_update(tail.as_bytes())
            .finalize())
    }

    /// The file text: a short preamble for reviewers, then the TOML.
    pub fn to_text(&self) -> String {
        let (head, tail) = (head_toml(&self.plan, &self.actions), self.tail_toml());
        format!("{PREAMBLE}{head}{tail}")
    }

    /// The TOML of the forecasts, as it ends the plan's: most of a large plan's text, so
    /// it is serialised apart from the header and actions and only once per digest.
    fn tail_toml(&self) -> String {
        #[derive(Serialize)]
        struct Tail<'a> {
            forecast: &'a [ForecastRecord],
        }
        if self.forecasts.is_empty() {
            return String::new();
        }
        let tail = Tail {
            forecast: &self.forecasts,
        };
        format!("\n{}", toml::to_string(&tail).expect("plans serialise"))
    }

    /// Writes `<dir>/<id>.plan.toml` atomically and returns its path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, PlanError> {
        let io = |source| PlanError::Io {
            path: dir.to_owned(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(io)?;
        let path = dir.join(format!("{}.plan.toml", self.plan.id));
        write_atomic(&path, self.to_text().as_bytes()).map_err(|source| PlanError::Io {
            path: path.clone(),
            source,
        })?;
        Ok(path)
    }

    /// Reads a plan file (without verifying it).
    pub fn read(path: &Path) -> Result<Plan, PlanError> {
        let text = crate::file::read_text(path).map_err(|source| PlanError::Io {
            path: path.to_owned(),
            source,
        })?;
        let invalid = |line, message| PlanError::Invalid {
            path: path.to_owned(),
            line,
            message,
        };
        let plan: Plan = toml::from_str(&text).map_err(|e| {
            let (line, message) = toml_error(&text, &e);
            invalid(line, message)
        })?;
        plan.check_references().map_err(|(id, message)| {
            let key = format!("id = \"{id}\"");
            let line = text
                .lines()
                .position(|l| l.trim() == key)
                .map_or(0, |n| n + 1);
            invalid(line, message)
        })?;
        Ok(plan)
    }

    /// Action ids are unique and every `depends_on` names an earlier-listed or later action.
    fn check_references(&self) -> Result<(), (String, String)> {
        let mut ids = std::collections::BTreeSet::new();
        for a in &self.actions {
            if !ids.insert(a.id.as_str()) {
                return Err((a.id.clone(), format!("duplicate action id `{}`", a.id)));
            }
        }
        for a in &self.actions {
            if let Some(d) = a
                .depends_on
                .iter()
                .find(|d| !ids.contains(d.as_str()) || **d == a.id)
            {
                return Err((
                    a.id.clone(),
                    format!("action {} depends on unknown action `{d}`", a.id),
                ));
            }
        }
        Ok(())
    }

    /// Checks digest, prior application, expiry and fleet fingerprint, in that order.
    pub fn verify(
        self,
        path: &Path,
        fleet: &Fleet,
        now: DateTime<Utc>,
    ) -> Result<VerifiedPlan, PlanError> {
        let path = path.to_owned();
        let expected = self.compute_digest();
        if expected != self.plan.digest {
            return Err(PlanError::Tampered {
                path,
                expected,
                found: self.plan.digest.clone(),
            });
        }
        if fleet.last_plan.as_deref() == Some(self.plan.id.as_str()) {
            return Err(PlanError::AlreadyApplied {
                path,
                id: self.plan.id.clone(),
            });
        }
        let time = |key: &str, value: &str| {
            DateTime::parse_from_rfc3339(value).map_err(|e| PlanError::Invalid {
                path: path.clone(),
                line: 0,
                message: format!("{key}: {e}"),
            })
        };
        let created = time("created_at", &self.plan.created_at)?;
        if now < created {
            return Err(PlanError::Early {
                path,
                created_at: self.plan.created_at.clone(),
                now: rfc3339(now),
            });
        }
        if let Some((a, key)) = self.actions.iter().find_map(|a| {
            a.numbers()
                .into_iter()
                .find(|(_, v)| !v.is_finite())
                .map(|(key, _)| (a, key))
        }) {
            return Err(PlanError::Invalid {
                path,
                line: 0,
                message: format!("action {}: {key} is not a finite number", a.id),
            });
        }
        let expires = time("expires_at", &self.plan.expires_at)?;
        if now >= expires {
            return Err(PlanError::Expired {
                path,
                expires_at: self.plan.expires_at.clone(),
                now: rfc3339(now),
            });
        }
        let current = fleet.fingerprint();
        if current != self.plan.fleet_fingerprint {
            return Err(PlanError::Stale {
                path,
                planned: self.plan.fleet_fingerprint.clone(),
                current,
            });
        }
        Ok(VerifiedPlan(self))
    }

    /// A readable summary for review.
    pub fn summary(&self) -> String {
        let h = &self.plan;
        let t = &h.totals;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "plan {}  strategy {}  created {}  expires {}",
            h.id, h.strategy, h.created_at, h.expires_at
        );
        let _ = writeln!(
            out,
            "solver {}  objective {:.3} (before {:.3})  bound {:.3}  gap {:.4}%",
            h.solver.status,
            h.solver.objective,
            t.objective_before,
            h.solver.best_bound,
            h.solver.gap * 100.0
        );
        if let (Some(n), Some(later)) = (h.solver.lookahead_intervals, h.solver.objective_later) {
            let _ = writeln!(
                out,
                "look-ahead {n} intervals: this plan is the first; {later:.3} of the objective is the later ones"
            );
        }
        let _ = writeln!(
            out,
            "shortfall {:.3} -> {:.3} units  changes {}  swaps {}  migrations {}  bytes moved {}  credits moved {:.2}\n",
            t.shortfall_before, t.shortfall_after, t.changes, t.swaps, t.migrations, t.bytes_moved, t.credits_moved
        );
        let _ = writeln!(
            out,
            "{:<5} {:<8} {:<28} {:<5} {:>22} {:>8}  {:<10} skip",
            "id", "kind", "instance", "res", "change", "credits", "depends"
        );
        for a in &self.actions {
            let _ = writeln!(
                out,
                "{:<5} {:<8} {:<28} {:<5} {:>22} {:>8}  {:<10} {}",
                a.id,
                a.kind().name(),
                a.instance,
                a.resource().map_or("-".into(), |r| r.to_string()),
                change_text(a),
                a.credits().map_or("-".into(), |c| format!("{c:.2}")),
                if a.depends_on.is_empty() {
                    "-".into()
                } else {
                    a.depends_on.join(",")
                },
                a.skip
            );
        }
        if self.actions.is_empty() {
            let _ = writeln!(out, "(no changes)");
        }
        out
    }
}

fn change_text(a: &Action) -> String {
    match &a.change {
        Change::Migrate {
            from_host, to_host, ..
        } => format!("{from_host} -> {to_host}"),
        Change::Swap { amount, donor, .. } => format!("+{amount} from {donor}"),
        Change::Resize { from, to, .. } => format!("{from} -> {to}"),
        Change::Pool { from, to } => format!("{from} -> {to} warm"),
    }
}

/// RFC 3339 with seconds and a `Z`.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn method_name(m: crate::forecast::Method) -> String {
    m.name().to_owned()
}

/// The TOML of a plan's header and actions, as it begins the plan's.
fn head_toml(plan: &Header, actions: &[Action]) -> String {
    #[derive(Serialize)]
    struct Head<'a> {
        plan: &'a Header,
        action: &'a [Action],
    }
    toml::to_string(&Head {
        plan,
        action: actions,
    })
    .expect("plans serialise")
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
fn actions(p: &Problem, forecasts: &Forecasts, s: &Solution) -> Vec<Action> {
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

/// Shrinks before the grows they make room for; a migrated instance shrinks before it moves
/// and grows after; an instance's resize after its swaps.
fn link_dependencies(p: &Problem, s: &Solution, actions: &mut [Action]) {
    let mut final_host: HashMap<&str, &str> = p
        .instances
        .iter()
        .enumerate()
        .map(|(i, inst)| (inst.id.as_str(), p.hosts[s.host[i]].id.as_str()))
        .collect();
    for pool in &p.pools {
        final_host.insert(pool.id.as_str(), p.hosts[pool.host].id.as_str());
    }
    // An action only ever waits for actions on its host or on its own instance (see
    // `depends`), so only those are checked: linear in plan size, not quadratic.
    let snapshot = actions.to_vec();
    let mut by_host: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut by_instance: HashMap<&str, Vec<usize>> = HashMap::new();
    for (k, b) in snapshot.iter().enumerate() {
        by_host
            .entry(final_host[b.instance.as_str()])
            .or_default()
            .push(k);
        if let Some(from) = b.from_host() {
            by_host.entry(from).or_default().push(k);
        }
        by_instance.entry(b.instance.as_str()).or_default().push(k);
        if let Some(donor) = b.donor() {
            by_instance.entry(donor).or_default().push(k);
        }
    }
    for a in actions.iter_mut() {
        let on_host = by_host.get(final_host[a.instance.as_str()]);
        let own = by_instance.get(a.instance.as_str());
        let mut candidates: Vec<usize> =
            on_host.into_iter().chain(own).flatten().copied().collect();
        candidates.sort_unstable();
        candidates.dedup();
        let deps = candidates
            .into_iter()
            .map(|k| &snapshot[k])
            .filter(|b| b.id != a.id && depends(a, b, &final_host));
        a.depends_on = deps.map(|b| b.id.clone()).collect();
    }
}

/// Whether action `a` must wait for action `b`. `final_host` maps instances to where they end up.
fn depends(a: &Action, b: &Action, final_host: &HashMap<&str, &str>) -> bool {
    let is_shrink = Action::is_shrink;
    // A pool that stops warm instances frees every resource on its host.
    let frees = |x: &Action| x.kind() == Kind::Pool || x.resource() == a.resource();
    let same_instance = a.instance == b.instance;
    let a_host = final_host[a.instance.as_str()];
    let shrinks_on_a_host = is_shrink(b) && final_host[b.instance.as_str()] == a_host;
    let same_resource_swap =
        b.kind() == Kind::Swap && involves(b, &a.instance) && b.resource() == a.resource();
    let leaves_a_host = b.from_host() == Some(a_host);
    match a.kind() {
        // Swaps record the receiver's allocation before them: run them in plan order.
        Kind::Swap => same_resource_swap && ordinal(&b.id) < ordinal(&a.id),
        // A migrant shrinks on its old host first, so it lands at its smaller size.
        Kind::Migrate => is_shrink(b) && (same_instance || shrinks_on_a_host),
        Kind::Resize | Kind::Pool if is_shrink(a) => same_resource_swap,
        Kind::Pool => shrinks_on_a_host || leaves_a_host,
        Kind::Resize => {
            let frees_room = (shrinks_on_a_host && frees(b)) || leaves_a_host;
            let own_move = same_instance && b.kind() == Kind::Migrate;
            frees_room || own_move || same_resource_swap
        }
    }
}

/// The position of an action id `aNN` in its plan.
fn ordinal(id: &str) -> usize {
    id.trim_start_matches('a').parse().unwrap_or(usize::MAX)
}

fn involves(swap: &Action, instance: &str) -> bool {
    swap.instance == instance || swap.donor() == Some(instance)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::scenario::{self, ScenarioOptions};

    /// The plan's text, serialised in two pieces, is exactly its TOML, with or without
    /// actions and forecasts.
    #[test]
    fn the_text_in_pieces_is_the_plans_toml() {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/golden/fixture.plan.toml"
        ))
        .unwrap();
        let full: Plan = toml::from_str(&text).unwrap();
        assert!(!full.actions.is_empty() && !full.forecasts.is_empty());
        for (actions, forecasts) in [(true, true), (true, false), (false, true), (false, false)] {
            let mut plan = full.clone();
            if !actions {
                plan.actions.clear();
            }
            if !forecasts {
                plan.forecasts.clear();
            }
            let whole = toml::to_string(&plan).unwrap();
            assert_eq!(plan.to_text(), format!("{PREAMBLE}{whole}"));
            let mut canonical = plan.clone();
            canonical.plan.digest.clear();
            canonical.actions.iter_mut().for_each(|a| a.skip = false);
            let expected = hex(&Sha256::digest(
                toml::to_string(&canonical).unwrap().as_bytes(),
            ));
            plan.actions.iter_mut().for_each(|a| a.skip = true);
            assert_eq!(plan.compute_digest(), expected);
        }
        assert_eq!(full.compute_digest(), full.plan.digest);
    }

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
                Err(PlanError::Invalid {
                    line, message: m, ..
                }) => {
                    assert!(m.contains(message), "{m}");
                    assert!(line > 0 && line <= line_of(at) + 12, "line {line}: {m}");
                }
                other => panic!("{other:?}"),
            }
        }
    }

    /// Linking by host and instance finds exactly what checking every pair of actions finds.
    #[test]
    fn dependencies_match_checking_every_pair() {
        let mut policy = crate::policy::Policy::default();
        policy.disruption.max_changes = 100;
        policy.disruption.max_migrations = 10;
        policy.solver.relative_gap = 0.05;
        let opts = ScenarioOptions {
            instances: 100,
            hosts: 5,
            cells: 1,
            days: 1,
            seed: 3,
            step_minutes: 15,
            overcommit: 1.3,
            start: "2024-01-01T00:00:00Z".parse().unwrap(),
        };
        let (fleet, recent) = scenario::generate(&opts, &policy).unwrap();
        let index: HashMap<String, usize> = (0..opts.instances)
            .map(|k| (format!("vm{k:06}"), k))
            .collect();
        let p = Problem::with_demand(&fleet, &policy, |id, r| recent[index[id]][r]);
        let (s, _) = crate::solve::decompose::solve_mip(&p).unwrap();
        let linked = actions(&p, &Forecasts::default(), &s);
        let kinds = |k: Kind| linked.iter().filter(|a| a.kind() == k).count();
        assert!(
            kinds(Kind::Migrate) > 0 && kinds(Kind::Swap) > 0,
            "{linked:?}"
        );
        let final_host: HashMap<&str, &str> = p
            .instances
            .iter()
            .enumerate()
            .map(|(i, inst)| (inst.id.as_str(), p.hosts[s.host[i]].id.as_str()))
            .collect();
        let mut edges = 0;
        for a in &linked {
            let every_pair: Vec<String> = linked
                .iter()
                .filter(|b| b.id != a.id && depends(a, b, &final_host))
                .map(|b| b.id.clone())
                .collect();
            assert_eq!(a.depends_on, every_pair, "{}", a.id);
            edges += every_pair.len();
        }
        assert!(edges > 0);
    }
}
