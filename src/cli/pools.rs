//! `chameleon pools replay`: warm-pool strategies side by side on a job log.

use anyhow::{Context, Result};
use chameleon::jobs;
use chameleon::policy::Policy;
use chameleon::pools::{self, Family};
use chrono::{DateTime, Utc};
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Subcommand)]
pub(super) enum PoolsCommand {
    /// Replay a canonical jobs CSV against warm pools under each strategy (table on
    /// stdout; report JSON and trade-off plot on request).
    Replay {
        #[arg(long)]
        jobs: PathBuf,
        /// Comma-separated: keepalive, reactive, hybrid, seed, chameleon, oracle.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "keepalive,reactive,hybrid,seed,chameleon,oracle"
        )]
        strategies: Vec<Family>,
        /// Seconds an instance takes to start; a job waits for its cold instances
        /// (default: the model file's `pools.cold_start_seconds`).
        #[arg(long)]
        cold_start_seconds: Option<f64>,
        /// Count only jobs from this time on (learners see everything before it), and
        /// choose the predictors' knobs on the jobs before it.
        #[arg(long)]
        fit_until: Option<DateTime<Utc>>,
        /// One pool for all jobs, ignoring the `pool` column.
        #[arg(long)]
        one_pool: bool,
        /// Planning model file whose `[pools]` the predictors use (default: built in).
        #[arg(long)]
        model: Option<PathBuf>,
        /// Write the report JSON here (see docs/formats.md).
        #[arg(long)]
        report: Option<PathBuf>,
        /// Write the trade-off plot (SVG) here.
        #[arg(long)]
        plot: Option<PathBuf>,
    },
}

pub(super) fn pools(command: PoolsCommand) -> Result<ExitCode> {
    let PoolsCommand::Replay {
        jobs: path,
        strategies,
        cold_start_seconds,
        fit_until,
        one_pool,
        model,
        report,
        plot,
    } = command;
    let settings = Policy::load(model.as_deref())?.pools;
    let cold_start_seconds = cold_start_seconds.unwrap_or(settings.cold_start_seconds);
    anyhow::ensure!(
        cold_start_seconds.is_finite() && cold_start_seconds >= 0.0,
        "--cold-start-seconds must be a finite number >= 0"
    );
    let config = pools::Config {
        families: strategies,
        cold_start_seconds,
        fit_until,
        one_pool,
        settings,
    };
    let result = pools::replay(&jobs::read(&path)?, &config);
    if let Some(out) = report {
        let json = serde_json::to_string_pretty(&result)? + "\n";
        std::fs::write(&out, json).with_context(|| out.display().to_string())?;
    }
    if let Some(out) = plot {
        pools::plot::write(&result, &out)?;
    }
    print!("{}", result.table());
    Ok(ExitCode::SUCCESS)
}
