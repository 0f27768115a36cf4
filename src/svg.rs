//! Writing an SVG picture that `plotters` draws into a string.
//!
//! Every plot uses `plotters`' SVG backend and no font feature, so it needs no system fonts
//! or libraries: text is written as SVG `<text>` and the viewer renders it.

use crate::file::FileError;
use std::path::{Path, PathBuf};

/// Why a plot was not written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// Drawing the plot failed.
    #[error("{path}: cannot draw the plot: {message}")]
    Draw {
        /// The plot file.
        path: PathBuf,
        /// Why drawing failed.
        message: String,
    },
    /// Writing the plot file failed.
    #[error(transparent)]
    File(#[from] FileError),
}

/// Draws with `draw` into a string and writes it to `path`.
pub fn write(
    path: &Path,
    draw: impl FnOnce(&mut String) -> Result<(), String>,
) -> Result<(), PlotError> {
    let mut svg = String::new();
    draw(&mut svg).map_err(|message| PlotError::Draw {
        path: path.to_owned(),
        message,
    })?;
    std::fs::write(path, svg).map_err(|source| FileError::io(path, source).into())
}

/// A drawing error as text.
pub fn text(e: impl std::fmt::Display) -> String {
    e.to_string()
}
