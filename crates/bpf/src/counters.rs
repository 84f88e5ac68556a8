//! The kernel side's per-CPU counters, summed and named.
//!
//! Every record the kernel could not deliver and every failed map operation is counted in the
//! `counters` per-CPU array (ids in `bpf/abi/shrike_abi.h`, `enum shrike_counter`). This module
//! reads and sums them; the agent logs them periodically and on exit and turns growth of the
//! loss counters into `events_lost` events.

use std::fmt;

use libbpf_rs::{MapCore, MapFlags};

use crate::abi::shrike_counter;

/// Name and meaning of each counter, in id order of `enum shrike_counter`.
pub const COUNTERS: &[(shrike_counter, &str, &str)] = &[
    (
        shrike_counter::SHRIKE_CNT_RINGBUF_FULL,
        "ringbuf_full",
        "records dropped: ring buffer full",
    ),
    (
        shrike_counter::SHRIKE_CNT_PROCS_UPDATE_FAIL,
        "procs_update_fail",
        "lineage map updates that failed",
    ),
    (
        shrike_counter::SHRIKE_CNT_LINEAGE_MISS,
        "lineage_miss",
        "processes without a lineage entry",
    ),
    (
        shrike_counter::SHRIKE_CNT_READ_FAIL,
        "read_fail",
        "kernel or user memory reads that failed",
    ),
    (
        shrike_counter::SHRIKE_CNT_SCRATCH_FAIL,
        "scratch_fail",
        "scratch buffer unavailable",
    ),
    (
        shrike_counter::SHRIKE_CNT_EXEC_SEEN,
        "exec_seen",
        "execs seen",
    ),
    (
        shrike_counter::SHRIKE_CNT_FORK_SEEN,
        "fork_seen",
        "forks seen",
    ),
    (
        shrike_counter::SHRIKE_CNT_EXIT_SEEN,
        "exit_seen",
        "process exits seen",
    ),
    (
        shrike_counter::SHRIKE_CNT_ARGS_TRUNCATED,
        "args_truncated",
        "execs whose argv was cut",
    ),
    (
        shrike_counter::SHRIKE_CNT_PATH_TRUNCATED,
        "path_truncated",
        "paths cut at the depth limit",
    ),
    (
        shrike_counter::SHRIKE_CNT_EXEC_HELD,
        "exec_held",
        "execs stopped until their cgroup was placed (workload-scoped rules)",
    ),
    (
        shrike_counter::SHRIKE_CNT_FILE_SEEN,
        "file_seen",
        "file syscalls that reached the watch filter",
    ),
    (
        shrike_counter::SHRIKE_CNT_FILE_FILTERED,
        "file_filtered",
        "file events dropped in the kernel: path not watched",
    ),
    (
        shrike_counter::SHRIKE_CNT_FILE_UNRESOLVED,
        "file_unresolved",
        "file events passed unfiltered: path string not trustworthy",
    ),
    (
        shrike_counter::SHRIKE_CNT_FILE_PENDING_FAIL,
        "file_pending_fail",
        "records lost between syscall entry and exit (map full)",
    ),
    (
        shrike_counter::SHRIKE_CNT_PRIV_SEEN,
        "priv_seen",
        "privilege and kernel-integrity events seen",
    ),
    (
        shrike_counter::SHRIKE_CNT_COMPAT_SKIPPED,
        "compat_skipped",
        "32-bit (ia32) syscalls not decoded",
    ),
    (
        shrike_counter::SHRIKE_CNT_FILE_STR_TRUNCATED,
        "file_str_truncated",
        "path strings cut at 4096 bytes",
    ),
    (
        shrike_counter::SHRIKE_CNT_FILE_ENFORCED,
        "file_enforced",
        "file, module, BPF and ptrace actions denied or killed by a rule",
    ),
    (
        shrike_counter::SHRIKE_CNT_FILE_DIR_SKIPPED,
        "file_dir_skipped",
        "opens dropped on their directory (known to hold nothing watched), no path built",
    ),
    (
        shrike_counter::SHRIKE_CNT_NET_DENIED,
        "net_denied",
        "connects, UDP sends and binds refused by a network rule",
    ),
    (
        shrike_counter::SHRIKE_CNT_NET_TC_DROPPED,
        "net_tc_dropped",
        "inbound packets dropped at tc by a network rule",
    ),
    (
        shrike_counter::SHRIKE_CNT_NET_STORAGE_FAIL,
        "net_storage_fail",
        "socket storage that could not be created",
    ),
    (
        shrike_counter::SHRIKE_CNT_NET_NO_OWNER,
        "net_no_owner",
        "socket events with no recorded process",
    ),
    (
        shrike_counter::SHRIKE_CNT_NET_DNS_TRUNCATED,
        "net_dns_truncated",
        "DNS messages longer than a record carries (cut)",
    ),
    (
        shrike_counter::SHRIKE_CNT_NET_PARSE_SKIPPED,
        "net_parse_skipped",
        "packets whose ports could not be read (fragments, long IPv6 extension chains)",
    ),
    (
        shrike_counter::SHRIKE_CNT_NET_RULE_MISS,
        "net_rule_miss",
        "network rule slots found empty",
    ),
    (
        shrike_counter::SHRIKE_CNT_NET_TC_NOT_REPORTED,
        "net_tc_not_reported",
        "tc drops folded into an earlier event (one per source and port per second)",
    ),
    (
        shrike_counter::SHRIKE_CNT_NET_SEED_FULL,
        "net_seed_full",
        "sockets older than the agent left without an owner: the start-up seed map was full",
    ),
];

/// A snapshot of every counter, summed over CPUs, indexed by counter id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters(pub Vec<u64>);

impl Counters {
    /// Reads every counter from the `counters` map.
    pub fn read(map: &dyn MapCore) -> Result<Self, libbpf_rs::Error> {
        let len = shrike_counter::SHRIKE_CNT_MAX.0 as usize;
        let mut sums = vec![0u64; len];
        for (id, sum) in sums.iter_mut().enumerate() {
            let key = (id as u32).to_ne_bytes();
            if let Some(per_cpu) = map.lookup_percpu(&key, MapFlags::ANY)? {
                *sum = per_cpu
                    .iter()
                    .filter_map(|v| v.get(..8))
                    .map(|b| u64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
                    .sum();
            }
        }
        Ok(Counters(sums))
    }

    pub fn get(&self, id: shrike_counter) -> u64 {
        self.0.get(id.0 as usize).copied().unwrap_or(0)
    }

    /// Counter by counter, `self - earlier` (saturating: counters only grow).
    pub fn since(&self, earlier: &Counters) -> Counters {
        Counters(
            self.0
                .iter()
                .enumerate()
                .map(|(i, v)| v.saturating_sub(earlier.0.get(i).copied().unwrap_or(0)))
                .collect(),
        )
    }

    /// Records the kernel had to drop.
    pub fn lost(&self) -> u64 {
        self.get(shrike_counter::SHRIKE_CNT_RINGBUF_FULL)
    }

    /// Counters that indicate a problem (not the `*_seen` activity counts).
    pub fn failures(&self) -> u64 {
        [
            shrike_counter::SHRIKE_CNT_RINGBUF_FULL,
            shrike_counter::SHRIKE_CNT_PROCS_UPDATE_FAIL,
            shrike_counter::SHRIKE_CNT_READ_FAIL,
            shrike_counter::SHRIKE_CNT_SCRATCH_FAIL,
            shrike_counter::SHRIKE_CNT_NET_STORAGE_FAIL,
            shrike_counter::SHRIKE_CNT_FILE_PENDING_FAIL,
        ]
        .iter()
        .map(|&id| self.get(id))
        .sum()
    }

    /// `(name, value)` for every named counter.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        COUNTERS.iter().map(|(id, name, _)| (*name, self.get(*id)))
    }
}

impl fmt::Display for Counters {
    /// `name=value` pairs separated by spaces, for log lines.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for (name, value) in self.named() {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            write!(f, "{name}={value}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_counter_below_the_max_is_named_once() {
        let mut ids: Vec<u32> = COUNTERS.iter().map(|(id, _, _)| id.0).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), COUNTERS.len());
        assert!(ids.iter().all(|&id| id < shrike_counter::SHRIKE_CNT_MAX.0));
    }

    #[test]
    fn since_and_failures_sum_the_right_counters() {
        let mut now = vec![0u64; 64];
        now[shrike_counter::SHRIKE_CNT_RINGBUF_FULL.0 as usize] = 7;
        now[shrike_counter::SHRIKE_CNT_EXEC_SEEN.0 as usize] = 100;
        now[shrike_counter::SHRIKE_CNT_READ_FAIL.0 as usize] = 2;
        let now = Counters(now);
        let mut before = vec![0u64; 64];
        before[shrike_counter::SHRIKE_CNT_RINGBUF_FULL.0 as usize] = 3;
        let delta = now.since(&Counters(before));
        assert_eq!(delta.lost(), 4);
        assert_eq!(delta.failures(), 6);
        assert!(now.to_string().starts_with("ringbuf_full=7 "));
    }
}
