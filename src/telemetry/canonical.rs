//! The canonical CSV: a fast hand-split reader with the csv crate behind it for quoted
//! or unusual lines, record checks, and the writer.

use super::stamp::Stamps;
use super::{IngestStats, Sample, Series};
use crate::resource::Resource;
use chrono::{DateTime, SecondsFormat};
use std::collections::BTreeMap;
use std::io::{Read, Write};

pub(super) type Key = (String, Resource);

/// What one reader made of a file or a byte range of it.
#[derive(Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub(super) struct Part {
    pub(super) series: BTreeMap<Key, Series>,
    pub(super) stats: IngestStats,
    /// Lines it spans (a range ends at a line end).
    pub(super) lines: u64,
}

/// The header every telemetry file starts with.
const HEADER: [&str; 4] = ["timestamp", "instance", "resource", "value"];

/// A UTF-8 byte-order mark.
pub(super) const BOM: &[u8] = b"\xEF\xBB\xBF";

impl Part {
    /// Reads rows, after the header if `header`; errors carry the line (from 1) and the problem.
    ///
    /// Plain lines (four unquoted UTF-8 fields, ended by `\n` or `\r\n`) are split here, a
    /// megabyte at a time, at a fraction of the csv crate's cost. From the first other line on
    /// (quotes, a blank line, a lone `\r`, invalid UTF-8, a wrong header or field count), the
    /// csv crate reads the rest, so every file reads as that crate reads it.
    pub(super) fn read(mut reader: impl Read, header: bool) -> Result<Part, (u64, String)> {
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
pub(super) struct Rows {
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
            let mut series = Series::default();
            series.first_line = line;
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
    pub(super) fn read_csv(
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
pub(super) fn file(
    series: &mut BTreeMap<Key, Series>,
    stats: &mut IngestStats,
    key: Key,
    run: Series,
) {
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

/// `str::trim`, without its scans when the field starts and ends in visible ASCII.
pub(super) fn trim(field: &str) -> &str {
    match (field.as_bytes().first(), field.as_bytes().last()) {
        (Some(a), Some(z)) if a.is_ascii_graphic() && z.is_ascii_graphic() => field,
        _ => field.trim(),
    }
}

/// Writes samples as canonical telemetry CSV, header first, in the order given; timestamps
/// to the second, values to 6 decimals.
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
