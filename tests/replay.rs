//! `chameleon replay`: metric arithmetic checked by hand, and the real binary on the fixtures.

use crate::util::{chameleon, fixtures};
use chameleon::fleet::Fleet;
use chameleon::policy::Policy;
use chameleon::replay::{self, Kind, Options};
use chameleon::telemetry::Telemetry;
use std::path::Path;
use std::process::Output;

const FLEET: &str = r#"
[[host]]
id = "h"
cell = "c"
cpu = 4.0
mem = 4096.0
net = 100.0

[[instance]]
id = "a"
host = "h"
credits = 10.0
earn_rate = 12.0
cpu = { alloc = 1.0, min = 0.25, max = 2.0 }
mem = { alloc = 1024.0, min = 256.0, max = 2048.0 }
net = { alloc = 10.0, min = 10.0, max = 10.0 }

[[instance]]
id = "b"
host = "h"
credits = 10.0
earn_rate = 12.0
cpu = { alloc = 2.0, min = 0.25, max = 4.0 }
mem = { alloc = 1024.0, min = 1024.0, max = 1024.0 }
net = { alloc = 10.0, min = 10.0, max = 10.0 }
"#;

/// Five-minute samples from 00:00 to 00:40: a's cpu and mem, b's cpu.
fn telemetry() -> Telemetry {
    let a_cpu = [0.5, 1.0, 1.2, 1.5, 0.5, 1.0, 2.0, 0.2, 0.8];
    let b_cpu = [1.0, 1.0, 1.0, 1.0, 3.0, 1.0, 1.0, 1.0, 1.0];
    let a_mem = [
        512.0, 512.0, 512.0, 512.0, 1536.0, 512.0, 512.0, 512.0, 512.0,
    ];
    let mut csv = String::from("timestamp,instance,resource,value\n");
    for (id, r, values) in [
        ("a", "cpu", a_cpu),
        ("b", "cpu", b_cpu),
        ("a", "mem", a_mem),
    ] {
        for (k, v) in values.iter().enumerate() {
            csv += &format!("2024-01-01T00:{:02}:00Z,{id},{r},{v}\n", 5 * k);
        }
    }
    Telemetry::from_reader(Path::new("t.csv"), csv.as_bytes()).unwrap()
}

#[track_caller]
fn close(actual: f64, expected: f64) {
    assert!(
        (actual - expected).abs() < 1e-6,
        "expected {expected}, got {actual}"
    );
}

/// Two 15-minute intervals (00:15 and 00:30), every sample 1/12 h. Static keeps
/// a = 1 core / 1024 MiB and b = 2 cores. Reactive sizes to the last interval's
/// peak + 15% rounded up to a step: at 00:15 a cpu 1.2 -> 1.5, b cpu 1.0 -> 1.25,
/// a mem 512 -> 768; at 00:30 b wants 3.5 but gets the 1.25 cores left (2.5),
/// a wants 1.75 but the host is full (stays 1.5), a mem 1536 -> 1792.
#[test]
fn a_tiny_replay_scores_exactly_as_computed_by_hand() {
    let fleet = Fleet::parse(Path::new("f.toml"), FLEET).unwrap();
    let opts = Options {
        strategies: vec![Kind::Static, Kind::Reactive],
        interval_minutes: 15,
        start: Some("2024-01-01T00:15:00Z".parse().unwrap()),
        end: Some("2024-01-01T00:45:00Z".parse().unwrap()),
        timing: false,
        focus: None,
        credits: replay::Credits::Usage,
    };
    // Every instance may change at every interval: no percentage budget, no cool-down.
    let mut policy = Policy::default();
    policy.disruption.max_changes_percent = 100.0;
    policy.disruption.cooldown_minutes = 0;
    let r = replay::run(&fleet, Path::new("f.toml"), &telemetry(), &policy, &opts).unwrap();
    assert_eq!(r.times.len(), 2);
    let report = r.report(Path::new("f.toml"), Path::new("t.csv"));
    let s = &report.strategies["static"];
    // cpu short: a 0.5 (00:15) + 1.0 (00:30), b 1.0 (00:20); slack: a 0.5+0.8+0.2, b 1+1+1+1+1.
    close(s.shortage_cpu_core_hours, 2.5 / 12.0);
    close(s.slack_cpu_core_hours, 6.5 / 12.0);
    // mem short 512 MiB at 00:20; slack 512 MiB at the five other samples.
    close(s.shortage_mem_gib_hours, 0.5 / 12.0);
    close(s.slack_mem_gib_hours, 2.5 / 12.0);
    // Short instance-samples: a@15, a@20 (mem), b@20, a@30 out of 12.
    close(s.violation_rate, 4.0 / 12.0);
    assert_eq!((s.changes, s.migrations, s.bytes_moved), (0, 0, 0));
    assert_eq!(s.plan_seconds_p50, None);

    let s = &report.strategies["reactive"];
    // Interval 1: a 1.5 vs 1.5, 0.5, 1.0; b 1.25 vs 1, 3, 1. Interval 2: a 1.5 vs 2, 0.2, 0.8; b 2.5 vs 1, 1, 1.
    close(s.shortage_cpu_core_hours, (1.75 + 0.5) / 12.0);
    close(
        s.slack_cpu_core_hours,
        (1.0 + 0.5 + 0.25 + 0.25 + 1.3 + 0.7 + 4.5) / 12.0,
    );
    // mem: 768 vs 512, 1536, 512; then 1792 vs 512 three times.
    close(s.shortage_mem_gib_hours, 0.75 / 12.0);
    close(
        s.slack_mem_gib_hours,
        (256.0 + 256.0 + 3.0 * 1280.0) / 1024.0 / 12.0,
    );
    close(s.violation_rate, 3.0 / 12.0);
    assert_eq!((s.changes, s.migrations, s.bytes_moved), (4, 0, 0));

    let d = &report.details["reactive"];
    close(d.shortage.net, 0.0);
    close(d.violation_rate.cpu, 2.0 / 12.0);
    close(d.violation_rate.mem, 1.0 / 6.0);
    // Cost units: 1 core, 1 GiB.
    close(d.shortage_units_hours, (2.25 + 0.75) / 12.0);
    close(d.credits_spent, 0.0);

    // The bound: at 00:15 a needs 1.5 and b 3 cores of the host's 4 (mins 0.25 each).
    // Water-filled, a's first 0.25 and b's first 0.75 cover three samples, a's next 0.5
    // two, and the last 2 of the 2.5 that cover one sample each: 0.5 core-samples stay
    // short. At 00:30 everything fits, and a's memory always does.
    let b = &report.bounds["pooled"];
    close(b.shortage_cpu_core_hours, 0.5 / 12.0);
    close(b.shortage_mem_gib_hours, 0.0);
    close(b.shortage_units_hours, 0.5 / 12.0);
    assert_eq!(report.bounds["per_host"], report.bounds["pooled"]);
}

/// A small random fleet (1–3 hosts, 2–5 instances, allocations that fit) and 26 hours of
/// 5-minute cpu and mem samples, replayed over its last two hours.
fn random_case(seed: u64) -> (Fleet, Telemetry) {
    let mut state = seed | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let hosts = 1 + (next() * 3.0) as usize;
    let instances = 2 + (next() * 4.0) as usize;
    let mut toml = String::new();
    for h in 0..hosts {
        toml += &format!(
            "[[host]]\nid = \"h{h}\"\ncell = \"c{}\"\ncpu = 4.0\nmem = 8192.0\nnet = 100.0\n\n",
            h % 2
        );
    }
    let mut csv = String::from("timestamp,instance,resource,value\n");
    for i in 0..instances {
        let host = i % hosts;
        // At most 2 instances per host fit in full; cap allocations so any number fits.
        let cpu = 0.25 * (1 + (next() * 3.0) as u32) as f64;
        let mem = 256.0 * (1 + (next() * 6.0) as u32) as f64;
        toml += &format!(
            "[[instance]]\nid = \"i{i}\"\nhost = \"h{host}\"\ncredits = {}\nearn_rate = 12.0\n\
             cpu = {{ alloc = {cpu}, min = 0.25, max = 4.0 }}\n\
             mem = {{ alloc = {mem}, min = 256.0, max = 4096.0 }}\n\
             net = {{ alloc = 10.0, min = 10.0, max = 10.0 }}\n\n",
            (next() * 200.0).round()
        );
        let (level, burst) = (next() * 2.0, next() * 3.0);
        for k in 0..(26 * 12) {
            let t = chrono::DateTime::from_timestamp(1_704_067_200 + 300 * k, 0).unwrap();
            let at = t.format("%Y-%m-%dT%H:%M:%SZ");
            let cpu = level + if next() < 0.2 { burst } else { 0.0 } * next();
            let mem = 256.0 + 3000.0 * next() * level / 2.0;
            csv += &format!("{at},i{i},cpu,{cpu:.3}\n{at},i{i},mem,{mem:.1}\n");
        }
    }
    let fleet = Fleet::parse(Path::new("f.toml"), &toml).unwrap();
    let telemetry = Telemetry::from_reader(Path::new("t.csv"), csv.as_bytes()).unwrap();
    (fleet, telemetry)
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(6))]

    /// No strategy's shortage is below the pooled bound, and none that did not migrate
    /// is below the per-host bound.
    #[test]
    fn no_strategy_beats_the_lower_bounds(seed in proptest::prelude::any::<u64>()) {
        let (fleet, telemetry) = random_case(seed);
        let opts = Options {
            strategies: Kind::ALL.to_vec(),
            interval_minutes: 15,
            start: Some("2024-01-02T00:00:00Z".parse().unwrap()),
            end: Some("2024-01-02T02:00:00Z".parse().unwrap()),
            timing: false,
            focus: None,
            credits: replay::Credits::Usage,
        };
        let r = replay::run(&fleet, Path::new("f.toml"), &telemetry, &Policy::default(), &opts)
            .unwrap();
        let report = r.report(Path::new("f.toml"), Path::new("t.csv"));
        let pooled = report.bounds["pooled"].shortage_units_hours;
        let per_host = report.bounds["per_host"].shortage_units_hours;
        proptest::prop_assert!(pooled <= per_host + 1e-6);
        for (name, d) in &report.details {
            let short = d.shortage_units_hours;
            proptest::prop_assert!(pooled <= short + 1e-6, "{name} {short} < pooled {pooled}");
            if report.strategies[name].migrations == 0 {
                proptest::prop_assert!(per_host <= short + 1e-6, "{name} {short} < per host {per_host}");
            }
        }
    }
}

/// Replays the fixtures from 06:00 on 6 March, writing `report`; six hours and every
/// strategy unless `extra` says otherwise.
fn replay_fixtures(dir: &Path, report: &str, extra: &[&str]) -> Output {
    let fixtures = fixtures();
    let (fleet, telemetry) = (fixtures.join("fleet.toml"), fixtures.join("telemetry.csv"));
    let mut args = vec![
        "replay",
        "--fleet",
        fleet.to_str().unwrap(),
        "--telemetry",
        telemetry.to_str().unwrap(),
        "--start",
        "2024-03-06T06:00:00Z",
        "--report",
        report,
    ];
    if !extra.contains(&"--end") {
        args.extend_from_slice(&["--end", "2024-03-06T12:00:00Z"]);
    }
    if !extra.contains(&"--strategies") {
        args.extend_from_slice(&[
            "--strategies",
            "static,reactive,vpa,greedy,mip,oracle,foresight",
        ]);
    }
    args.extend_from_slice(extra);
    chameleon(dir, &args)
}

#[test]
fn replay_on_the_fixtures_writes_table_report_and_plot_deterministically() {
    let dir = tempfile::tempdir().unwrap();
    let o = replay_fixtures(dir.path(), "a.json", &["--plot", "a.svg", "--no-timing"]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(
        stderr.contains("replayed 24 intervals of 15 min"),
        "{stderr}"
    );
    let table = String::from_utf8_lossy(&o.stdout);
    for name in Kind::ALL {
        assert!(table.contains(&format!("\n{name} ")), "{table}");
    }
    assert!(
        table.contains("short/g") && table.contains("short/o"),
        "{table}"
    );

    let text = std::fs::read_to_string(dir.path().join("a.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let keys = [
        "shortage_cpu_core_hours",
        "shortage_mem_gib_hours",
        "violation_rate",
        "slack_cpu_core_hours",
        "slack_mem_gib_hours",
        "changes",
        "migrations",
        "bytes_moved",
        "plan_seconds_p50",
    ];
    for name in Kind::ALL {
        let s = json["strategies"][name.name()].as_object().unwrap();
        let mut found: Vec<&str> = s.keys().map(String::as_str).collect();
        let mut want = keys.to_vec();
        found.sort();
        want.sort();
        assert_eq!(found, want, "{name}");
    }
    let shortage = |name: &str| {
        json["details"][name]["shortage_units_hours"]
            .as_f64()
            .unwrap()
    };
    assert!(shortage("oracle") <= shortage("static"), "{text}");
    assert_eq!(json["strategies"]["static"]["changes"], 0);

    let svg = std::fs::read_to_string(dir.path().join("a.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("cumulative shortage"));
    assert!(svg.contains("forecast band"));

    let again = replay_fixtures(dir.path(), "b.json", &["--no-timing"]);
    assert!(again.status.success());
    let second = std::fs::read_to_string(dir.path().join("b.json")).unwrap();
    assert_eq!(text, second, "the same inputs must give the same report");
}

#[test]
fn replay_times_planning_unless_told_not_to_and_rejects_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let o = replay_fixtures(dir.path(), "t.json", &["--strategies", "static,greedy"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("t.json")).unwrap()).unwrap();
    assert!(
        json["strategies"]["greedy"]["plan_seconds_p50"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert!(json["strategies"]["mip"].is_null());

    let bad = replay_fixtures(dir.path(), "x.json", &["--strategies", "static,best"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("unknown strategy `best`"));
    let twice = replay_fixtures(dir.path(), "x.json", &["--strategies", "mip,static,mip"]);
    assert_eq!(twice.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("`mip` twice"));

    let empty = replay_fixtures(dir.path(), "x.json", &["--end", "2024-03-06T06:00:00Z"]);
    assert_eq!(empty.status.code(), Some(1));
    let e = String::from_utf8_lossy(&empty.stderr);
    assert!(e.contains("telemetry.csv: no planning interval"), "{e}");
}

#[test]
fn telemetry_for_an_instance_the_fleet_lacks_is_an_error_at_its_line() {
    let fleet = Fleet::parse(Path::new("f.toml"), FLEET).unwrap();
    let csv = "timestamp,instance,resource,value\n\
               2024-01-01T00:00:00Z,a,cpu,1\n\
               2024-01-01T00:00:00Z,zz,cpu,1\n";
    let t = Telemetry::from_reader(Path::new("t.csv"), csv.as_bytes()).unwrap();
    let opts = Options {
        strategies: vec![Kind::Static],
        interval_minutes: 15,
        start: None,
        end: None,
        timing: false,
        focus: None,
        credits: replay::Credits::Usage,
    };
    let e = replay::run(&fleet, Path::new("f.toml"), &t, &Policy::default(), &opts)
        .unwrap_err()
        .to_string();
    assert_eq!(e, "t.csv:3: unknown instance `zz` (not in f.toml)");
}
