#!/usr/bin/env bash
# Benchmarks LocalNLB against HAProxy and nginx's stream module doing the same job, and against no
# proxy at all, in one run on loopback:
#   scripts/bench.sh            full run (5 s per measurement, 3 rounds)
#   scripts/bench.sh --quick    short run (1 s per measurement, 3 rounds)
#   scripts/bench.sh --baseline OLD/localnlb   an earlier build as a fifth contender (an A/B in one run)
#   scripts/bench.sh --only tcp,tcp-pp         some workloads (throughput, udp, tcp, tcp-pp, idle, tls)
#   scripts/bench.sh --affinity                every proxy's threads kept one per CPU
# Installs what it needs (iperf3, wrk, nginx with its stream module, haproxy, dnsmasq, dnsperf, perf) when missing, builds
# localnlb in release mode, and prints one table. A benchmark, never a pass/fail test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pair in iperf3:iperf3 wrk:wrk nginx:nginx haproxy:haproxy python3:python3 dnsmasq:dnsmasq-base dnsperf:dnsperf perf:linux-perf openssl:openssl; do
  command -v "${pair%%:*}" >/dev/null || need+=("${pair##*:}")
done
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || need+=(libnginx-mod-stream)
if [ ${#need[@]} -gt 0 ]; then
  echo "== installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

echo "== swift build -c release"
swift build -c release --product localnlb 2>&1 | tail -1
exec python3 scripts/bench.py --localnlb "$(swift build -c release --show-bin-path)/localnlb" "$@"
