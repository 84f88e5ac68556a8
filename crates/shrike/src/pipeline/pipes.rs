//! The two ends of a pipe: which programs hold which standard fds of one pipe, so an exec whose
//! stdin is a pipe can name the program writing into it (`curl … | sh`, `base64 -d | bash`)
//! and an exec whose stdout is one the program reading it. The kernel gives each standard fd's
//! pipe inode at exec; this table remembers the recent ones, bounded, oldest forgotten first.
//! A pipeline's programs exec in any order, so whichever execs second is the one whose event
//! names the other.

use std::sync::Arc;

use shrike_event::{ExecId, StdioPipe};

use super::recent::Recent;

/// At most this many pipes are remembered; the oldest go first.
const MAX_PIPES: usize = 4096;
/// At most this many images per pipe (a shell's children inherit its stdin); the oldest go.
const MAX_ENDS: usize = 8;

/// One image holding a pipe as one of its standard fds.
#[derive(Debug, Clone)]
struct End {
    fd: u8,
    exec_id: ExecId,
    binary: Arc<str>,
}

impl End {
    /// Whether `self` and an end at `fd` are opposite ends: a writer (stdout or stderr) and a
    /// reader (stdin).
    fn faces(&self, fd: u8) -> bool {
        (self.fd == 0) != (fd == 0)
    }
}

#[derive(Debug, Default)]
pub(super) struct PipeEnds {
    by_ino: Recent<u64, Vec<End>, MAX_PIPES>,
}

impl PipeEnds {
    /// The pipes among an exec's standard fds, each with the programs seen at its other end,
    /// and remembers this image at its own ends.
    pub(super) fn exec(
        &mut self,
        pipes: &[shrike_bpf::decode::StdioPipe],
        exec_id: ExecId,
        binary: &Arc<str>,
    ) -> Vec<StdioPipe> {
        let mut out = Vec::new();
        for p in pipes {
            let before = out.len();
            if let Some(ends) = self.by_ino.get(&p.ino) {
                out.extend(ends.iter().filter(|e| e.faces(p.fd)).map(|e| StdioPipe {
                    fd: p.fd,
                    peer_binary: Some(e.binary.to_string()),
                    peer_exec_id: Some(e.exec_id),
                }));
            }
            if out.len() == before {
                out.push(StdioPipe {
                    fd: p.fd,
                    ..StdioPipe::default()
                });
            }
        }
        for p in pipes {
            self.remember(
                p.ino,
                End {
                    fd: p.fd,
                    exec_id,
                    binary: binary.clone(),
                },
            );
        }
        out
    }

    fn remember(&mut self, ino: u64, end: End) {
        let ends = self.by_ino.get_or_default(ino);
        // An image already there at the same fd (an exec without fork) is replaced.
        ends.retain(|e| e.fd != end.fd || e.exec_id != end.exec_id);
        if ends.len() >= MAX_ENDS {
            ends.remove(0);
        }
        ends.push(end);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shrike_bpf::decode::StdioPipe as Raw;

    fn peers(v: &[StdioPipe]) -> Vec<(u8, Option<&str>)> {
        v.iter().map(|p| (p.fd, p.peer_binary.as_deref())).collect()
    }

    /// `curl … | sh` in either exec order: the second image names the first, stdin's writer
    /// or stdout's reader; an unrelated pipe names nobody.
    #[test]
    fn the_second_image_of_a_pipeline_names_the_first() {
        let curl: Arc<str> = "/usr/bin/curl".into();
        let sh: Arc<str> = "/usr/bin/dash".into();

        let mut t = PipeEnds::default();
        assert_eq!(
            peers(&t.exec(&[Raw { fd: 1, ino: 5 }], ExecId(1), &curl)),
            [(1, None)]
        );
        let s = t.exec(&[Raw { fd: 0, ino: 5 }], ExecId(2), &sh);
        assert_eq!(peers(&s), [(0, Some("/usr/bin/curl"))]);
        assert_eq!(s[0].peer_exec_id, Some(ExecId(1)));

        let mut t = PipeEnds::default();
        t.exec(&[Raw { fd: 0, ino: 6 }], ExecId(2), &sh);
        assert_eq!(
            peers(&t.exec(&[Raw { fd: 1, ino: 6 }], ExecId(1), &curl)),
            [(1, Some("/usr/bin/dash"))]
        );

        // Two readers of one pipe are not each other's peers; a third pipe is unknown.
        let mut t = PipeEnds::default();
        t.exec(&[Raw { fd: 0, ino: 7 }], ExecId(3), &sh);
        assert_eq!(
            peers(&t.exec(&[Raw { fd: 0, ino: 7 }], ExecId(4), &sh)),
            [(0, None)]
        );
        assert_eq!(
            peers(&t.exec(&[Raw { fd: 0, ino: 8 }], ExecId(5), &sh)),
            [(0, None)]
        );
    }

    /// The table stays bounded: the oldest pipe is forgotten first.
    #[test]
    fn the_oldest_pipes_are_forgotten() {
        let b: Arc<str> = "/bin/x".into();
        let mut t = PipeEnds::default();
        for ino in 0..(MAX_PIPES as u64 + 10) {
            t.exec(&[Raw { fd: 1, ino }], ExecId(ino), &b);
        }
        assert_eq!(t.by_ino.len(), MAX_PIPES);
        assert_eq!(
            peers(&t.exec(&[Raw { fd: 0, ino: 0 }], ExecId(1), &b)),
            [(0, None)]
        );
        assert_eq!(
            peers(&t.exec(&[Raw { fd: 0, ino: 20 }], ExecId(1), &b)),
            [(0, Some("/bin/x"))]
        );
        for _ in 0..20 {
            t.exec(&[Raw { fd: 0, ino: 30 }], ExecId(1), &b);
        }
        assert!(t.by_ino.get(&30).unwrap().len() <= MAX_ENDS);
    }
}
