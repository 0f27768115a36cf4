//! Standard Workload Format (SWF, Parallel Workloads Archive) job logs.
//!
//! An SWF log is `;` header comments and then one job per line, 18 whitespace-separated
//! numbers with `-1` for unknown. Conversions:
//! - submit = the clock's origin + field 2 (seconds), the origin being `--start` or the
//!   header's `UnixStartTime` (an error when neither is given). Times are written in UTC;
//!   the header's `TimeZoneString` is reported, not applied.
//! - start = submit + wait (field 3); when the header's notes say the submit times are
//!   actually start times (as NASA iPSC's does), start = submit; otherwise empty.
//! - run time = field 4; instances = allocated processors (field 5), else the requested
//!   ones (field 8); cpu = average CPU time per processor (field 6) / run time, in cores;
//!   mem = used memory per processor (field 7, KB) / 1024, in MiB.
//! - user = `u<field 12>`, program = `p<field 14>` (`unknown` for -1); pool = the queue
//!   (field 15, named by a `Queue:` header line, else `queue<n>`), else the partition
//!   (field 16, likewise), else `--pool`.
//! - Dropped: partial-execution records (status 2-4; the job's summary line holds its
//!   whole run), cancelled jobs that never ran, jobs without a submit time, a run time or
//!   a processor count. Every drop and every substitution is counted in [`Report`].

use super::{count, offset, parse_error, read_text, Options};
use crate::jobs::{Job, JobsError};
use crate::units::round6;
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

const FIELDS: usize = 18;
const UNKNOWN: &str = "unknown";

/// What importing SWF files counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Files read.
    pub files: u64,
    /// Job lines read (not header comments or blank lines).
    pub lines: u64,
    /// Jobs kept.
    pub jobs: u64,
    /// Per file: where its clock starts and why, and the header's time zone.
    pub clocks: Vec<String>,
    /// Jobs started at their submit time, because the header says submit times are start
    /// times.
    pub submit_is_start: u64,
    /// Jobs without a wait time (-1): start left empty.
    pub wait_unknown: u64,
    /// Jobs that ran 0 s (under the log's 1 s resolution): kept.
    pub zero_run: u64,
    /// Jobs without a run time (negative): dropped.
    pub run_unknown: u64,
    /// Jobs cancelled before they ran (status 5, no run time or processors): dropped.
    pub cancelled_before_run: u64,
    /// Jobs cancelled while running (status 5): kept for the time they ran.
    pub cancelled_while_running: u64,
    /// Jobs that failed (status 0): kept.
    pub failed: u64,
    /// Partial-execution records (status 2–4): dropped, the summary line holds the whole run.
    pub partial_records: u64,
    /// Jobs without allocated processors: the requested count used.
    pub processors_requested: u64,
    /// Jobs with 0 or unknown processors, allocated and requested: dropped.
    pub no_processors: u64,
    /// Jobs without a submit time (-1): dropped.
    pub submit_unknown: u64,
    /// Jobs without a user id (-1): user `unknown`.
    pub user_unknown: u64,
    /// Jobs without an executable id (-1): program `unknown`.
    pub program_unknown: u64,
    /// Jobs without a queue or partition (-1): the `--pool` pool.
    pub default_pool: u64,
    /// Jobs without an average CPU time (-1) or with a 0 s run time: cpu left empty.
    pub cpu_unknown: u64,
    /// Jobs without used memory (-1): mem left empty.
    pub mem_unknown: u64,
    /// Job lines that repeat an earlier job number: kept.
    pub repeated_numbers: u64,
    /// Job lines submitted before the line above them: sorted.
    pub out_of_order: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "swf: {} job lines in {} file{}, {} jobs kept",
            self.lines,
            self.files,
            if self.files == 1 { "" } else { "s" },
            self.jobs
        )?;
        for clock in &self.clocks {
            writeln!(f, "  {clock}")?;
        }
        for (n, what) in [
            (self.partial_records, "partial-execution records (status 2-4): dropped, the job's summary line holds its whole run"),
            (self.submit_unknown, "jobs without a submit time (-1): dropped"),
            (self.cancelled_before_run, "jobs cancelled before they ran (status 5, no run time or processors): dropped"),
            (self.run_unknown, "jobs without a run time (negative): dropped"),
            (self.no_processors, "jobs with 0 or unknown processors, allocated and requested: dropped"),
            (self.cancelled_while_running, "jobs cancelled while running (status 5): kept for the time they ran"),
            (self.failed, "jobs failed (status 0): kept"),
            (self.zero_run, "jobs ran 0 s (under the log's 1 s resolution): kept"),
            (self.processors_requested, "jobs without allocated processors: the requested count used"),
            (self.submit_is_start, "jobs start at their submit time: the header says its submit times are start times"),
            (self.wait_unknown, "jobs without a wait time (-1): start left empty"),
            (self.user_unknown, "jobs without a user id (-1): user `unknown`"),
            (self.program_unknown, "jobs without an executable id (-1): program `unknown`"),
            (self.default_pool, "jobs without a queue or partition (-1): the default pool"),
            (self.cpu_unknown, "jobs without an average CPU time (-1) or with 0 s run time: cpu left empty"),
            (self.mem_unknown, "jobs without used memory (-1): mem left empty"),
            (self.repeated_numbers, "job lines repeat an earlier job number: kept"),
            (self.out_of_order, "job lines submitted before the line above them: sorted"),
        ] {
            count(f, n, what)?;
        }
        Ok(())
    }
}

/// What the `;` header comments say that the conversion needs.
#[derive(Debug, Default)]
struct Header {
    unix_start: Option<i64>,
    time_zone: Option<String>,
    queues: BTreeMap<i64, String>,
    partitions: BTreeMap<i64, String>,
    /// The notes say the submit times are start times (the log has no wait times).
    submit_is_start: bool,
}

impl Header {
    fn parse(path: &Path, text: &str) -> Result<Header, JobsError> {
        let mut h = Header::default();
        let mut notes = String::new();
        let mut key = String::new();
        for (i, line) in text.lines().enumerate() {
            let Some(comment) = line.trim_start().strip_prefix(';') else {
                continue;
            };
            let comment = comment.trim();
            let value = match comment.split_once(':') {
                Some((k, v)) if !k.is_empty() && !k.contains(char::is_whitespace) => {
                    key = k.to_owned();
                    v.trim()
                }
                // A line without its own key continues a note; a bare `;` ends one.
                _ if key == "Note" && !comment.is_empty() => comment,
                _ => {
                    key.clear();
                    continue;
                }
            };
            let bad = |what: &str| parse_error(path, i, format!("header {key}: {what}"));
            match key.as_str() {
                "UnixStartTime" => {
                    let t = value.parse().map_err(|_| bad("not unix seconds"))?;
                    h.unix_start = Some(t);
                }
                "TimeZoneString" => h.time_zone = Some(value.to_owned()),
                "Queue" => named(value, "queue", &mut h.queues).map_err(|m| bad(&m))?,
                "Partition" => named(value, "partition", &mut h.partitions).map_err(|m| bad(&m))?,
                "Note" => {
                    notes.push(' ');
                    notes.push_str(value);
                }
                _ => {}
            }
        }
        let notes = notes.to_lowercase();
        let notes: Vec<&str> = notes.split_whitespace().collect();
        h.submit_is_start = notes
            .join(" ")
            .contains("submit times are actually start times");
        Ok(h)
    }
}

/// Reads `<n> <name>` into `names`; a name that is not a safe id becomes `<kind><n>`.
fn named(value: &str, kind: &str, names: &mut BTreeMap<i64, String>) -> Result<(), String> {
    let (n, name) = value.split_once(char::is_whitespace).unwrap_or((value, ""));
    let n: i64 = n
        .parse()
        .map_err(|_| format!("`{n}` is not a {kind} number"))?;
    let name = name.trim();
    let name = if crate::id::check(name).is_ok() {
        name.to_owned()
    } else {
        format!("{kind}{n}")
    };
    names.insert(n, name);
    Ok(())
}

/// Imports SWF files (plain or gzip).
pub fn import(paths: &[PathBuf], opts: &Options) -> Result<(Vec<Job>, Report), JobsError> {
    let mut report = Report::default();
    let mut jobs = Vec::new();
    for path in paths {
        let before = jobs.len();
        import_file(path, opts, &mut jobs, &mut report)?;
        if jobs.len() == before {
            return Err(JobsError::Empty { path: path.clone() });
        }
    }
    report.jobs = jobs.len() as u64;
    Ok((jobs, report))
}

fn import_file(
    path: &Path,
    opts: &Options,
    jobs: &mut Vec<Job>,
    report: &mut Report,
) -> Result<(), JobsError> {
    let text = read_text(path)?;
    let header = Header::parse(path, &text)?;
    let origin = clock(path, &header, opts, report)?;
    report.files += 1;
    let mut numbers = HashSet::new();
    let mut last_submit = f64::NEG_INFINITY;
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') {
            continue;
        }
        report.lines += 1;
        let fields = fields(line).map_err(|m| parse_error(path, i, m))?;
        let Some(job) =
            convert(&fields, origin, &header, opts, report).map_err(|m| parse_error(path, i, m))?
        else {
            continue;
        };
        if !numbers.insert(fields[0].to_bits()) {
            report.repeated_numbers += 1;
        }
        if fields[1] < last_submit {
            report.out_of_order += 1;
        }
        last_submit = fields[1];
        jobs.push(job);
    }
    Ok(())
}

/// The time field 2 counts from: `--start`, else the header's `UnixStartTime`.
fn clock(
    path: &Path,
    header: &Header,
    opts: &Options,
    report: &mut Report,
) -> Result<DateTime<Utc>, JobsError> {
    let name = path
        .file_name()
        .unwrap_or(path.as_os_str())
        .to_string_lossy();
    let (origin, why) = match (opts.start, header.unix_start) {
        (Some(start), _) => (start, "--start".to_owned()),
        (None, Some(secs)) => {
            let t = DateTime::from_timestamp(secs, 0).ok_or_else(|| {
                JobsError::Options(format!(
                    "{}: header UnixStartTime {secs} is out of range",
                    path.display()
                ))
            })?;
            (t, format!("header UnixStartTime {secs}"))
        }
        (None, None) => {
            return Err(JobsError::Options(format!(
                "{}: the header has no UnixStartTime; give --start",
                path.display()
            )))
        }
    };
    let zone = match &header.time_zone {
        Some(z) => format!("; times in UTC, the header's zone is {z}"),
        None => String::new(),
    };
    report.clocks.push(format!(
        "{name}: clock from {} ({why}){zone}",
        origin.to_rfc3339_opts(SecondsFormat::Secs, true)
    ));
    Ok(origin)
}

/// The 18 numbers of a job line.
fn fields(line: &str) -> Result<[f64; FIELDS], String> {
    let parts: Vec<&str> = line.split_whitespace().collect();
    if parts.len() != FIELDS {
        return Err(format!("expected {FIELDS} fields, found {}", parts.len()));
    }
    let mut out = [0.0; FIELDS];
    for (k, p) in parts.iter().enumerate() {
        out[k] = p
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .ok_or_else(|| format!("field {} `{p}` is not a number", k + 1))?;
    }
    Ok(out)
}

/// The job of one line, or `None` when the line is dropped (and counted).
fn convert(
    f: &[f64; FIELDS],
    origin: DateTime<Utc>,
    header: &Header,
    opts: &Options,
    r: &mut Report,
) -> Result<Option<Job>, String> {
    let (submit, wait, run, allocated) = (f[1], f[2], f[3], f[4]);
    let (requested, status) = (f[7], f[10]);
    if matches!(status as i64, 2..=4) {
        r.partial_records += 1;
        return Ok(None);
    }
    if submit < 0.0 {
        r.submit_unknown += 1;
        return Ok(None);
    }
    let cancelled = status == 5.0;
    if cancelled && (run <= 0.0 || allocated <= 0.0) {
        r.cancelled_before_run += 1;
        return Ok(None);
    }
    if run < 0.0 {
        r.run_unknown += 1;
        return Ok(None);
    }
    let processors = if allocated > 0.0 {
        allocated
    } else if requested > 0.0 {
        r.processors_requested += 1;
        requested
    } else {
        r.no_processors += 1;
        return Ok(None);
    };
    r.cancelled_while_running += u64::from(cancelled);
    r.failed += u64::from(status == 0.0);
    r.zero_run += u64::from(run == 0.0);
    let submit_time = offset(origin, submit)?;
    let start = if header.submit_is_start {
        r.submit_is_start += 1;
        Some(submit_time)
    } else if wait >= 0.0 {
        Some(offset(origin, submit + wait)?)
    } else {
        r.wait_unknown += 1;
        None
    };
    let cpu = (f[5] >= 0.0 && run > 0.0).then(|| round6(f[5] / run));
    let mem = (f[6] >= 0.0).then(|| round6(f[6] / 1024.0));
    r.cpu_unknown += u64::from(cpu.is_none());
    r.mem_unknown += u64::from(mem.is_none());
    Ok(Some(Job {
        submit: submit_time,
        start,
        user: id(f[11], "u", "user id", &mut r.user_unknown)?,
        program: id(f[13], "p", "executable id", &mut r.program_unknown)?,
        code: None,
        pool: pool(f[14], f[15], header, opts, r)?,
        run_seconds: run,
        instances: whole(processors, "processors")?
            .try_into()
            .map_err(|_| format!("{processors} processors is too many"))?,
        cpu,
        mem,
        censored: false,
    }))
}

/// `<prefix><n>`, or `unknown` (counted) for a negative id.
fn id(v: f64, prefix: &str, what: &str, unknown: &mut u64) -> Result<String, String> {
    if v < 0.0 {
        *unknown += 1;
        return Ok(UNKNOWN.to_owned());
    }
    Ok(format!("{prefix}{}", whole(v, what)?))
}

/// The queue, else the partition, else the default pool (counted).
fn pool(
    queue: f64,
    partition: f64,
    header: &Header,
    opts: &Options,
    r: &mut Report,
) -> Result<String, String> {
    let pick = |v: f64, kind: &str, names: &BTreeMap<i64, String>| -> Result<String, String> {
        let n = whole(v, kind)?;
        Ok(names
            .get(&n)
            .cloned()
            .unwrap_or_else(|| format!("{kind}{n}")))
    };
    if queue >= 0.0 {
        pick(queue, "queue", &header.queues)
    } else if partition >= 0.0 {
        pick(partition, "partition", &header.partitions)
    } else {
        r.default_pool += 1;
        Ok(opts.pool().to_owned())
    }
}

fn whole(v: f64, what: &str) -> Result<i64, String> {
    if v.fract() != 0.0 || v.abs() > 9e15 {
        return Err(format!("{what} {v} is not a whole number"));
    }
    Ok(v as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str =
        "; Version: 2.2\n; UnixStartTime: 749458803\n; TimeZoneString: US/Pacific\n";

    /// A job line from the fields that matter, the rest -1.
    fn line(
        submit: i64,
        wait: i64,
        run: i64,
        procs: i64,
        status: i64,
        user: i64,
        exe: i64,
    ) -> String {
        let mut f = [-1i64; FIELDS];
        (f[0], f[1], f[2], f[3], f[4]) = (1, submit, wait, run, procs);
        (f[10], f[11], f[13]) = (status, user, exe);
        f.iter()
            .map(|v| format!("{v:>6}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// `line` with some fields (0-based) replaced.
    fn edit(line: &str, changes: &[(usize, &str)]) -> String {
        let mut f: Vec<&str> = line.split_whitespace().collect();
        for &(k, v) in changes {
            f[k] = v;
        }
        f.join(" ")
    }

    fn run(text: &str, opts: &Options) -> Result<(Vec<Job>, Report), JobsError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.swf");
        std::fs::write(&path, text).unwrap();
        import(&[path], opts)
    }

    fn ok(text: &str) -> (Vec<Job>, Report) {
        run(text, &Options::default()).unwrap()
    }

    #[test]
    fn unknown_fields_become_unknown_or_empty_and_are_counted() {
        let text = format!(
            "{HEADER}{}\n{}\n",
            line(0, -1, 1451, 128, -1, 1, -1),
            line(60, 5, 10, 1, 1, -1, 7)
        );
        let (jobs, r) = ok(&text);
        assert_eq!(jobs.len(), 2);
        let a = &jobs[0];
        assert_eq!(a.submit.to_rfc3339(), "1993-10-01T07:00:03+00:00");
        assert_eq!(
            (a.start, a.user.as_str(), a.program.as_str()),
            (None, "u1", "unknown")
        );
        assert_eq!(
            (a.run_seconds, a.instances, a.cpu, a.mem),
            (1451.0, 128, None, None)
        );
        assert_eq!(a.pool, "default");
        let b = &jobs[1];
        assert_eq!(b.start.unwrap().to_rfc3339(), "1993-10-01T07:01:08+00:00");
        assert_eq!((b.user.as_str(), b.program.as_str()), ("unknown", "p7"));
        assert_eq!(
            (r.wait_unknown, r.user_unknown, r.program_unknown),
            (1, 1, 1)
        );
        assert_eq!((r.default_pool, r.cpu_unknown, r.mem_unknown), (2, 2, 2));
        assert_eq!((r.lines, r.jobs), (2, 2));
    }

    #[test]
    fn cancelled_partial_and_processorless_jobs_are_dropped_and_counted() {
        let lines = [
            line(0, 0, -1, -1, 5, 1, 1), // cancelled before it ran
            line(1, 0, 30, 4, 5, 1, 1),  // cancelled while running: kept
            line(2, 0, 50, 4, 2, 1, 1),  // partial execution record
            line(3, 0, -1, 4, 1, 1, 1),  // no run time
            line(4, 0, 0, 4, 1, 1, 1),   // ran 0 s: kept
            line(5, 0, 9, 0, 1, 1, 1),   // 0 processors, none requested
            line(-1, 0, 9, 2, 1, 1, 1),  // no submit time
            line(6, 0, 9, 2, 0, 1, 1),   // failed: kept
        ];
        let (jobs, r) = ok(&format!("{HEADER}{}\n", lines.join("\n")));
        assert_eq!(
            jobs.iter().map(|j| j.run_seconds).collect::<Vec<_>>(),
            [30.0, 0.0, 9.0]
        );
        assert_eq!((r.cancelled_before_run, r.cancelled_while_running), (1, 1));
        assert_eq!((r.partial_records, r.run_unknown, r.zero_run), (1, 1, 1));
        assert_eq!((r.no_processors, r.submit_unknown, r.failed), (1, 1, 1));
        assert_eq!((r.lines, r.jobs), (8, 3));
    }

    #[test]
    fn zero_processors_fall_back_to_the_request() {
        let l = edit(&line(0, 0, 10, 0, 1, 1, 1), &[(7, "16")]);
        let (jobs, r) = ok(&format!("{HEADER}{l}\n"));
        assert_eq!((jobs[0].instances, r.processors_requested), (16, 1));
    }

    #[test]
    fn the_header_sets_the_clock_and_says_when_submit_is_start() {
        let note = "; Note: There is no information on wait times - the given submit\n;       times are actually start times\n;\n; Queue:  0  interactive    \n;\n";
        let (jobs, r) = ok(&format!(
            "{HEADER}{note}{}\n",
            line(3600, -1, 5, 1, -1, 2, 3)
        ));
        assert_eq!(jobs[0].submit.to_rfc3339(), "1993-10-01T08:00:03+00:00");
        assert_eq!(jobs[0].start, Some(jobs[0].submit));
        assert_eq!((r.submit_is_start, r.wait_unknown), (1, 0));
        assert_eq!(
            r.clocks,
            ["log.swf: clock from 1993-10-01T07:00:03Z (header UnixStartTime 749458803); times in UTC, the header's zone is US/Pacific"]
        );
        let opts = Options {
            start: Some("2024-03-04T00:00:00Z".parse().unwrap()),
            ..Options::default()
        };
        let (jobs, _) = run(
            &format!("{HEADER}{}\n", line(60, -1, 5, 1, -1, 2, 3)),
            &opts,
        )
        .unwrap();
        assert_eq!(jobs[0].submit.to_rfc3339(), "2024-03-04T00:01:00+00:00");
        let e = run(
            &format!("; Version: 2.2\n{}\n", line(0, -1, 5, 1, -1, 2, 3)),
            &Options::default(),
        );
        assert!(e
            .unwrap_err()
            .to_string()
            .ends_with("log.swf: the header has no UnixStartTime; give --start"));
    }

    #[test]
    fn queues_and_partitions_name_the_pool() {
        let header = format!("{HEADER}; Queue: 0 interactive\n; Queue: 1 batch queue\n");
        let lines: Vec<String> = [("0", "-1"), ("1", "-1"), ("7", "-1"), ("-1", "2")]
            .iter()
            .map(|&(q, p)| edit(&line(0, 0, 10, 1, 1, 1, 1), &[(14, q), (15, p)]))
            .collect();
        let (jobs, r) = ok(&format!("{header}{}\n", lines.join("\n")));
        let pools: Vec<&str> = jobs.iter().map(|j| j.pool.as_str()).collect();
        assert_eq!(pools, ["interactive", "queue1", "queue7", "partition2"]);
        assert_eq!(r.default_pool, 0);
    }

    #[test]
    fn cpu_time_and_memory_become_cores_and_mib() {
        let l = edit(&line(0, 0, 200, 4, 1, 1, 1), &[(5, "150"), (6, "2048")]);
        let (jobs, _) = ok(&format!("{HEADER}{l}\n"));
        assert_eq!((jobs[0].cpu, jobs[0].mem), (Some(0.75), Some(2.0)));
    }

    #[test]
    fn repeats_and_disorder_are_counted_and_sorted_later() {
        let text = format!(
            "{HEADER}{}\n{}\n",
            line(100, 0, 1, 1, 1, 1, 1),
            line(50, 0, 1, 1, 1, 1, 1)
        );
        let (_, r) = ok(&text);
        assert_eq!((r.repeated_numbers, r.out_of_order), (1, 1));
    }

    #[test]
    fn bad_lines_name_the_file_and_line() {
        for (body, expected) in [
            ("1 2 3\n", "log.swf:4: expected 18 fields, found 3"),
            (
                &*format!("{}\n", edit(&line(0, 0, 1, 1, 1, 1, 1), &[(0, "x")])),
                "log.swf:4: field 1 `x` is not a number",
            ),
            (
                &*format!("{}\n", edit(&line(0, 0, 1, 1, 1, 1, 1), &[(11, "1.5")])),
                "log.swf:4: user id 1.5 is not a whole number",
            ),
            (
                &*format!("{}\n", edit(&line(0, 0, 1, 1, 1, 1, 1), &[(3, "NaN")])),
                "log.swf:4: field 4 `NaN` is not a number",
            ),
        ] {
            let e = run(&format!("{HEADER}{body}"), &Options::default())
                .unwrap_err()
                .to_string();
            assert!(e.ends_with(expected), "{e}\nexpected: {expected}");
        }
        let e = run(HEADER, &Options::default()).unwrap_err().to_string();
        assert!(e.ends_with("log.swf: no jobs"), "{e}");
        let e = run("; UnixStartTime: soon\n", &Options::default())
            .unwrap_err()
            .to_string();
        assert!(
            e.ends_with("log.swf:1: header UnixStartTime: not unix seconds"),
            "{e}"
        );
    }
}
