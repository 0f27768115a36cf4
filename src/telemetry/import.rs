//! Importers that turn the public traces in `shared/data` into canonical telemetry.
//!
//! Each trace has its own layout and units; this module is the one place that
//! knows them, so every later stage sees only [`Sample`]s in cores, MiB and Mbps.
//! Each source file becomes one instance named after its file stem.
//!
//! Unit conversions (values rounded to 6 decimals):
//! - **Bitbrains** (GWA-T-12 Rnd, `;\t`-separated, unix-second timestamps):
//!   cpu cores = `CPU usage [MHZ]` / (`CPU capacity provisioned [MHZ]` / `CPU cores`);
//!   mem MiB = `Memory usage [KB]` / 1024;
//!   net Mbps = (received + transmitted KB/s) × 8 × 1024 / 1e6.
//! - **Azure** (`step,avg_cpu,max_cpu`): cpu cores = `avg_cpu` / 100 × `cores`
//!   (`cores` required); timestamp = start + (step − 1) × 300 s, start defaulting
//!   to 2017-01-01T00:00:00Z.
//! - **NAB** (`timestamp,value`, `YYYY-MM-DD HH:MM:SS` UTC), metric from the file
//!   name: `*cpu_utilization*` and `grok_asg_anomaly` → cpu cores = value / 100 ×
//!   `cores` (required); `*network_in*` / `*NetworkIn*` (bytes per 5-min period) →
//!   net Mbps = value × 8 / 300 / 1e6; any other metric is [`ImportError::Unsupported`].
//!
//! For Bitbrains and NAB, a given `start` shifts each file so that its first
//! sample lands on `start`, aligning traces from different years on one axis.

use crate::file::FileError;
use crate::named::named_enum;
use crate::resource::Resource;
use crate::telemetry::Sample;
use chrono::{DateTime, NaiveDate, NaiveDateTime, TimeDelta, Utc};
use std::path::{Path, PathBuf};

named_enum!(
    /// A supported public trace.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    pub enum Source: "trace format" {
        /// Bitbrains GWA-T-12 VM telemetry (`;\t`-separated).
        Bitbrains = "bitbrains",
        /// Azure 2017 VM CPU telemetry (`step,avg_cpu,max_cpu`).
        Azure = "azure",
        /// Numenta Anomaly Benchmark AWS CloudWatch series (`timestamp,value`).
        Nab = "nab",
    }
);

/// Options shared by all importers.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Cores of the VM, to turn CPU percentages (Azure, NAB) into cores.
    pub cores: Option<f64>,
    /// Where the imported time axis starts (see the module docs per source).
    pub start: Option<DateTime<Utc>>,
}

/// Errors importing a trace. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Reading, writing or parsing a file failed.
    #[error(transparent)]
    File(#[from] crate::file::FileError),
    /// A NAB series measures a metric that maps to no resource.
    #[error("{path}: unsupported NAB metric `{metric}` (only cpu_utilization, grok_asg_anomaly and network_in series map to cpu or net)")]
    Unsupported {
        /// The trace file.
        path: PathBuf,
        /// The series' metric.
        metric: String,
    },
    /// The import options are invalid; the message says how.
    #[error("{0}")]
    Options(String),
    /// The trace gives CPU in percent but `--cores` was not passed.
    #[error("{path}: CPU is given in percent; --cores is required to convert it to cores")]
    MissingCores {
        /// The trace file.
        path: PathBuf,
    },
    /// The trace has no samples.
    #[error("{path}: no samples")]
    Empty {
        /// The trace file.
        path: PathBuf,
    },
}

const BITBRAINS_HEADER: [&str; 11] = [
    "Timestamp [ms]",
    "CPU cores",
    "CPU capacity provisioned [MHZ]",
    "CPU usage [MHZ]",
    "CPU usage [%]",
    "Memory capacity provisioned [KB]",
    "Memory usage [KB]",
    "Disk read throughput [KB/s]",
    "Disk write throughput [KB/s]",
    "Network received throughput [KB/s]",
    "Network transmitted throughput [KB/s]",
];
const AZURE_HEADER: [&str; 3] = ["step", "avg_cpu", "max_cpu"];
const NAB_HEADER: [&str; 2] = ["timestamp", "value"];
const AZURE_STEP_SECONDS: i64 = 300;
const NAB_PERIOD_SECONDS: f64 = 300.0;

/// How a NAB file's values map to a resource.
#[derive(Debug, Clone, Copy)]
enum NabMetric {
    CpuPercent,
    NetBytesPerPeriod,
}

/// Imports `paths` (one instance per file), sorted by (instance, resource, timestamp).
pub fn import(
    source: Source,
    paths: &[PathBuf],
    opts: &ImportOptions,
) -> Result<Vec<Sample>, ImportError> {
    if let Some(cores) = opts.cores.filter(|c| !(c.is_finite() && *c > 0.0)) {
        return Err(ImportError::Options(format!(
            "--cores {cores} must be a number > 0"
        )));
    }
    let mut seen = std::collections::BTreeMap::new();
    for path in paths {
        crate::id::check(&instance_name(path)).map_err(|m| {
            ImportError::Options(format!("{}: its name is the instance {m}", path.display()))
        })?;
        if let Some(other) = seen.insert(instance_name(path), path) {
            return Err(ImportError::Options(format!(
                "{} and {} would both become instance `{}`",
                other.display(),
                path.display(),
                instance_name(path)
            )));
        }
    }
    let mut samples = Vec::new();
    for path in paths {
        let mut file = match source {
            Source::Bitbrains => import_bitbrains(path)?,
            Source::Azure => import_azure(path, opts)?,
            Source::Nab => import_nab(path, opts)?,
        };
        if file.is_empty() {
            return Err(ImportError::Empty { path: path.clone() });
        }
        if source != Source::Azure {
            if let Some(start) = opts.start {
                align_to(&mut file, start);
            }
        }
        samples.append(&mut file);
    }
    samples.sort_by(|a, b| {
        (&a.instance, a.resource, a.timestamp).cmp(&(&b.instance, b.resource, b.timestamp))
    });
    Ok(samples)
}

fn import_bitbrains(path: &Path) -> Result<Vec<Sample>, ImportError> {
    let instance = instance_name(path);
    let mut samples = Vec::new();
    for_each_row(path, ';', &BITBRAINS_HEADER, |f| {
        let secs: i64 = f[0]
            .parse()
            .map_err(|_| format!("timestamp `{}` is not unix seconds", f[0]))?;
        let timestamp = from_unix(secs)?;
        let cores = number(f[1], "CPU cores")?;
        let capacity = number(f[2], "CPU capacity provisioned")?;
        if cores == 0.0 || capacity == 0.0 {
            return Err(
                "CPU cores or provisioned capacity is 0: cannot convert MHz to cores".into(),
            );
        }
        let cpu = number(f[3], "CPU usage [MHZ]")? / (capacity / cores);
        let mem = number(f[6], "Memory usage [KB]")? / 1024.0;
        let kbps = number(f[9], "Network received")? + number(f[10], "Network transmitted")?;
        let net = kbps * 8.0 * 1024.0 / 1e6;
        for (resource, value) in [
            (Resource::Cpu, cpu),
            (Resource::Mem, mem),
            (Resource::Net, net),
        ] {
            samples.push(sample(timestamp, &instance, resource, value));
        }
        Ok(())
    })?;
    Ok(samples)
}

fn import_azure(path: &Path, opts: &ImportOptions) -> Result<Vec<Sample>, ImportError> {
    let cores = opts.cores.ok_or_else(|| ImportError::MissingCores {
        path: path.to_owned(),
    })?;
    let start = opts.start.unwrap_or_else(azure_default_start);
    let instance = instance_name(path);
    let mut samples = Vec::new();
    for_each_row(path, ',', &AZURE_HEADER, |f| {
        let step: i64 = f[0]
            .parse()
            .ok()
            .filter(|&s| s >= 1)
            .ok_or_else(|| format!("step `{}` is not a positive integer", f[0]))?;
        let timestamp = start + TimeDelta::seconds((step - 1) * AZURE_STEP_SECONDS);
        let cpu = number(f[1], "avg_cpu")? / 100.0 * cores;
        samples.push(sample(timestamp, &instance, Resource::Cpu, cpu));
        Ok(())
    })?;
    Ok(samples)
}

fn import_nab(path: &Path, opts: &ImportOptions) -> Result<Vec<Sample>, ImportError> {
    let instance = instance_name(path);
    let (resource, scale) = match nab_metric(&instance) {
        Some(NabMetric::CpuPercent) => {
            let cores = opts.cores.ok_or_else(|| ImportError::MissingCores {
                path: path.to_owned(),
            })?;
            (Resource::Cpu, cores / 100.0)
        }
        Some(NabMetric::NetBytesPerPeriod) => (Resource::Net, 8.0 / NAB_PERIOD_SECONDS / 1e6),
        None => {
            return Err(ImportError::Unsupported {
                path: path.to_owned(),
                metric: instance,
            })
        }
    };
    let mut samples = Vec::new();
    for_each_row(path, ',', &NAB_HEADER, |f| {
        let timestamp = NaiveDateTime::parse_from_str(f[0], "%Y-%m-%d %H:%M:%S")
            .map_err(|_| format!("timestamp `{}` is not `YYYY-MM-DD HH:MM:SS`", f[0]))?
            .and_utc();
        let value = number(f[1], "value")? * scale;
        samples.push(sample(timestamp, &instance, resource, value));
        Ok(())
    })?;
    Ok(samples)
}

/// The extract kept no absolute time; 2017-01-01 is the trace's year.
fn azure_default_start() -> DateTime<Utc> {
    NaiveDate::from_ymd_opt(2017, 1, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .expect("2017-01-01 is a valid date")
        .and_utc()
}

fn nab_metric(name: &str) -> Option<NabMetric> {
    if name.contains("cpu_utilization") || name == "grok_asg_anomaly" {
        Some(NabMetric::CpuPercent)
    } else if name.contains("network_in") || name.contains("NetworkIn") {
        Some(NabMetric::NetBytesPerPeriod)
    } else {
        None
    }
}

/// Reads `path`, checks its header, and calls `row` with the trimmed fields of
/// each non-blank data line; row errors become [`ImportError::Parse`] with the line.
fn for_each_row(
    path: &Path,
    sep: char,
    header: &[&str],
    mut row: impl FnMut(&[&str]) -> Result<(), String>,
) -> Result<(), ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| FileError::io(path, source))?;
    let parse_err = |line: usize, message: String| {
        ImportError::from(FileError::invalid(path, line + 1, message))
    };
    let mut lines = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty());
    let (first, found) = lines.next().ok_or_else(|| ImportError::Empty {
        path: path.to_owned(),
    })?;
    if split(found, sep) != header {
        let expected = header.join(&sep.to_string());
        return Err(parse_err(
            first,
            format!("expected header `{expected}`, found `{}`", found.trim()),
        ));
    }
    for (i, line) in lines {
        let fields = split(line, sep);
        if fields.len() != header.len() {
            let message = format!("expected {} fields, found {}", header.len(), fields.len());
            return Err(parse_err(i, message));
        }
        row(&fields).map_err(|m| parse_err(i, m))?;
    }
    Ok(())
}

fn split(line: &str, sep: char) -> Vec<&str> {
    line.split(sep).map(str::trim).collect()
}

/// Parses a finite, non-negative number.
fn number(field: &str, name: &str) -> Result<f64, String> {
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

fn from_unix(secs: i64) -> Result<DateTime<Utc>, String> {
    DateTime::from_timestamp(secs, 0).ok_or_else(|| format!("timestamp {secs} is out of range"))
}

fn instance_name(path: &Path) -> String {
    path.file_stem()
        .unwrap_or(path.as_os_str())
        .to_string_lossy()
        .into_owned()
}

fn sample(timestamp: DateTime<Utc>, instance: &str, resource: Resource, value: f64) -> Sample {
    Sample {
        timestamp,
        instance: instance.to_owned(),
        resource,
        value: (value * 1e6).round() / 1e6,
    }
}

/// Shifts one file's samples so that the earliest lands on `start`.
fn align_to(samples: &mut [Sample], start: DateTime<Utc>) {
    if let Some(first) = samples.iter().map(|s| s.timestamp).min() {
        let shift = start - first;
        for s in samples {
            s.timestamp += shift;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    const BB_HEADER: &str = "Timestamp [ms];\tCPU cores;\tCPU capacity provisioned [MHZ];\tCPU usage [MHZ];\tCPU usage [%];\tMemory capacity provisioned [KB];\tMemory usage [KB];\tDisk read throughput [KB/s];\tDisk write throughput [KB/s];\tNetwork received throughput [KB/s];\tNetwork transmitted throughput [KB/s]";

    fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> PathBuf {
        let path = dir.path().join(name);
        fs::write(&path, text).unwrap();
        path
    }

    fn opts(cores: Option<f64>, start: Option<&str>) -> ImportOptions {
        ImportOptions {
            cores,
            start: start.map(|s| s.parse().unwrap()),
        }
    }

    fn values(samples: &[Sample], resource: Resource) -> Vec<(String, f64)> {
        let pick = samples.iter().filter(|s| s.resource == resource);
        pick.map(|s| (s.timestamp.to_rfc3339(), s.value)).collect()
    }

    fn err(source: Source, name: &str, text: &str, o: &ImportOptions) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, name, text);
        import(source, &[path], o).unwrap_err().to_string()
    }

    #[test]
    fn bitbrains_converts_mhz_kb_and_kbps() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{BB_HEADER}\n1375308476;\t4;\t10000;\t5000;\t50;\t1;\t2048;\t0;\t0;\t100;\t25\n\
             1375308176;\t4;\t10000;\t2500;\t25;\t1;\t1024;\t0;\t0;\t0;\t0\n"
        );
        let path = write(&dir, "58.csv", &text);
        let s = import(Source::Bitbrains, &[path], &opts(None, None)).unwrap();
        assert_eq!(s.len(), 6);
        assert!(s.iter().all(|s| s.instance == "58"));
        let cpu = values(&s, Resource::Cpu);
        assert_eq!(cpu[0], ("2013-07-31T22:02:56+00:00".into(), 1.0));
        assert_eq!(cpu[1].1, 2.0);
        assert_eq!(values(&s, Resource::Mem)[1].1, 2.0);
        assert_eq!(values(&s, Resource::Net)[1].1, 1.024);
    }

    #[test]
    fn bitbrains_start_aligns_first_sample() {
        let dir = tempfile::tempdir().unwrap();
        let text = format!(
            "{BB_HEADER}\n1375308176;\t1;\t1;\t1;\t1;\t1;\t1;\t0;\t0;\t0;\t0\n\
             1375308477;\t1;\t1;\t1;\t1;\t1;\t1;\t0;\t0;\t0;\t0\n"
        );
        let path = write(&dir, "63.csv", &text);
        let s = import(
            Source::Bitbrains,
            &[path],
            &opts(None, Some("2024-03-04T00:00:00Z")),
        )
        .unwrap();
        let times: Vec<_> = values(&s, Resource::Cpu).into_iter().map(|v| v.0).collect();
        assert_eq!(
            times,
            ["2024-03-04T00:00:00+00:00", "2024-03-04T00:05:01+00:00"]
        );
    }

    #[test]
    fn bitbrains_rejects_zero_capacity_and_bad_values() {
        let o = opts(None, None);
        let row = |r: &str| format!("{BB_HEADER}\n{r}\n");
        let e = err(
            Source::Bitbrains,
            "1.csv",
            &row("1;\t4;\t0;\t1;\t1;\t1;\t1;\t0;\t0;\t0;\t0"),
            &o,
        );
        assert!(
            e.ends_with(
                "1.csv:2: CPU cores or provisioned capacity is 0: cannot convert MHz to cores"
            ),
            "{e}"
        );
        let e = err(
            Source::Bitbrains,
            "1.csv",
            &row("1;\t4;\t8;\t-1;\t1;\t1;\t1;\t0;\t0;\t0;\t0"),
            &o,
        );
        assert!(e.contains("1.csv:2:") && e.contains("negative"), "{e}");
        let e = err(
            Source::Bitbrains,
            "1.csv",
            &row("1;\t4;\t8;\t1;\t1;\t1;\tNaN;\t0;\t0;\t0;\t0"),
            &o,
        );
        assert!(e.contains("1.csv:2:") && e.contains("not finite"), "{e}");
        let e = err(Source::Bitbrains, "1.csv", &row("1;\t4;\t8"), &o);
        assert!(e.contains("1.csv:2: expected 11 fields, found 3"), "{e}");
        let e = err(Source::Bitbrains, "1.csv", "time;value\n", &o);
        assert!(e.contains("1.csv:1: expected header"), "{e}");
    }

    #[test]
    fn azure_converts_percent_to_cores_from_default_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(
            &dir,
            "vm_1126.csv",
            "step,avg_cpu,max_cpu\n1,50,90\n3,12.5,20\n",
        );
        let s = import(Source::Azure, &[path], &opts(Some(4.0), None)).unwrap();
        assert_eq!(
            values(&s, Resource::Cpu),
            [
                ("2017-01-01T00:00:00+00:00".into(), 2.0),
                ("2017-01-01T00:10:00+00:00".into(), 0.5)
            ]
        );
        assert_eq!(s[0].instance, "vm_1126");
    }

    #[test]
    fn azure_uses_start_and_requires_cores() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(&dir, "vm_1.csv", "step,avg_cpu,max_cpu\n2,1,1\n");
        let s = import(
            Source::Azure,
            std::slice::from_ref(&path),
            &opts(Some(3.0), Some("2024-03-04T00:00:00Z")),
        )
        .unwrap();
        assert_eq!(
            values(&s, Resource::Cpu),
            [("2024-03-04T00:05:00+00:00".into(), 0.03)]
        );
        let e = import(Source::Azure, &[path], &opts(None, None))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("vm_1.csv") && e.contains("--cores is required"),
            "{e}"
        );
        let e = err(
            Source::Azure,
            "vm_2.csv",
            "step,avg_cpu,max_cpu\n1,1,1\n0,1,1\n",
            &opts(Some(1.0), None),
        );
        assert!(
            e.contains("vm_2.csv:3: step `0` is not a positive integer"),
            "{e}"
        );
        let e = err(
            Source::Azure,
            "vm_3.csv",
            "step,avg_cpu,max_cpu\n1,abc,1\n",
            &opts(Some(1.0), None),
        );
        assert!(
            e.contains("vm_3.csv:2: avg_cpu `abc` is not a number"),
            "{e}"
        );
    }

    #[test]
    fn nab_converts_cpu_and_network_and_aligns() {
        let dir = tempfile::tempdir().unwrap();
        let cpu = write(
            &dir,
            "ec2_cpu_utilization_x.csv",
            "timestamp,value\n2014-02-14 14:30:00,50\n2014-02-14 14:35:00,25\n",
        );
        let net = write(
            &dir,
            "ec2_network_in_y.csv",
            "timestamp,value\n2014-04-10 00:04:00,37500000\n",
        );
        let s = import(
            Source::Nab,
            &[net, cpu],
            &opts(Some(2.0), Some("2024-03-04T00:00:00Z")),
        )
        .unwrap();
        assert_eq!(s[0].instance, "ec2_cpu_utilization_x");
        assert_eq!(
            values(&s, Resource::Cpu),
            [
                ("2024-03-04T00:00:00+00:00".into(), 1.0),
                ("2024-03-04T00:05:00+00:00".into(), 0.5)
            ]
        );
        assert_eq!(
            values(&s, Resource::Net),
            [("2024-03-04T00:00:00+00:00".into(), 1.0)]
        );
    }

    #[test]
    fn nab_rejects_unsupported_metrics_missing_cores_and_bad_rows() {
        let o = opts(Some(2.0), None);
        let e = err(
            Source::Nab,
            "elb_request_count_8c0756.csv",
            "timestamp,value\n",
            &o,
        );
        assert!(
            e.contains("elb_request_count_8c0756.csv: unsupported NAB metric"),
            "{e}"
        );
        let e = err(
            Source::Nab,
            "grok_asg_anomaly.csv",
            "timestamp,value\n2014-01-16 00:00:00,1\n",
            &opts(None, None),
        );
        assert!(
            e.contains("grok_asg_anomaly.csv: CPU is given in percent"),
            "{e}"
        );
        let e = err(
            Source::Nab,
            "rds_cpu_utilization_z.csv",
            "timestamp,value\n2014-02-14T14:30:00,1\n",
            &o,
        );
        assert!(e.contains("rds_cpu_utilization_z.csv:2: timestamp"), "{e}");
        let e = err(
            Source::Nab,
            "rds_cpu_utilization_z.csv",
            "timestamp,value\n",
            &o,
        );
        assert!(e.contains("rds_cpu_utilization_z.csv: no samples"), "{e}");
        let e = err(Source::Nab, "missing_cpu_utilization.csv", "", &o);
        assert!(e.contains("no samples"), "{e}");
    }

    #[test]
    fn io_errors_name_the_file() {
        let e = import(
            Source::Azure,
            &["/nonexistent/vm_9.csv".into()],
            &opts(Some(1.0), None),
        );
        assert!(e
            .unwrap_err()
            .to_string()
            .starts_with("/nonexistent/vm_9.csv: "));
    }

    /// Imports the excerpts written by `fixtures/make.sh` with the script's options.
    #[test]
    fn imports_fixture_excerpts() {
        let raw = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/raw");
        let start = Some("2024-03-04T00:00:00Z");
        for (source, dir, cores, resources, max_cpu) in [
            (Source::Bitbrains, "bitbrains", None, 3, 8.0 * 1.2),
            (Source::Azure, "azure", Some(4.0), 1, 4.0),
            (Source::Nab, "nab", Some(2.0), 1, 2.0),
        ] {
            let mut paths: Vec<PathBuf> = fs::read_dir(raw.join(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            paths.sort();
            let s = import(source, &paths, &opts(cores, start)).unwrap();
            assert_eq!(paths.len(), 4, "{dir}");
            assert_eq!(s.len(), 4 * resources * 864, "{dir}");
            let first = s.iter().map(|s| s.timestamp).min().unwrap();
            assert_eq!(first.to_rfc3339(), "2024-03-04T00:00:00+00:00", "{dir}");
            let last = s.iter().map(|s| s.timestamp).max().unwrap();
            assert!(last - first < TimeDelta::days(4), "{dir}: ends at {last}");
            let cpu_max = s
                .iter()
                .filter(|s| s.resource == Resource::Cpu)
                .map(|s| s.value)
                .fold(0.0, f64::max);
            assert!(
                cpu_max > 0.0 && cpu_max <= max_cpu,
                "{dir}: cpu max {cpu_max}"
            );
        }
    }
}
