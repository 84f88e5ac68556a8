//! Sinks: where events go. stdout as JSON lines (the contract) or compact text for humans.
//!
//! Writes are buffered and flushed once per batch, so a burst costs one write(2) per batch
//! rather than one per event; JSON reuses each process image's serialized context
//! (`shrike_event::json::ContextCache`). Both formats are safe on a terminal: compact text
//! escapes control characters, and JSON writes the ones JSON leaves raw (DEL, C1, bidi
//! controls) as `\uXXXX`.

use std::io::{self, BufWriter, Write};

use shrike_event::json::ContextCache;
use shrike_event::{compact, Event};

/// How events are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One JSON object per line (the event contract).
    Json,
    /// One readable line per event.
    Compact,
}

pub struct Output<W: Write> {
    writer: BufWriter<W>,
    format: OutputFormat,
    contexts: ContextCache,
}

impl<W: Write> Output<W> {
    pub fn new(writer: W, format: OutputFormat) -> Self {
        Output {
            writer: BufWriter::with_capacity(64 * 1024, writer),
            format,
            contexts: ContextCache::default(),
        }
    }

    pub fn write(&mut self, event: &Event) -> io::Result<()> {
        match self.format {
            OutputFormat::Json => self
                .contexts
                .write(event, &mut self.writer)
                .map_err(io::Error::from)?,
            OutputFormat::Compact => self.writer.write_all(compact::render(event).as_bytes())?,
        }
        self.writer.write_all(b"\n")
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.writer.flush()
    }
}
