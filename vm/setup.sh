#!/usr/bin/env bash
# Installs what the kernel-matrix runner (vm/matrix.sh) needs into vm/cache/,
# without installing anything into the host system: Debian 12's qemu 7.2
# (qemu-system-x86_64 and its virtiofsd, plus whichever shared libraries the
# host lacks), busybox-static, and the newest Debian cloud kernel of each
# series (vmlinuz and its module tree, unpacked from the .deb files, never
# installed into /boot). Packages come from apt with `apt-get download` and are
# unpacked with `dpkg -x`, which sidesteps the conflict between qemu-system-x86
# 7.2 and a newer qemu-utils from backports. Kernels of other Debian releases
# (bullseye, trixie, sid) are found through a private apt configuration under
# vm/cache/apt/ (its own sources list and package lists); the machine's own apt
# sources are never changed. Idempotent: a second run only checks.
#
# usage: vm/setup.sh [--kernels "6.1 6.12"] [--refresh]
#   --kernels  series to install (default "6.1 6.12"; known: 5.10 6.1 6.12 trixie sid)
#   --refresh  download the private package lists again even if they are recent
#              (they are refreshed anyway when older than 7 days, or when a
#              package is missing from them or from the mirror)
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SERIES="$VM_DEFAULT_SERIES"
APT_UPDATED=0
declare -A PRIVATE_UPDATED=()   # private apt dirs whose lists this run downloaded
REFRESH=0
DEBS="$VM_CACHE/debs"

usage() {
  sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'
  exit "${1:-0}"
}

parse_args() {
  while (($#)); do
    case "$1" in
      --kernels) SERIES="${2:?--kernels needs a list such as \"6.1 6.12\"}"; shift 2 ;;
      --refresh) REFRESH=1; shift ;;
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

# Where each series comes from: the Debian suites whose package lists are
# searched ("host" = the machine's own apt lists, a Debian 12 host's
# bookworm), and the image packages that qualify; the newest name (sort -V)
# wins. In sid the image package is a small meta package whose dependencies
# linux-binary-* (vmlinuz), linux-modules-* (module tree) and linux-base-*
# (config, modules.builtin) hold the kernel; kernel_packages() follows them.
# Only the main suites: the *-security suites list newer builds (bullseye-security
# has 5.10.0-46), but the mirror this runs against answers 404 for their pool.
kernel_suites() {
  case $1 in
    5.10) echo bullseye ;;
    6.1|6.12) echo host ;;
    trixie) echo trixie ;;
    sid) echo sid ;;
    *) die "unknown kernel series '$1' (known: $VM_KNOWN_SERIES)" ;;
  esac
}

kernel_package_re() {
  case $1 in
    5.10) echo '^linux-image-5\.10\.0-[0-9]+-cloud-amd64-unsigned$' ;;
    6.1) echo '^linux-image-6\.1\.0-[0-9]+-cloud-amd64-unsigned$' ;;
    6.12) echo '^linux-image-6\.12\.[0-9]+\+deb12-cloud-amd64-unsigned$' ;;
    trixie) echo '^linux-image-6\.12\.[0-9]+\+deb13-cloud-amd64-unsigned$' ;;
    sid) echo '^linux-image-[0-9]+\.[0-9]+\.[0-9]+\+deb[0-9]+-cloud-amd64$' ;;
  esac
}

# Private apt state of a series whose suites are not the host's:
# vm/cache/apt/<first suite>/ with its own sources.list, lists and cache.
private_apt_dir() { printf '%s/apt/%s' "$VM_CACHE" "$(kernel_suites "$1" | cut -d' ' -f1)"; }

# Runs apt-get/apt-cache ($2...) for series $1: with the host's configuration
# for "host" series, else with the private sources list and lists only (the
# host's apt.conf.d still applies, e.g. a proxy; its sources and pins do not).
kapt() {
  local series="$1" tool="$2" d; shift 2
  if [[ $(kernel_suites "$series") == host ]]; then
    "$tool" "$@"
    return
  fi
  d=$(private_apt_dir "$series")
  "$tool" -o Dir::Etc::SourceList="$d/sources.list" -o Dir::Etc::SourceParts=/dev/null \
    -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null \
    -o Dir::State::Lists="$d/lists" -o Dir::Cache="$d/cache" -o Dir::State::status=/dev/null \
    -o Acquire::Languages=none -o APT::Sandbox::User=root "$@"
}

# The private sources list of a series: its suites from deb.debian.org, signed
# by the Debian archive keyring the host already has, package lists only.
private_sources() {
  local suite
  for suite in $(kernel_suites "$1"); do
    printf 'deb [signed-by=%s target=Packages] http://deb.debian.org/debian %s main\n' \
      /usr/share/keyrings/debian-archive-keyring.gpg "$suite"
  done
}

# Downloads the private package lists of a series (once per run, per suite set).
private_apt_update() {
  local series="$1" d t0
  d=$(private_apt_dir "$series")
  [[ -n ${PRIVATE_UPDATED[$d]:-} ]] && return 0
  [[ -f /usr/share/keyrings/debian-archive-keyring.gpg ]] ||
    die "no /usr/share/keyrings/debian-archive-keyring.gpg: apt-get install debian-archive-keyring"
  mkdir -p "$d/lists/partial" "$d/cache/archives/partial"
  private_sources "$series" >"$d/sources.list"
  log "kernel $series: downloading the package lists of $(kernel_suites "$series") (private, in $d)"
  t0=$SECONDS
  rm -f "$d/updated"
  kapt "$series" apt-get update -qq >/dev/null ||
    die "apt-get update of $(kernel_suites "$series") failed (private lists in $d); check the network access to deb.debian.org"
  touch "$d/updated"
  PRIVATE_UPDATED[$d]=1
  log "kernel $series: package lists ready in $((SECONDS - t0)) s"
}

# Refreshes the lists a series is chosen from: the host's (apt-get update,
# once per run) or its private ones.
kernel_lists_update() {
  if [[ $(kernel_suites "$1") == host ]]; then apt_update_once; else private_apt_update "$1"; fi
}

# Private lists are downloaded when missing, made from other sources, older
# than 7 days, or on --refresh.
private_lists_stale() {
  local d; d=$(private_apt_dir "$1")
  ((REFRESH)) && return 0
  [[ -f $d/updated && "$(cat "$d/sources.list" 2>/dev/null)" == "$(private_sources "$1")" ]] || return 0
  [[ -n $(find "$d/updated" -mtime +7) ]]
}

# Newest image package of a series in its lists, e.g.
# 5.10 -> linux-image-5.10.0-32-cloud-amd64-unsigned,
# 6.12 -> linux-image-6.12.117+deb12-cloud-amd64-unsigned,
# sid -> linux-image-7.2.13+deb14-cloud-amd64.
newest_kernel_package() {
  local series="$1" re names
  re=$(kernel_package_re "$series")
  if [[ $(kernel_suites "$series") != host ]] && private_lists_stale "$series"; then
    private_apt_update "$series"
  fi
  names=$(kapt "$series" apt-cache pkgnames linux-image- 2>/dev/null | grep -E "$re" || true)
  if [[ -z $names ]]; then
    kernel_lists_update "$series"
    names=$(kapt "$series" apt-cache pkgnames linux-image- 2>/dev/null | grep -E "$re" || true)
  fi
  [[ -n $names ]] || die "no package matching $re in the lists of $(kernel_suites "$series")"
  sort -V <<<"$names" | tail -n1
}

# The packages to unpack for image package $2: the image package itself and,
# where it is a meta package (sid), its linux-base/binary/modules dependencies.
kernel_packages() {
  local series="$1" pkg="$2"
  printf '%s\n' "$pkg"
  kapt "$series" apt-cache show --no-all-versions "$pkg" 2>/dev/null |
    sed -n 's/^Depends: //p' | tr ',' '\n' | sed 's/^ *//; s/[ (].*//' |
    grep -E '^linux-(base|binary|modules)-' || true
}

kernel_package_version() {
  kapt "$1" apt-cache show --no-all-versions "$2" 2>/dev/null | sed -n 's/^Version: //p' | head -n1
}

# Downloads packages of series $1 into $DEBS; refreshes its lists once if a
# package is unknown or its file has gone from the mirror.
kernel_download() {
  local series="$1" try; shift
  for try in 1 2; do
    if (cd "$DEBS" && kapt "$series" apt-get download -qq -o APT::Sandbox::User=root "$@" >/dev/null); then
      return 0
    fi
    ((try == 1)) && kernel_lists_update "$series"
  done
  die "apt-get download $* failed (lists of $(kernel_suites "$series")); check the package names and the network"
}

kernel_ready() {
  local d; d="$(kernel_dir "$1")"
  [[ -f $d/complete && "$(cat "$d/package" 2>/dev/null)" == "$2" ]]
}

# zstd for .ko.zst modules: the host's, or one unpacked into the cache.
zstd_bin() {
  if command -v zstd >/dev/null; then command -v zstd; return 0; fi
  local z="$VM_CACHE/zstd/usr/bin/zstd"
  if [[ ! -x $z ]]; then
    apt_download zstd
    rm -rf "$VM_CACHE/zstd" && dpkg -x "$(deb_file zstd)" "$VM_CACHE/zstd"
  fi
  "$z" --version >/dev/null || die "the unpacked zstd ($z) does not run"
  printf '%s' "$z"
}

# Module files are decompressed once here (xz, zstd or gzip) so busybox's
# insmod/modprobe in the guest can load them, and busybox depmod writes
# modules.dep for them.
prepare_modules() {
  local modroot="$1" release="$2" bb mdir n; bb="$(busybox_bin)"
  mdir="$modroot/lib/modules/$release"
  n=$(find "$mdir" -name '*.ko.xz' | wc -l)
  if ((n)); then
    log "kernel $release: decompressing $n .ko.xz modules"
    find "$mdir" -name '*.ko.xz' -print0 | xargs -0 -n 64 "$bb" unxz
  fi
  n=$(find "$mdir" -name '*.ko.zst' | wc -l)
  if ((n)); then
    log "kernel $release: decompressing $n .ko.zst modules"
    find "$mdir" -name '*.ko.zst' -print0 | xargs -0 -n 64 "$(zstd_bin)" -d -q --rm
  fi
  n=$(find "$mdir" -name '*.ko.gz' | wc -l)
  if ((n)); then
    log "kernel $release: decompressing $n .ko.gz modules"
    find "$mdir" -name '*.ko.gz' -print0 | xargs -0 -n 64 "$bb" gunzip
  fi
  "$bb" depmod -b "$modroot" "$release" || die "busybox depmod failed for $release"
}

# First existing file of the arguments.
first_file() {
  local f
  for f in "$@"; do [[ -f $f ]] && { printf '%s' "$f"; return 0; }; done
  return 1
}

setup_kernel() {
  local series="$1" pkg d tmp release pkgs p mods t0=$SECONDS
  pkg=$(newest_kernel_package "$series")
  d="$(kernel_dir "$series")"
  if kernel_ready "$series" "$pkg"; then
    log "kernel $series: ready ($pkg)"
    return 0
  fi
  mapfile -t pkgs < <(kernel_packages "$series" "$pkg")
  log "kernel $series: fetching ${pkgs[*]}"
  kernel_download "$series" "${pkgs[@]}"
  tmp="$d.tmp"
  rm -rf "$tmp" && mkdir -p "$tmp/deb"
  for p in "${pkgs[@]}"; do dpkg -x "$(deb_file "$p")" "$tmp/deb"; done
  # Debian 11/12 put the module tree in /lib/modules and the kernel in /boot;
  # sid and later in /usr/lib/modules/<release>, kernel and config included.
  mods=$(find "$tmp/deb/lib/modules" "$tmp/deb/usr/lib/modules" -mindepth 1 -maxdepth 1 -type d 2>/dev/null || true)
  [[ $(wc -w <<<"$mods") -eq 1 ]] || die "${pkgs[*]} hold no single module tree (found: ${mods:-none})"
  release=$(basename "$mods")
  mkdir -p "$tmp/modroot/lib/modules"
  mv "$(first_file "$tmp/deb/boot/vmlinuz-$release" "$mods/vmlinuz" "$mods/vmlinuz.unsigned")" "$tmp/vmlinuz" ||
    die "${pkgs[*]} hold no vmlinuz for $release"
  mv "$(first_file "$tmp/deb/boot/config-$release" "$mods/config")" "$tmp/config" ||
    die "${pkgs[*]} hold no kernel config for $release"
  rm -f "$mods/vmlinuz" "$mods/vmlinuz.unsigned" "$mods/System.map"
  mv "$mods" "$tmp/modroot/lib/modules/"
  rm -rf "$tmp/deb"
  prepare_modules "$tmp/modroot" "$release"
  printf '%s\n' "$release" >"$tmp/release"
  printf '%s\n' "$pkg" >"$tmp/package"
  # The exact packages (name, version, where from), for the record.
  for p in "${pkgs[@]}"; do
    printf '%s %s %s\n' "$p" "$(kernel_package_version "$series" "$p")" "$(kernel_suites "$series")"
  done >"$tmp/packages"
  touch "$tmp/complete"
  rm -rf "$d" && mv "$tmp" "$d"
  for p in "${pkgs[@]}"; do rm -f "$DEBS/${p}_"*.deb; done   # the unpacked tree is all we need
  log "kernel $series: ready ($pkg, release $release, $((SECONDS - t0)) s)"
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
