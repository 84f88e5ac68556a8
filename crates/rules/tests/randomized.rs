//! Deterministic randomized tests: thousands of generated and mutated inputs through the parser,
//! compiler and evaluator must never panic, and for every generated event the kernel plan must
//! be sound: an event some rule matches passes the first-stage filter, and an entry the plan
//! calls exact agrees with user space.

mod common;

use common::*;
use shrike_event::{Event, EventKind};
use shrike_rules::Policy;

/// xorshift64*: small, seeded, reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

const PATHS: &[&str] = &[
    "/etc/shadow",
    "/etc/passwd",
    "/etc/cron.d/job",
    "/etc/sudoers.d/x",
    "/var/log/syslog",
    "/root/.ssh/authorized_keys",
    "/home/ann/.ssh/id_rsa",
    "/home/ann/.bashrc",
    "/tmp/x",
    "/tmp/.h/x",
    "/dev/shm/.x",
    "/usr/lib/x.so",
    "/etc/ld.so.preload",
    "/sys/fs/cgroup/x/release_agent",
    "/proc/sys/kernel/randomize_va_space",
    "/var/run/docker.sock",
    "",
    "/",
    "relative",
];
const BINARIES: &[&str] = &[
    "/usr/bin/cat",
    "/usr/bin/bash",
    "/usr/bin/dash",
    "/usr/sbin/sshd",
    "/usr/sbin/nginx",
    "/usr/bin/python3.11",
    "/tmp/x",
    "/dev/shm/.x",
    "/usr/bin/dpkg",
    "/usr/bin/kmod",
    "/opt/sshd",
    "/memfd:x (deleted)",
    "/usr/bin/gdb",
    "/usr/bin/nc",
    "/usr/sbin/unix_chkpwd",
];
const ADDRS: &[&str] = &[
    "127.0.0.1",
    "10.1.2.3",
    "169.254.169.254",
    "::1",
    "fd00::1",
    "not-an-ip",
    "::ffff:10.0.0.1",
];

fn random_event(r: &mut Rng) -> Event {
    let binary = r.pick(BINARIES);
    let mut p = process(
        binary,
        &[
            binary.rsplit('/').next().unwrap_or(""),
            r.pick(&["-e", "-c", "x", "stratum+tcp://a"]),
        ],
    );
    p.uid = r.pick(&[0, 33, 1000, 65534]);
    p.euid = r.pick(&[0, 1000]);
    p.binary_memfd = r.chance(8);
    p.binary_deleted = r.chance(8);
    if r.chance(3) {
        p.comm = r.pick(&["sshd", "kworker/0:1", "cc", "x"]).into();
    }
    if r.chance(4) {
        p.set_env_var("LD_PRELOAD", r.pick(PATHS));
    }
    if r.chance(5) {
        p = stdio_tcp(p, r.pick(ADDRS), 4444);
    }
    if r.chance(4) {
        p = in_container(p);
    }
    let depth = r.below(4);
    let lineage: Vec<_> = (0..depth).map(|_| process(r.pick(BINARIES), &[])).collect();
    let path = r.pick(PATHS);
    match r.below(10) {
        0 => exec(&p, &lineage),
        1 => open(
            &p,
            &lineage,
            path,
            &[r.pick(&["read", "write", "create", "truncate"])],
        ),
        2 => unlink(&p, &lineage, path),
        3 => rename(&p, &lineage, path, r.pick(PATHS)),
        4 => chmod(
            &p,
            &lineage,
            path,
            r.pick(&[0o755, 0o4755, 0o2755, 0o100644]),
        ),
        5 => connect(&p, &lineage, r.pick(ADDRS), r.pick(&[22, 443, 3333, 4444])),
        6 => module_load(&p, &lineage, Some(path), -8),
        7 => ptrace(
            &p,
            &lineage,
            r.pick(&["PTRACE_ATTACH", "PTRACE_POKETEXT", "PTRACE_DETACH"]),
            &process("/usr/bin/sleep", &[]),
        ),
        8 => cred_change(
            &p,
            &lineage,
            (1000, r.pick(&[0, 1000])),
            (0, 0),
            &["CAP_SYS_ADMIN"],
        ),
        _ => {
            let mut e = event(r.pick(&shrike_event::EventKind::ALL), &p, &lineage);
            if e.kind == EventKind::Dns {
                e = dns(&p, &lineage, r.pick(&["xmr.nanopool.org", "example.com"]));
            }
            e
        }
    }
}

/// Checks that the plan never drops an event a rule matches, and that exact entries agree.
fn assert_plan_sound(policy: &Policy, e: &Event) {
    let plan = policy.kernel_plan();
    let matches = policy.evaluate(e);
    if !matches.is_empty() {
        assert!(
            plan.admits(e),
            "first stage drops a matching event: {e:?}\nmatches: {matches:?}"
        );
    }
    for rp in &plan.rules {
        let matched = matches.iter().any(|m| m.index == rp.index);
        for entry in rp.entries.iter().filter(|x| x.kind == e.kind) {
            match entry.kernel_match(e) {
                Some(false) => assert!(
                    !matched,
                    "{}: kernel constraints reject a match: {e:?}",
                    rp.id
                ),
                Some(true) if entry.exact => assert!(
                    matched,
                    "{}: exact entry matches but user space does not: {e:?}",
                    rp.id
                ),
                _ => {}
            }
        }
    }
}

/// The default pack's plan is sound on thousands of generated events.
#[test]
fn default_pack_plan_is_sound_on_generated_events() {
    let policy = Policy::default_pack().unwrap();
    let mut r = Rng(0x5eed_1234_abcd_0001);
    for _ in 0..20_000 {
        let e = random_event(&mut r);
        assert_plan_sound(&policy, &e);
    }
}

/// (field, operators that fit it, values that fit it); a few mistakes are mixed in on purpose.
const TYPED: &[(&str, &[&str], &[&str])] = &[
    (
        "process.name",
        &["=", "!=", "in", "contains", "startswith", "glob"],
        &["bash", "sh", "nc", "cat", "shells", "ss*"],
    ),
    (
        "process.binary",
        &["=", "in", "startswith", "endswith", "glob"],
        &[
            "/usr/bin/cat",
            "/tmp/",
            "/dev/shm/",
            "/usr/*/nc",
            "/cat",
            "/tmp/**",
        ],
    ),
    (
        "process.args",
        &["contains", "in", "startswith", "!="],
        &["-e", "-c", "stratum+tcp://", "x"],
    ),
    (
        "process.uid",
        &["=", "!=", "<", ">=", "in"],
        &["0", "1000", "0x21", "65534"],
    ),
    ("process.euid", &["=", "!="], &["0", "1000"]),
    (
        "parent.name",
        &["=", "in", "!="],
        &["bash", "sshd", "nginx"],
    ),
    (
        "parent.binary",
        &["=", "startswith"],
        &["/usr/bin/bash", "/tmp/"],
    ),
    (
        "ancestors.name",
        &["=", "in", "contains", "!="],
        &["bash", "nginx", "dpkg"],
    ),
    (
        "ancestors.binary",
        &["=", "startswith", "glob"],
        &["/usr/bin/bash", "/dev/shm/", "/usr/**"],
    ),
    (
        "file.path",
        &[
            "=",
            "!=",
            "in",
            "startswith",
            "endswith",
            "glob",
            "contains",
        ],
        &[
            "/etc/shadow",
            "/etc/",
            "/tmp/*",
            "/home/*/.ssh/**",
            "/authorized_keys",
            ".so",
            "/",
        ],
    ),
    (
        "file.name",
        &["=", "in", "startswith"],
        &["shadow", ".bashrc", "x"],
    ),
    (
        "file.new_path",
        &["=", "startswith", "glob"],
        &["/etc/shadow", "/etc/", "/tmp/*"],
    ),
    (
        "file.access",
        &["contains", "in", "="],
        &["read", "write", "create", "truncate", "rea"],
    ),
    ("file.mode.setuid", &["=", "!="], &["true", "false"]),
    (
        "network.dport",
        &["=", "in", ">", "!="],
        &["22", "443", "4444"],
    ),
    (
        "network.daddr",
        &["=", "cidr", "in", "!="],
        &["127.0.0.1", "10.0.0.0/8", "::1", "169.254.169.254"],
    ),
    (
        "process.env.LD_PRELOAD",
        &["exists", "startswith", "glob"],
        &["/tmp/", "/usr/lib/*/x.so"],
    ),
    ("process.stdio_sockets.fd", &["in", "="], &["0", "1"]),
    ("ptrace.request", &["=", "in"], &["PTRACE_ATTACH"]),
    ("proc.nmae", &["="], &["x"]),
    ("file.path", &["cidr", "<"], &["10.0.0.0/8"]),
];

fn random_condition(r: &mut Rng, depth: usize) -> String {
    let atom = |r: &mut Rng| -> String {
        let (field, ops, values) = r.pick(TYPED);
        let op = r.pick(ops);
        if op == "exists" || r.chance(15) {
            return format!("{field} exists");
        }
        if op != "!=" && r.chance(3) {
            let n = 1 + r.below(3);
            let items: Vec<&str> = (0..n).map(|_| r.pick(values)).collect();
            format!("{field} {op} ({})", items.join(", "))
        } else {
            format!("{field} {op} {}", r.pick(values))
        }
    };
    if depth == 0 || r.chance(3) {
        return match r.below(8) {
            0 => format!(
                "kind = {}",
                r.pick(&["file_open", "process_exec", "net_connect", "file_rename"])
            ),
            1 => r
                .pick(&[
                    "m",
                    "process.binary_memfd",
                    "not_a_macro",
                    "process.in_container",
                ])
                .to_string(),
            _ => atom(r),
        };
    }
    let a = random_condition(r, depth - 1);
    let b = random_condition(r, depth - 1);
    match r.below(4) {
        0 => format!("{a} and {b}"),
        1 => format!("({a}) or ({b})"),
        2 => format!("not ({a})"),
        _ => format!("({a}) and not ({b})"),
    }
}

fn random_rule_condition(r: &mut Rng) -> String {
    let body = random_condition(r, 3);
    match r.below(10) {
        0 => body,
        1..=3 => format!("kind in (file_open, file_rename, file_unlink, process_exec, net_connect, ptrace, events_lost) and ({body})"),
        4 => format!("kind != dns and ({body})"),
        _ => format!("kind = {} and ({body})", r.pick(&["file_open", "process_exec", "net_connect", "file_rename", "ptrace"])),
    }
}

/// Generated conditions compile or fail with diagnostics (never panic); the ones that compile
/// evaluate without panicking and with a sound plan.
#[test]
fn generated_conditions_never_panic_and_plans_stay_sound() {
    let mut r = Rng(0xfeed_beef_0000_0002);
    let events: Vec<Event> = (0..200).map(|_| random_event(&mut r)).collect();
    let mut compiled = 0;
    for i in 0..3_000 {
        let cond = random_rule_condition(&mut r).replace('\'', "''");
        let yaml = format!(
            "- list: shells\n  items: [sh, bash]\n- macro: m\n  condition: kind = process_exec\n- rule: r\n  id: R{i}\n  severity: low\n  condition: '{cond}'\n  exceptions: ['{}']\n",
            random_condition(&mut r, 1).replace('\'', "''")
        );
        match Policy::compile([("gen.yaml", yaml.as_str())]) {
            Ok(policy) => {
                compiled += 1;
                let _ = shrike_rules::text::explain(&policy);
                for e in &events {
                    assert_plan_sound(&policy, e);
                }
            }
            Err(diags) => assert!(!diags.is_empty()),
        }
    }
    assert!(
        compiled > 500,
        "only {compiled} generated rules compiled: the generator is too noisy"
    );
}

/// Mutated default-pack files (bytes flipped, cut, duplicated) never make the compiler panic.
#[test]
fn mutated_policy_files_never_panic() {
    let mut r = Rng(0x0bad_cafe_0000_0003);
    let files = shrike_rules::pack::DEFAULT_PACK;
    for _ in 0..600 {
        let (name, text) = r.pick(files);
        let mut bytes = text.as_bytes().to_vec();
        for _ in 0..1 + r.below(4) {
            if bytes.is_empty() {
                break;
            }
            let at = r.below(bytes.len());
            match r.below(5) {
                0 => bytes[at] = r.pick(b"()[]{}:,-'\"#&*!|> \n\tx0/\\"),
                1 => {
                    bytes.truncate(at);
                }
                2 => {
                    let end = (at + r.below(40)).min(bytes.len());
                    bytes.drain(at..end);
                }
                3 => {
                    let end = (at + r.below(80)).min(bytes.len());
                    let chunk = bytes[at..end].to_vec();
                    bytes.splice(at..at, chunk);
                }
                _ => bytes.insert(at, r.next() as u8),
            }
        }
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let mut sources = vec![(
            "policies/default/lists.yaml".to_string(),
            files[0].1.to_string(),
        )];
        sources.push((name.to_string(), text));
        let _ = Policy::compile(sources);
    }
}

/// Arbitrary text as a condition never panics the parser, including deep nesting.
#[test]
fn arbitrary_condition_text_never_panics() {
    let mut r = Rng(0x1234_5678_9abc_def0);
    let alphabet: Vec<char> = "()=!<>,'\" \tabcdefghijklmnopqrstuvwxyz._/-*?[]0123456789éλ\\"
        .chars()
        .collect();
    for _ in 0..20_000 {
        let len = r.below(60);
        let text: String = (0..len).map(|_| r.pick(&alphabet)).collect();
        let _ = shrike_rules::parser::parse(&text);
    }
    let deep = format!("{}kind = dns{}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(shrike_rules::parser::parse(&deep).is_err());
}
