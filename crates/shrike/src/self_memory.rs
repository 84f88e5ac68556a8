//! The agent's own memory, as `/proc/self/statm` gives it: what the metrics endpoint, `shrike
//! status` and the heap trim's log report. One reader, so the three cannot disagree on how a
//! page count becomes bytes.

/// Resident memory of this process, in bytes (0 when /proc cannot say).
pub fn resident_bytes() -> u64 {
    statm_pages(1) * page_size()
}

/// Virtual memory of this process, in bytes (0 when /proc cannot say).
pub fn virtual_bytes() -> u64 {
    statm_pages(0) * page_size()
}

/// Field `field` of /proc/self/statm, a count of pages.
fn statm_pages(field: usize) -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(field)?.parse().ok())
        .unwrap_or(0)
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_running_process_has_resident_memory_within_its_virtual_memory() {
        let (rss, vm) = (super::resident_bytes(), super::virtual_bytes());
        assert!(rss > 0 && rss <= vm, "resident {rss}, virtual {vm}");
    }
}
