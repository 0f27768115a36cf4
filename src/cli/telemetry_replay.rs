//! `chameleon replay`: the telemetry replay's options, table, report and plot.

use super::*;

#[derive(clap::Args)]
pub(super) struct ReplayArgs {
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
    #[arg(long, value_parser = super::words::<replay::Credits>(), default_value = "usage")]
    credits: replay::Credits,
}

pub(super) fn replay(args: &ReplayArgs) -> Result<ExitCode> {
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
