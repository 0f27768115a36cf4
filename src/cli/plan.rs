//! `chameleon plan`, `compare` and `forecast --evaluate`: one planning run, its forecasts and its report.

use super::*;

pub(super) fn plan(
    inputs: Inputs,
    strategy: Strategy,
    out_dir: &Path,
    detailed: bool,
    export_model: Option<(&Path, bool)>,
) -> Result<ExitCode> {
    let run = Run::prepare(&inputs.run(), resolve_now(inputs.now))?;
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
    for p in &run.predictions {
        eprintln!(
            "pool {}: {} running, {:.1} expected from arriving jobs, warm target {} (q{})",
            p.pool, p.running, p.mean, p.target, run.policy.pools.quantile
        );
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
    let gap = stats
        .gap()
        .map_or("no bound".to_owned(), |g| format!("gap {:.4}%", g * 100.0));
    eprintln!(
        "forecast {:.2}s, solve {:.3}s ({}, objective {:.3}, {gap})",
        run.forecast_seconds, stats.seconds, stats.status, stats.objective,
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

pub(super) fn print_forecasts(
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

pub(super) fn evaluate_forecasts(
    t: &Telemetry,
    settings: &forecast::Settings,
    (origins, spacing): (usize, u32),
    now: Option<DateTime<Utc>>,
    (report, windows): (Option<&Path>, Option<&Path>),
) -> Result<ExitCode> {
    let clock = std::time::Instant::now();
    let (r, kept) = forecast::evaluate::evaluate_windows(
        t,
        settings,
        (origins, spacing),
        now,
        windows.is_some(),
    );
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
    if let Some(path) = windows {
        write_windows(&kept, path)?;
        eprintln!("wrote {} windows to {}", kept.len(), path.display());
    }
    write_report(&r, report)
}

/// `instance,resource,origin,step_seconds,history,actual,selected`, the last three as
/// space-separated numbers.
fn write_windows(windows: &[forecast::evaluate::Window], path: &Path) -> Result<()> {
    let numbers = |v: &[f64]| v.iter().map(f64::to_string).collect::<Vec<_>>().join(" ");
    let mut text = String::from("instance,resource,origin,step_seconds,history,actual,selected\n");
    for w in windows {
        text.push_str(&format!(
            "{},{},{},{},{},{},{}\n",
            w.instance,
            w.resource,
            w.origin,
            w.step_seconds,
            numbers(&w.history),
            numbers(&w.actual),
            numbers(&w.selected)
        ));
    }
    std::fs::write(path, text).with_context(|| format!("{}: cannot write", path.display()))
}

/// Prints the table and writes the JSON report if asked.
pub(super) fn write_report(
    r: &forecast::evaluate::Report,
    path: Option<&Path>,
) -> Result<ExitCode> {
    print!("{}", r.table());
    if let Some(path) = path {
        let text = serde_json::to_string_pretty(r)?;
        std::fs::write(path, text + "\n").with_context(|| format!("{}", path.display()))?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads plan files, and the `*.plan.toml` files of directories, in name order.
pub(super) fn read_plans(paths: &[PathBuf]) -> Result<Vec<Plan>> {
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
