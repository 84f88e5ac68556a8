#!/usr/bin/env python3
"""The soak benchmark: one agent for a long time at a steady event rate, with the policy
reloaded every minute and stdout switching between blocked and draining.

    ./dev soak [--minutes 60] [--rate 50000] [--reload-every 60] [--switch-every 20]

What runs: `target/release/shrike run --watch DIR --config CFG --policy POLICY` (the default pack
too), its outputs stdout (a pipe this script reads, or stops reading, in turns of
--switch-every seconds; 0 keeps it draining) and a webhook to a loopback HTTP server in this
script that always reads. The ramp driver opens and closes one file under DIR at --rate operations per second from
two processes: one `file_open` event each. Every --reload-every seconds the policy file is
replaced by an atomic rename (it alternates between two versions) and the agent gets SIGHUP.

What it reports, sampled every 10 s: the agent's RSS, open fds, threads and CPU; at the end the
RSS growth (the mean of the last tenth against the mean of the second tenth, after warm-up), the
means of each tenth of RSS and of the heap in use (from the agent's heap-trim log: live data
growing, or only what the allocator keeps; each trim's time, in-use figure and stdout's phase
are in the JSON as `trim_series`, and each sample says whether stdout was blocked), and
the accounting of the driver's events: on each output, delivered + reported lost must cover
every operation the driver made. Written to `bench/results/<UTC time>-soak.{json,md}`.
The numbers are reported, never gated: see the README's Performance section.
"""

import argparse
import datetime
import http.server
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import bench  # noqa: E402  (the suite's build, process and machine helpers)

RESULTS = os.path.join(bench.BENCH, "results")
SAMPLE_S = 10
EXIT_WAIT_S = 180

# The two policies the reloads alternate between: the same rule, its description changed, so
# every reload compiles, re-arms and swaps for real without changing what is watched.
POLICY = """\
- rule: Soak marker opened
  id: SOAK-001
  description: {description}
  severity: low
  condition: kind = file_open and file.path = {path}/never-opened
  action: alert
"""


class Counter:
    """Counts, in one output's JSON lines, the driver's events and the losses the
    `events_lost` reports put on this output."""

    def __init__(self, output, marker):
        self.output = output
        self.marker = marker.encode()  # occurs once in each of the driver's events
        self.lock = threading.Lock()
        self.events = 0
        self.lost = 0
        self.lines = 0

    def feed_body(self, body):
        """A webhook body (one JSON array): the driver's events counted in the raw bytes, the
        array parsed only when it holds an `events_lost` report."""
        mine = body.count(self.marker)
        lost = 0
        if b'"events_lost"' in body:
            try:
                events = json.loads(body)
            except ValueError:
                events = []
            lost = sum(lost_on(self.output, e.get("lost") or {})
                       for e in events if e.get("kind") == "events_lost")
        with self.lock:
            self.events += mine
            self.lost += lost

    def feed_lines(self, lines):
        mine = lost = 0
        for line in lines:
            if b'"events_lost"' in line:
                try:
                    ev = json.loads(line)
                except ValueError:
                    continue
                if ev.get("kind") == "events_lost":
                    lost += lost_on(self.output, ev.get("lost") or {})
            else:
                mine += line.count(self.marker)
        with self.lock:
            self.events += mine
            self.lost += lost
            self.lines += len(lines)

    def snapshot(self):
        with self.lock:
            return {"driver_events": self.events, "lost_reported": self.lost, "lines": self.lines}


def lost_on(output, lost):
    """What an `events_lost` report says `output` missed: the kernel's drops and the agent's
    other losses reach no output; `pipeline_full` is what a held stdout dropped; `outputs`
    names each other output's drops."""
    n = lost.get("ringbuf_full", 0) + lost.get("other", 0)
    if output == "stdout":
        n += lost.get("pipeline_full", 0)
    return n + (lost.get("outputs") or {}).get(output, 0)


class Webhook:
    """A loopback HTTP server taking the webhook output's JSON arrays and counting them."""

    def __init__(self, counter):
        counter_ref = counter

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                counter_ref.feed_body(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()


class Stdout:
    """Reads the agent's stdout in turns: `switch` seconds draining, `switch` seconds not
    reading at all (the pipe fills and the agent must drop, count and report)."""

    def __init__(self, pipe, counter, switch):
        self.pipe, self.counter, self.switch = pipe, counter, switch
        self.blocked_s = 0.0
        # Monotonic times at which a blocked turn began and ended, for the report's phases.
        self.blocked_turns = []
        self.blocked = False
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        fd = self.pipe.fileno()
        os.set_blocking(fd, False)
        rest = b""
        draining, turn_start = True, time.monotonic()
        while True:
            now = time.monotonic()
            if not self.stop.is_set() and self.switch > 0 and now - turn_start >= self.switch:
                if not draining:
                    self.blocked_s += now - turn_start
                    self.blocked_turns.append((turn_start, now))
                draining, turn_start = not draining, now
            self.blocked = not draining
            if not draining and not self.stop.is_set():
                time.sleep(0.05)
                continue
            try:
                chunk = os.read(fd, 1 << 20)
            except BlockingIOError:
                time.sleep(0.01)
                continue
            if not chunk:
                break
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            self.counter.feed_lines(lines)


def proc_sample(pid):
    """RSS (MiB), threads, open fds and CPU seconds of a live process."""
    status = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            status[key] = value.strip()
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return {
        "rss_mb": round(int(status["VmRSS"].split()[0]) / 1024, 2),
        "threads": int(status["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
        "cpu_s": (int(fields[11]) + int(fields[12])) / ticks,
    }


def settle(counters, quiet=3.0, limit=120.0):
    """Waits until no output has received anything for `quiet` seconds (the queues drained
    and the last loss reports written), at most `limit` seconds."""
    start = time.monotonic()
    last, still = None, time.monotonic()
    while time.monotonic() - start < limit:
        now = [c.snapshot() for c in counters]
        if now != last:
            last, still = now, time.monotonic()
        elif time.monotonic() - still >= quiet:
            return
        time.sleep(0.2)


def write_policy(path, watched, n):
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(POLICY.format(description=f"reload {n}, a marker nobody opens", path=watched))
    os.rename(tmp, path)


def tenths(values):
    """The mean of each tenth of `values` (None when there are fewer than ten)."""
    n = len(values)
    if n < 10:
        return None
    size = n // 10
    return [round(sum(values[i * size:(i + 1) * size]) / size, 2) for i in range(10)]


def growth(values):
    """Growth: the mean of the last tenth against the mean of the second tenth, in percent (the
    first tenth is warm-up: the process tree and caches filling)."""
    t = tenths(values)
    if t is None:
        return None
    return round(100.0 * (t[-1] - t[1]) / t[1], 2)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=60.0)
    ap.add_argument("--rate", type=int, default=50_000, help="driver operations (events) per second")
    ap.add_argument("--reload-every", type=float, default=60.0, help="seconds between policy reloads")
    ap.add_argument("--switch-every", type=float, default=20.0,
                    help="seconds stdout is read, then not read (0: always read)")
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("soak: run as root (the agent loads BPF programs)")
    seconds = args.minutes * 60
    why = bench.build_shrike(args.no_build)
    if why:
        sys.exit(f"soak: {why}")
    tmp = tempfile.mkdtemp(prefix="shrike-soak-", dir="/dev/shm" if os.path.isdir("/dev/shm") else None)
    try:
        return soak(args, seconds, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def soak(args, seconds, tmp):
    drivers = bench.build_drivers(tmp)
    watched = os.path.join(tmp, "watched")
    os.makedirs(watched)
    target = os.path.join(watched, "file")
    open(target, "w").close()
    policy = os.path.join(tmp, "policy.yaml")
    write_policy(policy, watched, 0)
    # Once per driver event: the opened file's path (the agent writes compact JSON).
    marker = f'"path":"{target}"'
    stdout_count = Counter("stdout", marker)
    hook_count = Counter("webhook", marker)
    hook = Webhook(hook_count)
    config = os.path.join(tmp, "shrike.yaml")
    with open(config, "w") as f:
        f.write(
            "outputs:\n  - type: stdout\n"
            f"  - type: webhook\n    url: http://127.0.0.1:{hook.port}/events\n"
            "    batch: {max_events: 2000, max_delay_ms: 200}\n"
        )
    argv = [bench.SHRIKE, "run", "--watch", watched + "/", "--config", config, "--policy", policy,
            # Each heap trim's time and what it freed, for the report.
            "--log-level", "info,shrike::agent::heap=debug"]
    bench.log(f"soak: {' '.join(argv)} for {args.minutes:g} min at {args.rate} events/s")
    agent = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stderr_lines, trim_times = [], []

    def read_stderr():
        for raw in agent.stderr:
            stderr_lines.append(raw.decode("utf-8", "replace").rstrip())
            if "heap trimmed" in stderr_lines[-1]:
                trim_times.append(time.monotonic())

    threading.Thread(target=read_stderr, daemon=True).start()
    deadline = time.monotonic() + 120
    while not any("shrike ready" in l for l in stderr_lines):
        if agent.poll() is not None or time.monotonic() > deadline:
            agent.kill()
            sys.exit("soak: the agent did not start:\n" + "\n".join(stderr_lines[-10:]))
        time.sleep(0.1)
    out = Stdout(agent.stdout, stdout_count, args.switch_every)
    driver = subprocess.Popen([drivers["ramp"], "open", str(args.rate), str(int(seconds)), "2", target],
                              stdout=subprocess.PIPE, text=True)
    start = time.monotonic()
    samples, reloads, next_reload, next_sample = [], 0, start + args.reload_every, start
    while driver.poll() is None:
        now = time.monotonic()
        if now >= next_sample:
            s = proc_sample(agent.pid)
            s["t"] = round(now - start, 1)
            s["stdout"] = stdout_count.snapshot()
            s["webhook"] = hook_count.snapshot()
            s["stdout_blocked"] = out.blocked
            samples.append(s)
            next_sample += SAMPLE_S
            if len(samples) % 6 == 1:
                bench.log(f"soak {s['t']:.0f}s: rss {s['rss_mb']} MiB, fds {s['fds']}, threads {s['threads']}, "
                          f"cpu {s['cpu_s']:.0f}s, webhook {s['webhook']['driver_events']} events, reloads {reloads}")
        if now >= next_reload:
            reloads += 1
            write_policy(policy, watched, reloads)
            agent.send_signal(signal.SIGHUP)
            next_reload += args.reload_every
        time.sleep(0.2)
    gen = json.loads(driver.stdout.read().strip().splitlines()[-1])
    out.stop.set()  # drain stdout from now on
    settle([stdout_count, hook_count])
    final = proc_sample(agent.pid)
    agent.send_signal(signal.SIGTERM)
    stop_sent = time.monotonic()
    # Longer than the agent's own bound (it exits within two minutes of a stop request, and
    # says which step was stuck if it had to cut one short).
    try:
        rc = agent.wait(EXIT_WAIT_S)
        exit_text = f"code {rc}, {time.monotonic() - stop_sent:.1f} s after SIGTERM"
    except subprocess.TimeoutExpired:
        agent.kill()
        rc = None
        exit_text = f"killed {EXIT_WAIT_S} s after SIGTERM"
    out.thread.join(30)
    hook.close()
    reloaded = sum(1 for l in stderr_lines if re.search(r"policy reloaded|reload", l, re.I))
    report = {
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "git": bench.git_info(),
        "machine": bench.machine(),
        "minutes": args.minutes,
        "rate_requested": args.rate,
        "driver": gen,
        "reloads_sent": reloads,
        "reload_log_lines": reloaded,
        "stdout_blocked_s": round(out.blocked_s, 1),
        "samples": samples,
        "final": final,
        "rss_growth_pct": growth([x["rss_mb"] for x in samples]),
        "rss_tenths_mb": tenths([x["rss_mb"] for x in samples]),
        "stdout": stdout_count.snapshot(),
        "webhook": hook_count.snapshot(),
        "exit": exit_text,
        "heap_trims": trims(stderr_lines),
        # Each trim's time into the run, heap in use (MiB) and whether stdout was blocked then.
        "trim_series": trim_series(stderr_lines, trim_times, start, out.blocked_turns),
        "stderr_tail": [l for l in stderr_lines if "heap trimmed" not in l][-15:],
    }
    for name in ("stdout", "webhook"):
        c = report[name]
        c["missing"] = max(gen["ops"] - c["driver_events"], 0)
        c["covered"] = c["missing"] <= c["lost_reported"]
    write(report)
    ok = rc == 0 and report["stdout"]["covered"] and report["webhook"]["covered"]
    return 0 if ok else 1


def trims(stderr_lines):
    """The agent's heap trims (debug lines): how many, their time, what they freed."""
    found = [(int(m.group(1)), int(m.group(2)), int(m.group(3))) for l in stderr_lines
             if (m := re.search(r"heap trimmed micros=(\d+) freed_kib=(\d+) in_use_kib=(\d+)", l))]
    if not found:
        return None
    micros = sorted(m for m, _, _ in found)
    in_use = [round(k / 1024, 2) for _, _, k in found]
    return {"count": len(found), "micros_median": micros[len(micros) // 2], "micros_max": micros[-1],
            "freed_mib_total": round(sum(k for _, k, _ in found) / 1024, 1),
            "in_use_tenths_mb": tenths(in_use), "in_use_growth_pct": growth(in_use)}


def trim_series(stderr_lines, trim_times, start, blocked_turns):
    in_use = [int(m.group(1)) / 1024 for l in stderr_lines if (m := re.search(r"heap trimmed .*in_use_kib=(\d+)", l))]
    return [[round(t - start, 1), round(k, 2), any(a <= t < b for a, b in blocked_turns)]
            for t, k in zip(trim_times, in_use)]


def write(report):
    os.makedirs(RESULTS, exist_ok=True)
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    base = os.path.join(RESULTS, f"{stamp}-soak")
    with open(base + ".json", "w") as f:
        json.dump(report, f, indent=1)
    s, g = report["samples"], report["driver"]
    cpu = report["final"]["cpu_s"]
    lines = [
        f"# shrike soak, {report['started']} (shrike {report['git'].get('commit', '?')})",
        "",
        f"{report['minutes']:g} min; driver: {g['ops']:,} file opens in {g['seconds']:.0f} s "
        f"({g['rate']:,.0f}/s of {report['rate_requested']:,} requested); {report['reloads_sent']} policy "
        f"reloads (SIGHUP after an atomic rename); stdout not read for {report['stdout_blocked_s']:.0f} s in turns. "
        f"Machine: {report['machine']}.",
        "",
        "| | value |",
        "|---|---|",
        f"| RSS first sample → last | {s[0]['rss_mb']} → {report['final']['rss_mb']} MiB |" if s else "| RSS | no samples |",
        f"| RSS growth (last tenth vs second tenth) | {report['rss_growth_pct']} % |",
        f"| open fds min–max | {min(x['fds'] for x in s)}–{max(x['fds'] for x in s)} |" if s else "| fds | — |",
        f"| threads min–max | {min(x['threads'] for x in s)}–{max(x['threads'] for x in s)} |" if s else "| threads | — |",
        f"| agent CPU | {cpu:.0f} s ({100 * cpu / max(g['seconds'], 1):.0f} % of one core) |",
        f"| RSS min–max after the first tenth | {min(x['rss_mb'] for x in s[len(s) // 10:])}–{max(x['rss_mb'] for x in s[len(s) // 10:])} MiB |" if s else "| RSS | — |",
        f"| RSS by tenth of the run (means) | {' · '.join(map(str, report['rss_tenths_mb'] or []))} MiB |",
        f"| heap trims (every 10 s) | {t['count']}, median {t['micros_median']} µs, max {t['micros_max']} µs, {t['freed_mib_total']} MiB returned |"
        if (t := report.get("heap_trims")) else "| heap trims | none logged |",
        f"| heap in use by tenth (means, at each trim) | {' · '.join(map(str, t['in_use_tenths_mb'] or []))} MiB; growth {t['in_use_growth_pct']} % |"
        if (t := report.get("heap_trims")) else "| heap in use | not logged |",
        f"| exit | {report['exit']} |",
        "",
        "| output | driver events delivered | missing | reported lost | every event delivered or counted |",
        "|---|---|---|---|---|",
    ]
    for name in ("stdout", "webhook"):
        c = report[name]
        lines.append(f"| {name} | {c['driver_events']:,} | {c['missing']:,} | {c['lost_reported']:,} | "
                     f"{'yes' if c['covered'] else 'NO'} |")
    text = "\n".join(lines) + "\n"
    with open(base + ".md", "w") as f:
        f.write(text)
    print(text)
    bench.log(f"soak: wrote {base}.md and .json")


if __name__ == "__main__":
    sys.exit(main())
