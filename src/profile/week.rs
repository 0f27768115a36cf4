//! Counts by hour of the week, kept sparse: most users of a large log come in one or
//! two hours of it (the Azure VM log has 53,109 tenant batches), and 168 counters
//! each, twice per user, were most of a profile's memory. Written as the
//! [`WEEK_HOURS`] counts, Monday 00:00 UTC first, so the state file reads the same.

use super::WEEK_HOURS;
use serde::de::{self, SeqAccess, Visitor};
use serde::ser::SerializeSeq;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Counts by hour of the week: the hours with a count, in order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WeekHours {
    counts: Vec<(u8, u64)>,
}

impl WeekHours {
    /// Counts one more in hour `h` (`h < WEEK_HOURS`).
    pub fn add(&mut self, h: usize) {
        debug_assert!(h < WEEK_HOURS);
        let h = h as u8;
        match self.counts.binary_search_by_key(&h, |&(k, _)| k) {
            Ok(i) => self.counts[i].1 += 1,
            Err(i) => self.counts.insert(i, (h, 1)),
        }
    }

    /// The count of hour `h`.
    pub fn get(&self, h: usize) -> u64 {
        let Ok(h) = u8::try_from(h) else {
            return 0;
        };
        self.counts
            .binary_search_by_key(&h, |&(k, _)| k)
            .map_or(0, |i| self.counts[i].1)
    }

    /// All hours' counts summed.
    pub fn total(&self) -> u64 {
        self.counts.iter().map(|&(_, c)| c).sum()
    }

    /// The hours with a count, in order, with their counts.
    pub fn iter(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.counts.iter().map(|&(h, c)| (usize::from(h), c))
    }
}

impl Serialize for WeekHours {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut seq = serializer.serialize_seq(Some(WEEK_HOURS))?;
        let mut kept = self.counts.iter().peekable();
        for h in 0..WEEK_HOURS {
            let count = kept
                .next_if(|&&(k, _)| usize::from(k) == h)
                .map_or(0, |&(_, c)| c);
            seq.serialize_element(&count)?;
        }
        seq.end()
    }
}

impl<'de> Deserialize<'de> for WeekHours {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Hours;
        impl<'de> Visitor<'de> for Hours {
            type Value = WeekHours;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                write!(f, "{WEEK_HOURS} counts, one per hour of the week")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<WeekHours, A::Error> {
                let mut counts = Vec::new();
                let mut h = 0;
                while let Some(count) = seq.next_element::<u64>()? {
                    if h >= WEEK_HOURS {
                        return Err(de::Error::invalid_length(h + 1, &self));
                    }
                    if count > 0 {
                        counts.push((h as u8, count));
                    }
                    h += 1;
                }
                if h != WEEK_HOURS {
                    return Err(de::Error::invalid_length(h, &self));
                }
                Ok(WeekHours { counts })
            }
        }
        deserializer.deserialize_seq(Hours)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Counts land in their hour, and the file holds all 168 in order, as the dense
    /// array did; a wrong number of hours is refused.
    #[test]
    fn week_hours_count_and_round_trip_as_168_counts() {
        let mut w = WeekHours::default();
        for h in [167, 3, 3, 0, 100] {
            w.add(h);
        }
        assert_eq!((w.get(3), w.get(0), w.get(167), w.get(4)), (2, 1, 1, 0));
        assert_eq!(w.total(), 5);
        let mut dense = vec![0u64; WEEK_HOURS];
        for (h, c) in [(0, 1), (3, 2), (100, 1), (167, 1)] {
            dense[h] = c;
        }
        let text = serde_json::to_string(&w).expect("serialises");
        assert_eq!(text, serde_json::to_string(&dense).expect("serialises"));
        let back: WeekHours = serde_json::from_str(&text).expect("reads back");
        assert_eq!(back, w);
        for n in [WEEK_HOURS - 1, WEEK_HOURS + 1] {
            let text = serde_json::to_string(&vec![0u64; n]).expect("serialises");
            let err = serde_json::from_str::<WeekHours>(&text).expect_err("refused");
            assert!(err.to_string().contains("168 counts"), "{err}");
        }
    }
}
