//! Azure 2017 VM arrivals, as per-tenant batches per 5-minute bin (Huawei Cloud's
//! processing of Azure Public Dataset V1 `vmtable`).
//!
//! Two traces line up token for token: the flavor trace `X.txt` (`<t> g,g,|,b,|`: a
//! letter per VM, `|` ending one tenant's batch) and, beside it, the duration trace
//! `X.c<T>.txt` (`U<k>` lifetime bin k, or `C<k>`: still running at the cut-off T, k
//! being the bin of its age then). The maps come from `../maps/` beside the traces:
//! `flav_map.txt` (`vCPU,memGB letter`) and `<v>.interval_map.txt` (`seconds bin`, `<v>`
//! the traces' name up to the first dot). Conversions:
//! - submit = start = `--start` (default 2017-01-01T00:00:00Z, as `chameleon import
//!   azure`: one axis for the same trace) + t, the line's time;
//! - the VMs of one batch with the same flavor and lifetime token become one job of
//!   that many instances; user = the batch, `b<t>-<k>` (k-th batch of the line: the trace
//!   keeps no tenant ids); program = pool = the flavor, `<vCPU>c<mem GB>g`; cpu = vCPU,
//!   mem = GB × 1024 MiB per instance;
//! - run time = the midpoint of the seconds the bin lists, at most T − t (an uncensored
//!   VM ended before the cut-off); a censored VM's run time is T − t, its age at the
//!   cut-off, and it is marked censored. A censored bin that disagrees with T − t is
//!   counted.

use super::{count, offset, parse_error, read_text, Options};
use crate::file::FileError;
use crate::jobs::{Job, JobsError};
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// What importing VM arrival traces counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Flavor trace files read.
    pub files: u64,
    /// Lines (5-minute bins) read.
    pub bins: u64,
    /// 5-minute bins with no arrivals.
    pub empty_bins: u64,
    /// Tenant batches read.
    pub batches: u64,
    /// VMs read.
    pub vms: u64,
    /// Jobs kept (a batch's VMs of one flavor and lifetime token are one job).
    pub jobs: u64,
    /// Per file: where its clock starts, and its duration trace and cut-off.
    pub clocks: Vec<String>,
    /// VMs still running at the cut-off: run time = age at the cut-off, marked censored.
    pub censored: u64,
    /// Censored VMs whose age bin disagrees with their age at the cut-off: kept with the age.
    pub censored_bin_mismatch: u64,
    /// VMs of lifetime 0 s (gone within the 5-minute bin they arrived in): run time 0.
    pub bin_zero: u64,
    /// VMs whose bin midpoint ends past the cut-off they ended before: run time clipped to it.
    pub clipped: u64,
    /// Lines whose last batch has no closing `|`: closed at the line's end.
    pub open_batches: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "azure-vm-arrivals: {} VMs in {} tenant batches over {} 5-minute bins in {} file{}, \
             {} jobs kept (a batch's VMs of one flavor and lifetime bin are one job)",
            self.vms,
            self.batches,
            self.bins,
            self.files,
            if self.files == 1 { "" } else { "s" },
            self.jobs
        )?;
        for clock in &self.clocks {
            writeln!(f, "  {clock}")?;
        }
        for (n, what) in [
            (self.censored, "VMs still running at the cut-off (censored): run time = age at the cut-off, marked censored"),
            (self.censored_bin_mismatch, "censored VMs whose age bin disagrees with their age at the cut-off: kept with the age"),
            (self.bin_zero, "VMs of lifetime 0 s (gone within the 5-minute sample they arrived in): run time 0"),
            (self.clipped, "VMs whose bin midpoint ends past the cut-off they ended before: run time clipped to the cut-off"),
            (self.empty_bins, "5-minute bins with no arrivals"),
            (self.open_batches, "lines whose last batch has no closing `|`: closed at the line's end"),
        ] {
            count(f, n, what)?;
        }
        writeln!(
            f,
            "  users are batches (`b<seconds>-<k>`): the trace keeps no tenant ids"
        )
    }
}

/// The trace's year, as the Azure telemetry importer assumes.
fn default_start() -> DateTime<Utc> {
    "2017-01-01T00:00:00Z".parse().expect("a valid time")
}

/// One VM size of `flav_map.txt`.
#[derive(Debug, Clone)]
struct Flavor {
    name: String,
    cpu: f64,
    mem_mib: f64,
}

/// The seconds each lifetime bin lists, from `<v>.interval_map.txt`.
#[derive(Debug, Default)]
struct Bins {
    range: BTreeMap<u32, (f64, f64)>,
    /// Listed seconds → bin, to check a censored VM's bin against its age.
    of_seconds: BTreeMap<u64, u32>,
}

impl Bins {
    fn midpoint(&self, bin: u32) -> Option<f64> {
        self.range.get(&bin).map(|(lo, hi)| (lo + hi) / 2.0)
    }

    /// The bin of an age: the bin of the largest listed seconds at or below it.
    fn of_age(&self, seconds: u64) -> Option<u32> {
        self.of_seconds
            .range(..=seconds)
            .next_back()
            .map(|(_, &b)| b)
    }
}

/// Imports flavor traces, each with its duration trace and the maps beside them.
pub fn import(paths: &[PathBuf], opts: &Options) -> Result<(Vec<Job>, Report), JobsError> {
    let mut r = Report::default();
    let mut jobs = Vec::new();
    for path in paths {
        let before = jobs.len();
        import_file(path, opts, &mut jobs, &mut r)?;
        if jobs.len() == before {
            return Err(JobsError::Empty { path: path.clone() });
        }
        r.files += 1;
    }
    r.jobs = jobs.len() as u64;
    Ok((jobs, r))
}

/// The duration trace `X.c<T>.txt` beside the flavor trace `X.txt`, and T.
fn duration_trace(flavors: &Path) -> Result<(PathBuf, u64), JobsError> {
    let options = |m: String| JobsError::Options(format!("{}: {m}", flavors.display()));
    let name = flavors.file_name().unwrap_or_default().to_string_lossy();
    if cut_off(&name).is_some() {
        return Err(options(
            "is a duration trace; give the flavor trace (its duration trace is found beside it)"
                .into(),
        ));
    }
    let stem = name
        .strip_suffix(".txt")
        .ok_or_else(|| options("a flavor trace's name ends in `.txt`".into()))?;
    let dir = match flavors.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let entries = std::fs::read_dir(dir).map_err(|source| FileError::io(dir, source))?;
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let file = entry.file_name().to_string_lossy().into_owned();
        if let Some(t) = file
            .strip_prefix(stem)
            .filter(|rest| rest.starts_with(".c"))
            .and_then(|_| cut_off(&file))
        {
            found.push((dir.join(&file), t));
        }
    }
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(options(format!(
            "no duration trace `{stem}.c<T>.txt` beside it"
        ))),
        _ => Err(options(format!(
            "several duration traces `{stem}.c<T>.txt` beside it"
        ))),
    }
}

/// T of a duration trace's name `….c<T>.txt`.
fn cut_off(name: &str) -> Option<u64> {
    let digits = name.strip_suffix(".txt")?.rsplit_once(".c")?.1;
    digits.parse().ok()
}

fn import_file(
    path: &Path,
    opts: &Options,
    jobs: &mut Vec<Job>,
    r: &mut Report,
) -> Result<(), JobsError> {
    let (durations, cut) = duration_trace(path)?;
    let (flavors, bins) = read_maps(path)?;
    let origin = opts.start.unwrap_or_else(default_start);
    let why = if opts.start.is_some() {
        "--start"
    } else {
        "default: the Azure 2017 trace's year"
    };
    let name = |p: &Path| {
        p.file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned()
    };
    r.clocks.push(format!(
        "{}: clock from {} ({why}); durations {}, censored at {cut} s ({})",
        name(path),
        origin.to_rfc3339_opts(SecondsFormat::Secs, true),
        name(&durations),
        offset(origin, cut as f64)
            .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true))
            .unwrap_or_default()
    ));
    let text = read_text(path)?;
    let lives = read_text(&durations)?;
    let traces = Traces {
        flavors: path,
        durations: &durations,
        cut,
    };
    let mut a = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let mut b = lives
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ok(()),
            (Some((i, fl)), Some((j, du))) => {
                let line = traces.line((i, fl), (j, du))?;
                r.bins += 1;
                r.empty_bins += u64::from(line.tokens.is_empty());
                convert(&line, origin, &traces, (&flavors, &bins), jobs, r)?;
            }
            (Some((i, _)), None) => {
                let m = format!("{} ends before this line", durations.display());
                return Err(parse_error(path, i, m));
            }
            (None, Some((j, _))) => {
                let m = format!("{} ends before this line", path.display());
                return Err(parse_error(&durations, j, m));
            }
        }
    }
}

/// The two traces of one import and the duration trace's cut-off.
struct Traces<'a> {
    flavors: &'a Path,
    durations: &'a Path,
    cut: u64,
}

/// One 5-minute bin: its time and its (flavor, lifetime) tokens, `None` ending a batch.
struct Line<'a> {
    t: u64,
    tokens: Vec<Option<(&'a str, &'a str)>>,
    /// Line indexes in the flavor and duration traces, for errors.
    at: (usize, usize),
}

impl Traces<'_> {
    /// Pairs line `i` of the flavor trace with line `j` of the duration trace.
    fn line<'a>(
        &self,
        (i, fl): (usize, &'a str),
        (j, du): (usize, &'a str),
    ) -> Result<Line<'a>, JobsError> {
        let split = |l: &'a str| {
            let (t, rest) = l.trim().split_once(' ').unwrap_or((l.trim(), ""));
            let tokens: Vec<&str> = rest
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            (t, tokens)
        };
        let ((t, fs), (u, ds)) = (split(fl), split(du));
        let t: u64 = t.parse().map_err(|_| {
            parse_error(self.flavors, i, format!("time `{t}` is not whole seconds"))
        })?;
        if u.parse() != Ok(t) || fs.len() != ds.len() {
            let m = format!(
                "does not match line {} of {}: time {u} with {} tokens against time {t} with {}",
                i + 1,
                self.flavors.display(),
                ds.len(),
                fs.len()
            );
            return Err(parse_error(self.durations, j, m));
        }
        if t >= self.cut {
            let m = format!("arrival at {t} s is not before the cut-off {} s", self.cut);
            return Err(parse_error(self.flavors, i, m));
        }
        let mut tokens = Vec::with_capacity(fs.len());
        for (f, d) in fs.into_iter().zip(ds) {
            match (f == "|", d == "|") {
                (true, true) => tokens.push(None),
                (false, false) => tokens.push(Some((f, d))),
                _ => {
                    let m = format!("`{d}` stands where {} has `{f}`", self.flavors.display());
                    return Err(parse_error(self.durations, j, m));
                }
            }
        }
        Ok(Line {
            t,
            tokens,
            at: (i, j),
        })
    }
}

/// Groups one line's batches into jobs.
fn convert(
    line: &Line,
    origin: DateTime<Utc>,
    traces: &Traces,
    (flavors, bins): (&BTreeMap<String, Flavor>, &Bins),
    jobs: &mut Vec<Job>,
    r: &mut Report,
) -> Result<(), JobsError> {
    let submit =
        offset(origin, line.t as f64).map_err(|m| parse_error(traces.flavors, line.at.0, m))?;
    let age = traces.cut - line.t;
    let mut batch: Vec<((&str, &str), u32)> = Vec::new();
    let mut k = 0;
    r.open_batches += u64::from(line.tokens.last().is_some_and(Option::is_some));
    for token in line.tokens.iter().chain(std::iter::once(&None)) {
        match token {
            Some(pair) => {
                r.vms += 1;
                match batch.iter_mut().find(|(p, _)| p == pair) {
                    Some((_, n)) => *n += 1,
                    None => batch.push((*pair, 1)),
                }
            }
            None if batch.is_empty() => {}
            None => {
                let user = format!("b{}-{k}", line.t);
                for ((letter, life), n) in batch.drain(..) {
                    let flavor = flavors.get(letter).ok_or_else(|| {
                        let m = format!("unknown flavor `{letter}` (not in flav_map.txt)");
                        parse_error(traces.flavors, line.at.0, m)
                    })?;
                    let (run, censored) = lifetime(life, age, bins, n, r)
                        .map_err(|m| parse_error(traces.durations, line.at.1, m))?;
                    jobs.push(Job {
                        submit,
                        start: Some(submit),
                        user: user.clone(),
                        program: flavor.name.clone(),
                        code: None,
                        pool: flavor.name.clone(),
                        run_seconds: run,
                        instances: n,
                        cpu: Some(flavor.cpu),
                        mem: Some(flavor.mem_mib),
                        censored,
                    });
                }
                r.batches += 1;
                k += 1;
            }
        }
    }
    Ok(())
}

/// The run time of a lifetime token (`U<bin>` or `C<bin>`) of `n` VMs of age `age` at the
/// cut-off, and whether it is censored.
fn lifetime(
    token: &str,
    age: u64,
    bins: &Bins,
    n: u32,
    r: &mut Report,
) -> Result<(f64, bool), String> {
    let bad = || format!("lifetime `{token}` is not U<bin> or C<bin>");
    let (kind, bin) = token.split_at_checked(1).ok_or_else(bad)?;
    let bin: u32 = bin.parse().map_err(|_| bad())?;
    let mid = bins
        .midpoint(bin)
        .ok_or_else(|| format!("lifetime bin {bin} of `{token}` is not in the interval map"))?;
    let n = u64::from(n);
    match kind {
        "U" if mid > age as f64 => {
            r.clipped += n;
            Ok((age as f64, false))
        }
        "U" => {
            r.bin_zero += if mid == 0.0 { n } else { 0 };
            Ok((mid, false))
        }
        "C" => {
            r.censored += n;
            if bins.of_age(age) != Some(bin) {
                r.censored_bin_mismatch += n;
            }
            Ok((age as f64, true))
        }
        _ => Err(bad()),
    }
}

/// The flavor map and the interval map in `../maps/` beside the flavor trace.
fn read_maps(flavors: &Path) -> Result<(BTreeMap<String, Flavor>, Bins), JobsError> {
    let traces = match flavors.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let maps = traces.join("../maps");
    let name = flavors.file_name().unwrap_or_default().to_string_lossy();
    let version = name.split('.').next().unwrap_or_default();
    let flav = maps.join("flav_map.txt");
    let intervals = maps.join(format!("{version}.interval_map.txt"));
    let mut sizes = BTreeMap::new();
    for (i, line) in read_text(&flav)?.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (letter, flavor) = flavor(line).map_err(|m| parse_error(&flav, i, m))?;
        sizes.insert(letter, flavor);
    }
    let mut bins = Bins::default();
    for (i, line) in read_text(&intervals)?.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (seconds, bin) = interval(line).map_err(|m| parse_error(&intervals, i, m))?;
        let s = seconds as f64;
        let range = bins.range.entry(bin).or_insert((s, s));
        *range = (range.0.min(s), range.1.max(s));
        bins.of_seconds.insert(seconds, bin);
    }
    if sizes.is_empty() || bins.range.is_empty() {
        let empty = if sizes.is_empty() { flav } else { intervals };
        return Err(JobsError::Empty { path: empty });
    }
    Ok((sizes, bins))
}

/// `vCPU,memGB letter`.
fn flavor(line: &str) -> Result<(String, Flavor), String> {
    let bad = || format!("expected `vCPU,memGB letter`, found `{}`", line.trim());
    let (size, letter) = line.trim().split_once(' ').ok_or_else(bad)?;
    let (cpu, mem) = size.split_once(',').ok_or_else(bad)?;
    let cpu = crate::jobs::number(cpu, "vCPU")?;
    let mem = crate::jobs::number(mem, "memGB")?;
    let name = format!("{cpu}c{mem}g");
    crate::id::check(&name)?;
    let flavor = Flavor {
        name,
        cpu,
        mem_mib: mem * 1024.0,
    };
    Ok((letter.trim().to_owned(), flavor))
}

/// `seconds bin`.
fn interval(line: &str) -> Result<(u64, u32), String> {
    let mut parts = line.split_whitespace();
    let (Some(s), Some(b), None) = (parts.next(), parts.next(), parts.next()) else {
        return Err(format!("expected `seconds bin`, found `{}`", line.trim()));
    };
    let s = s
        .parse()
        .map_err(|_| format!("seconds `{s}` is not a whole number"))?;
    let b = b
        .parse()
        .map_err(|_| format!("bin `{b}` is not a whole number"))?;
    Ok((s, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLAVORS: &str = "1,0.75 a\n2,3.5 g\n";
    const INTERVALS: &str = "0 0\n300 1\n600 2\n900 3\n1200 3\n1500 3\n";

    /// Lays out `traces/v1.dev.txt`, `traces/v1.dev.c<cut>.txt` and `maps/` as the source does.
    fn layout(flavors: &str, durations: &str, cut: u64) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("traces")).unwrap();
        std::fs::create_dir_all(dir.path().join("maps")).unwrap();
        let trace = dir.path().join("traces/v1.dev.txt");
        std::fs::write(&trace, flavors).unwrap();
        std::fs::write(
            dir.path().join(format!("traces/v1.dev.c{cut}.txt")),
            durations,
        )
        .unwrap();
        std::fs::write(dir.path().join("maps/flav_map.txt"), FLAVORS).unwrap();
        std::fs::write(dir.path().join("maps/v1.interval_map.txt"), INTERVALS).unwrap();
        (dir, trace)
    }

    fn run(flavors: &str, durations: &str, cut: u64) -> Result<(Vec<Job>, Report), JobsError> {
        let (_dir, trace) = layout(flavors, durations, cut);
        import(&[trace], &Options::default())
    }

    #[test]
    fn batches_become_users_and_same_vms_one_job() {
        let (jobs, r) = run(
            "300 g,g,a,|,g,|\n600 a,|\n",
            "300 U1,U1,U0,|,U3,|\n600 U2,|\n",
            3000,
        )
        .unwrap();
        let got: Vec<(String, &str, &str, u32, f64)> = jobs
            .iter()
            .map(|j| {
                (
                    j.submit.to_rfc3339(),
                    j.user.as_str(),
                    j.program.as_str(),
                    j.instances,
                    j.run_seconds,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "2017-01-01T00:05:00+00:00".into(),
                    "b300-0",
                    "2c3.5g",
                    2,
                    300.0
                ),
                (
                    "2017-01-01T00:05:00+00:00".into(),
                    "b300-0",
                    "1c0.75g",
                    1,
                    0.0
                ),
                (
                    "2017-01-01T00:05:00+00:00".into(),
                    "b300-1",
                    "2c3.5g",
                    1,
                    1200.0
                ),
                (
                    "2017-01-01T00:10:00+00:00".into(),
                    "b600-0",
                    "1c0.75g",
                    1,
                    600.0
                ),
            ]
        );
        assert_eq!(
            (jobs[0].cpu, jobs[0].mem, jobs[0].pool.as_str()),
            (Some(2.0), Some(3584.0), "2c3.5g")
        );
        assert!(jobs
            .iter()
            .all(|j| !j.censored && j.start == Some(j.submit)));
        assert_eq!(
            (r.vms, r.batches, r.bins, r.jobs, r.bin_zero),
            (5, 3, 2, 4, 1)
        );
    }

    #[test]
    fn censored_lifetimes_run_to_the_cut_off_and_are_marked() {
        // Cut at 1200 s: the VM of 300 s is 900 s old then (bin 3), the one of 900 s is
        // 300 s old (bin 1), but the trace says bin 2: counted.
        let (jobs, r) = run("300 g,|\n900 a,|\n", "300 C3,|\n900 C2,|\n", 1200).unwrap();
        let got: Vec<(f64, bool)> = jobs.iter().map(|j| (j.run_seconds, j.censored)).collect();
        assert_eq!(got, [(900.0, true), (300.0, true)]);
        assert_eq!((r.censored, r.censored_bin_mismatch), (2, 1));
    }

    #[test]
    fn a_lifetime_ending_past_the_cut_off_is_clipped() {
        // Bin 3 lists 900-1500 s (midpoint 1200), but the VM of 600 s ended before 1500.
        let (jobs, r) = run("600 g,|\n", "600 U3,|\n", 1500).unwrap();
        assert_eq!((jobs[0].run_seconds, r.clipped), (900.0, 1));
    }

    #[test]
    fn empty_bins_and_open_batches_are_counted() {
        let (jobs, r) = run("300 \n600 g,g\n", "300 \n600 U1,U1\n", 3000).unwrap();
        assert_eq!((jobs.len(), jobs[0].instances), (1, 2));
        assert_eq!((r.empty_bins, r.open_batches, r.batches), (1, 1, 1));
    }

    #[test]
    fn mismatched_traces_and_unknown_tokens_name_file_and_line() {
        for (flavors, durations, expected) in [
            ("300 g,|\n600 g,|\n", "300 U1,|\n", "v1.dev.txt:2: "),
            (
                "300 g,|\n",
                "600 U1,|\n",
                "v1.dev.c3000.txt:1: does not match line 1",
            ),
            (
                "300 g,g,|\n",
                "300 U1,|\n",
                "v1.dev.c3000.txt:1: does not match line 1",
            ),
            (
                "300 g,|\n",
                "300 |,U1\n",
                "v1.dev.c3000.txt:1: `|` stands where",
            ),
            (
                "300 z,|\n",
                "300 U1,|\n",
                "v1.dev.txt:1: unknown flavor `z`",
            ),
            (
                "300 g,|\n",
                "300 U9,|\n",
                "v1.dev.c3000.txt:1: lifetime bin 9 of `U9` is not in the interval map",
            ),
            (
                "300 g,|\n",
                "300 X1,|\n",
                "v1.dev.c3000.txt:1: lifetime `X1` is not U<bin> or C<bin>",
            ),
            (
                "3000 g,|\n",
                "3000 U1,|\n",
                "v1.dev.txt:1: arrival at 3000 s is not before the cut-off 3000 s",
            ),
        ] {
            let e = run(flavors, durations, 3000).unwrap_err().to_string();
            assert!(e.contains(expected), "{e}\nexpected: {expected}");
        }
    }

    #[test]
    fn the_duration_trace_and_maps_are_found_beside_the_flavor_trace() {
        let (dir, _) = layout("300 g,|\n", "300 U1,|\n", 3000);
        let durations = dir.path().join("traces/v1.dev.c3000.txt");
        let e = import(&[durations], &Options::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("is a duration trace; give the flavor trace"),
            "{e}"
        );
        let lone = dir.path().join("traces/v2.test.txt");
        std::fs::write(&lone, "300 g,|\n").unwrap();
        let e = import(&[lone], &Options::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("no duration trace `v2.test.c<T>.txt` beside it"),
            "{e}"
        );
    }
}
