//! Canonical telemetry: the long-form CSV every importer writes and every stage reads.
//!
//! `timestamp,instance,resource,value`, RFC 3339 UTC timestamps, units as in
//! [`Resource`]. Reading is strict about content (NaN, negatives, unknown
//! resources are errors naming file and line) and lenient about order:
//! out-of-order rows are sorted and duplicate timestamps keep the last value,
//! both counted in [`IngestStats`] so the run log can report them. A region's
//! week of samples is tens of GB of CSV, so large files are read in parallel
//! and samples are held in 4 bytes each ([`Series`]).

mod canonical;
pub mod import;
mod read;
mod series;
mod stamp;

pub use canonical::write_csv;
pub use series::{most_common_step, Series};

use crate::file::FileError;
use crate::fleet::Fleet;
use crate::resource::Resource;
use canonical::{file, Part};
use chrono::{DateTime, Utc};
use rayon::prelude::*;
use read::{line_bounds, memory, DropBehind};
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

/// Errors reading or writing telemetry. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// Reading, writing or parsing a file failed.
    #[error(transparent)]
    File(#[from] crate::file::FileError),
    /// The telemetry file has no samples.
    #[error("{path}: no samples")]
    Empty {
        /// The telemetry file.
        path: PathBuf,
    },
}

/// One telemetry sample.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// When it was measured (UTC).
    pub timestamp: DateTime<Utc>,
    /// The instance's id.
    pub instance: String,
    /// The resource measured.
    pub resource: Resource,
    /// Usage in the resource's units (cores, MiB or Mbps); finite and >= 0.
    pub value: f64,
}

/// What reading had to repair, reported in the run log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IngestStats {
    /// Data rows read (the header not counted).
    pub rows: u64,
    /// Rows dropped for a repeated timestamp in their series; the last value is kept.
    pub duplicates: u64,
    /// Rows earlier than the one before them in their series; sorted on read.
    pub out_of_order: u64,
    /// The file's last line, when it has no line end: a file cut while it was written
    /// ends so, and so does one written without a final newline.
    pub unended_line: Option<u64>,
}

/// All telemetry from one file, keyed by instance and resource.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Telemetry {
    /// The file it was read from.
    pub path: PathBuf,
    /// Each series' samples in time order, by instance id and resource.
    pub series: BTreeMap<(String, Resource), Series>,
    /// What reading counted and repaired.
    pub stats: IngestStats,
}

impl Telemetry {
    /// Reads and validates a canonical telemetry CSV file; large files are read in
    /// parallel, in as many byte ranges as there are threads.
    pub fn read(path: &Path) -> Result<Telemetry, TelemetryError> {
        let len = std::fs::metadata(path)
            .map_err(|source| FileError::io(path, source))?
            .len();
        let chunks = if len < PARALLEL_BYTES {
            1
        } else {
            rayon::current_num_threads()
        };
        Self::read_in_chunks(path, chunks, len > memory() / 2)
    }

    /// Reads `path` as up to `chunks` byte ranges split at line ends, parsed in parallel
    /// and joined in file order: the same result as reading it start to end.
    /// With `drop_behind`, pages read are dropped from the page cache (see [`DropBehind`]).
    fn read_in_chunks(
        path: &Path,
        chunks: usize,
        drop_behind: bool,
    ) -> Result<Telemetry, TelemetryError> {
        let io = |source| FileError::io(path, source);
        let bounds = line_bounds(path, chunks).map_err(io)?;
        let parts: Vec<std::io::Result<Result<Part, (u64, String)>>> = bounds
            .par_iter()
            .enumerate()
            .map(|(k, &(from, to))| {
                let mut file = File::open(path)?;
                file.seek(SeekFrom::Start(from))?;
                let file = DropBehind::new(file, from, drop_behind);
                let reader = file.take(to - from);
                Ok(Part::read(reader, k == 0))
            })
            .collect();
        let mut telemetry = Telemetry {
            path: path.to_owned(),
            ..Telemetry::default()
        };
        // Each part numbers its lines from 1: add the lines of the parts before it.
        let mut before = 0;
        for part in parts {
            let part = part.map_err(io)?.map_err(|(line, message)| {
                FileError::invalid(path, (line + before) as usize, message)
            })?;
            let lines = part.lines;
            telemetry.join(part, before);
            before += lines;
        }
        let mut file = File::open(path).map_err(io)?;
        let mut last = [0];
        if file.seek(SeekFrom::End(-1)).is_ok() && file.read_exact(&mut last).is_ok() {
            telemetry.stats.unended_line = (last[0] != b'\n').then_some(before + 1);
        }
        telemetry.finish()
    }

    /// How many samples lie after `t` (seconds since the epoch), and the latest time.
    pub fn after(&self, t: i64) -> (u64, Option<i64>) {
        let mut count = 0;
        let mut latest = None;
        for s in self.series.values() {
            if s.last_time().is_some_and(|last| last > t) {
                count += s.points().filter(|&(time, _)| time > t).count() as u64;
                latest = latest.max(s.last_time());
            }
        }
        (count, latest)
    }

    /// Parses canonical CSV from any reader; `path` is used in messages.
    pub fn from_reader(
        path: &Path,
        reader: impl std::io::Read,
    ) -> Result<Telemetry, TelemetryError> {
        let part = Part::read(reader, true)
            .map_err(|(line, message)| FileError::invalid(path, line as usize, message))?;
        let mut telemetry = Telemetry {
            path: path.to_owned(),
            ..Telemetry::default()
        };
        telemetry.join(part, 0);
        telemetry.finish()
    }

    /// Adds a part read after everything so far, `before` lines into the file.
    fn join(&mut self, part: Part, before: u64) {
        self.stats.rows += part.stats.rows;
        self.stats.out_of_order += part.stats.out_of_order;
        for (key, mut series) in part.series {
            series.first_line += before;
            file(&mut self.series, &mut self.stats, key, series);
        }
    }

    /// Checks that something was read and puts every series in time order.
    fn finish(mut self) -> Result<Telemetry, TelemetryError> {
        if self.stats.rows == 0 {
            return Err(TelemetryError::Empty { path: self.path });
        }
        self.normalise();
        Ok(self)
    }

    /// Sorts each series by time and keeps the last value seen for a repeated timestamp.
    fn normalise(&mut self) {
        let dropped = self.series.par_iter_mut().map(|(_, s)| s.normalise());
        self.stats.duplicates += dropped.sum::<u64>();
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

    /// The instance first seen in the file that `fleet` does not have, and its line.
    pub fn first_unknown(&self, fleet: &Fleet) -> Option<(&str, u64)> {
        let known: HashSet<&str> = fleet.instances.iter().map(|i| i.id.as_str()).collect();
        self.series
            .iter()
            .filter(|((id, _), _)| !known.contains(id.as_str()))
            .map(|((id, _), s)| (id.as_str(), s.first_line))
            .min_by_key(|&(_, line)| line)
    }

    /// The series of one instance and resource, if any.
    pub fn get(&self, instance: &str, resource: Resource) -> Option<&Series> {
        self.series.get(&(instance.to_owned(), resource))
    }
}

/// Files at least this large are read in parallel.
const PARALLEL_BYTES: u64 = 64 << 20;

#[cfg(test)]
mod tests {
    use super::canonical::{trim, Rows};
    use super::stamp::Stamps;
    use super::*;
    use crate::synth::rng::SplitMix;

    #[test]
    fn fields_trim_as_str_trim_does() {
        for field in [
            "",
            " ",
            "cpu",
            " cpu",
            "cpu\t",
            "\u{b}cpu",
            "cpu\u{a0}",
            "\u{3000}vm1\u{3000}",
            "é",
            "a b",
        ] {
            assert_eq!(trim(field), field.trim(), "{field:?}");
        }
    }

    #[test]
    fn plain_timestamps_read_as_chrono_reads_them() {
        let chrono = |t: &str| DateTime::parse_from_rfc3339(t).ok().map(|d| d.timestamp());
        let mut rng = SplitMix(7);
        let mut field = |width: usize, below: usize, from: usize| {
            format!("{:0width$}", from + rng.below(below))
        };
        let fresh = |t: &str| Stamps::default().utc_seconds(t);
        let agrees_with_chrono = |ours: Option<i64>, text: &str| match (ours, chrono(text)) {
            (Some(t), theirs) => assert_eq!(Some(t), theirs, "{text}"),
            // Chrono also takes leap seconds, which the fast path leaves to it.
            (None, Some(_)) => assert_eq!(&text[17..19], "60", "{text}"),
            (None, None) => {}
        };
        let mut shared = Stamps::default();
        let mut fast = 0;
        for k in 0..200_000 {
            // Every field is drawn a little past its range, so invalid dates come up
            // too. Half the years are any of 0000-9999, half are near now.
            let year = if k % 2 == 0 {
                field(4, 10_000, 0)
            } else {
                field(4, 300, 1900)
            };
            let text = format!(
                "{year}-{}-{}T{}:{}:{}Z",
                field(2, 14, 0),
                field(2, 33, 0),
                field(2, 26, 0),
                field(2, 62, 0),
                field(2, 62, 0),
            );
            let ours = shared.utc_seconds(&text);
            assert_eq!(ours, fresh(&text), "{text}");
            fast += usize::from(ours.is_some());
            agrees_with_chrono(ours, &text);
        }
        // Rows mostly repeat the last date, which is then not checked again: times on a
        // remembered date, valid or not, and an invalid date repeated, read as chrono reads them.
        for k in 0..60_000 {
            let date = ["2024-02-28", "2024-02-29", "2023-02-29", "2023-03-01"][k / 100 % 4];
            let text = format!(
                "{date}T{}:{}:{}Z",
                field(2, 26, 0),
                field(2, 62, 0),
                field(2, 62, 0)
            );
            agrees_with_chrono(shared.utc_seconds(&text), &text);
        }
        assert!(fast > 100_000, "{fast} of 200000 took the fast path");
        for text in [
            "2024-02-29T23:59:59Z",
            "2000-02-29T00:00:00Z",
            "1970-01-01T00:00:00Z",
        ] {
            assert_eq!(fresh(text), chrono(text), "{text}");
        }
        for text in [
            "1900-02-29T00:00:00Z",
            "2023-02-29T00:00:00Z",
            "2024-01-01 00:00:00Z",
            "2024-01-01T00:00:00+00:00",
            "2024-01-01t00:00:00z",
            "2024-01-01T00:00:00.5Z",
            "+024-01-01T00:00:00Z",
        ] {
            assert_eq!(fresh(text), None, "{text}");
        }
    }

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
        assert_eq!(
            s.points().collect::<Vec<_>>(),
            vec![(1704067200, 1.0), (1704067500, 3.0)]
        );
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
        assert_eq!(
            a.points().collect::<Vec<_>>(),
            vec![(1704067200, 9.0), (1704067500, 2.0)]
        );
        assert_eq!(a.first_line, 2);
        let b = t.get("b", Resource::Cpu).unwrap();
        assert_eq!(
            b.points().collect::<Vec<_>>(),
            vec![(1704067200, 5.0), (1704067500, 6.0)]
        );
        assert_eq!(b.first_line, 3);
        assert_eq!(
            (t.stats.rows, t.stats.duplicates, t.stats.out_of_order),
            (5, 1, 1)
        );
    }

    #[test]
    fn regular_series_are_one_run_and_windows_cut_exactly() {
        // Every 300 s from 1000, a gap of 600 s, then every 60 s.
        let times = (0..5)
            .map(|k| 1000 + 300 * k)
            .chain((0..6).map(|k| 2800 + 60 * k));
        let points: Vec<(i64, f64)> = times.zip((0..).map(f64::from)).collect();
        let s = Series::from_points(points.iter().rev().copied(), 7);
        assert_eq!(s.points().collect::<Vec<_>>(), points);
        assert_eq!((s.len(), s.runs.len()), (11, 2), "{:?}", s.runs);
        assert_eq!((s.first_time(), s.last_time()), (Some(1000), Some(3100)));
        assert_eq!(
            s.step_seconds(),
            Some(60),
            "five 60 s spacings beat four of 300 s"
        );
        for (from, to) in [
            (0, 5000),
            (1000, 1001),
            (1001, 1600),
            (1300, 2860),
            (2000, 2800),
        ] {
            let inside: Vec<_> = points
                .iter()
                .copied()
                .filter(|p| p.0 >= from && p.0 < to)
                .collect();
            assert_eq!(s.window(from, to), inside, "[{from}, {to})");
        }
        assert!(s.window(3200, 9000).is_empty() && s.window(1600, 1000).is_empty());
    }

    #[test]
    fn values_with_seven_significant_digits_read_back_exactly() {
        let values = [
            27.884, 0.000546, 1.1, 8454.142, 9999999.0, 123.4567, 0.1, 3e-9, 0.0,
        ];
        let s = Series::from_points(values.iter().enumerate().map(|(k, &v)| (k as i64, v)), 1);
        for (v, want) in s.values().zip(values) {
            assert_eq!(v, want, "{v:e} read back for {want:e}");
        }
        // More digits than that keep seven, those of the nearest `f32` (8454.142578).
        let s = Series::from_points([(0, 8454.142188), (1, 5789.011719)], 1);
        assert_eq!(s.values().collect::<Vec<_>>(), [8454.143, 5789.012]);
        let e = parse("timestamp,instance,resource,value\n2024-01-01T00:00:00Z,a,mem,1e39\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("t.csv:2") && e.contains("too large"), "{e}");
    }

    /// A reader that hands out one to nine bytes at a time.
    struct Trickle<'a>(&'a [u8], SplitMix);

    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let n = (1 + self.1.below(9)).min(buf.len()).min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }

    /// Splitting plain lines here reads every file as the csv crate alone reads it: the same
    /// series, counts and lines, or the same error on the same line. The files mix plain rows
    /// with quotes (one spanning lines), blank lines, CRLF and lone CR, invalid UTF-8, a BOM,
    /// wrong field counts and headers.
    #[test]
    fn plain_lines_read_as_the_csv_crate_reads_them() {
        let headers: [&[u8]; 6] = [
            b"timestamp,instance,resource,value",
            b" timestamp , instance,resource,value\r",
            b"\"timestamp\",instance,resource,value",
            b"\xEF\xBB\xBFtimestamp,instance,resource,value",
            b"time,instance,resource,value",
            b"",
        ];
        let odd: [&[u8]; 15] = [
            b"\"2024-01-01T00:10:00Z\",a,cpu,2",
            b"\xEF\xBB\xBF2024-01-01T00:05:00Z,a,cpu,1",
            b"\xEF\xBB\xBF\"2024-01-01T00:05:00Z\",a,cpu,1",
            b"2024-01-01T00:15:00Z,\"a\nb\",cpu,2",
            b"2024-01-01T00:15:00Z,\"a\"\"b\",mem,2",
            b"",
            b"\r",
            b"2024-01-01T00:20:00Z,a,cpu,3\r",
            b"2024-01-01T00:20:00Z,a\rb,cpu,3",
            b"2024-01-01T00:25:00Z,\xFF,cpu,1",
            b"2024-01-01T00:25:00Z,a,cpu",
            b"2024-01-01T00:25:00Z,a,cpu,1,",
            b"2024-01-01T00:30:00Z,a\"b,net,1",
            b"2024-01-01T00:35:00Z,a,cpu,NaN",
            b" 2024-01-01T00:40:00+01:00 , \xC3\xA9 , mem , 4 ",
        ];
        let mut rng = SplitMix(7);
        for case in 0..3000 {
            let mut text = Vec::new();
            let header = rng.below(2) == 0;
            if header {
                text.extend_from_slice(headers[rng.below(headers.len())]);
                text.push(b'\n');
            }
            for k in 0..rng.below(12) {
                if rng.below(4) == 0 {
                    text.extend_from_slice(odd[rng.below(odd.len())]);
                } else {
                    let (id, r) = (["a", "b", "c"][rng.below(3)], ["cpu", "mem"][rng.below(2)]);
                    let m = rng.below(60);
                    text.extend_from_slice(
                        format!("2024-01-01T00:{m:02}:00Z,{id},{r},{k}").as_bytes(),
                    );
                }
                text.push(b'\n');
            }
            if rng.below(3) == 0 {
                text.pop();
            }
            let trickled = Part::read(Trickle(&text, SplitMix(case)), header);
            let mut fast = Part::read(text.as_slice(), header);
            assert_eq!(trickled, fast, "case {case}: read a few bytes at a time");
            let mut csv = Rows::default().read_csv(text.as_slice(), 0, header, false);
            if text.contains(&b'\r') {
                // The csv crate starts a record that follows `\r\n` on the line before.
                for read in [&mut fast, &mut csv] {
                    match read {
                        Ok(part) => part.series.values_mut().for_each(|s| s.first_line = 0),
                        Err((line, _)) => *line = 0,
                    }
                }
            }
            assert_eq!(
                fast,
                csv,
                "case {case}: {:?}",
                String::from_utf8_lossy(&text)
            );
        }
        // A line longer than the buffer.
        let long = format!("2024-01-01T00:00:00Z,i,cpu,{}1\n", "0".repeat(3 << 20));
        let part = Part::read(long.as_bytes(), false).unwrap();
        assert_eq!((part.stats.rows, part.lines), (1, 1));
        // Plain CRLF lines keep their own numbers.
        let crlf = "timestamp,instance,resource,value\r\n2024-01-01T00:00:00Z,a,cpu,1\r\n\
                    2024-01-01T00:05:00Z,a,cpu,-1\r\n";
        let e = Part::read(crlf.as_bytes(), true).unwrap_err();
        assert_eq!(
            e,
            (3, "value -1 is negative (cpu cannot be below zero)".into())
        );
    }

    #[test]
    fn reading_in_parallel_ranges_equals_reading_in_order() {
        // Series-major, then time-major, with a series coming back, out of order and repeated.
        let mut csv = String::from("timestamp,instance,resource,value\n");
        for (id, r) in [("a", "cpu"), ("a", "mem"), ("b", "cpu")] {
            for m in (0..60).step_by(5) {
                csv += &format!("2024-01-01T00:{m:02}:00Z,{id},{r},{m}.5\n");
            }
        }
        for m in (0..60).step_by(5) {
            csv +=
                &format!("2024-01-01T01:{m:02}:00Z,c,net,{m}\n2024-01-01T01:{m:02}:00Z,a,cpu,1\n");
        }
        csv += "2024-01-01T00:30:00Z,b,cpu,99\n2024-01-01T00:31:00Z,b,cpu,98\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.csv");
        std::fs::write(&path, &csv).unwrap();
        let whole = parse(&csv).unwrap();
        assert_eq!(whole.stats.duplicates, 1);
        for (chunks, drop_behind) in [(2, false), (3, true), (7, false), (40, true), (500, false)] {
            let mut t = Telemetry::read_in_chunks(&path, chunks, drop_behind).unwrap();
            t.path = "t.csv".into();
            assert_eq!(t.stats, whole.stats, "{chunks} chunks");
            for ((key, a), (k2, b)) in t.series.iter().zip(&whole.series) {
                assert_eq!(key, k2);
                assert_eq!(a.first_line, b.first_line, "{key:?} in {chunks} chunks");
                assert_eq!(
                    a.points().collect::<Vec<_>>(),
                    b.points().collect::<Vec<_>>()
                );
            }
            assert_eq!(t.series.len(), whole.series.len());
        }
        // An error late in the file names its line in the file, not in its range.
        std::fs::write(&path, csv.clone() + "2024-01-01T02:00:00Z,a,cpu,-1\n").unwrap();
        let lines = csv.lines().count() + 1;
        for chunks in [1, 3, 7] {
            let e = Telemetry::read_in_chunks(&path, chunks, chunks == 3)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&format!("t.csv:{lines}: value -1 is negative")),
                "{e}"
            );
        }
    }

    #[test]
    fn the_first_unknown_instance_is_the_earliest_in_the_file() {
        let t = parse(
            "timestamp,instance,resource,value\n\
             2024-01-01T00:00:00Z,known,cpu,1\n\
             2024-01-01T00:00:00Z,zz,cpu,1\n\
             2024-01-01T00:00:00Z,aa,cpu,1\n",
        )
        .unwrap();
        let mut fleet = Fleet::default();
        assert_eq!(t.first_unknown(&fleet), Some(("known", 2)));
        let text = std::fs::read_to_string("fixtures/fleet.toml").unwrap();
        let mut known: Fleet = toml::from_str(&text).unwrap();
        known.instances.truncate(1);
        known.instances[0].id = "known".into();
        fleet.instances = known.instances;
        assert_eq!(t.first_unknown(&fleet), Some(("zz", 3)));
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
            t.get("vm-1", Resource::Mem)
                .unwrap()
                .points()
                .collect::<Vec<_>>(),
            vec![(1704067200, 1536.25)]
        );
        assert_eq!(t.instances().collect::<Vec<_>>(), vec!["vm-1"]);
    }
}
