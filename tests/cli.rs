//! End-to-end tests of the real `chameleon` binary on the shipped fixtures.

use crate::util::{
    assert_golden, bin, chameleon, forge, root, stderr, stdout, workspace, LATER, NOW,
};
use chameleon::plan::Change;
use std::path::{Path, PathBuf};
use std::process::Output;

/// Runs `plan` on the workspace's fleet and telemetry at `now`, with `extra` flags.
fn run_plan(dir: &Path, now: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "plan",
        "--fleet",
        "fleet.toml",
        "--telemetry",
        "telemetry.csv",
        "--now",
        now,
    ];
    args.extend_from_slice(extra);
    chameleon(dir, &args)
}

/// Runs `plan` in `dir` and returns the plan path it printed.
fn plan(dir: &Path, extra: &[&str]) -> PathBuf {
    let o = run_plan(dir, NOW, extra);
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(2),
        "{}",
        stderr(&o)
    );
    dir.join(stdout(&o).trim())
}

/// Runs `apply` of `plan` on the workspace's fleet at `now`.
fn apply(dir: &Path, plan: &Path, now: &str) -> Output {
    chameleon(
        dir,
        &[
            "apply",
            plan.to_str().unwrap(),
            "--fleet",
            "fleet.toml",
            "--now",
            now,
        ],
    )
}

/// Runs `apply` of `plan` at `LATER` through the exec backend configured by `exec.toml`.
fn apply_exec(dir: &Path, plan: &Path) -> Output {
    chameleon(
        dir,
        &[
            "apply",
            plan.to_str().unwrap(),
            "--fleet",
            "fleet.toml",
            "--now",
            LATER,
            "--backend",
            "exec",
            "--exec-config",
            "exec.toml",
        ],
    )
}

/// Asserts a failing run whose message names `file:line` and contains `what`.
fn assert_fails(o: &Output, location: &str, what: &str) {
    let err = stderr(o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "expected failure, got {:?}: {err}{}",
        o.status,
        stdout(o)
    );
    assert!(
        err.contains(location),
        "message should name `{location}`: {err}"
    );
    assert!(err.contains(what), "message should say `{what}`: {err}");
}

fn edit(path: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    assert!(text.contains(from), "`{from}` not in {}", path.display());
    std::fs::write(path, text.replacen(from, to, 1)).unwrap();
}

#[test]
fn golden_plan_for_the_fixture() {
    let dir = workspace();
    let path = plan(dir.path(), &[]);
    assert_golden(
        "fixture.plan.toml",
        &std::fs::read_to_string(&path).unwrap(),
    );
}

#[test]
fn lookahead_plans_intervals_jointly_and_emits_the_first() {
    let dir = workspace();
    let first = plan(dir.path(), &["--lookahead", "4", "--out-dir", "a"]);
    let text = std::fs::read_to_string(&first).unwrap();
    assert_golden("fixture.lookahead4.plan.toml", &text);
    assert!(text.contains("lookahead_intervals = 4"), "{text}");
    assert!(text.contains("objective_later = "), "{text}");
    let again = plan(dir.path(), &["--lookahead", "4", "--out-dir", "b"]);
    assert_eq!(text, std::fs::read_to_string(&again).unwrap());
    let shown = chameleon(dir.path(), &["show", first.to_str().unwrap()]);
    assert!(
        stdout(&shown).contains("look-ahead 4 intervals: this plan is the first"),
        "{}",
        stdout(&shown)
    );
    let o = apply(dir.path(), &first, "2024-03-07T00:05:00Z");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Four 15-minute intervals fill the one-hour horizon; five do not fit.
    let o = run_plan(dir.path(), NOW, &["--lookahead", "5"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains(
            "--lookahead: lookahead_intervals = 5 must be at least 1, and 5 intervals of 15 \
             minutes must fit in forecast.horizon_minutes = 60"
        ),
        "{}",
        stderr(&o)
    );
    let model = std::fs::read_to_string(root().join("models/default.toml")).unwrap();
    let bad = model.replace("lookahead_intervals = 1", "lookahead_intervals = 0");
    std::fs::write(dir.path().join("bad.toml"), bad).unwrap();
    let o = run_plan(dir.path(), NOW, &["--model", "bad.toml"]);
    let line = 1 + model
        .lines()
        .position(|l| l.starts_with("lookahead_intervals"))
        .unwrap();
    assert_fails(
        &o,
        &format!("bad.toml:{line}:"),
        "lookahead_intervals = 0 must be at least 1",
    );
}

#[test]
fn golden_model_selection_for_the_fixture() {
    let dir = workspace();
    let o = chameleon(
        dir.path(),
        &["forecast", "--telemetry", "telemetry.csv", "--now", NOW],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_golden("fixture.forecast.csv", &stdout(&o));
}

#[test]
fn plan_persists_the_selection_and_reuses_it() {
    let dir = workspace();
    let args = [
        "plan",
        "--fleet",
        "fleet.toml",
        "--telemetry",
        "telemetry.csv",
        "--now",
        NOW,
    ];
    let first = chameleon(dir.path(), &args);
    // Five fixture series shifted level in the last hour or so: they are not stored.
    let work = "20 series (15 selected, 5 shifted)";
    assert!(stderr(&first).contains(work), "{}", stderr(&first));
    assert!(dir.path().join("models/forecast-state.json").exists());
    let second = chameleon(dir.path(), &args);
    let work = "20 series (15 reused, 5 shifted)";
    assert!(stderr(&second).contains(work), "{}", stderr(&second));
    assert_eq!(stdout(&first), stdout(&second));
}

#[test]
fn forecast_evaluate_scores_the_forecasts_past_plans_recorded() {
    let dir = workspace();
    let o = run_plan(dir.path(), "2024-03-06T22:00:00Z", &[]);
    assert!(matches!(o.status.code(), Some(0 | 2)), "{}", stderr(&o));
    let o = chameleon(
        dir.path(),
        &[
            "forecast",
            "--telemetry",
            "telemetry.csv",
            "--evaluate",
            "--plans",
            "plans",
            "--report",
            "p.json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let report = std::fs::read_to_string(dir.path().join("p.json")).unwrap();
    assert!(report.contains("\"windows\": 20"), "{report}");
    assert!(stderr(&o).contains("1 plans"), "{}", stderr(&o));
}

#[test]
fn forecast_evaluate_writes_every_scored_window_for_a_peer() {
    let dir = workspace();
    let args = [
        "forecast",
        "--telemetry",
        "telemetry.csv",
        "--evaluate",
        "--origins",
        "2",
        "--horizon",
        "1h",
        "--report",
        "r.json",
        "--windows",
        "w.csv",
    ];
    let o = chameleon(dir.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = std::fs::read_to_string(dir.path().join("r.json")).unwrap();
    let text = std::fs::read_to_string(dir.path().join("w.csv")).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("instance,resource,origin,step_seconds,history,actual,selected")
    );
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let scored = format!("\"windows\": {}", rows.len());
    assert!(report.contains(&scored), "{scored} not in {report}");
    for row in &rows {
        assert_eq!(row.len(), 7, "{row:?}");
        assert!(["0", "1"].contains(&row[2]) && row[3] == "300", "{row:?}");
        let numbers = |k: usize| {
            let values: Vec<f64> = row[k].split(' ').map(|v| v.parse().unwrap()).collect();
            values.len()
        };
        assert_eq!((numbers(5), numbers(6)), (12, 12), "{row:?}");
        assert!(numbers(4) > 12, "{row:?}");
    }
    let o = chameleon(
        dir.path(),
        &["forecast", "--telemetry", "telemetry.csv", "--windows", "x"],
    );
    assert_eq!(o.status.code(), Some(1), "--windows needs --evaluate");
}

#[test]
fn forecast_evaluate_writes_the_report_keys() {
    let dir = workspace();
    let o = chameleon(
        dir.path(),
        &[
            "forecast",
            "--telemetry",
            "telemetry.csv",
            "--evaluate",
            "--origins",
            "2",
            "--horizon",
            "1h",
            "--report",
            "r.json",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("selected"), "{}", stdout(&o));
    let report = std::fs::read_to_string(dir.path().join("r.json")).unwrap();
    for key in [
        "\"selected\"",
        "\"seasonal_naive\"",
        "\"ets\"",
        "\"vpa\"",
        "mase_median",
        "share_mase_below_1",
        "rel_error_geomean",
        "share_beats_seasonal_naive",
        "coverage",
        "bias",
        "seconds",
        "by_instance",
        "by_resource",
    ] {
        assert!(report.contains(key), "{key} missing from {report}");
    }
}

#[test]
fn same_inputs_and_now_give_byte_identical_plans() {
    let dir = workspace();
    let first = std::fs::read(plan(dir.path(), &["--out-dir", "a"])).unwrap();
    let second = std::fs::read(plan(dir.path(), &["--out-dir", "b"])).unwrap();
    assert_eq!(first, second);
}

#[test]
fn detailed_exitcode_reports_changes() {
    let dir = workspace();
    let args = [
        "plan",
        "--fleet",
        "fleet.toml",
        "--telemetry",
        "telemetry.csv",
        "--now",
        NOW,
        "--detailed-exitcode",
    ];
    assert_eq!(chameleon(dir.path(), &args).status.code(), Some(2));
    let no_change = ["--strategy", "greedy", "--model", "frozen.toml"];
    let model = std::fs::read_to_string(root().join("models/default.toml")).unwrap();
    std::fs::write(
        dir.path().join("frozen.toml"),
        model.replace("max_changes = 50", "max_changes = 0"),
    )
    .unwrap();
    let mut args = args.to_vec();
    args.extend_from_slice(&no_change);
    let o = chameleon(dir.path(), &args);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// Plan and apply every interval until the fleet settles: the fixture needs two rounds
/// (the golden plan, then three changes), after which `--detailed-exitcode` exits 0 and the
/// plan it writes has no actions.
#[test]
fn detailed_exitcode_is_0_once_the_fleet_has_settled() {
    let dir = workspace();
    let mut codes = Vec::new();
    for (now, at) in [
        ("2024-03-07T00:00:00Z", "2024-03-07T00:00:30Z"),
        ("2024-03-07T00:15:00Z", "2024-03-07T00:15:30Z"),
        ("2024-03-07T00:30:00Z", "2024-03-07T00:30:30Z"),
    ] {
        let o = run_plan(dir.path(), now, &["--detailed-exitcode"]);
        let path = dir.path().join(stdout(&o).trim());
        let actions = chameleon::plan::Plan::read(&path).unwrap().actions;
        codes.push((o.status.code(), actions.len()));
        if o.status.code() == Some(2) {
            let o = apply(dir.path(), &path, at);
            assert!(o.status.success(), "{}", stderr(&o));
        }
    }
    assert_eq!(codes, [(Some(2), 8), (Some(2), 3), (Some(0), 0)]);
}

#[test]
fn plan_show_apply_round_trip() {
    let dir = workspace();
    let path = plan(dir.path(), &[]);
    let p = path.to_str().unwrap();
    let show = chameleon(dir.path(), &["show", p]);
    assert!(
        stdout(&show).contains("strategy mip") && stdout(&show).contains("swap"),
        "{}",
        stdout(&show)
    );
    let before = std::fs::read_to_string(dir.path().join("fleet.toml")).unwrap();
    let o = apply(dir.path(), &path, LATER);
    assert!(o.status.success(), "{}", stderr(&o));
    let after = std::fs::read_to_string(dir.path().join("fleet.toml")).unwrap();
    assert_ne!(before, after);
    assert!(after.contains("last_plan"));
    let again = apply(dir.path(), &path, LATER);
    assert!(
        again.status.success() && stdout(&again).contains("already applied"),
        "{}",
        stdout(&again)
    );
    assert_eq!(
        after,
        std::fs::read_to_string(dir.path().join("fleet.toml")).unwrap()
    );
}

/// Sets `skip = true` on the action `id` alone (the plan's review step).
fn skip_action(path: &Path, id: &str) {
    let text = std::fs::read_to_string(path).unwrap();
    let table = text
        .find(&format!("id = \"{id}\"\n"))
        .unwrap_or_else(|| panic!("no action {id} in {}", path.display()));
    let at = table + text[table..].find("skip = false").expect("a skip field");
    let edited = format!(
        "{}skip = true{}",
        &text[..at],
        &text[at + "skip = false".len()..]
    );
    std::fs::write(path, edited).unwrap();
}

/// A fleet reached through a symlink and through its real name is one fleet: one lock,
/// one ledger, and the plan applied through the link is already applied through the
/// real name. The link stays a link, and the file keeps its mode.
#[test]
fn a_fleet_reached_through_a_symlink_is_one_fleet() {
    use std::os::unix::fs::PermissionsExt;
    let dir = workspace();
    let (real, link) = (dir.path().join("fleet.toml"), dir.path().join("link.toml"));
    std::os::unix::fs::symlink("fleet.toml", &link).unwrap();
    std::fs::set_permissions(&real, std::fs::Permissions::from_mode(0o440)).unwrap();
    let path = plan(dir.path(), &[]);
    let p = path.to_str().unwrap();
    let o = chameleon(
        dir.path(),
        &["apply", p, "--fleet", "link.toml", "--now", LATER],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(std::fs::symlink_metadata(&link)
        .unwrap()
        .file_type()
        .is_symlink());
    let mode = std::fs::metadata(&real).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o440);
    assert!(std::fs::read_to_string(&real)
        .unwrap()
        .contains("last_plan"));
    let again = apply(dir.path(), &path, LATER);
    assert!(
        again.status.success() && stdout(&again).contains("already applied"),
        "{}{}",
        stdout(&again),
        stderr(&again)
    );
    for derived in ["link.toml.lock", "link.ledger.sqlite"] {
        assert!(!dir.path().join(derived).exists(), "{derived} exists");
    }
}

/// Skipping a04 (58's cpu shrink) skips what waits for its room: the migration a01 of 306
/// to h0, 306's grow a03, ec2_cpu_utilization_5f5533's grow a07, and, through a01, a08;
/// the rest is applied.
#[test]
fn skip_is_honoured_and_dependants_are_skipped() {
    let dir = workspace();
    let path = plan(dir.path(), &[]);
    let actions = chameleon::plan::Plan::read(&path).unwrap().actions;
    let depends = |id: &str| {
        actions
            .iter()
            .find(|a| a.id == id)
            .unwrap()
            .depends_on
            .clone()
    };
    assert_eq!(depends("a01"), ["a04", "a05"]);
    assert_eq!(depends("a03"), ["a01", "a04"]);
    assert_eq!(depends("a07"), ["a04"]);
    assert_eq!(depends("a08"), ["a01"]);
    skip_action(&path, "a04");
    let o = apply(dir.path(), &path, LATER);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    for line in [
        "skipped a04: skip = true",
        "skipped a01: depends on skipped a04",
        "skipped a03: depends on skipped",
        "skipped a07: depends on skipped a04",
        "skipped a08: depends on skipped a01",
    ] {
        assert!(out.contains(line), "no `{line}` in:\n{out}");
    }
    for id in ["a01", "a03", "a04", "a07", "a08"] {
        assert!(
            !out.contains(&format!("applied {id}")),
            "{id} applied:\n{out}"
        );
    }
    for id in ["a02", "a05", "a06"] {
        assert!(
            !out.contains(&format!("skipped {id}")),
            "{id} skipped:\n{out}"
        );
    }
    let fleet = chameleon::fleet::Fleet::read(&dir.path().join("fleet.toml")).unwrap();
    let instance = |id: &str| fleet.instances.iter().find(|i| i.id == id).unwrap();
    assert_eq!(
        instance("306").host,
        "h2",
        "the skipped migration moved 306"
    );
    assert_eq!(
        instance("58").cpu.alloc,
        6.5,
        "the skipped shrink changed 58"
    );
    assert_eq!(instance("58").mem.alloc, 768.0, "a05 was not applied");
}

#[test]
fn tampered_plan_is_refused_and_fleet_untouched() {
    let dir = workspace();
    let path = plan(dir.path(), &[]);
    edit(&path, "amount = ", "amount = 1");
    let before = std::fs::read(dir.path().join("fleet.toml")).unwrap();
    let o = apply(dir.path(), &path, LATER);
    assert_fails(&o, ".plan.toml", "modified after it was written");
    assert_eq!(
        before,
        std::fs::read(dir.path().join("fleet.toml")).unwrap()
    );
}

#[test]
fn stale_and_expired_plans_are_refused() {
    let dir = workspace();
    let path = plan(dir.path(), &[]);
    let p = path.to_str().unwrap();
    let expired = chameleon(
        dir.path(),
        &[
            "apply",
            p,
            "--fleet",
            "fleet.toml",
            "--now",
            "2024-03-07T00:15:00Z",
        ],
    );
    assert_fails(&expired, ".plan.toml", "expired");
    edit(&dir.path().join("fleet.toml"), "credits = ", "credits = 1");
    let before = std::fs::read(dir.path().join("fleet.toml")).unwrap();
    let stale = apply(dir.path(), &path, LATER);
    assert_fails(&stale, ".plan.toml", "stale");
    assert_eq!(
        before,
        std::fs::read(dir.path().join("fleet.toml")).unwrap()
    );
}

fn plan_fails(dir: &Path, location: &str, what: &str) {
    assert_fails(&run_plan(dir, NOW, &[]), location, what);
}

#[test]
fn malformed_fleet_toml() {
    let dir = workspace();
    edit(&dir.path().join("fleet.toml"), "[[host]]", "[[host]");
    plan_fails(dir.path(), "fleet.toml:1:", "invalid table header");
}

#[test]
fn unknown_host_in_fleet() {
    let dir = workspace();
    let fleet = dir.path().join("fleet.toml");
    edit(&fleet, "host = \"h2\"", "host = \"h9\"");
    let line = 1 + std::fs::read_to_string(&fleet)
        .unwrap()
        .lines()
        .position(|l| l == "host = \"h9\"")
        .unwrap();
    plan_fails(
        dir.path(),
        &format!("fleet.toml:{line}:"),
        "unknown host `h9`",
    );
}

#[test]
fn negative_capacity_and_duplicate_id_in_fleet() {
    let dir = workspace();
    edit(&dir.path().join("fleet.toml"), "cpu = 8.75", "cpu = -8.75");
    plan_fails(dir.path(), "fleet.toml:4:", "cpu capacity -8.75");
    let dir = workspace();
    edit(&dir.path().join("fleet.toml"), "id = \"h1\"", "id = \"h0\"");
    plan_fails(dir.path(), "fleet.toml:9:", "duplicate host id `h0`");
}

#[test]
fn malformed_csv_nan_negative_and_unknown_instance() {
    let cases = [
        (
            "2024-03-04T00:00:00Z,58,cpu,",
            "2024-03-04T00:00:00Z,58,cpu\n",
            "expected 4 fields",
        ),
        (
            "2024-03-04T00:00:00Z,58,cpu,",
            "2024-03-04T00:00:00Z,58,cpu,NaN\n",
            "not finite",
        ),
        (
            "2024-03-04T00:00:00Z,58,cpu,",
            "2024-03-04T00:00:00Z,58,cpu,-1\n",
            "negative",
        ),
        (
            "2024-03-04T00:00:00Z,58,cpu,",
            "2024-03-04T00:00:00Z,ghost,cpu,1\n",
            "unknown instance `ghost`",
        ),
        (
            "2024-03-04T00:00:00Z,58,cpu,",
            "2024-03-04T00:00:00Z,/etc/cgroup,cpu,1\n",
            "instance id `/etc/cgroup` has `/`",
        ),
    ];
    for (prefix, bad_line, what) in cases {
        let dir = workspace();
        let csv = dir.path().join("telemetry.csv");
        let text = std::fs::read_to_string(&csv).unwrap();
        let at = text.find(prefix).unwrap();
        let end = at + text[at..].find('\n').unwrap() + 1;
        let line = text[..at].matches('\n').count() + 1;
        std::fs::write(&csv, format!("{}{bad_line}{}", &text[..at], &text[end..])).unwrap();
        plan_fails(dir.path(), &format!("telemetry.csv:{line}:"), what);
    }
}

/// The three path escapes an outside review found, refused where the ids enter: a sibling
/// cgroup, a path outside the root, an absolute path; and ids a command would take as an
/// option or a placeholder.
#[test]
fn ids_that_could_escape_a_path_are_refused_at_load() {
    for (bad, what) in [
        ("../system.slice", "instance id `../system.slice` has `/`"),
        ("../outside/vm58", "instance id `../outside/vm58` has `/`"),
        ("/sys/fs/cgroup/vm58", "has `/`"),
        ("-rf", "must start with a letter, a digit or `_`"),
        ("id{to}", "has `{`"),
    ] {
        let dir = workspace();
        let fleet = dir.path().join("fleet.toml");
        let line = line_of(&fleet, "id = \"58\"");
        edit(&fleet, "id = \"58\"", &format!("id = \"{bad}\""));
        plan_fails(dir.path(), &format!("fleet.toml:{line}:"), what);
    }
    let dir = workspace();
    let fleet = dir.path().join("fleet.toml");
    let line = line_of(&fleet, "id = \"h0\"");
    edit(&fleet, "id = \"h0\"", "id = \"h0\\n\"");
    plan_fails(
        dir.path(),
        &format!("fleet.toml:{line}:"),
        "host id `h0\\n` has `\\n`",
    );
    // An importer takes the id from the file name.
    let dir = workspace();
    std::fs::write(
        dir.path().join("-rf.csv"),
        "timestamp,value\n2024-01-01 00:00:00,1\n",
    )
    .unwrap();
    let o = chameleon(
        dir.path(),
        &[
            "import", "nab", "--cores", "2", "--out", "t.csv", "--", "-rf.csv",
        ],
    );
    assert_fails(&o, "-rf.csv", "must start with a letter");
}

/// A reader that goes away (`chameleon show plan | head -1`) ends the command quietly:
/// no panic about a broken pipe.
#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    let golden = root().join("tests/golden/fixture.plan.toml");
    let mut child = bin()
        .args(["show", golden.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let o = child.wait_with_output().unwrap();
    assert_eq!(stderr(&o), "", "{:?}", o.status);
}

/// Errors say each cause once, and a file that is not UTF-8 names the line.
#[test]
fn errors_name_their_cause_once_and_the_line_of_bad_bytes() {
    let dir = workspace();
    let o = run_plan(dir.path(), NOW, &["--model", "nope.toml"]);
    assert_eq!(
        stderr(&o).matches("No such file or directory").count(),
        1,
        "{}",
        stderr(&o)
    );
    std::fs::write(
        dir.path().join("bad.toml"),
        b"interval_minutes = 15\n# \xff\n",
    )
    .unwrap();
    let o = run_plan(dir.path(), NOW, &["--model", "bad.toml"]);
    assert_fails(&o, "bad.toml: line 2", "not valid UTF-8");
}

#[test]
fn stale_telemetry_is_an_error() {
    let dir = workspace();
    let o = run_plan(dir.path(), "2025-01-01T00:00:00Z", &[]);
    assert_fails(&o, "telemetry.csv", "stale");
}

#[test]
fn import_rebuilds_the_fixture_telemetry() {
    let dir = tempfile::tempdir().unwrap();
    let raw = root().join("fixtures/raw");
    let mut parts = Vec::new();
    for (source, extra) in [
        ("bitbrains", vec![]),
        ("azure", vec!["--cores", "4"]),
        ("nab", vec!["--cores", "2"]),
    ] {
        let mut files: Vec<String> = std::fs::read_dir(raw.join(source))
            .unwrap()
            .map(|e| e.unwrap().path().to_str().unwrap().to_owned())
            .collect();
        files.sort();
        let out = format!("{source}.csv");
        let mut args = vec!["import", source];
        args.extend(files.iter().map(String::as_str));
        args.extend(["--start", "2024-03-04T00:00:00Z", "--out", &out]);
        args.extend(extra);
        let o = chameleon(dir.path(), &args);
        assert!(o.status.success(), "{}", stderr(&o));
        parts.push(std::fs::read_to_string(dir.path().join(&out)).unwrap());
    }
    let joined: String = parts
        .iter()
        .enumerate()
        .map(|(k, p)| {
            if k == 0 {
                p.as_str()
            } else {
                p.split_once('\n').unwrap().1
            }
        })
        .collect();
    assert_eq!(
        joined,
        std::fs::read_to_string(root().join("fixtures/telemetry.csv")).unwrap()
    );
}

#[test]
fn import_rejects_unsupported_nab_metric() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("ec2_disk_write_bytes_1ef3de.csv");
    std::fs::write(&f, "timestamp,value\n2014-03-01 17:34:00,1\n").unwrap();
    let o = chameleon(
        dir.path(),
        &["import", "nab", f.to_str().unwrap(), "--out", "t.csv"],
    );
    assert_fails(&o, "ec2_disk_write_bytes_1ef3de.csv", "");
}

/// Runs `import SOURCE PATH --out jobs.csv` in `dir` on a fixture and checks it succeeded.
fn import_jobs(dir: &Path, source: &str, fixture: &str) -> Output {
    let path = root().join("fixtures/raw").join(fixture);
    let o = chameleon(
        dir,
        &[
            "import",
            source,
            path.to_str().unwrap(),
            "--out",
            "jobs.csv",
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

#[test]
fn import_swf_rebuilds_the_fixture_jobs_and_counts_its_quirks() {
    let dir = tempfile::tempdir().unwrap();
    let o = import_jobs(dir.path(), "swf", "swf/NASA-iPSC-1993-3.1-cln.first60d.swf");
    assert_golden("import.swf.txt", &stderr(&o));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("jobs.csv")).unwrap(),
        std::fs::read_to_string(root().join("fixtures/jobs.csv")).unwrap()
    );
}

#[test]
fn import_azure_functions_starts_each_invocation_its_duration_before_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let o = import_jobs(
        dir.path(),
        "azure-functions",
        "azure-functions/Azure2021_200.csv",
    );
    assert_golden("import.azure-functions.txt", &stderr(&o));
    let jobs = chameleon::jobs::read(&dir.path().join("jobs.csv")).unwrap();
    let origin: chrono::DateTime<chrono::Utc> = "2021-01-31T00:00:00Z".parse().unwrap();
    let raw =
        std::fs::read_to_string(root().join("fixtures/raw/azure-functions/Azure2021_200.csv"))
            .unwrap();
    let mut ends: Vec<(String, f64)> = raw
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[1].to_owned(), f[2].parse().unwrap())
        })
        .collect();
    assert_eq!(jobs.len(), ends.len());
    for j in &jobs {
        let end = (j.submit - origin).as_seconds_f64() + j.run_seconds;
        let k = ends
            .iter()
            .position(|(func, e)| *func == j.program && (e - end).abs() < 1e-3)
            .unwrap_or_else(|| panic!("no invocation of {} ends at {end}", j.program));
        ends.remove(k);
        assert_eq!(j.start, Some(j.submit));
    }
}

#[test]
fn import_azure_vm_arrivals_marks_the_vms_alive_at_the_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let o = import_jobs(
        dir.path(),
        "azure-vm-arrivals",
        "azure-vm-arrivals/traces/v1.dev.txt",
    );
    assert_golden("import.azure-vm-arrivals.txt", &stderr(&o));
    let jobs = chameleon::jobs::read(&dir.path().join("jobs.csv")).unwrap();
    let vms: u32 = jobs.iter().map(|j| j.instances).sum();
    let censored: u32 = jobs
        .iter()
        .filter(|j| j.censored)
        .map(|j| j.instances)
        .sum();
    assert_eq!((vms, censored), (868, 267));
    let cut: chrono::DateTime<chrono::Utc> = "2017-01-25T07:20:00Z".parse().unwrap();
    for j in &jobs {
        let end = j.submit + chrono::TimeDelta::seconds(j.run_seconds as i64);
        if j.censored {
            assert_eq!(end, cut, "{j:?}");
        } else {
            assert!(end <= cut, "{j:?}");
        }
    }
}

#[test]
fn import_job_log_errors_name_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let swf = dir.path().join("bad.swf");
    std::fs::write(
        &swf,
        "; UnixStartTime: 0\n1 0 -1 10 4 -1 -1 -1 -1 -1 1 1 1 1 -1 -1 -1 -1\n1 2 3\n",
    )
    .unwrap();
    let o = chameleon(
        dir.path(),
        &["import", "swf", "bad.swf", "--out", "jobs.csv"],
    );
    assert_fails(&o, "bad.swf:3", "expected 18 fields, found 3");
    std::fs::write(&swf, "1 0 -1 10 4 -1 -1 -1 -1 -1 1 1 1 1 -1 -1 -1 -1\n").unwrap();
    let o = chameleon(
        dir.path(),
        &["import", "swf", "bad.swf", "--out", "jobs.csv"],
    );
    assert_fails(&o, "bad.swf", "no UnixStartTime; give --start");
    let o = chameleon(
        dir.path(),
        &[
            "import", "swf", "bad.swf", "--out", "jobs.csv", "--cores", "2",
        ],
    );
    assert_fails(&o, "--cores", "telemetry traces");
    let arrivals = root().join("fixtures/raw/azure-vm-arrivals/traces/v1.dev.txt");
    let o = chameleon(
        dir.path(),
        &[
            "import",
            "azure-vm-arrivals",
            arrivals.to_str().unwrap(),
            "--out",
            "jobs.csv",
            "--pool",
            "vms",
        ],
    );
    assert_fails(&o, "azure-vm-arrivals", "--pool does not apply");
    assert!(!dir.path().join("jobs.csv").exists());
}

#[test]
fn fleet_synth_is_deterministic_and_matches_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let t = root().join("fixtures/telemetry.csv");
    let args = [
        "fleet",
        "synth",
        "--telemetry",
        t.to_str().unwrap(),
        "--hosts",
        "3",
        "--overcommit",
        "1.3",
        "--seed",
        "7",
        "--out",
        "f.toml",
    ];
    assert!(chameleon(dir.path(), &args).status.success());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("f.toml")).unwrap(),
        std::fs::read_to_string(root().join("fixtures/fleet.toml")).unwrap()
    );
}

#[test]
fn compare_reports_both_strategies() {
    let dir = workspace();
    let o = chameleon(
        dir.path(),
        &[
            "compare",
            "--fleet",
            "fleet.toml",
            "--telemetry",
            "telemetry.csv",
            "--now",
            NOW,
        ],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    let objective = |name: &str| -> f64 {
        let line = out.lines().find(|l| l.starts_with(name)).unwrap();
        line.split_whitespace().nth(2).unwrap().parse().unwrap()
    };
    assert!(objective("mip") <= objective("greedy") + 1e-6, "{out}");
    assert!(objective("mip") < objective("none"), "{out}");
}

/// A plan solved in parts carries a bound it is proven not to be below, and its gap, in
/// the file and in `show`; above `bound_instances` it says it has none rather than print
/// the parts' sum, which the rescue's moves across parts can undercut.
#[test]
fn a_plan_in_parts_reports_a_proven_bound_or_none() {
    let dir = workspace();
    let parted =
        chameleon::policy::DEFAULT.replace("partition_instances = 100", "partition_instances = 4");
    std::fs::write(dir.path().join("m.toml"), &parted).unwrap();
    let path = plan(dir.path(), &["--model", "m.toml"]);
    let p = chameleon::Plan::read(&path).unwrap().plan;
    assert!(p.solver.parts > 1, "{} parts", p.solver.parts);
    let (bound, gap) = (p.solver.best_bound.unwrap(), p.solver.gap.unwrap());
    assert!(bound > 0.0 && bound <= p.solver.objective, "{:?}", p.solver);
    let expected = (p.solver.objective - bound) / p.solver.objective;
    assert!((gap - expected).abs() < 1e-5, "{:?}", p.solver);
    let show = stdout(&chameleon(dir.path(), &["show", path.to_str().unwrap()]));
    assert!(show.contains(&format!("bound {bound:.3}")), "{show}");

    let none = parted.replace("bound_instances = 2000", "bound_instances = 0");
    assert_ne!(none, parted);
    std::fs::write(dir.path().join("m.toml"), none).unwrap();
    let path = plan(dir.path(), &["--model", "m.toml"]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(
        !text.contains("best_bound") && !text.contains("gap ="),
        "{text}"
    );
    let show = stdout(&chameleon(dir.path(), &["show", path.to_str().unwrap()]));
    assert!(show.contains("no bound"), "{show}");
}

/// A fleet solved in parts is exported one file per part, or whole on request, so that an
/// outside solver can audit the plan against the whole program.
#[test]
fn export_model_writes_the_parts_or_the_whole_program() {
    let dir = workspace();
    let model =
        chameleon::policy::DEFAULT.replace("partition_instances = 100", "partition_instances = 4");
    std::fs::write(dir.path().join("m.toml"), model).unwrap();
    plan(
        dir.path(),
        &["--model", "m.toml", "--export-model", "parts.lp"],
    );
    let parts: Vec<String> = (0..)
        .map(|k| dir.path().join(format!("parts.part{k}.lp")))
        .take_while(|p| p.exists())
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    assert!(parts.len() > 1, "{} parts", parts.len());
    assert!(!dir.path().join("parts.lp").exists());
    plan(
        dir.path(),
        &[
            "--model",
            "m.toml",
            "--export-model",
            "whole.lp",
            "--export-whole",
        ],
    );
    let whole = std::fs::read_to_string(dir.path().join("whole.lp")).unwrap();
    assert!(!dir.path().join("whole.part0.lp").exists());
    // Every column of every part is in the whole program, and the whole has more rows than
    // any part (the parts are smaller programs, not copies of it).
    let fleet = chameleon::fleet::Fleet::read(&dir.path().join("fleet.toml")).unwrap();
    for i in &fleet.instances {
        let column = format!("change[{}]", i.id);
        assert!(
            parts.iter().any(|p| p.contains(&column)) == whole.contains(&column),
            "{column}"
        );
    }
    assert!(parts.iter().all(|p| p.len() < whole.len()));
    let o = run_plan(dir.path(), NOW, &["--export-whole"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--export-model"), "{}", stderr(&o));
}

#[test]
fn export_model_matches_golden() {
    let dir = workspace();
    plan(dir.path(), &["--export-model", "model.lp"]);
    let actual = std::fs::read_to_string(dir.path().join("model.lp")).unwrap();
    assert!(
        actual.contains("cap(h0,cpu):")
            && actual.contains("take(63,cpu)")
            && actual.contains("give(58,cpu)")
            && actual.contains("swap_balance(h0,cpu)")
    );
    assert_golden("fixture.lp", &actual);
    let o = run_plan(dir.path(), NOW, &["--export-model", "model.txt"]);
    assert_fails(&o, "model.txt", ".lp or .mps");
}

#[test]
fn infeasible_minimums_name_the_host_and_row() {
    let dir = workspace();
    let fleet = dir.path().join("fleet.toml");
    let text = std::fs::read_to_string(&fleet).unwrap();
    let shrunk: String = text
        .lines()
        .map(|l| match l.strip_prefix("cpu = ") {
            Some(_) => "cpu = 0.5".to_owned(),
            None => l.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&fleet, shrunk).unwrap();
    let o = run_plan(dir.path(), NOW, &[]);
    assert_fails(
        &o,
        "infeasible",
        "cap[h2,cpu]: minimum allocations 1.5 cores exceed capacity 0.5",
    );
}

/// Line (1-based) of the first line of `path` equal to `needle` after `edit`.
fn line_of(path: &Path, needle: &str) -> usize {
    1 + std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .position(|l| l == needle)
        .unwrap()
}

#[test]
fn duplicate_instance_nan_and_negative_allocation_in_fleet() {
    let dir = workspace();
    let fleet = dir.path().join("fleet.toml");
    let ids: Vec<String> = std::fs::read_to_string(&fleet)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("id = \"") && !l.starts_with("id = \"h"))
        .map(str::to_owned)
        .collect();
    edit(&fleet, &ids[1], &ids[0]);
    let line = 1 + std::fs::read_to_string(&fleet)
        .unwrap()
        .lines()
        .enumerate()
        .filter(|(_, l)| *l == ids[0])
        .nth(1)
        .unwrap()
        .0;
    plan_fails(
        dir.path(),
        &format!("fleet.toml:{line}:"),
        "duplicate instance id",
    );
    for (from, to, what) in [
        ("credits = ", "credits = nan\nx", "credits NaN"),
        (
            "alloc = ",
            "alloc = -1.0\nx",
            "alloc, min and max must be finite numbers >= 0",
        ),
    ] {
        let dir = workspace();
        let fleet = dir.path().join("fleet.toml");
        let text = std::fs::read_to_string(&fleet).unwrap();
        let at = text.find(from).unwrap();
        let end = at + text[at..].find('\n').unwrap();
        let bad = to.split('\n').next().unwrap();
        std::fs::write(&fleet, format!("{}{bad}{}", &text[..at], &text[end..])).unwrap();
        let key = if from.starts_with("credits") {
            bad
        } else {
            "[instance.cpu]"
        };
        plan_fails(
            dir.path(),
            &format!("fleet.toml:{}:", line_of(&fleet, key)),
            what,
        );
    }
}

#[test]
fn malformed_model_file_names_file_and_line() {
    let dir = workspace();
    let model = std::fs::read_to_string(root().join("models/default.toml")).unwrap();
    std::fs::write(
        dir.path().join("bad.toml"),
        model.replace("[weights]", "[weights"),
    )
    .unwrap();
    let o = run_plan(dir.path(), NOW, &["--model", "bad.toml"]);
    let line = 1 + model.lines().position(|l| l == "[weights]").unwrap();
    assert_fails(&o, &format!("bad.toml:{line}:"), "invalid table header");
}

/// Numbers that once aborted, panicked, hung or reached HiGHS are refused at load, with the
/// line of the key.
#[test]
fn out_of_range_model_settings_name_the_line_and_key() {
    let dir = workspace();
    let model = std::fs::read_to_string(root().join("models/default.toml")).unwrap();
    for (from, to, what) in [
        (
            "horizon_minutes = 60 ",
            "horizon_minutes = 4294967295 ",
            "horizon_minutes",
        ),
        (
            "history_days = 7 ",
            "history_days = 100000000 ",
            "history_days",
        ),
        (
            "shrink_floor_hours = 12 ",
            "shrink_floor_hours = 4294967295 ",
            "shrink_floor_hours",
        ),
        ("origins = 6 ", "origins = 9223372036854775807 ", "origins"),
        ("threads = 1 ", "threads = 4294967295 ", "threads"),
        (
            "shortfall = 100.0 ",
            "shortfall = 1e308 ",
            "weights.shortfall",
        ),
        (
            "interval_minutes = 15",
            "interval_minutes = 4000000000",
            "interval_minutes",
        ),
    ] {
        assert!(model.contains(from), "{from}");
        let text = model.replacen(from, to, 1);
        let line = 1 + text
            .lines()
            .position(|l| l.starts_with(to.trim_end()))
            .unwrap();
        std::fs::write(dir.path().join("m.toml"), text).unwrap();
        let o = run_plan(dir.path(), NOW, &["--model", "m.toml"]);
        assert_fails(&o, &format!("m.toml:{line}:"), what);
    }
    // The exec backend's timeout, checked before anything runs.
    std::fs::write(
        dir.path().join("exec.toml"),
        "# hypervisor\ntimeout_secs = 1e19\n[resize.cpu]\napply = \"true\"\n",
    )
    .unwrap();
    let path = plan(dir.path(), &[]);
    assert_fails(
        &apply_exec(dir.path(), &path),
        "exec.toml:2",
        "at most 86400",
    );
}

/// A telemetry file cut inside its last value, a last line without its end, samples after
/// `--now` and a change stamped in the future: refused with the line, or accepted with a
/// warning that says what was done.
#[test]
fn cut_telemetry_late_samples_and_future_changes_are_refused_or_reported() {
    let dir = workspace();
    let csv = dir.path().join("telemetry.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let last = text.lines().count();
    assert!(text.ends_with(",0.12148\n"));
    let cut = |to: &str| text.strip_suffix("0.12148\n").unwrap().to_owned() + to;
    std::fs::write(&csv, cut("0.")).unwrap();
    plan_fails(
        dir.path(),
        &format!("telemetry.csv:{last}:"),
        "value `0.` is not a number",
    );
    std::fs::write(&csv, cut("0.121")).unwrap();
    let o = run_plan(dir.path(), NOW, &[]);
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(2),
        "{}",
        stderr(&o)
    );
    assert!(
        stderr(&o).contains(&format!(
            "warning: telemetry.csv:{last}: the last line has no line end"
        )),
        "{}",
        stderr(&o)
    );
    std::fs::write(&csv, &text).unwrap();
    let o = run_plan(dir.path(), "2024-03-06T23:30:00Z", &[]);
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(2),
        "{}",
        stderr(&o)
    );
    let err = stderr(&o);
    assert!(
        err.contains("warning: telemetry.csv: ")
            && err.contains("samples after --now 2024-03-06T23:30:00Z (the latest at 2024-03-07T00:41:47Z) were not used")
            && !err.contains("no line end"),
        "{err}"
    );
    let o = run_plan(dir.path(), "2024-03-07T01:00:00Z", &[]);
    assert!(!stderr(&o).contains("warning"), "{}", stderr(&o));
    edit(
        &dir.path().join("fleet.toml"),
        "earn_rate = 9.0\n",
        "earn_rate = 9.0\nchanged_at = \"2099-01-01T00:00:00Z\"\n",
    );
    let line = line_of(
        &dir.path().join("fleet.toml"),
        "changed_at = \"2099-01-01T00:00:00Z\"",
    );
    plan_fails(
        dir.path(),
        &format!("fleet.toml:{line}:"),
        "instance `306`: changed_at 2099-01-01T00:00:00Z is after the planning time 2024-03-07T00:00:00Z",
    );
}

/// An exec config that cannot make the plan's changes is refused before anything runs: an
/// empty file, a kind of change without a template, a program that is not there.
#[test]
fn exec_configs_that_cannot_run_the_plan_are_refused_before_the_first_action() {
    let dir = workspace();
    let path = plan(dir.path(), &[]);
    let fleet = std::fs::read_to_string(dir.path().join("fleet.toml")).unwrap();
    let cases = [
        ("", "exec.toml:1:", "no templates"),
        (
            "[resize.cpu]\napply = \"true {instance} {to}\"\n",
            "exec.toml:",
            "template, which the plan needs",
        ),
        (
            "timeout_secs = 5\n[resize.cpu]\napply = \"true\"\nquery = \"./virt-query {instance}\"\n[resize.mem]\napply = \"true\"\n[resize.net]\napply = \"true\"\n[migrate]\napply = \"true\"\n",
            "exec.toml:4:",
            "program `./virt-query` is not an executable file",
        ),
        (
            "[resize.cpu]\napply = \"true\"\n[resize.mem]\napply = \"nosuchvirt {to}\"\n[resize.net]\napply = \"true\"\n[migrate]\napply = \"true\"\n",
            "exec.toml:4:",
            "program `nosuchvirt` is not an executable file on PATH",
        ),
    ];
    for (config, location, what) in cases {
        std::fs::write(dir.path().join("exec.toml"), config).unwrap();
        assert_fails(&apply_exec(dir.path(), &path), location, what);
        assert!(
            !dir.path().join("fleet.ledger.sqlite").exists(),
            "{what}: no run began"
        );
        assert_eq!(
            std::fs::read_to_string(dir.path().join("fleet.toml")).unwrap(),
            fleet
        );
    }
}

/// An unknown key is pointed at its own line, not at its table's header.
#[test]
fn unknown_keys_point_at_their_line() {
    let dir = workspace();
    let model = std::fs::read_to_string(root().join("models/default.toml")).unwrap();
    let text = model.replacen("[weights]\n", "[weights]\n# costs\n\nshortfal = 1.0\n", 1);
    std::fs::write(dir.path().join("m.toml"), &text).unwrap();
    let line = 1 + text.lines().position(|l| l == "shortfal = 1.0").unwrap();
    let o = run_plan(dir.path(), NOW, &["--model", "m.toml"]);
    assert_fails(&o, &format!("m.toml:{line}:"), "unknown field `shortfal`");
    edit(
        &dir.path().join("fleet.toml"),
        "earn_rate = 9.0\n",
        "earn_rate = 9.0\nearnrate = 1\n",
    );
    let line = line_of(&dir.path().join("fleet.toml"), "earnrate = 1");
    plan_fails(
        dir.path(),
        &format!("fleet.toml:{line}:"),
        "unknown field `earnrate`",
    );
}

#[test]
fn malformed_plan_file_names_file_and_line() {
    let dir = workspace();
    let path = plan(dir.path(), &[]);
    edit(&path, "kind = \"swap\"", "kind = \"teleport\"");
    let line = line_of(&path, "kind = \"teleport\"");
    let o = apply(dir.path(), &path, LATER);
    assert_fails(
        &o,
        &format!(".plan.toml:{line}:"),
        "unknown variant `teleport`",
    );
}

/// Inputs that were accepted silently: an instance in an unknown pool, a pool whose size
/// overflows, a warm target above a pool's size, a plan applied before it was made, and
/// a forged plan with a non-finite number.
#[test]
fn silent_accepts_are_errors_naming_the_place() {
    let dir = workspace();
    let fleet = dir.path().join("fleet.toml");
    let pristine = std::fs::read_to_string(&fleet).unwrap();
    let pool = "\n[[pool]]\nid = \"web\"\nhost = \"h0\"\nwarm = 0\ncold = 3\ncpu = 0.0\nmem = 256.0\nnet = 0.0\n";
    let line = line_of(&fleet, "host = \"h0\"");
    edit(
        &fleet,
        "host = \"h0\"",
        "host = \"h0\"\npool = \"nosuchpool\"",
    );
    plan_fails(
        dir.path(),
        &format!("fleet.toml:{}:", line + 1),
        "unknown pool `nosuchpool`",
    );
    std::fs::write(
        &fleet,
        format!(
            "{pristine}{}",
            pool.replace("warm = 0", "warm = 4294967295")
        ),
    )
    .unwrap();
    plan_fails(dir.path(), "fleet.toml:", "warm + cold must fit in 32 bits");
    std::fs::write(&fleet, format!("{pristine}{pool}")).unwrap();
    std::fs::write(dir.path().join("targets.toml"), "# profiler\nweb = 4\n").unwrap();
    let o = run_plan(dir.path(), NOW, &["--pool-targets", "targets.toml"]);
    assert_fails(&o, "targets.toml:2", "a target of 4 cannot be met");
    std::fs::write(&fleet, &pristine).unwrap();
    let path = plan(dir.path(), &[]);
    let o = apply(dir.path(), &path, "2024-03-06T23:59:00Z");
    assert_fails(&o, ".plan.toml", "after now (2024-03-06T23:59:00Z)");
    forge(&path, |plan| match &mut plan.actions[2].change {
        Change::Resize { from, .. } | Change::Swap { from, .. } | Change::Pool { from, .. } => {
            *from = f64::NAN
        }
        Change::Migrate { .. } => panic!("the third action has no `from`"),
    });
    assert_fails(
        &apply(dir.path(), &path, LATER),
        ".plan.toml",
        "action a03: from is not a finite number",
    );
    assert_eq!(std::fs::read_to_string(&fleet).unwrap(), pristine);
}

#[test]
fn forged_plans_with_bad_references_are_refused_without_touching_the_fleet() {
    let dir = workspace();
    let before = std::fs::read(dir.path().join("fleet.toml")).unwrap();
    let apply = |path: &Path| apply(dir.path(), path, LATER);
    let path = plan(dir.path(), &["--out-dir", "f1"]);
    forge(&path, |plan| plan.actions[0].instance = "ghost".into());
    assert_fails(&apply(&path), "action a01", "unknown instance `ghost`");
    let path = plan(dir.path(), &["--out-dir", "f2"]);
    forge(&path, |plan| {
        plan.actions[1].depends_on = vec!["a99".into()]
    });
    let line = line_of(&path, "id = \"a02\"");
    assert_fails(
        &apply(&path),
        &format!(".plan.toml:{line}:"),
        "depends on unknown action `a99`",
    );
    let path = plan(dir.path(), &["--out-dir", "f3"]);
    let mut swap_id = String::new();
    forge(&path, |plan| {
        let swap = plan
            .actions
            .iter_mut()
            .find(|a| a.kind() == chameleon::plan::Kind::Swap)
            .unwrap();
        if let Change::Swap { amount, .. } = &mut swap.change {
            *amount = -5.0;
        }
        swap_id = swap.id.clone();
    });
    assert_fails(
        &apply(&path),
        &format!("action {swap_id}"),
        "amount -5 must be a positive number",
    );
    assert_eq!(
        before,
        std::fs::read(dir.path().join("fleet.toml")).unwrap()
    );
}

#[test]
fn usage_errors_exit_1_even_with_detailed_exitcode() {
    let dir = workspace();
    let o = run_plan(dir.path(), "bogus", &["--detailed-exitcode"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert_eq!(chameleon(dir.path(), &["--help"]).status.code(), Some(0));
}

#[test]
fn scenario_writes_a_fleet_and_telemetry_that_plan() {
    let dir = tempfile::tempdir().unwrap();
    let args = [
        "scenario",
        "--instances",
        "40",
        "--hosts",
        "4",
        "--cells",
        "2",
        "--days",
        "2",
        "--seed",
        "3",
        "--out-dir",
        "s",
    ];
    let o = chameleon(dir.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    let fleet = std::fs::read_to_string(dir.path().join("s/fleet.toml")).unwrap();
    assert_eq!(fleet.matches("[[instance]]").count(), 40);
    assert_eq!(fleet.matches("[[host]]").count(), 4);
    let o = chameleon(
        dir.path(),
        &[
            "plan",
            "--fleet",
            "s/fleet.toml",
            "--telemetry",
            "s/telemetry.csv",
            "--now",
            "2024-01-03T00:00:00Z",
            "--detailed-exitcode",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn ledger_shows_balances_and_history_and_guards_the_fleet_credits() {
    let dir = workspace();
    let path = plan(dir.path(), &[]);
    let o = apply(dir.path(), &path, LATER);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(dir.path().join("fleet.ledger.sqlite").exists());
    let plan = chameleon::plan::Plan::read(&path).unwrap();
    let swap = plan
        .actions
        .iter()
        .find(|a| a.kind() == chameleon::plan::Kind::Swap)
        .unwrap();
    let o = chameleon(
        dir.path(),
        &[
            "ledger",
            "--fleet",
            "fleet.toml",
            "--instance",
            &swap.instance,
        ],
    );
    let out = stdout(&o);
    assert!(
        out.contains(" seed ") && out.contains(" transfer "),
        "{out}"
    );
    assert!(
        out.contains(&format!("{}/{}", plan.plan.id, swap.id)),
        "{out}"
    );
    let o = chameleon(
        dir.path(),
        &["ledger", "--fleet", "fleet.toml", "--instance", "ghost"],
    );
    assert_fails(&o, "fleet.ledger.sqlite", "no account for instance `ghost`");
    // Credits edited in the fleet file disagree with the ledger: apply refuses, sync repairs.
    let applied = std::fs::read_to_string(dir.path().join("fleet.toml")).unwrap();
    edit(&dir.path().join("fleet.toml"), "credits = ", "credits = 1");
    let o = run_plan(dir.path(), "2024-03-07T00:06:00Z", &["--out-dir", "p2"]);
    let p2 = stdout(&o).trim().to_owned();
    let o = chameleon(
        dir.path(),
        &[
            "apply",
            &p2,
            "--fleet",
            "fleet.toml",
            "--now",
            "2024-03-07T00:07:00Z",
        ],
    );
    assert_fails(&o, "fleet.toml: instance", "the source of truth");
    let o = chameleon(dir.path(), &["ledger", "--fleet", "fleet.toml", "--sync"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("fleet.toml")).unwrap(),
        applied
    );
    let o = chameleon(dir.path(), &["apply", "--resume", "--fleet", "fleet.toml"]);
    assert!(stdout(&o).contains("nothing to resume"), "{}", stdout(&o));
}

/// Apply stamps `changed_at` on what it changed; a re-plan inside the cool-down touches
/// those instances only where their forecast exceeds their allocation. After the golden
/// plan, 58 (shrunk to 0.25 cores) starts using 3.5 and 63 (grown to 7.75) drops to 0.5 for
/// an hour. Within a 4-hour cool-down the next plan grows the short 58 but leaves 63 alone;
/// without it, the same plan shrinks 63. (The shrink floor is off so that only the
/// cool-down keeps 63.)
#[test]
fn cooldown_keeps_recent_changes_unless_short() {
    let dir = workspace();
    let first = plan(dir.path(), &[]);
    let o = apply(dir.path(), &first, LATER);
    assert!(o.status.success(), "{}", stderr(&o));
    let fleet = chameleon::fleet::Fleet::read(&dir.path().join("fleet.toml")).unwrap();
    let applied = chameleon::plan::Plan::read(&first).unwrap();
    let recent: Vec<&str> = fleet
        .instances
        .iter()
        .filter(|i| i.changed_at.is_some())
        .map(|i| i.id.as_str())
        .collect();
    for a in &applied.actions {
        assert!(
            recent.contains(&a.instance.as_str()),
            "{} not stamped",
            a.instance
        );
    }
    assert!(
        recent.contains(&"58") && recent.contains(&"63"),
        "{recent:?}"
    );
    let mut telemetry = std::fs::read_to_string(dir.path().join("telemetry.csv")).unwrap();
    for minute in (0..60).step_by(5) {
        telemetry.push_str(&format!("2024-03-07T00:{minute:02}:00Z,58,cpu,3.5\n"));
        telemetry.push_str(&format!("2024-03-07T00:{minute:02}:00Z,63,cpu,0.5\n"));
    }
    std::fs::write(dir.path().join("telemetry.csv"), telemetry).unwrap();
    let model = std::fs::read_to_string(root().join("models/default.toml")).unwrap();
    let model = model.replace("shrink_floor_hours = 12 ", "shrink_floor_hours = 0 ");
    let replan = |cooldown: &str| {
        let file = format!("cooldown-{cooldown}.toml");
        let text = model.replace(
            "cooldown_minutes = 60 ",
            &format!("cooldown_minutes = {cooldown} "),
        );
        std::fs::write(dir.path().join(&file), text).unwrap();
        let out = format!("plans-{cooldown}");
        let o = run_plan(
            dir.path(),
            "2024-03-07T01:00:00Z",
            &["--model", &file, "--out-dir", &out],
        );
        assert!(matches!(o.status.code(), Some(0 | 2)), "{}", stderr(&o));
        chameleon::plan::Plan::read(&dir.path().join(stdout(&o).trim())).unwrap()
    };
    let changed = |plan: &chameleon::plan::Plan, id: &str| {
        plan.actions
            .iter()
            .any(|a| a.instance == id || a.donor() == Some(id))
    };

    let free = replan("0");
    assert!(changed(&free, "63"), "without a cool-down 63 is not shrunk");

    let second = replan("240");
    assert!(!changed(&second, "63"), "63 changed during its cool-down");
    let mut touched_recent = 0;
    for a in &second.actions {
        let touched = std::iter::once(a.instance.as_str()).chain(a.donor());
        for id in touched.filter(|id| recent.contains(id)) {
            touched_recent += 1;
            // Only a receiver or a resized instance may be short; it must be, to be touched.
            assert_eq!(id, a.instance, "{id} donated during its cool-down");
            let before: f64 = a
                .reason
                .split("predicted shortfall ")
                .nth(1)
                .and_then(|s| s.split(' ').next())
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("no shortfall in reason {:?}", a.reason));
            assert!(
                before > 0.0,
                "{id} changed again without shortfall: {}",
                a.reason
            );
        }
    }
    assert!(changed(&second, "58"), "the short 58 is not grown");
    assert!(touched_recent > 0);
}

/// Adds a pool `web` of `cold` cold instances on `h0` to the workspace's fleet; its path.
fn with_web_pool(dir: &Path, cold: u32) -> PathBuf {
    let fleet = dir.join("fleet.toml");
    let mut text = std::fs::read_to_string(&fleet).unwrap();
    text.push_str(&format!(
        "\n[[pool]]\nid = \"web\"\nhost = \"h0\"\nwarm = 0\ncold = {cold}\ncpu = 0.0\nmem = 256.0\nnet = 0.0\n"
    ));
    std::fs::write(&fleet, text).unwrap();
    fleet
}

/// An operator's pool targets: with a warm target, the plan starts pool instances where the host has
/// room, apply carries them out, and an unknown pool in the targets file names its line.
#[test]
fn pool_targets_drive_warm_counts() {
    let dir = workspace();
    let fleet = with_web_pool(dir.path(), 3);
    std::fs::write(dir.path().join("targets.toml"), "# profiler\nweb = 2\n").unwrap();
    let path = plan(dir.path(), &["--pool-targets", "targets.toml"]);
    let plan = chameleon::plan::Plan::read(&path).unwrap();
    let pool = plan
        .actions
        .iter()
        .find(|a| a.instance == "web")
        .expect("a pool action");
    assert_eq!(pool.change, Change::Pool { from: 0.0, to: 2.0 });
    let o = apply(dir.path(), &path, LATER);
    assert!(o.status.success(), "{}", stderr(&o));
    let after = chameleon::fleet::Fleet::read(&fleet).unwrap();
    assert_eq!((after.pools[0].warm, after.pools[0].cold), (2, 1));
    std::fs::write(dir.path().join("targets.toml"), "web = 2\nbatch = 1\n").unwrap();
    let o = run_plan(dir.path(), NOW, &["--pool-targets", "targets.toml"]);
    assert_fails(&o, "targets.toml:2", "unknown pool `batch`");
}

/// `[weights] swap` charges each donor → receiver swap once: a small charge keeps the
/// golden plan's one swap (its objective, 404.713097, grows by the charge), a prohibitive
/// one drops it for the best plan without swaps, whose objective lies between the two.
#[test]
fn a_fixed_swap_cost_is_charged_per_swap() {
    let dir = workspace();
    let model = std::fs::read_to_string(root().join("models/default.toml")).unwrap();
    let objective = |cost: &str| -> (usize, f64) {
        let file = format!("swap-{cost}.toml");
        std::fs::write(
            dir.path().join(&file),
            model.replace("swap = 0.0 ", &format!("swap = {cost} ")),
        )
        .unwrap();
        let path = plan(dir.path(), &["--model", &file]);
        let text = std::fs::read_to_string(&path).unwrap();
        let plan = chameleon::plan::Plan::read(&path).unwrap();
        (
            text.matches("kind = \"swap\"").count(),
            plan.plan.solver.objective,
        )
    };
    let (swaps, cheap) = objective("0.5");
    assert_eq!((swaps, cheap), (1, 405.213097));
    let (swaps, prohibitive) = objective("1000.0");
    assert_eq!((swaps, prohibitive), (0, 527.713097));
    assert!(cheap < prohibitive && prohibitive < 404.713097 + 1000.0);
}

#[test]
fn pools_replay_on_the_fixture_jobs_gives_the_golden_table_report_and_plot() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = root().join("fixtures/jobs.csv");
    let args = [
        "pools",
        "replay",
        "--jobs",
        jobs.to_str().unwrap(),
        "--fit-until",
        "1993-10-03T00:00:00Z",
        "--report",
        "pools.json",
        "--plot",
        "pools.svg",
    ];
    let o = chameleon(dir.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_golden("pools.replay.txt", &stdout(&o));
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("pools.json")).unwrap())
            .unwrap();
    assert_eq!(report["rows"][0]["strategy"], "keepalive-10m");
    assert_eq!(report["curves"].as_array().unwrap().len(), 6);
    // The predictors' knobs were chosen on the days before the cut-off, within
    // keepalive-10m's idle budget there.
    for choice in report["choices"].as_array().unwrap() {
        let (idle, budget) = (
            choice["fit"]["idle_instance_hours"].as_f64().unwrap(),
            choice["budget_idle_instance_hours"].as_f64().unwrap(),
        );
        assert!(idle <= budget, "{choice}");
    }
    assert_eq!(report["choices"].as_array().unwrap().len(), 2);
    let predictor = report["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["family"] == "chameleon");
    assert!(predictor.unwrap()["coverage"]["windows"].as_u64().unwrap() > 0);
    let svg = std::fs::read_to_string(dir.path().join("pools.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("idle warm instance-hours"));
    let again = chameleon(dir.path(), &args);
    assert_eq!(stdout(&again), stdout(&o), "the replay is deterministic");
}

#[test]
fn pools_replay_rejects_an_unknown_strategy() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = root().join("fixtures/jobs.csv");
    let o = chameleon(
        dir.path(),
        &[
            "pools",
            "replay",
            "--jobs",
            jobs.to_str().unwrap(),
            "--strategies",
            "keepalive,psychic",
        ],
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("unknown pool strategy `psychic`"),
        "{}",
        stderr(&o)
    );
}

/// A fleet with a `web` pool and a job log of one user who runs a 2-instance job every
/// five minutes up to `NOW`: the plan predicts a warm target for `web` and starts
/// instances, keeps the profiles under `models/`, says which job pools it cannot plan,
/// and an operator's `--pool-targets` overrides the prediction.
#[test]
fn plan_with_jobs_predicts_pool_targets() {
    let dir = workspace();
    with_web_pool(dir.path(), 8);
    let now = chrono::DateTime::parse_from_rfc3339(NOW)
        .unwrap()
        .timestamp();
    let mut jobs = String::from(
        "submit,start,user,program,code,pool,run_seconds,instances,cpu,mem,censored\n",
    );
    for k in (1..=600).rev() {
        let t = chrono::DateTime::from_timestamp(now - 300 * k, 0).unwrap();
        let t = t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        jobs += &format!("{t},{t},alice,sim,,web,60,2,,,false\n");
    }
    jobs += "2024-03-06T00:00:00Z,,bob,etl,,batch,60,1,,,false\n";
    std::fs::write(dir.path().join("jobs.csv"), &jobs).unwrap();
    let o = run_plan(dir.path(), NOW, &["--jobs", "jobs.csv"]);
    assert!(
        o.status.code() == Some(0) || o.status.code() == Some(2),
        "{}",
        stderr(&o)
    );
    let err = stderr(&o);
    assert!(err.contains("pool web: 0 running"), "{err}");
    assert!(
        err.contains("pool(s) not in the fleet were profiled but not planned: batch"),
        "{err}"
    );
    let plan = chameleon::plan::Plan::read(&dir.path().join(stdout(&o).trim())).unwrap();
    let pool = plan
        .actions
        .iter()
        .find(|a| a.instance == "web")
        .expect("a pool action");
    let Change::Pool { from, to } = pool.change else {
        panic!("{:?}", pool.change)
    };
    assert_eq!(from, 0.0);
    assert!((2.0..=8.0).contains(&to), "target {to}");
    let state = std::fs::read_to_string(dir.path().join("models/profiles.json")).unwrap();
    assert!(state.contains("\"alice\"") && state.contains("\"batch\""));
    std::fs::write(dir.path().join("targets.toml"), "web = 1\n").unwrap();
    let o = run_plan(
        dir.path(),
        NOW,
        &["--jobs", "jobs.csv", "--pool-targets", "targets.toml"],
    );
    let plan = chameleon::plan::Plan::read(&dir.path().join(stdout(&o).trim())).unwrap();
    let pool = plan
        .actions
        .iter()
        .find(|a| a.instance == "web")
        .expect("a pool action");
    assert_eq!(pool.change, Change::Pool { from: 0.0, to: 1.0 });
    // A missing warm instance that costs nothing is not worth starting one for.
    let model = std::fs::read_to_string(root().join("models/default.toml")).unwrap();
    let free = model.replace("cold_start_cost = 100.0", "cold_start_cost = 0.0");
    std::fs::write(dir.path().join("free.toml"), free).unwrap();
    let o = run_plan(
        dir.path(),
        NOW,
        &["--jobs", "jobs.csv", "--model", "free.toml"],
    );
    let plan = chameleon::plan::Plan::read(&dir.path().join(stdout(&o).trim())).unwrap();
    assert!(
        !plan.actions.iter().any(|a| a.instance == "web"),
        "{:?}",
        plan.actions
    );
    std::fs::write(
        dir.path().join("bad.csv"),
        jobs.replace(",2,,,false\n", ",-2,,,false\n"),
    )
    .unwrap();
    let o = run_plan(dir.path(), NOW, &["--jobs", "bad.csv"]);
    assert_fails(&o, "bad.csv:2", "instances");
}

/// `chameleon profile` adds a job log to the persisted profiles, once: a second run
/// adds nothing and shows the same table; `--json` carries the seed's factors.
#[test]
fn profile_updates_its_state_once_and_shows_users() {
    let dir = tempfile::tempdir().unwrap();
    let jobs = root().join("fixtures/jobs.csv");
    let args = [
        "profile",
        "--jobs",
        jobs.to_str().unwrap(),
        "--state",
        "p.json",
    ];
    let o = chameleon(dir.path(), &args);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("profile: 46 new job(s)"),
        "{}",
        stderr(&o)
    );
    let table = stdout(&o);
    assert!(table.starts_with("9 user(s), 46 job(s)\n"), "{table}");
    assert!(table.contains("default") && table.contains("u1"), "{table}");
    let again = chameleon(dir.path(), &args);
    assert!(
        stderr(&again).contains("profile: 0 new job(s)"),
        "{}",
        stderr(&again)
    );
    assert_eq!(stdout(&again), table);
    let o = chameleon(
        dir.path(),
        &["profile", "--state", "p.json", "--json", "--user", "u1"],
    );
    let rows: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 1);
    assert_eq!(rows[0]["user"], "u1");
    assert_eq!(rows[0]["seed_factors"].as_array().unwrap().len(), 4);
    let o = chameleon(
        dir.path(),
        &["profile", "--state", "p.json", "--user", "nobody"],
    );
    assert_fails(&o, "no profile for user `nobody`", "");
}
