//! The replay evaluation over all the public traces: does planning ahead beat reacting
//! on fleets nobody tuned it on?
//!
//! `cargo bench --bench eval` imports every instance of `$CHAMELEON_DATA` (default
//! `../shared/data`: Bitbrains Rnd and fastStorage, Azure 2017 with 4 cores, NAB cpu
//! with 2 cores) on one time axis from 2024-03-04, splits the instances into two folds
//! by a hash of their id (`replay::fold`), and draws fleets from each fold alone: random
//! mixes across the data sets of 6, 12 and 24 instances (2, 4 and 8 hosts in 2 cells),
//! at overcommit 1.2, 1.4 and 1.6, in 4-day windows starting on days 0, 3, 6 and 9 (each
//! fleet from the instances with data for the whole window), three seeds each. Every
//! fleet replays its window's last two days at 15-minute intervals with `static`,
//! `reactive`, `vpa`, `greedy`, `mip` and `foresight` (perfect foresight under the same
//! rules), and the replay's lower bounds.
//!
//! It prints, per fold and overcommit and pooled, the ratios of `mip`'s totals to each
//! reference's (shortage, slack, changes, memory shortage), summed over fleets, with
//! bootstrap 90% intervals over fleets, and writes them with every fleet's figures to
//! `$OUT/eval.json` (default `target/eval`), and the per-fleet ratios to `$OUT/eval.svg`.
//! `EVAL_MODEL` names a model file (default: the built-in defaults, as
//! `models/default.toml`); `EVAL_SEEDS` and `EVAL_WINDOWS` (how many of each) make it
//! quicker. `EVAL_WRITE=fold,overcommit,instances,window_day,seed` writes that one
//! fleet and its telemetry to `$OUT` (`eval.toml`, `eval.csv`), to replay by hand.
//! `EVAL_HEADROOM=0.25` gives every host that share of free memory and network (hosts are
//! otherwise sized to exactly what their residents hold there, so nothing can migrate).

use chameleon::fleet::Fleet;
use chameleon::policy::Policy;
use chameleon::replay::{self, fold::fold, Credits, Kind, Options};
use chameleon::synth::rng::SplitMix;
use chameleon::synth::{synth_fleet, SynthOptions};
use chameleon::telemetry::import::{self, ImportOptions, Source};
use chameleon::telemetry::{write_csv, Sample, Telemetry};
use chrono::{DateTime, Duration, Utc};
use plotters::prelude::*;
use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

const START: &str = "2024-03-04T00:00:00Z";
const STRATEGIES: [Kind; 6] = [
    Kind::Static,
    Kind::Reactive,
    Kind::Vpa,
    Kind::Greedy,
    Kind::Mip,
    Kind::Foresight,
];
const OVERCOMMITS: [f64; 3] = [1.2, 1.4, 1.6];
/// (instances, hosts) per fleet.
const SIZES: [(usize, usize); 3] = [(6, 2), (12, 4), (24, 8)];
const WINDOW_DAYS: [i64; 4] = [0, 3, 6, 9];
const BOOTSTRAP: usize = 2000;
const SEEDS: u64 = 3;

/// The environment variable `name` parsed, or `default`.
fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One imported instance: its samples (id prefixed with its data set) and time span.
struct Instance {
    id: String,
    samples: Vec<Sample>,
    first: i64,
    last: i64,
}

fn files(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .filter(|p| keep(&p.file_name().unwrap().to_string_lossy()))
        .collect();
    out.sort();
    out
}

/// Every instance of every telemetry set in `data`.
fn load(data: &Path) -> Vec<Instance> {
    let start: DateTime<Utc> = START.parse().unwrap();
    let sets: [(&str, Source, Option<f64>, Vec<PathBuf>); 4] = [
        (
            "rnd",
            Source::Bitbrains,
            None,
            files(&data.join("bitbrains-rnd/2013-8"), |_| true),
        ),
        (
            "fast",
            Source::Bitbrains,
            None,
            files(&data.join("bitbrains-faststorage/2013-8"), |_| true),
        ),
        (
            "azure",
            Source::Azure,
            Some(4.0),
            files(&data.join("azure-vm-cpu-2017"), |n| n.starts_with("vm_")),
        ),
        (
            "nab",
            Source::Nab,
            Some(2.0),
            [
                files(&data.join("nab-aws-cloudwatch/realAWSCloudwatch"), |n| {
                    n.contains("cpu_utilization")
                }),
                files(&data.join("nab-aws-cloudwatch/realKnownCause"), |n| {
                    n.contains("cpu_utilization")
                }),
            ]
            .concat(),
        ),
    ];
    let mut out = Vec::new();
    for (set, source, cores, paths) in sets {
        let opts = ImportOptions {
            cores,
            start: Some(start),
        };
        let samples = import::import(source, &paths, &opts).expect("the data imports");
        let mut by_id: BTreeMap<String, Vec<Sample>> = BTreeMap::new();
        for mut s in samples {
            s.instance = format!("{set}-{}", s.instance);
            by_id.entry(s.instance.clone()).or_default().push(s);
        }
        for (id, samples) in by_id {
            let first = samples
                .iter()
                .map(|s| s.timestamp.timestamp())
                .min()
                .unwrap();
            let last = samples
                .iter()
                .map(|s| s.timestamp.timestamp())
                .max()
                .unwrap();
            out.push(Instance {
                id,
                samples,
                first,
                last,
            });
        }
    }
    out
}

/// One fleet to replay.
#[derive(Debug, Clone, Serialize)]
struct Config {
    fold: u8,
    overcommit: f64,
    instances: usize,
    hosts: usize,
    window_day: i64,
    seed: u64,
}

/// One fleet's figures, per strategy, in cost units × hours.
#[derive(Debug, Clone, Serialize)]
struct Outcome {
    config: Config,
    ids: Vec<String>,
    shortage: BTreeMap<String, f64>,
    mem_shortage: BTreeMap<String, f64>,
    slack: BTreeMap<String, f64>,
    changes: BTreeMap<String, f64>,
    migrations: u64,
    seconds: f64,
}

fn replay_one(all: &[Instance], c: &Config, policy: &Policy) -> Option<Outcome> {
    let clock = Instant::now();
    let start = START.parse::<DateTime<Utc>>().unwrap() + Duration::days(c.window_day);
    let end = start + Duration::days(4);
    let (lo, hi) = (start.timestamp(), end.timestamp());
    let mut eligible: Vec<&Instance> = all
        .iter()
        .filter(|i| fold(&i.id) == c.fold && i.first <= lo + 3600 && i.last >= hi - 3600)
        .collect();
    if eligible.len() < c.instances / 2 {
        return None;
    }
    let mut rng = SplitMix(c.seed * 1_000_003 + c.window_day as u64 * 101 + c.fold as u64);
    rng.shuffle(&mut eligible);
    eligible.truncate(c.instances);
    eligible.sort_by(|a, b| a.id.cmp(&b.id));
    let samples: Vec<Sample> = eligible
        .iter()
        .flat_map(|i| i.samples.iter())
        .filter(|s| (lo..hi).contains(&s.timestamp.timestamp()))
        .cloned()
        .collect();
    let mut csv = Vec::new();
    write_csv(&mut csv, &samples).unwrap();
    let telemetry = Telemetry::from_reader(Path::new("eval.csv"), csv.as_slice()).unwrap();
    let hosts = c.hosts.min(eligible.len().div_ceil(3)).max(1);
    let mut fleet: Fleet = synth_fleet(
        &telemetry,
        &SynthOptions {
            hosts,
            cells: hosts.min(2),
            overcommit: c.overcommit,
            seed: c.seed,
        },
        policy,
    )
    .unwrap();
    // Hosts are sized to what their residents hold, so memory and network (fixed where a
    // trace does not measure them) are full and no instance can move: EVAL_HEADROOM adds
    // that share of free memory and network to every host, to measure what migration is worth.
    let headroom: f64 = env_or("EVAL_HEADROOM", 0.0);
    if headroom > 0.0 {
        let g = policy.granularity;
        for h in &mut fleet.hosts {
            h.mem = (h.mem * (1.0 + headroom) / g.mem).ceil() * g.mem;
            h.net = (h.net * (1.0 + headroom) / g.net).ceil() * g.net;
        }
    }
    if let Ok(which) = std::env::var("EVAL_WRITE") {
        let key = format!(
            "{},{},{},{},{}",
            c.fold, c.overcommit, c.instances, c.window_day, c.seed
        );
        if which == key {
            let out = PathBuf::from(env_or("OUT", "target/eval".to_owned()));
            std::fs::write(out.join("eval.csv"), &csv).unwrap();
            fleet.write_atomic(&out.join("eval.toml")).unwrap();
        }
    }
    let opts = Options {
        strategies: STRATEGIES.to_vec(),
        interval_minutes: 15,
        start: Some(start + Duration::days(2)),
        end: Some(end),
        timing: false,
        focus: None,
        credits: Credits::Usage,
    };
    let r = replay::run(&fleet, Path::new("eval.toml"), &telemetry, policy, &opts)
        .unwrap_or_else(|e| panic!("{c:?}: {e}"));
    let report = r.report(Path::new("eval.toml"), Path::new("eval.csv"));
    let mut o = Outcome {
        config: c.clone(),
        ids: eligible.iter().map(|i| i.id.clone()).collect(),
        shortage: BTreeMap::new(),
        mem_shortage: BTreeMap::new(),
        slack: BTreeMap::new(),
        changes: BTreeMap::new(),
        migrations: report.strategies["mip"].migrations,
        seconds: 0.0,
    };
    for (name, d) in &report.details {
        o.shortage.insert(name.clone(), d.shortage_units_hours);
        o.mem_shortage.insert(name.clone(), d.shortage.mem);
        o.slack.insert(name.clone(), d.slack_units_hours);
        o.changes
            .insert(name.clone(), report.strategies[name].changes as f64);
    }
    for (name, b) in &report.bounds {
        o.shortage
            .insert(format!("bound_{name}"), b.shortage_units_hours);
    }
    o.seconds = clock.elapsed().as_secs_f64();
    Some(o)
}

/// A pooled ratio: Σ numerator / Σ denominator over fleets, with a bootstrap 90% interval.
#[derive(Debug, Clone, Serialize)]
struct Ratio {
    value: f64,
    low: f64,
    high: f64,
    fleets: usize,
}

fn pooled(outcomes: &[&Outcome], f: &dyn Fn(&Outcome) -> (f64, f64), seed: u64) -> Ratio {
    let pairs: Vec<(f64, f64)> = outcomes.iter().map(|o| f(o)).collect();
    let ratio = |it: &mut dyn Iterator<Item = (f64, f64)>| {
        let (n, d) = it.fold((0.0, 0.0), |(n, d), (a, b)| (n + a, d + b));
        if d > 0.0 {
            n / d
        } else if n > 0.0 {
            f64::INFINITY
        } else {
            1.0
        }
    };
    let value = ratio(&mut pairs.iter().copied());
    let mut rng = SplitMix(seed);
    let mut draws: Vec<f64> = (0..BOOTSTRAP)
        .map(|_| {
            let mut it = (0..pairs.len()).map(|_| pairs[rng.below(pairs.len())]);
            ratio(&mut it)
        })
        .collect();
    draws.sort_by(f64::total_cmp);
    let at = |q: f64| draws[((q * (BOOTSTRAP - 1) as f64).round() as usize).min(BOOTSTRAP - 1)];
    Ratio {
        value,
        low: at(0.05),
        high: at(0.95),
        fleets: pairs.len(),
    }
}

/// The measures every group reports, as (name, target, how to get (numerator,
/// denominator)). The two bound rows say how much of a strategy's shortage no strategy
/// (pooled hosts) or no non-migrating one (per host) could have avoided; `foresight / mip`
/// how much of mip's shortage remains with perfect foresight under the same rules (the
/// rest is the cost of forecasting and myopia). `per-host bound / reactive` is the least
/// shortage ratio to reactive that any strategy reaches without migrating.
type Measure = (&'static str, &'static str, fn(&Outcome) -> (f64, f64));

const MEASURES: [Measure; 11] = [
    ("shortage mip/greedy", "<= 0.5", |o| {
        (o.shortage["mip"], o.shortage["greedy"])
    }),
    ("shortage mip/reactive", "<= 0.5", |o| {
        (o.shortage["mip"], o.shortage["reactive"])
    }),
    ("shortage mip/vpa", "<= 0.7", |o| {
        (o.shortage["mip"], o.shortage["vpa"])
    }),
    ("shortage mip/static", "", |o| {
        (o.shortage["mip"], o.shortage["static"])
    }),
    ("unavoidable / mip", "", |o| {
        (o.shortage["bound_pooled"], o.shortage["mip"])
    }),
    ("foresight / mip", "", |o| {
        (o.shortage["foresight"], o.shortage["mip"])
    }),
    ("per-host bound / reactive", "", |o| {
        (o.shortage["bound_per_host"], o.shortage["reactive"])
    }),
    ("per-host bound / vpa", "", |o| {
        (o.shortage["bound_per_host"], o.shortage["vpa"])
    }),
    ("slack mip/static", "<= 0.8", |o| {
        (o.slack["mip"], o.slack["static"])
    }),
    ("changes mip/vpa", "<= 1", |o| {
        (o.changes["mip"], o.changes["vpa"])
    }),
    ("mem shortage mip/vpa", "<= 1", |o| {
        (o.mem_shortage["mip"], o.mem_shortage["vpa"])
    }),
];

/// Which fleets a group of the table pools.
type Filter = Box<dyn Fn(&Outcome) -> bool>;

#[derive(Serialize)]
struct Group {
    name: String,
    ratios: BTreeMap<String, Ratio>,
}

#[derive(Serialize)]
struct Report {
    data: String,
    instances: BTreeMap<String, usize>,
    fleets: usize,
    seconds: f64,
    groups: Vec<Group>,
    outcomes: Vec<Outcome>,
}

fn plot(outcomes: &[Outcome], path: &Path) -> Result<(), Box<dyn std::error::Error>> {
    let root = SVGBackend::new(path, (900, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "mip shortage / reactive shortage per fleet (log2; below 0: mip better)",
            ("sans-serif", 18),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(1.1f64..1.7f64, -6f64..6f64)?;
    chart
        .configure_mesh()
        .x_desc("overcommit (fold 0 left, fold 1 right of each)")
        .y_desc("log2 ratio")
        .draw()?;
    let colours = [BLUE, RED];
    for o in outcomes {
        let (m, r) = (o.shortage["mip"], o.shortage["reactive"]);
        let y = ((m + 1e-3) / (r + 1e-3)).log2().clamp(-5.9, 5.9);
        let size_shift = SIZES
            .iter()
            .position(|s| s.0 == o.config.instances)
            .unwrap_or(0) as f64
            * 0.012;
        let x = o.config.overcommit + if o.config.fold == 0 { -0.04 } else { 0.02 } + size_shift;
        chart.draw_series(std::iter::once(Circle::new(
            (x, y),
            3,
            colours[o.config.fold as usize].filled(),
        )))?;
    }
    chart.draw_series(LineSeries::new([(1.1, 0.0), (1.7, 0.0)], &BLACK))?;
    root.present()?;
    Ok(())
}

fn main() {
    let data = PathBuf::from(env_or("CHAMELEON_DATA", "../shared/data".to_owned()));
    let out = PathBuf::from(env_or("OUT", "target/eval".to_owned()));
    let seeds: u64 = env_or("EVAL_SEEDS", SEEDS);
    let windows: usize = env_or("EVAL_WINDOWS", WINDOW_DAYS.len());
    std::fs::create_dir_all(&out).unwrap();
    let clock = Instant::now();
    let all = load(&data);
    let mut per_set: BTreeMap<String, usize> = BTreeMap::new();
    for i in &all {
        let set = i.id.split('-').next().unwrap().to_owned();
        *per_set.entry(set).or_default() += 1;
    }
    let folds = [0u8, 1].map(|f| all.iter().filter(|i| fold(&i.id) == f).count());
    eprintln!("{} instances ({per_set:?}), folds {folds:?}", all.len());
    let model: Option<PathBuf> = std::env::var_os("EVAL_MODEL").map(PathBuf::from);
    let mut policy = Policy::load(model.as_deref()).expect("the model file loads");
    policy.solver.time_limit_seconds = 10.0;
    let mut configs = Vec::new();
    for fold in [0u8, 1] {
        for &overcommit in &OVERCOMMITS {
            for &(instances, hosts) in &SIZES {
                for &window_day in WINDOW_DAYS.iter().take(windows) {
                    for seed in 1..=seeds {
                        configs.push(Config {
                            fold,
                            overcommit,
                            instances,
                            hosts,
                            window_day,
                            seed,
                        });
                    }
                }
            }
        }
    }
    let done = std::sync::atomic::AtomicUsize::new(0);
    let outcomes: Vec<Outcome> = configs
        .par_iter()
        .filter_map(|c| {
            let o = replay_one(&all, c, &policy);
            let n = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            eprint!("\r{n}/{} fleets replayed", configs.len());
            o
        })
        .collect();
    eprintln!();
    let mut groups = Vec::new();
    let mut names: Vec<(String, Filter)> = vec![("pooled".into(), Box::new(|_| true))];
    for f in [0u8, 1] {
        names.push((format!("fold {f}"), Box::new(move |o| o.config.fold == f)));
    }
    for oc in OVERCOMMITS {
        names.push((
            format!("overcommit {oc}"),
            Box::new(move |o| o.config.overcommit == oc),
        ));
        for f in [0u8, 1] {
            names.push((
                format!("overcommit {oc} fold {f}"),
                Box::new(move |o| o.config.overcommit == oc && o.config.fold == f),
            ));
        }
    }
    println!(
        "{:<26} {:>6}  {}",
        "group",
        "fleets",
        MEASURES
            .iter()
            .map(|m| format!("{:>26}", m.0))
            .collect::<String>()
    );
    println!(
        "{:<26} {:>6}  {}",
        "target",
        "",
        MEASURES
            .iter()
            .map(|m| format!("{:>26}", m.1))
            .collect::<String>()
    );
    for (k, (name, keep)) in names.iter().enumerate() {
        let members: Vec<&Outcome> = outcomes.iter().filter(|o| keep(o)).collect();
        let mut ratios = BTreeMap::new();
        let mut row = format!("{name:<26} {:>6}  ", members.len());
        for (j, (label, _, f)) in MEASURES.iter().enumerate() {
            let r = pooled(&members, f, 7 + (k * 31 + j) as u64);
            row += &format!(
                "{:>26}",
                format!("{:.2} [{:.2}, {:.2}]", r.value, r.low, r.high)
            );
            ratios.insert((*label).to_owned(), r);
        }
        println!("{row}");
        groups.push(Group {
            name: name.clone(),
            ratios,
        });
    }
    let seconds = clock.elapsed().as_secs_f64();
    println!(
        "{} fleets in {seconds:.0} s; ratios of totals summed over fleets, [5%, 95%] of {BOOTSTRAP} bootstrap resamples of the fleets",
        outcomes.len()
    );
    if let Err(e) = plot(&outcomes, &out.join("eval.svg")) {
        eprintln!("plot: {e}");
    }
    let report = Report {
        data: data.display().to_string(),
        instances: per_set,
        fleets: outcomes.len(),
        seconds,
        groups,
        outcomes,
    };
    std::fs::write(
        out.join("eval.json"),
        serde_json::to_string_pretty(&report).unwrap(),
    )
    .unwrap();
    eprintln!("wrote {}", out.join("eval.json").display());
}
