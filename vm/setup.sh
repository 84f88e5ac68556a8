#!/usr/bin/env bash
# Installs what the kernel-matrix runner (vm/matrix.sh) needs into vm/cache/,
# without installing anything into the host system: Debian 12's qemu 7.2
# (qemu-system-x86_64 and its virtiofsd, plus whichever shared libraries the
# host lacks), busybox-static, and the newest Debian 12 cloud kernel of each
# series (vmlinuz and its module tree, unpacked from the .deb, never installed
# into /boot). Packages come from apt with `apt-get download` and are unpacked
# with `dpkg -x`, which sidesteps the conflict between qemu-system-x86 7.2 and a
# newer qemu-utils from backports. Idempotent: a second run only checks.
#
# usage: vm/setup.sh [--kernels "6.1 6.12"]
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SERIES="$VM_DEFAULT_SERIES"
APT_UPDATED=0
DEBS="$VM_CACHE/debs"

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit "${1:-0}"
}

parse_args() {
  while (($#)); do
    case "$1" in
      --kernels) SERIES="${2:?--kernels needs a list such as \"6.1 6.12\"}"; shift 2 ;;
      -h|--help) usage 0 ;;
      *) log "unknown argument: $1"; usage 2 ;;
    esac
  done
}

check_host() {
  need_root
  command -v apt-get >/dev/null && command -v dpkg >/dev/null ||
    die "apt-get and dpkg are required (this runner expects a Debian 12 host)"
  [[ "$(dpkg --print-architecture)" == amd64 ]] || die "only amd64 hosts are supported"
  [[ "$VM_CACHE" != *[[:space:]]* ]] || die "cache path '$VM_CACHE' contains white space; move the checkout"
  mkdir -p "$DEBS"
}

apt_update_once() {
  ((APT_UPDATED)) && return 0
  log "apt-get update"
  apt-get update -qq >/dev/null || die "apt-get update failed; check the network access to Debian's mirrors"
  APT_UPDATED=1
}

# Downloads the given packages into $DEBS; refreshes apt's lists once if a
# package is unknown or its file has gone from the mirror.
apt_download() {
  local try
  for try in 1 2; do
    if (cd "$DEBS" && apt-get download -qq -o APT::Sandbox::User=root "$@" >/dev/null); then
      return 0
    fi
    ((try == 1)) && apt_update_once
  done
  die "apt-get download $* failed; run 'apt-get update' and check the package names"
}

# The .deb file of a downloaded package (newest if several are present).
deb_file() {
  local f
  f=$(ls -1 "$DEBS/${1}_"*.deb 2>/dev/null | sort -V | tail -n1)
  [[ -n $f ]] || die "no downloaded .deb for $1 in $DEBS"
  printf '%s' "$f"
}

# --- qemu ------------------------------------------------------------------

# Packages that qemu-system-x86 7.2 needs and the host lacks, as apt resolves
# them (a simulation: nothing is installed or removed).
qemu_package_closure() {
  local sim
  sim=$(apt-get install -s --no-install-recommends qemu-system-x86 2>&1) || {
    apt_update_once
    sim=$(apt-get install -s --no-install-recommends qemu-system-x86 2>&1) ||
      die "apt cannot resolve qemu-system-x86: $(tail -n3 <<<"$sim")"
  }
  { awk '/^Inst /{print $2}' <<<"$sim" | grep -vx -e libc6 -e libgcc-s1 || true
    # Always unpack qemu itself and its firmware, even if the host has them.
    printf '%s\n' qemu-system-x86 qemu-system-common qemu-system-data seabios
  } | sort -u
}

qemu_ready() {
  [[ -f "$VM_CACHE/qemu/complete" && -x "$(virtiofsd_bin)" ]] || return 1
  qemu_env
  "$(qemu_bin)" --version >/dev/null 2>&1
}

setup_qemu() {
  if qemu_ready; then
    log "qemu: ready ($("$(qemu_bin)" --version | head -n1))"
    return 0
  fi
  local pkgs tmp p
  mapfile -t pkgs < <(qemu_package_closure)
  log "qemu: downloading ${#pkgs[@]} packages: ${pkgs[*]}"
  apt_download "${pkgs[@]}"
  tmp="$VM_CACHE/qemu.tmp"
  rm -rf "$tmp" && mkdir -p "$tmp/root"
  for p in "${pkgs[@]}"; do dpkg -x "$(deb_file "$p")" "$tmp/root"; done
  printf '%s\n' "${pkgs[@]}" >"$tmp/packages"
  touch "$tmp/complete"
  rm -rf "$VM_CACHE/qemu" && mv "$tmp" "$VM_CACHE/qemu"
  qemu_ready || die "the unpacked qemu does not run; missing libraries: $(
    qemu_env; ldd "$(qemu_bin)" | grep 'not found' | tr -s ' \t\n' ' ')"
  log "qemu: ready ($("$(qemu_bin)" --version | head -n1))"
}

# --- busybox ---------------------------------------------------------------

setup_busybox() {
  if [[ -x "$(busybox_bin)" ]] && "$(busybox_bin)" true; then
    log "busybox: ready"
    return 0
  fi
  apt_download busybox-static
  rm -rf "$VM_CACHE/busybox.tmp"
  dpkg -x "$(deb_file busybox-static)" "$VM_CACHE/busybox.tmp"
  rm -rf "$VM_CACHE/busybox" && mv "$VM_CACHE/busybox.tmp" "$VM_CACHE/busybox"
  "$(busybox_bin)" true || die "busybox-static did not unpack to $(busybox_bin)"
  log "busybox: ready"
}

# --- kernels ---------------------------------------------------------------

# Newest linux-image-<series>...-cloud-amd64-unsigned in apt's lists, e.g.
# 6.1 -> linux-image-6.1.0-56-cloud-amd64-unsigned,
# 6.12 -> linux-image-6.12.117+deb12-cloud-amd64-unsigned.
newest_kernel_package() {
  local series="$1" re names
  re="^linux-image-${series//./\\.}[.-][0-9][^ ]*-cloud-amd64-unsigned\$"
  names=$(apt-cache pkgnames linux-image- 2>/dev/null | grep -E "$re" || true)
  if [[ -z $names ]]; then
    apt_update_once
    names=$(apt-cache pkgnames linux-image- 2>/dev/null | grep -E "$re" || true)
  fi
  [[ -n $names ]] || die "apt knows no package matching $re; is '$series' a Debian 12 kernel series?"
  sort -V <<<"$names" | tail -n1
}

kernel_ready() {
  local d; d="$(kernel_dir "$1")"
  [[ -f $d/complete && "$(cat "$d/package" 2>/dev/null)" == "$2" ]]
}

# Module files are decompressed once here so busybox's insmod/modprobe in the
# guest can load them, and busybox depmod writes modules.dep for them.
prepare_modules() {
  local modroot="$1" release="$2" bb; bb="$(busybox_bin)"
  local n
  n=$(find "$modroot/lib/modules/$release" -name '*.ko.xz' | wc -l)
  if ((n)); then
    log "kernel $release: decompressing $n modules"
    find "$modroot/lib/modules/$release" -name '*.ko.xz' -print0 | xargs -0 -n 64 "$bb" unxz
  fi
  if find "$modroot/lib/modules/$release" -name '*.ko.zst' -o -name '*.ko.gz' | grep -q .; then
    die "kernel $release ships zstd/gzip-compressed modules, which vm/setup.sh cannot unpack yet"
  fi
  "$bb" depmod -b "$modroot" "$release" || die "busybox depmod failed for $release"
}

setup_kernel() {
  local series="$1" pkg d tmp release
  pkg=$(newest_kernel_package "$series")
  d="$(kernel_dir "$series")"
  if kernel_ready "$series" "$pkg"; then
    log "kernel $series: ready ($pkg)"
    return 0
  fi
  log "kernel $series: fetching $pkg"
  apt_download "$pkg"
  tmp="$d.tmp"
  rm -rf "$tmp" && mkdir -p "$tmp/deb"
  dpkg -x "$(deb_file "$pkg")" "$tmp/deb"
  release=$(ls "$tmp/deb/lib/modules")
  [[ $(wc -w <<<"$release") -eq 1 ]] || die "$pkg has no single module tree (found: $release)"
  mkdir -p "$tmp/modroot/lib/modules"
  mv "$tmp/deb/boot/vmlinuz-$release" "$tmp/vmlinuz"
  mv "$tmp/deb/boot/config-$release" "$tmp/config"
  mv "$tmp/deb/lib/modules/$release" "$tmp/modroot/lib/modules/"
  rm -rf "$tmp/deb"
  prepare_modules "$tmp/modroot" "$release"
  printf '%s\n' "$release" >"$tmp/release"
  printf '%s\n' "$pkg" >"$tmp/package"
  touch "$tmp/complete"
  rm -rf "$d" && mv "$tmp" "$d"
  rm -f "$DEBS/${pkg}_"*.deb   # the unpacked tree is all we need
  log "kernel $series: ready ($pkg, release $release)"
}

main() {
  parse_args "$@"
  check_host
  setup_qemu
  setup_busybox
  local s
  for s in $SERIES; do setup_kernel "$s"; done
  rm -f "$DEBS"/*.deb
  log "setup complete in $VM_CACHE"
}

main "$@"
