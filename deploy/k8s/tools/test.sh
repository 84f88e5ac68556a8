#!/usr/bin/env bash
# Proves the Kubernetes manifests in deploy/k8s/ offline, in seconds, without a cluster
# (`./dev test` runs it, and `./dev k8s-test`):
#
#   generated   10-policy-default.yaml holds policies/default/ byte for byte and the DaemonSet's
#               image tag and --policy list follow the crate version and the pack
#               (generate.py --check; `./dev k8s-manifests` rewrites them)
#   schema      every object valid against the OpenAPI schemas of Kubernetes $KUBERNETES_VERSION,
#               strict (kubernetes-validate --strict: an unknown or misplaced field fails), and
#               the validator itself shown to refuse a DaemonSet with one misspelled field
#   coherent    the objects agree with each other and with the repository (check.py)
#   policy      the ConfigMaps' files, laid out as the pod sees them, compile with the agent's
#               own compiler and --no-default-policy into exactly the embedded pack's rules;
#               the local file's commented examples compile when uncommented; the DaemonSet's
#               arguments are all options `shrike run` knows
#
# usage: deploy/k8s/tools/test.sh        SHRIKE_BIN=PATH: the shrike binary to compile with
#                                        (default: target/debug/shrike, built first)
# The validator is installed once, pinned (requirements.txt), into a venv in deploy/cache/.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/../../.."

KUBERNETES_VERSION=1.37.0
VENV=deploy/cache/venv
REQUIREMENTS=deploy/k8s/tools/requirements.txt
PASSED=0
FAILED=0
WORK=$(mktemp -d /tmp/shrike-k8stest.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

log() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'k8s test: error: %s\n' "$*" >&2; exit 1; }
check() { # check NAME COMMAND...: one assertion, counted and reported
  local name=$1
  shift
  if "$@"; then
    printf '  ok   %s\n' "$name" >&2
    PASSED=$((PASSED + 1))
  else
    printf '  FAIL %s\n' "$name" >&2
    FAILED=$((FAILED + 1))
  fi
}

# The venv is rebuilt when requirements.txt changes (its copy inside the venv is the stamp).
if ! cmp -s "$REQUIREMENTS" "$VENV/requirements.txt" 2>/dev/null; then
  log "installing kubernetes-validate into $VENV (pinned: $REQUIREMENTS)"
  [ -x /usr/bin/python3 ] || die "python3 is not installed (./dev deps installs it)"
  rm -rf "$VENV"
  /usr/bin/python3 -m venv "$VENV" || die "python3 -m venv failed: apt-get install python3-venv"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$REQUIREMENTS" \
    || die "pip could not install $REQUIREMENTS (PyPI must be reachable the first time)"
  cp "$REQUIREMENTS" "$VENV/requirements.txt"
fi
PY="$VENV/bin/python"
VALIDATE="$VENV/bin/kubernetes-validate"

# The binary whose embedded pack is compared: built (a no-op after `cargo test`) unless given.
if [ -z "${SHRIKE_BIN:-}" ]; then
  cargo build --locked --quiet -p shrike
  SHRIKE_BIN=target/debug/shrike
fi
[ -x "$SHRIKE_BIN" ] || die "$SHRIKE_BIN is not an executable"

log "Kubernetes manifests (deploy/k8s/, schemas of Kubernetes $KUBERNETES_VERSION)"
check "generated files are up to date (else: ./dev k8s-manifests)" \
  "$PY" deploy/k8s/tools/generate.py --check

validate() { "$VALIDATE" --kubernetes-version "$KUBERNETES_VERSION" --strict "$@"; }
check "every object passes kubernetes-validate --strict" validate deploy/k8s/*.yaml

# The validator must refuse a broken DaemonSet, or a pass above means nothing.
sed 's/^\(\s*\)readOnlyRootFilesystem:/\1readOnlyRootFilesytem:/' deploy/k8s/20-daemonset.yaml > "$WORK/broken.yaml"
cmp -s deploy/k8s/20-daemonset.yaml "$WORK/broken.yaml" && die "could not make the broken copy of the DaemonSet"
refused() { ! validate --quiet "$WORK/broken.yaml" > "$WORK/refused.log" 2>&1 && grep -q readOnlyRootFilesytem "$WORK/refused.log"; }
check "the validator refuses a DaemonSet with a misspelled field" refused

check "objects agree with each other and with the repository (check.py)" \
  "$PY" deploy/k8s/tools/check.py

# The agent's arguments as the pod runs them, with the ConfigMaps' files under $WORK.
"$PY" deploy/k8s/tools/check.py --extract "$WORK/pod" > "$WORK/args" 2>/dev/null ||
  die "the manifests are not coherent (check.py above): the policy checks need them to be"
mapfile -t ARGS < "$WORK/args"
POLICIES=()
for a in "${ARGS[@]}"; do
  case $a in --policy=*) POLICIES+=("${a#--policy=}") ;; esac
done
[ "${#POLICIES[@]}" -gt 1 ] || die "check.py --extract gave no --policy arguments"

# clap stops at --help only after it has parsed every argument before it: an unknown option
# fails here as it would in the pod.
check "shrike run accepts the DaemonSet's arguments" \
  sh -c '"$0" run "$@" --help >/dev/null' "$SHRIKE_BIN" "${ARGS[@]}"
compiles() {
  "$SHRIKE_BIN" policy validate --no-default-policy "$@" > "$WORK/validate.log" 2>&1 ||
    { cat "$WORK/validate.log" >&2; return 1; }
}
check "the ConfigMaps compile with --no-default-policy" compiles "${POLICIES[@]}"
same_rules() {
  "$SHRIKE_BIN" policy list > "$WORK/embedded.txt" &&
    "$SHRIKE_BIN" policy list --no-default-policy "${POLICIES[@]}" > "$WORK/configmap.txt" &&
    [ "$(wc -l < "$WORK/embedded.txt")" -gt 50 ] &&
    diff -u "$WORK/embedded.txt" "$WORK/configmap.txt" >&2
}
check "the pod's policy has exactly the embedded pack's rules (shrike policy list)" same_rules
LOCAL="$WORK/pod/etc/shrike/policy.d/local.yaml"
uncommented() {
  # The examples are the commented lines that are YAML list items or their fields.
  sed -n 's/^# \{0,1\}\(- \|  \)/\1/p' "$LOCAL" > "$WORK/local-examples.yaml" &&
    grep -q '^- rule:' "$WORK/local-examples.yaml" &&
    compiles "${POLICIES[@]}" "$WORK/local-examples.yaml"
}
check "the local file's examples compile when uncommented" uncommented

log "Kubernetes manifests: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
