//! Writing events as JSON lines with each process context serialized once.
//!
//! Every event carries `process`, `parent` and `ancestors`: most of its bytes, and most of the
//! agent's serialization time (string escaping of argv, binaries and paths), yet the same for
//! every event one process image causes while its ancestry stands. [`ContextCache`] keeps that
//! JSON text per process image, keyed by the `Arc<Process>` the pipeline shares between events,
//! and checked against the event's parent and ancestors by pointer, so a reparented process
//! (new ancestry) is written afresh. The output is byte for byte what
//! [`crate::text::to_writer_terminal_safe`] writes for the [`Event`] itself (tested): JSON with
//! the characters a terminal acts on escaped. Bounded: at most `capacity` images; when full it
//! starts over.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use serde_json::value::RawValue;

use crate::model::{Event, Process, RawContext};
use crate::text::{to_writer_terminal_safe, TerminalSafe};

/// The JSON of process contexts recently written, by process image.
pub struct ContextCache {
    entries: HashMap<usize, Entry>,
    capacity: usize,
    hits: u64,
    misses: u64,
}

struct Entry {
    /// Held so that the pointers used as keys stay unique while the entry lives.
    process: Arc<Process>,
    parent: Option<Arc<Process>>,
    ancestors: Vec<Arc<Process>>,
    json: [Box<RawValue>; 3],
}

impl Entry {
    fn fits(&self, event: &Event) -> bool {
        let same = |a: &Arc<Process>, b: &Arc<Process>| Arc::ptr_eq(a, b);
        same(&self.process, &event.process)
            && match (&self.parent, &event.parent) {
                (Some(a), Some(b)) => same(a, b),
                (None, None) => true,
                _ => false,
            }
            && self.ancestors.len() == event.ancestors.len()
            && self
                .ancestors
                .iter()
                .zip(&event.ancestors)
                .all(|(a, b)| same(a, b))
    }
}

impl Default for ContextCache {
    fn default() -> Self {
        ContextCache::new(1024)
    }
}

impl ContextCache {
    /// A cache of at most `capacity` process contexts.
    pub fn new(capacity: usize) -> Self {
        ContextCache {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            hits: 0,
            misses: 0,
        }
    }

    /// Writes `event` as one JSON object (no newline) to `out`.
    pub fn write<W: Write>(&mut self, event: &Event, out: &mut W) -> serde_json::Result<()> {
        // Another thread of the process: its `process.tid` differs from the cached text.
        if event.tid != event.process.tid {
            return to_writer_terminal_safe(out, event);
        }
        let key = Arc::as_ptr(&event.process) as usize;
        let fresh = !self.entries.get(&key).is_some_and(|e| e.fits(event));
        if fresh {
            self.misses += 1;
            if self.entries.len() >= self.capacity {
                self.entries.clear();
            }
            let entry = Entry {
                process: event.process.clone(),
                parent: event.parent.clone(),
                ancestors: event.ancestors.clone(),
                json: event.context_json()?,
            };
            self.entries.insert(key, entry);
        } else {
            self.hits += 1;
        }
        let Some(entry) = self.entries.get(&key) else {
            return to_writer_terminal_safe(out, event);
        };
        let ctx = RawContext {
            process: &entry.json[0],
            parent: &entry.json[1],
            ancestors: &entry.json[2],
        };
        let mut serializer = serde_json::Serializer::with_formatter(out, CachedContexts);
        event.serialize_with(&ctx, &mut serializer)
    }

    /// (hits, misses) so far.
    pub fn stats(&self) -> (u64, u64) {
        (self.hits, self.misses)
    }
}

/// [`TerminalSafe`] for the event's own strings; the raw fragments, which in an event are only
/// the cached contexts that `Event::context_json` wrote terminal-safe already, verbatim.
/// (Scanning them again on every hit was a quarter of the agent's CPU on loopback TCP.)
struct CachedContexts;

impl serde_json::ser::Formatter for CachedContexts {
    fn write_string_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        TerminalSafe.write_string_fragment(writer, fragment)
    }

    fn write_raw_fragment<W: ?Sized + Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        writer.write_all(fragment.as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{EventKind, ExecId, FileInfo};
    use crate::time::Timestamp;

    fn proc(pid: u32, binary: &str, args: &[&str]) -> Arc<Process> {
        Arc::new(Process {
            pid,
            tid: pid,
            exec_id: ExecId(u64::from(pid) << 8),
            binary: binary.into(),
            args: args
                .iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .into(),
            cwd: "/tmp/a \"quoted\" dir\n".into(),
            ..Process::default()
        })
    }

    fn event(process: &Arc<Process>, parent: Option<&Arc<Process>>, path: &str) -> Event {
        let mut e = Event::new(
            Timestamp(1_700_000_000_123_456_789),
            EventKind::FileOpen,
            "node".into(),
            process.clone(),
        );
        e.parent = parent.cloned();
        e.ancestors = parent.into_iter().cloned().collect();
        e.set_file(FileInfo {
            path: path.into(),
            ..FileInfo::default()
        });
        e.result = Some(3);
        e
    }

    fn cached(cache: &mut ContextCache, e: &Event) -> String {
        let mut out = Vec::new();
        cache.write(e, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    /// Cached or not, the bytes are serde_json's for the event; the second event of an image
    /// reuses its context, a new ancestry or another thread does not.
    #[test]
    fn cached_output_is_byte_for_byte_the_events_own_json() {
        let mut cache = ContextCache::new(8);
        let bash = proc(10, "/usr/bin/bash", &["bash", "-c", "x\u{1b}]0;t\u{7}"]);
        let cat = proc(11, "/usr/bin/cat", &["cat", "/etc/shadow", "é\\"]);
        let first = event(&cat, Some(&bash), "/etc/shadow");
        assert_eq!(
            cached(&mut cache, &first),
            serde_json::to_string(&first).unwrap()
        );
        let second = event(&cat, Some(&bash), "/etc/gshadow");
        assert_eq!(
            cached(&mut cache, &second),
            serde_json::to_string(&second).unwrap()
        );
        assert_eq!(cache.stats(), (1, 1));

        // Reparented: the parent changed, so the context is written anew.
        let init = proc(1, "/sbin/init", &["init"]);
        let orphan = event(&cat, Some(&init), "/etc/shadow");
        assert_eq!(
            cached(&mut cache, &orphan),
            serde_json::to_string(&orphan).unwrap()
        );
        assert_eq!(cache.stats(), (1, 2));

        // Another thread: its tid is written, not the cached one.
        let mut thread = event(&cat, Some(&init), "/etc/passwd");
        thread.tid = 12;
        let text = cached(&mut cache, &thread);
        assert_eq!(text, serde_json::to_string(&thread).unwrap());
        assert!(text.contains("\"tid\":12"), "{text}");

        // No parent at all.
        let lone = event(&bash, None, "/x");
        assert_eq!(
            cached(&mut cache, &lone),
            serde_json::to_string(&lone).unwrap()
        );
    }

    /// The cache never holds more than its capacity.
    #[test]
    fn the_cache_is_bounded() {
        let mut cache = ContextCache::new(4);
        for pid in 0..100 {
            let p = proc(pid, "/bin/true", &["true"]);
            let e = event(&p, None, "/x");
            assert_eq!(cached(&mut cache, &e), serde_json::to_string(&e).unwrap());
            assert!(cache.entries.len() <= 4);
        }
    }

    /// Issue 19, case 6: the cached context is escaped like the rest (a C1 CSI and a bidi
    /// override in argv, DEL in a path): the same text as `to_writer_terminal_safe`, inert on a
    /// terminal, the same strings to a JSON reader.
    #[test]
    fn cached_contexts_are_terminal_safe() {
        let mut cache = ContextCache::new(4);
        let p = proc(9, "/tmp/\u{202e}gpj.sh", &["x", "\u{9b}2J", "\x1b]0;t\x07"]);
        for _ in 0..2 {
            let e = event(&p, None, "/tmp/\u{7f}x");
            let text = cached(&mut cache, &e);
            let mut expected = Vec::new();
            to_writer_terminal_safe(&mut expected, &e).unwrap();
            assert_eq!(text, String::from_utf8(expected).unwrap());
            assert!(!text.chars().any(crate::text::is_unsafe_char), "{text}");
            let back: Event = serde_json::from_str(&text).unwrap();
            assert_eq!(back.process.args[1], "\u{9b}2J");
        }
    }

    /// Issue 19, case 6, through the cache's reuse: a shell whose argv carries an OSC title
    /// sequence and a bidi override, and whose parent's argv does too, causes three events. The
    /// second and third take the process and parent JSON from the cache (two hits), and each
    /// is byte for byte the uncached terminal-safe text: `\u001b]0;pwned\u0007` and `\u202e`
    /// where the raw characters were, the same argv when read back, the kept text itself
    /// already escaped, and the timestamp and exec ids (written digit by digit) unchanged.
    #[test]
    fn an_osc_sequence_and_a_bidi_override_in_argv_stay_escaped_on_cache_hits() {
        let osc = "printf '\x1b]0;pwned\x07'";
        let bidi = "invoice\u{202e}fdp.sh";
        let parent = proc(20, "/usr/bin/bash", &["bash", "-c", osc]);
        let shell = proc(21, "/usr/bin/sh", &["sh", "-c", osc, bidi]);
        let mut cache = ContextCache::new(4);
        for (n, path) in ["/etc/passwd", "/etc/group", "/tmp/\u{2067}x"]
            .iter()
            .enumerate()
        {
            let e = event(&shell, Some(&parent), path);
            let text = cached(&mut cache, &e);
            assert_eq!(cache.stats(), (n as u64, 1));
            let mut uncached = Vec::new();
            to_writer_terminal_safe(&mut uncached, &e).unwrap();
            assert_eq!(text, String::from_utf8(uncached).unwrap());
            assert!(!text.chars().any(crate::text::is_unsafe_char), "{text}");
            assert!(text.contains("printf '\\u001b]0;pwned\\u0007'"), "{text}");
            assert!(text.contains("invoice\\u202efdp.sh"), "{text}");
            assert!(
                text.contains("\"time\":\"2023-11-14T22:13:20.123456789Z\""),
                "{text}"
            );
            let back: Event = serde_json::from_str(&text).unwrap();
            assert_eq!(back.process.args[2], osc);
            assert_eq!(back.process.args[3], bidi);
            assert_eq!(back.parent.as_ref().unwrap().args[2], osc);
            assert_eq!(back.process.exec_id, shell.exec_id);
        }
        let kept = &cache.entries[&(Arc::as_ptr(&shell) as usize)].json;
        for part in kept {
            assert!(
                !part.get().chars().any(crate::text::is_unsafe_char),
                "{}",
                part.get()
            );
        }
    }
}
