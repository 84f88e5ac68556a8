#!/usr/bin/env bash
# Runs one command inside each boot of the matrix (Debian 12's 6.1 and 6.12
# cloud kernels with BPF LSM on, by default) under qemu with TCG, and reports
# per boot
#   vm: <kernel release> lsm=<on|off|default> PASS|FAIL|TIMEOUT (<exit code>, <seconds> s)
# The guest sees the host's whole file system, read-only, at the same paths
# (virtiofs, with a tmpfs overlay on top so the guest can write), so test
# executables built on the host and the system programs they start run inside
# with their real paths. The command runs as root in the same working
# directory; its exit code decides PASS/FAIL. Exits non-zero if any kernel did
# not pass. Needs root and a prior vm/setup.sh.
#
# usage: vm/matrix.sh [--kernels "6.1 6.12"] [--lsm on|off|default] [--boots LIST]
#                     [--timeout SECS] [--boot-stall SECS] [--parallel] [--jobs N] [--quiet]
#                     -- COMMAND [ARGS...]
#   --kernels  kernel series to boot, in order (default: "6.1 6.12"; set up by
#              vm/setup.sh, which knows 5.10 6.1 6.12 trixie sid)
#   --lsm      on: boot with lsm=...,bpf (BPF LSM active, the default);
#              off: the same list without bpf; default: no lsm= at all (the
#              kernel's built-in CONFIG_LSM order)
#   --boots    the boots as SERIES:LSM pairs, in order, e.g.
#              "5.10:on 5.10:default 6.1:on 6.1:off"; replaces --kernels/--lsm
#              (default: each of --kernels with --lsm). A boot may name a job,
#              SERIES:LSM/JOB (letters, digits, _ . -): the guest gets it as
#              SHRIKE_VM_JOB, so one command can run a different share of the
#              work in each boot, and one kernel can be booted more than once
#              ("6.1:on/a 6.1:on/b"); its logs and result line carry the name
#   --timeout  hard limit per boot in seconds, qemu is killed after it (default 300)
#   --boot-stall  seconds a guest may take to start the command (default 120;
#              guests take 3-6 s): a boot that has not by then is taken as hung,
#              stopped and booted again, like a kernel that died while booting
#   --parallel boot two at a time instead of one after the other (each guest's
#              tests run one at a time, so on a 2-core host two guests take
#              about the time of one; the console lines interleave, each with
#              its [series:lsm] prefix)
#   --jobs N   with --parallel, boot N at a time instead of 2
#   --quiet    do not echo the guest's console; only the result lines
#   --append ARGS  more kernel command-line arguments, e.g. "loglevel=7" to see
#              the boot messages that "quiet" hides
# Environment passed to the guest: CI (if set), RUST_BACKTRACE=1, PATH, HOME,
# SHRIKE_VM_KERNEL=<release>, SHRIKE_VM_SERIES=<series>, SHRIKE_VM_LSM=on|off|default,
# SHRIKE_VM_LSM_LIST=<the LSM list booted: lsm= or the kernel's CONFIG_LSM>,
# SHRIKE_VM_JOB=<the boot's job name, empty without one>, and
# every SHRIKE_* variable of the caller except SHRIKE_VM_*. Logs of the last run
# of each boot: vm/cache/logs/<series>-<lsm>[-<job>].log (console) and
# <series>-<lsm>[-<job>].virtiofsd.log.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SERIES="$VM_DEFAULT_SERIES"
TIMEOUT=300
# TCG has been seen to hang a guest kernel silently before it reaches /init
# (nothing on the console after the BIOS for the whole --timeout). Guests start
# the command 3-6 s after qemu starts, so one that has not started it after
# this many seconds (--boot-stall) is taken as a boot that hung.
BOOT_STALL=120
LSM=on
BOOTS=()   # "series:lsm[/job]", from --boots or --kernels x --lsm
QUIET=0
PARALLEL=0
JOBS=2
APPEND=""
COMMAND=()
LSM_ON="lockdown,capability,landlock,yama,apparmor,bpf"
LSM_OFF="lockdown,capability,landlock,yama,apparmor"
# Modules the guest needs before it can reach the host's files; whichever of
# them a kernel builds in is skipped.
BOOT_MODULES="virtio_pci virtiofs overlay"

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit "${1:-0}"
}

parse_args() {
  while (($#)); do
    case "$1" in
      --kernels) SERIES="${2:?--kernels needs a list such as \"6.1 6.12\"}"; shift 2 ;;
      --timeout) TIMEOUT="${2:?--timeout needs seconds}"; shift 2 ;;
      --boot-stall) BOOT_STALL="${2:?--boot-stall needs seconds}"; shift 2 ;;
      --lsm) LSM="${2:?--lsm needs on or off}"; shift 2 ;;
      --boots) read -ra BOOTS <<<"${2:?--boots needs a list such as \"6.1:on 6.1:off\"}"; shift 2 ;;
      --quiet) QUIET=1; shift ;;
      --parallel) PARALLEL=1; shift ;;
      --jobs) JOBS="${2:?--jobs needs a number}"; shift 2 ;;
      --append) APPEND=" ${2:?--append needs kernel arguments}"; shift 2 ;;
      -h|--help) usage 0 ;;
      --) shift; COMMAND=("$@"); break ;;
      *) log "unknown argument: $1 (put the command after --)"; usage 2 ;;
    esac
  done
  ((${#COMMAND[@]})) || { log "no command given: vm/matrix.sh [options] -- COMMAND..."; usage 2; }
  [[ $TIMEOUT =~ ^[0-9]+$ && $TIMEOUT -gt 0 ]] || die "--timeout must be a positive number of seconds, not '$TIMEOUT'"
  [[ $BOOT_STALL =~ ^[0-9]+$ && $BOOT_STALL -gt 0 ]] || die "--boot-stall must be a positive number of seconds, not '$BOOT_STALL'"
  [[ $LSM =~ ^(on|off|default)$ ]] || die "--lsm must be on, off or default, not '$LSM'"
  [[ $JOBS =~ ^[0-9]+$ && $JOBS -gt 0 ]] || die "--jobs must be a positive number, not '$JOBS'"
  if ((${#BOOTS[@]} == 0)); then
    local s
    for s in $SERIES; do BOOTS+=("$s:$LSM"); done
  fi
  local b
  for b in "${BOOTS[@]}"; do
    [[ $b =~ ^[^:[:space:]/]+:(on|off|default)(/[A-Za-z0-9_.-]+)?$ ]] ||
      die "boot '$b' is not SERIES:LSM or SERIES:LSM/JOB with LSM on, off or default (e.g. 6.1:on, 6.1:on/net)"
  done
  # The series booted, each once, in order of first use.
  SERIES=$(printf '%s\n' "${BOOTS[@]%%:*}" | awk '!seen[$0]++' | tr '\n' ' ')
}

check_ready() {
  need_root
  # The guest mounts its own tmpfs on /tmp and /var/tmp, so nothing of the host's there is
  # visible inside: the checkout (job scripts live in its vm/cache) and the test binaries must
  # be elsewhere.
  case "$(readlink -f "$VM_CACHE")/" in
    /tmp/*|/var/tmp/*) die "the cache $VM_CACHE is under /tmp or /var/tmp, which the guest replaces with its own tmpfs: use a checkout elsewhere, or set SHRIKE_VM_CACHE" ;;
  esac
  [[ -x "$(qemu_bin)" && -f "$VM_CACHE/qemu/complete" && -x "$(busybox_bin)" ]] ||
    die "qemu/busybox are not in $VM_CACHE; run vm/setup.sh first"
  local s
  for s in $SERIES; do
    [[ -f "$(kernel_dir "$s")/complete" ]] ||
      die "kernel series $s is not in $VM_CACHE; run vm/setup.sh --kernels \"$SERIES\""
  done
  qemu_env
}

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.1f", b-a}'; }

# --- initramfs -------------------------------------------------------------

modules_dir() { printf '%s/modroot/lib/modules/%s' "$(kernel_dir "$1")" "$(kernel_release "$1")"; }

# Prints the module files (relative to the module tree) to load for $2, its
# dependencies first; skips modules built into the kernel.
module_load_order() {
  local mdir="$1" name="$2" path deps d
  grep -qE "(^|/)$name\.ko\$" "$mdir/modules.builtin" && return 0
  path=$(grep -E "(^|/)$name\.ko:" "$mdir/modules.dep" | head -n1 | cut -d: -f1)
  [[ -n $path ]] || die "module $name is neither built in nor in $mdir/modules.dep"
  deps=$(grep -E "^$path:" "$mdir/modules.dep" | cut -d: -f2)
  for d in $deps; do module_load_order "$mdir" "$(basename "$d" .ko)"; done
  printf '%s\n' "$path"
}

boot_module_list() {
  local mdir; mdir="$(modules_dir "$1")"
  local m
  for m in $BOOT_MODULES; do module_load_order "$mdir" "$m"; done | awk '!seen[$0]++'
}

# Content hash of everything that goes into the initramfs.
initramfs_hash() {
  local series="$1" mdir; mdir="$(modules_dir "$series")"
  {
    sha256sum <"$VM_DIR/guest-init.sh"
    sha256sum <"$(busybox_bin)"
    kernel_release "$series"
    boot_module_list "$series" | while read -r m; do
      printf '%s ' "$m"; sha256sum <"$mdir/$m"
    done
  } | sha256sum | cut -c1-16
}

# Builds the initramfs of a series unless one with the same content exists;
# prints its path.
ensure_initramfs() {
  local series="$1" hash out tmp mdir m
  hash=$(initramfs_hash "$series")
  out="$VM_CACHE/initramfs/$series-$hash.cpio"
  [[ -f $out ]] && { printf '%s' "$out"; return 0; }
  log "building initramfs for $series ($hash)"
  mkdir -p "$VM_CACHE/initramfs"
  rm -f "$VM_CACHE/initramfs/$series-"*.cpio
  tmp=$(mktemp -d "$VM_CACHE/initramfs/build.XXXXXX")
  mkdir -p "$tmp"/{bin,sbin,usr/bin,usr/sbin,dev,proc,sys,modules,lib/modules}
  cp "$(busybox_bin)" "$tmp/bin/busybox"
  install -m 0755 "$VM_DIR/guest-init.sh" "$tmp/init"
  mknod "$tmp/dev/console" c 5 1
  mdir="$(modules_dir "$series")"
  boot_module_list "$series" | while read -r m; do
    cp "$mdir/$m" "$tmp/modules/"
    basename "$m" >>"$tmp/modules/order"
  done
  touch "$tmp/modules/order"
  (cd "$tmp" && find . -mindepth 1 | "$(busybox_bin)" cpio -o -H newc 2>/dev/null) >"$out.tmp"
  mv "$out.tmp" "$out"
  rm -r "$tmp"
  printf '%s' "$out"
}

# --- the job the guest runs --------------------------------------------------

# The LSM list the guest kernel is booted with ($1 = series, $2 = on|off|default):
# what lsm= says, or with no lsm= the kernel's built-in CONFIG_LSM (tests
# expect BPF LSM from it). A kernel built without CONFIG_BPF_LSM ignores "bpf"
# there, so it is left out of the list.
boot_lsm_list() {
  local config list; config="$(kernel_dir "$1")/config"
  case $2 in
    on) list=$LSM_ON ;;
    off) list=$LSM_OFF ;;
    default) list=$(sed -n 's/^CONFIG_LSM="\(.*\)"$/\1/p' "$config") ;;
  esac
  grep -qx 'CONFIG_BPF_LSM=y' "$config" || list=$(tr , '\n' <<<"$list" | grep -vx bpf | paste -sd,)
  printf '%s' "$list"
}

write_job() {
  local file="$1" series="$2" lsm="$3" release="$4" jobname="$5" v
  {
    printf '#!/bin/bash\n# written by vm/matrix.sh; run by the guest'"'"'s /init in the chroot\n'
    printf 'export RUST_BACKTRACE=1 LANG=C.UTF-8 TERM=dumb USER=root LOGNAME=root\n'
    printf 'export PATH=%q HOME=%q\n' "$PATH" "${HOME:-/root}"
    [[ -n ${CI+x} ]] && printf 'export CI=%q\n' "$CI"
    # The caller's SHRIKE_* settings, but not its SHRIKE_VM_* (the runner's own: the cache,
    # the boots list), which would say nothing true about this guest.
    for v in $(compgen -e | grep '^SHRIKE_' | grep -v '^SHRIKE_VM_' || true); do
      printf 'export %s=%q\n' "$v" "${!v}"
    done
    printf 'export SHRIKE_VM_KERNEL=%q SHRIKE_VM_SERIES=%q\n' "$release" "$series"
    printf 'export SHRIKE_VM_LSM=%q SHRIKE_VM_LSM_LIST=%q\n' "$lsm" "$(boot_lsm_list "$series" "$lsm")"
    printf 'export SHRIKE_VM_JOB=%q\n' "$jobname"
    printf 'cd %q || { echo "vm-guest: cannot enter %q"; exit 125; }\n' "$PWD" "$PWD"
    printf 'exec'; printf ' %q' "${COMMAND[@]}"; printf '\n'
  } >"$file"
}

# --- virtiofsd -------------------------------------------------------------

# Serves the host's / to the guest, read-only (see vm/virtiofsd-ro.sh).
start_virtiofsd() {
  local dir="$1" logfile="$2"
  mkdir -p "$dir/ro"
  unshare --mount --propagation private -- \
    "$VM_DIR/virtiofsd-ro.sh" "$dir/ro" "$(virtiofsd_bin)" --socket-path="$dir/vfs.sock" \
      -o source="$dir/ro" -o sandbox=chroot -o cache=always -o xattr \
      >"$logfile" 2>&1 &
  VIRTIOFSD_PID=$!
  local _
  for _ in $(seq 100); do
    [[ -S "$dir/vfs.sock" ]] && return 0
    kill -0 "$VIRTIOFSD_PID" 2>/dev/null || break
    sleep 0.05
  done
  die "virtiofsd did not start; its log ($logfile): $(tail -n5 "$logfile")"
}

stop_virtiofsd() {
  local dir="$1"
  if [[ -n ${VIRTIOFSD_PID:-} ]] && kill -0 "$VIRTIOFSD_PID" 2>/dev/null; then
    kill "$VIRTIOFSD_PID" 2>/dev/null || true
  fi
  [[ -n ${VIRTIOFSD_PID:-} ]] && wait "$VIRTIOFSD_PID" 2>/dev/null || true
  VIRTIOFSD_PID=
  rm -f "$dir/vfs.sock" "$dir/vfs.sock.pid"
  rmdir "$dir/ro" "$dir" 2>/dev/null || true   # never rm -r: ro was a bind of /
}

# --- one boot --------------------------------------------------------------

kernel_cmdline() {
  local series="$1" lsm="$2" job="$3" nonce="$4" arg
  case $lsm in
    on) arg=" lsm=$LSM_ON" ;;
    off) arg=" lsm=$LSM_OFF" ;;
    default) arg="" ;;
  esac
  printf '%s' "console=ttyS0 quiet panic=-1 rdinit=/init random.trust_cpu=on$arg$APPEND" \
    " shrike.job=$job shrike.nonce=$nonce shrike.modules=$(modules_dir "$series")"
}

# Runs qemu under a hard timeout; the console goes to $log and, unless
# --quiet, to stdout prefixed with [series:lsm]. Returns qemu's (or timeout's)
# status. A boot that has not started the command BOOT_STALL seconds after qemu
# started is stopped and leaves $rundir/boot-stalled behind.
run_qemu() {
  local series="$1" label="$2" initrd="$3" cmdline="$4" sock="$5" log="$6" rundir="$7" nonce="$8"
  local qr status watcher
  qr="$(qemu_root)"
  local qemu=(
    "$(qemu_bin)" -L "$qr/usr/share/qemu" -L "$qr/usr/share/seabios"
    -accel tcg,thread=multi -cpu max -m 2G -smp 2
    -machine pc,memory-backend=mem
    -object memory-backend-memfd,id=mem,size=2G,share=on
    -nographic -nodefaults -serial stdio -no-reboot
    -chardev "socket,id=vfs,path=$sock"
    -device vhost-user-fs-pci,chardev=vfs,tag=hostroot
    -kernel "$(kernel_dir "$series")/vmlinuz" -initrd "$initrd" -append "$cmdline"
  )
  : >"$log"
  watch_boot "$log" "$nonce" "$rundir" &
  watcher=$!
  set +e
  # The shell records its pid and becomes timeout, so the watcher can stop it.
  sh -c 'echo $$ >"$0"; exec "$@"' "$rundir/qemu.pid" \
    timeout --kill-after=10 "$TIMEOUT" "${qemu[@]}" </dev/null 2>&1 |
    sed -u 's/\r$//; s/\x1b\[[0-9;?]*[A-Za-z]//g; s/\x1bc//g' | tee "$log" |
    if ((QUIET)); then cat >/dev/null; else sed -u "s|^|[$label] |"; fi
  status=${PIPESTATUS[0]}
  kill "$watcher" 2>/dev/null
  wait "$watcher" 2>/dev/null
  set -e
  rm -f "$rundir/qemu.pid"
  return "$status"
}

# Stops the qemu of one boot ($3/qemu.pid) if its console ($1) shows no start
# marker of this nonce ($2) within BOOT_STALL seconds, and says so in $3/boot-stalled.
watch_boot() {
  local log="$1" nonce="$2" rundir="$3" waited=0
  while ((waited < BOOT_STALL)); do
    sleep 1
    waited=$((waited + 1))
    grep -aqE "SHRIKE_VM_(START|RESULT):$nonce:" "$log" 2>/dev/null && return 0
  done
  [[ -s $rundir/qemu.pid ]] || return 0
  touch "$rundir/boot-stalled"
  kill -TERM "$(cat "$rundir/qemu.pid")" 2>/dev/null || true
}

# A guest kernel that dies or hangs before the command starts (neither a start
# nor a result marker, e.g. an Oops while TCG patches kernel text during boot,
# or a boot stalled past BOOT_STALL) never ran anything of ours: its boot is
# tried again, at most this many times more. A failure after the start marker,
# a set-up failure the guest reports and a --timeout reached while the command
# ran are never retried.
BOOT_RETRIES=2

# Boots one kernel with one LSM choice and runs the command ($1 = the boot,
# SERIES:LSM or SERIES:LSM/JOB); records its result line in RESULTS.
run_boot() {
  local boot="$1" series lsm jobname="" name label what
  local release nonce rundir sockdir initrd log t0 t1 status line rc verdict secs
  local attempt=0 note="" stalled
  series=${boot%%:*} lsm=${boot#*:}
  if [[ $lsm == */* ]]; then jobname=${lsm#*/} lsm=${lsm%%/*}; fi
  # name: the boot's files (logs, run directory); label: its console prefix; what: its result line.
  name="$series-$lsm${jobname:+-$jobname}" label="$series:$lsm${jobname:+/$jobname}"
  release=$(kernel_release "$series")
  what="$release lsm=$lsm${jobname:+ job=$jobname}"
  initrd=$(ensure_initramfs "$series")
  mkdir -p "$VM_CACHE/logs"
  while :; do
    nonce=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
    rundir="$VM_CACHE/runs/$name-$nonce"
    mkdir -p "$rundir"
    log="$rundir/console.log"
    write_job "$rundir/job.sh" "$series" "$lsm" "$release" "$jobname"
    sockdir=$(mktemp -d /tmp/shrike-vm.XXXXXX)
    trap 'stop_virtiofsd "$sockdir"' EXIT
    log "$release: booting (timeout $TIMEOUT s, lsm $lsm${jobname:+, job $jobname})"
    t0=$(now)
    status=0
    start_virtiofsd "$sockdir" "$rundir/virtiofsd.log"
    run_qemu "$series" "$label" "$initrd" \
      "$(kernel_cmdline "$series" "$lsm" "$rundir/job.sh" "$nonce")" \
      "$sockdir/vfs.sock" "$log" "$rundir" "$nonce" || status=$?
    t1=$(now)
    stop_virtiofsd "$sockdir"
    trap - EXIT
    secs=$(elapsed "$t0" "$t1")
    stalled=0
    [[ -e $rundir/boot-stalled ]] && stalled=1
    if ((attempt < BOOT_RETRIES)) && ((stalled || (status != 124 && status != 137))) \
      && ! grep -aqE "SHRIKE_VM_(START|RESULT):$nonce:" "$log"; then
      attempt=$((attempt + 1))
      mv "$log" "$VM_CACHE/logs/$name.failed-boot-$attempt.log"
      rm -f "$rundir/job.sh" "$rundir/virtiofsd.log" "$rundir/boot-stalled" && rmdir "$rundir"
      if ((stalled)); then
        log "$what: the kernel had not started the command after $BOOT_STALL s (hung boot);"
      else
        log "$what: the kernel died before the command started (qemu status $status);"
      fi
      log "  booting again ($attempt of $BOOT_RETRIES). Console: $VM_CACHE/logs/$name.failed-boot-$attempt.log"
      note=", after $attempt failed boot(s)"
      continue
    fi
    break
  done

  line=$(grep -ao "SHRIKE_VM_RESULT:$nonce:[0-9]*:[0-9.]*" "$log" | tail -n1 || true)
  if [[ -n $line ]]; then
    rc=$(cut -d: -f3 <<<"$line")
    [[ $rc == 0 ]] && verdict=PASS || verdict=FAIL
  elif ((stalled)); then
    verdict=FAIL rc=none
    log "$what: the kernel never started the command (every boot hung for $BOOT_STALL s)." \
      "See $VM_CACHE/logs/$name.log; --append loglevel=7 shows the boot"
  elif ((status == 124 || status == 137)); then
    verdict=TIMEOUT rc=none
  else
    verdict=FAIL rc=none
    log "$what: no result marker (qemu status $status): kernel panic or qemu failure?" \
      "See $VM_CACHE/logs/$name.log"
  fi
  report_timing "$what" "$log" "$nonce" "$line" "$secs"
  RESULTS+=("vm: $what $verdict ($rc, $secs s$note)")
  echo "${RESULTS[-1]}"
  [[ $verdict == PASS ]] || FAILED=1
  # Keep the last console and virtiofsd logs of each boot; drop the run.
  mv "$log" "$VM_CACHE/logs/$name.log"
  mv "$rundir/virtiofsd.log" "$VM_CACHE/logs/$name.virtiofsd.log" 2>/dev/null || true
  rm -f "$rundir/job.sh" "$rundir/boot-stalled" && rmdir "$rundir"
}

# Guest-side times from the markers: uptime when the command started/ended.
report_timing() {
  local release="$1" log="$2" nonce="$3" result="$4" secs="$5" start end
  start=$(grep -ao "SHRIKE_VM_START:$nonce:[0-9.]*" "$log" | tail -n1 | cut -d: -f3 || true)
  end=$(cut -d: -f4 <<<"$result")
  [[ -n $start ]] || return 0
  if [[ -n $end ]]; then
    log "$release: guest boot-to-command $start s, command $(elapsed "$start" "$end") s, wall $secs s"
  else
    log "$release: guest boot-to-command $start s, wall $secs s"
  fi
}

# Boots JOBS at a time, each boot in a subshell of its own (run_boot keeps
# per-boot state in globals), and gathers their result lines in boot order.
run_boots_in_parallel() {
  local resdir s i
  resdir=$(mktemp -d "$VM_CACHE/results.XXXXXX")
  for s in $SERIES; do
    # Built here, one after the other: the builds share $VM_CACHE/initramfs.
    ensure_initramfs "$s" >/dev/null
  done
  for i in "${!BOOTS[@]}"; do
    while (($(jobs -rp | wc -l) >= JOBS)); do wait -n || true; done
    (
      RESULTS=() FAILED=0
      run_boot "${BOOTS[i]}"
      printf '%s\n' "${RESULTS[@]}" >"$resdir/$i"
      echo "$FAILED" >"$resdir/$i.failed"
    ) &
  done
  wait
  for i in "${!BOOTS[@]}"; do
    if [[ -s $resdir/$i ]]; then
      RESULTS+=("$(cat "$resdir/$i")")
      [[ $(cat "$resdir/$i.failed") == 0 ]] || FAILED=1
    else
      RESULTS+=("vm: ${BOOTS[i]} FAIL (the runner itself failed; see the lines above)")
      FAILED=1
    fi
  done
  rm -rf "$resdir"
}

main() {
  parse_args "$@"
  check_ready
  RESULTS=() FAILED=0
  local t0 s; t0=$(now)
  if ((PARALLEL)); then
    run_boots_in_parallel
  else
    for s in "${BOOTS[@]}"; do run_boot "$s"; done
  fi
  echo "vm: summary (total $(elapsed "$t0" "$(now)") s)"
  printf '%s\n' "${RESULTS[@]}"
  exit "$FAILED"
}

main "$@"
