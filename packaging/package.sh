#!/usr/bin/env bash
# Builds what shrike ships, from a clean checkout, into target/package/ (`./dev package` runs it):
#
#   shrike, shrike.debug     the release binary (profile `dist`: fat LTO, one codegen unit),
#                            stripped, its debug symbols split off beside it (gnu-debuglink)
#   docs/                    man pages and bash/zsh/fish completions, made by the binary itself
#                            from its command line definition (`shrike __package-docs`)
#   shrike_VERSION_amd64.deb the Debian package (dpkg-deb; lintian is run when installed)
#   shrike-image-VERSION.tar the container image (podman, FROM scratch: the binary and the three
#                            shared libraries it needs, no shell), also loaded into the local
#                            podman storage as localhost/shrike:VERSION
#
# usage: packaging/package.sh [binary|deb|image|all]...   (default: all)
#   SHRIKE_DEB_VERSION=V   package version (default: the workspace version)
#   SHRIKE_NO_BUILD=1      package the existing target/dist/shrike without running cargo
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
# shellcheck source=packaging/lib.sh
source packaging/lib.sh

OUT=target/package
CRATE_VERSION=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1)
VERSION=${SHRIKE_DEB_VERSION:-$CRATE_VERSION}
ARCH=amd64
DEB="$OUT/shrike_${VERSION}_${ARCH}.deb"
IMAGE="localhost/shrike:$VERSION"
IMAGE_TAR="$OUT/shrike-image-$VERSION.tar"

size_mb() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%.1f MB", b / 1e6 }'; }

build_binary() {
  mkdir -p "$OUT"
  if [ -z "${SHRIKE_NO_BUILD:-}" ]; then
    log "building shrike (profile dist: LTO, one codegen unit)"
    local start=$SECONDS
    cargo build --locked --profile dist -p shrike
    log "cargo build --profile dist took $((SECONDS - start)) s"
  fi
  local built=target/dist/shrike
  [ -x "$built" ] || die "$built is missing: run without SHRIKE_NO_BUILD"
  objcopy --only-keep-debug --compress-debug-sections=zlib "$built" "$OUT/shrike.debug"
  chmod 0644 "$OUT/shrike.debug"
  objcopy --strip-all --remove-section=.comment \
    --add-gnu-debuglink="$OUT/shrike.debug" "$built" "$OUT/shrike"
  local bytes
  bytes=$(stat -c %s "$OUT/shrike")
  log "binary: $OUT/shrike $(size_mb "$OUT/shrike") (debug symbols: $OUT/shrike.debug $(size_mb "$OUT/shrike.debug"); unstripped $(size_mb "$built"))"
  [ "$bytes" -le 15000000 ] || die "the stripped binary is over the 15 MB target"
  rm -rf "$OUT/docs"
  "$OUT/shrike" __package-docs "$OUT/docs"
}

need_binary() {
  [ -x "$OUT/shrike" ] && [ -d "$OUT/docs/man8" ] || build_binary
}

# The copyright file: shrike's licence, then what the static binary carries inside it (libbpf,
# libelf, zlib, the BPF programs, and each Rust crate with its licence from cargo metadata).
write_copyright() {
  local crates
  crates=$(cargo metadata --locked --format-version 1 --filter-platform x86_64-unknown-linux-gnu 2>/dev/null |
    python3 -c '
import json, sys
m = json.load(sys.stdin)
ids = {n["id"] for n in m["resolve"]["nodes"]}
for p in sorted(m["packages"], key=lambda p: p["name"]):
    if p["source"] and p["id"] in ids:
        print(" {} {}: {}".format(p["name"], p["version"], p.get("license") or "see the crate"))
')
  [ -n "$crates" ] || die "cargo metadata listed no crates for the copyright file"
  CRATES="$crates" awk '$0 == "@CRATES@" { print ENVIRON["CRATES"]; next } { print }' \
    packaging/debian/copyright.in
}

build_deb() {
  need_binary
  log "building $DEB"
  local root="$OUT/deb-root"
  rm -rf "$root"
  install -d "$root/DEBIAN"
  install -D -m 0755 "$OUT/shrike" "$root/usr/bin/shrike"
  install -D -m 0755 packaging/shrike-service "$root/usr/libexec/shrike/shrike-service"
  install -D -m 0644 packaging/shrike.service "$root/$SYSTEMD_UNIT_DIR/shrike.service"
  install -D -m 0644 packaging/shrike-bpffs.service "$root/$SYSTEMD_UNIT_DIR/shrike-bpffs.service"
  install -D -m 0644 packaging/etc/default-shrike "$root/etc/default/shrike"
  install -D -m 0644 packaging/etc/policy.d/example.yaml "$root/etc/shrike/policy.d/example.yaml"
  install -D -m 0644 packaging/etc/shrike.yaml "$root/etc/shrike/shrike.yaml"
  install -d "$root/usr/share/man/man8"
  for page in "$OUT"/docs/man8/*.8; do
    gzip -9n -c "$page" > "$root/usr/share/man/man8/$(basename "$page").gz"
  done
  install -D -m 0644 "$OUT/docs/completions/shrike.bash" "$root/usr/share/bash-completion/completions/shrike"
  install -D -m 0644 "$OUT/docs/completions/_shrike" "$root/usr/share/zsh/vendor-completions/_shrike"
  install -D -m 0644 "$OUT/docs/completions/shrike.fish" "$root/usr/share/fish/vendor_completions.d/shrike.fish"
  install -d "$root/usr/share/shrike/policies/default"
  install -m 0644 policies/default/*.yaml "$root/usr/share/shrike/policies/default/"
  install -D -m 0644 packaging/debian/lintian-overrides "$root/usr/share/lintian/overrides/shrike"
  install -d "$root/usr/share/doc/shrike"
  write_copyright > "$root/usr/share/doc/shrike/copyright"
  sed -e "s/@VERSION@/$VERSION/" -e "s/@DATE@/$(date -R -d "@$(source_date)")/" \
    packaging/debian/changelog.in | gzip -9n > "$root/usr/share/doc/shrike/changelog.gz"
  install -m 0755 packaging/debian/postinst packaging/debian/prerm packaging/debian/postrm "$root/DEBIAN/"
  (cd "$root" && find etc -type f | sed 's|^|/|' | sort) > "$root/DEBIAN/conffiles"
  chmod 0644 "$root/DEBIAN/conffiles"
  local depends installed
  depends=$(shlib_depends "$root/usr/bin/shrike")
  installed=$(du -k -s --apparent-size --exclude=DEBIAN "$root" | cut -f1)
  sed -e "s/@VERSION@/$VERSION/" -e "s/@ARCH@/$ARCH/" -e "s/@DEPENDS@/$depends/" \
    -e "s/@INSTALLED_SIZE@/$installed/" packaging/debian/control.in > "$root/DEBIAN/control"
  (cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z |
    xargs -0 md5sum) > "$root/DEBIAN/md5sums"
  chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
  # Files dated by the source, not by the build, so two builds of one commit are the same.
  find "$root" -exec touch -h -d "@$(source_date)" {} +
  dpkg-deb --root-owner-group -Zxz --build "$root" "$DEB" >/dev/null
  log "deb: $DEB $(size_mb "$DEB") (Depends: $depends)"
  if command -v lintian >/dev/null; then
    log "lintian $DEB (the tags left as they are, and why: packaging/debian/lintian-overrides)"
    local rc=0
    lintian --fail-on error,warning --info --pedantic --tag-display-limit 0 "$DEB" \
      > "$OUT/lintian.txt" 2>&1 || rc=$?
    grep -v '^running with root privileges' "$OUT/lintian.txt" >&2 || true
    [ "$rc" = 0 ] || die "lintian found errors or warnings in $DEB (above)"
  else
    log "lintian is not installed (apt-get install lintian): not run"
  fi
}

# The Depends line for the binary, from dpkg-shlibdeps (needs a debian/control to read).
shlib_depends() {
  local tmp
  tmp=$(mktemp -d)
  mkdir -p "$tmp/debian"
  printf 'Source: shrike\n\nPackage: shrike\nArchitecture: any\n' > "$tmp/debian/control"
  cp "$1" "$tmp/shrike"
  (cd "$tmp" && dpkg-shlibdeps -O shrike 2>/dev/null) | sed -n 's/^shlibs:Depends=//p'
  rm -rf "$tmp"
}

# Seconds since the epoch of the commit being packaged (or now, outside git).
source_date() {
  git log -1 --format=%ct 2>/dev/null || date +%s
}

build_image() {
  need_binary
  podman_setup
  log "building the container image $IMAGE"
  local root="$OUT/image-root"
  rm -rf "$root"
  install -D -m 0755 "$OUT/shrike" "$root/usr/bin/shrike"
  # The dynamic loader and the libraries the binary links (libc, libgcc_s: libbpf, libelf and
  # zlib are linked in statically), from the build host; the binary needs glibc >= the build's.
  local lib
  for lib in $(ldd "$OUT/shrike" | awk '/=>/ { print $3 } /^\t\/lib/ { print $1 }'); do
    install -D -m 0755 "$(readlink -f "$lib")" "$root$lib"
  done
  # Mount points the runtime fills; /tmp for tools that expect it.
  install -d "$root/tmp" "$root/sys" "$root/proc" "$root/usr/share/doc/shrike"
  write_copyright > "$root/usr/share/doc/shrike/copyright"
  find "$root" -exec touch -h -d "@$(source_date)" {} +
  podman build --quiet --network none --timestamp "$(source_date)" \
    --build-arg VERSION="$VERSION" -f packaging/Containerfile -t "$IMAGE" "$root" >/dev/null
  rm -f "$IMAGE_TAR"
  podman save --quiet --format oci-archive -o "$IMAGE_TAR" "$IMAGE"
  local bytes
  bytes=$(podman image inspect --format '{{.Size}}' "$IMAGE")
  log "image: $IMAGE $(awk -v b="$bytes" 'BEGIN { printf "%.1f MB", b / 1e6 }') ($IMAGE_TAR $(size_mb "$IMAGE_TAR"); podman load -i it elsewhere)"
}

main() {
  local steps=("$@")
  [ ${#steps[@]} -gt 0 ] || steps=(all)
  for step in "${steps[@]}"; do
    case "$step" in
      binary) build_binary ;;
      deb) build_deb ;;
      image) build_image ;;
      all) build_binary; build_deb; build_image ;;
      -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
      *) die "unknown step '$step' (binary, deb, image or all)" ;;
    esac
  done
}

main "$@"
