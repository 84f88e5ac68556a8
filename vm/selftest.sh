#!/usr/bin/env bash
# Proves the kernel-matrix runner itself works on this machine (it does not
# test shrike): runs vm/setup.sh, then on every kernel of the matrix checks
# that a command passes and sees the host's real programs and BPF LSM, that a
# failing command is reported FAIL, that a kernel dying before the command is
# booted again (twice) and then reported FAIL, and so is one whose boot hangs
# (past --boot-stall), that a hanging command is reported TIMEOUT
# (skip with --no-timeout: it costs 2 x 60 s), and that a BPF LSM program and
# an fentry program load, attach and act in the guest (vm/selftest.bpf.c,
# compiled here with clang), and that with --lsm off an LSM program attaches
# but stays inert. Ends with "selftest: N passed, N failed".
#
# usage: vm/selftest.sh [--no-timeout] [--kernels "6.1 6.12"]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SERIES="$VM_DEFAULT_SERIES"
WITH_TIMEOUT=1
PASSED=0 FAILED=0
MATRIX="$VM_DIR/matrix.sh"
OUT="$VM_CACHE/selftest"

parse_args() {
  while (($#)); do
    case "$1" in
      --no-timeout) WITH_TIMEOUT=0; shift ;;
      --kernels) SERIES="${2:?--kernels needs a list}"; shift 2 ;;
      *) die "unknown argument: $1 (usage: vm/selftest.sh [--no-timeout] [--kernels LIST])" ;;
    esac
  done
}

n_kernels() { wc -w <<<"$SERIES"; }

# check NAME EXPECTED_MATRIX_STATUS VERDICT [MATRIX OPTIONS] -- COMMAND...
# Runs vm/matrix.sh and expects its exit status (0 or non-zero) and one
# "vm: ... VERDICT" result line per kernel.
check() {
  local name="$1" want_status="$2" verdict="$3"; shift 3
  local status=0 out got
  echo "selftest: --- $name"
  out=$("$MATRIX" --kernels "$SERIES" "$@" 2>&1) || status=$?
  printf '%s\n' "$out" | sed 's/^/  /'
  LAST_OUT=$out
  got=$(printf '%s\n' "$out" | sed -n '/^vm: summary/,$p' | grep -c " $verdict (" || true)
  local status_ok=0
  if ((want_status == 0 ? status == 0 : status != 0)); then status_ok=1; fi
  if ((status_ok)) && [[ $got -eq $(n_kernels) ]]; then
    echo "selftest: ok: $name"; PASSED=$((PASSED + 1))
  else
    echo "selftest: FAILED: $name (matrix status $status, $got of $(n_kernels) kernels $verdict)"
    FAILED=$((FAILED + 1))
  fi
}

build_bpf_object() {
  local clang
  clang=$(command -v clang-19 || command -v clang || true)
  [[ -n $clang ]] || die "clang is needed to build vm/selftest.bpf.c: apt-get install clang-19"
  command -v bpftool >/dev/null || die "bpftool is needed in the guest (it sees the host's): apt-get install bpftool"
  mkdir -p "$OUT"
  "$clang" -O2 -g -target bpf -D__TARGET_ARCH_x86 -I "$VM_DIR/../bpf/include" \
    -c "$VM_DIR/selftest.bpf.c" -o "$OUT/selftest.bpf.o" ||
    die "could not compile vm/selftest.bpf.c (needs bpf/include/vmlinux.h)"
}

main() {
  parse_args "$@"
  need_root
  local t0=$SECONDS
  "$VM_DIR/setup.sh" --kernels "$SERIES"

  # The guest must see the real /usr/bin/env, python3 and a BPF LSM.
  check "command passes, host programs and BPF LSM visible" 0 PASS -- sh -c '
    uname -r
    lsm=$(cat /sys/kernel/security/lsm 2>/dev/null ||
          { mount -t securityfs none /sys/kernel/security && cat /sys/kernel/security/lsm; })
    echo "LSMs: $lsm"
    echo "$lsm" | tr , "\n" | grep -qx bpf
    /usr/bin/env true
    python3 -c "print(1)"
    test "$(readlink -f /bin/sh)" = /usr/bin/dash'
  check "--lsm off boots without BPF LSM" 0 PASS --lsm off -- sh -c '
    mount -t securityfs none /sys/kernel/security
    cat /sys/kernel/security/lsm; echo
    ! tr , "\n" </sys/kernel/security/lsm | grep -qx bpf'
  check "exit 1 is FAIL" 1 FAIL -- sh -c 'exit 1'
  # No initramfs init and no root: every boot panics before the command; the
  # runner boots again twice and then says FAIL, naming the failed boots.
  check "a kernel that dies before the command is booted again, then FAIL" 1 "FAIL" \
    --append "rdinit=/no-such-init" -- true
  if ! grep -q "after 2 failed boot(s))" <<<"$LAST_OUT"; then
    echo "selftest: FAILED: the result line does not name the 2 failed boots"
    PASSED=$((PASSED - 1)) FAILED=$((FAILED + 1))
  fi
  # No guest starts its command within 1 s of qemu starting: every boot is
  # taken as hung, stopped, booted again twice and then reported FAIL.
  check "a boot that hangs before the command is booted again, then FAIL" 1 "FAIL" \
    --boot-stall 1 -- true
  if ! grep -q "after 2 failed boot(s))" <<<"$LAST_OUT" || ! grep -q "hung boot" <<<"$LAST_OUT"; then
    echo "selftest: FAILED: the hung boots are not named as such"
    PASSED=$((PASSED - 1)) FAILED=$((FAILED + 1))
  fi
  if ((WITH_TIMEOUT)); then
    check "a hang is TIMEOUT" 1 TIMEOUT --timeout 60 -- sleep 100000
  fi
  build_bpf_object
  check "BPF LSM and fentry programs load, attach and act" 0 PASS -- \
    bash "$VM_DIR/selftest-bpf.sh" "$OUT/selftest.bpf.o"
  check "--lsm off: an LSM program attaches but never runs" 0 PASS --lsm off -- \
    bash "$VM_DIR/selftest-bpf.sh" --expect-lsm-inert "$OUT/selftest.bpf.o"

  echo "selftest: finished in $((SECONDS - t0)) s"
  echo "selftest: $PASSED passed, $FAILED failed"
  ((FAILED == 0))
}

main "$@"
