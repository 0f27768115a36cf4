//! The persisted model selection under `models/`, so a cron run does not redo selection.
//!
//! Per series it keeps the chosen method, what it takes to refit it (periods,
//! pinned ETS model), the conformal offset, when it was selected, and a
//! fingerprint of the history it last saw with the demand that came out: an
//! unchanged series is not refitted at all. The format is in docs/formats.md.

use super::select::Selection;
use super::Settings;
use crate::file::FileError;
use crate::resource::Resource;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// The state file's format version.
const VERSION: u32 = 1;

/// What the history looked like when the demand was computed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Fingerprint {
    /// Seconds between samples: the series' most common spacing.
    pub step: i64,
    /// Unix seconds of the last sample.
    pub end: i64,
    /// Samples in the history window.
    pub samples: usize,
    /// Sum of the gridded values, in the series' units.
    pub sum: f64,
}

/// One series' entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    /// The series' instance id.
    pub instance: String,
    /// The series' resource.
    pub resource: Resource,
    /// The chosen method and what it takes to refit it.
    #[serde(flatten)]
    pub selection: Selection,
    /// When it was selected; re-selection is due every `reselect_hours`, at a per-series offset.
    pub selected_at: DateTime<Utc>,
    /// The history the stored demand came from; an unchanged history reuses it unfitted.
    pub fingerprint: Fingerprint,
    /// The demand quantile computed from that history.
    pub quantile: f64,
    /// The per-step quantiles (for look-ahead), `fingerprint.step` seconds apart.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<f64>,
    /// The mean point forecast computed from that history.
    pub mean: f64,
}

/// The selection state of every series.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct State {
    /// The format version (1); a file of another version is ignored.
    pub version: u32,
    /// The forecast settings the entries were made with; other settings invalidate them.
    pub settings: Option<Settings>,
    #[serde(rename = "series")]
    entries: Vec<Entry>,
    #[serde(skip)]
    index: BTreeMap<(String, Resource), usize>,
}

impl State {
    /// Reads `path`; a missing file is an empty state.
    pub fn load(path: &Path) -> Result<State, FileError> {
        let text = match std::fs::read_to_string(path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(State::default()),
            Err(source) => return Err(io(path, source)),
        };
        let mut state: State = serde_json::from_str(&text)
            .map_err(|e| FileError::invalid(path, e.line(), e.to_string()))?;
        if state.version != VERSION {
            return Ok(State::default());
        }
        state.reindex();
        Ok(state)
    }

    /// The entry of a series, if it was made with `settings`.
    pub fn get(&self, key: &(String, Resource), settings: &Settings) -> Option<&Entry> {
        if self.settings.as_ref() != Some(settings) {
            return None;
        }
        self.index.get(key).map(|&i| &self.entries[i])
    }

    /// Stores `entries` over the existing ones and drops those of `dropped` (all of
    /// them are dropped if the settings changed).
    pub fn update(
        &mut self,
        settings: &Settings,
        entries: Vec<Entry>,
        dropped: &[(String, Resource)],
    ) {
        if self.settings.as_ref() != Some(settings) {
            self.entries.clear();
        }
        self.version = VERSION;
        self.settings = Some(settings.clone());
        let mut merged: BTreeMap<(String, Resource), Entry> = std::mem::take(&mut self.entries)
            .into_iter()
            .chain(entries)
            .map(|e| ((e.instance.clone(), e.resource), e))
            .collect();
        for key in dropped {
            merged.remove(key);
        }
        self.entries = std::mem::take(&mut merged).into_values().collect();
        self.reindex();
    }

    /// The number of series with an entry.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no series has an entry.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn reindex(&mut self) {
        self.index = self
            .entries
            .iter()
            .enumerate()
            .map(|(i, e)| ((e.instance.clone(), e.resource), i))
            .collect();
    }

    /// Writes the state atomically (temp file, then rename), creating the directory.
    pub fn save(&self, path: &Path) -> Result<(), FileError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        }
        let text = serde_json::to_string_pretty(self).expect("state serialises");
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text + "\n").map_err(|e| io(&tmp, e))?;
        std::fs::rename(&tmp, path).map_err(|e| io(path, e))
    }
}

fn io(path: &Path, source: std::io::Error) -> FileError {
    FileError::io(path, source)
}
