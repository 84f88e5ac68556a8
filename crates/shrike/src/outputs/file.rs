//! The file output: JSON lines (or compact text) appended to a file, rotated when it reaches
//! `max_bytes` or is `max_age_secs` old. Rotation renames `PATH` to `PATH.1` (older ones
//! shift to `.2`, … and past `keep` are deleted), gzips it to `PATH.1.gz` when `compress`
//! (the default), and opens a fresh `PATH` (mode 0600). The file is reopened when it was
//! removed or renamed by someone else (logrotate), so an external rotation also works.

use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};

use super::config::OutputConfig;
use super::transport::{Record, Transport, TransportError};

/// Rotation settings.
#[derive(Debug, Clone)]
pub struct Rotation {
    pub max_bytes: Option<u64>,
    pub max_age: Option<Duration>,
    pub keep: usize,
    pub compress: bool,
}

pub struct FileTransport {
    path: PathBuf,
    rotation: Rotation,
    file: BufWriter<File>,
    size: u64,
    opened: SystemTime,
    inode: u64,
}

impl FileTransport {
    pub fn open(config: &OutputConfig) -> Result<Self> {
        let Some(path) = config.path.clone() else {
            bail!("a file output needs `path`");
        };
        let rotation = Rotation {
            max_bytes: config.max_bytes,
            max_age: config.max_age_secs.map(Duration::from_secs),
            keep: config.keep.unwrap_or(5),
            compress: config.compress.unwrap_or(true),
        };
        Self::with_rotation(path, rotation)
    }

    pub fn with_rotation(path: PathBuf, rotation: Rotation) -> Result<Self> {
        let (file, size, inode) =
            open_append(&path).with_context(|| format!("opening {}", path.display()))?;
        Ok(FileTransport {
            path,
            rotation,
            file: BufWriter::with_capacity(64 * 1024, file),
            size,
            opened: SystemTime::now(),
            inode,
        })
    }

    fn due(&self) -> bool {
        self.rotation.max_bytes.is_some_and(|max| self.size >= max)
            || self
                .rotation
                .max_age
                .is_some_and(|age| self.opened.elapsed().is_ok_and(|e| e >= age))
    }

    /// Renames the current file away, compresses it, and opens a fresh one.
    fn rotate(&mut self) -> io::Result<()> {
        self.file.flush()?;
        let keep = self.rotation.keep.max(1);
        let ext = if self.rotation.compress { ".gz" } else { "" };
        let base = self.path.display().to_string();
        let numbered = |n: usize| PathBuf::from(format!("{base}.{n}{ext}"));
        let _ = std::fs::remove_file(numbered(keep));
        for n in (1..keep).rev() {
            let from = numbered(n);
            if from.exists() {
                std::fs::rename(&from, numbered(n + 1))?;
            }
        }
        if self.rotation.compress {
            let staging = PathBuf::from(format!("{base}.rotating"));
            std::fs::rename(&self.path, &staging)?;
            self.reopen()?;
            gzip(&staging, &numbered(1))?;
            std::fs::remove_file(&staging)?;
        } else {
            std::fs::rename(&self.path, numbered(1))?;
            self.reopen()?;
        }
        Ok(())
    }

    fn reopen(&mut self) -> io::Result<()> {
        let (file, size, inode) = open_append(&self.path)?;
        self.file = BufWriter::with_capacity(64 * 1024, file);
        self.size = size;
        self.inode = inode;
        self.opened = SystemTime::now();
        Ok(())
    }

    /// Reopens when the path no longer names the file being written (removed or renamed).
    fn follow_external_rotation(&mut self) -> io::Result<()> {
        match std::fs::metadata(&self.path) {
            Ok(meta) if meta.ino() == self.inode => Ok(()),
            _ => {
                self.file.flush()?;
                self.reopen()
            }
        }
    }

    fn write_batch(&mut self, batch: &[Record]) -> io::Result<()> {
        self.follow_external_rotation()?;
        for record in batch {
            if self.due() {
                self.rotate()?;
            }
            self.file.write_all(record.line.as_bytes())?;
            self.file.write_all(b"\n")?;
            self.size += record.line.len() as u64 + 1;
        }
        self.file.flush()?;
        if self.due() {
            self.rotate()?;
        }
        Ok(())
    }
}

fn open_append(path: &Path) -> io::Result<(File, u64, u64)> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path)?;
    let meta = file.metadata()?;
    Ok((file, meta.len(), meta.ino()))
}

fn gzip(from: &Path, to: &Path) -> io::Result<()> {
    let mut input = File::open(from)?;
    let tmp = PathBuf::from(format!("{}.tmp", to.display()));
    let out = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(&tmp)?;
    let mut encoder =
        flate2::write::GzEncoder::new(BufWriter::new(out), flate2::Compression::default());
    io::copy(&mut input, &mut encoder)?;
    encoder.finish()?.flush()?;
    std::fs::rename(&tmp, to)
}

impl Transport for FileTransport {
    fn deliver(&mut self, batch: &[Record]) -> Result<(), TransportError> {
        // A disk that is full or a directory that went away may come back: retry, keeping
        // the batch. Lines written before a failure may be written again (at-least-once).
        self.write_batch(batch)
            .map_err(|err| TransportError::Retry(format!("{}: {err}", self.path.display())))
    }
}
