# Shared by packaging/package.sh and packaging/test.sh (sourced, not run).

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'packaging: error: %s\n' "$*" >&2; exit 1; }

# Where the unit goes in the .deb: /lib/systemd/system is where Debian 12's systemd and
# debhelper put units (Debian 13 reads it through the /lib -> /usr/lib symlink).
SYSTEMD_UNIT_DIR=lib/systemd/system

# Podman as this project runs it: runc, no ulimits raised (sandboxes that refuse raising
# RLIMIT_NOFILE/NPROC refuse crun's and podman's defaults), cgroupfs and a file event log (no
# systemd needed on the host). Every podman call in packaging/ goes through this configuration.
podman_setup() {
  command -v podman >/dev/null || die "podman is not installed (apt-get install podman)"
  export CONTAINERS_CONF
  CONTAINERS_CONF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/containers.conf"
}
