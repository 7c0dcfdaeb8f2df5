#!/usr/bin/env bash
# Fuzzes the ProxyProtocol parser, then the DNS responder's codec, with libFuzzer for SECONDS each
# (default 60):
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
