//! Importers that turn the public job logs into canonical [`Job`]s.
//!
//! Each log has its own layout, clock and gaps; the submodule for each one is the only
//! place that knows them. Every importer also returns a report that counts each oddity
//! it met (unknown fields, cancelled or zero-length jobs, censored lifetimes) and what
//! it did about it, because a profiler fitted on a log is only as honest as the log.
//! The jobs of all files come out sorted by submit time (stable: a source's order is
//! kept among equal times).

pub mod azure_functions;
pub mod azure_vm_arrivals;
pub mod swf;

use super::{Job, JobsError};
use crate::file::FileError;
use crate::named::named_enum;
use chrono::{DateTime, TimeDelta, Utc};
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

named_enum!(
    /// A supported public job log.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Source: "job log format" {
        /// The Parallel Workloads Archive's Standard Workload Format (gzip or plain).
        Swf = "swf",
        /// Azure Functions 2021 invocations: `app,func,end_timestamp,duration`.
        AzureFunctions = "azure-functions",
        /// Azure 2017 VM arrivals per 5-minute bin with flavors and lifetime bins.
        AzureVmArrivals = "azure-vm-arrivals",
    }
);

/// Options of the job importers.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The time the log's clock counts from (overrides SWF's `UnixStartTime`).
    pub start: Option<DateTime<Utc>>,
    /// The pool of jobs whose source names none (default [`DEFAULT_POOL`]).
    pub pool: Option<String>,
}

/// The pool of jobs whose source names none, unless `--pool` says otherwise.
pub const DEFAULT_POOL: &str = "default";

impl Options {
    fn pool(&self) -> &str {
        self.pool.as_deref().unwrap_or(DEFAULT_POOL)
    }
}

/// What an importer counted, per source.
#[derive(Debug, Clone, PartialEq)]
pub enum Report {
    /// What the SWF importer counted.
    Swf(swf::Report),
    /// What the Azure Functions importer counted.
    AzureFunctions(azure_functions::Report),
    /// What the Azure VM arrivals importer counted.
    AzureVmArrivals(azure_vm_arrivals::Report),
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Report::Swf(r) => r.fmt(f),
            Report::AzureFunctions(r) => r.fmt(f),
            Report::AzureVmArrivals(r) => r.fmt(f),
        }
    }
}

/// The jobs of a log and what importing it counted.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The jobs of every file, sorted by submit time.
    pub jobs: Vec<Job>,
    /// What the importer counted over every file.
    pub report: Report,
}

/// Imports `paths`, all of one source, into jobs sorted by submit time.
pub fn import(source: Source, paths: &[PathBuf], opts: &Options) -> Result<Imported, JobsError> {
    if let Some(pool) = &opts.pool {
        crate::id::check(pool).map_err(|m| JobsError::Options(format!("--pool: {m}")))?;
    }
    let (mut jobs, report) = match source {
        Source::Swf => {
            let (jobs, r) = swf::import(paths, opts)?;
            (jobs, Report::Swf(r))
        }
        Source::AzureFunctions => {
            let (jobs, r) = azure_functions::import(paths, opts)?;
            (jobs, Report::AzureFunctions(r))
        }
        Source::AzureVmArrivals => {
            if opts.pool.is_some() {
                return Err(JobsError::Options(
                    "azure-vm-arrivals: each VM's pool is its flavor; --pool does not apply".into(),
                ));
            }
            let (jobs, r) = azure_vm_arrivals::import(paths, opts)?;
            (jobs, Report::AzureVmArrivals(r))
        }
    };
    jobs.sort_by_key(|j| j.submit);
    Ok(Imported { jobs, report })
}

/// Reads a text file whole, gunzipping it first if it starts with the gzip magic bytes.
fn read_text(path: &Path) -> Result<String, JobsError> {
    let io = |source| JobsError::from(FileError::io(path, source));
    let mut bytes = std::fs::read(path).map_err(io)?;
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        flate2::read::MultiGzDecoder::new(bytes.as_slice())
            .read_to_end(&mut plain)
            .map_err(io)?;
        bytes = plain;
    }
    crate::file::text(bytes).map_err(io)
}

/// A problem at 0-based line index `index` of `path`.
fn parse_error(path: &Path, index: usize, message: String) -> JobsError {
    FileError::invalid(path, index + 1, message).into()
}

/// `seconds` after `origin`, to the nanosecond.
fn offset(origin: DateTime<Utc>, seconds: f64) -> Result<DateTime<Utc>, String> {
    let nanos = (seconds * 1e9).round();
    if !nanos.is_finite() || nanos.abs() >= 9.2e18 {
        return Err(format!("{seconds} s is out of range"));
    }
    origin
        .checked_add_signed(TimeDelta::nanoseconds(nanos as i64))
        .ok_or_else(|| format!("{seconds} s after {origin} is out of range"))
}

/// Rounds to the millisecond, the finest step the sources record.
fn millis(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}

/// A report line, written only when something was counted.
fn count(f: &mut fmt::Formatter<'_>, n: u64, what: &str) -> fmt::Result {
    if n > 0 {
        writeln!(f, "  {n} {what}")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_gzip_and_plain_text_alike() {
        let dir = tempfile::tempdir().unwrap();
        let plain = dir.path().join("a.swf");
        std::fs::write(&plain, "; Version: 2.2\n").unwrap();
        let gz = dir.path().join("a.swf.gz");
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut enc, b"; Version: 2.2\n").unwrap();
        std::fs::write(&gz, enc.finish().unwrap()).unwrap();
        assert_eq!(read_text(&plain).unwrap(), read_text(&gz).unwrap());
    }

    #[test]
    fn an_unsafe_pool_is_refused() {
        let opts = Options {
            pool: Some("../x".into()),
            ..Options::default()
        };
        let e = import(Source::Swf, &[], &opts).unwrap_err().to_string();
        assert!(e.starts_with("--pool: id `../x` has `/`"), "{e}");
    }

    #[test]
    fn offsets_are_exact_to_the_nanosecond() {
        let origin: DateTime<Utc> = "2021-01-31T00:00:00Z".parse().unwrap();
        let t = offset(origin, 57.154 - 0.078).unwrap();
        assert_eq!(t.to_rfc3339(), "2021-01-31T00:00:57.076+00:00");
        assert!(offset(origin, 1e30).is_err());
    }
}
