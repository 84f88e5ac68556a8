//! The file sensor's watch set replaced at run time, as root, with the real programs: a path
//! starts being reported when a replace adds it and stops when one removes it, and while the
//! set is replaced again and again (each time with the path in it) not one open of it is lost:
//! there is no moment when nothing is watched. And the reader in front of them: a burst read
//! while nobody takes it arrives whole, in batches of the size asked, after the reader waited
//! for its byte budget.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shrike_bpf::file::{FileEventKind, FileOptions, Pattern, Watch, WatchKind, WatchSet};
use shrike_bpf::{Reader, ReaderOptions, Record, SensorOptions, Sensors};

fn require_root(test: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test}: needs root to load BPF programs; under CI=true it must run");
    }
    eprintln!("SKIPPED {test}: needs root to load BPF programs");
    false
}

fn only(path: &str) -> WatchSet {
    WatchSet {
        watches: vec![Watch::all_kinds(Pattern::Exact(path.to_string()))],
        ..WatchSet::default()
    }
}

/// Opens of `path` the kernel reported, reading until `until` says stop (or 5 s pass idle).
fn opens_of(
    rx: &std::sync::mpsc::Receiver<shrike_bpf::Batch>,
    path: &str,
    settle: Duration,
) -> usize {
    opens_until(rx, path, settle, usize::MAX)
}

/// Like [`opens_of`], but returns as soon as `expected` opens arrived (a loaded machine may
/// deliver the last records late; stopping early keeps the count exact without a long sleep).
fn opens_until(
    rx: &std::sync::mpsc::Receiver<shrike_bpf::Batch>,
    path: &str,
    timeout: Duration,
    expected: usize,
) -> usize {
    let mut n = 0;
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline && n < expected {
        if let Ok(batch) = rx.recv_timeout(Duration::from_millis(100)) {
            for rec in batch.iter() {
                if let Ok(Record::File(f)) = Record::try_from(rec) {
                    if f.path == path.as_bytes() {
                        n += 1;
                    }
                }
            }
        }
    }
    n
}

#[test]
fn replacing_the_watch_set_takes_effect_atomically_and_never_leaves_a_gap() {
    if !require_root("replacing_the_watch_set_takes_effect_atomically_and_never_leaves_a_gap") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("shrike-watch-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("target");
    std::fs::write(&target, b"").unwrap();
    let target_s = target.to_str().unwrap().to_string();
    let other = dir.join("other").to_str().unwrap().to_string();

    let opts = SensorOptions {
        file: Some(FileOptions {
            kinds: [FileEventKind::File(WatchKind::Open)].into_iter().collect(),
            watch: WatchSet::default(),
            ..FileOptions::default()
        }),
        ..SensorOptions::default()
    };
    let sensors = Sensors::load(&opts).expect("loading the sensors");
    let watch = sensors.file_watch().expect("the file sensor is loaded");
    let (reader, rx) =
        Reader::start(sensors.events_handle().unwrap(), ReaderOptions::default()).expect("reader");

    // Nothing watched: nothing reported.
    std::fs::File::open(&target).unwrap();
    assert_eq!(opens_of(&rx, &target_s, Duration::from_millis(500)), 0);

    // Added: reported.
    let stats = watch.replace(&only(&target_s)).unwrap();
    assert_eq!(stats.paths, 1);
    for _ in 0..10 {
        std::fs::File::open(&target).unwrap();
    }
    assert_eq!(opens_of(&rx, &target_s, Duration::from_millis(500)), 10);

    // Replaced over and over, the path in every set: every open is still reported.
    let stop = Arc::new(AtomicBool::new(false));
    let replacer = {
        let stop = stop.clone();
        let watch = watch.clone();
        let (a, b) = (target_s.clone(), other.clone());
        std::thread::spawn(move || {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                let mut set = only(&a);
                if n % 2 == 1 {
                    set.watches
                        .push(Watch::all_kinds(Pattern::Prefix(format!("{b}/"))));
                }
                watch.replace(&set).expect("replace");
                n += 1;
            }
            n
        })
    };
    let opens = 20_000;
    for _ in 0..opens {
        std::fs::File::open(&target).unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let replaces = replacer.join().unwrap();
    let seen = opens_until(&rx, &target_s, Duration::from_secs(30), opens);
    assert!(
        replaces > 10,
        "only {replaces} replaces ran during the opens"
    );
    assert_eq!(
        seen, opens,
        "opens lost while the set was replaced {replaces} times"
    );
    eprintln!("{opens} opens, all reported, during {replaces} replaces");

    // Removed: no longer reported.
    watch.replace(&only(&other)).unwrap();
    std::fs::File::open(&target).unwrap();
    assert_eq!(opens_of(&rx, &target_s, Duration::from_millis(500)), 0);

    reader.request_stop();
    rx.iter().for_each(drop);
    reader.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
}

/// The reader cuts what it finds into batches of about `batch_bytes` (the record that reaches
/// the size ends a batch) and hands over at most `bytes_in_flight` to a pipeline that is not
/// taking them, then waits (counted as back-pressure): a burst of opens made while nobody
/// receives arrives whole, in small batches.
#[test]
fn a_burst_arrives_whole_in_bounded_batches_after_the_reader_waited() {
    if !require_root("a_burst_arrives_whole_in_bounded_batches_after_the_reader_waited") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("shrike-batches-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let target = dir.join("target");
    std::fs::write(&target, b"").unwrap();
    let target_s = target.to_str().unwrap().to_string();
    let opts = SensorOptions {
        file: Some(FileOptions {
            kinds: [FileEventKind::File(WatchKind::Open)].into_iter().collect(),
            watch: only(&target_s),
            ..FileOptions::default()
        }),
        ..SensorOptions::default()
    };
    let sensors = Sensors::load(&opts).expect("loading the sensors");
    const BATCH: usize = 4096;
    let reader_opts = ReaderOptions {
        batch_bytes: BATCH,
        bytes_in_flight: 32 * 1024,
        ..ReaderOptions::default()
    };
    let (reader, rx) =
        Reader::start(sensors.events_handle().unwrap(), reader_opts).expect("reader");
    const OPENS: usize = 5000;
    for _ in 0..OPENS {
        std::fs::File::open(&target).unwrap();
    }
    // Nobody receives for a while: the reader fills its budget and waits.
    let deadline = Instant::now() + Duration::from_secs(10);
    while reader.stats.backpressure.load(Ordering::Relaxed) == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let waited = reader.stats.backpressure.load(Ordering::Relaxed);
    let (mut opens, mut batches) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    while opens < OPENS && Instant::now() < deadline {
        let Ok(batch) = rx.recv_timeout(Duration::from_millis(200)) else {
            continue;
        };
        batches += 1;
        let last = batch.iter().last().map_or(0, <[u8]>::len);
        assert!(
            batch.bytes() - last < BATCH,
            "a batch of {} bytes went on past {BATCH} before its last record",
            batch.bytes()
        );
        for rec in batch.iter() {
            if let Ok(Record::File(f)) = Record::try_from(rec) {
                if f.path == target_s.as_bytes() {
                    opens += 1;
                }
            }
        }
    }
    reader.request_stop();
    drop(rx);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(opens, OPENS, "opens reported");
    assert!(waited > 0, "the reader never waited for its byte budget");
    assert!(batches > 1, "{batches} batch(es)");
}
