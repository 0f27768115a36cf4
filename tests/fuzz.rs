//! Mutation fuzzing of every input the program reads: telemetry CSV, fleet, model file, plan,
//! pool targets and exec config. A mutant is a real input with a few of: byte flips,
//! truncations, duplicated, deleted and swapped lines, numbers replaced by NaN, inf, huge,
//! negative or wrongly typed values, unknown keys, control characters, invalid UTF-8, a BOM,
//! CRLF line ends. Every mutant is read in process (plans are also re-signed, verified and
//! dry-run, so their values reach the executor's checks); every few go through the real
//! binary (`plan`, or `apply` for plans and exec configs). Any panic, hang or abort fails, and
//! so does an error that does not name the file it is about. A failing mutant is kept under
//! `target/fuzz-failures/`.
//!
//! Bounded for CI: `CHAMELEON_FUZZ_SECS` seconds per input (default 8), seed from
//! `CHAMELEON_FUZZ_SEED`. By hand, as long as you like:
//! `CHAMELEON_FUZZ_SECS=600 cargo test --release --test fuzz`.

// The `tests` binary's helpers; this binary uses some of them.
#[allow(dead_code)]
mod util;

use chameleon::executor::backend::Spec;
use chameleon::fleet::Fleet;
use chameleon::plan::Plan;
use chameleon::policy::Policy;
use chameleon::telemetry::Telemetry;
use libtest_mimic::{Arguments, Failed, Trial};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use util::{bin, fixtures, model_without_percentage_budget, Rng, LATER, NOW};

/// A read taking longer than this is a hang.
const HANG: Duration = Duration::from_secs(20);
/// One in this many mutants also goes through the binary.
const THROUGH_BINARY: u64 = 25;

/// The inputs, each with its file name and what reads it.
#[derive(Clone, Copy, Debug)]
enum Input {
    Telemetry,
    Fleet,
    Model,
    Plan,
    PoolTargets,
    ExecConfig,
}

const INPUTS: [Input; 6] = [
    Input::Telemetry,
    Input::Fleet,
    Input::Model,
    Input::Plan,
    Input::PoolTargets,
    Input::ExecConfig,
];

impl Input {
    fn file(self) -> &'static str {
        match self {
            Input::Telemetry => "telemetry.csv",
            Input::Fleet => "fleet.toml",
            Input::Model => "model.toml",
            Input::Plan => "plan.toml",
            Input::PoolTargets => "targets.toml",
            Input::ExecConfig => "exec.toml",
        }
    }
}

fn main() {
    let args = Arguments::from_args();
    let trials = INPUTS
        .iter()
        .map(|&input| Trial::test(format!("fuzz_{}", input.file()), move || fuzz(input)))
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

/// The fixture fleet with a pool, so that pool targets have something to aim at.
fn fleet_text() -> String {
    let fleet = std::fs::read_to_string(fixtures().join("fleet.toml")).unwrap();
    let host = Fleet::parse(Path::new("fleet.toml"), &fleet).unwrap().hosts[0]
        .id
        .clone();
    format!(
        "{fleet}\n[[pool]]\nid = \"web\"\nhost = \"{host}\"\nwarm = 1\ncold = 3\ncpu = 0.5\nmem = 512.0\nnet = 10.0\n"
    )
}

/// The last two days of the fixture telemetry: the part a plan at `NOW` reads.
fn telemetry_text() -> String {
    let text = std::fs::read_to_string(fixtures().join("telemetry.csv")).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let tail = lines.len().saturating_sub(4000).max(1);
    format!("{}\n{}\n", lines[0], lines[tail..].join("\n"))
}

fn exec_text() -> String {
    let mut text = String::from("timeout_secs = 5\n");
    for r in ["cpu", "mem", "net"] {
        text += &format!("[resize.{r}]\napply = \"true {{instance}} {{to}}\"\nquery = [\"echo\", \"{{from}}\"]\n");
    }
    text
        + "[migrate]\napply = \"true {instance} {to_host}\"\n[pool]\napply = \"true {pool} {to}\"\n"
}

/// `chameleon plan` on the workspace's inputs.
fn plan_args(command: &mut Command) -> &mut Command {
    command
        .args([
            "plan",
            "--fleet",
            "fleet.toml",
            "--telemetry",
            "telemetry.csv",
        ])
        .args(["--model", "model.toml", "--pool-targets", "targets.toml"])
        .args(["--now", NOW, "--out-dir", "."])
}

/// A scratch directory with every input in its unmutated form, and a plan made from them.
fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let p = |f: &str| dir.path().join(f);
    std::fs::write(p("fleet.toml"), fleet_text()).unwrap();
    std::fs::write(p("telemetry.csv"), telemetry_text()).unwrap();
    std::fs::write(p("model.toml"), model_without_percentage_budget()).unwrap();
    std::fs::write(p("targets.toml"), "# warm targets\nweb = 2\n").unwrap();
    std::fs::write(p("exec.toml"), exec_text()).unwrap();
    let o = plan_args(&mut bin())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let plan = String::from_utf8(o.stdout).unwrap();
    std::fs::rename(p(plan.trim()), p("plan.toml")).unwrap();
    dir
}

fn fuzz(input: Input) -> Result<(), Failed> {
    let secs: u64 = std::env::var("CHAMELEON_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(8);
    let seed: u64 = std::env::var("CHAMELEON_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let work = workspace();
    let original = std::fs::read(work.path().join(input.file())).unwrap();
    let fleet = Fleet::read(&work.path().join("fleet.toml")).unwrap();
    let mut rng = Rng::new(seed ^ (input as u64) << 32);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let (mut mutants, mut binary, mut refused) = (0u64, 0u64, 0u64);
    while Instant::now() < deadline || mutants < 100 {
        let mutant = mutate(&mut rng, &original, input);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(input.file());
        std::fs::write(&path, &mutant).unwrap();
        mutants += 1;
        let fail = |why: String| keep(input, &mutant, why);
        match read_in_process(input, &path, &fleet) {
            Outcome::Accepted => {}
            Outcome::Refused(message) => {
                refused += 1;
                if !message.contains(input.file()) {
                    return Err(fail(format!("the error does not name the file: {message}")));
                }
            }
            Outcome::Panicked(message) => return Err(fail(format!("panicked: {message}"))),
            Outcome::Hung => return Err(fail(format!("no answer in {HANG:?}"))),
        }
        if mutants % THROUGH_BINARY == 0 {
            binary += 1;
            through_binary(input, work.path(), dir.path()).map_err(fail)?;
        }
    }
    eprintln!(
        "{}: {mutants} mutants ({refused} refused, {} accepted), {binary} through the binary; 0 panics, 0 hangs",
        input.file(),
        mutants - refused
    );
    Ok(())
}

/// Saves a failing mutant and says where.
fn keep(input: Input, mutant: &[u8], why: String) -> Failed {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(input.file());
    std::fs::write(&path, mutant).unwrap();
    format!(
        "{}: {why} (mutant kept at {})",
        input.file(),
        path.display()
    )
    .into()
}

enum Outcome {
    Accepted,
    Refused(String),
    Panicked(String),
    Hung,
}

/// Reads the mutant as the program does, on a thread watched for panics and hangs.
fn read_in_process(input: Input, path: &Path, fleet: &Fleet) -> Outcome {
    let (path, fleet) = (path.to_owned(), fleet.clone());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let result = std::panic::catch_unwind(|| read(input, &path, &fleet));
        let _ = tx.send(result);
    });
    match rx.recv_timeout(HANG) {
        Ok(Ok(Ok(()))) => Outcome::Accepted,
        Ok(Ok(Err(message))) => Outcome::Refused(message),
        Ok(Err(panic)) => Outcome::Panicked(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default(),
        ),
        Err(_) => Outcome::Hung,
    }
}

fn read(input: Input, path: &Path, fleet: &Fleet) -> Result<(), String> {
    let now = NOW.parse().unwrap();
    let e = |e: &dyn std::fmt::Display| e.to_string();
    match input {
        Input::Telemetry => Telemetry::read(path).map(drop).map_err(|x| e(&x)),
        Input::Fleet => {
            let f = Fleet::read(path).map_err(|x| e(&x))?;
            f.check_changed_before(path, now).map_err(|x| e(&x))
        }
        Input::Model => Policy::read(path).map(drop).map_err(|x| e(&x)),
        Input::PoolTargets => chameleon::pools::targets::read_targets(path, fleet)
            .map(drop)
            .map_err(|x| e(&x)),
        Input::ExecConfig => Spec::Exec(path.to_owned())
            .open()
            .map(drop)
            .map_err(|x| e(&x)),
        Input::Plan => {
            // Re-signed, so that the mutated values reach verification and the dry run.
            let mut plan = Plan::read(path).map_err(|x| e(&x))?;
            plan.plan.digest = plan.compute_digest();
            let later = LATER.parse().unwrap();
            let verified = plan.verify(path, fleet, later).map_err(|x| e(&x))?;
            chameleon::executor::execute(&verified, fleet, path, &mut |_| {})
                .map(drop)
                .map_err(|x| e(&x))
        }
    }
}

/// Runs the real binary on the mutant in `dir` with the other inputs from `work`: it must
/// end in time, by itself, with success or an error naming a file.
fn through_binary(input: Input, work: &Path, dir: &Path) -> Result<(), String> {
    for f in INPUTS.map(Input::file) {
        if !dir.join(f).exists() {
            std::fs::copy(work.join(f), dir.join(f)).unwrap();
        }
    }
    let mut command = bin();
    command.current_dir(dir).stdin(Stdio::null());
    match input {
        Input::Plan | Input::ExecConfig => {
            if let Input::Plan = input {
                // Re-signed where it still parses, so the apply gets past the digest.
                if let Ok(mut plan) = Plan::read(&dir.join("plan.toml")) {
                    plan.plan.digest = plan.compute_digest();
                    std::fs::write(dir.join("plan.toml"), plan.to_text()).unwrap();
                }
            }
            command
                .args([
                    "apply",
                    "plan.toml",
                    "--fleet",
                    "fleet.toml",
                    "--now",
                    LATER,
                ])
                .args(["--backend", "exec", "--exec-config", "exec.toml"]);
        }
        _ => {
            plan_args(&mut command);
        }
    }
    let (status, stderr) = run_bounded(command, Duration::from_secs(120))?;
    match status.code() {
        Some(0 | 2) => Ok(()),
        Some(1) if INPUTS.iter().any(|i| stderr.contains(i.file())) => Ok(()),
        Some(1) => Err(format!(
            "`chameleon` failed without naming a file: {stderr}"
        )),
        _ => Err(format!("`chameleon` ended with {status}: {stderr}")),
    }
}

fn run_bounded(
    mut command: Command,
    limit: Duration,
) -> Result<(std::process::ExitStatus, String), String> {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok((status, reader.join().unwrap_or_default()));
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("`chameleon` did not end in {limit:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Values that have broken parsers before: not numbers, non-finite, huge, negative, the
/// edges of the integer types, wrong types.
const BAD_VALUES: [&str; 22] = [
    "nan",
    "NaN",
    "inf",
    "-inf",
    "-1",
    "-0",
    "0",
    "0.",
    "1e308",
    "-1e308",
    "1e-320",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551616",
    "99999999999999999999999",
    "\"x\"",
    "\"\"",
    "true",
    "[]",
    "{}",
    "2099-01-01T00:00:00Z",
];

/// `original` with one to three mutations.
fn mutate(rng: &mut Rng, original: &[u8], input: Input) -> Vec<u8> {
    let mut b = original.to_vec();
    for _ in 0..1 + rng.below(3) {
        let kind = rng.below(14);
        match kind {
            0 if !b.is_empty() => {
                let k = rng.below(b.len());
                b[k] ^= 1 << rng.below(8);
            }
            1 if !b.is_empty() => b.truncate(rng.below(b.len())),
            2..=4 => {
                let mut lines: Vec<Vec<u8>> =
                    b.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
                let k = rng.below(lines.len());
                match kind {
                    2 => {
                        let copies = if rng.chance(10) { 50 } else { 1 };
                        for _ in 0..copies {
                            lines.insert(k, lines[k].clone());
                        }
                    }
                    3 => {
                        lines.remove(k);
                    }
                    _ => {
                        let j = rng.below(lines.len());
                        lines.swap(k, j);
                    }
                }
                b = lines.join(&b'\n');
            }
            5..=7 => replace_value(rng, &mut b),
            8 => {
                let line: &[u8] = match input {
                    Input::Telemetry => b"2024-03-06T23:00:00Z,vm-x,cpu,1\n",
                    _ => b"bogus_key = 1\n",
                };
                let at = line_start(rng, &b);
                b.splice(at..at, line.iter().copied());
            }
            9 => {
                let c = rng.pick(&[0u8, 7, 0x1b, 0x7f, b'\r', b'\t', b'"', b'\\', b',', b'[']);
                let at = rng.below(b.len() + 1);
                b.insert(at, c);
            }
            10 => {
                let at = rng.below(b.len() + 1);
                b.splice(at..at, [0xffu8, 0xfe]);
            }
            11 => {
                if !b.starts_with(b"\xEF\xBB\xBF") {
                    b.splice(0..0, *b"\xEF\xBB\xBF");
                }
            }
            12 => {
                let text = String::from_utf8_lossy(&b)
                    .replace("\r\n", "\n")
                    .replace('\n', "\r\n");
                b = text.into_bytes();
            }
            _ => {
                // A key, id or field repeated: copy one line over another.
                let mut lines: Vec<Vec<u8>> =
                    b.split(|&c| c == b'\n').map(<[u8]>::to_vec).collect();
                let (k, j) = (rng.below(lines.len()), rng.below(lines.len()));
                lines[j] = lines[k].clone();
                b = lines.join(&b'\n');
            }
        }
    }
    b
}

/// The start of a random line of `b`.
fn line_start(rng: &mut Rng, b: &[u8]) -> usize {
    let starts: Vec<usize> = std::iter::once(0)
        .chain(
            b.iter()
                .enumerate()
                .filter(|(_, &c)| c == b'\n')
                .map(|(k, _)| k + 1),
        )
        .collect();
    starts[rng.below(starts.len())]
}

/// Replaces a random number, quoted string or boolean in `b` with a bad value.
fn replace_value(rng: &mut Rng, b: &mut Vec<u8>) {
    let tokens = tokens(b);
    if tokens.is_empty() {
        return;
    }
    let (from, to) = tokens[rng.below(tokens.len())];
    let value = rng.pick(&BAD_VALUES);
    b.splice(from..to, value.bytes());
}

/// Where the numbers (with sign, point and exponent), quoted strings and booleans of `b` are.
fn tokens(b: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut k = 0;
    while k < b.len() {
        let c = b[k];
        let start = k;
        if c.is_ascii_digit() || (c == b'-' && b.get(k + 1).is_some_and(u8::is_ascii_digit)) {
            k += 1;
            while k < b.len() && (b[k].is_ascii_alphanumeric() || b"+-.:".contains(&b[k])) {
                k += 1;
            }
            out.push((start, k));
        } else if c == b'"' {
            k += 1;
            while k < b.len() && b[k] != b'"' && b[k] != b'\n' {
                k += 1;
            }
            k = (k + 1).min(b.len());
            out.push((start, k));
        } else if b[k..].starts_with(b"true") || b[k..].starts_with(b"false") {
            k += if c == b't' { 4 } else { 5 };
            out.push((start, k));
        } else {
            k += 1;
        }
    }
    out
}
