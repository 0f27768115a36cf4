//! Azure Functions 2021 invocation traces (`app,func,end_timestamp,duration`).
//!
//! Each row is one invocation that ended `end_timestamp` seconds after the trace's start
//! and ran `duration` seconds, so it started at end − duration. Conversions: submit =
//! start = `--start` (default 2021-01-31T00:00:00Z, the trace's first day) + end −
//! duration, to the millisecond the trace records; run time = duration; user = app,
//! program = function (unique within its app), pool = `--pool`, one instance, cpu and
//! mem unknown. Invocations of 0 s and ones that started before the clock's origin are
//! kept and counted; repeated rows are dropped and counted.

use super::{count, millis, offset, parse_error, read_text, Options};
use crate::jobs::{number, Job, JobsError};
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};

const HEADER: &str = "app,func,end_timestamp,duration";

/// What importing Azure Functions traces counted.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    /// Files read.
    pub files: u64,
    /// Invocation rows read (not the header or blank lines).
    pub rows: u64,
    /// Jobs kept.
    pub jobs: u64,
    /// Where the clock starts and why.
    pub clock: String,
    /// Distinct apps (users).
    pub apps: u64,
    /// Distinct functions (programs), each counted within its app.
    pub functions: u64,
    /// Invocations of 0 s (under the trace's 1 ms resolution): kept.
    pub zero_duration: u64,
    /// Invocations started before the clock's origin (duration > end_timestamp): kept.
    pub before_origin: u64,
    /// Repeated rows (same app, function, end and duration): dropped.
    pub repeated: u64,
    /// Rows that start before the row above them: sorted.
    pub out_of_order: u64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "azure-functions: {} invocations in {} file{}, {} jobs kept",
            self.rows,
            self.files,
            if self.files == 1 { "" } else { "s" },
            self.jobs
        )?;
        writeln!(f, "  {}", self.clock)?;
        writeln!(
            f,
            "  {} apps (users), {} functions (programs)",
            self.apps, self.functions
        )?;
        for (n, what) in [
            (
                self.repeated,
                "repeated rows (same app, function, end and duration): dropped",
            ),
            (
                self.zero_duration,
                "invocations of 0 s (under the trace's 1 ms resolution): kept",
            ),
            (
                self.before_origin,
                "invocations started before the clock's origin (duration > end_timestamp): kept",
            ),
            (
                self.out_of_order,
                "rows start before the row above them: sorted",
            ),
        ] {
            count(f, n, what)?;
        }
        Ok(())
    }
}

/// The trace's first day: its timestamps count from the start of the two weeks.
fn default_start() -> DateTime<Utc> {
    "2021-01-31T00:00:00Z".parse().expect("a valid time")
}

/// Imports Azure Functions invocation CSV files.
pub fn import(paths: &[PathBuf], opts: &Options) -> Result<(Vec<Job>, Report), JobsError> {
    let origin = opts.start.unwrap_or_else(default_start);
    let why = if opts.start.is_some() {
        "--start"
    } else {
        "default: the trace's first day"
    };
    let mut r = Report {
        clock: format!(
            "clock from {} ({why})",
            origin.to_rfc3339_opts(SecondsFormat::Secs, true)
        ),
        ..Report::default()
    };
    let mut jobs = Vec::new();
    let mut seen = Seen::default();
    for path in paths {
        let before = jobs.len();
        import_file(path, origin, opts, &mut seen, &mut jobs, &mut r)?;
        if jobs.len() == before {
            return Err(JobsError::Empty { path: path.clone() });
        }
        r.files += 1;
    }
    r.jobs = jobs.len() as u64;
    (r.apps, r.functions) = (seen.apps.len() as u64, seen.functions.len() as u64);
    Ok((jobs, r))
}

/// Apps, functions and whole rows met so far.
#[derive(Default)]
struct Seen {
    apps: BTreeSet<String>,
    functions: BTreeSet<(String, String)>,
    rows: HashSet<(String, String, u64, u64)>,
}

fn import_file(
    path: &Path,
    origin: DateTime<Utc>,
    opts: &Options,
    seen: &mut Seen,
    jobs: &mut Vec<Job>,
    r: &mut Report,
) -> Result<(), JobsError> {
    let text = read_text(path)?;
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let Some((i, header)) = lines.next() else {
        return Err(JobsError::Empty {
            path: path.to_owned(),
        });
    };
    if header.trim() != HEADER {
        let message = format!("expected header `{HEADER}`, found `{}`", header.trim());
        return Err(parse_error(path, i, message));
    }
    let mut last_start = f64::NEG_INFINITY;
    for (i, line) in lines {
        r.rows += 1;
        let row = Row::parse(line).map_err(|m| parse_error(path, i, m))?;
        let key = (
            row.app.to_owned(),
            row.func.to_owned(),
            row.end.to_bits(),
            row.duration.to_bits(),
        );
        if !seen.rows.insert(key) {
            r.repeated += 1;
            continue;
        }
        seen.apps.insert(row.app.to_owned());
        seen.functions
            .insert((row.app.to_owned(), row.func.to_owned()));
        let start = millis(row.end - row.duration);
        r.zero_duration += u64::from(row.duration == 0.0);
        r.before_origin += u64::from(start < 0.0);
        r.out_of_order += u64::from(start < last_start);
        last_start = start;
        jobs.push(Job {
            submit: offset(origin, start).map_err(|m| parse_error(path, i, m))?,
            start: Some(offset(origin, start).map_err(|m| parse_error(path, i, m))?),
            user: row.app.to_owned(),
            program: row.func.to_owned(),
            code: None,
            pool: opts.pool().to_owned(),
            run_seconds: millis(row.duration),
            instances: 1,
            cpu: None,
            mem: None,
            censored: false,
        });
    }
    Ok(())
}

/// One invocation row.
struct Row<'a> {
    app: &'a str,
    func: &'a str,
    end: f64,
    duration: f64,
}

impl<'a> Row<'a> {
    fn parse(line: &'a str) -> Result<Row<'a>, String> {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        let [app, func, end, duration] = f[..] else {
            return Err(format!("expected 4 fields, found {}", f.len()));
        };
        crate::id::check(app).map_err(|m| format!("app: {m}"))?;
        crate::id::check(func).map_err(|m| format!("func: {m}"))?;
        Ok(Row {
            app,
            func,
            end: number(end, "end_timestamp")?,
            duration: number(duration, "duration")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str, opts: &Options) -> Result<(Vec<Job>, Report), JobsError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fn.csv");
        std::fs::write(&path, text).unwrap();
        import(&[path], opts)
    }

    #[test]
    fn an_invocation_starts_its_duration_before_its_end() {
        let text = "app,func,end_timestamp,duration\n\
                    a1,f2,6.2525410652160645,6.236\n\
                    a1,f1,57.15786004066467,57.154\n\
                    a2,f1,10.5,0\n";
        let (jobs, r) = run(text, &Options::default()).unwrap();
        let got: Vec<(String, &str, &str, f64)> = jobs
            .iter()
            .map(|j| {
                (
                    j.submit.to_rfc3339(),
                    j.user.as_str(),
                    j.program.as_str(),
                    j.run_seconds,
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                ("2021-01-31T00:00:00.017+00:00".into(), "a1", "f2", 6.236),
                ("2021-01-31T00:00:00.004+00:00".into(), "a1", "f1", 57.154),
                ("2021-01-31T00:00:10.500+00:00".into(), "a2", "f1", 0.0),
            ]
        );
        assert!(jobs
            .iter()
            .all(|j| j.start == Some(j.submit) && j.pool == "default"));
        assert_eq!((r.rows, r.jobs, r.apps, r.functions), (3, 3, 2, 3));
        assert_eq!(
            (r.zero_duration, r.out_of_order, r.before_origin),
            (1, 1, 0)
        );
    }

    #[test]
    fn start_pool_early_starts_and_repeats() {
        let opts = Options {
            start: Some("2024-03-04T00:00:00Z".parse().unwrap()),
            pool: Some("functions".into()),
        };
        let text = "app,func,end_timestamp,duration\na,f,1,3\na,f,1,3\n";
        let (jobs, r) = run(text, &opts).unwrap();
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].submit.to_rfc3339(), "2024-03-03T23:59:58+00:00");
        assert_eq!(jobs[0].pool, "functions");
        assert_eq!((r.before_origin, r.repeated), (1, 1));
        assert!(r.clock.ends_with("(--start)"), "{}", r.clock);
    }

    #[test]
    fn bad_rows_name_the_file_and_line() {
        for (text, expected) in [
            (
                "app,func,end,duration\n",
                "fn.csv:1: expected header `app,func,end_timestamp,duration`",
            ),
            (
                "app,func,end_timestamp,duration\na,f,1\n",
                "fn.csv:2: expected 4 fields, found 3",
            ),
            (
                "app,func,end_timestamp,duration\na,f,1,-2\n",
                "fn.csv:2: duration -2 is negative",
            ),
            (
                "app,func,end_timestamp,duration\na,f,x,2\n",
                "fn.csv:2: end_timestamp `x` is not a number",
            ),
            (
                "app,func,end_timestamp,duration\na b,f,1,2\n",
                "fn.csv:2: app: id `a b` has ` `",
            ),
            ("app,func,end_timestamp,duration\n", "fn.csv: no jobs"),
        ] {
            let e = run(text, &Options::default()).unwrap_err().to_string();
            assert!(e.contains(expected), "{e}\nexpected: {expected}");
        }
    }
}
