#!/usr/bin/env bash
# A new user's first hour, checked: the release binary (scripts/release.sh) runs where the Swift
# toolchain is hidden, and after scripts/install.sh the README's "Drive it with AWS's own API"
# walkthrough runs verbatim, with the AWS CLI from PyPI. Both run in a mount and network namespace of
# their own (needs root): the toolchain's directory is covered by an empty tmpfs, and the walkthrough's
# fixed ports (8404, 8080, 9001) are the namespace's, never the machine's.
#   scripts/release-check.sh AWS_VENV    (a virtual environment with awscli, as scripts/test.sh makes)
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/checks.sh
venv=$(readlink -f "${1:?usage: scripts/release-check.sh AWS_VENV}")
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

scripts/install.sh "$tmp/prefix" > "$tmp/install.log" 2>&1 || { cat "$tmp/install.log" >&2; exit 1; }
bin=$tmp/prefix/bin/localnlb
# The toolchain: where swift's own binary lives, two levels up (/opt/swift/usr for /opt/swift/usr/bin/swift).
toolchain=$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")
check "scripts/install.sh PREFIX installs PREFIX/bin/localnlb and says to put PREFIX/bin on PATH" \
  sh -c "test -x '$bin' && grep -q 'not on PATH' '$tmp/install.log'"
check "the release binary links no Swift library" sh -c "! ldd '$bin' | grep -qi swift"

# 1. Where Swift is not installed.
cat > "$tmp/hidden.sh" <<'SH'
set -u
toolchain=$1 bin=$2
mount -t tmpfs none "$toolchain"
ip link set lo up
if swift --version > /dev/null 2>&1; then echo "swift still runs"; fi
ls "$toolchain" | grep -q . && echo "toolchain still visible"
"$bin" version | grep -qE '^localnlb [0-9]+\.[0-9]+\.[0-9]+$' && echo version-ok
"$bin" check-config config/cdk-nlb-proxy-v2.template.json > /dev/null 2>&1 && echo template-ok
"$bin" demo 2>&1 | grep -q 'yes, from the PROXY v2 header' && echo demo-ok
SH
unshare -m -n bash "$tmp/hidden.sh" "$toolchain" "$bin" > "$tmp/hidden.out" 2>&1 || true
check "with the toolchain hidden, swift is gone" sh -c "! grep -q 'still' '$tmp/hidden.out'"
check "with the toolchain hidden, the release binary runs: version, a template's check-config, demo" \
  sh -c "grep -qx version-ok '$tmp/hidden.out' && grep -qx template-ok '$tmp/hidden.out' && grep -qx demo-ok '$tmp/hidden.out'"
grep -qx demo-ok "$tmp/hidden.out" || cat "$tmp/hidden.out" >&2

# 2. The README's walkthrough, verbatim: its first sh block after "### Drive it with AWS's own API".
awk '/^### Drive it with AWS.s own API/ { found = 1 } found && /^```sh$/ { inside = 1; next }
     inside && /^```$/ { exit } inside { print }' README.md > "$tmp/walkthrough.sh"
check "the README has the walkthrough" grep -q 'create-load-balancer' "$tmp/walkthrough.sh"
cat > "$tmp/run.sh" <<SH
set -e
mount -t tmpfs none "$toolchain"
ip link set lo up
export PATH="$tmp/prefix/bin:$venv/bin:\$PATH"
cd "$tmp"
$(cat "$tmp/walkthrough.sh")
curl -s --max-time 5 http://127.0.0.1:8080/ | grep -q '"target":"a"' && echo walkthrough-ok
kill %1 %2 2> /dev/null || true
wait
SH
timeout 120 unshare -m -n bash "$tmp/run.sh" > "$tmp/run.out" 2>&1 || true
check "the README's walkthrough runs verbatim after scripts/install.sh, with no toolchain and the AWS CLI" \
  grep -qx walkthrough-ok "$tmp/run.out"
grep -qx walkthrough-ok "$tmp/run.out" || cat "$tmp/run.out" >&2

echo "release: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
