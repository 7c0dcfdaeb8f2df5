#!/usr/bin/env bash
# Checks the localnlb command line: exit codes, error lines, help, the example configurations.
set -euo pipefail
bin=${1:-.build/debug/localnlb}
cd "$(dirname "$0")/.."
. scripts/checks.sh
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# A command outside `check` that fails stops the script (set -e): say which, so a CI log shows it.
trap '[[ $- == *e* ]] && echo "FAIL: cli-check stopped at line $LINENO: $BASH_COMMAND" >&2' ERR

for f in config/*.json; do
  check "check-config --strict $f" "$bin" check-config --strict "$f"
done

cat > "$tmp/bad.json" <<'JSON'
{ "Listeners": [ { "Port": 70000, "DefaultActions": [ { "Type": "forward", "TargetGroupName": "web" } ] } ],
  "TargetGroups": [ { "Name": "web", "Port": 80, "TargetType": "ip",
    "TargetGroupAttributes": [ { "Key": "proxy_protocol_v2.enabled", "Value": "yes" } ] } ] }
JSON
set +e
"$bin" check-config "$tmp/bad.json" > "$tmp/out" 2>&1; code=$?
set -e
check "bad config exits 2" test "$code" -eq 2
check "every problem on its own line" test "$(wc -l < "$tmp/out")" -eq 2
check "the port problem names its path" grep -qxF 'Listeners[0].Port: 70000 is not a port (1-65535)' "$tmp/out"
check "the attribute problem names its path" \
  grep -qxF 'TargetGroups[0].TargetGroupAttributes["proxy_protocol_v2.enabled"]: "yes" is not true or false' "$tmp/out"

set +e
"$bin" serve --config config/ip.json --bogus > "$tmp/out" 2>&1; code=$?
set -e
check "unknown flag exits 64" test "$code" -eq 64
check "unknown flag is named, with usage" grep -q 'unknown option --bogus' "$tmp/out"
check "usage follows" grep -qF 'localnlb serve [--config FILE [--persist]]' "$tmp/out"

for sub in serve check-config target demo ctl; do
  check "$sub --help" sh -c "'$bin' $sub --help | grep -q 'localnlb $sub'"
done

# A port in use: one clear line and exit 1.
python3 - "$tmp/busy.port" <<'PY' &
import socket, sys, time
s = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(1)
open(sys.argv[1], "w").write(str(s.getsockname()[1]))
time.sleep(20)
PY
holder=$!
for _ in $(seq 50); do [ -s "$tmp/busy.port" ] && break; sleep 0.1; done
port=$(cat "$tmp/busy.port")
sed "s/\"Port\": 8082/\"Port\": $port/" config/ip.json > "$tmp/busy.json"
set +e
timeout 10 "$bin" serve --config "$tmp/busy.json" > "$tmp/out" 2>&1; code=$?
set -e
kill "$holder" 2>/dev/null || true
check "port in use exits 1" test "$code" -eq 1
check "port in use is one clear line" \
  grep -qxF "localnlb: listener 127.0.0.1:$port: address already in use (is another localnlb, or another server, on that port?)" "$tmp/out"

# Another localnlb on that port (both would use SO_REUSEPORT): refused the same way, not shared.
"$bin" serve --config "$tmp/busy.json" --event-loops 2 > "$tmp/first.log" 2>&1 &
first=$!
for _ in $(seq 100); do grep -q 'opened, forwarding to' "$tmp/first.log" && break; sleep 0.1; done
set +e
timeout 10 "$bin" serve --config "$tmp/busy.json" --event-loops 2 > "$tmp/out" 2>&1; code=$?
set -e
kill "$first" 2>/dev/null || true
wait "$first" 2>/dev/null || true
check "a second localnlb on the same port exits 1" test "$code" -eq 1
check "the second localnlb says the port is in use" grep -q "127.0.0.1:$port: address already in use" "$tmp/out"

check "ctl help lists the commands" sh -c "'$bin' ctl help | grep -q '^Commands: .*register-targets'"
check "ctl COMMAND --help lists its options, the required ones marked" \
  sh -c "'$bin' ctl register-targets --help | grep -qE '^  --targets +\\(required\\)'"
set +e; "$bin" ctl nope --help > "$tmp/out" 2>&1; code=$?; set -e
check "ctl help of an unknown command is a usage error (252) listing the commands" \
  sh -c "test $code -eq 252 && grep -q 'unknown command nope (one of add-listener-certificates, add-tags, .*register-targets' '$tmp/out'"
check "localnlb version names the release" sh -c "'$bin' version | grep -qxE 'localnlb [0-9]+\.[0-9]+\.[0-9]+'"
check "serve's first log line names the release" grep -qE "localnlb: localnlb [0-9]+\.[0-9]+\.[0-9]+, 2 event loop" "$tmp/first.log"

set +e
"$bin" serve --config config/ip.json --event-loops 0 > "$tmp/out" 2>&1; code=$?
set -e
check "--event-loops 0 is a usage error" test "$code" -eq 64
set +e
"$bin" serve --config config/ip.json --cpu-affinity sometimes > "$tmp/out" 2>&1; code=$?
set -e
check "--cpu-affinity sometimes is a usage error naming off and auto" \
  sh -c "test $code -eq 64 && grep -q 'off (the scheduler places the loops) or auto (one CPU per loop)' '$tmp/out'"

# --cpu-affinity auto: each of the two loops' threads may run on one CPU only; off (the default): any.
cat > "$tmp/affinity.json" <<JSON
{"Listeners": [{"Port": $(free_port), "DefaultActions": [{"Type": "forward", "TargetGroupName": "t"}]}],
 "TargetGroups": [{"Name": "t", "Port": 1, "TargetType": "ip", "Targets": []}], "Admin": {"Enabled": false},
 "Dns": {"Enabled": false}}
JSON
for mode in auto off; do
  "$bin" serve --config "$tmp/affinity.json" --event-loops 2 --cpu-affinity "$mode" > "$tmp/affinity-$mode.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do grep -q 'opened, forwarding to' "$tmp/affinity-$mode.log" && break; sleep 0.1; done
  sleep 0.2
  if kill -0 "$pid" 2> /dev/null; then
    { grep -h '^Cpus_allowed_list:' /proc/"$pid"/task/*/status 2> /dev/null || true; } \
      | awk '$2 ~ /^[0-9]+$/' | wc -l > "$tmp/pinned-$mode"
    kill "$pid" 2> /dev/null || true
  else
    # It stopped by itself (a port taken meanwhile?): the checks below fail, with its log.
    sed "s/^/  serve --cpu-affinity $mode: /" "$tmp/affinity-$mode.log" >&2
    echo 0 > "$tmp/pinned-$mode"
  fi
  wait "$pid" 2>/dev/null || true
done
if [ "$(nproc)" -gt 1 ]; then
  check "--cpu-affinity auto: each event loop stays on one CPU" test "$(cat "$tmp/pinned-auto")" -ge 2
  check "--cpu-affinity off (the default): no thread is held to one CPU" test "$(cat "$tmp/pinned-off")" -eq 0
fi
check "serve --cpu-affinity auto says which CPUs the loops run on" grep -q "event loops on CPUs " "$tmp/affinity-auto.log"

# An event loop whose thread cannot start: serve stops with one line naming the fix, and does not
# hang. Every loop runs on a thread of its own beside the control plane: a user with a process limit
# of 1 gets EAGAIN from pthread_create (root ignores the limit, so
# this runs as nobody, from a directory nobody can read).
if [ "$(id -u)" -eq 0 ] && command -v setpriv >/dev/null; then
  nproc_dir=$(mktemp -d /tmp/localnlb-nproc.XXXXXX)
  chmod 755 "$nproc_dir"
  cp "$bin" "$nproc_dir/localnlb"
  cat > "$nproc_dir/config.json" <<JSON
{ "Admin": { "Enabled": false },
  "Listeners": [ { "Port": $(free_port), "DefaultActions": [ { "Type": "forward", "TargetGroupName": "web" } ] } ],
  "TargetGroups": [ { "Name": "web", "Port": $(free_port), "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1" } ] } ] }
JSON
  chmod 644 "$nproc_dir/config.json"
  set +e
  timeout 20 setpriv --reuid=65534 --regid=65534 --clear-groups bash -c \
    "ulimit -u 1; exec '$nproc_dir/localnlb' serve --config '$nproc_dir/config.json' --event-loops 4 --flow-log off" \
    > "$tmp/out" 2>&1
  code=$?
  set -e
  rm -rf "$nproc_dir"
  check "a loop thread that cannot start exits 1 (not 124, a hang)" test "$code" -eq 1
  check "a loop thread that cannot start is named, with the fix" \
    grep -q "cannot start event loop 0 (pthread_create: Resource temporarily unavailable); run with fewer --event-loops" "$tmp/out"
else
  check "a loop thread that cannot start (needs root for setpriv)" false
fi

# A node address that is not this machine's: one clear line and exit 1 (nothing is sent anywhere).
sed 's/"PrivateIPv4Address": "127.0.0.1"/"PrivateIPv4Address": "192.0.2.1"/' config/ip.json > "$tmp/foreign.json"
set +e
timeout 10 "$bin" serve --config "$tmp/foreign.json" > "$tmp/out" 2>&1; code=$?
set -e
check "foreign node address exits 1" test "$code" -eq 1
check "foreign node address is one clear line" \
  grep -qxF "localnlb: listener 192.0.2.1:8082: address not available: it is not an address of this machine (check SubnetMappings)" "$tmp/out"

# SIGHUP: targets added and removed, an invalid file rejected while the old configuration keeps running.
port_a=$(free_port); port_b=$(free_port); lb_port=$(free_port); admin_port=$(free_port)
"$bin" target --listen "127.0.0.1:$port_a" --name a > /dev/null 2>&1 & target_a=$!
"$bin" target --listen "127.0.0.1:$port_b" --name b > /dev/null 2>&1 & target_b=$!
write_config() { # the targets' ports, then an optional listener port override
  local targets="" p
  for p in $1; do targets="$targets${targets:+, }{ \"Id\": \"127.0.0.1\", \"Port\": $p }"; done
  cat > "$tmp/reload.json" <<JSON
{ "Admin": { "Address": "127.0.0.1:$admin_port" },
  "Listeners": [ { "Port": ${2:-$lb_port}, "DefaultActions": [ { "Type": "forward", "TargetGroupName": "web" } ] } ],
  "TargetGroups": [ { "Name": "web", "Port": 80, "TargetType": "ip", "Targets": [ $targets ] } ] }
JSON
}
states() {
  "$bin" ctl describe-target-health --target-group-name web --endpoint-url "http://127.0.0.1:$admin_port" 2>/dev/null \
    | tr -d ' \n' | grep -o '"Port":[0-9]*},"HealthCheckPort":"[0-9]*","TargetHealth":{"State":"[a-z.]*"' \
    | sed 's/"Port":\([0-9]*\).*"State":"\(.*\)"/\1=\2/' | sort | tr '\n' ' '
}
wait_states() { # the wanted `states` output
  local seen=""
  for _ in $(seq 60); do seen=$(states); [ "$seen" = "$1" ] && return 0; sleep 0.1; done
  echo "states: '$seen', wanted '$1'" >&2; return 1
}
write_config "$port_a"
"$bin" serve --config "$tmp/reload.json" --time-scale 0.01 2> "$tmp/reload.log" & daemon=$!
check "reload: one healthy target" wait_states "$(printf '%s\n' "$port_a=healthy" | sort | tr '\n' ' ')"
write_config "$port_a $port_b"
kill -HUP "$daemon" 2> /dev/null || check "the daemon is still running for SIGHUP" false
check "reload: the added target is registered" \
  wait_states "$(printf '%s\n' "$port_a=healthy" "$port_b=healthy" | sort | tr '\n' ' ')"
write_config "$port_a" 70000
kill -HUP "$daemon" 2> /dev/null || check "the daemon is still running for SIGHUP" false
sleep 0.3
check "reload: an invalid file is rejected with its errors" grep -q 'Listeners\[0\].Port: 70000 is not a port' "$tmp/reload.log"
check "reload: the old configuration keeps running" \
  wait_states "$(printf '%s\n' "$port_a=healthy" "$port_b=healthy" | sort | tr '\n' ' ')"
write_config "$port_a"
sed -i 's/"Name": "web"/"Name": "w\xffb"/' "$tmp/reload.json"
kill -HUP "$daemon" 2> /dev/null || check "the daemon is still running for SIGHUP" false
sleep 0.3
check "reload: a name that is not UTF-8 is refused with its path" \
  grep -q 'TargetGroups\[0\].Name: not valid UTF-8' "$tmp/reload.log"
check "reload: ...and nothing of that file applies" \
  wait_states "$(printf '%s\n' "$port_a=healthy" "$port_b=healthy" | sort | tr '\n' ' ')"
write_config "$port_b"
kill -HUP "$daemon" 2> /dev/null || check "the daemon is still running for SIGHUP" false
check "reload: the removed target drains" \
  wait_states "$(printf '%s\n' "$port_a=draining" "$port_b=healthy" | sort | tr '\n' ' ')"
kill -TERM "$daemon"
set +e; wait "$daemon"; code=$?; set -e
check "serve exits 0 on SIGTERM" test "$code" -eq 0
kill "$target_a" "$target_b" 2>/dev/null || true

# A second SIGINT while draining stops at once and says so; the last line counts flows drained and reset.
"$bin" target --listen "127.0.0.1:$port_a" --name a > /dev/null 2>&1 & target_a=$!
write_config "$port_a"
"$bin" serve --config "$tmp/reload.json" --drain-seconds 60 2> "$tmp/stop.log" & daemon=$!
for _ in $(seq 50); do (exec 3<> "/dev/tcp/127.0.0.1/$lb_port") 2> /dev/null && break; sleep 0.1; done
exec 3<> "/dev/tcp/127.0.0.1/$lb_port"
# Until a loop has accepted it (a connection still in the accept queue at the signal is refused, not drained).
for _ in $(seq 100); do
  "$bin" ctl get-metrics --endpoint-url "http://127.0.0.1:$admin_port" 2>/dev/null \
    | grep -q '^localnlb_active_flow_count{.*} 1$' && break
  sleep 0.1
done
kill -INT "$daemon"
sleep 0.5
started=$(date +%s)
kill -INT "$daemon"
set +e; wait "$daemon"; code=$?; set -e
exec 3>&-
check "a second SIGINT while draining stops at once (not after --drain-seconds 60)" \
  test $(( $(date +%s) - started )) -lt 10
check "...and says so" grep -q "SIGINT again: stopping now; the flows still open are reset" "$tmp/stop.log"
check "the first SIGINT says a second one stops at once" grep -q "(a second SIGINT stops at once)" "$tmp/stop.log"
check "the last line counts the flows drained and reset" \
  sh -c "tail -n 1 '$tmp/stop.log' | grep -q 'stopped: 0 flows drained, 1 reset'"
check "a listener is logged once, as it opens" test "$(grep -c "opened, forwarding to web" "$tmp/stop.log")" -eq 1
check "every event-log line starts with its time, a refused reload's continuation lines too" \
  sh -c "! grep -vqE '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:.]+Z ' '$tmp/reload.log'"

# --log-format json: one object a line, with the time and the message.
"$bin" serve --config "$tmp/reload.json" --log-format json 2> "$tmp/json.log" & daemon=$!
for _ in $(seq 100); do grep -q 'opened, forwarding to' "$tmp/json.log" && break; sleep 0.1; done
kill -TERM "$daemon"
set +e; wait "$daemon"; set -e
check "--log-format json: every line is an object with time and message" python3 -c '
import json, sys
lines = open(sys.argv[1]).read().splitlines()
assert lines and all(set(json.loads(line)) == {"time", "message"} for line in lines), lines
assert any("opened, forwarding to web" in json.loads(line)["message"] for line in lines)
' "$tmp/json.log"
# --admin-address and --dns-address over the file, port 0 taking a free port, said by GET /status.
"$bin" serve --config "$tmp/reload.json" --admin-address 127.0.0.1:0 --dns-address 127.0.0.1:0 2> "$tmp/addr.log" &
daemon=$!
for _ in $(seq 100); do grep -q 'opened, forwarding to' "$tmp/addr.log" && break; sleep 0.1; done
chosen=$(grep -o 'control API on http://127.0.0.1:[0-9]*' "$tmp/addr.log" | sed 's|.*http://||')
check "--admin-address 127.0.0.1:0: the log names the port taken" test -n "$chosen"
check "--admin-address: the file's port is not used" test "$chosen" != "127.0.0.1:$admin_port"
check "GET /status says where the control API and the DNS responder are" python3 -c '
import json, sys, urllib.request
status = json.load(urllib.request.urlopen("http://%s/status" % sys.argv[1]))
assert status["AdminAddress"] == sys.argv[1] and status["DnsAddress"].startswith("127.0.0.1:"), status
assert not status["DnsAddress"].endswith(":0") and not status["DnsAddress"].endswith(":8053"), status
' "$chosen"
kill -TERM "$daemon"
set +e; wait "$daemon"; set -e
set +e; "$bin" serve --config "$tmp/reload.json" --admin-address localhost > "$tmp/out" 2>&1; code=$?; set -e
check "--admin-address without a port is a usage error saying the form" \
  sh -c "test $code -eq 64 && grep -q -- '--admin-address localhost: not ADDRESS:PORT' '$tmp/out'"
set +e; "$bin" serve --config "$tmp/reload.json" --log-format yaml > "$tmp/out" 2>&1; code=$?; set -e
check "--log-format yaml is a usage error naming text and json" \
  sh -c "test $code -eq 64 && grep -q -- '--log-format yaml: text or json' '$tmp/out'"
kill "$target_a" 2>/dev/null || true

# No local port left towards a target (AWS's PortAllocationErrorCount), in a network namespace of its
# own whose ephemeral port range is two ports wide: the flows that find none are reset, counted and
# logged with the fix, and the flow that got a port still works.
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null; then
  cat > "$tmp/ports.json" <<'JSON'
{ "Admin": { "Enabled": true, "Address": "127.0.0.1:9404" },
  "Listeners": [ { "Port": 9100, "DefaultActions": [ { "Type": "forward", "TargetGroupName": "web" } ] } ],
  "TargetGroups": [ { "Name": "web", "Port": 9101, "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1" } ] } ] }
JSON
  cat > "$tmp/ports.sh" <<'SH'
set -eu
bin=$1 dir=$2
ip link set lo up
echo "40000 40001" > /proc/sys/net/ipv4/ip_local_port_range  # this namespace's own range
"$bin" target --listen 127.0.0.1:9101 --name t > /dev/null 2>&1 & target=$!
"$bin" serve --config "$dir/ports.json" --flow-log "$dir/ports-flows.jsonl" 2> "$dir/ports.log" & lb=$!
# localnlb ends its flows (and writes them to the flow log) before this script returns.
trap 'kill "$lb" "$target" 2>/dev/null; wait "$lb" 2>/dev/null || true' EXIT
python3 - "$dir" <<'PY'
import socket, sys, time, urllib.request
for _ in range(100):
    try:
        urllib.request.urlopen("http://127.0.0.1:9404/target-groups", timeout=1).read(); break
    except OSError:
        time.sleep(0.1)
held, answered, error = [], 0, ""
try:
    for i in range(6):
        s = socket.socket()
        held.append(s)
        s.bind(("127.0.0.1", 50000 + i))  # the clients' own ports are outside the narrow range
        s.settimeout(10)
        try:  # a flow without a port may be reset before connect() has even returned
            s.connect(("127.0.0.1", 9100))
            s.sendall(b"hello\n")
            answered += b'"target":"t"' in s.recv(200)
        except OSError:
            pass
    metrics = urllib.request.urlopen("http://127.0.0.1:9404/metrics", timeout=10).read().decode()
    count = [l.split()[-1] for l in metrics.splitlines() if l.startswith("localnlb_port_allocation_error_count_total{")]
except OSError as e:
    count, error = [], f" error={e!r}"
with open(sys.argv[1] + "/ports.result", "w") as f:
    f.write(f"answered={answered} counted={count[0] if count else 'none'}{error}\n")
PY
SH
  set +e
  timeout 60 unshare -n bash "$tmp/ports.sh" "$bin" "$tmp" > "$tmp/out" 2>&1
  set -e
  port_errors=$(grep -c '"closeReason":"port allocation error"' "$tmp/ports-flows.jsonl" 2>/dev/null || true)
  check "port allocation: the flow that got a port is answered" grep -q "answered=[1-9]" "$tmp/ports.result"
  check "port allocation: the flows without one are reset and counted (PortAllocationErrorCount)" \
    test "${port_errors:-0}" -ge 1 -a "$(sed -n 's/.*counted=//p' "$tmp/ports.result")" = "${port_errors:-0}"
  check "port allocation: the log names the fix" grep -q "widen net.ipv4.ip_local_port_range" "$tmp/ports.log"
  grep -q "answered=[1-9] counted=${port_errors:-0}$" "$tmp/ports.result" 2>/dev/null && [ "${port_errors:-0}" -ge 1 ] \
    || {
      echo "port allocation check: $(cat "$tmp/ports.result" 2>/dev/null); flow log: ${port_errors:-0}" >&2
      cat "$tmp/out" "$tmp/ports.log" >&2
    }
else
  check "port allocation (needs root for a network namespace)" false
fi

# serve with no --config: an empty load balancer host, its control API at the default 127.0.0.1:8404,
# here in a network namespace of its own (so no other localnlb's port is touched), driven through the
# ELBv2 API into a working listener.
if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null; then
  cat > "$tmp/empty.sh" <<'SH'
set -eu
bin=$1
ip link set lo up
"$bin" target --listen 127.0.0.1:9201 --name t > /dev/null 2>&1 & target=$!
tmp_out=$(mktemp)
"$bin" serve --flow-log off --time-scale 0.01 2> /dev/null & daemon=$!
trap 'kill "$daemon" "$target" 2>/dev/null; wait "$daemon" 2>/dev/null || true; rm -f "$tmp_out"' EXIT
for _ in $(seq 100); do "$bin" ctl describe-target-groups > "$tmp_out" 2>/dev/null && break; sleep 0.1; done
tr -d ' \n' < "$tmp_out" | grep -qx '{"TargetGroups":\[\]}' && echo empty
# Everything as an AWS CLI user types it, with no --endpoint-url: the default 127.0.0.1:8404.
lb=$("$bin" ctl create-load-balancer --name first --type network --subnets subnet-a --output text \
  | awk '$1 == "LOADBALANCERS" { print $6 }')
tg=$("$bin" ctl --output text create-target-group --name web --protocol TCP --port 9201 --target-type ip \
  --health-check-interval-seconds 5 --healthy-threshold-count 2 | awk '{ print $(NF-4) }')
"$bin" ctl register-targets --target-group-arn "$tg" --targets Id=127.0.0.1
"$bin" ctl create-listener --load-balancer-arn "$lb" --protocol TCP --port 9200 \
  --default-actions Type=forward,TargetGroupArn="$tg" > /dev/null
"$bin" ctl wait target-in-service --target-group-arn "$tg" && echo in-service
python3 - <<'PY'
import socket
with socket.create_connection(("127.0.0.1", 9200), 5) as s:
    s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    reply = b""
    while chunk := s.recv(65536):
        reply += chunk
print("forwarded" if b'"target":"t"' in reply else f"not forwarded: {reply[:200]}")
PY
"$bin" ctl deregister-targets --target-group-arn "$tg" --targets Id=127.0.0.1
"$bin" ctl wait target-deregistered --target-group-arn "$tg" --targets Id=127.0.0.1 && echo deregistered
# Commands that change a load balancer after it is made, and the account's tables, with AWS's JSON types.
"$bin" ctl set-subnets --load-balancer-arn "$lb" --subnets subnet-a subnet-b | python3 -c '
import json, sys
zones = json.load(sys.stdin)["AvailabilityZones"]
print("subnets" if [z["SubnetId"] for z in zones] == ["subnet-a", "subnet-b"] else zones)'
"$bin" ctl describe-ssl-policies --names ELBSecurityPolicy-2016-08 | python3 -c '
import json, sys
policy = json.load(sys.stdin)["SslPolicies"][0]
print("policy" if policy["Ciphers"][0] == {"Name": "ECDHE-ECDSA-AES128-GCM-SHA256", "Priority": 1} else policy)'
"$bin" ctl modify-capacity-reservation --load-balancer-arn "$lb" --minimum-load-balancer-capacity CapacityUnits=3000 \
  | python3 -c '
import json, sys
answer = json.load(sys.stdin)
ok = answer["MinimumLoadBalancerCapacity"] == {"CapacityUnits": 3000} and answer["DecreaseRequestsRemaining"] == 2
print("reserved" if ok and answer["CapacityReservationState"][0]["State"]["Code"] == "pending" else answer)'
SH
  set +e
  timeout 60 unshare -n bash "$tmp/empty.sh" "$bin" > "$tmp/out" 2>&1
  set -e
  check "serve with no --config is an empty host with the control API on 127.0.0.1:8404" grep -qx empty "$tmp/out"
  check "ctl, as the AWS CLI is typed: create-load-balancer, create-target-group, register-targets, create-listener" \
    grep -qx forwarded "$tmp/out"
  check "ctl wait target-in-service, then target-deregistered (timed by the daemon's --time-scale)" \
    sh -c "grep -qx in-service '$tmp/out' && grep -qx deregistered '$tmp/out'"
  check "ctl set-subnets, describe-ssl-policies, modify-capacity-reservation: AWS's shapes and number types" \
    sh -c "grep -qx subnets '$tmp/out' && grep -qx policy '$tmp/out' && grep -qx reserved '$tmp/out'"
  grep -qx forwarded "$tmp/out" && grep -qx reserved "$tmp/out" || cat "$tmp/out" >&2
else
  check "serve with no --config (needs root for a network namespace)" false
fi

check "demo shows UDP keeping the client's address" sh -c "'$bin' demo | grep -q '^ip (UDP) .*127.0.0.2:.*yes, it is the datagram.s source'"
check "demo shows the three modes, and two over TLS" sh -c "'$bin' demo | grep -c 'yes, from the PROXY v2 header\|yes, it is the TCP peer\|no: it sees the load balancer' | grep -qx 5"
check "demo's ALB row: the node as peer, the client in X-Forwarded-For" \
  sh -c "'$bin' demo | grep -q '^ip (ALB) .*127.0.0.1:.* 127.0.0.2 .*yes, from X-Forwarded-For'"
check "demo's TLS row: the client's address from the PROXY v2 header behind a TLS listener" \
  sh -c "'$bin' demo | grep -q '^ip (TLS) .*127.0.0.2:.*yes, from the PROXY v2 header'"

"$bin" demo zones > "$tmp/zones" 2>&1 || true
check "demo zones: cross-zone off keeps each node's flows in its zone" \
  grep -Eq '^cross-zone off .* a a a a +b b b b +127.0.1.1 127.0.2.1$' "$tmp/zones"
check "demo zones: a zone without a healthy target leaves DNS; its node fails open to resets" \
  grep -Eq '^off; target a stops.* RST RST RST RST +b b b b +127.0.2.1$' "$tmp/zones"
check "demo zones: no zone healthy, DNS fails open" grep -Eq '^target b stops too.* 127.0.1.1 127.0.2.1$' "$tmp/zones"
# What the demo printed, when a row is not what it should be: the table says which step went wrong.
grep -Eq '^target b stops too.* 127.0.1.1 127.0.2.1$' "$tmp/zones" || sed 's/^/  demo zones: /' "$tmp/zones"

echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
