//! `chameleon apply`: which backend, and the durable apply's outcome.

use super::*;

#[derive(Clone, Copy, ValueEnum)]
pub(super) enum Backend {
    /// Only the fleet-state file.
    Sim,
    /// Linux cgroups (v1 or v2) under --cgroup-root, one group per instance.
    Cgroup,
    /// Operator command templates from --exec-config.
    Exec,
}

#[derive(clap::Args)]
pub(super) struct BackendArgs {
    #[arg(long, value_enum, default_value = "sim")]
    backend: Backend,
    /// The cgroup backend's root (one group per instance below it).
    #[arg(long, default_value = "/sys/fs/cgroup")]
    cgroup_root: PathBuf,
    /// The exec backend's TOML file of command templates.
    #[arg(long, required_if_eq("backend", "exec"))]
    exec_config: Option<PathBuf>,
}

impl BackendArgs {
    pub(super) fn spec(self) -> Spec {
        match (self.backend, self.exec_config) {
            (Backend::Sim, _) => Spec::Sim,
            (Backend::Cgroup, _) => Spec::Cgroup(self.cgroup_root),
            (Backend::Exec, config) => Spec::Exec(config.unwrap_or_default()),
        }
    }
}

pub(super) fn apply(req: &Request) -> Result<ExitCode> {
    let report = match executor::apply(req) {
        Ok(report) => report,
        Err(executor::ApplyError::Plan(e @ PlanError::AlreadyApplied { .. })) => {
            println!("{e}");
            return Ok(ExitCode::SUCCESS);
        }
        Err(executor::ApplyError::NothingToResume { path }) if req.resume => {
            println!("{}: nothing to resume", path.display());
            return Ok(ExitCode::SUCCESS);
        }
        Err(e) => return Err(e.into()),
    };
    let mut counts = std::collections::BTreeMap::new();
    for s in &report.steps {
        let word = match s.status {
            StepStatus::Done => "applied",
            other => other.name(),
        };
        *counts.entry(word).or_insert(0) += 1;
        match s.message.as_str() {
            "" => println!("{word} {}", s.action),
            why => println!("{word} {}: {why}", s.action),
        }
    }
    let counts: Vec<String> = counts.iter().map(|(w, n)| format!("{n} {w}")).collect();
    println!(
        "plan {} {}{}: {}; fleet written to {} (total credits {:.2}), journal and ledger in {}",
        report.plan_id,
        report.status.name(),
        if report.resumed { " (resumed)" } else { "" },
        counts.join(", "),
        req.fleet.display(),
        report.fleet.total_credits(),
        report.ledger.display()
    );
    if report.status == RunStatus::Applied {
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!(
            "error: plan {} was {}: an action failed",
            report.plan_id,
            report.status.name()
        );
        Ok(ExitCode::from(1))
    }
}
