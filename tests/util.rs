//! Helpers shared by the integration tests: the real binary, scratch directories holding the
//! fixtures, golden files, and the seeded generator of the random problem builders. The
//! `tests` binary declares this module; `cgroups` and `fuzz`, which have their own harness,
//! include it with `#[path]`.

use chameleon::synth::rng::SplitMix;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The planning time of the fixtures: a plan made at `NOW` is applied at `LATER`.
pub(crate) const NOW: &str = "2024-03-07T00:00:00Z";
pub(crate) const LATER: &str = "2024-03-07T00:05:00Z";
pub(crate) const MIB: f64 = 1_048_576.0;

/// The package's root directory.
pub(crate) fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shipped fixtures.
pub(crate) fn fixtures() -> PathBuf {
    root().join("fixtures")
}

/// The real `chameleon` binary.
pub(crate) fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chameleon"))
}

/// Runs the real binary in `dir` with `args`.
pub(crate) fn chameleon(dir: &Path, args: &[&str]) -> Output {
    bin()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("the binary runs")
}

pub(crate) fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub(crate) fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Standard output followed by standard error.
pub(crate) fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Copies the fixture fleet and telemetry into `dir`.
pub(crate) fn copy_fixtures(dir: &Path) {
    for f in ["fleet.toml", "telemetry.csv"] {
        std::fs::copy(fixtures().join(f), dir.join(f)).unwrap();
    }
}

/// A scratch directory holding copies of the fixture fleet and telemetry.
pub(crate) fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    copy_fixtures(dir.path());
    dir
}

/// The default model without its percentage budget, so that a plan may change every
/// instance.
pub(crate) fn model_without_percentage_budget() -> String {
    chameleon::policy::DEFAULT.replace("max_changes_percent = 50.0", "max_changes_percent = 100.0")
}

/// Edits a plan through the library and re-signs it, as a forger who knows the digest scheme could.
pub(crate) fn forge(path: &Path, change: impl FnOnce(&mut chameleon::plan::Plan)) {
    let mut plan = chameleon::plan::Plan::read(path).unwrap();
    change(&mut plan);
    plan.plan.digest = plan.compute_digest();
    std::fs::write(path, plan.to_text()).unwrap();
}

/// Compares `actual` with the golden file `tests/golden/<name>`, rewriting it first under
/// `UPDATE_GOLDEN=1`.
pub(crate) fn assert_golden(name: &str, actual: &str) {
    let golden = root().join("tests/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&golden, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&golden).unwrap();
    if actual != expected {
        panic!(
            "output differs from {} (rerun with UPDATE_GOLDEN=1 to accept):\n{}",
            golden.display(),
            golden_diff(&expected, actual)
        );
    }
}

/// How `actual` differs from `expected`: both lengths, then the first ten lines that differ,
/// a line one of them lacks counting as differing.
fn golden_diff(expected: &str, actual: &str) -> String {
    fn line<'a>(lines: &[&'a str], n: usize) -> &'a str {
        lines.get(n).copied().unwrap_or("(none)")
    }
    let (e, a): (Vec<&str>, Vec<&str>) = (expected.lines().collect(), actual.lines().collect());
    let mut out = vec![format!(
        "expected {} lines ({} bytes), got {} lines ({} bytes)",
        e.len(),
        expected.len(),
        a.len(),
        actual.len()
    )];
    out.extend(
        (0..e.len().max(a.len()))
            .filter(|&n| e.get(n) != a.get(n))
            .take(10)
            .map(|n| {
                format!(
                    "line {}:\n  expected: {}\n  actual:   {}",
                    n + 1,
                    line(&e, n),
                    line(&a, n)
                )
            }),
    );
    if out.len() == 1 {
        out.push("every line agrees: the line ends differ".into());
    }
    out.join("\n")
}

/// The library's seeded generator, with the choices the random problem builders need.
pub(crate) struct Rng(SplitMix);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(SplitMix(seed))
    }

    pub(crate) fn below(&mut self, n: usize) -> usize {
        self.0.below(n)
    }

    pub(crate) fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.below(xs.len())]
    }

    pub(crate) fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}
