//! Reading large telemetry files: byte ranges split at line ends, and a reader that drops
//! what it has read from the page cache when the file cannot stay cached anyway.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::Path;

/// A file read start to end that, if `on`, drops what it has read from the page cache.
/// For a file larger than half the machine's memory, which cannot stay cached anyway:
/// otherwise the kernel must reclaim those pages under memory pressure as the read goes
/// on (docs/decisions.md#telemetry-reader).
pub(super) struct DropBehind {
    file: File,
    /// Where the pages not yet dropped start, and how far the file has been read.
    kept: u64,
    at: u64,
    on: bool,
}

impl DropBehind {
    /// Pages are dropped this many bytes at a time.
    const BATCH: u64 = 64 << 20;

    pub(super) fn new(file: File, at: u64, on: bool) -> DropBehind {
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
pub(super) fn memory() -> u64 {
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

/// Up to `chunks` byte ranges of `path` covering it, each ending at a line end (or the end).
pub(super) fn line_bounds(path: &Path, chunks: usize) -> std::io::Result<Vec<(u64, u64)>> {
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
