//! Writes the seed corpora of the fuzz targets in `crates/shrike/fuzz` (the committed
//! `corpus/record` and `corpus/dns`): kernel records as the BPF programs write them, built with
//! `shrike_bpf::decode::testing`, and DNS messages as they come off the wire. Rerun after a
//! change to the record layout: `cargo run -p shrike --example fuzz_seeds`.

use std::path::Path;

use shrike_bpf::decode::testing::{
    dns_bytes, exec_bytes, exec_denied_bytes, exit_bytes, file_bytes, fork_bytes, net_bytes,
};
use shrike_bpf::decode::{
    Action, DnsFlag, DnsRecord, Enforcement, ExecDeniedRecord, ExecFlag, ExecFlags, ExecRecord,
    ExitRecord, FileOp, FileRecord, ForkRecord, Header, NetFlags, NetOp, NetRecord,
};

fn header(kind: u16, pid: u32, exec_id: u64) -> Header {
    Header {
        kind,
        ktime_ns: 1_000,
        pid,
        tid: pid,
        exec_id,
    }
}

/// Records as one fuzz input: each `u16` little-endian length-prefixed.
fn sequence(records: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    for r in records {
        out.extend_from_slice(&(r.len() as u16).to_le_bytes());
        out.extend_from_slice(r);
    }
    out
}

fn exec(pid: u32, exec_id: u64, binary: &[u8], args: &[u8], flags: ExecFlags) -> Vec<u8> {
    exec_bytes(&ExecRecord {
        header: header(1, pid, exec_id),
        parent_exec_id: 1,
        start_boottime_ns: 500,
        cgroup_id: 1,
        ppid: 1,
        uid: 1000,
        euid: 0,
        gid: 1000,
        egid: 1000,
        loginuid: 1000,
        flags,
        args_total: args.len() as u32,
        comm: b"sh".to_vec(),
        binary: binary.to_vec(),
        filename: b"./x.sh".to_vec(),
        interp: None,
        cwd: b"/tmp/\xffwork".to_vec(),
        args: args.to_vec(),
        env: b"LD_PRELOAD=/tmp/x.so\0PATH=/bin\0".to_vec(),
        stdio: Vec::new(),
        stdio_pipes: vec![shrike_bpf::decode::StdioPipe { fd: 0, ino: 9 }],
        binary_ctime_s: Some(1_700_000_000),
        writer_exec_id: None,
        enforced: None,
        held: None,
    })
}

/// A DNS response for `name` with one A record (compressed name pointer).
fn dns_response(name: &str) -> Vec<u8> {
    let mut m = vec![0x12, 0x34, 0x81, 0x80, 0, 1, 0, 1, 0, 0, 0, 0];
    for label in name.split('.') {
        m.push(label.len() as u8);
        m.extend_from_slice(label.as_bytes());
    }
    m.extend_from_slice(&[0, 0, 1, 0, 1]);
    m.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, 10, 9, 8, 7]);
    m
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).expect("creating the corpus directory");
    std::fs::write(dir.join(name), bytes).expect("writing a seed");
}

fn main() {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus");
    let records = fuzz.join("record");
    let fork = fork_bytes(&ForkRecord {
        header: header(3, 50, 5),
        parent_exec_id: 1,
        start_boottime_ns: 400,
        ppid: 1,
    });
    let exit = exit_bytes(&ExitRecord {
        header: header(2, 50, 6),
        status: 9,
    });
    write(
        &records,
        "fork-exec-exit",
        &sequence(&[
            fork.clone(),
            exec(
                50,
                6,
                b"/tmp/x/jail/tool",
                b"tool\0-c\0\x1b]0;t\x07\0",
                ExecFlags::default(),
            ),
            exit,
        ]),
    );
    write(
        &records,
        "exec-cut-path",
        &sequence(&[exec(
            51,
            7,
            b"/AAAA/deep/true",
            b"true\0",
            [ExecFlag::BinaryTruncated, ExecFlag::CwdTruncated]
                .into_iter()
                .collect(),
        )]),
    );
    write(
        &records,
        "exec-denied",
        &sequence(&[exec_denied_bytes(&ExecDeniedRecord {
            header: header(4, 52, 1),
            enforcement: Enforcement {
                rule_index: 3,
                action: Action::Deny,
            },
            path: b"/tmp/evil".to_vec(),
            path_cut: false,
            filename: b"./evil".to_vec(),
        })]),
    );
    let connect = NetRecord {
        header: header(0, 53, 1),
        op: NetOp::Connect,
        cookie: 9,
        family: 2,
        protocol: 6,
        saddr: "10.0.0.2".parse().expect("address"),
        sport: 40000,
        daddr: "169.254.169.254".parse().expect("address"),
        dport: 80,
        result: 0,
        flags: NetFlags::default(),
        rule_index: 0,
        bytes_sent: 0,
        bytes_received: 0,
        packets_sent: 0,
        packets_received: 0,
    };
    write(&records, "net-connect", &sequence(&[net_bytes(&connect)]));
    let message = dns_response("pool.minexmr.com");
    write(
        &records,
        "dns-response",
        &sequence(&[dns_bytes(&DnsRecord {
            header: header(0, 53, 1),
            cookie: 9,
            flags: DnsFlag::Ingress.into(),
            family: 2,
            protocol: 17,
            saddr: "10.0.0.2".parse().expect("address"),
            sport: 33333,
            daddr: "10.0.0.53".parse().expect("address"),
            dport: 53,
            total: message.len() as u16,
            message: message.clone(),
        })]),
    );
    write(
        &records,
        "file-open",
        &sequence(&[file_bytes(&FileRecord {
            header: header(0, 53, 1),
            op: FileOp::Open,
            result: 3,
            flags: 0,
            access: 1,
            mode: 0o644,
            uid: 0,
            gid: 0,
            info: Default::default(),
            syscall: 257,
            path: b"/etc/shadow".to_vec(),
            new_path: Vec::new(),
            enforced: None,
            times: Default::default(),
        })]),
    );
    let dns = fuzz.join("dns");
    write(&dns, "response", &message);
    write(&dns, "query", &message[..12 + 18 + 4]);
    write(
        &dns,
        "pointer-loop",
        &[0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xc0, 12],
    );
    println!("wrote the seeds under {}", fuzz.display());
}
