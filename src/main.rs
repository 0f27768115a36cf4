//! The `chameleon` command: parses arguments, calls the library, maps outcomes to exit codes.

use anyhow::{Context, Result};
use chameleon::compare;
use chameleon::executor;
use chameleon::import::{self, ImportOptions, Source};
use chameleon::partition;
use chameleon::plan::{Plan, PlanError};
use chameleon::planner::{Run, RunInputs, Strategy};
use chameleon::policy::Policy;
use chameleon::scenario::{self, ScenarioOptions};
use chameleon::synth::{synth_fleet, SynthOptions};
use chameleon::telemetry::{self, Telemetry};
use chrono::{DateTime, SubsecRound, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "chameleon",
    version,
    about = "Predictive resource planner for virtualised compute"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert a public trace format into canonical telemetry CSV.
    Import {
        source: Source,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[arg(long)]
        out: PathBuf,
        /// Cores that 100% CPU stands for (Azure and NAB).
        #[arg(long)]
        cores: Option<f64>,
        /// Azure: time of step 1; Bitbrains and NAB: shift each file to start here.
        #[arg(long)]
        start: Option<DateTime<Utc>>,
    },
    /// Fleet-state tools.
    Fleet {
        #[command(subcommand)]
        command: FleetCommand,
    },
    /// Forecast, optimise and write a plan into the output directory.
    Plan {
        #[command(flatten)]
        inputs: Inputs,
        #[arg(long, value_enum, default_value = "mip")]
        strategy: Strategy,
        #[arg(long, default_value = "plans")]
        out_dir: PathBuf,
        /// Exit 0 for no changes, 2 for changes, 1 for errors.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Also write the exact MIP, with named rows and columns, as .lp or .mps.
        #[arg(long)]
        export_model: Option<PathBuf>,
    },
    /// Print a plan as a review table.
    Show { plan: PathBuf },
    /// Verify a plan against the fleet and apply it.
    Apply {
        plan: PathBuf,
        #[arg(long)]
        fleet: PathBuf,
        #[arg(long, value_enum, default_value = "sim")]
        backend: Backend,
        /// The current time, for checking expiry (default: now).
        #[arg(long)]
        now: Option<DateTime<Utc>>,
    },
    /// Write a synthetic fleet and telemetry shaped like the real traces, at any scale.
    Synth {
        #[arg(long)]
        instances: usize,
        #[arg(long)]
        hosts: usize,
        #[arg(long, default_value_t = 1)]
        cells: usize,
        #[arg(long, default_value_t = 7)]
        days: u32,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Telemetry step (a multiple of 5).
        #[arg(long, default_value_t = 5)]
        step_minutes: u32,
        #[arg(long, default_value_t = 1.3)]
        overcommit: f64,
        /// Time of the first sample.
        #[arg(long, default_value = "2024-01-01T00:00:00Z")]
        start: DateTime<Utc>,
        #[arg(long)]
        out_dir: PathBuf,
    },
    /// Run the MIP and the greedy heuristic side by side on the same forecasts.
    Compare {
        #[command(flatten)]
        inputs: Inputs,
    },
}

#[derive(clap::Args)]
struct Inputs {
    #[command(flatten)]
    run: RunInputs,
    /// Plan as of this time; pins the run so the plan is byte-for-byte reproducible.
    #[arg(long)]
    now: Option<DateTime<Utc>>,
}

#[derive(Subcommand)]
enum FleetCommand {
    /// Place the telemetry's instances on N hosts with the given overcommit.
    Synth {
        #[arg(long)]
        telemetry: PathBuf,
        #[arg(long)]
        hosts: usize,
        /// Number of cells (default: one per two hosts).
        #[arg(long)]
        cells: Option<usize>,
        /// Summed peak demand over capacity, e.g. 1.3.
        #[arg(long)]
        overcommit: f64,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long)]
        model: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    /// Rewrite the fleet-state file.
    Sim,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Usage errors exit 1, never 2 (which `--detailed-exitcode` reserves for changes).
            let _ = e.print();
            return ExitCode::from(u8::from(e.use_stderr()));
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Import {
            source,
            paths,
            out,
            cores,
            start,
        } => {
            let samples = import::import(source, &paths, &ImportOptions { cores, start })?;
            let file = std::fs::File::create(&out).with_context(|| format!("{}", out.display()))?;
            telemetry::write_csv(file, &samples).with_context(|| format!("{}", out.display()))?;
            eprintln!("wrote {} samples to {}", samples.len(), out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Fleet {
            command:
                FleetCommand::Synth {
                    telemetry,
                    hosts,
                    cells,
                    overcommit,
                    seed,
                    model,
                    out,
                },
        } => {
            let t = Telemetry::read(&telemetry)?;
            let policy = Policy::load(model.as_deref())?;
            let opts = SynthOptions {
                hosts,
                cells: cells.unwrap_or(hosts.div_ceil(2)),
                overcommit,
                seed,
            };
            synth_fleet(&t, &opts, &policy)?.write_atomic(&out)?;
            eprintln!("wrote {} hosts to {}", hosts, out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan {
            inputs,
            strategy,
            out_dir,
            detailed_exitcode,
            export_model,
        } => plan(
            inputs,
            strategy,
            &out_dir,
            detailed_exitcode,
            export_model.as_deref(),
        ),
        Command::Show { plan } => {
            print!("{}", Plan::read(&plan)?.summary());
            Ok(ExitCode::SUCCESS)
        }
        Command::Apply {
            plan,
            fleet,
            backend: Backend::Sim,
            now,
        } => apply(&plan, &fleet, now),
        Command::Synth {
            instances,
            hosts,
            cells,
            days,
            seed,
            step_minutes,
            overcommit,
            start,
            out_dir,
        } => {
            let opts = ScenarioOptions {
                instances,
                hosts,
                cells,
                days,
                seed,
                step_minutes,
                overcommit,
                start,
            };
            scenario::write(&opts, &Policy::default(), &out_dir)?;
            eprintln!(
                "wrote {} instances on {hosts} hosts to {}",
                instances,
                out_dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Compare { inputs } => {
            let run = Run::prepare(&inputs.run, resolve_now(inputs.now))?;
            print!("{}", compare::render(&compare::compare(&run)?));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn resolve_now(now: Option<DateTime<Utc>>) -> DateTime<Utc> {
    now.unwrap_or_else(|| Utc::now().trunc_subsecs(0))
}

fn plan(
    inputs: Inputs,
    strategy: Strategy,
    out_dir: &Path,
    detailed: bool,
    export_model: Option<&Path>,
) -> Result<ExitCode> {
    let run = Run::prepare(&inputs.run, resolve_now(inputs.now))?;
    if let Some(path) = export_model {
        for file in partition::export(&run.problem, path)? {
            eprintln!("wrote model {}", file.display());
        }
    }
    let (solution, stats) = run.solve(strategy)?;
    eprintln!(
        "forecast {:.2}s, solve {:.3}s ({}, objective {:.3}, gap {:.4}%)",
        run.forecast_seconds,
        stats.seconds,
        stats.status,
        stats.objective,
        stats.gap * 100.0
    );
    let plan = Plan::build(
        &chameleon::plan::Inputs {
            fleet: &run.fleet,
            telemetry: &run.telemetry,
            forecasts: &run.forecasts,
            problem: &run.problem,
            strategy: strategy.name(),
            stats: &stats,
            record_timing: inputs.now.is_none(),
        },
        &solution,
    );
    let path = plan.write(out_dir)?;
    println!("{}", path.display());
    Ok(match (detailed, plan.has_changes()) {
        (true, true) => ExitCode::from(2),
        _ => ExitCode::SUCCESS,
    })
}

fn apply(plan: &Path, fleet: &Path, now: Option<DateTime<Utc>>) -> Result<ExitCode> {
    match executor::apply(plan, fleet, resolve_now(now)) {
        Ok(outcome) => {
            for id in &outcome.applied {
                println!("applied {id}");
            }
            for (id, why) in &outcome.skipped {
                println!("skipped {id}: {why}");
            }
            let credits = outcome.fleet.total_credits();
            println!(
                "{} applied, {} skipped; fleet written to {} (total credits {credits:.2})",
                outcome.applied.len(),
                outcome.skipped.len(),
                fleet.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(executor::ApplyError::Plan(e @ PlanError::AlreadyApplied { .. })) => {
            println!("{e}");
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(e.into()),
    }
}
