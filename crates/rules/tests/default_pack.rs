//! The default pack's trust and noise decisions, on hand-built events: exceptions trust
//! programs by path (a renamed copy is still caught), and reading a file never raises a
//! persistence or privilege alert (only reading techniques alert on reads).

mod common;

use common::*;
use shrike_event::Event;
use shrike_rules::Policy;

fn pack() -> Policy {
    Policy::default_pack().expect("default pack compiles")
}

fn ids(policy: &Policy, e: &Event) -> Vec<String> {
    policy
        .evaluate(e)
        .iter()
        .map(|m| m.rule_id.to_string())
        .collect()
}

/// The flags `find`, `ls` and `tar` open a directory with (O_RDONLY|O_NONBLOCK|O_CLOEXEC|
/// O_DIRECTORY), with the access the sensor reported before the O_TMPFILE fix: `create`.
fn directory_open(
    p: &shrike_event::Process,
    lineage: &[shrike_event::Process],
    path: &str,
) -> Event {
    let mut e = open(p, lineage, path, &["read", "create"]);
    if let Some(f) = e.file_mut() {
        f.flags = 0o200000 | 0o4000 | 0o2000000;
    }
    e
}

/// A copy of /bin/sh saved as /tmp/x/dpkg that writes a cron job is not a package manager, and
/// its children are not maintainer scripts: the cron rule fires for both. The real dpkg (by
/// path) and what it starts are excepted.
#[test]
fn a_shell_renamed_like_a_package_manager_is_not_trusted() {
    let policy = pack();
    let sh = scenario_shell("x.sh");
    let fake = with_comm(process("/tmp/x/dpkg", &["dpkg", "-c", "x"]), "dpkg");
    let e = open(&fake, &sh, "/etc/cron.d/evil", WRITE_NEW);
    assert!(ids(&policy, &e).contains(&"SHR-PERS-001".to_string()));
    let child = process("/usr/bin/cp", &["cp", "a", "/etc/cron.d/evil"]);
    let e = open(&child, &child_of(&fake, &sh), "/etc/cron.d/evil", WRITE_NEW);
    assert!(ids(&policy, &e).contains(&"SHR-PERS-001".to_string()));

    let dpkg = process("/usr/bin/dpkg", &["dpkg", "-i", "x.deb"]);
    let e = open(&dpkg, &sh, "/etc/cron.d/pkg", WRITE_NEW);
    assert!(ids(&policy, &e).is_empty(), "{:?}", ids(&policy, &e));
    let postinst = process(
        "/usr/bin/dash",
        &["/bin/sh", "/var/lib/dpkg/info/x.postinst"],
    );
    let e = open(
        &postinst,
        &child_of(&dpkg, &sh),
        "/etc/cron.d/pkg",
        WRITE_NEW,
    );
    assert!(ids(&policy, &e).is_empty(), "{:?}", ids(&policy, &e));
}

/// Every name-trusting exception of the old pack, replayed with an impostor at a temp path:
/// a `systemctl`, a `logrotate`, a `gdb`, a `kmod` and a `ssh-keygen` that are copies of
/// something else are caught by the rule their real namesake is excepted from.
#[test]
fn impostors_of_trusted_tools_are_caught() {
    let policy = pack();
    let sh = scenario_shell("x.sh");
    let cases: Vec<(Event, &str)> = vec![
        (
            open(
                &process("/tmp/.t/systemctl", &["systemctl"]),
                &sh,
                "/etc/systemd/system/evil.service",
                WRITE_NEW,
            ),
            "SHR-PERS-002",
        ),
        (
            open(
                &process("/dev/shm/logrotate", &["logrotate"]),
                &sh,
                "/var/log/auth.log",
                &["write", "truncate"],
            ),
            "SHR-EVA-001",
        ),
        (
            ptrace(
                &process("/tmp/gdb", &["gdb", "-p", "1"]),
                &sh,
                "PTRACE_POKETEXT",
                &process("/usr/sbin/sshd", &["sshd"]),
            ),
            "SHR-KRN-005",
        ),
        (
            module_load(&process("/tmp/kmod", &["insmod", "x.ko"]), &sh, None, -8),
            "SHR-KRN-001",
        ),
        (
            open(
                &process("/tmp/ssh-keygen", &["ssh-keygen"]),
                &sh,
                "/root/.ssh/id_ed25519",
                &["read"],
            ),
            "SHR-CRED-002",
        ),
    ];
    for (e, id) in cases {
        assert!(
            ids(&policy, &e).contains(&id.to_string()),
            "{id} missed {}: {:?}",
            e.process.binary,
            ids(&policy, &e)
        );
    }
    // The real tools at their paths stay trusted.
    let keygen = process("/usr/bin/ssh-keygen", &["ssh-keygen", "-y"]);
    let e = open(&keygen, &sh, "/root/.ssh/id_ed25519", &["read"]);
    assert!(ids(&policy, &e).is_empty());
}

/// Listing, searching and archiving the watched directories reads them: `find`, `grep -r` and
/// `tar` raise nothing, even where the sensor says `create` for a directory open. Writing the
/// same paths still alerts.
#[test]
fn reading_persistence_locations_raises_nothing() {
    let policy = pack();
    let sh = scenario_shell("inventory.sh");
    let find = process("/usr/bin/find", &["find", "/", "-xdev"]);
    let grep = process(
        "/usr/bin/grep",
        &["grep", "-r", "x", "/etc/systemd", "/etc/cron.d"],
    );
    let tar = process("/usr/bin/tar", &["tar", "-cf", "/tmp/etc.tar", "/etc"]);
    let dirs = [
        "/etc/cron.d",
        "/etc/cron.daily",
        "/var/spool/cron/crontabs",
        "/etc/systemd/system",
        "/etc/sudoers.d",
        "/etc/pam.d",
        "/etc/profile.d",
        "/etc/init.d",
        "/etc/ld.so.conf.d",
        "/root/.ssh",
        "/etc/modules-load.d",
    ];
    let files = [
        "/etc/crontab",
        "/etc/cron.d/e2scrub_all",
        "/etc/systemd/system/multi-user.target.wants/cron.service",
        "/etc/pam.d/common-auth",
        "/etc/profile",
        "/etc/bash.bashrc",
        "/root/.bashrc",
        "/etc/ld.so.conf",
        "/etc/passwd",
        "/etc/group",
        "/etc/sudoers",
        "/etc/rc.local",
        "/etc/ld.so.preload",
        "/root/.ssh/authorized_keys",
        "/etc/rsyslog.conf",
        "/etc/modules",
        "/var/log/syslog",
        "/root/.bash_history",
    ];
    for p in [&find, &grep, &tar] {
        for d in dirs {
            let e = directory_open(p, &sh, d);
            assert!(
                ids(&policy, &e).is_empty(),
                "{} listing {d}: {:?}",
                p.binary,
                ids(&policy, &e)
            );
        }
        for f in files {
            let e = open(p, &sh, f, &["read"]);
            assert!(
                ids(&policy, &e).is_empty(),
                "{} reading {f}: {:?}",
                p.binary,
                ids(&policy, &e)
            );
        }
    }
    let e = open(
        &sh[0],
        &sh[1..],
        "/etc/cron.d/job",
        &["write", "create", "truncate"],
    );
    assert_eq!(ids(&policy, &e), ["SHR-PERS-001"]);
}

/// A write opened with O_TMPFILE in a watched directory is a create (O_TMPFILE contains
/// O_DIRECTORY's bit, and that alone must not hide it).
#[test]
fn an_o_tmpfile_create_is_still_a_write() {
    let policy = pack();
    let sh = scenario_shell("x.sh");
    let mut e = open(&sh[0], &sh[1..], "/etc/cron.d", &["write", "create"]);
    if let Some(f) = e.file_mut() {
        f.flags = 0o20200000 | 0o2;
    }
    assert_eq!(ids(&policy, &e), ["SHR-PERS-001"]);
}

/// Reading techniques still alert on reads: the shadow file and a private key.
#[test]
fn reading_secrets_still_alerts() {
    let policy = pack();
    let sh = scenario_shell("x.sh");
    let tar = process("/usr/bin/tar", &["tar", "-cf", "/tmp/etc.tar", "/etc"]);
    let e = open(&tar, &sh, "/etc/shadow", &["read"]);
    assert!(ids(&policy, &e).contains(&"SHR-CRED-001".to_string()));
    let e = open(&tar, &sh, "/etc/ssh/ssh_host_ed25519_key", &["read"]);
    assert!(ids(&policy, &e).contains(&"SHR-CRED-002".to_string()));
}

/// The pack's file rules all name paths the kernel can filter on: no file kind is sent to user
/// space unfiltered (a rule keyed on a program name alone would pass every open on the machine).
#[test]
fn no_file_kind_is_sent_unfiltered() {
    let policy = pack();
    for k in &policy.kernel_plan().kinds {
        if k.kind.as_str().starts_with("file_") {
            assert!(!k.pass_all, "{} is sent unfiltered", k.kind);
            assert!(
                k.interest.keys().all(|d| matches!(
                    d,
                    shrike_rules::Dim::Path | shrike_rules::Dim::NewPath | shrike_rules::Dim::Setid
                )),
                "{} filters on {:?}, which the file sensor cannot test",
                k.kind,
                k.interest.keys().collect::<Vec<_>>()
            );
        }
    }
}
