//! The output framework driven with synthetic events (no BPF): selection and format per
//! output, a dead webhook that cannot stall the pipeline or another output, a webhook server
//! killed and restarted mid-stream with exact loss accounting, and file rotation.

mod outputs_support;

use std::collections::BTreeSet;
use std::io::Read;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use outputs_support::*;
use shrike::outputs::{OutputConfig, Outputs};
use shrike_event::{EventKind, Lost};

fn lines(path: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(String::from)
        .collect()
}

/// Each output takes only what its `select:` asks for, in its own format: alerts of high
/// severity or more as compact text on one, DNS events as JSON on another, everything on a
/// third; the agent's own reports pass every selection.
#[test]
fn each_output_selects_and_formats_its_own_events() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n);
    let configs: Vec<OutputConfig> = vec![
        config(&format!(
            "type: file\nname: high\npath: {}\nformat: compact\nselect: {{events: alerts, min_severity: high}}\nbatch: {{max_delay_ms: 10}}",
            p("high").display()
        )),
        config(&format!(
            "type: file\nname: dns\npath: {}\nselect: {{kinds: [dns]}}\nbatch: {{max_delay_ms: 10}}",
            p("dns").display()
        )),
        config(&format!(
            "type: file\npath: {}\nbatch: {{max_delay_ms: 10}}",
            p("all").display()
        )),
    ];
    let mut outputs = Outputs::start(&configs).unwrap();
    outputs.send(&event(1, EventKind::ProcessExec));
    outputs.flush();
    outputs.send(&alert(2, "R-low", "low"));
    outputs.flush();
    outputs.send(&alert(3, "R-high", "high"));
    outputs.flush();
    outputs.send(&alert(4, "R-crit", "critical"));
    outputs.flush();
    outputs.send(&event(5, EventKind::Dns));
    outputs.flush();
    outputs.send(&event(6, EventKind::AgentHealth));
    outputs.flush();
    let names: Vec<_> = outputs.stats().iter().map(|s| s.name.clone()).collect();
    assert_eq!(names, ["high", "dns", "file"]);
    outputs.finish(Duration::from_secs(5));

    let high = lines(&p("high"));
    assert_eq!(high.len(), 3, "{high:#?}");
    assert!(
        high[0].contains("R-high") && high[1].contains("R-crit"),
        "{high:#?}"
    );
    assert!(high[2].contains("agent_health"), "{high:#?}");
    assert!(
        serde_json::from_str::<serde_json::Value>(&high[0]).is_err(),
        "compact, not JSON"
    );
    let dns: Vec<serde_json::Value> = lines(&p("dns"))
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(dns.len(), 1);
    assert_eq!((dns[0]["kind"].as_str(), pid_of(&dns[0])), (Some("dns"), 5));
    let all: Vec<u32> = lines(&p("all"))
        .iter()
        .map(|l| pid_of(&serde_json::from_str(l).unwrap()))
        .collect();
    assert_eq!(all, [1, 2, 3, 4, 5, 6]);
}

/// A webhook whose server accepts connections and never answers cannot slow the pipeline or
/// the file output beside it: every `send` returns at once, the file gets every event, the
/// webhook's queue overflows and its drops are counted — and reported in an `events_lost`
/// event that the file output (still working) receives. `finish` gives up on it in bounded
/// time.
#[test]
fn a_dead_webhook_stalls_neither_the_pipeline_nor_the_other_output() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events");
    // Connections complete in the kernel's backlog; nobody ever reads or answers.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", black_hole.local_addr().unwrap());
    let configs = vec![
        config(&format!(
            "type: webhook\nname: deadhook\nurl: {url}\nqueue: 100\ntimeout_ms: 300\nbatch: {{max_events: 10, max_delay_ms: 5}}\nretry: {{initial_ms: 50, max_ms: 100}}"
        )),
        config(&format!(
            "type: file\npath: {}\nqueue: 100000\nbatch: {{max_events: 500, max_delay_ms: 10}}",
            file.display()
        )),
    ];
    let mut outputs = Outputs::start(&configs).unwrap();
    let produced = 20_000u32;
    let mut slowest = Duration::ZERO;
    let started = Instant::now();
    for id in 1..=produced {
        let t = Instant::now();
        outputs.send(&event(id, EventKind::ProcessExec));
        outputs.flush();
        slowest = slowest.max(t.elapsed());
    }
    let sending = started.elapsed();
    let stats = outputs.stats();
    let hook = &stats[0];
    assert!(
        wait_for(Duration::from_secs(10), || stats[1].sent()
            == u64::from(produced)),
        "the file output got {} of {produced}",
        stats[1].sent()
    );
    // Everything past the queue (and the batch stuck in delivery) was dropped, counted.
    let dropped = hook.dropped();
    assert!(
        dropped >= u64::from(produced) - 100 - 10,
        "dropped {dropped}"
    );
    assert_eq!(hook.sent(), 0);
    let drops = outputs.new_drops();
    assert_eq!(drops.get("deadhook"), Some(&dropped), "{drops:?}");
    assert!(outputs.new_drops().is_empty(), "reported once");
    let mut report = event(0, EventKind::EventsLost);
    report.set_lost(Lost {
        outputs: drops,
        ..Lost::default()
    });
    outputs.send(&report);
    outputs.flush();
    let t = Instant::now();
    outputs.finish(Duration::from_millis(500));
    let finishing = t.elapsed();
    drop(black_hole);

    eprintln!("{produced} events sent in {sending:?}, slowest send {slowest:?}, finish {finishing:?}, webhook dropped {dropped}");
    // A send that waited for the webhook would take its 300 ms timeout; scheduling on a
    // loaded machine accounts for tens of milliseconds.
    assert!(
        slowest < Duration::from_millis(250),
        "a send blocked for {slowest:?}"
    );
    assert!(
        finishing < Duration::from_secs(2),
        "finish took {finishing:?}"
    );
    let written = lines(&file);
    assert_eq!(written.len(), produced as usize + 1);
    let last: serde_json::Value = serde_json::from_str(written.last().unwrap()).unwrap();
    assert_eq!(last["kind"], "events_lost");
    assert_eq!(last["lost"]["outputs"]["deadhook"], dropped);
}

/// The webhook server is killed a third of the way through a stream and restarted at two
/// thirds: the output retries with backoff, keeps its batch, drops (and counts) what its
/// bounded queue cannot hold meanwhile, and recovers. Every event is accounted for exactly:
/// sent + dropped = produced, and the distinct events the server received are exactly the
/// produced ones minus the dropped ones (a batch received but not acknowledged when the server
/// died is delivered again: at-least-once, so duplicates are counted separately).
#[test]
fn a_webhook_server_killed_and_restarted_loses_exactly_what_is_reported() {
    let received = Arc::new(Mutex::new(Received::default()));
    let server = WebhookServer::start(0, received.clone());
    let port = server.port;
    let configs = vec![config(&format!(
        "type: webhook\nname: hook\nurl: http://127.0.0.1:{port}/events\nheaders: {{Authorization: Bearer t0ken}}\nqueue: 300\ntimeout_ms: 1000\nbatch: {{max_events: 50, max_delay_ms: 20}}\nretry: {{initial_ms: 20, max_ms: 200}}"
    ))];
    let mut outputs = Outputs::start(&configs).unwrap();
    let stats = outputs.stats()[0].clone();
    let produced = 3000u32;
    let mut server = Some(server);
    for id in 1..=produced {
        if id == 1000 {
            server.take().unwrap().kill();
        }
        if id == 2000 {
            server = Some(WebhookServer::start(port, received.clone()));
        }
        outputs.send(&event(id, EventKind::ProcessExec));
        outputs.flush();
        std::thread::sleep(Duration::from_micros(700));
    }
    outputs.finish(Duration::from_secs(10));
    server.unwrap().kill();

    let (sent, dropped) = (stats.sent(), stats.dropped());
    let r = received.lock().unwrap();
    let ids: Vec<u32> = r.events.iter().map(pid_of).collect();
    let distinct: BTreeSet<u32> = ids.iter().copied().collect();
    eprintln!(
        "produced {produced}: sent {sent}, dropped {dropped}, errors {}; server got {} events ({} distinct, {} duplicates) in {} batches",
        stats.errors.load(Ordering::Relaxed),
        ids.len(),
        distinct.len(),
        ids.len() - distinct.len(),
        r.batches
    );
    assert!(dropped > 0, "the outage should overflow a 300-event queue");
    assert!(stats.errors.load(Ordering::Relaxed) > 0);
    assert_eq!(sent + dropped, u64::from(produced));
    assert_eq!(
        distinct.len() as u64,
        sent,
        "distinct received = acknowledged"
    );
    assert!(distinct.iter().all(|id| (1..=produced).contains(id)));
    assert!(
        (1..1000).all(|id| distinct.contains(&id)),
        "nothing before the outage is lost"
    );
    assert!(
        r.headers
            .iter()
            .all(|h| h.get("authorization").map(String::as_str) == Some("Bearer t0ken")),
        "the configured header is on every request"
    );
    assert_eq!(stats.queued.load(Ordering::Relaxed), 0);
}

/// A refused payload (HTTP 400) is not retried: the batch is counted as dropped at once.
#[test]
fn a_rejected_batch_is_dropped_and_counted_not_retried() {
    // A server that answers 400 to everything.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                use std::io::{BufRead, Write};
                let mut w = stream.try_clone().unwrap();
                let mut r = std::io::BufReader::new(stream);
                loop {
                    let mut len = 0usize;
                    loop {
                        let mut h = String::new();
                        if r.read_line(&mut h).unwrap_or(0) == 0 {
                            return;
                        }
                        if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap();
                        }
                        if h.trim().is_empty() {
                            break;
                        }
                    }
                    let mut body = vec![0; len];
                    r.read_exact(&mut body).unwrap();
                    let _ =
                        w.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 4\r\n\r\nnope");
                }
            });
        }
    });
    let mut outputs = Outputs::start(&[config(&format!(
        "type: webhook\nurl: {url}\nbatch: {{max_events: 10, max_delay_ms: 10}}\nretry: {{initial_ms: 5000, max_ms: 5000}}"
    ))])
    .unwrap();
    let stats = outputs.stats()[0].clone();
    for id in 1..=25 {
        outputs.send(&event(id, EventKind::Dns));
        outputs.flush();
    }
    assert!(wait_for(Duration::from_secs(3), || stats.dropped() == 25));
    assert_eq!(stats.sent(), 0);
    assert_eq!(
        stats.errors.load(Ordering::Relaxed),
        3,
        "one error per batch, no retry"
    );
    outputs.finish(Duration::from_secs(1));
}

fn gunzip(path: &std::path::Path) -> String {
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_string(&mut text)
        .unwrap();
    text
}

/// A file output rotates at `max_bytes`: the newest rotated file is `PATH.1.gz`, at most
/// `keep` are kept, each decompresses to whole JSON lines, and together with the current
/// file they hold the last events in order, none missing.
#[test]
fn a_file_output_rotates_by_size_keeps_n_and_compresses() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("events.json");
    let mut outputs = Outputs::start(&[config(&format!(
        "type: file\npath: {}\nmax_bytes: 4096\nkeep: 3\nbatch: {{max_events: 7, max_delay_ms: 5}}",
        path.display()
    ))])
    .unwrap();
    let produced = 400u32;
    for id in 1..=produced {
        outputs.send(&event(id, EventKind::ProcessExec));
        outputs.flush();
    }
    outputs.finish(Duration::from_secs(5));
    let name = |n: usize| dir.path().join(format!("events.json.{n}.gz"));
    assert!(name(1).exists() && name(2).exists() && name(3).exists());
    assert!(!name(4).exists(), "only 3 rotated files are kept");
    let mut all = Vec::new();
    for n in [3, 2, 1] {
        let text = gunzip(&name(n));
        assert!(text.len() >= 4096, "rotated at the size: {}", text.len());
        assert!(text.ends_with('\n'));
        all.extend(text.lines().map(String::from));
    }
    all.extend(lines(&path));
    let ids: Vec<u32> = all
        .iter()
        .map(|l| pid_of(&serde_json::from_str(l).unwrap()))
        .collect();
    let first = ids[0];
    assert_eq!(
        ids,
        (first..=produced).collect::<Vec<_>>(),
        "the newest events, in order"
    );
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&path).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
}

/// A file output rotates by age too, and follows an external rotation (the file renamed
/// away, as logrotate does) by opening a new one.
#[test]
fn a_file_output_rotates_by_age_and_follows_an_external_rename() {
    use shrike::outputs::file::{FileTransport, Rotation};
    use shrike::outputs::{Record, Transport};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("f.log");
    let mut t = FileTransport::with_rotation(
        path.clone(),
        Rotation {
            max_bytes: None,
            max_age: Some(Duration::from_millis(400)),
            keep: 2,
            compress: false,
        },
    )
    .unwrap();
    let rec = |line: &str| Record {
        line: line.into(),
        time_unix_ns: 0,
        kind: "dns",
        severity: None,
        rule: None,
    };
    t.deliver(&[rec("a"), rec("b")]).unwrap();
    std::thread::sleep(Duration::from_millis(450));
    t.deliver(&[rec("c")]).unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.path().join("f.log.1")).unwrap(),
        "a\nb\n"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "c\n");
    std::fs::rename(&path, dir.path().join("moved")).unwrap();
    t.deliver(&[rec("d")]).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "d\n");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("moved")).unwrap(),
        "c\n"
    );
}
