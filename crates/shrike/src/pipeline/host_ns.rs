//! The host's namespaces — the kernel's initial ones — read once from `/proc`, so that a setns
//! can be told to have entered them: the kernel reports the inode numbers of the caller's
//! namespaces after the call, and a kind whose number is the host's is an entry into the host.
//! They are read from kthreadd (PID 2, in the initial namespaces whatever PID 1 does, and
//! readable where PID 1's are not, as under some sandboxes), else from PID 1.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use shrike_bpf::decode::file::NS_KINDS;

/// The inode numbers of the host's namespaces, by [`NS_KINDS`] (0 where unreadable).
#[derive(Debug, Clone, Default)]
pub struct HostNamespaces {
    inum: [u32; NS_KINDS.len()],
}

impl HostNamespaces {
    /// Reads `PROC/2/ns/<kind>` (when PID 2 is kthreadd) or `PROC/1/ns/<kind>` for every kind
    /// (`pid` is the process's own pid namespace).
    pub fn read(proc: &Path) -> Self {
        let kthreadd = std::fs::read_to_string(proc.join("2/comm"))
            .is_ok_and(|comm| comm.trim_end() == "kthreadd");
        let pids: &[&str] = if kthreadd { &["2", "1"] } else { &["1"] };
        let mut inum = [0; NS_KINDS.len()];
        for (slot, kind) in inum.iter_mut().zip(NS_KINDS) {
            *slot = pids
                .iter()
                .find_map(|pid| std::fs::metadata(proc.join(pid).join("ns").join(kind)).ok())
                .and_then(|m| u32::try_from(m.ino()).ok())
                .unwrap_or(0);
        }
        HostNamespaces { inum }
    }

    /// The kinds among `named` whose namespace in `after` (the caller's, by [`NS_KINDS`]) is
    /// the host's.
    pub fn entered(&self, named: &[String], after: &[u32; NS_KINDS.len()]) -> Vec<String> {
        NS_KINDS
            .iter()
            .zip(self.inum.iter().zip(after))
            .filter(|(kind, (host, now))| {
                **host != 0 && host == now && named.iter().any(|n| n == *kind)
            })
            .map(|(kind, _)| kind.to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_named_kinds_now_in_the_hosts_namespace_count() {
        let host = HostNamespaces {
            inum: [10, 11, 12, 13, 14, 15, 16, 0],
        };
        let named = |kinds: &[&str]| kinds.iter().map(|k| k.to_string()).collect::<Vec<_>>();
        // mnt entered (the host's), net named but another namespace, uts the host's but not named.
        let after = [10, 11, 99, 13, 14, 98, 16, 0];
        assert_eq!(host.entered(&named(&["mnt", "net"]), &after), ["mnt"]);
        // An unknown number (time here: 0 on both sides) is never the host's.
        assert!(host.entered(&named(&["time"]), &after).is_empty());
    }

    /// kthreadd's namespaces are the initial ones, this test's too (it runs on the host).
    #[test]
    fn the_hosts_namespaces_are_read_from_proc() {
        let host = HostNamespaces::read(Path::new("/proc"));
        let own = |kind: &str| {
            std::fs::metadata(format!("/proc/self/ns/{kind}"))
                .unwrap()
                .ino()
        };
        if std::fs::read_to_string("/proc/2/comm").is_ok_and(|c| c.trim_end() == "kthreadd") {
            assert_eq!(u64::from(host.inum[0]), own("mnt"));
            assert_eq!(u64::from(host.inum[5]), own("net"));
        }
    }
}
