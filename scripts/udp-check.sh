#!/usr/bin/env bash
# UDP and TCP_UDP listeners with real peers nobody here wrote: dnsmasq answering dig through a UDP
# listener, iperf3 -u through a TCP_UDP listener (control over TCP, data over UDP, one port), and
# localnlb's own UDP target showing the client's address. Everything on loopback, ports chosen free.
#   scripts/udp-check.sh [.build/debug/localnlb]
set -euo pipefail
bin=${1:-.build/debug/localnlb}
cd "$(dirname "$0")/.."
. scripts/checks.sh
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
admin=$(free_port); dns_target=$(free_port); dns_listener=$(free_port)
iperf_target=$(free_port); iperf_listener=$(free_port); report_target=$(free_port); report_listener=$(free_port)
cat > "$tmp/udp.json" <<JSON
{ "Admin": { "Address": "127.0.0.1:$admin" }, "Dns": { "Enabled": false },
  "LoadBalancer": { "Name": "udp", "SubnetMappings": [ { "SubnetId": "s", "PrivateIPv4Address": "127.0.0.1" } ] },
  "Listeners": [
    { "Port": $dns_listener, "Protocol": "UDP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "dns" } ] },
    { "Port": $iperf_listener, "Protocol": "TCP_UDP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "iperf" } ] },
    { "Port": $report_listener, "Protocol": "UDP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "report" } ] } ],
  "TargetGroups": [
    { "Name": "dns", "Port": $dns_target, "Protocol": "UDP", "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1" } ] },
    { "Name": "iperf", "Port": $iperf_target, "Protocol": "TCP_UDP", "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1" } ] },
    { "Name": "report", "Port": $report_target, "Protocol": "UDP", "TargetType": "instance",
      "Targets": [ { "Id": "127.0.0.1" } ] } ] }
JSON
dnsmasq --no-daemon --no-resolv --no-hosts --port="$dns_target" --listen-address=127.0.0.1 --bind-interfaces \
  --address=/example.test/192.0.2.7 --log-queries --log-facility=- > "$tmp/dnsmasq.log" 2>&1 & pids+=($!)
iperf3 -s -p "$iperf_target" > "$tmp/iperf-server.log" 2>&1 & pids+=($!)
"$bin" target --listen "127.0.0.1:$report_target" --name r --udp > /dev/null 2>&1 & pids+=($!)
"$bin" serve --config "$tmp/udp.json" --flow-log "$tmp/flows.jsonl" --time-scale 0.01 2> "$tmp/lb.log" & pids+=($!)
for _ in $(seq 100); do "$bin" ctl --endpoint-url "http://127.0.0.1:$admin" describe-load-balancers > /dev/null 2>&1 && break; sleep 0.1; done
# dnsmasq answering by itself first: a query that reached it before it listened would be lost (a CI run
# on a loaded machine once saw that).
for _ in $(seq 50); do
  [ "$(dig @127.0.0.1 -p "$dns_target" example.test A +short +tries=1 +time=1 2>/dev/null)" = 192.0.2.7 ] && break
  sleep 0.1
done

answer=$(dig @127.0.0.1 -p "$dns_listener" -b 127.0.0.2 example.test A +short +tries=2 +time=2 || true)
check "dig through a UDP listener to dnsmasq: the answer comes back" test "$answer" = "192.0.2.7"
check "dnsmasq logged the client's address, kept by the UDP listener" grep -q 'query\[A\] example.test from 127.0.0.2' "$tmp/dnsmasq.log"
check "dig over TCP to the same UDP listener is refused (a UDP listener has no TCP port)" \
  sh -c "! dig @127.0.0.1 -p $dns_listener example.test +tcp +short +tries=1 +time=2 | grep -q 192.0.2.7"

iperf3 -c 127.0.0.1 -p "$iperf_listener" -u -b 50M -t 2 -B 127.0.0.2 > "$tmp/iperf.log" 2>&1 || true
check "iperf3 -u through a TCP_UDP listener: control over TCP, datagrams over UDP, one port" \
  grep -q 'receiver' "$tmp/iperf.log"
lost=$(awk '/receiver/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\/[0-9]+$/) print $i }' "$tmp/iperf.log")
check "iperf3 -u: no datagram lost on loopback ($lost)" test "${lost%%/*}" = 0
check "iperf3's server saw the client's address on both channels" \
  sh -c "grep -q 'Accepted connection from 127.0.0.2' '$tmp/iperf-server.log' && grep -q 'connected to 127.0.0.2' '$tmp/iperf-server.log'"

report=$(python3 - "$report_listener" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.3", 0))
s.settimeout(3)
s.sendto(b"hello", ("127.0.0.1", int(sys.argv[1])))
data, sender = s.recvfrom(65536)
report = json.loads(data)
ok = report["peer"].startswith("127.0.0.3:") and sender == ("127.0.0.1", int(sys.argv[1])) and report["bytes"] == 5
print("ok" if ok else f"{report} from {sender}")
PY
)
check "localnlb target --udp: it saw the client's address; the answer came from the listener" test "$report" = ok
check "describe-flows lists the live UDP flow" sh -c "
  '$bin' ctl --endpoint-url http://127.0.0.1:$admin describe-flows | tr -d ' \n' | grep -q '\"protocol\":\"UDP\",\"targetGroup\":\"report\"'"
"$bin" ctl --endpoint-url "http://127.0.0.1:$admin" get-metrics > "$tmp/metrics"
check "metrics: UDP flows and datagrams counted" sh -c "
  grep -q '^localnlb_new_flow_count_udp_total{load_balancer=\"udp\",target_group=\"dns\"} [1-9]' '$tmp/metrics' &&
  grep -q '^localnlb_processed_packets_total{load_balancer=\"udp\",target_group=\"iperf\"} [1-9]' '$tmp/metrics'"
check "UDP flows idle out after 120 s scaled (1.2 s here) and the flow log says UDP" sh -c "
  for i in \$(seq 50); do grep -q '\"protocol\":\"UDP\".*\"closeReason\":\"idle timeout\"' '$tmp/flows.jsonl' && exit 0; sleep 0.1; done; exit 1"

echo "udp: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
