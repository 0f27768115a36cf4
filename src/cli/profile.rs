//! `chameleon profile`: add a job log to the persisted user profiles and show them.

use anyhow::Result;
use chameleon::jobs;
use chameleon::policy::Policy;
use chameleon::profile::{Book, UserSummary};
use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args)]
pub(super) struct ProfileArgs {
    /// A canonical jobs CSV; jobs the profiles have not seen are added.
    #[arg(long)]
    jobs: Option<PathBuf>,
    /// The profile state (default: the model file's `pools.state`).
    #[arg(long)]
    state: Option<PathBuf>,
    /// Planning model file (default: the built-in models/default.toml).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Add only jobs arriving up to this time, and summarise as of it (default: the
    /// latest arrival seen).
    #[arg(long)]
    until: Option<DateTime<Utc>>,
    /// Show only these users (comma-separated).
    #[arg(long, value_delimiter = ',')]
    user: Vec<String>,
    /// Print JSON instead of the table.
    #[arg(long)]
    json: bool,
}

pub(super) fn profile(args: &ProfileArgs) -> Result<ExitCode> {
    let settings = Policy::load(args.model.as_deref())?.pools;
    let state = args
        .state
        .clone()
        .or_else(|| (!settings.state.is_empty()).then(|| PathBuf::from(&settings.state)));
    let mut book = match &state {
        Some(path) => Book::load(path)?,
        None => Book::default(),
    };
    let until = args.until.map(|t| t.timestamp() as f64);
    if let Some(path) = &args.jobs {
        let added = book.update(&jobs::read(path)?, until);
        eprintln!("profile: {added} new job(s) from {}", path.display());
        if let Some(s) = &state {
            book.save(s)?;
        }
    }
    let (jobs, Some(last)) = book.seen() else {
        anyhow::bail!("no jobs profiled yet: pass --jobs FILE");
    };
    let now = until.unwrap_or(last);
    let mut rows: Vec<UserSummary> = book
        .pools
        .iter()
        .flat_map(|(pool, p)| p.summaries(pool, now, &settings.seed))
        .collect();
    if !args.user.is_empty() {
        rows.retain(|r| args.user.contains(&r.user));
        if let Some(missing) = args
            .user
            .iter()
            .find(|u| !rows.iter().any(|r| &r.user == *u))
        {
            anyhow::bail!("no profile for user `{missing}`");
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        print!("{}", table(&rows, jobs));
    }
    Ok(ExitCode::SUCCESS)
}

fn table(rows: &[UserSummary], jobs: u64) -> String {
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    let opt = |v: Option<f64>, digits: usize| v.map_or("-".to_owned(), |v| format!("{v:.digits$}"));
    let mut out = format!("{} user(s), {jobs} job(s)\n", rows.len());
    out += &format!(
        "{:<10} {:<12} {:>6} {:>7} {:>5} {:>4} {:>4} {:>6} {:>8} {:>8} {:>8} {:>6} {:>9} {:>4} {:<14} {:>5} {:>4}\n",
        "pool", "user", "jobs", "per_day", "sess", "hour", "day", "burst", "think_s", "run_p50", "run_p90",
        "inst", "inst_h", "prog", "top_program", "seed", "n"
    );
    for r in rows {
        out += &format!(
            "{:<10} {:<12} {:>6} {:>7.2} {:>5} {:>4} {:>4} {:>6} {:>8} {:>8} {:>8} {:>6.1} {:>9.1} {:>4} {:<14} {:>5.2} {:>4}\n",
            r.pool,
            r.user,
            r.jobs,
            r.jobs_per_day,
            r.sessions,
            r.peak_hour,
            DAYS[r.peak_weekday],
            opt(r.burstiness, 2),
            opt(r.median_think_seconds, 0),
            opt(r.median_run_seconds, 0),
            opt(r.p90_run_seconds, 0),
            r.mean_instances,
            r.instance_hours,
            r.programs,
            r.top_program.as_deref().unwrap_or("-"),
            r.seed_demand,
            r.seed_instances,
        );
    }
    out
}
