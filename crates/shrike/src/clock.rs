//! Kernel time to wall-clock time.
//!
//! Records are stamped with CLOCK_BOOTTIME (it keeps counting through suspend and never jumps).
//! Events carry wall-clock time, so the agent keeps the offset between the two and refreshes it
//! periodically, following NTP adjustments of the realtime clock.

use std::time::{Duration, Instant};

use shrike_event::Timestamp;
use shrike_proctree::procfs::{boot_wall_ns, clock_ns};

const REFRESH: Duration = Duration::from_secs(10);

/// Converts CLOCK_BOOTTIME nanoseconds into wall-clock [`Timestamp`]s.
#[derive(Debug, Clone)]
pub struct BootClock {
    boot_wall_ns: u64,
    refreshed: Instant,
}

impl BootClock {
    pub fn new() -> Self {
        BootClock {
            boot_wall_ns: boot_wall_ns(),
            refreshed: Instant::now(),
        }
    }

    /// Wall-clock time of a CLOCK_BOOTTIME instant (saturating: a record whose timestamp is
    /// garbage must not overflow; found by fuzzing the record decoder).
    pub fn wall(&self, boot_ns: u64) -> Timestamp {
        Timestamp(self.boot_wall_ns.saturating_add(boot_ns))
    }

    /// Wall-clock time of boot, in ns since the epoch.
    pub fn boot_wall_ns(&self) -> u64 {
        self.boot_wall_ns
    }

    /// CLOCK_BOOTTIME now.
    pub fn now_boot_ns(&self) -> u64 {
        clock_ns(libc::CLOCK_BOOTTIME)
    }

    /// Re-reads the offset if it is older than the refresh period.
    pub fn refresh(&mut self) {
        if self.refreshed.elapsed() >= REFRESH {
            self.boot_wall_ns = boot_wall_ns();
            self.refreshed = Instant::now();
        }
    }
}

impl Default for BootClock {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_in_boot_time_converts_to_now_in_wall_time() {
        let clock = BootClock::new();
        let wall = clock.wall(clock.now_boot_ns());
        let now = Timestamp::now();
        let skew = now.0.abs_diff(wall.0);
        assert!(
            skew < 1_000_000_000,
            "boot→wall conversion off by {skew} ns"
        );
        assert_eq!(clock.wall(u64::MAX), Timestamp(u64::MAX), "saturates");
    }
}
