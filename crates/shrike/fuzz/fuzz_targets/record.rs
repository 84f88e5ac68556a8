//! Fuzzes what user space does with ring-buffer bytes: the record decoder and the pipeline
//! behind it, statefully (a sequence of records, each `u16` length-prefixed, goes through one
//! pipeline, so forks, execs and exits build a process tree). Every record either decodes or is
//! an error, never a panic; every event it makes, with the default pack's alerts, serializes as
//! JSON that reads back and as compact text, neither with a character a terminal acts on.
//!
//! `RUSTC_BOOTSTRAP=1 cargo fuzz run record` (from crates/shrike); seeds in corpus/record,
//! written by `cargo run -p shrike --example fuzz_seeds`.
#![no_main]

use std::sync::{Arc, OnceLock};

use libfuzzer_sys::fuzz_target;
use shrike::cgroups::CgroupResolver;
use shrike::clock::BootClock;
use shrike::detect::Detector;
use shrike::pipeline::{Pipeline, PipelineOptions};
use shrike_event::text::is_unsafe_char;
use shrike_event::{compact, text, Event, ExecId, Process};
use shrike_proctree::{ProcessTree, TreeOptions};
use shrike_rules::Policy;

fn policy() -> Arc<Policy> {
    static POLICY: OnceLock<Arc<Policy>> = OnceLock::new();
    POLICY
        .get_or_init(|| Arc::new(Policy::default_pack().expect("the default pack compiles")))
        .clone()
}

fuzz_target!(|data: &[u8]| {
    let _ = shrike_bpf::Record::try_from(data);
    let mut tree = ProcessTree::new(TreeOptions::default());
    tree.seed(vec![Process {
        pid: 1,
        tid: 1,
        exec_id: ExecId(1),
        binary: "/sbin/init".into(),
        ..Process::default()
    }]);
    let mut pipeline = Pipeline::new(
        PipelineOptions {
            emit_forks: true,
            keep_env: vec!["LD_PRELOAD".into()],
        },
        "fuzz".into(),
        tree,
        BootClock::new(),
        CgroupResolver::new(None),
    );
    let mut detector = Detector::new(policy());
    let mut rest = data;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let (record, tail) = rest[2..].split_at(len);
        rest = tail;
        let Ok(Some(mut event)) = pipeline.handle(record) else {
            continue;
        };
        detector.apply(&mut event);
        let mut json = Vec::new();
        text::to_writer_terminal_safe(&mut json, &event).expect("an event serializes");
        let json = String::from_utf8(json).expect("JSON is UTF-8");
        assert!(!json.chars().any(is_unsafe_char), "raw control character: {json}");
        let back: Event = serde_json::from_str(&json).expect("the JSON reads back");
        assert_eq!(back.kind, event.kind);
        let line = compact::render(&event);
        assert!(!line.chars().any(is_unsafe_char), "raw control character: {line:?}");
        pipeline.expire();
    }
});
