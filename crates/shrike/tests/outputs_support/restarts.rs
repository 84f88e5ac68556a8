//! The crash drill the network transports' tests share: batches stream through a transport
//! while another thread kills its server twice and starts it again on the same address. The
//! transport must answer `Retry` while the server is down and deliver again once it is back;
//! the caller then checks that the server holds exactly the records delivered `Ok`.

#![allow(dead_code)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shrike::outputs::transport::{Record, Transport, TransportError};
use shrike::outputs::{OutputStats, Worker};

/// After a drill through the output framework: gives the worker the agent's exit grace (20 s,
/// long enough here to catch up after the restarts) until every one of the `offered` records
/// is sent or dropped, then closes it and waits for it to finish.
pub fn drain(mut worker: Worker, stats: &OutputStats, offered: u64) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while stats.sent() + stats.dropped() < offered && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    worker.close();
    while !worker.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    worker.join_or_leave();
}

/// A server a test can crash and restart on the same address.
pub trait Restartable: Send + 'static {
    /// Stops it abruptly: open connections cut, nothing answered.
    fn kill(&mut self);
    /// Starts it again on the same address.
    fn run(&mut self);
}

/// What the drill delivered: records `0..delivered` were acknowledged `Ok`.
pub struct Drill {
    pub delivered: u64,
    pub retries: u32,
}

/// Delivers batches of 20 records (`batch(from, len)`) until the server has been killed and
/// restarted twice (`down` after `up` of service each time) and at least 2,000 records went
/// through; a batch answered `Retry` is sent again every 50 ms for up to 30 s. Panics when a
/// batch is rejected, when the transport never recovers, or when no kill interrupted a
/// delivery (the drill proved nothing).
pub fn deliver_across_two_restarts<S: Restartable>(
    server: &Arc<Mutex<S>>,
    transport: &mut dyn Transport,
    (up, down): (Duration, Duration),
    batch: impl Fn(u64, u64) -> Vec<Record>,
) -> Drill {
    let killer = {
        let server = server.clone();
        std::thread::spawn(move || {
            for _ in 0..2 {
                std::thread::sleep(up);
                server.lock().unwrap().kill();
                std::thread::sleep(down);
                server.lock().unwrap().run();
            }
        })
    };
    let (mut next, mut retries) = (0u64, 0u32);
    while !killer.is_finished() || next < 2000 {
        let records = batch(next, 20);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match transport.deliver(&records) {
                Ok(()) => break,
                Err(TransportError::Retry(e)) => {
                    retries += 1;
                    assert!(Instant::now() < deadline, "never recovered: {e}");
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("{e}"),
            }
        }
        next += 20;
    }
    killer.join().unwrap();
    eprintln!("delivered {next} records Ok with {retries} retries across two kills");
    assert!(retries >= 2, "the kills did not interrupt any delivery");
    Drill {
        delivered: next,
        retries,
    }
}
