//! Fault tests of the real `chameleon apply`: SIGKILL at every durable boundary and at
//! random moments, then `--resume`; backend failures at every position, with rollback;
//! a corrupted ledger database; the fleet lock.
//!
//! The `exec` backend drives a fake hypervisor: a shell script whose only state is an
//! append-only log, one line per change. An append is the change's commit point, so the
//! log shows exactly which ops ran, and how often.

use crate::util::{copy_fixtures, model_without_percentage_budget, text, LATER, NOW};
use chameleon::fleet::Fleet;
use chameleon::resource::Resource;
use chameleon::synth::rng::SplitMix;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The fake hypervisor: `set LOG ACTION INSTANCE KEY VALUE` appends a line (after
/// `$FAKEVIRT_SLEEP` seconds; failing with exit 7 when `$FAKEVIRT_FAIL` is the action, or
/// the action and instance; hanging after the change when `$FAKEVIRT_HANG` is the action
/// and instance); `get LOG INSTANCE KEY` prints the key's latest value.
const FAKEVIRT: &str = r#"#!/bin/sh
cmd=$1; log=$2; shift 2
case $cmd in
set)
    sleep "${FAKEVIRT_SLEEP:-0}"
    if [ "$1" = "$FAKEVIRT_FAIL" ] || [ "$1 $2" = "$FAKEVIRT_FAIL" ]; then
        echo "refusing $1 on $2" >&2; exit 7
    fi
    echo "$1 $2 $3 $4" >> "$log"
    if [ "$1 $2" = "$FAKEVIRT_HANG" ]; then sleep 30; fi ;;
get)
    awk -v i="$1" -v k="$2" '$2 == i && $3 == k { v = $4 } END { print v }' "$log" ;;
esac
"#;

/// A scratch directory, in memory where the machine has /dev/shm: the faults injected are
/// process kills, which a RAM disk models as well as a real one, minus the fsync waits.
fn scratch() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    match shm.is_dir() {
        true => tempfile::tempdir_in(shm).unwrap(),
        false => tempfile::tempdir().unwrap(),
    }
}

/// `chameleon` built with the fault hooks.
fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chameleon-faults"))
}

/// A plan for the fixture, made once and copied into each trial's directory.
struct Template {
    dir: tempfile::TempDir,
    plan: String,
}

fn template() -> Template {
    let dir = scratch();
    copy_fixtures(dir.path());
    // No percentage budget and no shrink floor: a longer plan (swaps, resizes and a
    // migration) to crash inside.
    let model = model_without_percentage_budget()
        .replace("shrink_floor_hours = 12", "shrink_floor_hours = 0");
    std::fs::write(dir.path().join("model.toml"), model).unwrap();
    let o = bin()
        .args([
            "plan",
            "--fleet",
            "fleet.toml",
            "--telemetry",
            "telemetry.csv",
            "--model",
            "model.toml",
        ])
        .args(["--now", NOW, "--out-dir", "."])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.code() == Some(0), "{}", text(&o));
    let plan = String::from_utf8(o.stdout).unwrap().trim().to_owned();
    Template { dir, plan }
}

/// One trial's directory: the fleet, the plan, the fake hypervisor seeded with the fleet.
struct Trial {
    dir: tempfile::TempDir,
    plan: String,
    /// Write the fleet file every this many actions instead of only at the end.
    checkpoint_every: Option<usize>,
}

impl Template {
    fn trial(&self) -> Trial {
        let dir = scratch();
        std::fs::copy(
            self.dir.path().join("fleet.toml"),
            dir.path().join("fleet.toml"),
        )
        .unwrap();
        std::fs::copy(
            self.dir.path().join(&self.plan),
            dir.path().join("plan.toml"),
        )
        .unwrap();
        let fleet = Fleet::read(&dir.path().join("fleet.toml")).unwrap();
        let mut log = String::new();
        for i in &fleet.instances {
            for r in Resource::ALL {
                log += &format!("init {} {r} {}\n", i.id, i.resource(r).alloc);
            }
            log += &format!("init {} host {}\n", i.id, i.host);
        }
        std::fs::write(dir.path().join("virt.log"), log).unwrap();
        std::fs::write(dir.path().join("fakevirt.sh"), FAKEVIRT).unwrap();
        let (script, logp) = (dir.path().join("fakevirt.sh"), dir.path().join("virt.log"));
        let (s, l) = (script.display(), logp.display());
        let mut config = String::from("timeout_secs = 10\n");
        for r in Resource::ALL {
            config += &format!(
                "[resize.{r}]\napply = \"sh {s} set {l} {{action}} {{instance}} {r} {{to}}\"\nquery = \"sh {s} get {l} {{instance}} {r}\"\n"
            );
        }
        config += &format!(
            "[migrate]\napply = \"sh {s} set {l} {{action}} {{instance}} host {{to_host}}\"\nquery = \"sh {s} get {l} {{instance}} host\"\n"
        );
        std::fs::write(dir.path().join("exec.toml"), config).unwrap();
        Trial {
            dir,
            plan: "plan.toml".into(),
            checkpoint_every: None,
        }
    }
}

impl Trial {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn apply(&self, extra: &[&str]) -> Command {
        let mut c = bin();
        c.args(["apply", &self.plan, "--fleet", "fleet.toml", "--now", LATER])
            .args(["--backend", "exec", "--exec-config", "exec.toml"])
            .args(extra)
            .current_dir(self.dir.path())
            .stdin(Stdio::null());
        if let Some(n) = self.checkpoint_every {
            c.env("CHAMELEON_CHECKPOINT_EVERY", n.to_string());
        }
        c
    }

    fn ledger(&self) -> String {
        let o = bin()
            .args(["ledger", "--fleet", "fleet.toml"])
            .current_dir(self.dir.path())
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", text(&o));
        String::from_utf8(o.stdout).unwrap()
    }

    /// The changes the fake hypervisor made, in order (without the seeded values).
    fn changes(&self) -> Vec<String> {
        std::fs::read_to_string(self.path("virt.log"))
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("init "))
            .map(str::to_owned)
            .collect()
    }

    /// The hypervisor's current value of every key.
    fn virt_state(&self) -> std::collections::BTreeMap<String, String> {
        let log = std::fs::read_to_string(self.path("virt.log")).unwrap();
        log.lines()
            .map(|l| {
                let w: Vec<&str> = l.split(' ').collect();
                (format!("{} {}", w[1], w[2]), w[3].to_owned())
            })
            .collect()
    }

    fn fleet(&self) -> String {
        std::fs::read_to_string(self.path("fleet.toml")).unwrap()
    }

    /// Everything an apply leaves behind that must not depend on interruptions.
    fn outcome(&self) -> (String, String, Vec<String>) {
        (self.fleet(), self.ledger(), self.changes())
    }

    /// `apply --resume` without a plan: what is left of an interrupted run, if anything.
    fn resume_only(&self) -> Output {
        bin()
            .args(["apply", "--resume", "--fleet", "fleet.toml", "--now", LATER])
            .args(["--backend", "exec", "--exec-config", "exec.toml"])
            .current_dir(self.dir.path())
            .output()
            .unwrap()
    }

    /// Resumes, waiting for the lock: a command forked at the moment of the kill holds a
    /// copy of the lock's descriptor until it execs.
    fn resume(&self) -> Output {
        let o = self.apply(&["--resume", "--wait", "10"]).output().unwrap();
        assert!(o.status.success(), "resume failed: {}", text(&o));
        o
    }
}

fn reference(t: &Template) -> (Trial, (String, String, Vec<String>)) {
    let trial = t.trial();
    let o = trial.apply(&[]).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let outcome = trial.outcome();
    (trial, outcome)
}

#[test]
fn sigkill_at_every_boundary_and_at_random_then_resume_equals_uninterrupted() {
    let t = template();
    let (reference_trial, expected) = reference(&t);
    // The recording script saw each op of the plan exactly once, and the plan changed things.
    let ops: Vec<&str> = expected.2.iter().map(|l| l.as_str()).collect();
    let mut unique = ops.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ops.len(), "an op ran twice: {ops:?}");
    assert!(ops.len() >= 10, "{ops:?}");
    assert!(expected.1.contains("transfer"), "{}", expected.1);
    drop(reference_trial);

    // The fleet file is written at the end only (the fixture plan is short), or also every
    // third action: a kill then leaves it at a checkpoint behind the journal.
    let mut trials = 0;
    for (checkpoint_every, least) in [(None, 40), (Some(3), 44)] {
        let mut boundary = 1;
        loop {
            let mut trial = t.trial();
            trial.checkpoint_every = checkpoint_every;
            let o = trial
                .apply(&[])
                .env("CHAMELEON_CRASH_AFTER", boundary.to_string())
                .output()
                .unwrap();
            if o.status.success() {
                break;
            }
            assert_eq!(
                o.status.signal(),
                Some(9),
                "boundary {boundary}: {}",
                text(&o)
            );
            let resumed = trial.resume();
            assert!(
                text(&resumed).contains("(resumed)") || text(&resumed).contains("applied"),
                "{}",
                text(&resumed)
            );
            assert_eq!(
                trial.outcome(),
                expected,
                "after a kill at boundary {boundary} (checkpoints {checkpoint_every:?})"
            );
            trials += 1;
            boundary += 1;
        }
        assert!(boundary > least, "only {} boundaries", boundary - 1);
    }

    // Random moments: the fake hypervisor takes 20 ms per change, so kills land anywhere.
    let mut rng = SplitMix(6);
    let slow = t.trial();
    let start = Instant::now();
    assert!(slow
        .apply(&[])
        .env("FAKEVIRT_SLEEP", "0.02")
        .status()
        .unwrap()
        .success());
    let span = start.elapsed().as_millis() as usize;
    let mut killed = 0;
    for _ in 0..50 {
        let trial = t.trial();
        let mut child = trial
            .apply(&[])
            .env("FAKEVIRT_SLEEP", "0.02")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(rng.below(span) as u64));
        child.kill().unwrap();
        if child.wait().unwrap().signal() == Some(9) {
            killed += 1;
        }
        trial.resume();
        assert_eq!(trial.outcome(), expected, "after a random kill");
        trials += 1;
    }
    assert!(
        killed >= 30,
        "only {killed} of 50 random kills landed mid-apply"
    );
    assert!(trials >= 100);
    eprintln!(
        "{trials} crash trials: {} at boundaries, {killed} of 50 random kills mid-apply",
        trials - 50
    );
}

#[test]
fn a_failure_at_each_position_rolls_back_to_the_prior_state() {
    let t = template();
    let (reference_trial, expected) = reference(&t);
    drop(reference_trial);
    let fresh = t.trial();
    let (fleet0, virt0) = (fresh.fleet(), fresh.virt_state());
    // Fail each op in turn: a swap's second op fails after its first succeeded.
    eprintln!("failing each of {} ops in turn", expected.2.len());
    for (k, line) in expected.2.iter().enumerate() {
        let w: Vec<&str> = line.split(' ').collect();
        let fail = format!("{} {}", w[0], w[1]);
        let trial = t.trial();
        let o = trial
            .apply(&["--on-failure", "rollback"])
            .env("FAKEVIRT_FAIL", &fail)
            .output()
            .unwrap();
        let out = text(&o);
        assert_eq!(o.status.code(), Some(1), "{out}");
        assert!(
            out.contains(&format!("failed {}: `sh", w[0])) && out.contains("exit status: 7"),
            "{out}"
        );
        assert!(out.contains("rolled_back"), "{out}");
        assert_eq!(trial.fleet(), fleet0, "op {k} ({fail}): fleet not restored");
        assert_eq!(
            trial.virt_state(),
            virt0,
            "op {k} ({fail}): hypervisor not restored"
        );
        let ledger = trial.ledger();
        assert!(
            !ledger.contains("transfer") || ledger.contains("reversal"),
            "{ledger}"
        );
        // Every balance is back at its seed.
        let fleet = Fleet::read(&trial.path("fleet.toml")).unwrap();
        for i in &fleet.instances {
            let row = ledger
                .lines()
                .find(|l| l.split_whitespace().next() == Some(i.id.as_str()))
                .unwrap();
            let balance: f64 = row.split_whitespace().nth(1).unwrap().parse().unwrap();
            assert!((balance - i.credits).abs() < 1e-6, "{row}");
        }
        let again = trial.apply(&[]).output().unwrap();
        assert!(
            text(&again).contains("already ran on this fleet and was rolled_back"),
            "{}",
            text(&again)
        );
    }
}

#[test]
fn a_crash_during_rollback_resumes_the_rollback() {
    let t = template();
    let (reference_trial, expected) = reference(&t);
    drop(reference_trial);
    let fail = expected.2[expected.2.len() - 2]
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let fresh = t.trial();
    let (fleet0, virt0) = (fresh.fleet(), fresh.virt_state());
    for checkpoint_every in [None, Some(3)] {
        let mut boundary = 1;
        loop {
            let mut trial = t.trial();
            trial.checkpoint_every = checkpoint_every;
            let o = trial
                .apply(&["--on-failure", "rollback"])
                .env("FAKEVIRT_FAIL", &fail)
                .env("CHAMELEON_CRASH_AFTER", boundary.to_string())
                .output()
                .unwrap();
            if o.status.signal() != Some(9) {
                assert_eq!(o.status.code(), Some(1), "{}", text(&o));
                break;
            }
            let r = trial
                .apply(&["--resume", "--wait", "10"])
                .env("FAKEVIRT_FAIL", &fail)
                .output()
                .unwrap();
            assert!(
                text(&r).contains("rolled_back"),
                "boundary {boundary}: {}",
                text(&r)
            );
            let at = format!("boundary {boundary}, checkpoints {checkpoint_every:?}");
            assert_eq!(trial.fleet(), fleet0, "{at}");
            assert_eq!(trial.virt_state(), virt0, "{at}");
            boundary += 1;
        }
        assert!(boundary > 20, "{boundary}");
        eprintln!(
            "{} kills during a rollback after {fail} failed (checkpoints {checkpoint_every:?})",
            boundary - 1
        );
    }
}

#[test]
fn stop_keeps_the_completed_part_and_skips_dependants() {
    let t = template();
    let trial = t.trial();
    let plan = chameleon::plan::Plan::read(&trial.path("plan.toml")).unwrap();
    let failed = plan
        .actions
        .iter()
        .find(|a| plan.actions.iter().any(|b| b.depends_on.contains(&a.id)))
        .unwrap();
    let o = trial
        .apply(&[])
        .env("FAKEVIRT_FAIL", &failed.id)
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains(&format!("depends on failed {}", failed.id)),
        "{out}"
    );
    assert!(out.contains("stopped"), "{out}");
    // The fleet file holds the completed part, and its credits agree with the ledger.
    let fleet = Fleet::read(&trial.path("fleet.toml")).unwrap();
    assert!(fleet.last_plan.is_none());
    let ledger =
        chameleon::fleet::ledger::Ledger::open(&trial.path("fleet.ledger.sqlite")).unwrap();
    ledger.check_fleet(&fleet, Path::new("fleet.toml")).unwrap();
    let again = trial.apply(&[]).output().unwrap();
    assert!(
        text(&again).contains("was stopped; make a new plan"),
        "{}",
        text(&again)
    );
}

#[test]
fn a_corrupted_database_is_reported_with_its_name() {
    let t = template();
    let (trial, _) = reference(&t);
    let db = trial.path("fleet.ledger.sqlite");
    let good = std::fs::read(&db).unwrap();
    let mut bad = good.clone();
    bad[4096..8192].iter_mut().for_each(|b| *b = 0xA5);
    std::fs::write(&db, &bad).unwrap();
    for args in [
        vec!["ledger", "--fleet", "fleet.toml"],
        vec!["apply", "--resume", "--fleet", "fleet.toml"],
    ] {
        let o = bin()
            .args(&args)
            .current_dir(trial.dir.path())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1));
        assert!(
            text(&o).contains("fleet.ledger.sqlite: the ledger database is corrupt"),
            "{}",
            text(&o)
        );
    }
    std::fs::write(&db, &good[..good.len() / 2]).unwrap();
    let o = bin()
        .args(["ledger", "--fleet", "fleet.toml"])
        .current_dir(trial.dir.path())
        .output()
        .unwrap();
    assert!(
        text(&o).contains("fleet.ledger.sqlite: the ledger database is corrupt"),
        "{}",
        text(&o)
    );
    // A journal whose recorded plan was altered is refused on resume, not replayed.
    let trial = t.trial();
    let o = trial
        .apply(&[])
        .env("CHAMELEON_CRASH_AFTER", "3")
        .output()
        .unwrap();
    assert_eq!(o.status.signal(), Some(9));
    let o = bin()
        .args(["apply", "--resume", "--fleet", "fleet.toml"])
        .current_dir(trial.dir.path())
        .output()
        .unwrap();
    assert!(
        text(&o).contains("used the exec backend; resume it with `--backend exec`"),
        "{}",
        text(&o)
    );
    let o = trial.apply(&[]).output().unwrap();
    assert!(
        text(&o).contains("was interrupted; finish it with `chameleon apply --resume`"),
        "{}",
        text(&o)
    );
    let conn = rusqlite::Connection::open(trial.path("fleet.ledger.sqlite")).unwrap();
    conn.execute(
        "UPDATE run SET plan = replace(plan, 'reason = ', 'reason = \"forged\" # ')",
        [],
    )
    .unwrap();
    drop(conn);
    let before = trial.fleet();
    let o = trial.apply(&["--resume"]).output().unwrap();
    assert!(
        text(&o).contains("fleet.ledger.sqlite: the ledger database is corrupt: run 1: plan"),
        "{}",
        text(&o)
    );
    assert_eq!(trial.fleet(), before);
}

#[test]
fn an_interrupted_apply_blocks_planning_and_a_changed_fleet_file_stops_the_resume() {
    let t = template();
    let mut trial = t.trial();
    trial.checkpoint_every = Some(3);
    // Killed after a few actions; the file then holds a checkpoint or the starting fleet.
    let o = trial
        .apply(&[])
        .env("CHAMELEON_CRASH_AFTER", "20")
        .output()
        .unwrap();
    assert_eq!(o.status.signal(), Some(9), "{}", text(&o));
    // Until it is resumed, planning and copying balances refuse: the file may lag.
    for args in [
        vec![
            "plan",
            "--fleet",
            "fleet.toml",
            "--telemetry",
            "telemetry.csv",
        ],
        vec!["ledger", "--fleet", "fleet.toml", "--sync"],
    ] {
        let o = bin()
            .args(&args)
            .current_dir(trial.dir.path())
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(
            text(&o).contains("fleet.ledger.sqlite: an apply of plan")
                && text(&o).contains("was interrupted"),
            "{}",
            text(&o)
        );
    }
    let file = trial.path("fleet.toml");
    let mut fleet = Fleet::read(&file).unwrap();
    fleet.instances[0].credits += 1.0;
    fleet.write_atomic(&file).unwrap();
    let before = (trial.fleet(), trial.changes());
    let o = trial.apply(&["--resume"]).output().unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("fleet.toml: the fleet changed while the plan was being applied"),
        "{}",
        text(&o)
    );
    assert_eq!(
        (trial.fleet(), trial.changes()),
        before,
        "nothing more was applied"
    );
}

#[test]
fn a_second_apply_or_plan_waits_for_the_lock_or_fails_clearly() {
    let t = template();
    let trial = t.trial();
    let lock =
        chameleon::fleet::lock::FleetLock::acquire(&trial.path("fleet.toml"), Duration::ZERO)
            .unwrap();
    let before = trial.fleet();
    let o = trial.apply(&[]).output().unwrap();
    assert!(
        text(&o).contains("fleet.toml.lock: another chameleon process holds the fleet lock"),
        "{}",
        text(&o)
    );
    std::fs::copy(
        t.dir.path().join("telemetry.csv"),
        trial.path("telemetry.csv"),
    )
    .unwrap();
    let o = bin()
        .args([
            "plan",
            "--fleet",
            "fleet.toml",
            "--telemetry",
            "telemetry.csv",
            "--now",
            NOW,
        ])
        .current_dir(trial.dir.path())
        .output()
        .unwrap();
    assert!(text(&o).contains("holds the fleet lock"), "{}", text(&o));
    assert_eq!(trial.fleet(), before);
    assert!(!trial.path("fleet.ledger.sqlite").exists());
    let waiting = trial.apply(&["--wait", "30"]).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    drop(lock);
    assert!(waiting.wait_with_output().unwrap().status.success());
}

/// The record a ledger's steps keep, as `(action, status)`.
fn steps(db: &Path) -> Vec<(String, String)> {
    let conn = rusqlite::Connection::open(db).unwrap();
    let mut q = conn
        .prepare("SELECT action, status FROM step ORDER BY action")
        .unwrap();
    q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
}

#[test]
fn an_apply_interrupted_with_another_ledger_blocks_every_other_ledger() {
    let t = template();
    let (reference_trial, expected) = reference(&t);
    drop(reference_trial);
    let trial = t.trial();
    std::fs::copy(
        t.dir.path().join("telemetry.csv"),
        trial.path("telemetry.csv"),
    )
    .unwrap();
    std::fs::create_dir(trial.path("state")).unwrap();
    let custom = ["--ledger", "state/custom.sqlite"];
    let o = trial
        .apply(&custom)
        .env("CHAMELEON_CRASH_AFTER", "12")
        .output()
        .unwrap();
    assert_eq!(o.status.signal(), Some(9), "{}", text(&o));
    let ran = trial.changes();
    assert!(!ran.is_empty() && ran.len() < expected.2.len(), "{ran:?}");
    // Planning, copying balances, and applying or resuming with the default ledger all
    // refuse, naming the ledger that holds the run; nothing more runs.
    let plan = [
        "plan",
        "--fleet",
        "fleet.toml",
        "--telemetry",
        "telemetry.csv",
    ];
    let sync = ["ledger", "--fleet", "fleet.toml", "--sync"];
    for o in [
        bin()
            .args(plan)
            .current_dir(trial.dir.path())
            .output()
            .unwrap(),
        bin()
            .args(sync)
            .current_dir(trial.dir.path())
            .output()
            .unwrap(),
        trial.apply(&[]).output().unwrap(),
        trial.apply(&["--resume"]).output().unwrap(),
    ] {
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(
            text(&o).contains("with the ledger")
                && text(&o).contains("state/custom.sqlite was interrupted")
                && text(&o).contains("--ledger"),
            "{}",
            text(&o)
        );
    }
    assert_eq!(trial.changes(), ran, "nothing more ran");
    assert!(!trial.path("fleet.ledger.sqlite").exists());
    // Resumed with its ledger, it ends as an uninterrupted apply does: each op once.
    let o = trial.apply(&["--resume"]).args(custom).output().unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!((trial.fleet(), trial.changes()), (expected.0, expected.2));
    assert!(!trial.path("fleet.toml.applying").exists());
    // And the guard is gone: a plan goes ahead.
    let o = bin()
        .args(plan)
        .args(["--now", LATER, "--out-dir", "."])
        .current_dir(trial.dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn a_command_that_times_out_after_its_change_is_queried_and_undone() {
    let t = template();
    let trial = t.trial();
    let (fleet0, virt0) = (trial.fleet(), trial.virt_state());
    let config = std::fs::read_to_string(trial.path("exec.toml")).unwrap();
    std::fs::write(
        trial.path("exec.toml"),
        config.replace("timeout_secs = 10", "timeout_secs = 1"),
    )
    .unwrap();
    let plan = chameleon::plan::Plan::read(&trial.path("plan.toml")).unwrap();
    let swap = plan
        .actions
        .iter()
        .find(|a| a.kind() == chameleon::plan::Kind::Swap)
        .unwrap();
    // The swap's second op (the receiver's grow) makes its change, then hangs.
    let hang = format!("{} {}", swap.id, swap.instance);
    let o = trial
        .apply(&["--on-failure", "rollback"])
        .env("FAKEVIRT_HANG", &hang)
        .output()
        .unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("timed out after 1 s") && out.contains("rolled_back"),
        "{out}"
    );
    assert_eq!(
        trial.virt_state(),
        virt0,
        "the hypervisor holds the old values"
    );
    assert_eq!(trial.fleet(), fleet0);
    let grows = trial.changes();
    assert!(
        grows.iter().any(|l| l.starts_with(&hang)),
        "the hung command made its change: {grows:?}"
    );
    // Without a query command, the failure says the change is in doubt.
    let trial = t.trial();
    let config = std::fs::read_to_string(trial.path("exec.toml")).unwrap();
    let no_query: String = config
        .replace("timeout_secs = 10", "timeout_secs = 1")
        .lines()
        .filter(|l| !l.starts_with("query"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(trial.path("exec.toml"), no_query).unwrap();
    let o = trial
        .apply(&[])
        .env("FAKEVIRT_HANG", &hang)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("whether it took effect is in doubt"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_run_the_ledger_refuses_ends_instead_of_staying_running() {
    let t = template();
    let plan = chameleon::plan::Plan::read(&t.trial().path("plan.toml")).unwrap();
    let swap = plan
        .actions
        .iter()
        .find(|a| a.kind() == chameleon::plan::Kind::Swap && a.credits().unwrap_or(0.0) > 0.0)
        .unwrap();
    let donor = swap.donor().unwrap().to_owned();
    // Killed after the swap's ops ran, before its step was committed as done.
    let mut boundary = 1;
    let trial = loop {
        let trial = t.trial();
        let o = trial
            .apply(&[])
            .env("CHAMELEON_CRASH_AFTER", boundary.to_string())
            .output()
            .unwrap();
        assert_eq!(
            o.status.signal(),
            Some(9),
            "the swap never ran: {}",
            text(&o)
        );
        let db = trial.path("fleet.ledger.sqlite");
        let started = db.exists()
            && steps(&db).contains(&(swap.id.clone(), "started".into()))
            && trial
                .changes()
                .iter()
                .filter(|l| l.starts_with(&swap.id))
                .count()
                == 2;
        if started {
            break trial;
        }
        boundary += 1;
    };
    // The donor's cap, lowered to its balance, cannot take the swap's credits: every
    // commit of the swap is refused, as an older build's rounding could make it.
    let db = trial.path("fleet.ledger.sqlite");
    rusqlite::Connection::open(&db)
        .unwrap()
        .execute(
            "UPDATE account SET cap = balance WHERE instance = ?1",
            [&donor],
        )
        .unwrap();
    let o = trial.apply(&["--resume"]).output().unwrap();
    let out = text(&o);
    assert_eq!(o.status.code(), Some(1), "{out}");
    assert!(
        out.contains("outside [0,") && out.contains("stopped"),
        "{out}"
    );
    assert!(steps(&db).contains(&(swap.id.clone(), "failed".into())));
    // The run has ended: nothing is left to resume, and the swap's ops were undone.
    let again = trial.resume_only();
    assert!(
        text(&again).contains("nothing to resume"),
        "{}",
        text(&again)
    );
    let virt = trial.virt_state();
    let fleet = Fleet::read(&trial.path("fleet.toml")).unwrap();
    for i in &fleet.instances {
        for r in Resource::ALL {
            let held: f64 = virt[&format!("{} {r}", i.id)].parse().unwrap();
            assert!((held - i.resource(r).alloc).abs() < 1e-6, "{} {r}", i.id);
        }
    }
}

/// The dry run judges credits by the ledger's integer micro-credit rule, so a swap the
/// ledger would refuse is refused before anything runs, and one it accepts commits.
#[test]
fn credits_at_the_micro_credit_edge_are_judged_by_the_ledger_rule_before_anything_runs() {
    let t = template();
    let cases = [
        (
            "a donor 9e-7 over its cap",
            None,
            Some("would exceed its credit cap"),
        ),
        (
            "a payment of 5e-7 from 0",
            Some(0.0000005),
            Some("cannot pay 0.0000005"),
        ),
        ("a payment of 4e-7 from 0", Some(0.0000004), None),
    ];
    for (case, payment, refused) in cases {
        let trial = t.trial();
        let mut plan = chameleon::plan::Plan::read(&trial.path("plan.toml")).unwrap();
        let mut fleet = Fleet::read(&trial.path("fleet.toml")).unwrap();
        let a = plan
            .actions
            .iter_mut()
            .find(|a| a.kind() == chameleon::plan::Kind::Swap)
            .unwrap();
        let position = |id: &str| fleet.instances.iter().position(|i| i.id == id).unwrap();
        match payment {
            Some(credits) => {
                if let chameleon::plan::Change::Swap { credits: c, .. } = &mut a.change {
                    *c = credits;
                }
                let r = position(&a.instance);
                fleet.instances[r].credits = 0.0;
            }
            None => {
                let d = position(a.donor().unwrap());
                let cap = fleet.instances[d].credit_cap();
                fleet.instances[d].credits = cap - a.credits().unwrap() + 0.0000009;
            }
        }
        fleet.write_atomic(&trial.path("fleet.toml")).unwrap();
        plan.plan.fleet_fingerprint = fleet.fingerprint();
        plan.plan.digest = plan.compute_digest();
        std::fs::write(trial.path("plan.toml"), plan.to_text()).unwrap();
        let o = trial.apply(&[]).output().unwrap();
        match refused {
            None => {
                assert!(o.status.success(), "{case}: {}", text(&o));
                let after = Fleet::read(&trial.path("fleet.toml")).unwrap();
                chameleon::fleet::ledger::Ledger::open(&trial.path("fleet.ledger.sqlite"))
                    .unwrap()
                    .check_fleet(&after, Path::new("fleet.toml"))
                    .unwrap();
            }
            Some(why) => {
                assert_eq!(o.status.code(), Some(1), "{case}: {}", text(&o));
                assert!(text(&o).contains(why), "{case}: {}", text(&o));
                assert!(trial.changes().is_empty(), "{case}: nothing ran");
                let again = trial.resume_only();
                assert!(
                    text(&again).contains("nothing to resume"),
                    "{}",
                    text(&again)
                );
            }
        }
    }
}
