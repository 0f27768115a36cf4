//! Profiling and prediction speed on real job logs: the time to profile a whole log at
//! once, and to replay it as `chameleon` sees it (every arrival and release profiled
//! when it happens, and a prediction of every pool's demand at every review, 60 s
//! apart), per simulated day. The bound is one second per simulated day.
//!
//! Logs: the NASA iPSC SWF log and the Azure 2017 VM arrivals from `../shared/data`
//! when present, else the fixture excerpt. Run: `cargo bench --bench pools`.

use chameleon::jobs::import::{import, Options, Source};
use chameleon::jobs::{self, Job};
use chameleon::pool::PoolSettings;
use chameleon::profile::{arrival, demand, Book};
use std::path::{Path, PathBuf};
use std::time::Instant;

fn logs() -> Vec<(String, Vec<Job>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let data = root.join("../shared/data");
    let mut out = Vec::new();
    let sources = [
        (
            "nasa-ipsc (swf)",
            Source::Swf,
            data.join("nasa-ipsc-1993-swf/NASA-iPSC-1993-3.1-cln.first60d.swf.gz"),
        ),
        (
            "azure-vm-2017 arrivals",
            Source::AzureVmArrivals,
            data.join("azure-vm-2017-arrivals/traces/v1.dev.txt"),
        ),
    ];
    for (name, source, path) in sources {
        if path.exists() {
            let imported = import(source, &[PathBuf::from(&path)], &Options::default())
                .unwrap_or_else(|e| panic!("{e}"));
            out.push((name.to_owned(), imported.jobs));
        }
    }
    if out.is_empty() {
        let fixture = root.join("fixtures/jobs.csv");
        out.push(("fixture".to_owned(), jobs::read(&fixture).expect("fixture")));
    }
    out
}

/// Profiles every arrival and release when it happens and predicts every pool at every
/// review; returns the number of predictions.
fn replay(jobs: &[Job], settings: &PoolSettings, horizon: f64) -> usize {
    // (time, 0 = release / 1 = arrival, job): releases first at one instant.
    let mut events: Vec<(f64, u8, usize)> = Vec::with_capacity(2 * jobs.len());
    for (k, j) in jobs.iter().enumerate() {
        let a = arrival(j);
        events.push((a, 1, k));
        events.push((a + j.run_seconds, 0, k));
    }
    events.sort_by(|x, y| x.0.total_cmp(&y.0).then(x.1.cmp(&y.1)).then(x.2.cmp(&y.2)));
    let (start, end) = (events[0].0, events.last().expect("events").0);
    let mut book = Book::default();
    let mut next = 0;
    let mut predictions = 0;
    let mut t = start;
    while t <= end {
        while next < events.len() && events[next].0 <= t {
            let (at, kind, k) = events[next];
            let j = &jobs[k];
            let p = book.pools.entry(j.pool.clone()).or_default();
            if kind == 1 {
                p.arrive(&j.user, &j.program, at, j.instances);
            } else {
                p.finish(&j.user, &j.program, at, j.run_seconds, j.instances, j.cpu);
            }
            next += 1;
        }
        for p in book.pools.values() {
            let mix = demand::job_mix(p, t, horizon);
            std::hint::black_box(demand::cheapest_idle(&mix, settings.idle_price));
            std::hint::black_box(demand::compound(&mix).quantile(settings.quantile));
            predictions += 1;
        }
        t += settings.review_seconds;
    }
    predictions
}

fn main() {
    let settings = PoolSettings::default();
    let horizon = settings.cold_start_seconds + settings.review_seconds;
    println!(
        "{:<24} {:>7} {:>7} {:>6} {:>10} {:>12} {:>12} {:>10}",
        "log", "jobs", "days", "pools", "profile_s", "predictions", "replay_s", "s_per_day"
    );
    for (name, jobs) in logs() {
        let times: Vec<f64> = jobs.iter().map(arrival).collect();
        let span = times.iter().copied().fold(f64::NEG_INFINITY, f64::max)
            - times.iter().copied().fold(f64::INFINITY, f64::min);
        let days = span / 86_400.0;
        let clock = Instant::now();
        let mut book = Book::default();
        book.update(&jobs, None);
        let profile = clock.elapsed().as_secs_f64();
        let clock = Instant::now();
        let predictions = replay(&jobs, &settings, horizon);
        let seconds = clock.elapsed().as_secs_f64();
        println!(
            "{:<24} {:>7} {:>7.2} {:>6} {:>10.3} {:>12} {:>12.2} {:>10.3}",
            name,
            jobs.len(),
            days,
            book.pools.len(),
            profile,
            predictions,
            seconds,
            (profile + seconds) / days
        );
    }
}
