//! Canonical telemetry: the long-form CSV every importer writes and every stage reads.
//!
//! `timestamp,instance,resource,value`, RFC 3339 UTC timestamps, units as in
//! [`Resource`]. Reading is strict about content (NaN, negatives, unknown
//! resources are errors naming file and line) and lenient about order:
//! out-of-order rows are sorted and duplicate timestamps keep the last value,
//! both counted in [`IngestStats`] so the run log can report them. A region's
//! week of samples is tens of GB of CSV, so large files are read in parallel
//! and samples are held in 4 bytes each ([`Series`]).

use crate::fleet::Fleet;
use crate::resource::Resource;
use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Utc};
use rayon::prelude::*;
use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
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
///
/// Held compactly, since a region's telemetry is hundreds of millions of samples:
/// times as runs of equal spacing and values as `f32`, so a regularly sampled
/// series costs 4 bytes a sample instead of 16. Values keep seven significant
/// digits, more than collectors measure: read back, a value written with seven
/// or fewer is exactly the number in the file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    runs: Vec<Run>,
    values: Vec<f32>,
    /// The CSV line where this series first appeared, for error messages.
    pub first_line: u64,
}

/// `len` samples at `start`, `start + step`, `start + 2 step`, …
#[derive(Debug, Clone, Copy, PartialEq)]
struct Run {
    start: i64,
    step: i64,
    len: u32,
}

impl Run {
    fn time(&self, k: usize) -> i64 {
        self.start + self.step * k as i64
    }

    fn last(&self) -> i64 {
        self.time(self.len as usize - 1)
    }
}

impl Series {
    /// A series of `points` in any order; a repeated time keeps its last value.
    pub fn from_points(points: impl IntoIterator<Item = (i64, f64)>, first_line: u64) -> Series {
        let mut s = Series {
            first_line,
            ..Series::default()
        };
        for (t, v) in points {
            s.push(t, v);
        }
        s.normalise();
        s
    }

    /// Appends a sample, in any order (see [`Series::normalise`]).
    fn push(&mut self, t: i64, v: f64) {
        match self.runs.last_mut() {
            Some(run) if run.len == 1 => (run.step, run.len) = (t - run.start, 2),
            Some(run) if run.len < u32::MAX && run.time(run.len as usize) == t => run.len += 1,
            _ => self.runs.push(Run {
                start: t,
                step: 0,
                len: 1,
            }),
        }
        self.values.push(v as f32);
    }

    /// Appends the samples of `other`, read after these.
    fn append(&mut self, other: Series) {
        for r in other.runs {
            match self.runs.last_mut() {
                Some(last)
                    if last.len > 1
                        && r.len > 1
                        && last.step == r.step
                        && last.time(last.len as usize) == r.start
                        && last.len.checked_add(r.len).is_some() =>
                {
                    last.len += r.len;
                }
                _ => self.runs.push(r),
            }
        }
        self.values.extend(other.values);
    }

    /// Sorts by time and keeps the last value of a repeated time; returns how many were dropped.
    fn normalise(&mut self) -> u64 {
        let sorted = self.runs.iter().all(|r| r.len == 1 || r.step > 0)
            && self.runs.windows(2).all(|w| w[1].start > w[0].last());
        if sorted {
            return 0;
        }
        let mut points: Vec<(i64, f64)> = self.points().collect();
        points.sort_by_key(|&(t, _)| t);
        let before = points.len();
        // After a stable sort, equal times keep their order: keep the last one.
        points.reverse();
        points.dedup_by_key(|p| p.0);
        points.reverse();
        (self.runs, self.values) = (Vec::new(), Vec::new());
        for (t, v) in &points {
            self.push(*t, *v);
        }
        (before - points.len()) as u64
    }

    /// How many samples it holds.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether it holds no samples.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The time of its last sample.
    pub fn last_time(&self) -> Option<i64> {
        self.runs.last().map(Run::last)
    }

    /// The time of its first sample.
    pub fn first_time(&self) -> Option<i64> {
        self.runs.first().map(|r| r.start)
    }

    /// All `(unix seconds, value)` samples in time order.
    pub fn points(&self) -> impl Iterator<Item = (i64, f64)> + '_ {
        let times = self
            .runs
            .iter()
            .flat_map(|r| (0..r.len as usize).map(move |k| r.time(k)));
        times.zip(self.values())
    }

    /// All values in time order.
    pub fn values(&self) -> impl Iterator<Item = f64> + '_ {
        self.values.iter().map(|&v| widen(v))
    }

    /// The samples with times in `[from, to)`, in time order.
    pub fn window(&self, from: i64, to: i64) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        let mut offset = 0;
        for r in &self.runs {
            let n = r.len as usize;
            if r.start >= to {
                break;
            }
            if r.last() >= from {
                // Runs of more than one sample have a positive step once normalised.
                let index = |t: i64| ((t - r.start + r.step - 1) / r.step) as usize;
                let lo = if r.start >= from { 0 } else { index(from) };
                let hi = if r.last() < to { n } else { index(to) };
                out.extend((lo..hi).map(|k| (r.time(k), widen(self.values[offset + k]))));
            }
            offset += n;
        }
        out
    }

    /// The most common spacing between consecutive samples, in seconds (the smaller on a tie).
    pub fn step_seconds(&self) -> Option<i64> {
        let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
        for r in self.runs.iter().filter(|r| r.len > 1) {
            *counts.entry(r.step).or_default() += r.len as usize - 1;
        }
        for w in self.runs.windows(2) {
            *counts.entry(w[1].start - w[0].last()).or_default() += 1;
        }
        most_common(counts)
    }
}

/// A stored value as read: the `f32` rounded to seven significant digits. That is
/// the number in the file whenever it had seven or fewer (below about 8.6e9, where
/// `f32` is finer than that decimal grid), so data such as `27.884` stays exact.
fn widen(v: f32) -> f64 {
    const POW10: [f64; 23] = [
        1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
        1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
    ];
    let x = f64::from(v);
    if x == 0.0 {
        return x;
    }
    let digits = 6 - x.abs().log10().floor() as i32;
    match usize::try_from(digits.unsigned_abs())
        .ok()
        .and_then(|k| POW10.get(k))
    {
        Some(&s) if digits >= 0 => (x * s).round() / s,
        Some(&s) => (x / s).round() * s,
        None => x,
    }
}

/// The most common spacing between consecutive `(time, value)` points (the
/// smaller one on a tie), if there are two points.
pub fn most_common_step(points: &[(i64, f64)]) -> Option<i64> {
    let mut counts: BTreeMap<i64, usize> = BTreeMap::new();
    for w in points.windows(2) {
        *counts.entry(w[1].0 - w[0].0).or_default() += 1;
    }
    most_common(counts)
}

fn most_common(counts: BTreeMap<i64, usize>) -> Option<i64> {
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
    /// The file's last line, when it has no line end: a file cut while it was written
    /// ends so, and so does one written without a final newline.
    pub unended_line: Option<u64>,
}

/// All telemetry from one file, keyed by instance and resource.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Telemetry {
    pub path: PathBuf,
    pub series: BTreeMap<(String, Resource), Series>,
    pub stats: IngestStats,
}

impl Telemetry {
    /// Reads and validates a canonical telemetry CSV file; large files are read in
    /// parallel, in as many byte ranges as there are threads.
    pub fn read(path: &Path) -> Result<Telemetry, TelemetryError> {
        let len = std::fs::metadata(path)
            .map_err(|source| TelemetryError::Io {
                path: path.to_owned(),
                source,
            })?
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
        let io = |source| TelemetryError::Io {
            path: path.to_owned(),
            source,
        };
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
            let part = part
                .map_err(io)?
                .map_err(|(line, message)| TelemetryError::Parse {
                    path: path.to_owned(),
                    line: line + before,
                    message,
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
        let part = Part::read(reader, true).map_err(|(line, message)| TelemetryError::Parse {
            path: path.to_owned(),
            line,
            message,
        })?;
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

/// A file read start to end that, if `on`, drops what it has read from the page cache.
/// For a file larger than half the machine's memory, which cannot stay cached anyway:
/// otherwise the kernel must reclaim those pages under memory pressure as the read goes
/// on (docs/decisions.md#telemetry-reader).
struct DropBehind {
    file: File,
    /// Where the pages not yet dropped start, and how far the file has been read.
    kept: u64,
    at: u64,
    on: bool,
}

impl DropBehind {
    /// Pages are dropped this many bytes at a time.
    const BATCH: u64 = 64 << 20;

    fn new(file: File, at: u64, on: bool) -> DropBehind {
        DropBehind {
            file,
            kept: at,
            at,
            on,
        }
    }

    /// Drops the pages read since the last drop.
    fn drop_read(&mut self) {
        if !self.on || self.at == self.kept {
            return;
        }
        #[cfg(target_os = "linux")]
        // SAFETY: posix_fadvise only advises the kernel about the open descriptor's pages in
        // the given range; it has no memory-safety preconditions.
        unsafe {
            use std::os::fd::AsRawFd;
            let (from, len) = (
                self.kept as libc::off_t,
                (self.at - self.kept) as libc::off_t,
            );
            libc::posix_fadvise(self.file.as_raw_fd(), from, len, libc::POSIX_FADV_DONTNEED);
        }
        self.kept = self.at;
    }
}

impl Read for DropBehind {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.file.read(buf)?;
        self.at += n as u64;
        if self.at - self.kept >= Self::BATCH {
            self.drop_read();
        }
        Ok(n)
    }
}

impl Drop for DropBehind {
    fn drop(&mut self) {
        self.drop_read();
    }
}

/// The machine's memory in bytes (`u64::MAX` where it cannot be told, so nothing is dropped).
fn memory() -> u64 {
    #[cfg(target_os = "linux")]
    // SAFETY: sysconf only reads system configuration values.
    unsafe {
        let (pages, size) = (
            libc::sysconf(libc::_SC_PHYS_PAGES),
            libc::sysconf(libc::_SC_PAGESIZE),
        );
        if pages > 0 && size > 0 {
            return (pages as u64).saturating_mul(size as u64);
        }
    }
    u64::MAX
}

type Key = (String, Resource);

/// What one reader made of a file or a byte range of it.
#[derive(Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
struct Part {
    series: BTreeMap<Key, Series>,
    stats: IngestStats,
    /// Lines it spans (a range ends at a line end).
    lines: u64,
}

/// The header every telemetry file starts with.
const HEADER: [&str; 4] = ["timestamp", "instance", "resource", "value"];

/// A UTF-8 byte-order mark.
const BOM: &[u8] = b"\xEF\xBB\xBF";

impl Part {
    /// Reads rows, after the header if `header`; errors carry the line (from 1) and the problem.
    ///
    /// Plain lines (four unquoted UTF-8 fields, ended by `\n` or `\r\n`) are split here, a
    /// megabyte at a time, at a fraction of the csv crate's cost. From the first other line on
    /// (quotes, a blank line, a lone `\r`, invalid UTF-8, a wrong header or field count), the
    /// csv crate reads the rest, so every file reads as that crate reads it.
    fn read(mut reader: impl Read, header: bool) -> Result<Part, (u64, String)> {
        let mut rows = Rows::default();
        let mut header = header;
        let mut buf = vec![0; 1 << 20];
        // Bytes held in `buf`, and the line its first byte starts (from 1).
        let (mut have, mut line) = (0, 1);
        loop {
            let n = loop {
                match reader.read(&mut buf[have..]) {
                    Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                    other => break other.map_err(|e| (line, e.to_string()))?,
                }
            };
            have += n;
            // Whole lines only, but at the end whatever is left.
            let end = match memchr::memrchr(b'\n', &buf[..have]) {
                _ if n == 0 => have,
                Some(k) => k + 1,
                None => {
                    if have == buf.len() {
                        buf.resize(2 * have, 0);
                    }
                    continue;
                }
            };
            // The csv crate drops a byte-order mark where it starts reading, so a range
            // that starts with one is all the crate's.
            let used = if line == 1 && buf[..end].starts_with(BOM) {
                0
            } else {
                rows.plain_lines(&buf[..end], &mut line, &mut header)?
            };
            if used < end || (n == 0 && header) {
                // Further in, a line the crate reads first and skips keeps one as it is.
                let skip = line > 1;
                let lead: &[u8] = if skip { b"-\n" } else { b"" };
                let rest = std::io::Cursor::new([lead, &buf[used..have]].concat());
                let before = line - 1 - u64::from(skip);
                return rows.read_csv(rest.chain(reader), before, header, skip);
            }
            if n == 0 {
                rows.part.lines = line - 1;
                return Ok(rows.finish());
            }
            buf.copy_within(end..have, 0);
            have -= end;
        }
    }
}

/// A csv crate error without its positions, which count from where that crate started
/// reading (the caller names the line in the file).
fn csv_message(e: csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::Utf8 { err, .. } => format!("invalid UTF-8 in field {}", err.field() + 1),
        _ => e.to_string(),
    }
}

/// Rows as they are read: each is checked and added to its series.
#[derive(Default)]
struct Rows {
    part: Part,
    /// Rows usually come a series at a time: the series being read is filled here and
    /// filed when another starts, so most rows cost no lookup and no allocation.
    open: Option<(Key, Series)>,
    stamps: Stamps,
}

impl Rows {
    /// Reads the plain lines that `block` (whole lines; at the end of the input, the last
    /// may lack its `\n`) starts with, from `line` on, and returns how many bytes they span.
    fn plain_lines(
        &mut self,
        block: &[u8],
        line: &mut u64,
        header: &mut bool,
    ) -> Result<usize, (u64, String)> {
        // Quotes, a `\r` that does not end a line and invalid UTF-8 are the csv crate's.
        let plain = memchr::memchr2_iter(b'"', b'\r', block)
            .find(|&k| block[k] == b'"' || block.get(k + 1) != Some(&b'\n'))
            .unwrap_or(block.len());
        let text = match std::str::from_utf8(&block[..plain]) {
            Ok(text) => text,
            Err(e) => std::str::from_utf8(&block[..e.valid_up_to()]).expect("valid up to there"),
        };
        let bytes = text.as_bytes();
        let mut fields = [""; 4];
        // Where the line and its next field start, and how many fields it has so far.
        let (mut from, mut start, mut n) = (0, 0, 0);
        let ends = memchr::memchr2_iter(b',', b'\n', bytes);
        // Past the last `\n`, a line without one, if the block is plain to its end.
        let last = (text.len() == block.len() && !text.ends_with('\n')).then_some(bytes.len());
        for k in ends.chain(last) {
            if n < 4 {
                fields[n] = &text[start..k];
            }
            n += 1;
            start = k + 1;
            if k < bytes.len() && bytes[k] == b',' {
                continue;
            }
            if n != 4 {
                return Ok(from);
            }
            fields[3] = fields[3].strip_suffix('\r').unwrap_or(fields[3]);
            if *header {
                if fields.map(trim) != HEADER {
                    return Ok(from);
                }
                *header = false;
            } else {
                self.take(*line, fields)?;
            }
            if k < bytes.len() {
                *line += 1;
            }
            (from, n) = (start.min(bytes.len()), 0);
        }
        Ok(from)
    }

    /// Adds the row on `line`.
    fn take(&mut self, line: u64, fields: [&str; 4]) -> Result<(), (u64, String)> {
        let row = parse_record(fields, &mut self.stamps).map_err(|m| (line, m))?;
        self.part.stats.rows += 1;
        let same = |((id, r), _): &(Key, Series)| id == row.instance && *r == row.resource;
        if !self.open.as_ref().is_some_and(same) {
            crate::id::check(row.instance).map_err(|m| (line, format!("instance {m}")))?;
            if let Some((key, series)) = self.open.take() {
                file(&mut self.part.series, &mut self.part.stats, key, series);
            }
            // Filing keeps the first line of a series seen before.
            let series = Series {
                first_line: line,
                ..Series::default()
            };
            self.open = Some(((row.instance.to_owned(), row.resource), series));
        }
        let series = &mut self.open.as_mut().expect("opened above").1;
        if series.last_time().is_some_and(|last| row.time < last) {
            self.part.stats.out_of_order += 1;
        }
        series.push(row.time, row.value);
        Ok(())
    }

    /// Reads the rest with the csv crate, `before` lines into the range; the header first
    /// if `header`, after skipping the first line if `skip`.
    fn read_csv(
        mut self,
        reader: impl Read,
        before: u64,
        header: bool,
        skip: bool,
    ) -> Result<Part, (u64, String)> {
        // Fields are trimmed as they are parsed: the reader's own trimming copies every record.
        let mut rdr = csv::ReaderBuilder::new()
            .flexible(true)
            .has_headers(false)
            .from_reader(reader);
        let mut record = csv::StringRecord::new();
        if skip {
            rdr.read_record(&mut record)
                .map_err(|e| (before + 1, csv_message(e)))?;
        }
        if header {
            rdr.read_record(&mut record)
                .map_err(|e| (before + 1, csv_message(e)))?;
            if !record.iter().map(trim).eq(HEADER) {
                let found = record.iter().collect::<Vec<_>>().join(",");
                let expected = "expected header `timestamp,instance,resource,value`";
                return Err((before + 1, format!("{expected}, found `{found}`")));
            }
        }
        loop {
            // After `\r\n`, the csv crate stands between the two: such a line counts one early.
            let line = before + rdr.position().line();
            match rdr.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => return Err((line, csv_message(e))),
            }
            if record.len() != 4 {
                return Err((line, format!("expected 4 fields, found {}", record.len())));
            }
            self.take(line, [&record[0], &record[1], &record[2], &record[3]])?;
        }
        // At the end the reader stands on the line after the last line end.
        self.part.lines = before + rdr.position().line() - 1;
        Ok(self.finish())
    }

    fn finish(mut self) -> Part {
        if let Some((key, series)) = self.open.take() {
            file(&mut self.part.series, &mut self.part.stats, key, series);
        }
        self.part
    }
}

/// Adds `run`, read after everything in `series`, to what was read of its series before.
fn file(series: &mut BTreeMap<Key, Series>, stats: &mut IngestStats, key: Key, run: Series) {
    match series.entry(key) {
        std::collections::btree_map::Entry::Vacant(e) => {
            e.insert(run);
        }
        std::collections::btree_map::Entry::Occupied(mut e) => {
            let known = e.get_mut();
            let (Some(last), Some(first)) = (known.last_time(), run.first_time()) else {
                return;
            };
            if first < last {
                stats.out_of_order += 1;
            }
            known.append(run);
        }
    }
}

/// Up to `chunks` byte ranges of `path` covering it, each ending at a line end (or the end).
fn line_bounds(path: &Path, chunks: usize) -> std::io::Result<Vec<(u64, u64)>> {
    let len = std::fs::metadata(path)?.len();
    let mut reader = BufReader::new(File::open(path)?);
    let mut starts = vec![0];
    let mut skipped = Vec::new();
    for k in 1..chunks.max(1) as u64 {
        let at = len * k / chunks as u64;
        if at <= *starts.last().expect("starts with 0") {
            continue;
        }
        reader.seek(SeekFrom::Start(at))?;
        skipped.clear();
        let n = reader.read_until(b'\n', &mut skipped)? as u64;
        if at + n < len {
            starts.push(at + n);
        }
    }
    starts.dedup();
    let ends = starts.iter().skip(1).copied().chain([len]);
    Ok(starts.iter().copied().zip(ends).collect())
}

/// One parsed row, borrowing its instance id from the record.
struct Row<'a> {
    time: i64,
    instance: &'a str,
    resource: Resource,
    value: f64,
}

fn parse_record<'a>(fields: [&'a str; 4], stamps: &mut Stamps) -> Result<Row<'a>, String> {
    let field = |k: usize| trim(fields[k]);
    let time = match stamps.utc_seconds(field(0)) {
        Some(t) => t,
        None => DateTime::parse_from_rfc3339(field(0))
            .map_err(|e| format!("timestamp `{}` is not RFC 3339: {e}", field(0)))?
            .timestamp(),
    };
    let instance = field(1);
    if instance.is_empty() {
        return Err("empty instance id".into());
    }
    let resource: Resource = field(2).parse()?;
    // Rust reads `0.` as 0; here it is what a value cut short leaves.
    let value: f64 = Some(field(3))
        .filter(|v| !v.ends_with('.'))
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("value `{}` is not a number", field(3)))?;
    if !value.is_finite() {
        return Err(format!("value `{}` is not finite", field(3)));
    }
    if value < 0.0 {
        return Err(format!(
            "value {value} is negative ({} cannot be below zero)",
            resource
        ));
    }
    if value > f64::from(f32::MAX) {
        return Err(format!("value {value} is too large (at most {})", f32::MAX));
    }
    Ok(Row {
        time,
        instance,
        resource,
        value,
    })
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SSZ`, the form every importer and
/// `synth` write, in a fraction of the time of chrono's general RFC 3339 parser
/// (docs/decisions.md#telemetry-reader). `None` for any other form or an invalid
/// date or time (a leap second too), which that parser then reads or rejects with its own
/// message. It remembers the last date it checked: rows mostly repeat it, and checking
/// and counting a date costs more than all the rest.
#[derive(Default)]
struct Stamps {
    /// The last valid date's ten bytes, as two integers, and its midnight.
    day: Option<((u64, u16), i64)>,
}

impl Stamps {
    fn utc_seconds(&mut self, text: &str) -> Option<i64> {
        let b = text.as_bytes();
        let punctuation = [
            (4, b'-'),
            (7, b'-'),
            (10, b'T'),
            (13, b':'),
            (16, b':'),
            (19, b'Z'),
        ];
        if b.len() != 20 || punctuation.iter().any(|&(k, c)| b[k] != c) {
            return None;
        }
        let number = |from: usize, to: usize| {
            b[from..to].iter().try_fold(0u32, |n, &c| {
                c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
            })
        };
        let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        let date = (
            u64::from_le_bytes(b[..8].try_into().expect("20 bytes")),
            u16::from_le_bytes([b[8], b[9]]),
        );
        let midnight = match self.day {
            Some((known, midnight)) if known == date => midnight,
            _ => {
                let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
                // Four digits: the year always fits.
                let midnight = NaiveDate::from_ymd_opt(year as i32, month, day)?
                    .and_time(NaiveTime::MIN)
                    .and_utc()
                    .timestamp();
                self.day = Some((date, midnight));
                midnight
            }
        };
        Some(midnight + i64::from(hour * 3600 + minute * 60 + second))
    }
}

/// `str::trim`, without its scans when the field starts and ends in visible ASCII.
fn trim(field: &str) -> &str {
    match (field.as_bytes().first(), field.as_bytes().last()) {
        (Some(a), Some(z)) if a.is_ascii_graphic() && z.is_ascii_graphic() => field,
        _ => field.trim(),
    }
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
