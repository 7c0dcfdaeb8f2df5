#!/usr/bin/env bash
# Availability Zones on loopback with real clients: curl through each zone's node, dig against the
# DNS responder. Two zones (127.0.1.0/24 us-east-1a, 127.0.2.0/24 us-east-1b), a target in each.
#   scripts/zones-check.sh [.build/debug/localnlb]
set -euo pipefail
bin=${1:-.build/debug/localnlb}
cd "$(dirname "$0")/.."
. scripts/checks.sh
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
admin=$(free_port); dns=$(free_port); port=$(free_port); tport=$(free_port)
cat > "$tmp/zones.json" <<JSON
{ "Admin": { "Address": "127.0.0.1:$admin" }, "Dns": { "Address": "127.0.0.1:$dns" },
  "Subnets": [
    { "SubnetId": "subnet-a", "AvailabilityZone": "us-east-1a", "CidrBlock": "127.0.1.0/24" },
    { "SubnetId": "subnet-b", "AvailabilityZone": "us-east-1b", "CidrBlock": "127.0.2.0/24" },
    { "SubnetId": "subnet-c", "AvailabilityZone": "us-east-1c", "CidrBlock": "127.0.3.0/24" } ],
  "LoadBalancer": { "Name": "zones", "SubnetMappings": [
    { "SubnetId": "subnet-a", "PrivateIPv4Address": "127.0.1.1" },
    { "SubnetId": "subnet-b", "PrivateIPv4Address": "127.0.2.1" } ] },
  "Listeners": [ { "Port": $port, "DefaultActions": [ { "Type": "forward", "TargetGroupName": "web" } ] } ],
  "TargetGroups": [ { "Name": "web", "Port": $tport, "TargetType": "ip", "HealthCheckIntervalSeconds": 5,
    "HealthyThresholdCount": 2, "UnhealthyThresholdCount": 2,
    "Targets": [ { "Id": "127.0.1.10" }, { "Id": "127.0.2.10" } ] } ] }
JSON
ctl() { "$bin" ctl --endpoint-url "http://127.0.0.1:$admin" "$@"; }
target() { "$bin" target --listen "$1:$tport" --name "$2" > /dev/null 2>&1 & pids+=($!); echo $!; }
# What the name resolves to, sorted on one line; $1: dig's extra options.
resolve() { dig @127.0.0.1 -p "$dns" $1 "$dnsname" A +short +tries=1 +time=2 | sort | tr '\n' ' '; }
wait_for() { # the wanted `resolve` output, within 10 s
  local seen=""
  for _ in $(seq 100); do seen=$(resolve ""); [ "$seen" = "$1" ] && return 0; sleep 0.1; done
  echo "DNS: '$seen', wanted '$1'" >&2; return 1
}
# Which target each of four requests through a node reached, sorted and counted.
through() {
  for _ in 1 2 3 4; do curl -s --max-time 3 "http://$1:$port/" | grep -o '"target":"[a-z]*"' | cut -d'"' -f4; done \
    | sort | uniq -c | tr -s ' \n' ' '
}

target_a=$(target 127.0.1.10 a)
"$bin" serve --config "$tmp/zones.json" --time-scale 0.01 --flow-log off 2> "$tmp/lb.log" & pids+=($!)
for _ in $(seq 100); do ctl describe-load-balancers > /dev/null 2>&1 && break; sleep 0.1; done
dnsname=$(ctl describe-load-balancers --output text | awk '$1 == "LOADBALANCERS" { print $4 }')

check "DNS: only zone a has a healthy target: the name resolves to zone a's node" wait_for "127.0.1.1 "
check "DNS over TCP answers the same" test "$(resolve +tcp)" = "127.0.1.1 "
target_b=$(target 127.0.2.10 b)
check "DNS: zone b's target turns healthy: both nodes" wait_for "127.0.1.1 127.0.2.1 "
check "cross-zone off (NLB's default): zone a's node reaches zone a's target only" \
  test "$(through 127.0.1.1)" = " 4 a "
check "cross-zone off: zone b's node reaches zone b's target only" test "$(through 127.0.2.1)" = " 4 b "
ctl modify-load-balancer-attributes --load-balancer-arn "$(ctl describe-load-balancers --output text \
  | awk '$1 == "LOADBALANCERS" { print $6 }')" --attributes Key=load_balancing.cross_zone.enabled,Value=true > /dev/null
check "cross-zone on: zone a's node reaches both zones' targets" test "$(through 127.0.1.1)" = " 2 a 2 b "
ctl modify-target-group-attributes --target-group-name web \
  --attributes Key=load_balancing.cross_zone.enabled,Value=false > /dev/null
check "the target group's cross-zone off wins over the load balancer's on" test "$(through 127.0.1.1)" = " 4 a "
ctl get-metrics > "$tmp/metrics"
check "metrics: flows per node, with its zone (12 through zone a's node, 4 through zone b's)" sh -c "
  grep -qx 'localnlb_node_new_flow_count_total{load_balancer=\"zones\",availability_zone=\"us-east-1a\",node=\"127.0.1.1:$port\"} 12' '$tmp/metrics' &&
  grep -qx 'localnlb_node_new_flow_count_total{load_balancer=\"zones\",availability_zone=\"us-east-1b\",node=\"127.0.2.1:$port\"} 4' '$tmp/metrics'"
check "metrics: healthy hosts per zone" sh -c "
  grep -qx 'localnlb_zone_healthy_host_count{load_balancer=\"zones\",target_group=\"web\",availability_zone=\"us-east-1b\"} 1' '$tmp/metrics'"
lb_arn=$(ctl describe-load-balancers --output text | awk '$1 == "LOADBALANCERS" { print $6 }')
ctl modify-load-balancer-attributes --load-balancer-arn "$lb_arn" \
  --attributes Key=dns_record.client_routing_policy,Value=availability_zone_affinity > /dev/null
check "availability_zone_affinity: an asker in zone b gets zone b's node" \
  test "$(resolve '-b 127.0.2.50')" = "127.0.2.1 "
check "availability_zone_affinity: an asker in zone a gets zone a's node" \
  test "$(resolve '-b 127.0.1.50')" = "127.0.1.1 "
check "availability_zone_affinity: an asker in no zone gets every healthy zone" \
  test "$(resolve '')" = "127.0.1.1 127.0.2.1 "
ctl modify-load-balancer-attributes --load-balancer-arn "$lb_arn" \
  --attributes Key=dns_record.client_routing_policy,Value=partial_availability_zone_affinity > /dev/null
zonal=0
for _ in $(seq 20); do [ "$(resolve '-b 127.0.2.50')" = "127.0.2.1 " ] && zonal=$((zonal + 1)); done
check "partial_availability_zone_affinity: 85 answers in 100 keep the asker's zone (17 of 20 here)" test "$zonal" -eq 17
ctl modify-load-balancer-attributes --load-balancer-arn "$lb_arn" \
  --attributes Key=dns_record.client_routing_policy,Value=availability_zone_affinity > /dev/null
ctl register-targets --target-group-name web --targets Id=127.0.3.10 > /dev/null
check "a target in a zone without a node (us-east-1c) is unused / Target.NotInUse" sh -c "
  '$bin' ctl --endpoint-url http://127.0.0.1:$admin describe-target-health --target-group-name web \
    --targets Id=127.0.3.10 --output text | grep -q 'Target.NotInUse'"
ctl deregister-targets --target-group-name web --targets Id=127.0.3.10 > /dev/null
# A zonal shift (ARC's calls): zone a's node leaves DNS until the shift ends.
ctl modify-load-balancer-attributes --load-balancer-arn "$lb_arn" \
  --attributes Key=zonal_shift.config.enabled,Value=true > /dev/null
shift_id=$(ctl start-zonal-shift --resource-identifier "$lb_arn" --away-from us-east-1a --expires-in 1h \
  --comment check --output text | awk '{ print $NF }')
check "start-zonal-shift away from us-east-1a: the name resolves to zone b's node only" \
  test "$(resolve '')" = "127.0.2.1 "
check "a second shift of the same load balancer is a ConflictException" sh -c "
  '$bin' ctl --endpoint-url http://127.0.0.1:$admin start-zonal-shift --resource-identifier '$lb_arn' \
    --away-from us-east-1b --expires-in 1h 2>&1 | grep -q 'An error occurred (ConflictException)'"
ctl cancel-zonal-shift --zonal-shift-id "$shift_id" > /dev/null
check "cancel-zonal-shift: both nodes again; list-zonal-shifts says CANCELED" sh -c "
  test \"\$(dig @127.0.0.1 -p $dns $dnsname A +short | sort | tr '\n' ' ')\" = '127.0.1.1 127.0.2.1 ' &&
  '$bin' ctl --endpoint-url http://127.0.0.1:$admin list-zonal-shifts --output text | grep -q CANCELED"
kill "$target_a"
check "DNS: zone a loses its target: the name resolves to zone b's node" wait_for "127.0.2.1 "
check "availability_zone_affinity, the asker's zone unhealthy: the healthy zone's node" \
  test "$(resolve '-b 127.0.1.50')" = "127.0.2.1 "
kill "$target_b"
check "DNS: no zone healthy: fails open to every node" wait_for "127.0.1.1 127.0.2.1 "
check "a name it does not own is REFUSED" sh -c "dig @127.0.0.1 -p $dns example.com +tries=1 | grep -q 'status: REFUSED'"
check "a name of ours with no record of the type: NOERROR, no answer" \
  sh -c "dig @127.0.0.1 -p $dns $dnsname MX +tries=1 | grep -q 'status: NOERROR.*' && dig @127.0.0.1 -p $dns $dnsname MX +tries=1 | grep -q 'ANSWER: 0'"
formerr=$(python3 - "$dns" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(2)
s.sendto(bytes([0xAB, 0xCD, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0]) + b"\x01a\x00\x00\x01\x00\x01", ("127.0.0.1", int(sys.argv[1])))
reply = s.recv(512)
s.sendto(b"\x00\x01", ("127.0.0.1", int(sys.argv[1])))  # too short: dropped, the responder carries on
print("formerr" if reply[:2] == b"\xab\xcd" and reply[3] & 0x0F == 1 else f"got {reply!r}")
PY
)
check "a malformed query is FORMERR, a runt is dropped" test "$formerr" = formerr
check "the responder still answers after them" test "$(resolve '')" = "127.0.1.1 127.0.2.1 "
check "the event log says when a zone turns unhealthy and what DNS answers then" \
  sh -c "grep -q 'zone us-east-1a unhealthy' '$tmp/lb.log' && grep -q 'DNS answers 127.0.2.1\$' '$tmp/lb.log'"

check "the zone's line comes after the target change that caused it" python3 -c '
import sys
lines = open(sys.argv[1]).read().splitlines()
zone = next(i for i, line in enumerate(lines) if "zone us-east-1a unhealthy" in line)
target = next(i for i, line in enumerate(lines) if "target 127.0.1.10:" + sys.argv[2] in line and "→ unhealthy" in line)
assert target < zone, lines[min(target, zone):max(target, zone) + 1]
' "$tmp/lb.log" "$tport"

echo "zones: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
