//! The `chameleon` command: parses arguments, calls the library, maps outcomes to exit codes.

use anyhow::{Context, Result};
use chameleon::compare;
use chameleon::executor::{
    self, backend::Spec, journal::RunStatus, journal::StepStatus, OnFailure, Request,
};
use chameleon::fleet::Fleet;
use chameleon::forecast;
use chameleon::jobs::{
    self,
    import::{Options as JobOptions, Source as JobSource},
};
use chameleon::ledger::Ledger;
use chameleon::lock::FleetLock;
use chameleon::plan::{Plan, PlanError};
use chameleon::planner::{Run, RunInputs, Strategy};
use chameleon::policy::Policy;
use chameleon::replay;
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
struct Cli {
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
        #[arg(long, value_enum, default_value = "mip")]
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
        #[arg(long, value_enum, default_value = "stop")]
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
    Synth {
        #[command(flatten)]
        scenario: ScenarioOptions,
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
}

#[derive(Subcommand)]
enum PoolsCommand {
    /// Replay a canonical jobs CSV against warm pools under each strategy (table on
    /// stdout; report JSON and trade-off plot on request).
    Replay {
        #[arg(long)]
        jobs: PathBuf,
        /// Comma-separated: keepalive, reactive, hybrid, oracle.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "keepalive,reactive,hybrid,oracle"
        )]
        strategies: Vec<chameleon::pools::Family>,
        /// Seconds an instance takes to start; a job waits for its cold instances.
        #[arg(long, default_value_t = 60.0)]
        cold_start_seconds: f64,
        /// Count only jobs from this time on (learners see everything before it).
        #[arg(long)]
        fit_until: Option<DateTime<Utc>>,
        /// One pool for all jobs, ignoring the `pool` column.
        #[arg(long)]
        one_pool: bool,
        /// Write the report JSON here (see docs/formats.md).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Write the trade-off plot (SVG) here.
        #[arg(long)]
        plot: Option<PathBuf>,
    },
}

#[derive(clap::Args)]
struct ReplayArgs {
    #[arg(long)]
    fleet: PathBuf,
    #[arg(long)]
    telemetry: PathBuf,
    /// Planning model file (default: the built-in models/default.toml).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Comma-separated: static, reactive, vpa, greedy, mip, oracle, foresight.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "static,reactive,vpa,greedy,mip,oracle,foresight"
    )]
    strategies: Vec<replay::Kind>,
    /// Planning interval, e.g. `15m` or `1h`.
    #[arg(long, value_parser = parse_minutes, default_value = "15m")]
    interval: u32,
    /// First planning time (default: one forecast season after the first sample).
    #[arg(long)]
    start: Option<DateTime<Utc>>,
    /// No interval starts at or after this (default: the end of the telemetry).
    #[arg(long)]
    end: Option<DateTime<Utc>>,
    /// Write the JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Write the SVG plot here.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// The instance whose cpu forecast band is plotted (default: the one whose cpu varies most).
    #[arg(long)]
    plot_instance: Option<String>,
    /// Do not measure planning time (reported as null), so reports compare byte for byte.
    #[arg(long)]
    no_timing: bool,
    /// How credit balances move: with realised cpu usage, or only by swaps.
    #[arg(long, value_enum, default_value = "usage")]
    credits: replay::Credits,
}

#[derive(clap::Args)]
struct Inputs {
    #[command(flatten)]
    run: RunInputs,
    /// Plan as of this time; pins the run so the plan is byte-for-byte reproducible.
    #[arg(long)]
    now: Option<DateTime<Utc>>,
}

/// What `import` reads: a telemetry trace or a job log.
#[derive(Clone, Copy)]
enum ImportSource {
    Telemetry(Source),
    Jobs(JobSource),
}

impl ValueEnum for ImportSource {
    fn value_variants<'a>() -> &'a [Self] {
        &[
            ImportSource::Telemetry(Source::Bitbrains),
            ImportSource::Telemetry(Source::Azure),
            ImportSource::Telemetry(Source::Nab),
            ImportSource::Jobs(JobSource::Swf),
            ImportSource::Jobs(JobSource::AzureFunctions),
            ImportSource::Jobs(JobSource::AzureVmArrivals),
        ]
    }

    fn to_possible_value(&self) -> Option<clap::builder::PossibleValue> {
        match self {
            ImportSource::Telemetry(s) => s.to_possible_value(),
            ImportSource::Jobs(s) => s.to_possible_value(),
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

#[derive(Clone, Copy, ValueEnum)]
enum Backend {
    /// Only the fleet-state file.
    Sim,
    /// Linux cgroups (v1 or v2) under --cgroup-root, one group per instance.
    Cgroup,
    /// Operator command templates from --exec-config.
    Exec,
}

#[derive(clap::Args)]
struct BackendArgs {
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
    fn spec(self) -> Spec {
        match (self.backend, self.exec_config) {
            (Backend::Sim, _) => Spec::Sim,
            (Backend::Cgroup, _) => Spec::Cgroup(self.cgroup_root),
            (Backend::Exec, config) => Spec::Exec(config.unwrap_or_default()),
        }
    }
}

/// Also the entry point of `chameleon-faults` (src/bin), the test build with fault hooks.
pub(crate) fn main() -> ExitCode {
    // `chameleon ledger … | head -1` ends quietly when the reader goes away, as `cat` does.
    // SAFETY: restores the default action of one signal before any thread starts.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
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
            eprintln!("error: {}", message(&e));
            ExitCode::from(1)
        }
    }
}

/// The error and its causes, each said once: most errors already name their cause.
fn message(e: &anyhow::Error) -> String {
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

fn run(cli: Cli) -> Result<ExitCode> {
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
        Command::Synth {
            scenario: opts,
            out_dir,
        } => {
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
            plans,
        } => {
            let t = Telemetry::read(&telemetry)?;
            let mut settings = Policy::load(model.as_deref())?.forecast;
            settings.horizon_minutes = horizon.unwrap_or(settings.horizon_minutes);
            if evaluate && !plans.is_empty() {
                let plans = read_plans(&plans)?;
                let r = chameleon::feedback::evaluate_plans(&t, &plans, &settings);
                eprintln!("scored the forecasts of {} plans", plans.len());
                write_report(&r, report.as_deref())
            } else if evaluate {
                let origins = (origins, origin_spacing.unwrap_or(0));
                evaluate_forecasts(&t, &settings, origins, now, report.as_deref())
            } else {
                print_forecasts(&t, &settings, resolve_now(now))
            }
        }
        Command::Replay(args) => replay(&args),
        Command::Pools {
            command:
                PoolsCommand::Replay {
                    jobs: path,
                    strategies,
                    cold_start_seconds,
                    fit_until,
                    one_pool,
                    report,
                    plot,
                },
        } => {
            anyhow::ensure!(
                cold_start_seconds.is_finite() && cold_start_seconds >= 0.0,
                "--cold-start-seconds must be a finite number >= 0"
            );
            let config = chameleon::pools::Config {
                families: strategies,
                cold_start_seconds,
                fit_until,
                one_pool,
            };
            let result = chameleon::pools::replay(&jobs::read(&path)?, &config);
            if let Some(out) = report {
                let json = serde_json::to_string_pretty(&result)? + "\n";
                std::fs::write(&out, json).with_context(|| out.display().to_string())?;
            }
            if let Some(out) = plot {
                chameleon::pools::plot::write(&result, &out)?;
            }
            print!("{}", result.table());
            Ok(ExitCode::SUCCESS)
        }
        Command::Compare { inputs } => {
            let run = Run::prepare(&inputs.run, resolve_now(inputs.now))?;
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

fn evaluate_forecasts(
    t: &Telemetry,
    settings: &forecast::Settings,
    (origins, spacing): (usize, u32),
    now: Option<DateTime<Utc>>,
    report: Option<&Path>,
) -> Result<ExitCode> {
    let clock = std::time::Instant::now();
    let r = forecast::evaluate::evaluate(t, settings, origins, spacing, now);
    eprintln!(
        "evaluated {} series ({} skipped), {} origins {} min apart, horizon {} min, {:.1}s; \
         selection rel_geo 90% interval [{:.3}, {:.3}] over series",
        r.series,
        r.skipped,
        origins,
        r.origin_spacing_minutes,
        settings.horizon_minutes,
        clock.elapsed().as_secs_f64(),
        r.selected_rel_interval.0,
        r.selected_rel_interval.1
    );
    write_report(&r, report)
}

/// Prints the table and writes the JSON report if asked.
fn write_report(r: &forecast::evaluate::Report, path: Option<&Path>) -> Result<ExitCode> {
    print!("{}", r.table());
    if let Some(path) = path {
        let text = serde_json::to_string_pretty(r)?;
        std::fs::write(path, text + "\n").with_context(|| format!("{}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads plan files, and the `*.plan.toml` files of directories, in name order.
fn read_plans(paths: &[PathBuf]) -> Result<Vec<Plan>> {
    let mut files = Vec::new();
    for p in paths {
        if p.is_dir() {
            for entry in std::fs::read_dir(p).with_context(|| format!("{}", p.display()))? {
                let f = entry.with_context(|| format!("{}", p.display()))?.path();
                if f.to_string_lossy().ends_with(".plan.toml") {
                    files.push(f);
                }
            }
        } else {
            files.push(p.clone());
        }
    }
    files.sort();
    files.iter().map(|f| Ok(Plan::read(f)?)).collect()
}

fn print_forecasts(
    t: &Telemetry,
    settings: &forecast::Settings,
    now: DateTime<Utc>,
) -> Result<ExitCode> {
    let f = forecast::Forecasts::build(t, now, settings);
    println!("instance,resource,method,quantile,mean,last,note");
    for ((id, r), d) in &f.demands {
        println!(
            "{id},{r},{},{:.6},{:.6},{:.6},{}",
            d.method.name(),
            d.quantile,
            d.mean,
            d.last,
            d.note.replace(',', ";")
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn resolve_now(now: Option<DateTime<Utc>>) -> DateTime<Utc> {
    now.unwrap_or_else(|| Utc::now().trunc_subsecs(0))
}

fn plan(
    inputs: Inputs,
    strategy: Strategy,
    out_dir: &Path,
    detailed: bool,
    export_model: Option<(&Path, bool)>,
) -> Result<ExitCode> {
    let _lock = FleetLock::acquire(&inputs.run.fleet, Duration::ZERO)?;
    let fleet = &inputs.run.fleet;
    Ledger::check_settled(fleet, &Ledger::default_path(fleet))?;
    let run = Run::prepare(&inputs.run, resolve_now(inputs.now))?;
    run.save_state()?;
    match export_model {
        Some((path, true)) => {
            chameleon::solve::mip::export(&run.problem, path)?;
            eprintln!("wrote model {}", path.display());
        }
        Some((path, false)) => {
            for file in decompose::export(&run.problem, path)? {
                eprintln!("wrote model {}", file.display());
            }
        }
        None => {}
    }
    for warning in &run.warnings {
        eprintln!("warning: {warning}");
    }
    let (solution, stats) = run.solve(strategy)?;
    let f = &run.forecasts;
    eprintln!(
        "forecast: {} series ({}), {} gaps filled, {} duplicates, {} out of order",
        f.demands.len(),
        f.work
            .iter()
            .map(|(w, n)| format!("{n} {}", w.name()))
            .collect::<Vec<_>>()
            .join(", "),
        f.gaps_filled,
        run.telemetry.stats.duplicates,
        run.telemetry.stats.out_of_order
    );
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

fn apply(req: &Request) -> Result<ExitCode> {
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
            other => other.as_str(),
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
        report.status.as_str(),
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
            report.status.as_str()
        );
        Ok(ExitCode::from(1))
    }
}

fn replay(args: &ReplayArgs) -> Result<ExitCode> {
    let fleet = chameleon::fleet::Fleet::read(&args.fleet)?;
    let t = Telemetry::read(&args.telemetry)?;
    let policy = Policy::load(args.model.as_deref())?;
    let opts = replay::Options {
        strategies: args.strategies.clone(),
        interval_minutes: args.interval,
        start: args.start,
        end: args.end,
        timing: !args.no_timing,
        focus: args.plot_instance.clone(),
        credits: args.credits,
    };
    let clock = std::time::Instant::now();
    let r = replay::run(&fleet, &args.fleet, &t, &policy, &opts)?;
    eprintln!(
        "replayed {} intervals of {} min from {} to {} in {:.1}s",
        r.times.len(),
        r.interval_minutes,
        chameleon::units::rfc3339(r.start),
        chameleon::units::rfc3339(r.end),
        clock.elapsed().as_secs_f64()
    );
    print!("{}", r.table());
    if let Some(path) = &args.report {
        let text = serde_json::to_string_pretty(&r.report(&args.fleet, &args.telemetry))?;
        std::fs::write(path, text + "\n").with_context(|| format!("{}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        replay::plot::write(&r, path)?;
    }
    Ok(ExitCode::SUCCESS)
}

fn show_ledger(
    fleet: &Path,
    ledger: Option<PathBuf>,
    instance: Option<&str>,
    sync: bool,
) -> Result<ExitCode> {
    let path = ledger.unwrap_or_else(|| Ledger::default_path(fleet));
    if sync {
        let _lock = FleetLock::acquire(fleet, Duration::ZERO)?;
        Ledger::check_settled(fleet, &path)?;
        let ledger = Ledger::open_existing(&path)?;
        let mut state = Fleet::read(fleet)?;
        let changed = ledger.sync_fleet(&mut state)?;
        state.write_atomic(fleet)?;
        eprintln!(
            "copied {changed} balances from {} into {}",
            path.display(),
            fleet.display()
        );
    }
    let ledger = Ledger::open_existing(&path)?;
    if let Some(id) = instance {
        if !ledger.accounts()?.iter().any(|a| a.instance == id) {
            anyhow::bail!("{}: no account for instance `{id}`", path.display());
        }
    }
    print!("{}", ledger.render(instance)?);
    Ok(ExitCode::SUCCESS)
}
