//! Canonical telemetry: the long-form CSV every importer writes and every stage reads.
//!
//! `timestamp,instance,resource,value`, RFC 3339 UTC timestamps, units as in
//! [`Resource`]. Reading is strict about content (NaN, negatives, unknown
//! resources are errors naming file and line) and lenient about order:
//! out-of-order rows are sorted and duplicate timestamps keep the last value,
//! both counted in [`IngestStats`] so the run log can report them.

use crate::resource::Resource;
use chrono::{DateTime, SecondsFormat, Utc};
use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Errors reading or writing telemetry. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: u64,
        message: String,
    },
    #[error("{path}: no samples")]
    Empty { path: PathBuf },
}

/// One telemetry sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub timestamp: DateTime<Utc>,
    pub instance: String,
    pub resource: Resource,
    pub value: f64,
}

/// One instance's samples of one resource, sorted by time, one value per timestamp.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    /// `(unix seconds, value)` pairs in increasing time order.
    pub points: Vec<(i64, f64)>,
    /// The CSV line where this series first appeared, for error messages.
    pub first_line: u64,
}

impl Series {
    /// The most common spacing between consecutive samples, in seconds.
    pub fn step_seconds(&self) -> Option<i64> {
        most_common_step(&self.points)
    }
}

/// The most common spacing between consecutive `(time, value)` points (the
/// smaller one on a tie), if there are two points.
pub fn most_common_step(points: &[(i64, f64)]) -> Option<i64> {
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for w in points.windows(2) {
        *counts.entry(w[1].0 - w[0].0).or_default() += 1;
    }
    counts
        .into_iter()
        .max_by_key(|&(step, n)| (n, std::cmp::Reverse(step)))
        .map(|(step, _)| step)
}

/// What reading had to repair, reported in the run log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IngestStats {
    pub rows: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
}

/// All telemetry from one file, keyed by instance and resource.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Telemetry {
    pub path: PathBuf,
    pub series: BTreeMap<(String, Resource), Series>,
    pub stats: IngestStats,
}

impl Telemetry {
    /// Reads and validates a canonical telemetry CSV file.
    pub fn read(path: &Path) -> Result<Telemetry, TelemetryError> {
        let file = std::fs::File::open(path).map_err(|source| TelemetryError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_reader(path, file)
    }

    /// Parses canonical CSV from any reader; `path` is used in messages.
    pub fn from_reader(
        path: &Path,
        reader: impl std::io::Read,
    ) -> Result<Telemetry, TelemetryError> {
        let err = |line: u64, message: String| TelemetryError::Parse {
            path: path.to_owned(),
            line,
            message,
        };
        // Fields are trimmed as they are parsed: the reader's own trimming copies every record.
        let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
        let headers = rdr.headers().map_err(|e| err(1, e.to_string()))?.clone();
        if !headers
            .iter()
            .map(str::trim)
            .eq(["timestamp", "instance", "resource", "value"])
        {
            return Err(err(
                1,
                format!(
                    "expected header `timestamp,instance,resource,value`, found `{}`",
                    headers.iter().collect::<Vec<_>>().join(",")
                ),
            ));
        }
        let mut telemetry = Telemetry {
            path: path.to_owned(),
            ..Telemetry::default()
        };
        let mut record = csv::StringRecord::new();
        // Rows usually come a series at a time: the series being read is filled here and
        // filed when another starts, so most rows cost no lookup and no allocation.
        let mut open: Option<((String, Resource), Series)> = None;
        loop {
            let line = rdr.position().line();
            match rdr.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => return Err(err(line, e.to_string())),
            }
            let row = parse_record(&record).map_err(|m| err(line, m))?;
            telemetry.stats.rows += 1;
            let same = |((id, r), _): &((String, Resource), Series)| {
                id == row.instance && *r == row.resource
            };
            if !open.as_ref().is_some_and(same) {
                if let Some((key, series)) = open.take() {
                    telemetry.file(key, series);
                }
                // Filing keeps the first line of a series seen before.
                let series = Series {
                    points: Vec::new(),
                    first_line: line,
                };
                open = Some(((row.instance.to_owned(), row.resource), series));
            }
            let points = &mut open.as_mut().expect("opened above").1.points;
            if points.last().is_some_and(|&(last, _)| row.time < last) {
                telemetry.stats.out_of_order += 1;
            }
            points.push((row.time, row.value));
        }
        if let Some((key, series)) = open {
            telemetry.file(key, series);
        }
        if telemetry.stats.rows == 0 {
            return Err(TelemetryError::Empty {
                path: path.to_owned(),
            });
        }
        telemetry.normalise();
        Ok(telemetry)
    }

    /// Adds a run of consecutive rows of one series to what was read of it before.
    fn file(&mut self, key: (String, Resource), run: Series) {
        match self.series.entry(key) {
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(run);
            }
            std::collections::btree_map::Entry::Occupied(mut e) => {
                let series = e.get_mut();
                let (Some(&(last, _)), Some(&(first, _))) =
                    (series.points.last(), run.points.first())
                else {
                    return;
                };
                if first < last {
                    self.stats.out_of_order += 1;
                }
                series.points.extend(run.points);
            }
        }
    }

    /// Sorts each series by time and keeps the last value seen for a repeated timestamp.
    fn normalise(&mut self) {
        for series in self.series.values_mut() {
            series.points.sort_by_key(|&(t, _)| t);
            let before = series.points.len();
            // After a stable sort, equal timestamps keep file order: keep the last one.
            series.points.reverse();
            series.points.dedup_by_key(|p| p.0);
            series.points.reverse();
            self.stats.duplicates += (before - series.points.len()) as u64;
        }
    }

    /// The instances that have telemetry, in order.
    pub fn instances(&self) -> impl Iterator<Item = &str> {
        let mut last: Option<&str> = None;
        self.series.keys().filter_map(move |(id, _)| {
            if last == Some(id.as_str()) {
                None
            } else {
                last = Some(id.as_str());
                last
            }
        })
    }

    /// The series of one instance and resource, if any.
    pub fn get(&self, instance: &str, resource: Resource) -> Option<&Series> {
        self.series.get(&(instance.to_owned(), resource))
    }
}

/// One parsed row, borrowing its instance id from the record.
struct Row<'a> {
    time: i64,
    instance: &'a str,
    resource: Resource,
    value: f64,
}

fn parse_record(record: &csv::StringRecord) -> Result<Row<'_>, String> {
    if record.len() != 4 {
        return Err(format!("expected 4 fields, found {}", record.len()));
    }
    let field = |k: usize| record[k].trim();
    let time = DateTime::parse_from_rfc3339(field(0))
        .map_err(|e| format!("timestamp `{}` is not RFC 3339: {e}", field(0)))?
        .timestamp();
    let instance = field(1);
    if instance.is_empty() {
        return Err("empty instance id".into());
    }
    let resource: Resource = field(2).parse()?;
    let value: f64 = field(3)
        .parse()
        .map_err(|_| format!("value `{}` is not a number", field(3)))?;
    if !value.is_finite() {
        return Err(format!("value `{}` is not finite", field(3)));
    }
    if value < 0.0 {
        return Err(format!(
            "value {value} is negative ({} cannot be below zero)",
            resource
        ));
    }
    Ok(Row {
        time,
        instance,
        resource,
        value,
    })
}

pub fn write_csv(out: impl Write, samples: &[Sample]) -> std::io::Result<()> {
    let mut w = std::io::BufWriter::new(out);
    writeln!(w, "timestamp,instance,resource,value")?;
    for s in samples {
        writeln!(
            w,
            "{},{},{},{}",
            s.timestamp.to_rfc3339_opts(SecondsFormat::Secs, true),
            s.instance,
            s.resource,
            format_value(s.value)
        )?;
    }
    w.flush()
}

/// Six significant decimals, trailing zeros trimmed: stable and compact.
fn format_value(v: f64) -> String {
    let s = format!("{v:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s.is_empty() || s == "-" {
        "0".to_owned()
    } else {
        s.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Telemetry, TelemetryError> {
        Telemetry::from_reader(Path::new("t.csv"), text.as_bytes())
    }

    #[test]
    fn sorts_out_of_order_and_keeps_last_duplicate() {
        let t = parse(
            "timestamp,instance,resource,value\n\
             2024-01-01T00:05:00Z,a,cpu,2\n\
             2024-01-01T00:00:00Z,a,cpu,1\n\
             2024-01-01T00:05:00Z,a,cpu,3\n",
        )
        .unwrap();
        let s = t.get("a", Resource::Cpu).unwrap();
        assert_eq!(s.points, vec![(1704067200, 1.0), (1704067500, 3.0)]);
        assert_eq!(t.stats.duplicates, 1);
        assert_eq!(t.stats.out_of_order, 1);
        assert_eq!(s.step_seconds(), Some(300));
    }

    #[test]
    fn interleaved_series_are_joined_in_file_order() {
        // Time-major files alternate series every row; a series may also come back later.
        let t = parse(
            "timestamp,instance,resource,value\n\
             2024-01-01T00:00:00Z,a,cpu,1\n\
             2024-01-01T00:00:00Z, b ,cpu,5\n\
             2024-01-01T00:05:00Z,a,cpu,2\n\
             2024-01-01T00:05:00Z,b,cpu,6\n\
             2024-01-01T00:00:00Z,a,cpu,9\n",
        )
        .unwrap();
        let a = t.get("a", Resource::Cpu).unwrap();
        assert_eq!(a.points, vec![(1704067200, 9.0), (1704067500, 2.0)]);
        assert_eq!(a.first_line, 2);
        let b = t.get("b", Resource::Cpu).unwrap();
        assert_eq!(b.points, vec![(1704067200, 5.0), (1704067500, 6.0)]);
        assert_eq!(b.first_line, 3);
        assert_eq!(
            (t.stats.rows, t.stats.duplicates, t.stats.out_of_order),
            (5, 1, 1)
        );
    }

    #[test]
    fn rejects_nan_and_negative_with_line() {
        let e = parse("timestamp,instance,resource,value\n2024-01-01T00:00:00Z,a,cpu,NaN\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.csv:2") && e.contains("not finite"), "{e}");
        let e = parse(
            "timestamp,instance,resource,value\n2024-01-01T00:00:00Z,a,cpu,1\n2024-01-01T00:05:00Z,a,mem,-4\n",
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("t.csv:3") && e.contains("negative"), "{e}");
    }

    #[test]
    fn rejects_bad_header_resource_and_timestamp() {
        assert!(parse("time,id,res,val\n")
            .unwrap_err()
            .to_string()
            .contains("t.csv:1"));
        let e = parse("timestamp,instance,resource,value\n2024-01-01T00:00:00Z,a,disk,1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown resource `disk`"), "{e}");
        let e = parse("timestamp,instance,resource,value\nyesterday,a,cpu,1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.csv:2") && e.contains("RFC 3339"), "{e}");
    }

    #[test]
    fn write_then_read_round_trips() {
        let samples = vec![Sample {
            timestamp: DateTime::from_timestamp(1704067200, 0).unwrap(),
            instance: "vm-1".into(),
            resource: Resource::Mem,
            value: 1536.25,
        }];
        let mut buf = Vec::new();
        write_csv(&mut buf, &samples).unwrap();
        let t = parse(std::str::from_utf8(&buf).unwrap()).unwrap();
        assert_eq!(
            t.get("vm-1", Resource::Mem).unwrap().points,
            vec![(1704067200, 1536.25)]
        );
        assert_eq!(t.instances().collect::<Vec<_>>(), vec!["vm-1"]);
    }
}
