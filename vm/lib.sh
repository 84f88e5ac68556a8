# Shared helpers for the kernel-matrix runner (vm/setup.sh, vm/matrix.sh,
# vm/selftest.sh). Sourced, never executed. It defines where the cache lives,
# how to report progress and errors, and how to find the unpacked qemu,
# busybox and kernels that vm/setup.sh put in the cache.

VM_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VM_CACHE="${SHRIKE_VM_CACHE:-$VM_DIR/cache}"
# Kernel series the matrix covers unless told otherwise.
VM_DEFAULT_SERIES="6.1 6.12"
# Every series vm/setup.sh knows how to fetch (see kernel_suites there).
VM_KNOWN_SERIES="5.10 6.1 6.12 trixie sid"

log() { printf 'vm: %s\n' "$*" >&2; }
die() { printf 'vm: error: %s\n' "$*" >&2; exit 1; }

need_root() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (qemu's virtiofsd shares / and needs root); re-run with sudo"
}

# Paths inside the cache.
qemu_root()    { printf '%s/qemu/root' "$VM_CACHE"; }
qemu_bin()     { printf '%s/usr/bin/qemu-system-x86_64' "$(qemu_root)"; }
virtiofsd_bin(){ printf '%s/usr/lib/qemu/virtiofsd' "$(qemu_root)"; }
busybox_bin()  { printf '%s/busybox/bin/busybox' "$VM_CACHE"; }
kernel_dir()   { printf '%s/kernels/%s' "$VM_CACHE" "$1"; }   # $1 = series, e.g. 6.1

# The unpacked qemu needs its own libraries, firmware and modules.
qemu_env() {
  local r; r="$(qemu_root)"
  export LD_LIBRARY_PATH="$r/usr/lib/x86_64-linux-gnu:$r/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export QEMU_MODULE_DIR="$r/usr/lib/x86_64-linux-gnu/qemu"
}

# The full kernel release of an unpacked series, e.g. 6.1.0-56-cloud-amd64.
kernel_release() {
  local d; d="$(kernel_dir "$1")"
  [[ -f $d/release ]] || die "kernel series $1 is not in $VM_CACHE; run vm/setup.sh --kernels \"$1\""
  cat "$d/release"
}
