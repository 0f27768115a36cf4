//! Job history: the canonical jobs CSV that the job importers write and the profiler reads.
//!
//! The public job logs (a batch system's SWF log, serverless invocations, VM arrivals)
//! each say who ran what, when, for how long and on how much in their own way; this
//! module is the one shape they all become, so that profiling and pool replay see one
//! kind of row. One row per job:
//! `submit,start,user,program,code,pool,run_seconds,instances,cpu,mem,censored`.
//! Reading is strict about content (bad times, negative or non-finite numbers, missing
//! or unknown columns and unsafe ids are errors naming file and line) and keeps the
//! file's order.

pub mod import;

use crate::file::FileError;
use chrono::{DateTime, SecondsFormat, Utc};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The columns of the canonical jobs CSV, in the order they are written.
pub const COLUMNS: [&str; 11] = [
    "submit",
    "start",
    "user",
    "program",
    "code",
    "pool",
    "run_seconds",
    "instances",
    "cpu",
    "mem",
    "censored",
];

/// One job: a request for `instances` instances of one pool, held for `run_seconds`.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// When the job was submitted (or, for sources that know only that, started).
    pub submit: DateTime<Utc>,
    /// When it started running, if the source says; never before `submit`.
    pub start: Option<DateTime<Utc>>,
    /// Who submitted it (an id).
    pub user: String,
    /// The executable, function or VM size the job ran.
    pub program: String,
    /// A path to the program's code, where the source gives one.
    pub code: Option<String>,
    /// The pool of instances that serves it (an id).
    pub pool: String,
    /// How long it held its instances, in seconds; a lower bound when `censored`.
    pub run_seconds: f64,
    /// Instances (processors, VMs) it held at once, at least 1.
    pub instances: u32,
    /// Cores each instance used, where known.
    pub cpu: Option<f64>,
    /// MiB each instance used, where known.
    pub mem: Option<f64>,
    /// Still running when the log ends: the true run time is longer than `run_seconds`.
    pub censored: bool,
}

/// Errors reading, writing or importing jobs. Every variant but `Options` names the file.
#[derive(Debug, thiserror::Error)]
pub enum JobsError {
    /// Reading, writing or parsing a file failed.
    #[error(transparent)]
    File(#[from] crate::file::FileError),
    /// The import options are invalid; the message says how.
    #[error("{0}")]
    Options(String),
    /// The file holds no jobs.
    #[error("{path}: no jobs")]
    Empty {
        /// The jobs file.
        path: PathBuf,
    },
}

/// Reads a canonical jobs CSV file.
pub fn read(path: &Path) -> Result<Vec<Job>, JobsError> {
    let file = std::fs::File::open(path).map_err(|source| FileError::io(path, source))?;
    from_reader(path, std::io::BufReader::new(file))
}

/// Parses canonical jobs CSV from any reader; `path` is used in messages.
pub fn from_reader(path: &Path, reader: impl Read) -> Result<Vec<Job>, JobsError> {
    let parse = |line: u64, message: String| {
        JobsError::from(FileError::invalid(path, line as usize, message))
    };
    let csv_error = |e: csv::Error| match e.kind() {
        csv::ErrorKind::Io(_) => FileError::io(path, std::io::Error::other(e.to_string())).into(),
        _ => parse(e.position().map_or(1, |p| p.line()), csv_message(&e)),
    };
    let mut rdr = csv::ReaderBuilder::new().from_reader(reader);
    let header = rdr.headers().map_err(csv_error)?.clone();
    if header.iter().all(str::is_empty) {
        return Err(JobsError::Empty {
            path: path.to_owned(),
        });
    }
    let columns = Columns::new(&header).map_err(|m| parse(1, m))?;
    let mut jobs = Vec::new();
    for record in rdr.records() {
        let record = record.map_err(csv_error)?;
        let line = record.position().map_or(0, |p| p.line());
        jobs.push(columns.job(&record).map_err(|m| parse(line, m))?);
    }
    if jobs.is_empty() {
        return Err(JobsError::Empty {
            path: path.to_owned(),
        });
    }
    Ok(jobs)
}

/// Writes `jobs` as canonical CSV, in the order given.
pub fn write_csv(out: impl Write, jobs: &[Job]) -> std::io::Result<()> {
    let mut w = csv::Writer::from_writer(out);
    w.write_record(COLUMNS)?;
    let time = |t: DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::AutoSi, true);
    let optional = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
    for j in jobs {
        w.write_record([
            time(j.submit),
            j.start.map(time).unwrap_or_default(),
            j.user.clone(),
            j.program.clone(),
            j.code.clone().unwrap_or_default(),
            j.pool.clone(),
            j.run_seconds.to_string(),
            j.instances.to_string(),
            optional(j.cpu),
            optional(j.mem),
            j.censored.to_string(),
        ])?;
    }
    w.flush()
}

/// The csv crate's message without the position it adds (the error names the line).
fn csv_message(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("expected {expected_len} fields, found {len}"),
        csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_owned(),
        _ => e.to_string(),
    }
}

/// Where each column sits in the file's header.
struct Columns([usize; COLUMNS.len()]);

impl Columns {
    /// Maps the header; a missing, repeated or unknown column is an error.
    fn new(header: &csv::StringRecord) -> Result<Columns, String> {
        let mut at = [usize::MAX; COLUMNS.len()];
        for (i, name) in header.iter().enumerate() {
            let k = COLUMNS
                .iter()
                .position(|c| *c == name.trim())
                .ok_or_else(|| {
                    format!(
                        "unknown column `{}` (the columns are {})",
                        name.escape_default(),
                        COLUMNS.join(",")
                    )
                })?;
            if at[k] != usize::MAX {
                return Err(format!("column `{name}` appears twice"));
            }
            at[k] = i;
        }
        let missing: Vec<&str> = (0..COLUMNS.len())
            .filter(|&k| at[k] == usize::MAX)
            .map(|k| COLUMNS[k])
            .collect();
        if !missing.is_empty() {
            return Err(format!("missing column `{}`", missing.join("`, `")));
        }
        Ok(Columns(at))
    }

    /// The field of column `name`, untrimmed.
    fn raw<'r>(&self, r: &'r csv::StringRecord, name: &str) -> &'r str {
        let k = COLUMNS
            .iter()
            .position(|c| *c == name)
            .expect("a known column");
        r.get(self.0[k]).unwrap_or("")
    }

    /// The job of one record; every field but `code` (which may hold any text on one
    /// line) is trimmed.
    fn job(&self, r: &csv::StringRecord) -> Result<Job, String> {
        let f = |name: &str| self.raw(r, name).trim();
        let submit = time(f("submit"), "submit")?;
        let start = optional(f("start"), |s| time(s, "start"))?;
        if start.is_some_and(|s| s < submit) {
            return Err(format!(
                "start {} is before submit {}",
                f("start"),
                f("submit")
            ));
        }
        Ok(Job {
            submit,
            start,
            user: id(f("user"), "user")?,
            program: id(f("program"), "program")?,
            code: optional(self.raw(r, "code"), code)?,
            pool: id(f("pool"), "pool")?,
            run_seconds: number(f("run_seconds"), "run_seconds")?,
            instances: instances(f("instances"))?,
            cpu: optional(f("cpu"), |s| number(s, "cpu"))?,
            mem: optional(f("mem"), |s| number(s, "mem"))?,
            censored: match f("censored") {
                "true" => true,
                "false" => false,
                other => return Err(format!("censored `{other}` is not `true` or `false`")),
            },
        })
    }
}

fn optional<T>(
    field: &str,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<Option<T>, String> {
    if field.is_empty() {
        Ok(None)
    } else {
        parse(field).map(Some)
    }
}

fn time(field: &str, name: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(field)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("{name} `{field}` is not an RFC 3339 time"))
}

fn id(field: &str, name: &str) -> Result<String, String> {
    crate::id::check(field).map_err(|m| format!("{name}: {m}"))?;
    Ok(field.to_owned())
}

/// A code path may be any text on one line.
fn code(field: &str) -> Result<String, String> {
    match field.chars().find(|c| c.is_control()) {
        Some(c) => Err(format!(
            "code `{}` has the control character `{}`",
            field.escape_default(),
            c.escape_default()
        )),
        None => Ok(field.to_owned()),
    }
}

/// Parses a finite number >= 0.
pub(crate) fn number(field: &str, name: &str) -> Result<f64, String> {
    let value: f64 = field
        .parse()
        .map_err(|_| format!("{name} `{field}` is not a number"))?;
    if !value.is_finite() {
        return Err(format!("{name} `{field}` is not finite"));
    }
    if value < 0.0 {
        return Err(format!("{name} {value} is negative"));
    }
    Ok(value)
}

fn instances(field: &str) -> Result<u32, String> {
    match field.parse::<u32>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "instances `{field}` is not a whole number of at least 1"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HEADER: &str =
        "submit,start,user,program,code,pool,run_seconds,instances,cpu,mem,censored";

    fn job() -> Job {
        Job {
            submit: "1993-10-01T07:00:03Z".parse().unwrap(),
            start: Some("1993-10-01T07:00:03Z".parse().unwrap()),
            user: "u1".into(),
            program: "p7".into(),
            code: Some("/home/u1/a, b.f".into()),
            pool: "default".into(),
            run_seconds: 1451.0,
            instances: 128,
            cpu: Some(0.5),
            mem: None,
            censored: false,
        }
    }

    fn to_text(jobs: &[Job]) -> String {
        let mut out = Vec::new();
        write_csv(&mut out, jobs).unwrap();
        String::from_utf8(out).unwrap()
    }

    fn err(text: &str) -> String {
        from_reader(Path::new("jobs.csv"), text.as_bytes())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn writes_the_documented_columns_and_reads_them_back() {
        let text = to_text(&[job()]);
        assert_eq!(
            text,
            format!(
                "{HEADER}\n1993-10-01T07:00:03Z,1993-10-01T07:00:03Z,u1,p7,\"/home/u1/a, b.f\",\
                 default,1451,128,0.5,,false\n"
            )
        );
        let back = from_reader(Path::new("jobs.csv"), text.as_bytes()).unwrap();
        assert_eq!(back, [job()]);
    }

    #[test]
    fn columns_may_come_in_any_order() {
        let text = "censored,mem,cpu,instances,run_seconds,pool,code,program,user,start,submit\n\
                    true,2048,,3,60.5,web,,f1,app1,,2021-01-31T00:00:00.25Z\n";
        let j = &from_reader(Path::new("j.csv"), text.as_bytes()).unwrap()[0];
        assert_eq!(
            (j.user.as_str(), j.instances, j.censored),
            ("app1", 3, true)
        );
        assert_eq!((j.mem, j.cpu, j.start), (Some(2048.0), None, None));
        assert_eq!(j.submit.timestamp_subsec_millis(), 250);
    }

    #[test]
    fn errors_name_the_file_the_line_and_the_problem() {
        let row =
            |r: &str| format!("{HEADER}\n1993-10-01T07:00:03Z,,u1,p1,,default,1,1,,,false\n{r}\n");
        for (text, expected) in [
            (
                row("1993-10-01 07:00:03,,u1,p1,,default,1,1,,,false"),
                "jobs.csv:3: submit `1993-10-01 07:00:03` is not an RFC 3339 time",
            ),
            (
                row("1993-10-01T07:00:03Z,1993-10-01T07:00:02Z,u1,p1,,default,1,1,,,false"),
                "jobs.csv:3: start 1993-10-01T07:00:02Z is before submit 1993-10-01T07:00:03Z",
            ),
            (
                row("1993-10-01T07:00:03Z,,u1,p1,,default,-5,1,,,false"),
                "jobs.csv:3: run_seconds -5 is negative",
            ),
            (
                row("1993-10-01T07:00:03Z,,u1,p1,,default,1,1,NaN,,false"),
                "jobs.csv:3: cpu `NaN` is not finite",
            ),
            (
                row("1993-10-01T07:00:03Z,,u1,p1,,default,1,0,,,false"),
                "jobs.csv:3: instances `0` is not a whole number of at least 1",
            ),
            (
                row("1993-10-01T07:00:03Z,,../etc,p1,,default,1,1,,,false"),
                "jobs.csv:3: user: id `../etc` has `/`",
            ),
            (
                row("1993-10-01T07:00:03Z,,u1,p1,,default,1,1,,,maybe"),
                "jobs.csv:3: censored `maybe` is not `true` or `false`",
            ),
            (
                row("1993-10-01T07:00:03Z,,u1,p1"),
                "jobs.csv:3: expected 11 fields, found 4",
            ),
            (
                "submit,start,user,program,code,run_seconds,instances,cpu,mem,censored\n".into(),
                "jobs.csv:1: missing column `pool`",
            ),
            (
                format!("{HEADER},queue\n"),
                "jobs.csv:1: unknown column `queue`",
            ),
            (format!("{HEADER}\n"), "jobs.csv: no jobs"),
            (String::new(), "jobs.csv: no jobs"),
        ] {
            let e = err(&text);
            assert!(e.starts_with(expected), "{e}\nexpected: {expected}");
        }
    }

    #[test]
    fn io_errors_name_the_file() {
        let e = read(Path::new("/nonexistent/jobs.csv")).unwrap_err();
        assert!(e.to_string().starts_with("/nonexistent/jobs.csv: "), "{e}");
    }

    fn arb_id() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}"
    }

    fn arb_amount() -> impl Strategy<Value = f64> {
        prop_oneof![0.0..1e9, (0u32..100_000).prop_map(f64::from)]
    }

    prop_compose! {
        fn arb_job()(
            submit in 0i64..4_000_000_000,
            nanos in 0u32..1_000_000_000,
            wait in proptest::option::of(0i64..100_000),
            user in arb_id(),
            program in arb_id(),
            code in proptest::option::of("[ -~]{1,30}"),
            pool in arb_id(),
            run_seconds in arb_amount(),
            instances in 1u32..=u32::MAX,
            cpu in proptest::option::of(arb_amount()),
            mem in proptest::option::of(arb_amount()),
            censored in any::<bool>(),
        ) -> Job {
            let submit = DateTime::from_timestamp(submit, nanos).unwrap();
            Job {
                submit,
                start: wait.map(|w| submit + chrono::TimeDelta::seconds(w)),
                user,
                program,
                code,
                pool,
                run_seconds,
                instances,
                cpu,
                mem,
                censored,
            }
        }
    }

    proptest! {
        #[test]
        fn write_then_read_gives_the_same_jobs(jobs in proptest::collection::vec(arb_job(), 1..20)) {
            let text = to_text(&jobs);
            let back = from_reader(Path::new("p.csv"), text.as_bytes()).unwrap();
            prop_assert_eq!(back, jobs);
        }
    }
}
