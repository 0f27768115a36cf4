//! The binary's command line: clap's types for every command, and what each one calls in
//! the library and prints. The library knows nothing of the command-line syntax.
mod apply;
mod ledger;
mod plan;
mod pools;
mod profile;
mod sources;
mod telemetry_replay;
mod words;

use apply::{apply, BackendArgs};
use ledger::show_ledger;
use plan::{evaluate_forecasts, plan, print_forecasts, read_plans, write_report};
use pools::{pools, PoolsCommand};
use profile::{profile, ProfileArgs};
use sources::ImportSource;
use telemetry_replay::{replay, ReplayArgs};
use words::words;

use anyhow::{Context, Result};
use chameleon::executor::{
    self, backend::Spec, journal::RunStatus, journal::StepStatus, OnFailure, Request,
};
use chameleon::fleet::ledger::Ledger;
use chameleon::fleet::lock::FleetLock;
use chameleon::fleet::Fleet;
use chameleon::forecast;
use chameleon::jobs::{
    self,
    import::{Options as JobOptions, Source as JobSource},
};
use chameleon::plan::{Plan, PlanError};
use chameleon::planner::{Run, RunInputs, Strategy};
use chameleon::policy::Policy;
use chameleon::replay;
use chameleon::replay::compare;
use chameleon::solve::decompose;
use chameleon::synth::scenario::{self, ScenarioOptions};
use chameleon::synth::{synth_fleet, SynthOptions};
use chameleon::telemetry::import::{self, ImportOptions, Source};
use chameleon::telemetry::{self, Telemetry};
use chrono::{DateTime, SubsecRound, Utc};
use clap::{Parser, Subcommand, ValueEnum};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "chameleon",
    version,
    about = "Predictive resource planner for virtualised compute"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Convert a public trace into canonical telemetry CSV, or a public job log into
    /// canonical jobs CSV (what was dropped or filled in is counted on stderr).
    Import {
        source: ImportSource,
        /// The files; for azure-vm-arrivals the flavor traces (X.txt), whose duration
        /// traces (X.c<T>.txt) are found beside them and maps in ../maps.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// The canonical CSV to write (see docs/formats.md).
        #[arg(long)]
        out: PathBuf,
        /// Cores that 100% CPU stands for (Azure and NAB).
        #[arg(long)]
        cores: Option<f64>,
        /// Azure: time of step 1; Bitbrains and NAB: shift each file to start here; swf:
        /// the log's zero (default: the header's UnixStartTime); azure-functions: time 0
        /// (default 2021-01-31T00:00:00Z); azure-vm-arrivals: time 0 (default
        /// 2017-01-01T00:00:00Z).
        #[arg(long)]
        start: Option<DateTime<Utc>>,
        /// Job logs: the pool of jobs whose source names none (default `default`).
        #[arg(long)]
        pool: Option<String>,
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
        #[arg(long, value_parser = words::<Strategy>(), default_value = "mip")]
        strategy: Strategy,
        #[arg(long, default_value = "plans")]
        out_dir: PathBuf,
        /// Exit 0 for no changes, 2 for changes, 1 for errors.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Also write the exact MIP, with named rows and columns, as .lp or .mps: one file
        /// per part the fleet is solved in.
        #[arg(long)]
        export_model: Option<PathBuf>,
        /// With --export-model, write the whole program as one file instead of its parts,
        /// for auditing plans against an outside solver.
        #[arg(long, requires = "export_model")]
        export_whole: bool,
    },
    /// Print a plan as a review table.
    Show { plan: PathBuf },
    /// Verify a plan against the fleet and apply it, durably, through a backend.
    Apply {
        /// The plan (optional with --resume).
        #[arg(required_unless_present = "resume")]
        plan: Option<PathBuf>,
        #[arg(long)]
        fleet: PathBuf,
        #[command(flatten)]
        backend: BackendArgs,
        /// The journal and credit ledger (default: <fleet>.ledger.sqlite beside the fleet file).
        #[arg(long)]
        ledger: Option<PathBuf>,
        /// What to do with the completed part when an action fails.
        #[arg(long, value_parser = words::<OnFailure>(), default_value = "stop")]
        on_failure: OnFailure,
        /// Finish an interrupted apply (then apply PLAN, if given and not yet applied).
        #[arg(long)]
        resume: bool,
        /// Wait up to SECS for another apply or plan on this fleet to finish.
        #[arg(long, default_value_t = 0)]
        wait: u64,
        /// The current time, for checking expiry (default: now).
        #[arg(long)]
        now: Option<DateTime<Utc>>,
    },
    /// Show credit balances and their history from the ledger (the source of truth).
    Ledger {
        #[arg(long)]
        fleet: PathBuf,
        /// The ledger database (default: <fleet>.ledger.sqlite beside the fleet file).
        #[arg(long)]
        ledger: Option<PathBuf>,
        /// Only this instance.
        #[arg(long)]
        instance: Option<String>,
        /// Copy the ledger's balances into the fleet file's `credits`.
        #[arg(long)]
        sync: bool,
    },
    /// Write a synthetic fleet and telemetry shaped like the real traces, at any scale.
    Scenario {
        #[command(flatten)]
        scenario: ScenarioArgs,
        #[arg(long)]
        out_dir: PathBuf,
    },
    /// Forecast every series, or evaluate forecast accuracy by rolling origins.
    Forecast {
        #[arg(long)]
        telemetry: PathBuf,
        /// Forecast (or evaluate up to) this time (default: now; evaluation: each series' end).
        #[arg(long)]
        now: Option<DateTime<Utc>>,
        #[arg(long)]
        model: Option<PathBuf>,
        /// Backtest every method and the selection at `--origins` origins back from each
        /// series' end, `--origin-spacing` apart (default: one horizon).
        #[arg(long)]
        evaluate: bool,
        #[arg(long, default_value_t = 4)]
        origins: usize,
        /// Time between evaluation origins, e.g. `7h` (24 origins then cover a week at
        /// every hour of the day).
        #[arg(long, value_parser = parse_minutes)]
        origin_spacing: Option<u32>,
        /// Forecast horizon, e.g. `1h` or `30m` (default: the model file's).
        #[arg(long, value_parser = parse_minutes)]
        horizon: Option<u32>,
        /// Write the evaluation report as JSON.
        #[arg(long)]
        report: Option<PathBuf>,
        /// With --evaluate: also write every scored window as CSV (its history, what
        /// followed, the selection's forecast), for another forecaster to run on.
        #[arg(long, requires = "evaluate")]
        windows: Option<PathBuf>,
        /// With --evaluate: score the forecasts recorded in these plans (files or
        /// directories of *.plan.toml) instead of backtesting.
        #[arg(long, num_args = 1..)]
        plans: Vec<PathBuf>,
    },
    /// Run the MIP and the greedy heuristic side by side on the same forecasts.
    Compare {
        #[command(flatten)]
        inputs: Inputs,
    },
    /// Backtest strategies side by side over the telemetry, interval by interval.
    Replay(ReplayArgs),
    /// Warm-pool strategies on a job log.
    Pools {
        #[command(subcommand)]
        command: PoolsCommand,
    },
    /// Profile users from a job log (updating the persisted profiles) and show them.
    Profile(ProfileArgs),
}

/// The inputs of `plan` and `compare`.
#[derive(clap::Args)]
struct Inputs {
    /// Fleet state file (TOML): hosts, instances, pools and credit balances.
    #[arg(long)]
    fleet: PathBuf,
    /// Canonical telemetry CSV (`timestamp,instance,resource,value`).
    #[arg(long)]
    telemetry: PathBuf,
    /// Planning model file (default: the built-in models/default.toml).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Warm-instance target per pool (`web = 3`), brought by the operator; overrides
    /// the predicted target of each pool it names.
    #[arg(long)]
    pool_targets: Option<PathBuf>,
    /// A canonical jobs CSV: profile its users and predict each pool's warm target.
    #[arg(long)]
    jobs: Option<PathBuf>,
    /// Plan N intervals jointly and emit only the first (default: the model file's
    /// `lookahead_intervals`).
    #[arg(long, value_name = "N")]
    lookahead: Option<u32>,
    /// Plan as of this time; pins the run so the plan is byte-for-byte reproducible.
    #[arg(long)]
    now: Option<DateTime<Utc>>,
}

impl Inputs {
    fn run(&self) -> RunInputs {
        RunInputs {
            fleet: self.fleet.clone(),
            telemetry: self.telemetry.clone(),
            model: self.model.clone(),
            pool_targets: self.pool_targets.clone(),
            jobs: self.jobs.clone(),
            lookahead: self.lookahead,
        }
    }
}

/// What `chameleon scenario` generates.
#[derive(clap::Args)]
struct ScenarioArgs {
    /// Instances to generate.
    #[arg(long)]
    instances: usize,
    /// Hosts to place them on.
    #[arg(long)]
    hosts: usize,
    /// Cells the hosts are divided into.
    #[arg(long, default_value_t = 1)]
    cells: usize,
    /// Days of telemetry per series.
    #[arg(long, default_value_t = 7)]
    days: u32,
    /// Random seed: the same seed gives the same fleet and telemetry.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Telemetry step in minutes (a multiple of 5).
    #[arg(long, default_value_t = 5)]
    step_minutes: u32,
    /// Summed peak demand over capacity on each host.
    #[arg(long, default_value_t = 1.3)]
    overcommit: f64,
    /// Time of the first sample.
    #[arg(long, default_value = "2024-01-01T00:00:00Z")]
    start: DateTime<Utc>,
}

impl From<ScenarioArgs> for ScenarioOptions {
    fn from(a: ScenarioArgs) -> ScenarioOptions {
        ScenarioOptions {
            instances: a.instances,
            hosts: a.hosts,
            cells: a.cells,
            days: a.days,
            seed: a.seed,
            step_minutes: a.step_minutes,
            overcommit: a.overcommit,
            start: a.start,
        }
    }
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

/// The error and its causes, each said once: most errors already name their cause.
pub(crate) fn message(e: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in e.chain().map(ToString::to_string) {
        if !text.contains(&cause) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause);
        }
    }
    text
}

pub(crate) fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Import {
            source: ImportSource::Jobs(source),
            paths,
            out,
            cores,
            start,
            pool,
        } => {
            if cores.is_some() {
                anyhow::bail!("--cores applies to telemetry traces (bitbrains, azure, nab)");
            }
            let imported = jobs::import::import(source, &paths, &JobOptions { start, pool })?;
            eprint!("{}", imported.report);
            let file = std::fs::File::create(&out).with_context(|| format!("{}", out.display()))?;
            jobs::write_csv(file, &imported.jobs).with_context(|| format!("{}", out.display()))?;
            eprintln!("wrote {} jobs to {}", imported.jobs.len(), out.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Import {
            source: ImportSource::Telemetry(source),
            paths,
            out,
            cores,
            start,
            pool,
        } => {
            if pool.is_some() {
                anyhow::bail!("--pool applies to job logs (swf, azure-functions)");
            }
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
            export_whole,
        } => plan(
            inputs,
            strategy,
            &out_dir,
            detailed_exitcode,
            export_model.as_deref().map(|path| (path, export_whole)),
        ),
        Command::Show { plan } => {
            print!("{}", Plan::read(&plan)?.summary());
            Ok(ExitCode::SUCCESS)
        }
        Command::Apply {
            plan,
            fleet,
            backend,
            ledger,
            on_failure,
            resume,
            wait,
            now,
        } => apply(&Request {
            plan: plan.as_deref(),
            fleet: &fleet,
            ledger: ledger.as_deref(),
            backend: &backend.spec(),
            on_failure,
            resume,
            wait: Duration::from_secs(wait),
            now: resolve_now(now),
        }),
        Command::Ledger {
            fleet,
            ledger,
            instance,
            sync,
        } => show_ledger(&fleet, ledger, instance.as_deref(), sync),
        Command::Scenario {
            scenario: opts,
            out_dir,
        } => {
            let opts = ScenarioOptions::from(opts);
            scenario::write(&opts, &Policy::default(), &out_dir)?;
            eprintln!(
                "wrote {} instances on {} hosts to {}",
                opts.instances,
                opts.hosts,
                out_dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Forecast {
            telemetry,
            now,
            model,
            evaluate,
            origins,
            origin_spacing,
            horizon,
            report,
            windows,
            plans,
        } => {
            let t = Telemetry::read(&telemetry)?;
            let mut settings = Policy::load(model.as_deref())?.forecast;
            settings.horizon_minutes = horizon.unwrap_or(settings.horizon_minutes);
            if evaluate && !plans.is_empty() {
                let plans = read_plans(&plans)?;
                let r = chameleon::replay::feedback::evaluate_plans(&t, &plans, &settings);
                eprintln!("scored the forecasts of {} plans", plans.len());
                write_report(&r, report.as_deref())
            } else if evaluate {
                let origins = (origins, origin_spacing.unwrap_or(0));
                let out = (report.as_deref(), windows.as_deref());
                evaluate_forecasts(&t, &settings, origins, now, out)
            } else {
                print_forecasts(&t, &settings, resolve_now(now))
            }
        }
        Command::Replay(args) => replay(&args),
        Command::Pools { command } => pools(command),
        Command::Profile(args) => profile(&args),
        Command::Compare { inputs } => {
            let run = Run::prepare(&inputs.run(), resolve_now(inputs.now))?;
            print!("{}", compare::render(&compare::compare(&run)?));
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Minutes from `90`, `90m` or `2h`.
fn parse_minutes(text: &str) -> Result<u32, String> {
    let (digits, factor) = match text.strip_suffix('h') {
        Some(d) => (d, 60),
        None => (text.strip_suffix('m').unwrap_or(text), 1),
    };
    match digits.parse::<u32>() {
        Ok(n) if n > 0 => Ok(n * factor),
        _ => Err(format!(
            "`{text}` is not a positive duration like 60m or 1h"
        )),
    }
}

fn resolve_now(now: Option<DateTime<Utc>>) -> DateTime<Utc> {
    now.unwrap_or_else(|| Utc::now().trunc_subsecs(0))
}
