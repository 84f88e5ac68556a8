//! The evaluator's non-matching path allocates nothing: events that no rule of the default pack
//! matches are evaluated under a counting allocator.

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use common::*;
use shrike_rules::Policy;

struct Counting;

thread_local! {
    static ALLOCS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: forwards every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCS.try_with(|c| c.set(c.get() + 1));
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations(f: impl FnOnce()) -> usize {
    let before = ALLOCS.with(Cell::get);
    f();
    ALLOCS.with(Cell::get) - before
}

/// Ordinary events (an exec, file reads and writes, a connection, a chmod) run through every
/// candidate rule of the default pack without a single heap allocation.
#[test]
fn non_matching_events_do_not_allocate() {
    let policy = Policy::default_pack().unwrap();
    let sh = scenario_shell("build.sh");
    let mut cc = with_comm(
        process("/usr/bin/x86_64-linux-gnu-gcc-12", &["cc", "-c", "x.c"]),
        "cc",
    );
    cc.set_env_var("LANG", "C");
    let events = vec![
        exec(&cc, &sh),
        open(&cc, &sh, "/usr/include/stdio.h", &["read"]),
        open(&cc, &sh, "/etc/passwd", &["read"]),
        open(&cc, &sh, "/tmp/ccX.o", WRITE_NEW),
        open(&cc, &sh, "/var/log/apt/history.log", &["write"]),
        rename(&cc, &sh, "/tmp/a", "/tmp/b"),
        chmod(&cc, &sh, "/tmp/a.out", 0o755),
        connect(&cc, &sh, "10.1.2.3", 443),
        unlink(&cc, &sh, "/tmp/a"),
    ];
    for e in &events {
        assert!(policy.evaluate(e).is_empty(), "{e:?} should not match");
        let n = allocations(|| {
            let m = policy.evaluate(e);
            assert!(m.is_empty());
        });
        assert_eq!(n, 0, "evaluating {:?} allocated {n} times", e.kind);
    }
}
