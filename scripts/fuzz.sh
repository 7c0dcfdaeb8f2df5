#!/usr/bin/env bash
# Fuzzes the ProxyProtocol parser, the DNS responder's codec, the HTTP reader of application load
# balancers, then the control address's front ends
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
  Sources/ProxyProtocol/*.swift Tests/Fuzz/FuzzProxyProtocol.swift -o "$work/fuzz-proxy-protocol" \
  2> >(grep -v "Cannot export local symbol" >&2)
mkdir -p "$work/dns-corpus"
cp Tests/Fuzz/dns-corpus/* "$work/dns-corpus/"
swiftc -O -sanitize=fuzzer,address -parse-as-library -package-name LocalNLB -module-name DNSFuzz \
  Sources/LocalNLBModel/DNSMessage.swift Tests/Fuzz/FuzzDNS.swift -o "$work/fuzz-dns" 2> >(grep -v "Cannot export local symbol" >&2)
echo "fuzz: running for $seconds s (scratch: $work)"
# run_fuzzer LABEL LOG CORPUS MAX_LEN ARTIFACT_PREFIX COMMAND...: runs COMMAND (a fuzzer, possibly
# behind a wrapper) on CORPUS for $seconds; on a crash, shows its log and keeps the scratch folder.
run_fuzzer() {
  local label=$1 log=$2 corpus=$3 max_len=$4 prefix=$5
  shift 5
  set +e
  # Swift's own crash backtracer would fight libFuzzer's signal handlers: libFuzzer reports crashes.
  SWIFT_BACKTRACE=enable=no "$@" "$corpus" -max_total_time="$seconds" -max_len="$max_len" -timeout=10 \
    -rss_limit_mb=4096 -artifact_prefix="$work/artifacts/$prefix" -print_final_stats=1 2> "$log"
  local code=$?
  set -e
  grep -E "^(stat::number_of_executed_units|stat::peak_rss_mb)" "$log" || true
  if [ "$code" -ne 0 ]; then
    tail -40 "$log" >&2
    echo "fuzz: $label crash; inputs in $work/artifacts" >&2
    keep=yes
    exit 1
  fi
  echo "fuzz: $label clean after $seconds s, corpus grew to $(ls "$corpus" | wc -l) inputs"
}
run_fuzzer "PROXY parser" "$work/fuzz.log" "$work/corpus" 4096 "" "$work/fuzz-proxy-protocol"
run_fuzzer "DNS codec" "$work/fuzz-dns.log" "$work/dns-corpus" 1024 dns- "$work/fuzz-dns"
# The application load balancer's HTTP/1.x reader: request and response heads, chunked bodies.
mkdir -p "$work/http-corpus"
cp Tests/Fuzz/http-corpus/* "$work/http-corpus/"
swiftc -O -sanitize=fuzzer,address -parse-as-library -package-name LocalNLB -module-name HTTPFuzz \
  Sources/LocalNLBDataPlane/HTTP/HTTPParser.swift Tests/Fuzz/FuzzHTTP.swift -o "$work/fuzz-http" \
  2> >(grep -v "Cannot export local symbol" >&2)
run_fuzzer "HTTP reader" "$work/fuzz-http.log" "$work/http-corpus" 8192 http- "$work/fuzz-http"

# The control address's front ends, end to end: the modules below the control plane built as modules,
# then the LocalNLBControl module with the harness in it, the C shim and ProxyProtocol beside them. It
# runs in a network namespace of its own (root: `unshare -n`; otherwise a user namespace,
# `unshare -rn`): an input's CreateListener binds real ports.
mkdir -p "$work/api-corpus" "$work/api-build"
cp Tests/Fuzz/api-corpus/* "$work/api-corpus/"
clang -c -O1 -g -fsanitize=fuzzer-no-link,address -D_GNU_SOURCE -I Sources/CLocalNLB/include \
  Sources/CLocalNLB/shim.c -o "$work/api-build/shim.o"
cat > "$work/api-build/module.modulemap" <<MAP
module CLocalNLB {
    header "$PWD/Sources/CLocalNLB/include/CLocalNLB.h"
    export *
}
module CLocalNLBTLS [system] {
    header "$PWD/Sources/CLocalNLBTLS/shim.h"
    link "ssl"
    link "crypto"
    export *
}
MAP
# build_module NAME: Sources/NAME as a module (.swiftmodule and .o) in the build folder.
build_module() {
  swiftc -O -wmo -sanitize=fuzzer,address -parse-as-library -swift-version 6 -package-name LocalNLB \
    -module-name "$1" -I "$work/api-build" -Xcc -fmodule-map-file="$work/api-build/module.modulemap" \
    -emit-module -emit-module-path "$work/api-build/$1.swiftmodule" \
    $(find "Sources/$1" -name '*.swift') -c -o "$work/api-build/$1.o"
}
build_module ProxyProtocol
build_module LocalNLBModel
build_module LocalNLBDataPlane
swiftc -O -wmo -sanitize=fuzzer,address -parse-as-library -swift-version 6 -package-name LocalNLB \
  -module-name LocalNLBControl -I "$work/api-build" -Xcc -fmodule-map-file="$work/api-build/module.modulemap" \
  $(find Sources/LocalNLBControl -name '*.swift') Tests/Fuzz/FuzzAPI.swift \
  "$work/api-build/"{ProxyProtocol,LocalNLBModel,LocalNLBDataPlane}.o "$work/api-build/shim.o" -lssl -lcrypto \
  -o "$work/fuzz-api" 2> >(grep -v "Cannot export local symbol" >&2)
if [ "$(id -u)" -eq 0 ]; then isolate=(unshare -n); else isolate=(unshare -rn); fi
# RequestCertificate makes a certificate authority: in the scratch folder.
export LOCALNLB_CA_DIR="$work/ca"
run_fuzzer "control API" "$work/fuzz-api.log" "$work/api-corpus" 8192 api- \
  "${isolate[@]}" sh -c 'ip link set lo up 2>/dev/null || true; exec "$@"' sh "$work/fuzz-api"
