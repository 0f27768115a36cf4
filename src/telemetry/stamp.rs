//! Timestamps: the `YYYY-MM-DDTHH:MM:SSZ` form parsed fast, anything else by chrono.

use chrono::{NaiveDate, NaiveTime};

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SSZ`, the form every importer and
/// `synth` write, in a fraction of the time of chrono's general RFC 3339 parser
/// (docs/decisions.md#telemetry-reader). `None` for any other form or an invalid
/// date or time (a leap second too), which that parser then reads or rejects with its own
/// message. It remembers the last date it checked: rows mostly repeat it, and checking
/// and counting a date costs more than all the rest.
#[derive(Default)]
pub(super) struct Stamps {
    /// The last valid date's ten bytes, as two integers, and its midnight.
    day: Option<((u64, u16), i64)>,
}

impl Stamps {
    pub(super) fn utc_seconds(&mut self, text: &str) -> Option<i64> {
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
