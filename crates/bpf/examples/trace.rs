//! Debug aid for the kernel side: loads the sensors and prints decoded records for a few
//! seconds (`cargo run -p shrike-bpf --example trace -- SECONDS`, as root).
use shrike_bpf::{Reader, ReaderOptions, Record, SensorOptions, Sensors};

fn main() {
    let sensors = Sensors::load(&SensorOptions::default()).expect("load");
    let (reader, rx) =
        Reader::start(sensors.events_handle().unwrap(), ReaderOptions::default()).unwrap();
    let deadline = std::time::Instant::now()
        + std::time::Duration::from_secs(
            std::env::args()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(3),
        );
    while std::time::Instant::now() < deadline {
        if let Ok(batch) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
            for rec in batch.iter() {
                match Record::try_from(rec) {
                    Ok(Record::Exec(e)) => println!("exec pid={} ppid={} id={:x} parent={:x} flags={:?} bin={} file={} interp={:?} cwd={} args={:?}",
                        e.header.pid, e.ppid, e.header.exec_id, e.parent_exec_id, e.flags,
                        String::from_utf8_lossy(&e.binary), String::from_utf8_lossy(&e.filename),
                        e.interp.as_ref().map(|i| String::from_utf8_lossy(i).into_owned()),
                        String::from_utf8_lossy(&e.cwd), String::from_utf8_lossy(&e.args)),
                    Ok(Record::Exit(x)) => println!("exit pid={} id={:x} status={:#x}", x.header.pid, x.header.exec_id, x.status),
                    Ok(Record::Fork(f)) => println!("fork pid={} ppid={} id={:x} parent={:x}", f.header.pid, f.ppid, f.header.exec_id, f.parent_exec_id),
                    Ok(other) => println!("{other:?}"),
                    Err(e) => println!("decode error: {e}"),
                }
            }
        }
    }
    println!("counters: {}", sensors.counters().unwrap());
    reader.request_stop();
    rx.iter().for_each(drop);
    reader.join().unwrap();
}
