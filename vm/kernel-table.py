#!/usr/bin/env python3
"""Generates README.md's kernel table from a real run of `shrike doctor` in every boot of the
kernel matrix.

It sets up the kernels (vm/setup.sh), boots each (series, LSM choice) pair with vm/matrix.sh,
runs the host's release build of `shrike doctor` inside (the built-in defaults: it loads and
attaches the real objects `shrike run` would), and writes what doctor printed there — the state
and hook of every capability, the kernel features behind them, the reason of every refusal,
the exit code — as Markdown between the `<!-- kernel-table:begin -->` and
`<!-- kernel-table:end -->` markers of README.md. Nothing in the table is typed by hand: a
kernel where a program is refused shows it as the run found it.

usage: vm/kernel-table.py [--boots "5.10:on 5.10:default 6.1:on ..."] [--shrike PATH]
                          [--timeout SECS] [--readme FILE] [--from OUTPUT] [--print]
  --boots    SERIES:LSM pairs to boot (default: DEFAULT_BOOTS below)
  --shrike   the shrike binary the guests run (default target/release/shrike; build it first:
             cargo build --release -p shrike, which `./dev kernel-table` does)
  --timeout  limit per boot in seconds (default 900)
  --readme   the file whose marked section is replaced (default README.md)
  --from     render from the saved output of an earlier run (vm/cache/logs/kernel-table.out)
             instead of booting anything
  --print    print the section instead of writing it into the README
Needs root (vm/matrix.sh does). The run's full console output is kept in
vm/cache/logs/kernel-table.out.
"""

import argparse
import datetime
import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

VM_DIR = Path(__file__).resolve().parent
ROOT = VM_DIR.parent
CACHE = Path(os.environ.get("SHRIKE_VM_CACHE", VM_DIR / "cache"))
SAVED = CACHE / "logs" / "kernel-table.out"

# Each kernel with BPF LSM active, and once without it as its distribution boots it: 5.10's
# CONFIG_LSM has no bpf, so its default boot is the one without; Debian's 6.1 and later list
# bpf in CONFIG_LSM, so their default equals "on" and "off" (lsm= without bpf, as on
# distributions that build BPF LSM but leave it out) is the boot without.
DEFAULT_BOOTS = "5.10:on 5.10:default 6.1:on 6.1:off 6.12:on 6.12:off sid:on sid:off"
BEGIN = "<!-- kernel-table:begin -->"
END = "<!-- kernel-table:end -->"
EXIT_MARK = "kernel-table-doctor-exit="
STDERR_MARK = "kernel-table-doctor-stderr: "


@dataclass
class Boot:
    """What one boot of the matrix gave."""

    series: str
    lsm: str
    release: str = "?"
    verdict: str = "no result"
    wall: str = ""
    command_secs: str = ""
    stdout: list = field(default_factory=list)
    stderr: list = field(default_factory=list)
    exit_code: str = "none"

    @property
    def label(self):
        return f"{self.series}:{self.lsm}"

    def section(self, title):
        """Lines of a doctor section, from its title to the next blank line."""
        out, inside = [], False
        for line in self.stdout:
            if inside:
                if not line.strip():
                    break
                out.append(line)
            elif line.startswith(title):
                inside = True
        return out

    def feature(self, what):
        """'ok' or 'no' for a line of doctor's 'Kernel features' section."""
        for line in self.section("Kernel features"):
            m = re.match(r"\s+(ok|no)\s+(.*)", line)
            if m and m.group(2).startswith(what):
                return m.group(1)
        return "?"

    def build(self):
        """'main' or 'legacy': the build of the BPF objects doctor loaded."""
        for line in self.stdout:
            m = re.match(r"BPF objects: (\w+) build", line)
            if m:
                return m.group(1)
        return "?"

    def active_lsms(self):
        for line in self.section("Kernel features"):
            if "active LSMs:" in line:
                return line.split("active LSMs:", 1)[1].strip()
        return "?"

    def capabilities(self):
        """[(description, state, hook)] in doctor's order."""
        rows = []
        for line in self.section("Capabilities"):
            parts = re.split(r"\s{2,}", line.strip(), maxsplit=2)
            if len(parts) == 3:
                rows.append((parts[1], parts[0], parts[2]))
        return rows

    def reasons(self):
        """{description: (state, reason)} of the 'Why' section."""
        out = {}
        for line in self.section("Why"):
            m = re.match(r"\s+- (.*?) \((\w+)\): (.*)", line)
            if m:
                out[m.group(1)] = (m.group(2), m.group(3))
        return out

    def refused_programs(self):
        """[(program, verifier line)] from libbpf's load logs on doctor's stderr: the first
        line of each log that says what is wrong (after the last instruction the verifier
        walked, or the log's first line when it stopped before any)."""
        out, prog, log, inside = [], None, [], False
        for line in self.stderr:
            m = re.search(r"prog '(\w+)': BPF program load failed: (\S+)", line)
            if m:
                prog, log = m.group(1), [m.group(2)]
                continue
            if "-- BEGIN PROG LOAD LOG --" in line:
                inside, log = True, log[:1]
                continue
            if "-- END PROG LOAD LOG --" in line:
                inside = False
                if prog:
                    out.append((prog, verifier_error(log[1:]) or log[0]))
                prog = None
                continue
            if inside:
                log.append(line)
        return out

    def failure(self):
        """Why doctor reported no capability table at all, or None."""
        text = "\n".join(self.stdout)
        for marker in ("The sensors did not load:", "The policy does not compile:"):
            if marker in text:
                return marker + " " + text.split(marker, 1)[1].strip().splitlines()[0]
        if "shrike cannot run here" in text:
            noes = [l.strip() for l in self.section("Required") if l.strip().startswith("no")]
            return "shrike cannot run here: " + "; ".join(noes)
        if not self.stdout:
            return f"doctor printed nothing (boot {self.verdict})"
        return None


def run(cmd, **kw):
    print("kernel-table: " + " ".join(cmd), file=sys.stderr)
    return subprocess.run(cmd, check=False, **kw)


def run_matrix(args):
    """Sets up the kernels, runs doctor in every boot, returns the matrix's output."""
    shrike = Path(args.shrike).resolve()
    if not os.access(shrike, os.X_OK):
        sys.exit(f"kernel-table: no shrike binary at {shrike}: build it (cargo build --release -p shrike)")
    series = " ".join(dict.fromkeys(b.split(":")[0] for b in args.boots.split()))
    t0 = time.monotonic()
    if run([str(VM_DIR / "setup.sh"), "--kernels", series]).returncode != 0:
        sys.exit("kernel-table: vm/setup.sh failed")
    setup_secs = time.monotonic() - t0
    job = (
        f"cd {sh_quote(str(ROOT))} && {sh_quote(str(shrike))} doctor 2>/tmp/doctor.err; "
        f"rc=$?; sed 's/^/{STDERR_MARK}/' /tmp/doctor.err; echo {EXIT_MARK}$rc"
    )
    cmd = [str(VM_DIR / "matrix.sh"), "--boots", args.boots, "--parallel",
           "--timeout", str(args.timeout), "--", "sh", "-c", job]
    t0 = time.monotonic()
    lines = []
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          errors="replace") as proc:
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("vm: "):
                sys.stderr.write(line)
        proc.wait()
    matrix_secs = time.monotonic() - t0
    lines.append(f"kernel-table: setup {setup_secs:.0f} s, matrix {matrix_secs:.0f} s\n")
    lines.append(f"kernel-table: shrike from {source_revision()}, "
                 f"run on {datetime.date.today().isoformat()}\n")
    out = "".join(lines)
    SAVED.parent.mkdir(parents=True, exist_ok=True)
    SAVED.write_text(out)
    return out


def source_revision():
    """The commit the shrike binary was built from, "+changes" when the sources that go into
    it (crates/, bpf/, Cargo.lock) differ from it."""
    git = ["git", "-C", str(ROOT)]
    rev = subprocess.run(git + ["rev-parse", "--short", "HEAD"], capture_output=True,
                         text=True, check=False).stdout.strip() or "unknown"
    dirty = subprocess.run(git + ["status", "--porcelain", "--", "crates", "bpf", "Cargo.lock"],
                           capture_output=True, text=True, check=False).stdout.strip()
    return rev + ("+changes" if dirty else "")


def sh_quote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def parse(output, boots):
    """One Boot per SERIES:LSM pair, from the matrix's prefixed console lines and its
    result and timing lines."""
    result = []
    for pair in boots.split():
        series, lsm = pair.split(":")
        b = Boot(series, lsm)
        prefix = f"[{pair}] "
        inside = False
        for line in output.splitlines():
            if line.startswith(prefix):
                text = line[len(prefix):]
                if text.startswith("shrike doctor: kernel "):
                    inside = True
                    b.stdout = []
                    b.release = text.split("kernel ", 1)[1].strip()
                if text.startswith(STDERR_MARK):
                    b.stderr.append(text[len(STDERR_MARK):])
                elif text.startswith(EXIT_MARK):
                    b.exit_code = text[len(EXIT_MARK):].strip()
                    inside = False
                elif inside:
                    b.stdout.append(text)
            m = re.match(rf"vm: (\S+) lsm={lsm} (PASS|FAIL|TIMEOUT) \((\S+), ([\d.]+) s\)", line)
            if m and release_matches(m.group(1), series):
                b.verdict, b.wall = m.group(2), m.group(4)
                if b.release == "?":
                    b.release = m.group(1)
            m = re.match(rf"vm: (\S+) lsm={lsm}: guest boot-to-command [\d.]+ s, command ([\d.]+) s", line)
            if m and release_matches(m.group(1), series):
                b.command_secs = m.group(2)
        result.append(b)
    return result


def release_matches(release, series):
    """Whether a kernel release is the one set up for a series (a series appears once per
    cache, so its release file decides)."""
    f = CACHE / "kernels" / series / "release"
    return f.exists() and f.read_text().strip() == release


def package_of(series):
    f = CACHE / "kernels" / series / "packages"
    if not f.exists():
        return "?"
    first = f.read_text().split("\n")[0].split()
    return f"`{first[0]}` {first[1]}" if len(first) >= 2 else "?"


def lsm_words(lsm):
    return {"on": "BPF LSM on", "off": "BPF LSM off", "default": "default"}[lsm]


def verifier_error(log):
    """The line of a verifier log that names the problem."""
    last_insn = max((i for i, l in enumerate(log) if re.match(r"\d+: ", l)), default=-1)
    for line in log[last_insn + 1:]:
        if line.strip() and not line.startswith(("; ", "processed ", "verification time")):
            return line.strip()
    return None


def first_verifier_line(reason, refusals_only=False):
    """The verifier's words of each refused program in a doctor reason (`<prog> refused: ...;
    verifier: a | b | c`), cut to the error line; the rest of the reason too unless
    `refusals_only`."""
    out = []
    for part in re.split(r"; (?=\w+ refused: )", reason):
        m = re.match(r"(\w+) refused: (.*?)(?:; verifier: (.*))?$", part)
        if not m:
            if not refusals_only:
                out.append(part)
            continue
        prog, err, verifier = m.groups()
        if verifier:
            err = verifier.split(" | ")[-1].strip()
        out.append(f"`{prog}`: {err}")
    return "; ".join(out)


def render(boots, output):
    cols = [f"{b.series} {b.lsm}" for b in boots]
    lines = [
        BEGIN,
        "<!-- generated by vm/kernel-table.py (./dev kernel-table) from a matrix run; "
        "do not edit by hand -->",
        "",
    ]
    m = re.search(r"kernel-table: shrike from (\S+), run on (\S+)", output)
    rev, day = m.groups() if m else ("unknown", "unknown")
    lines.append(f"`shrike doctor` (release build of {rev}, built-in defaults) "
                 f"inside each boot, {day}. `on`: booted with `lsm=lockdown,capability,landlock,"
                 "yama,apparmor,bpf` (BPF LSM active); `off`: the same without `bpf`; "
                 "`default`: no `lsm=`, the kernel's own `CONFIG_LSM` (5.10's has no `bpf`; "
                 "Debian's 6.1 and later have it, so there `off` is the boot without BPF LSM).")
    lines.append("")
    lines.append("| | " + " | ".join(cols) + " |")
    lines.append("|---" * (len(cols) + 1) + "|")

    def row(name, cells):
        lines.append(f"| {name} | " + " | ".join(cells) + " |")

    row("kernel", [f"`{b.release}`" for b in boots])
    row("BPF objects (build)", [b.build() for b in boots])
    row("BPF LSM called", [b.feature("BPF LSM programs are called") for b in boots])
    row("fentry/fexit", [b.feature("fentry/fexit") for b in boots])
    row("kprobes", [b.feature("kprobes") for b in boots])
    caps = []
    for b in boots:
        for desc, _, _ in b.capabilities():
            if desc not in caps:
                caps.append(desc)
    for desc in caps:
        cells = []
        for b in boots:
            state = next((s for d, s, _ in b.capabilities() if d == desc), None)
            if state is None:
                cells.append("—")
            elif state in ("degraded", "unavailable"):
                cells.append(f"**{state}**")
            else:
                cells.append(state)
        row(desc, cells)
    row("doctor exit", [b.exit_code for b in boots])
    lines.append("")

    lines.append("Hooks each capability used (as doctor printed them; `all` = every boot "
                 "where doctor reported capabilities):")
    lines.append("")
    lines.append("| capability | hook | boots |")
    lines.append("|---|---|---|")
    reporting = [b.label for b in boots if b.capabilities()]
    for desc in caps:
        by_hook = {}
        for b in boots:
            for d, state, hook in b.capabilities():
                if d == desc and state not in ("degraded", "unavailable", "off"):
                    by_hook.setdefault(hook, []).append(b.label)
        for hook, where in by_hook.items():
            where = "all" if where == reporting else ", ".join(where)
            lines.append(f"| {desc} | {hook} | {where} |")
    lines.append("")

    notes = []
    for b, col in zip(boots, cols):
        fail = b.failure()
        found = []
        if fail:
            found.append(f"does not start — {fail}")
        else:
            for desc, (state, reason) in b.reasons().items():
                if state in ("degraded", "unavailable"):
                    found.append(f"{desc} {state}: {first_verifier_line(reason)}")
                elif " refused: " in reason:
                    # A fallback because some programs were refused (an LSM hook whose calls
                    # are then seen at fexit): which, in the verifier's words.
                    words = first_verifier_line(reason, refusals_only=True)
                    found.append(f"{desc} {state}: {words}")
        refused = "; ".join(f"`{p}`: {err}" for p, err in dict(b.refused_programs()).items())
        if found or refused:
            text = "; ".join(found)
            if refused:
                text += ("; " if text else "") + f"verifier: {refused}"
            notes.append(f"- **{col}**: {text}")
    if notes:
        lines.append("What was refused (doctor's reason, and the verifier's words for each "
                     "refused program from its load log):")
        lines.append("")
        lines.extend(notes)
    else:
        lines.append("No program was refused on any of these boots.")
    lines.append("")

    kernels = dict.fromkeys(b.series for b in boots)
    lines.append("Kernels (the newest of each series in Debian's archive when the run was made): "
                 + "; ".join(f"{s}: {package_of(s)}" for s in kernels) + ".")
    walls = [float(b.wall) for b in boots if b.wall]
    doctors = [float(b.command_secs) for b in boots if b.command_secs]
    m = re.search(r"kernel-table: setup (\d+) s, matrix (\d+) s", output)
    if walls:
        timing = (f"Measured in this run under TCG: one boot with doctor "
                  f"{min(walls):.0f}–{max(walls):.0f} s wall")
        if doctors:
            timing += f" (doctor itself {min(doctors):.0f}–{max(doctors):.0f} s)"
        if m:
            timing += (f"; the whole run {m.group(2)} s for {len(boots)} boots two at a time, "
                       f"after {m.group(1)} s of `vm/setup.sh`")
        lines.append(timing + ".")
    lines.append(END)
    return "\n".join(lines) + "\n"


def write_readme(path, section):
    text = path.read_text()
    if BEGIN not in text or END not in text:
        sys.exit(f"kernel-table: {path} has no {BEGIN} ... {END} section to fill")
    before = text.split(BEGIN, 1)[0]
    after = text.split(END, 1)[1]
    path.write_text(before + section.rstrip("\n") + after)
    print(f"kernel-table: wrote the table into {path}", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--boots", default=DEFAULT_BOOTS)
    p.add_argument("--shrike", default=str(ROOT / "target" / "release" / "shrike"))
    p.add_argument("--timeout", type=int, default=900)
    p.add_argument("--readme", default=str(ROOT / "README.md"))
    p.add_argument("--from", dest="from_file")
    p.add_argument("--print", action="store_true")
    args = p.parse_args()
    for pair in args.boots.split():
        if not re.fullmatch(r"[^:\s/]+:(on|off|default)", pair):
            sys.exit(f"kernel-table: boot '{pair}' is not SERIES:LSM (e.g. 6.1:on)")
    output = Path(args.from_file).read_text() if args.from_file else run_matrix(args)
    boots = parse(output, args.boots)
    section = render(boots, output)
    if args.print:
        sys.stdout.write(section)
    else:
        write_readme(Path(args.readme), section)
    missing = [b.label for b in boots if b.exit_code == "none"]
    if missing:
        print(f"kernel-table: no doctor result from {', '.join(missing)} "
              f"(see {SAVED} and vm/cache/logs/)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
