//! Small file-level helpers shared by every reader and writer, and the one error
//! every input and output file reports through.
//!
//! Atomic replacement is what makes `apply` crash-safe; line numbers are what
//! make a bad input's error point at the right place. Every boundary's error type
//! wraps [`FileError`], so a file that cannot be read or whose content is wrong is
//! reported the same way everywhere: the path, the line where one applies, the problem.

use serde::de::DeserializeOwned;
use std::io::Write;
use std::path::{Path, PathBuf};

/// A file that could not be read or written, or whose content is wrong.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The operating system refused to read or write it.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// Its content is wrong at one line (1-based; 0 when no line applies).
    #[error("{path}:{line}: {message}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The 1-based line of the problem.
        line: usize,
        /// What is wrong there.
        message: String,
    },
}

impl FileError {
    /// An I/O failure on `path`.
    pub fn io(path: &Path, source: std::io::Error) -> FileError {
        FileError::Io {
            path: path.to_owned(),
            source,
        }
    }

    /// A problem at `line` of `path`.
    pub fn invalid(path: &Path, line: usize, message: impl Into<String>) -> FileError {
        FileError::Invalid {
            path: path.to_owned(),
            line,
            message: message.into(),
        }
    }
}

/// Parses TOML text read from `path`; a syntax error, a wrong type or an unknown key is
/// an error naming the line it is on.
pub(crate) fn parse_toml<T: DeserializeOwned>(path: &Path, text: &str) -> Result<T, FileError> {
    toml::from_str(text).map_err(|e| {
        let (line, message) = toml_error(text, &e);
        FileError::invalid(path, line, message)
    })
}

/// Reads a text file whole, as [`read_text`], with the path in the error.
pub(crate) fn read(path: &Path) -> Result<String, FileError> {
    read_text(path).map_err(|source| FileError::io(path, source))
}

/// The 1-based line of a byte offset in `text`.
pub(crate) fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line and message of a TOML parse error. An unknown key is pointed at its own line,
/// not at the table holding it, where the parser's span starts.
fn toml_error(text: &str, e: &toml::de::Error) -> (usize, String) {
    let message = e.message().trim().to_owned();
    let Some(span) = e.span() else {
        return (1, message);
    };
    let unknown = message
        .strip_prefix("unknown field `")
        .and_then(|rest| rest.split('`').next());
    let within = unknown.and_then(|key| {
        let region = text.get(span.clone())?;
        key_line(region, key).map(|n| line_of(text, span.start) + n - 1)
    });
    (within.unwrap_or_else(|| line_of(text, span.start)), message)
}

/// The 1-based line of the first `key = …` (bare or quoted key) or `[… key]` table header.
pub(crate) fn key_line(text: &str, key: &str) -> Option<usize> {
    let quoted = format!("\"{key}\"");
    text.lines()
        .position(|l| {
            let l = l.trim_start();
            let assigned = [key, quoted.as_str()].iter().any(|k| {
                l.strip_prefix(k)
                    .is_some_and(|rest| rest.trim_start().starts_with('='))
            });
            let header = l.starts_with('[')
                && l.trim_end().trim_end_matches(']').rsplit(['.', '[']).next() == Some(key);
            assigned || header
        })
        .map(|n| n + 1)
}

/// Reads a text input whole; a file that is not UTF-8 is an error naming the line of the
/// first bad byte.
pub(crate) fn read_text(path: &Path) -> std::io::Result<String> {
    text(std::fs::read(path)?)
}

/// The bytes as text; bytes that are not UTF-8 are an error naming the line of the first
/// bad one.
pub(crate) fn text(bytes: Vec<u8>) -> std::io::Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        let bytes = e.as_bytes();
        let at = e.utf8_error().valid_up_to();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("line {line}: not valid UTF-8"),
        )
    })
}

/// Lowercase hex of a byte string.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The file `path` names, through any symlinks, when it exists; `path` itself otherwise.
/// Locks, ledgers and temp files are derived from it, so that a fleet reached through a
/// link and through its real name is one fleet.
pub(crate) fn real_path(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_owned())
}

/// Replaces `path` with `bytes` so that readers see the old or the new file, never a mix.
/// A symlink stays a symlink (the file it names is replaced), and the file keeps its
/// permissions and, where the process may set them, its owner and group.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let real = real_path(path);
    let path = real.as_path();
    let before = std::fs::metadata(path).ok();
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("out");
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        if let Some(meta) = &before {
            std::fs::set_permissions(&tmp, meta.permissions())?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::MetadataExt;
                // Only root may give a file away; elsewhere the writer's ids are all it has.
                let _ = std::os::unix::fs::chown(&tmp, Some(meta.uid()), Some(meta.gid()));
            }
        }
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
