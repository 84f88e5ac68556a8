//! Which processes older than the agent are network servers: the ones holding a listening TCP
//! socket (IPv4 or IPv6, in any network namespace), read from /proc at start. The kernel marks
//! images that listen after the agent starts (`SHRIKE_PROC_LISTENED`); this gives processes
//! seeded from /proc the same mark, so `process.under_server` holds for what an old server
//! starts as well as for what a new one does. PID 1 is never a server here, as in the kernel:
//! it listens for the services it socket-activates.

use std::collections::{HashMap, HashSet};
use std::path::Path;

/// TCP state number of LISTEN in /proc/net/tcp (hex).
const TCP_LISTEN: &str = "0A";

/// The pids among `pids` that hold a listening TCP socket, PID 1 left out.
pub fn tcp_listeners(proc_root: &Path, pids: &[u32]) -> HashSet<u32> {
    let mut listening_inodes: HashSet<u64> = HashSet::new();
    let mut namespaces_read: HashSet<std::path::PathBuf> = HashSet::new();
    for &pid in pids {
        let dir = proc_root.join(pid.to_string());
        // Each network namespace's tables once, through the first process seen in it.
        let Ok(netns) = std::fs::read_link(dir.join("ns/net")) else {
            continue;
        };
        if !namespaces_read.insert(netns) {
            continue;
        }
        for table in ["net/tcp", "net/tcp6"] {
            if let Ok(text) = std::fs::read_to_string(dir.join(table)) {
                listening_inodes.extend(listening_socket_inodes(&text));
            }
        }
    }
    if listening_inodes.is_empty() {
        return HashSet::new();
    }
    pids.iter()
        .copied()
        .filter(|&pid| pid != 1 && holds_any_socket(proc_root, pid, &listening_inodes))
        .collect()
}

/// The inode numbers of the LISTEN sockets of one /proc/net/tcp or tcp6 table.
fn listening_socket_inodes(table: &str) -> impl Iterator<Item = u64> + '_ {
    table.lines().skip(1).filter_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
        (fields.get(3) == Some(&TCP_LISTEN))
            .then(|| fields.get(9)?.parse().ok())
            .flatten()
    })
}

/// Whether one of the process's fds is a socket whose inode is in `inodes`.
fn holds_any_socket(proc_root: &Path, pid: u32, inodes: &HashSet<u64>) -> bool {
    let Ok(fds) = std::fs::read_dir(proc_root.join(pid.to_string()).join("fd")) else {
        return false;
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| socket_inode(target.to_str()?))
        .any(|inode| inodes.contains(&inode))
}

/// `socket:[12345]` → 12345.
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// The nearest listener above `pid` (its parent or a further ancestor, by ppid), given each
/// process's parent.
pub fn listener_above(
    pid: u32,
    parents: &HashMap<u32, u32>,
    listeners: &HashSet<u32>,
) -> Option<u32> {
    let mut seen = 0;
    let mut current = pid;
    while let Some(&parent) = parents.get(&current) {
        if parent == 0 || parent == current || seen > parents.len() {
            return None;
        }
        if listeners.contains(&parent) {
            return Some(parent);
        }
        current = parent;
        seen += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_rows_of_a_tcp_table_give_their_inodes() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 424242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:A1B2 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 434343 1 0000000000000000 20 4 30 10 -1
";
        assert_eq!(listening_socket_inodes(table).collect::<Vec<_>>(), [424242]);
        assert_eq!(socket_inode("socket:[424242]"), Some(424242));
        assert_eq!(socket_inode("pipe:[1]"), None);
    }

    #[test]
    fn the_nearest_listener_above_counts_and_the_process_itself_does_not() {
        let parents: HashMap<u32, u32> = [(10, 1), (20, 10), (30, 20), (31, 30), (40, 1)].into();
        let listeners: HashSet<u32> = [10].into();
        assert_eq!(
            listener_above(31, &parents, &listeners),
            Some(10),
            "any depth"
        );
        assert_eq!(listener_above(20, &parents, &listeners), Some(10));
        assert_eq!(listener_above(10, &parents, &listeners), None);
        assert_eq!(listener_above(40, &parents, &listeners), None);
        let nested: HashSet<u32> = [10, 20].into();
        assert_eq!(
            listener_above(31, &parents, &nested),
            Some(20),
            "the nearest"
        );
        // A cycle in a torn /proc snapshot ends.
        let cycle: HashMap<u32, u32> = [(5, 6), (6, 5)].into();
        assert_eq!(listener_above(5, &cycle, &listeners), None);
    }

    /// This process listens on a loopback port: the scan of the real /proc finds it.
    #[test]
    fn a_process_listening_on_loopback_is_found_in_proc() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let me = std::process::id();
        let found = tcp_listeners(Path::new("/proc"), &[me]);
        assert!(found.contains(&me), "{found:?}");
        drop(listener);
        assert!(!tcp_listeners(Path::new("/proc"), &[me]).contains(&me));
    }
}
