#!/usr/bin/python3
"""shrike's benchmark suite: overhead, throughput and loss, side by side with the tools users run
today, in the same run on the same machine.

What it does, in order (see bench/README.md for the method and how to read the figures):

1. builds shrike (release) and the C workload drivers in bench/drivers/ (gcc, into a temp dir);
2. overhead: every workload under every configuration of CONFIGS, interleaved (each round runs
   every configuration once per workload, in a rotated order), medians and min-max over rounds;
   per run the agent's own CPU seconds, peak RSS, events delivered and events lost;
3. throughput and loss: a ramp that raises the process-event rate until shrike first drops
   records, and two fork storms (one as is, one behind a stalled consumer) that show loss is
   counted, reported in the event stream, and that the process tree recovers;
4. footprint: peak RSS with 100,000 live processes tracked, start-up time (to "shrike ready" and
   to the first event), idle CPU over 60 s;
5. writes bench/results/<timestamp>-<host>.md and .json and prints the markdown.

Every daemon, agent and child it starts runs in its own process group and is stopped on exit,
error, Ctrl-C or SIGTERM; mounts it made are unmounted, sysctls and audit state restored.

Run as root, through `./dev bench` (installs what is missing) or `/usr/bin/python3 bench/bench.py`.
`--quick` scales every count down 100x and does 2 rounds: a smoke test of a minute or two.
"""

import argparse
import datetime
import json
import os
import platform
import re
import resource
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(ROOT, "bench")
SHRIKE = os.path.join(ROOT, "target", "release", "shrike")
RESULTS = os.path.join(BENCH, "results")

# ---------------------------------------------------------------------------------------------
# The configurations. Change the flags of a configuration here and nowhere else.
#
# kind "none": nothing runs. kind "shrike": `target/release/shrike run FLAGS`. kind "auditd":
# auditd started directly (no systemd here) with its own config dir, RULES loaded with auditctl.
# kind "bpftrace": `bpftrace -e SCRIPT`, output to a file. kind "tools": the COMMANDS, each with
# line-buffered output to a file (as on a terminal).

SHRIKE_DEFAULT_FLAGS = []
# "Everything watched": every event kind the agent can emit, every path: process_fork events
# too, and the file sensor watching everything under / (so every open is an event). The network
# sensor is on by default.
SHRIKE_ALL_FLAGS = ["--emit-forks", "--watch", "/"]

AUDIT_RULES = [
    ["-a", "always,exit", "-F", "arch=b64", "-S", "execve", "-k", "shrike_bench_exec"],
    ["-w", "/etc/shadow", "-p", "rwxa", "-k", "shrike_bench_shadow"],
]

BPFTRACE_TRACER = (
    'tracepoint:syscalls:sys_enter_execve { printf("%d %s %s\\n", pid, comm, str(args->filename)); } '
    'tracepoint:syscalls:sys_enter_openat { printf("%d %s %s\\n", pid, comm, str(args->filename)); }'
)
# One empty program on a syscall tracepoint no workload calls: what arming any syscall tracepoint
# costs every system call of every process (the kernel's syscall-tracepoint "slow path" tax).
BPFTRACE_FLOOR = "tracepoint:syscalls:sys_enter_vhangup { }"
# Empty programs on the entry and exit of every system call: what a design that hooks all
# syscalls pays before doing any work (shrike's file sensor does, with tp_btf sys_enter/sys_exit,
# where BPF LSM is not available).
BPFTRACE_RAW_FLOOR = "tracepoint:raw_syscalls:sys_enter { } tracepoint:raw_syscalls:sys_exit { }"

CONFIGS = [
    {"name": "baseline", "kind": "none", "what": "nothing running"},
    {
        "name": "shrike-default",
        "kind": "shrike",
        "flags": SHRIKE_DEFAULT_FLAGS,
        "what": "`shrike run` (built-in defaults: the default policy pack; the process, file (built-in"
        " watch list) and network sensors)",
    },
    {
        "name": "shrike-tp",
        "kind": "shrike",
        "flags": SHRIKE_DEFAULT_FLAGS + ["--file-hooks", "tracepoint"],
        "what": "`shrike run --file-hooks tracepoint`: the defaults with the file sensor on the armed"
        " system calls' own tracepoints, also where `auto` takes the raw pair because an armed call"
        " has no trace events (module loads on a kernel without module support)",
    },
    {
        "name": "shrike-raw-tp",
        "kind": "shrike",
        "flags": SHRIKE_DEFAULT_FLAGS + ["--file-hooks", "raw-tracepoint"],
        "what": "`shrike run --file-hooks raw-tracepoint`: the defaults with the file sensor on the"
        " raw sys_enter/sys_exit pair (a program on every system call); the alternative, measured",
    },
    {
        "name": "shrike-all",
        "kind": "shrike",
        "flags": SHRIKE_ALL_FLAGS,
        "what": "`shrike run " + " ".join(SHRIKE_ALL_FLAGS) + "` (everything watched: process_fork events"
        " too, and every path under / for the file sensor, so every open is an event)",
    },
    {
        "name": "auditd",
        "kind": "auditd",
        "rules": AUDIT_RULES,
        "what": "auditd 3.0.9 (Debian's auditd.conf, log in a temp dir), backlog_limit 8192,"
        " rules: `" + "`, `".join(" ".join(r) for r in AUDIT_RULES) + "`",
    },
    {
        "name": "bpftrace",
        "kind": "bpftrace",
        "script": BPFTRACE_TRACER,
        "what": "bpftrace printing every execve and openat (sys_enter tracepoints) to a file",
    },
    {
        "name": "syscall-tp-floor",
        "kind": "bpftrace",
        "script": BPFTRACE_FLOOR,
        "what": "bpftrace `" + BPFTRACE_FLOOR + "`: one empty program on one syscall tracepoint"
        " that no workload calls; the kernel's floor for any syscall-tracepoint tracer",
    },
    {
        "name": "raw-syscalls-floor",
        "kind": "bpftrace",
        "script": BPFTRACE_RAW_FLOOR,
        "what": "bpftrace `" + BPFTRACE_RAW_FLOOR + "`: empty programs run on every system call's entry"
        " and exit; the floor for hooking all syscalls (shrike's file sensor without BPF LSM does)",
    },
    {
        "name": "libbpf-tools",
        "kind": "tools",
        "commands": [["opensnoop"], ["execsnoop"]],
        "what": "libbpf-tools `opensnoop` and `execsnoop` together (CO-RE, syscall tracepoints),"
        " line-buffered output to files",
    },
]

# The configuration the ramp and the storms run, and the one the targets are judged on.
RAMP_CONFIG = "shrike-all"
TARGET_CONFIG = "shrike-default"

# ---------------------------------------------------------------------------------------------
# Workloads. "n" is the full-size count; --quick divides it by 100.

WORKLOADS = [
    {"name": "open-close", "n": 1_000_000, "what": "1,000,000 open/close of one file (no rule watches it)"},
    {"name": "getppid", "n": 5_000_000, "what": "5,000,000 getppid system calls (one no agent watches)"},
    {"name": "fork-exec", "n": 20_000, "what": "20,000 fork+exec of /bin/true, one after the other"},
    {"name": "tcp-loopback", "n": 20_000, "what": "20,000 TCP connect/accept pairs on 127.0.0.1"},
    {"name": "make-j2", "n": 40, "what": "compile a generated 40-file C project with make -j2 -B"},
    {"name": "tar", "n": 1, "what": "tar of /usr/include (about 10,000 files: stat, open, read, close each) into a pipe"},
]

# Every workload; --workloads narrows WORKLOADS to some of them.
ALL_WORKLOADS = list(WORKLOADS)

# The performance issue's targets for `shrike run` defaults on this machine kind (2 cores, no
# BPF LSM); besides these, every workload's ratio should be below auditd's in the same run.
TARGETS = {
    "open-close": 1.20,
    "getppid": 1.25,
    "fork-exec": 1.05,
    "tcp-loopback": 1.10,
}
TARGET_PEER = "auditd"
TARGET_RATE = 300_000  # events/s with zero loss, on 2 cores
TARGET_RSS_MB = 64  # with 100,000 processes tracked
TARGET_STARTUP_S = 1.0

DRIVERS = ["openclose", "getppid", "forkexec", "tcp", "ramp", "storm", "sleepers"]

STARTED = time.monotonic()


def log(msg):
    print(f"[{time.monotonic() - STARTED:7.1f}s] {msg}", file=sys.stderr, flush=True)


class Unavailable(Exception):
    """A configuration cannot run on this machine; the message says why."""


class Interrupted(Exception):
    """SIGTERM or SIGHUP arrived."""


# ---------------------------------------------------------------------------------------------
# Cleanup: everything started or changed registers how to undo it; run in reverse order on any
# exit path.


class Cleanup:
    def __init__(self):
        self._items = {}
        self._next = 0

    def push(self, desc, fn):
        key = self._next
        self._next += 1
        self._items[key] = (desc, fn)
        return key

    def done(self, key, run=True):
        item = self._items.pop(key, None)
        if item and run:
            item[1]()

    def run_all(self):
        for key in sorted(self._items, reverse=True):
            desc, fn = self._items.pop(key)
            try:
                fn()
            except Exception as err:  # keep undoing the rest
                log(f"cleanup: {desc}: {err}")


CLEANUP = Cleanup()

# ---------------------------------------------------------------------------------------------
# Processes


def spawn(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL, env=None):
    """Starts argv in its own session (own process group), registered for cleanup."""
    p = subprocess.Popen(
        argv, stdout=stdout, stderr=stderr, stdin=stdin, start_new_session=True, env=env, cwd="/"
    )
    p.bench_rusage = None
    p.bench_cleanup = CLEANUP.push(f"stop {argv[0]} (pid {p.pid})", lambda: stop(p, signal.SIGKILL, 5))
    return p


def stop(p, sig=signal.SIGTERM, timeout=60.0):
    """Signals p, waits for it (SIGKILL to its group after timeout) and returns its rusage."""
    if p.returncode is None:
        try:
            os.kill(p.pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + timeout
        while True:
            try:
                pid, status, ru = os.wait4(p.pid, os.WNOHANG)
            except ChildProcessError:
                p.returncode = -1
                break
            if pid:
                p.returncode = os.waitstatus_to_exitcode(status)
                p.bench_rusage = ru
                break
            if time.monotonic() > deadline:
                log(f"pid {p.pid} ({p.args[0]}) did not stop within {timeout:.0f} s: SIGKILL")
                try:
                    os.killpg(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                deadline = time.monotonic() + 30
                sig = signal.SIGKILL
            time.sleep(0.005)
    # Anything left in its group (it should be alone) goes too.
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    CLEANUP.done(p.bench_cleanup, run=False)
    return p.bench_rusage


def cpu_snapshot():
    """(monotonic time, machine busy CPU s, this suite's CPU s) — their deltas give the CPU the
    rest of the machine used meanwhile. Ours = this process and every child it has waited for
    (agents, daemons, workloads, and theirs); kernel threads count as others."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal ...: busy excludes idle, iowait and steal.
    busy = (fields[0] + fields[1] + fields[2] + fields[5] + fields[6]) / CLK_TCK
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    ours = me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime
    return time.monotonic(), busy, ours


def others_cpu(before, after):
    """CPU seconds the rest of the machine used between two snapshots, and its share of it."""
    wall = after[0] - before[0]
    others = max(0.0, (after[1] - before[1]) - (after[2] - before[2]))
    return {"seconds": round(wall, 1), "others_cpu_s": round(others, 1),
            "others_share": round(others / (wall * (os.cpu_count() or 1)), 3) if wall > 0 else None}


def rusage_cpu(ru):
    return ru.ru_utime + ru.ru_stime if ru else None


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    """utime+stime of a live process in seconds (all its threads), or None."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def proc_status(pid, key):
    """A kB field of /proc/PID/status (VmHWM, VmRSS) in MiB, or None.

    Peak RSS is read as VmHWM of the live process, not from the exit rusage: ru_maxrss also
    keeps the high-water mark of the image before exec, which for a child of this harness is the
    harness's own RSS."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def file_size(path):
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def count_lines(path, offset=0):
    n = 0
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            while True:
                chunk = f.read(1 << 20)
                if not chunk:
                    break
                n += chunk.count(b"\n")
    except OSError:
        pass
    return n


def lines_from(path, offset=0):
    """The complete lines of a file from offset on, streamed (agent outputs reach gigabytes)."""
    try:
        f = open(path, "rb")
    except OSError:
        return
    with f:
        f.seek(offset)
        rest = b""
        while True:
            chunk = f.read(1 << 20)
            if not chunk:
                break
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            yield from lines


class Follow:
    """Reads the lines a growing file gains, call after call."""

    def __init__(self, path, offset=0):
        self.path = path
        self.pos = offset
        self.rest = b""

    def new_lines(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except OSError:
            return []
        self.pos += len(data)
        lines = (self.rest + data).split(b"\n")
        self.rest = lines.pop()
        return lines


def read_from(path, offset=0):
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read()
    except OSError:
        return b""


def wait_for(predicate, timeout, what, proc=None, interval=0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc is not None and proc.poll() is not None:
            raise Unavailable(f"{what}: the process exited with code {proc.returncode}")
        time.sleep(interval)
    raise Unavailable(f"{what}: not within {timeout:.0f} s")


def run_cmd(argv, check=True, timeout=120):
    r = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    if check and r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}): {r.stderr.strip() or r.stdout.strip()}")
    return r


def tail(text, lines=6):
    return " | ".join(text.strip().splitlines()[-lines:])


LOST_RE = re.compile(rb"[Ll]ost (\d+) events")


# ---------------------------------------------------------------------------------------------
# Mounts and sysctls


def mounted_fs(fstype):
    with open("/proc/self/mounts") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == fstype:
                return parts[1]
    return None


TRACEFS = {"cleanup": None}


def ensure_tracefs():
    """Classic tracepoints (bpftrace, libbpf-tools) need tracefs. Checked before every tracer
    start, since others on the machine may mount and unmount it meanwhile (an agent that mounted
    it unmounts it when it stops); mounted when missing, and unmounted at the end of the suite if
    the suite mounted it."""
    if mounted_fs("tracefs"):
        return
    path = "/sys/kernel/tracing"
    r = run_cmd(["mount", "-t", "tracefs", "tracefs", path], check=False)
    if r.returncode != 0:
        raise Unavailable(f"tracefs is not mounted and mounting it on {path} failed: {r.stderr.strip()}")
    log(f"mounted tracefs on {path} (unmounted at the end)")
    if TRACEFS["cleanup"] is not None:
        return

    def unmount():
        if not mounted_fs("tracefs"):
            return
        for _ in range(50):
            if run_cmd(["umount", path], check=False).returncode == 0:
                log(f"unmounted tracefs from {path}")
                return
            time.sleep(0.1)
        log(f"could not unmount tracefs from {path} (busy); leaving it mounted")

    TRACEFS["cleanup"] = CLEANUP.push("unmount tracefs", unmount)


def set_sysctl(path, value):
    """Writes a /proc/sys value and registers the restore of the old one; returns the old."""
    with open(path) as f:
        old = f.read().strip()
    with open(path, "w") as f:
        f.write(str(value))

    def restore():
        with open(path, "w") as f:
            f.write(old)
        log(f"restored {path} = {old}")

    return old, CLEANUP.push(f"restore {path}", restore)


# ---------------------------------------------------------------------------------------------
# Agents. Each: start() (raises Unavailable), before() just before the workload, stop() -> dict.


class NoAgent:
    def __init__(self, config, tmp):
        self.config = config

    def start(self):
        pass

    def before(self):
        pass

    def stop(self):
        return {}


class ShrikeAgent:
    """`shrike run FLAGS`: stdout to a file, stderr read line by line with arrival times."""

    def __init__(self, config, tmp, extra_flags=(), gated=False):
        self.config = config
        self.flags = list(config.get("flags", [])) + list(extra_flags)
        self.out = os.path.join(tmp, f"{config['name']}.events")
        self.lines = []  # (monotonic time, text)
        self.cv = threading.Condition()
        self.p = None
        # gated: stdout is a pipe nobody reads until open_gate(), as behind a stuck consumer;
        # then a thread copies it to the file.
        self.gate = threading.Event() if gated else None

    def start(self, ready_timeout=120):
        if not os.access(SHRIKE, os.X_OK):
            raise Unavailable(f"{SHRIKE} is not built")
        outf = open(self.out, "wb")
        self.t_exec = time.monotonic()
        self.p = spawn([SHRIKE, "run", *self.flags], stdout=subprocess.PIPE if self.gate else outf,
                       stderr=subprocess.PIPE)
        self.reader = threading.Thread(target=self._read_stderr, daemon=True)
        self.reader.start()
        if self.gate:
            self.copier = threading.Thread(target=self._copy_stdout, args=(outf,), daemon=True)
            self.copier.start()
        else:
            outf.close()
        with self.cv:
            ok = self.cv.wait_for(lambda: self.ready_at() is not None or self.p.poll() is not None, ready_timeout)
        if self.ready_at() is None:
            rc = self.p.poll()
            stop(self.p, signal.SIGKILL, 5)
            reason = "exited" if rc is not None else ("timed out" if not ok else "no ready line")
            raise Unavailable(f"shrike run {' '.join(self.flags)} {reason} before 'shrike ready': {tail(self.stderr_text())}")
        self.startup_s = self.ready_at() - self.t_exec

    def _copy_stdout(self, outf):
        self.gate.wait()
        fd = self.p.stdout.fileno()
        with outf:
            while True:
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                outf.write(chunk)
                outf.flush()

    def open_gate(self):
        if self.gate:
            self.gate.set()

    def _read_stderr(self):
        for raw in self.p.stderr:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self.cv:
                self.lines.append((time.monotonic(), line))
                self.cv.notify_all()
        with self.cv:
            self.cv.notify_all()

    def ready_at(self):
        for t, line in self.lines:
            if "shrike ready" in line:
                return t
        return None

    def stderr_text(self):
        with self.cv:
            return "\n".join(line for _, line in self.lines)

    def before(self):
        self.cpu0 = proc_cpu(self.p.pid) or 0.0
        self.offset = file_size(self.out)
        self.settled_at = None

    def settle(self, timeout=15.0):
        """After the workload: waits for one of the agent's loss checks (every second) and for
        its output to stop growing, and marks the place. Loss reported up to there is the
        workload's; the final counters also count what is dropped while the agent shuts down."""
        start = time.monotonic()
        time.sleep(1.1)
        size, still = file_size(self.out), time.monotonic()
        while time.monotonic() - start < timeout:
            time.sleep(0.1)
            now = file_size(self.out)
            if now != size:
                size, still = now, time.monotonic()
            elif time.monotonic() - still >= 0.3:
                break
        self.settled_at = size

    def stop(self):
        self.open_gate()
        hwm = proc_status(self.p.pid, "VmHWM")
        ru = stop(self.p, signal.SIGTERM)
        self.reader.join(timeout=10)
        if self.gate:
            self.copier.join(timeout=30)
        counters = self.final_counters()
        events = 0
        stream_lost = 0
        stream_lost_settled = 0
        stream_lost_events = 0
        pos = self.offset
        for line in lines_from(self.out, self.offset):
            events += 1
            pos += len(line) + 1
            if b'"events_lost"' in line:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("kind") == "events_lost":
                    n = sum(v for v in (ev.get("lost") or {}).values() if isinstance(v, int))
                    stream_lost_events += 1
                    stream_lost += n
                    if self.settled_at is not None and pos <= self.settled_at:
                        stream_lost_settled += n
        cpu = rusage_cpu(ru)
        return {
            "cpu_s": None if cpu is None else round(cpu - self.cpu0, 3),
            "cpu_total_s": cpu,
            "rss_mb": hwm,
            "events": events,
            # With settle(): what the stream reported by the end of the workload; the final
            # counter (lost_at_exit) also has what was dropped while the agent stopped.
            "lost": stream_lost_settled if self.settled_at is not None else (counters.get("ringbuf_full") if counters else None),
            "lost_at_exit": counters.get("ringbuf_full") if counters else None,
            "lost_in_stream": stream_lost,
            "events_lost_events": stream_lost_events,
            "counters": counters,
            "exit_code": self.p.returncode,
            "agent_error": self.error_line(),
            "startup_s": round(self.startup_s, 4),
        }

    def error_line(self):
        """The agent's own error line when it stopped on an error (`shrike: error: ...`)."""
        if self.p.returncode == 0:
            return None
        for _, line in reversed(self.lines):
            if "error" in line.lower():
                return line.strip()
        return f"exit code {self.p.returncode}"

    def final_counters(self):
        for _, line in reversed(self.lines):
            if "final counters" in line:
                return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}
        return None

    def last_live(self):
        """Live processes in the tree from the newest periodic counters log (--stats-interval)."""
        for _, line in reversed(self.lines):
            m = re.search(r"\blive=(\d+)", line)
            if m:
                return int(m.group(1))
        return None


class AuditdAgent:
    """auditd started directly (there is no systemd here) with a config dir of its own."""

    def __init__(self, config, tmp):
        self.config = config
        self.dir = os.path.join(tmp, "auditd")
        self.p = None
        self.loaded = []

    @staticmethod
    def status():
        r = run_cmd(["auditctl", "-s"], check=False)
        if r.returncode != 0:
            raise Unavailable(f"auditctl -s failed: {(r.stderr or r.stdout).strip()}")
        out = {}
        for line in r.stdout.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[1].lstrip("-").isdigit():
                out[parts[0]] = int(parts[1])
        return out

    def start(self):
        if not shutil.which("auditd") or not shutil.which("auditctl"):
            raise Unavailable("auditd is not installed (apt-get install auditd)")
        initial = self.status()
        if initial.get("pid", 0) and os.path.exists(f"/proc/{initial['pid']}"):
            raise Unavailable(f"another audit daemon is running (pid {initial['pid']})")
        os.makedirs(os.path.join(self.dir, "plugins.d"), exist_ok=True)
        self.log = os.path.join(self.dir, "audit.log")
        conf = []
        with open("/etc/audit/auditd.conf") as f:
            for line in f:
                key = line.split("=", 1)[0].strip()
                if key == "log_file":
                    line = f"log_file = {self.log}\n"
                elif key == "plugin_dir":
                    line = f"plugin_dir = {self.dir}/plugins.d\n"
                elif key.endswith("_action") and key != "overflow_action":
                    line = f"{key} = IGNORE\n"
                conf.append(line)
        path = os.path.join(self.dir, "auditd.conf")
        with open(path, "w") as f:
            f.writelines(conf)
        os.chmod(path, 0o640)

        def restore_audit():
            run_cmd(["auditctl", "-e", str(initial.get("enabled", 0))], check=False)
            if "backlog_limit" in initial:
                run_cmd(["auditctl", "-b", str(initial["backlog_limit"])], check=False)

        self.restore_key = CLEANUP.push("restore audit settings", restore_audit)
        self.p = spawn(["auditd", "-n", "-c", self.dir], stderr=subprocess.PIPE)
        wait_for(lambda: self.status().get("pid") == self.p.pid, 20, "auditd registering with the kernel", self.p)
        run_cmd(["auditctl", "-b", "8192"])
        self.rules_key = CLEANUP.push("remove the bench audit rules", self._remove_rules)
        for rule in self.config["rules"]:
            run_cmd(["auditctl", *rule])
            self.loaded.append(rule)
        run_cmd(["auditctl", "-e", "1"])
        self.kauditd = find_kthread("kauditd")

    def _remove_rules(self):
        for rule in reversed(self.loaded):
            # `-a LIST,ACTION ...` is deleted by `-d LIST,ACTION ...`, a watch `-w` by `-W`.
            delete = [{"-a": "-d", "-w": "-W"}.get(rule[0], rule[0]), *rule[1:]]
            run_cmd(["auditctl", *delete], check=False)
        self.loaded = []

    def _cpu(self):
        return (proc_cpu(self.p.pid) or 0.0) + ((proc_cpu(self.kauditd) or 0.0) if self.kauditd else 0.0)

    def before(self):
        self.cpu0 = proc_cpu(self.p.pid) or 0.0
        self.kcpu0 = (proc_cpu(self.kauditd) or 0.0) if self.kauditd else 0.0
        self.s0 = self.status()
        self.offset = file_size(self.log)

    def stop(self):
        s1 = self.status()
        # Let kauditd hand over what is queued before the rules go.
        deadline = time.monotonic() + 20
        while self.status().get("backlog", 0) > 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        kcpu = ((proc_cpu(self.kauditd) or 0.0) - self.kcpu0) if self.kauditd else 0.0
        s2 = self.status()
        CLEANUP.done(self.rules_key)
        hwm = proc_status(self.p.pid, "VmHWM")
        ru = stop(self.p, signal.SIGTERM)
        CLEANUP.done(self.restore_key)
        serial = re.compile(rb"msg=audit\(\d+\.\d+:(\d+)\)")
        serials = set()
        for line in lines_from(self.log, self.offset):
            m = serial.search(line)
            if m:
                serials.add(m.group(1))
        cpu = rusage_cpu(ru)
        return {
            "cpu_s": None if cpu is None else round(cpu - self.cpu0 + kcpu, 3),
            "kauditd_cpu_s": round(kcpu, 3),
            "rss_mb": hwm,
            "events": len(serials),
            "lost": s2.get("lost", 0) - self.s0.get("lost", 0),
            "backlog_at_end": s1.get("backlog"),
            "backlog_wait_time_actual": s2.get("backlog_wait_time_actual"),
            "exit_code": self.p.returncode,
        }


def find_kthread(comm):
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/comm") as f:
                    if f.read().strip() == comm:
                        return int(pid)
            except OSError:
                pass
    return None


class BpftraceAgent:
    READY = "shrike-bench-ready"

    def __init__(self, config, tmp):
        self.config = config
        self.out = os.path.join(tmp, f"{config['name']}.out")
        self.err = os.path.join(tmp, f"{config['name']}.err")

    def start(self):
        if not shutil.which("bpftrace"):
            raise Unavailable("bpftrace is not installed (apt-get install bpftrace)")
        ensure_tracefs()
        script = f'BEGIN {{ printf("{self.READY}\\n"); }} ' + self.config["script"]
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.p = spawn(["bpftrace", "-e", script], stdout=out, stderr=err)
        try:
            wait_for(lambda: self.READY.encode() in read_from(self.out, 0)[:4096], 60, "bpftrace attaching", self.p)
        except Unavailable as err:
            stop(self.p, signal.SIGKILL, 5)
            raise Unavailable(f"{err}: {tail(read_from(self.err).decode('utf-8', 'replace'))}")

    def before(self):
        self.cpu0 = proc_cpu(self.p.pid) or 0.0
        self.offset = file_size(self.out)
    def stop(self):
        hwm = proc_status(self.p.pid, "VmHWM")
        ru = stop(self.p, signal.SIGINT, 20)
        events, lost = 0, 0
        for line in lines_from(self.out, self.offset):
            m = LOST_RE.search(line)
            if m:
                lost += int(m.group(1))
            else:
                events += 1
        lost += sum(int(n) for n in LOST_RE.findall(read_from(self.err)))
        cpu = rusage_cpu(ru)
        return {
            "cpu_s": None if cpu is None else round(cpu - self.cpu0, 3),
            "rss_mb": hwm,
            "events": events,
            "lost": lost,
            "exit_code": self.p.returncode,
        }


class ToolsAgent:
    """Several tracers at once (libbpf-tools), each line-buffered to its own file."""

    def __init__(self, config, tmp):
        self.config = config
        self.tmp = tmp
        self.procs = []

    def start(self):
        for cmd in self.config["commands"]:
            if not shutil.which(cmd[0]):
                raise Unavailable(f"{cmd[0]} is not installed (apt-get install libbpf-tools)")
        ensure_tracefs()
        try:
            for cmd in self.config["commands"]:
                out = os.path.join(self.tmp, f"{cmd[0]}.out")
                err = os.path.join(self.tmp, f"{cmd[0]}.err")
                with open(out, "wb") as o, open(err, "wb") as e:
                    p = spawn(["stdbuf", "-oL", *cmd], stdout=o, stderr=e)
                self.procs.append((p, out, err))
            for p, out, err in self.procs:
                # Each prints its header line once its programs are attached.
                wait_for(lambda: b"\n" in read_from(out, 0)[:4096], 60, f"{p.args[2]} attaching", p)
        except Unavailable as err:
            for p, _, e in self.procs:
                stop(p, signal.SIGKILL, 5)
            raise Unavailable(f"{err}: {tail(b''.join(read_from(e) for _, _, e in self.procs).decode('utf-8', 'replace'))}")

    def before(self):
        self.cpu0 = sum(proc_cpu(p.pid) or 0.0 for p, _, _ in self.procs)
        self.offsets = [file_size(out) for _, out, _ in self.procs]

    def stop(self):
        cpu, rss, events, lost = 0.0, 0.0, 0, 0
        for (p, out, err), offset in zip(self.procs, self.offsets):
            rss += proc_status(p.pid, "VmHWM") or 0.0
            ru = stop(p, signal.SIGINT, 20)
            cpu += rusage_cpu(ru) or 0.0
            events += count_lines(out, offset)
            lost += sum(int(n) for n in LOST_RE.findall(read_from(err)))
        return {"cpu_s": round(cpu - self.cpu0, 3), "rss_mb": round(rss, 1), "events": events, "lost": lost}


AGENTS = {"none": NoAgent, "shrike": ShrikeAgent, "auditd": AuditdAgent, "bpftrace": BpftraceAgent, "tools": ToolsAgent}


# ---------------------------------------------------------------------------------------------
# Build


def build_shrike(skip):
    if skip:
        log("not building shrike (--no-build)")
    else:
        log("building shrike (cargo build --release -p shrike)")
        r = subprocess.run(["cargo", "build", "--release", "-p", "shrike"], cwd=ROOT)
        if r.returncode != 0:
            log("cargo build failed: the shrike configurations will be reported unavailable")
            return f"cargo build --release -p shrike failed (exit {r.returncode})"
    if not os.access(SHRIKE, os.X_OK):
        return f"{SHRIKE} does not exist"
    return None


def build_drivers(tmp):
    cc = shutil.which("gcc") or shutil.which("cc") or shutil.which("clang")
    if not cc:
        sys.exit("bench: no C compiler (apt-get install gcc libc6-dev)")
    out = os.path.join(tmp, "bin")
    os.makedirs(out, exist_ok=True)
    drivers = {}
    for name in DRIVERS:
        exe = os.path.join(out, name)
        src = os.path.join(BENCH, "drivers", f"{name}.c")
        r = subprocess.run([cc, "-O2", "-static", "-Wall", "-Wextra", "-o", exe, src], capture_output=True, text=True)
        if r.returncode != 0:
            # Without a static libc, a dynamic build is still fine.
            r = subprocess.run([cc, "-O2", "-Wall", "-Wextra", "-o", exe, src], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit(f"bench: compiling {src} failed:\n{r.stderr}")
        drivers[name] = exe
    log(f"compiled {len(drivers)} workload drivers with {cc} into {out}")
    return drivers


def make_project(path, files):
    """A small C project: FILES translation units with a few functions each, and a main."""
    os.makedirs(path, exist_ok=True)
    for i in range(files):
        with open(os.path.join(path, f"unit{i:02d}.c"), "w") as f:
            f.write(
                f"""#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <math.h>

struct item{i} {{ char name[32]; double weight; int count; }};

static int cmp{i}(const void *a, const void *b)
{{
	const struct item{i} *x = a, *y = b;
	return (x->weight > y->weight) - (x->weight < y->weight);
}}

static unsigned hash{i}(const char *s)
{{
	unsigned h = 2166136261u + {i};
	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}}

double unit{i}_run(int n)
{{
	struct item{i} items[64];
	for (int k = 0; k < 64; k++) {{
		snprintf(items[k].name, sizeof(items[k].name), "item-%d-%d", {i}, k);
		items[k].weight = sin((double)hash{i}(items[k].name)) * (k + 1);
		items[k].count = (int)(hash{i}(items[k].name) % 97);
	}}
	qsort(items, 64, sizeof(items[0]), cmp{i});
	double total = 0;
	for (int k = 0; k < 64 && k < n; k++)
		total += items[k].weight * items[k].count + strlen(items[k].name);
	return total;
}}
"""
            )
    with open(os.path.join(path, "main.c"), "w") as f:
        f.write("#include <stdio.h>\n")
        f.write("".join(f"double unit{i}_run(int n);\n" for i in range(files)))
        f.write("int main(void)\n{\n\tdouble t = 0;\n")
        f.write("".join(f"\tt += unit{i}_run(64);\n" for i in range(files)))
        f.write('\tprintf("%f\\n", t);\n\treturn 0;\n}\n')
    with open(os.path.join(path, "Makefile"), "w") as f:
        f.write(
            "CC = gcc\nCFLAGS = -O2 -Wall\nOBJS = $(patsubst %.c,%.o,$(wildcard *.c))\n"
            "app: $(OBJS)\n\t$(CC) -o $@ $^ -lm\n%.o: %.c\n\t$(CC) $(CFLAGS) -c -o $@ $<\n"
        )


# ---------------------------------------------------------------------------------------------
# Running one workload


class Workloads:
    def __init__(self, drivers, tmp, scale):
        self.d = drivers
        self.tmp = tmp
        self.scale = scale
        self.file = os.path.join(tmp, "open-close.target")
        with open(self.file, "w") as f:
            f.write("shrike bench\n")
        self.project = os.path.join(tmp, "project")
        self.files = max(4, next(w["n"] for w in ALL_WORKLOADS if w["name"] == "make-j2") // (10 if scale > 1 else 1))
        make_project(self.project, self.files)

    def count(self, w):
        if w["name"] == "make-j2":
            return self.files
        if w["name"] == "tar":
            return 1
        return max(1, w["n"] // self.scale)

    def run(self, w, warmup=False):
        """Runs the workload; returns its measured seconds."""
        n = max(1, self.count(w) // (10 if warmup else 1))
        name = w["name"]
        if name == "tar":
            # Into a pipe, not /dev/null: GNU tar reads nothing when the archive is /dev/null.
            t0 = time.perf_counter()
            r = subprocess.run(["sh", "-c", "tar -cf - -C /usr include | wc -c"], capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            if r.returncode != 0:
                raise RuntimeError(f"tar failed: {tail(r.stderr)}")
            return seconds
        if name == "make-j2":
            t0 = time.perf_counter()
            r = subprocess.run(["make", "-s", "-B", "-j2", "-C", self.project, "app"], capture_output=True, text=True)
            seconds = time.perf_counter() - t0
            if r.returncode != 0:
                raise RuntimeError(f"make failed: {tail(r.stderr)}")
            return seconds
        argv = {
            "open-close": [self.d["openclose"], str(n), self.file],
            "getppid": [self.d["getppid"], str(n)],
            "fork-exec": [self.d["forkexec"], str(n), "/bin/true"],
            "tcp-loopback": [self.d["tcp"], str(n)],
        }[name]
        r = subprocess.run(argv, capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError(f"{name} driver failed ({r.returncode}): {tail(r.stderr)}")
        return json.loads(r.stdout.strip().splitlines()[-1])["seconds"]


def run_one(config, workload, loads, tmp):
    """Starts the configuration, runs the workload once, stops it; one raw result."""
    agent = AGENTS[config["kind"]](config, tmp)
    load = os.getloadavg()[0]
    snap = cpu_snapshot()
    agent.start()
    try:
        time.sleep(0.2)  # let the tracer's start-up work settle
        agent.before()
        seconds = loads.run(workload)
        if hasattr(agent, "settle"):
            agent.settle()
    except BaseException:
        try:
            agent.stop()
        finally:
            raise
    metrics = agent.stop()
    others = others_cpu(snap, cpu_snapshot())["others_cpu_s"]
    return {"config": config["name"], "workload": workload["name"], "seconds": round(seconds, 5), "load1": load,
            "others_cpu_s": others, **metrics}


def cleanup_outputs(tmp):
    for name in os.listdir(tmp):
        if name.endswith((".events", ".out", ".err")):
            os.unlink(os.path.join(tmp, name))
    audit = os.path.join(tmp, "auditd", "audit.log")
    if os.path.exists(audit):
        os.unlink(audit)


def overhead(configs, loads, rounds, tmp, unavailable):
    runs = []
    # Warm-up: every workload once under the baseline, a tenth of its size (page cache, make,
    # compilers, socket and process caches).
    for w in WORKLOADS:
        loads.run(w, warmup=True)
    # Probe every configuration once, so one that cannot start here is reported, not retried.
    for c in configs:
        if c["name"] in unavailable:
            continue
        try:
            agent = AGENTS[c["kind"]](c, tmp)
            agent.start()
            agent.before()
            agent.stop()
        except Unavailable as err:
            unavailable[c["name"]] = str(err)
            log(f"{c['name']}: unavailable: {err}")
        cleanup_outputs(tmp)
    live = [c for c in configs if c["name"] not in unavailable]
    total = rounds * len(WORKLOADS) * len(live)
    done = 0
    for r in range(rounds):
        for w in WORKLOADS:
            k = r % len(live)
            order = live[k:] + live[:k]
            for c in order:
                done += 1
                try:
                    res = run_one(c, w, loads, tmp)
                except (Unavailable, RuntimeError, OSError, ValueError) as err:
                    res = {"config": c["name"], "workload": w["name"], "error": str(err)}
                res["round"] = r + 1
                runs.append(res)
                cleanup_outputs(tmp)
                extra = ""
                if "events" in res:
                    extra = f", agent cpu {res.get('cpu_s')} s, rss {res.get('rss_mb')} MB, events {res.get('events')}, lost {res.get('lost')}"
                log(f"[{done}/{total}] round {r + 1} {w['name']:<12} {c['name']:<16} "
                    + (f"{res['seconds']:.3f} s{extra}" if "seconds" in res else f"ERROR {res['error']}"))
    return runs


def summarize(runs, configs, unavailable):
    out = []
    for w in WORKLOADS:
        base = [r["seconds"] for r in runs if r["workload"] == w["name"] and r["config"] == "baseline" and "seconds" in r]
        base_med = statistics.median(base) if base else None
        for c in configs:
            row = {"workload": w["name"], "config": c["name"]}
            if c["name"] in unavailable:
                row["unavailable"] = unavailable[c["name"]]
                out.append(row)
                continue
            rs = [r for r in runs if r["workload"] == w["name"] and r["config"] == c["name"] and "seconds" in r]
            errors = [r["error"] for r in runs if r["workload"] == w["name"] and r["config"] == c["name"] and "error" in r]
            if errors:
                row["errors"] = errors
            if not rs:
                row["unavailable"] = errors[0] if errors else "no runs"
                out.append(row)
                continue
            secs = [r["seconds"] for r in rs]
            row.update(
                rounds=len(rs),
                median_s=round(statistics.median(secs), 4),
                min_s=round(min(secs), 4),
                max_s=round(max(secs), 4),
                ratio=round(statistics.median(secs) / base_med, 3) if base_med else None,
            )

            def med(key):
                vals = [r[key] for r in rs if r.get(key) is not None]
                return statistics.median(vals) if vals else None

            def mx(key):
                vals = [r[key] for r in rs if r.get(key) is not None]
                return max(vals) if vals else None

            row["others_cpu_s_median"] = med("others_cpu_s")
            if c["kind"] != "none":
                row.update(
                    agent_cpu_s=med("cpu_s"),
                    agent_rss_mb=mx("rss_mb"),
                    events=med("events"),
                    lost=med("lost"),
                    lost_max=mx("lost"),
                )
                if c["kind"] == "shrike":
                    row["lost_in_stream_max"] = mx("lost_in_stream")
                    row["lost_at_exit_max"] = mx("lost_at_exit")
                if c["kind"] == "auditd":
                    row["backlog_at_end_max"] = mx("backlog_at_end")
                    row["kauditd_cpu_s"] = med("kauditd_cpu_s")
            target = TARGETS.get(w["name"])
            if target and c["name"] == TARGET_CONFIG and row.get("ratio") is not None:
                row["target"] = target
                row["target_met"] = row["ratio"] <= target
            out.append(row)
    return out


# ---------------------------------------------------------------------------------------------
# Throughput and loss


# The ramps: (name, driver mode, operations per second per step). "fork": processes that exit at
# once; "open": open/close of one file (an event when the configuration watches it).
RAMPS = [
    ("process events", "fork", [1_000, 2_000, 5_000, 10_000, 20_000, 40_000, 80_000]),
    ("file events", "open", [10_000, 25_000, 50_000, 100_000, 200_000, 400_000, 800_000]),
]


def ramp(config, drivers, tmp, quick, spec, path):
    """Raises the operation rate step by step until shrike drops records or the machine cannot
    go faster."""
    name, mode, steps = spec
    duration = 0.5 if quick else 3.0
    if quick:
        steps = steps[:2] + [10_000_000]
    results = []
    best = None
    for rate in steps:
        agent = ShrikeAgent(config, tmp)
        agent.start()
        try:
            agent.before()
            argv = [drivers["ramp"], mode, str(rate), str(duration), "2"] + ([path] if mode == "open" else [])
            r = subprocess.run(argv, capture_output=True, text=True)
            if r.returncode != 0:
                raise RuntimeError(f"ramp driver failed: {tail(r.stderr)}")
            gen = json.loads(r.stdout.strip().splitlines()[-1])
            agent.settle()
        finally:
            m = agent.stop()
        # The ramp's own events name its binary (the workers and their children run it); the
        # rest is other activity on the machine.
        mine = sum(1 for line in lines_from(agent.out, agent.offset) if drivers["ramp"].encode() in line)
        cleanup_outputs(tmp)
        lost = max(m.get("lost") or 0, 0)
        offered = (mine + lost) / gen["seconds"]
        step = {
            "requested_ops_per_s": rate,
            "ops_per_s": round(gen["rate"], 1),
            "events_delivered": mine,
            "events_delivered_all": m["events"],
            "lost": lost,
            "lost_in_stream": m.get("lost_in_stream"),
            "lost_at_exit": m.get("lost_at_exit"),
            "offered_events_per_s": round(offered),
            "agent_cpu_s": m.get("cpu_s"),
            "agent_rss_mb": m.get("rss_mb"),
            "generator_bound": gen["rate"] < 0.85 * rate,
        }
        results.append(step)
        log(f"ramp ({name}): {rate} ops/s requested, {gen['rate']:.0f} made, {offered:.0f} events/s offered, lost {lost}")
        if lost > 0:
            break
        best = step
        if step["generator_bound"]:
            break
    first_loss = next((s for s in results if s["lost"] > 0), None)
    return {
        "name": name,
        "config": config["name"],
        "flags": config.get("flags", []),
        "source": {"fork": "2 workers creating processes that exit at once (process_fork + process_exit)",
                   "open": "2 workers opening and closing one watched file (file_open)"}[mode],
        "step_seconds": duration,
        "steps": results,
        "highest_loss_free_events_per_s": best["offered_events_per_s"] if best else 0,
        "loss_reached": first_loss is not None,
        "first_loss_events_per_s": first_loss["offered_events_per_s"] if first_loss else None,
        "generator_bound": bool(best and best["generator_bound"] and first_loss is None),
    }


# The storms: (name, condition, mode, flags added to RAMP_CONFIG's). mode "run": the agent runs
# normally; "blocked": nobody reads its stdout during the storm, then it is drained; "stopped":
# it is SIGSTOPped for the storm and SIGCONTed after it.
STORMS = [
    ("as is", "the agent runs normally", "run", []),
    ("output blocked", "nobody reads the agent's stdout during the storm (a stuck log shipper),"
     " drained after it", "blocked", []),
    ("output blocked, 1 MiB ring", "as above with the smallest ring, so the kernel must drop and count",
     "blocked", ["--ring-buffer-mb", "1"]),
    ("agent stopped", "the agent is SIGSTOPped for the storm and SIGCONTed after it (a frozen consumer)",
     "stopped", []),
]


def storm(config, drivers, tmp, quick, spec):
    """A fork storm under one of STORMS' conditions."""
    name, condition, mode, extra_flags = spec
    total, bursts, gap = (500, 5, 20) if quick else (50_000, 10, 200)
    agent = ShrikeAgent(config, tmp, extra_flags, gated=mode == "blocked")
    agent.start()
    stopped = False
    try:
        agent.before()
        if mode == "stopped":
            os.kill(agent.p.pid, signal.SIGSTOP)
            stopped = True
        t0 = time.monotonic()
        drv = subprocess.Popen([drivers["storm"], str(total), str(bursts), str(gap)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
        stdout, stderr = drv.communicate()
        if drv.returncode != 0:
            raise RuntimeError(f"storm driver failed: {tail(stderr)}")
        gen = json.loads(stdout.strip().splitlines()[-1])
        if stopped:
            os.kill(agent.p.pid, signal.SIGCONT)
            stopped = False
        agent.open_gate()
        # Let the agent drain and run its loss check, then see whether a new process still gets
        # its ancestry.
        settle = 1.0 if quick else 3.0
        time.sleep(settle)
        marker = f"shrike-bench-recovery-{os.getpid()}-{time.time_ns()}"
        p = subprocess.Popen(["/bin/true", marker])
        p.wait()
        seen = None
        follow = Follow(agent.out, agent.offset)
        deadline = time.monotonic() + 15
        while seen is None and time.monotonic() < deadline:
            for line in follow.new_lines():
                if marker.encode() in line and b'"process_exec"' in line:
                    seen = json.loads(line)
                    break
            else:
                time.sleep(0.05)
        storm_s = time.monotonic() - t0
    finally:
        if stopped:
            os.kill(agent.p.pid, signal.SIGCONT)
        m = agent.stop()
    # Count the storm's own events: every one names the storm binary as process.binary.
    by_kind = {}
    binary = gen["binary"]
    for line in lines_from(agent.out, agent.offset):
        if binary.encode() not in line:
            continue
        try:
            ev = json.loads(line)
        except ValueError:
            continue
        proc = ev.get("process") or {}
        # The children only; the storm driver's own exec and exit are not part of the storm.
        if proc.get("binary") == binary and proc.get("pid") != drv.pid:
            by_kind[ev["kind"]] = by_kind.get(ev["kind"], 0) + 1
    cleanup_outputs(tmp)
    kinds = ["process_exec", "process_exit"] + (["process_fork"] if "--emit-forks" in agent.flags else [])
    expected = gen["ops"] * len(kinds)
    delivered = sum(by_kind.get(k, 0) for k in kinds)
    lost = m.get("lost_at_exit") or 0
    anc = (seen or {}).get("ancestors") or []
    recovered = bool(seen) and bool(anc) and anc[0].get("pid") == os.getpid()
    return {
        "name": name,
        "condition": condition,
        "flags": agent.flags,
        "agent_exit_code": m.get("exit_code"),
        "agent_error": m.get("agent_error"),
        "processes": gen["ops"],
        "bursts": bursts,
        "fork_failures": gen.get("fork_failures"),
        "storm_seconds": round(gen["seconds"], 2),
        "expected_events": expected,
        "delivered_by_kind": by_kind,
        "delivered": delivered,
        "lost": lost,
        "lost_in_stream": m.get("lost_in_stream"),
        "lost_reported_by_settle": m.get("lost"),
        "events_lost_events": m.get("events_lost_events"),
        "accounted": delivered + lost,
        "accounting_closes": delivered + lost >= expected,
        "loss_reported_in_stream": (m.get("lost_in_stream") or 0) == lost,
        "agent_rss_mb": m.get("rss_mb"),
        "agent_cpu_s": m.get("cpu_s"),
        "recovery_exec_seen": seen is not None,
        "recovery_ancestor0_pid": anc[0].get("pid") if anc else None,
        "expected_ancestor0_pid": os.getpid(),
        "tree_recovered": recovered,
        "wall_s": round(storm_s, 1),
    }


# ---------------------------------------------------------------------------------------------
# Footprint


def footprint(config, drivers, tmp, quick):
    n = 1_000 if quick else 100_000
    res = {"processes": n}
    # Room for n more pids.
    with open("/proc/sys/kernel/pid_max") as f:
        pid_max = int(f.read())
    live_now = sum(1 for p in os.listdir("/proc") if p.isdigit())
    restore = None
    if pid_max < (live_now + n) * 2:
        want = max(4_194_304 if not quick else 65_536, pid_max)
        old, restore = set_sysctl("/proc/sys/kernel/pid_max", want)
        log(f"raised kernel.pid_max {old} -> {want} for {n} sleeping processes")
    res["pid_max"] = pid_max
    sleepers = None
    try:
        # 1. Start the agent, then create n processes that stay alive: what tracking costs.
        agent = ShrikeAgent(config, tmp, ["--stats-interval", "1"])
        agent.start()
        try:
            agent.before()
            rss0 = proc_status(agent.p.pid, "VmRSS")
            sleepers = spawn([drivers["sleepers"], str(n)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
            line = read_line(sleepers, 600)
            if not line or "ready" not in line:
                raise RuntimeError(f"sleepers did not start {n} processes: {line!r} {tail(sleepers.stderr.read().decode() if sleepers.poll() is not None else '')}")
            made = json.loads(line)
            settle_cpu(agent.p.pid, 60)
            time.sleep(2.5)  # one more periodic counters log (live=)
            res.update(
                spawn_seconds=made["seconds"],
                agent_rss_before_mb=rss0,
                agent_rss_mb=proc_status(agent.p.pid, "VmRSS"),
                agent_peak_rss_mb=proc_status(agent.p.pid, "VmHWM"),
                tree_live=agent.last_live(),
            )
        finally:
            m = agent.stop()
            cleanup_outputs(tmp)
        res["agent_cpu_s_tracking"] = m.get("cpu_s")
        res["lost_while_tracking"] = m.get("lost")
        res["counters_while_tracking"] = m.get("counters")
        # 2. A fresh agent that finds the n processes in /proc at start.
        agent = ShrikeAgent(config, tmp)
        agent.start(ready_timeout=600)
        try:
            agent.before()
            time.sleep(1)
            seeded = None
            for _, l in agent.lines:
                mm = re.search(r"shrike ready.*processes=(\d+)", l)
                if mm:
                    seeded = int(mm.group(1))
            res.update(
                startup_with_n_s=round(agent.startup_s, 3),
                seeded_processes=seeded,
                seeded_agent_peak_rss_mb=proc_status(agent.p.pid, "VmHWM"),
            )
        finally:
            agent.stop()
            cleanup_outputs(tmp)
    finally:
        if sleepers is not None:
            try:
                sleepers.stdin.close()
            except OSError:
                pass
            stop(sleepers, signal.SIGTERM, 120)
        if restore is not None:
            CLEANUP.done(restore)
    return res


def read_line(p, timeout):
    """One line from p's stdout within timeout, or None."""
    deadline = time.monotonic() + timeout
    buf = b""
    fd = p.stdout.fileno()
    while time.monotonic() < deadline:
        r, _, _ = select.select([fd], [], [], 0.5)
        if r:
            chunk = os.read(fd, 4096)
            if not chunk:
                break
            buf += chunk
            if b"\n" in buf:
                return buf.split(b"\n", 1)[0].decode()
        elif p.poll() is not None:
            break
    return buf.decode() or None


def settle_cpu(pid, timeout):
    """Waits until pid has used less than 10 ms of CPU in the last second."""
    deadline = time.monotonic() + timeout
    last = proc_cpu(pid)
    while time.monotonic() < deadline:
        time.sleep(1)
        now = proc_cpu(pid)
        if now is None or last is None or now - last < 0.01:
            return
        last = now


def startup(config, tmp, trials):
    """exec of `shrike run` -> "shrike ready" on stderr, and -> the first event line, for a
    process started right after ready."""
    out = []
    for _ in range(trials):
        agent = ShrikeAgent(config, tmp)
        agent.start()
        try:
            marker = f"shrike-bench-first-{os.getpid()}-{time.time_ns()}"
            t_spawn = time.monotonic()
            subprocess.Popen(["/bin/true", marker]).wait()
            seen = None
            follow = Follow(agent.out)
            deadline = time.monotonic() + 10
            while seen is None and time.monotonic() < deadline:
                if any(marker.encode() in line for line in follow.new_lines()):
                    seen = time.monotonic()
                else:
                    time.sleep(0.001)
            out.append({
                "exec_to_ready_s": round(agent.startup_s, 4),
                "exec_to_first_event_s": round(seen - agent.t_exec, 4) if seen else None,
                "spawn_to_event_s": round(seen - t_spawn, 4) if seen else None,
            })
        finally:
            agent.before()
            agent.stop()
            cleanup_outputs(tmp)
    def med(k):
        vals = [t[k] for t in out if t[k] is not None]
        return round(statistics.median(vals), 4) if vals else None
    return {"trials": out, "exec_to_ready_s": med("exec_to_ready_s"),
            "exec_to_first_event_s": med("exec_to_first_event_s"), "spawn_to_event_s": med("spawn_to_event_s")}


def idle(config, tmp, seconds):
    agent = ShrikeAgent(config, tmp)
    agent.start()
    try:
        time.sleep(2)
        agent.before()
        c0 = proc_cpu(agent.p.pid)
        time.sleep(seconds)
        c1 = proc_cpu(agent.p.pid)
        rss = proc_status(agent.p.pid, "VmRSS")
    finally:
        m = agent.stop()
        cleanup_outputs(tmp)
    cpu = c1 - c0
    return {"seconds": seconds, "cpu_s": round(cpu, 3), "cpu_percent": round(100 * cpu / seconds, 3),
            "events_during": m.get("events"), "rss_mb": rss}


# ---------------------------------------------------------------------------------------------
# Machine and report


def machine():
    cpu = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal"):
                mem = int(line.split()[1])
    distro = ""
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    distro = line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return {
        "host": socket.gethostname(),
        "kernel": platform.release(),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "ram_gib": round(mem / 1024 / 1024, 1),
        "distro": distro,
    }


def git_info():
    def g(*args):
        r = subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True)
        return r.stdout.strip()
    return {"commit": g("rev-parse", "--short", "HEAD"), "dirty": bool(g("status", "--porcelain", "--untracked-files=no"))}


def versions():
    def v(argv):
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
            return (r.stdout or r.stderr).strip().splitlines()[0]
        except (OSError, IndexError, subprocess.TimeoutExpired):
            return None
    return {
        "shrike": v([SHRIKE, "--version"]),
        "bpftrace": v(["bpftrace", "--version"]),
        "auditd": v(["dpkg-query", "-W", "-f=${Version}", "auditd"]),
        "libbpf-tools": v(["dpkg-query", "-W", "-f=${Version}", "libbpf-tools"]),
        "gcc": v(["gcc", "--version"]),
    }


def fmt(v, digits=2):
    if v is None:
        return "–"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return f"{v:,}" if isinstance(v, int) else str(v)


def fmt_int(v):
    return "–" if v is None else f"{int(round(v)):,}"


def markdown(report):
    m = report["machine"]
    phase_loads = ", ".join(
        f"{e['phase']} {e['loadavg'][0]:.2f}" + (f" (others {100 * e['others_share']:.0f} %)" if e.get("others_share") is not None else "")
        for e in report.get("load", []))
    others = report.get("others") or {}
    L = []
    L.append(f"## shrike benchmark — {report['started'][:16].replace('T', ' ')} UTC on {m['host']}")
    L.append("")
    L.append(f"Machine: {m['distro']}, kernel {m['kernel']}, {m['cpu']}, {m['cores']} cores, {m['ram_gib']} GiB RAM. "
             f"shrike {report['git']['commit']}{' (dirty tree)' if report['git']['dirty'] else ''}. "
             f"How busy the machine was: load average (1/5/15 min) {' / '.join(f'{x:.2f}' for x in report['load_before'])} before the run; "
             f"other users' processes used {others.get('others_cpu_s', 0):,.0f} CPU s during it "
             f"(**{100 * (others.get('others_share') or 0):.0f} %** of the {m['cores']} cores); "
             f"1-min load at each phase's start, with others' share of the machine during the phase: {phase_loads} "
             "(the suite's own storms and 100,000 processes raise the load average themselves). "
             f"{report['rounds']} interleaved rounds{' (QUICK: counts ÷100, not comparable)' if report['quick'] else ''}; "
             f"run took {report['duration_s'] / 60:.1f} min. Reproduce: `{report['command']}`.")
    L.append("")
    L.append("### Overhead")
    L.append("")
    L.append("Wall time of the workload: median (min–max) over the rounds; ratio = median ÷ baseline median. "
             "Agent CPU = the agent's own user+system seconds during the workload and its drain (kernel-side "
             "BPF time is charged to the workload and shows in the ratio). RSS = the agent's peak. "
             "Events = lines delivered; lost = records the tool says it dropped (median, [max]).")
    L.append("")
    L.append("| workload | configuration | wall s, median (min–max) | ratio | agent CPU s | agent peak RSS MB | events | lost | note |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for row in report["summary"]:
        if "unavailable" in row:
            L.append(f"| {row['workload']} | {row['config']} | unavailable: {row['unavailable']} | | | | | | |")
            continue
        note = []
        if "target" in row:
            note.append(f"target ≤ {row['target']:.2f}×: {'met' if row['target_met'] else '**MISSED**'}")
        if row["config"] == "auditd":
            note.append(f"auditctl -s: lost {fmt_int(row.get('lost_max'))}, backlog at end ≤ {fmt_int(row.get('backlog_at_end_max'))}; CPU incl. kauditd {fmt(row.get('kauditd_cpu_s'), 3)} s")
        if row.get("errors"):
            note.append(f"{len(row['errors'])} failed run(s): {row['errors'][0]}")
        lost = "–"
        if row.get("lost") is not None:
            lost = fmt_int(row["lost"]) + (f" [{fmt_int(row['lost_max'])}]" if row.get("lost_max") and row["lost_max"] != row["lost"] else "")
            if (row.get("lost_at_exit_max") or 0) > (row.get("lost_max") or 0):
                lost += f" (≤ {fmt_int(row['lost_at_exit_max'])} at exit)"
        wall = f"{row['median_s']:.3f} ({row['min_s']:.3f}–{row['max_s']:.3f})"
        ratio = f"{row['ratio']:.3f}×" if row.get("ratio") is not None else "–"
        if row["config"] == "baseline":
            L.append(f"| {row['workload']} | baseline | {wall} | 1× | – | – | – | – | |")
        else:
            L.append(f"| {row['workload']} | {row['config']} | {wall} | {ratio} | {fmt(row.get('agent_cpu_s'), 3)} | "
                     f"{fmt(row.get('agent_rss_mb'), 1)} | {fmt_int(row.get('events'))} | {lost} | {'; '.join(note)} |")
    L.append("")
    L.append("### Throughput and loss")
    L.append("")
    for r in report.get("ramps", []):
        if "error" in r:
            L.append(f"Ramp ({r['name']}): error: {r['error']}")
            L.append("")
            continue
        L.append(f"Ramp, {r['name']}, under `{r['config']}` (`{' '.join(r['flags']) or 'no flags'}`): {r['source']}, "
                 f"{r['step_seconds']} s per step, a fresh agent per step. Delivered = the ramp's own events (other activity on the machine "
                 "is left out); offered = (delivered + lost) ÷ step time, lost being every record the kernel dropped.")
        L.append("")
        L.append("| ops/s requested | made | events/s offered | delivered | lost | agent CPU s | agent peak RSS MB |")
        L.append("|---|---|---|---|---|---|---|")
        for s in r["steps"]:
            L.append(f"| {s['requested_ops_per_s']:,} | {s['ops_per_s']:,.0f}{' (machine-bound)' if s['generator_bound'] else ''} | "
                     f"{s['offered_events_per_s']:,} | {s['events_delivered']:,} | {s['lost']:,} | {fmt(s['agent_cpu_s'], 3)} | {fmt(s['agent_rss_mb'], 1)} |")
        L.append("")
        if r["loss_reached"]:
            L.append(f"Highest loss-free rate: **{r['highest_loss_free_events_per_s']:,} events/s**; first loss at {r['first_loss_events_per_s']:,} events/s.")
        else:
            L.append(f"Highest loss-free rate: **{r['highest_loss_free_events_per_s']:,} events/s** — no loss at any step; "
                     "the machine could not go faster, so this is a floor, not shrike's limit.")
        L.append("")
    for s in report.get("storms", []):
        if "error" in s:
            L.append(f"- Fork storm ({s['name']}): error: {s['error']}")
            continue
        kinds = ", ".join(f"{k.replace('process_', '')} {v:,}" for k, v in sorted(s["delivered_by_kind"].items()))
        if s.get("agent_exit_code"):
            L.append(f"- Fork storm, {s['name']} ({s['condition']}): **the agent stopped on an error** (exit {s['agent_exit_code']}): `{s['agent_error']}`; "
                     f"delivered {s['delivered']:,} of {s['expected_events']:,}, lost counter {fmt_int(s['lost'])}.")
            continue
        L.append(f"- Fork storm, {s['name']} ({s['condition']}; `{' '.join(s['flags']) or 'no flags'}`): {s['processes']:,} processes in {s['bursts']} bursts "
                 f"({s['storm_seconds']} s); expected {s['expected_events']:,} events, delivered {s['delivered']:,} ({kinds}), "
                 f"lost {s['lost']:,} (kernel counter at exit), {s['lost_in_stream']:,} reported in {s['events_lost_events']} `events_lost` events"
                 + ("" if s["loss_reported_in_stream"] else " (the counter grew after the last `events_lost` event: it is logged at exit, not emitted)")
                 + "; "
                 f"delivered + lost = {s['accounted']:,} {'≥' if s['accounting_closes'] else '<'} expected; agent peak RSS {fmt(s['agent_rss_mb'], 1)} MB. "
                 f"Process started after the storm: exec event {'seen' if s['recovery_exec_seen'] else 'NOT seen'}, "
                 f"ancestors[0].pid = {s['recovery_ancestor0_pid']} (expected {s['expected_ancestor0_pid']}): "
                 f"{'tree recovered' if s['tree_recovered'] else '**tree did not recover**'}.")
    L.append("")
    L.append("### Footprint")
    L.append("")
    f = report.get("footprint") or {}
    if "error" in f:
        L.append(f"- Processes tracked: error: {f['error']}")
    elif f:
        L.append(f"- {f['processes']:,} live processes (static children in pause()) started after the agent: agent RSS "
                 f"{fmt(f.get('agent_rss_before_mb'), 1)} MB before, {fmt(f.get('agent_rss_mb'), 1)} MB after, peak **{fmt(f.get('agent_peak_rss_mb'), 1)} MB** "
                 f"(tree live = {fmt_int(f.get('tree_live'))}); lost {fmt_int(f.get('lost_while_tracking'))}. "
                 f"A fresh agent with them in /proc: ready in {fmt(f.get('startup_with_n_s'), 3)} s, seeded {fmt_int(f.get('seeded_processes'))}, peak RSS {fmt(f.get('seeded_agent_peak_rss_mb'), 1)} MB.")
    s = report.get("startup") or {}
    if "error" in s:
        L.append(f"- Start-up: error: {s['error']}")
    elif s:
        L.append(f"- Start-up (median of {len(s['trials'])}): exec → `shrike ready` **{fmt(s['exec_to_ready_s'], 3)} s**; exec → first event of a process "
                 f"started right after ready {fmt(s['exec_to_first_event_s'], 3)} s (that process's own spawn → event {fmt(s['spawn_to_event_s'], 3)} s; "
                 "the reader polls the ring every 100 ms when it is quiet).")
    i = report.get("idle") or {}
    if "error" in i:
        L.append(f"- Idle CPU: error: {i['error']}")
    elif i:
        L.append(f"- Idle: {fmt(i['cpu_s'], 3)} CPU s over {i['seconds']:.0f} s (**{fmt(i['cpu_percent'], 3)} %** of one core), "
                 f"RSS {fmt(i['rss_mb'], 1)} MB; {fmt_int(i['events_during'])} events from other activity on the machine in that time.")
    L.append("")
    L.append("### Targets")
    L.append("")
    L.append("| target | figure | |")
    L.append("|---|---|---|")
    for t in report["targets"]:
        L.append(f"| {t['target']} | {t['figure']} | {t['verdict']} |")
    L.append("")
    L.append("### Configurations")
    L.append("")
    for c in report["configs"]:
        status = "" if c["available"] else f" — **unavailable: {c['reason']}**"
        L.append(f"- `{c['name']}`: {c['what']}{status}")
    L.append("")
    return "\n".join(L)


def targets(report):
    out = []
    by = {(r["workload"], r["config"]): r for r in report["summary"]}
    for w, limit in TARGETS.items():
        row = by.get((w, TARGET_CONFIG), {})
        ratio = row.get("ratio")
        out.append({
            "target": f"{w} overhead ≤ {limit:.2f}× ({TARGET_CONFIG})",
            "figure": "unavailable" if ratio is None else f"{ratio:.3f}×",
            "verdict": "–" if ratio is None else ("met" if ratio <= limit else "**missed**"),
        })
    for w in [w["name"] for w in WORKLOADS]:
        ours, peer = by.get((w, TARGET_CONFIG), {}), by.get((w, TARGET_PEER), {})
        if ours.get("ratio") is None or peer.get("ratio") is None:
            continue
        out.append({
            "target": f"{w} overhead below {TARGET_PEER}'s ({TARGET_CONFIG})",
            "figure": f"{ours['ratio']:.3f}× against {peer['ratio']:.3f}×",
            "verdict": "met" if ours["ratio"] < peer["ratio"] else "**missed**",
        })
    ramps = [r for r in report.get("ramps", []) if "highest_loss_free_events_per_s" in r]
    if ramps:
        top = max(ramps, key=lambda r: r["highest_loss_free_events_per_s"])
        best = top["highest_loss_free_events_per_s"]
        if best >= TARGET_RATE:
            verdict = "met"
        elif all(r["generator_bound"] for r in ramps):
            verdict = f"**not shown**: no loss up to {best:,} events/s, the most this machine could generate"
        else:
            lossy = [r for r in ramps if r["loss_reached"]]
            verdict = "**missed**: loss at " + ", ".join(f"{r['first_loss_events_per_s']:,} events/s ({r['name']})" for r in lossy)
        out.append({"target": f"zero loss at {TARGET_RATE:,} events/s on 2 cores",
                    "figure": f"{best:,} events/s loss-free ({top['name']})", "verdict": verdict})
    f = report.get("footprint") or {}
    if f.get("agent_peak_rss_mb") is not None:
        big = f["processes"] >= 100_000
        ok = f["agent_peak_rss_mb"] <= TARGET_RSS_MB
        out.append({"target": f"RSS ≤ {TARGET_RSS_MB} MB with 100,000 processes tracked",
                    "figure": f"{f['agent_peak_rss_mb']:.1f} MB with {f['processes']:,}",
                    "verdict": ("met" if ok else "**missed**") if big else "– (quick run)"})
    s = report.get("startup") or {}
    if s.get("exec_to_ready_s") is not None:
        ok = s["exec_to_ready_s"] <= TARGET_STARTUP_S
        out.append({"target": f"start-up ≤ {TARGET_STARTUP_S:.0f} s", "figure": f"{s['exec_to_ready_s']:.3f} s to ready, {fmt(s['exec_to_first_event_s'], 3)} s to first event",
                    "verdict": "met" if ok else "**missed**"})
    return out


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description="shrike benchmark suite (run as root)")
    ap.add_argument("--quick", action="store_true", help="counts ÷100, 2 rounds: a smoke test of a minute or two")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default 5, --quick 2)")
    ap.add_argument("--configs", help="comma-separated configurations to run (baseline is always included)")
    ap.add_argument("--workloads", help="comma-separated workloads to run (default: all)")
    ap.add_argument("--skip", default="", help="comma-separated phases to skip: overhead,ramp,storm,footprint,startup,idle")
    ap.add_argument("--no-build", action="store_true", help="do not run cargo build")
    ap.add_argument("--command", default="./dev bench", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root (BPF, auditd and tracefs need it): sudo ./dev bench")

    def interrupted(signum, frame):
        raise Interrupted(f"signal {signum}")

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    # Handle SIGINT even when started with it ignored (a background job of a script): handled
    # signals go back to default in the programs we exec, so tracers stopped with SIGINT stop.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    quick = args.quick
    rounds = args.rounds or (2 if quick else 5)
    scale = 100 if quick else 1
    skip = set(filter(None, args.skip.split(",")))
    if args.workloads:
        names = set(args.workloads.split(","))
        known = {w["name"] for w in ALL_WORKLOADS}
        if names - known:
            sys.exit(f"bench: unknown workload(s) {', '.join(sorted(names - known))}; known: {', '.join(sorted(known))}")
        WORKLOADS[:] = [w for w in ALL_WORKLOADS if w["name"] in names]
    configs = CONFIGS
    if args.configs:
        wanted = set(args.configs.split(",")) | {"baseline"}
        unknown = wanted - {c["name"] for c in CONFIGS}
        if unknown:
            sys.exit(f"bench: unknown configuration(s) {', '.join(sorted(unknown))}; known: {', '.join(c['name'] for c in CONFIGS)}")
        configs = [c for c in CONFIGS if c["name"] in wanted]

    started_wall = datetime.datetime.now(datetime.timezone.utc)
    report = {
        "suite_version": 1,
        "started": started_wall.isoformat(timespec="seconds"),
        "command": args.command + (" --quick" if quick and "--quick" not in args.command else ""),
        "quick": quick,
        "rounds": rounds,
        "machine": machine(),
        "load_before": list(os.getloadavg()),
        "git": git_info(),
    }
    rc = 0
    tmp = None
    run_snap = cpu_snapshot()
    try:
        base = "/dev/shm" if os.path.isdir("/dev/shm") else None
        tmp = tempfile.mkdtemp(prefix="shrike-bench-", dir=base)
        CLEANUP.push(f"remove {tmp}", lambda: shutil.rmtree(tmp, ignore_errors=True))
        unavailable = {}
        why = build_shrike(args.no_build)
        if why:
            for c in configs:
                if c["kind"] == "shrike":
                    unavailable[c["name"]] = why
        report["versions"] = versions()
        drivers = build_drivers(tmp)
        loads = Workloads(drivers, tmp, scale)
        report["workloads"] = [{"name": w["name"], "what": w["what"], "count": loads.count(w)} for w in WORKLOADS]
        log(f"machine: {report['machine']}; load {report['load_before']}")

        report["load"] = []
        if "overhead" not in skip:
            entry = {"phase": "overhead", "loadavg": [round(x, 2) for x in os.getloadavg()]}
            report["load"].append(entry)
            snap = cpu_snapshot()
            runs = overhead(configs, loads, rounds, tmp, unavailable)
            entry.update(others_cpu(snap, cpu_snapshot()))
            report["runs"] = runs
            report["summary"] = summarize(runs, configs, unavailable)
        else:
            report["runs"], report["summary"] = [], []
        report["configs"] = [
            {"name": c["name"], "kind": c["kind"], "what": c["what"],
             "flags": c.get("flags"), "rules": c.get("rules"), "script": c.get("script"), "commands": c.get("commands"),
             "available": c["name"] not in unavailable, "reason": unavailable.get(c["name"])}
            for c in configs
        ]
        ramp_cfg = next(c for c in CONFIGS if c["name"] == RAMP_CONFIG)
        target_cfg = next(c for c in CONFIGS if c["name"] == TARGET_CONFIG)
        shrike_ok = RAMP_CONFIG not in unavailable and TARGET_CONFIG not in unavailable

        def phase(name, fn):
            if name in skip:
                return None
            if not shrike_ok:
                return {"error": f"shrike unavailable: {unavailable.get(TARGET_CONFIG) or unavailable.get(RAMP_CONFIG)}"}
            log(f"phase: {name}")
            entry = {"phase": name, "loadavg": [round(x, 2) for x in os.getloadavg()]}
            report["load"].append(entry)
            snap = cpu_snapshot()
            try:
                return fn()
            except (Unavailable, RuntimeError, OSError, ValueError, KeyError) as err:
                log(f"{name}: error: {err}")
                return {"error": str(err)}
            finally:
                entry.update(others_cpu(snap, cpu_snapshot()))

        ramps = []
        for spec in RAMPS:
            res = phase("ramp", lambda: ramp(ramp_cfg, drivers, tmp, quick, spec, loads.file))
            if res is not None:
                res.setdefault("name", spec[0])
                ramps.append(res)
        report["ramps"] = ramps
        storms = []
        for spec in STORMS:
            s = phase("storm", lambda: storm(ramp_cfg, drivers, tmp, quick, spec))
            if s is not None:
                if "error" in s:
                    s["name"] = spec[0]
                storms.append(s)
        report["storms"] = storms
        report["startup"] = phase("startup", lambda: startup(target_cfg, tmp, 3 if quick else 7))
        report["idle"] = phase("idle", lambda: idle(target_cfg, tmp, 3 if quick else 60))
        # Last: 100,000 processes disturb the machine (and its load average) for a while.
        report["footprint"] = phase("footprint", lambda: footprint(target_cfg, drivers, tmp, quick))
    except KeyboardInterrupt:
        log("interrupted: cleaning up")
        rc = 130
    except Interrupted as err:
        log(f"{err}: cleaning up")
        rc = 143
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        CLEANUP.run_all()
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if rc:
        return rc

    report["load_after"] = list(os.getloadavg())
    report["others"] = others_cpu(run_snap, cpu_snapshot())
    report["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    report["duration_s"] = round(time.monotonic() - STARTED, 1)
    report["targets"] = targets(report)
    md = markdown(report)
    os.makedirs(RESULTS, exist_ok=True)
    stamp = started_wall.strftime("%Y%m%dT%H%M%SZ")
    name = f"{stamp}-{report['machine']['host']}{'-quick' if quick else ''}"
    with open(os.path.join(RESULTS, name + ".json"), "w") as f:
        json.dump(report, f, indent=1)
        f.write("\n")
    with open(os.path.join(RESULTS, name + ".md"), "w") as f:
        f.write(md + "\n")
    print(md)
    log(f"wrote {os.path.relpath(os.path.join(RESULTS, name), ROOT)}.{{md,json}} in {report['duration_s'] / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
