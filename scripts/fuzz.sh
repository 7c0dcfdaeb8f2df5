#!/usr/bin/env bash
# Fuzzes the ProxyProtocol parser, the DNS responder's codec, then the control address's front ends
# (JSON, Query and zonal shift APIs, end to end) with libFuzzer for SECONDS each (default 60):
#   scripts/fuzz.sh 600
# Builds Tests/Fuzz/FuzzProxyProtocol.swift with the library's sources (-sanitize=fuzzer,address),
# starts from the seed corpus in Tests/Fuzz/corpus (new inputs go to a scratch copy, not the repo),
# and exits non-zero on a crash, leaving the crashing input in the scratch folder it names (a clean run
# removes its scratch folder, unless FUZZ_DIR named it). A crash found
# becomes a byte-table test in Tests/ProxyProtocolTests.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
if [ -n "${FUZZ_DIR:-}" ]; then
  work=$FUZZ_DIR
else
  # A scratch folder of our own is removed when the run is clean; a crash keeps it for its inputs.
  work=$(mktemp -d /tmp/localnlb-fuzz.XXXXXX)
  trap 'if [ "${keep:-}" != yes ]; then rm -rf "$work"; fi' EXIT
fi
mkdir -p "$work/corpus" "$work/artifacts"
cp Tests/Fuzz/corpus/* "$work/corpus/"
swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name ProxyProtocolFuzz \
  Sources/ProxyProtocol/*.swift Tests/Fuzz/FuzzProxyProtocol.swift -o "$work/fuzz-proxy-protocol"
mkdir -p "$work/dns-corpus"
cp Tests/Fuzz/dns-corpus/* "$work/dns-corpus/"
swiftc -O -sanitize=fuzzer,address -parse-as-library -module-name DNSFuzz \
  Sources/LocalNLBCore/Model/DNSMessage.swift Tests/Fuzz/FuzzDNS.swift -o "$work/fuzz-dns"
echo "fuzz: running for $seconds s (scratch: $work)"
set +e
# Swift's own crash backtracer would fight libFuzzer's signal handlers: libFuzzer reports crashes.
SWIFT_BACKTRACE=enable=no "$work/fuzz-proxy-protocol" "$work/corpus" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
  -artifact_prefix="$work/artifacts/" -print_final_stats=1 2> "$work/fuzz.log"
code=$?
set -e
grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb|Done)" "$work/fuzz.log" || true
if [ "$code" -ne 0 ]; then
  tail -40 "$work/fuzz.log" >&2
  echo "fuzz: crash; inputs in $work/artifacts" >&2
  keep=yes
  exit 1
fi
echo "fuzz: clean after $seconds s, corpus grew to $(ls "$work/corpus" | wc -l) inputs"
# The DNS responder's codec, for as long.
set +e
SWIFT_BACKTRACE=enable=no "$work/fuzz-dns" "$work/dns-corpus" -max_total_time="$seconds" -max_len=1024 -timeout=10 \
  -artifact_prefix="$work/artifacts/dns-" -print_final_stats=1 2> "$work/fuzz-dns.log"
code=$?
set -e
if [ "$code" -ne 0 ]; then
  tail -40 "$work/fuzz-dns.log" >&2
  echo "fuzz: DNS codec crash; inputs in $work/artifacts" >&2
  keep=yes
  exit 1
fi
echo "fuzz: DNS codec clean after $seconds s, corpus grew to $(ls "$work/dns-corpus" | wc -l) inputs"

# The control address's front ends, end to end: the whole LocalNLBCore module built with the harness,
# the C shim and the ProxyProtocol module beside it. It runs in a network namespace of its own (root:
# `unshare -n`; otherwise a user namespace, `unshare -rn`): an input's CreateListener binds real ports.
mkdir -p "$work/api-corpus" "$work/api-build"
cp Tests/Fuzz/api-corpus/* "$work/api-corpus/"
clang -c -O1 -g -fsanitize=fuzzer-no-link,address -D_GNU_SOURCE -I Sources/CLocalNLB/include \
  Sources/CLocalNLB/shim.c -o "$work/api-build/shim.o"
cat > "$work/api-build/module.modulemap" <<MAP
module CLocalNLB {
    header "$PWD/Sources/CLocalNLB/include/CLocalNLB.h"
    export *
}
MAP
swiftc -O -wmo -sanitize=fuzzer,address -parse-as-library -swift-version 6 -module-name ProxyProtocol \
  -emit-module -emit-module-path "$work/api-build/ProxyProtocol.swiftmodule" \
  Sources/ProxyProtocol/*.swift -c -o "$work/api-build/ProxyProtocol.o"
swiftc -O -wmo -sanitize=fuzzer,address -parse-as-library -swift-version 6 -module-name LocalNLBCore \
  -I "$work/api-build" -Xcc -fmodule-map-file="$work/api-build/module.modulemap" \
  $(find Sources/LocalNLBCore -name '*.swift') Tests/Fuzz/FuzzAPI.swift \
  "$work/api-build/ProxyProtocol.o" "$work/api-build/shim.o" -o "$work/fuzz-api" 2> >(grep -v "Cannot export local symbol" >&2)
if [ "$(id -u)" -eq 0 ]; then isolate=(unshare -n); else isolate=(unshare -rn); fi
set +e
SWIFT_BACKTRACE=enable=no "${isolate[@]}" sh -c 'ip link set lo up 2>/dev/null || true; exec "$@"' sh \
  "$work/fuzz-api" "$work/api-corpus" -max_total_time="$seconds" -max_len=8192 -timeout=10 -rss_limit_mb=4096 \
  -artifact_prefix="$work/artifacts/api-" -print_final_stats=1 2> "$work/fuzz-api.log"
code=$?
set -e
grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)" "$work/fuzz-api.log" || true
if [ "$code" -ne 0 ]; then
  tail -40 "$work/fuzz-api.log" >&2
  echo "fuzz: control API crash; inputs in $work/artifacts" >&2
  keep=yes
  exit 1
fi
echo "fuzz: control API clean after $seconds s, corpus grew to $(ls "$work/api-corpus" | wc -l) inputs"
