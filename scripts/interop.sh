#!/usr/bin/env bash
# Real PROXY protocol peers nobody here wrote, both directions, and hostile clients.
#
# nginx receiving: with `listen … proxy_protocol` behind localnlb it must log the
# client's own address and port — for PROXY v2 as NLB shapes it, v2 without TLVs, and Classic v1 —
# and, with set_real_ip_from + real_ip_header proxy_protocol (seed 001's fix), use it as $remote_addr.
# With PROXY v2 on, nginx must also pass the health checks (their LOCAL header as NLB sends it) and log
# no "broken header". Also checks that `localnlb serve` exits 0 on SIGTERM.
set -euo pipefail
bin=$(realpath "${1:-.build/debug/localnlb}")
cd "$(dirname "$0")/.."
for program in nginx haproxy curl python3; do
  command -v "$program" >/dev/null || { echo "$program is not installed (scripts/test.sh installs it)" >&2; exit 1; }
done

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
  [ -f "$tmp/haproxy.pid" ] && kill "$(cat "$tmp/haproxy.pid")" 2>/dev/null || true
  sleep 0.2
  rm -rf "$tmp"
}
trap cleanup EXIT

# A GET from 127.0.0.2 with a known source port; sets client_port and body. A port chosen a moment
# earlier can be taken in between (curl exit 45): then another one is tried.
curl_from_client() {
  local attempt
  for attempt in 1 2 3 4 5; do
    client_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.2",0)); print(s.getsockname()[1])')
    body=$(curl -sS --max-time 5 --interface 127.0.0.2 --local-port "$client_port" "$1" 2> "$tmp/curl.err") && return 0
    grep -q "(45)" "$tmp/curl.err" || { cat "$tmp/curl.err" >&2; return 1; }
  done
  cat "$tmp/curl.err" >&2
  return 1
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_for_port() { # host port: wait up to 10 s for a listener
  for _ in $(seq 100); do
    python3 -c "import socket,sys; socket.create_connection(('$1', $2), 0.2).close()" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on $1:$2 after 10 s" >&2; return 1
}

nginx_port=$(free_port)
mkdir -p "$tmp/nginx-temp"
cat > "$tmp/nginx.conf" <<NGINX
daemon on;
worker_processes 1;
pid $tmp/nginx.pid;
error_log $tmp/nginx-error.log;
events { worker_connections 64; }
http {
    client_body_temp_path $tmp/nginx-temp;
    proxy_temp_path $tmp/nginx-temp;
    fastcgi_temp_path $tmp/nginx-temp;
    uwsgi_temp_path $tmp/nginx-temp;
    scgi_temp_path $tmp/nginx-temp;
    log_format pp '\$proxy_protocol_addr:\$proxy_protocol_port \$remote_addr';
    server {
        listen 127.0.0.1:$nginx_port proxy_protocol;
        access_log $tmp/access.log pp;
        set_real_ip_from 127.0.0.1;
        real_ip_header proxy_protocol;
        location / { return 200 "hello from nginx\n"; }
    }
}
NGINX
nginx -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/nginx-error.log"
wait_for_port 127.0.0.1 "$nginx_port"

passed=0
failed=0
start_lb() { # name, target port, target group attributes as JSON; sets lb_port, admin_port, lb
  local name=$1 target_port=$2 attributes=$3
  lb_port=$(free_port)
  admin_port=$(free_port)
  cat > "$tmp/$name.json" <<JSON
{
  "Admin": { "Address": "127.0.0.1:$admin_port" },
  "LoadBalancer": { "Name": "interop", "SubnetMappings": [ { "SubnetId": "subnet-a", "PrivateIPv4Address": "127.0.0.1" } ] },
  "Listeners": [ { "Port": $lb_port, "Protocol": "TCP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "peer" } ] } ],
  "TargetGroups": [ { "Name": "peer", "Protocol": "TCP", "Port": $target_port, "TargetType": "ip",
    "TargetGroupAttributes": [ $attributes ], "Targets": [ { "Id": "127.0.0.1" } ] } ]
}
JSON
  "$bin" serve --config "$tmp/$name.json" --time-scale 0.01 2> "$tmp/$name.log" &
  lb=$!
  pids+=("$lb")
  wait_for_port 127.0.0.1 "$lb_port"
}
stop_lb() { kill -TERM "$lb"; wait "$lb" || true; }
result() { # name, then a command that must succeed; the message is printed either way
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); else echo "FAIL $name" >&2; cat "$tmp/$name.log" >&2 2>/dev/null || true; failed=$((failed + 1)); fi
}

run_mode() { # name, then target group attributes as JSON
  local name=$1 attributes=$2
  local lb_port client_port admin_port
  lb_port=$(free_port)
  admin_port=$(free_port)
  cat > "$tmp/$name.json" <<JSON
{
  "Admin": { "Address": "127.0.0.1:$admin_port" },
  "LoadBalancer": { "Name": "interop", "SubnetMappings": [ { "SubnetId": "subnet-a", "PrivateIPv4Address": "127.0.0.1" } ] },
  "Listeners": [ { "Port": $lb_port, "Protocol": "TCP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "nginx" } ] } ],
  "TargetGroups": [ { "Name": "nginx", "Protocol": "TCP", "Port": $nginx_port, "TargetType": "ip",
    "TargetGroupAttributes": [ $attributes ], "Targets": [ { "Id": "127.0.0.1" } ] } ]
}
JSON
  : > "$tmp/nginx-error.log"
  "$bin" serve --config "$tmp/$name.json" --flow-log "$tmp/$name.flows" --time-scale 0.01 2> "$tmp/$name.log" &
  local lb=$!
  pids+=("$lb")
  wait_for_port 127.0.0.1 "$lb_port"
  # Health checks every 0.3 s (30 s × 0.01): the target must turn healthy through its PROXY-aware listener.
  local state=""
  for _ in $(seq 50); do
    state=$("$bin" ctl describe-target-health --target-group-name nginx --endpoint-url "http://127.0.0.1:$admin_port" \
      | sed -n 's/.*"State": "\(.*\)".*/\1/p')
    [ "$state" = healthy ] && break
    sleep 0.1
  done
  sleep 0.7  # a few more checks
  : > "$tmp/access.log"
  local body=""
  curl_from_client "http://127.0.0.1:$lb_port/" || true
  sleep 0.3
  local line
  line=$(tail -n 1 "$tmp/access.log")
  kill -TERM "$lb"
  local code=0
  wait "$lb" || code=$?
  local broken
  broken=$(grep -c "broken header" "$tmp/nginx-error.log" || true)
  if [ "$body" = "hello from nginx" ] && [ "$line" = "127.0.0.2:$client_port 127.0.0.2" ] && [ "$code" -eq 0 ] \
    && [ "$state" = healthy ] && [ "$broken" -eq 0 ]; then
    echo "ok   $name: nginx logged \$proxy_protocol_addr:\$proxy_protocol_port \$remote_addr = $line; target $state, no broken header"
    passed=$((passed + 1))
  else
    echo "FAIL $name: body '$body', nginx logged '$line' (want '127.0.0.2:$client_port 127.0.0.2'), localnlb exit $code," \
      "target state '$state', $broken broken-header lines" >&2
    cat "$tmp/$name.log" "$tmp/nginx-error.log" >&2 || true
    failed=$((failed + 1))
  fi
}

run_mode proxy-v2-aws '{ "Key": "proxy_protocol_v2.enabled", "Value": "true" }'
run_mode proxy-v2-none '{ "Key": "proxy_protocol_v2.enabled", "Value": "true" }, { "Key": "localnlb.proxy_protocol_v2.tlvs", "Value": "none" }'
run_mode proxy-v1 '{ "Key": "localnlb.proxy_protocol_v1.enabled", "Value": "true" }'

kill "$(cat "$tmp/nginx.pid")"
rm -f "$tmp/nginx.pid"

# HAProxy receiving: `bind … accept-proxy` answers with the client address it took from the header.
hp_in=$(free_port)
hp_out=$(free_port)
target_port=$(free_port)
cat > "$tmp/haproxy.cfg" <<HAPROXY
global
    pidfile $tmp/haproxy.pid
defaults
    timeout connect 2s
    timeout client 5s
    timeout server 5s
frontend receiving
    mode http
    bind 127.0.0.1:$hp_in accept-proxy
    http-request return status 200 content-type text/plain lf-string "%[src]:%[src_port]"
frontend sending
    mode tcp
    bind 127.0.0.1:$hp_out
    unique-id-format %{+X}o\ %ci:%cp_%fi:%fp_%Ts_%rt:%pid
    default_backend target
backend target
    mode tcp
    server t 127.0.0.1:$target_port send-proxy-v2 proxy-v2-options crc32c,unique-id,authority
HAPROXY
haproxy -c -q -f "$tmp/haproxy.cfg"
haproxy -D -f "$tmp/haproxy.cfg"
wait_for_port 127.0.0.1 "$hp_in"

haproxy_receives() { # name, attributes
  local name=$1 client_port="" body=""
  start_lb "$name" "$hp_in" "$2"
  curl_from_client "http://127.0.0.1:$lb_port/" || true
  stop_lb
  if [ "$body" = "127.0.0.2:$client_port" ]; then
    echo "ok   $name: HAProxy accept-proxy took the client address $body from the header"
  else
    echo "     $name: HAProxy answered '$body', want '127.0.0.2:$client_port'" >&2
    return 1
  fi
}
result haproxy-receives-v2 haproxy_receives haproxy-receives-v2 '{ "Key": "proxy_protocol_v2.enabled", "Value": "true" }'
result haproxy-receives-v1 haproxy_receives haproxy-receives-v1 '{ "Key": "localnlb.proxy_protocol_v1.enabled", "Value": "true" }'

# HAProxy sending: send-proxy-v2 with crc32c,unique-id,authority into `localnlb target --proxy-protocol required`.
"$bin" target --listen "127.0.0.1:$target_port" --name behind-haproxy --proxy-protocol required > "$tmp/target.out" 2>&1 &
pids+=($!)
wait_for_port 127.0.0.1 "$target_port"
haproxy_sends() {
  local body
  body=$(curl -sS --max-time 5 "http://127.0.0.1:$hp_out/")
  python3 - "$body" <<'PY'
import json, sys
report = json.loads(sys.argv[1])
proxy = report["proxy"]
names = [t["name"] for t in proxy["tlvs"]]
assert proxy["version"] == 2 and proxy["command"] == "PROXY", proxy
assert proxy["crc32c"] == "valid", proxy
assert "PP2_TYPE_CRC32C" in names and "PP2_TYPE_UNIQUE_ID" in names, names
assert all(t["value"] is not None for t in proxy["tlvs"] if t["name"] != "PP2_TYPE_NOOP"), proxy["tlvs"]
print("ok   haproxy-sends: target decoded " + ", ".join(names) + "; CRC32C " + proxy["crc32c"]
      + "; client " + report["clientAddress"])
PY
}
result haproxy-sends haproxy_sends

# A hostile client (a): straight to a target, around the load balancer, with a forged v1 line.
trusting_port=$(free_port)
"$bin" target --listen "127.0.0.1:$trusting_port" --name trusting --proxy-protocol optional --trust 127.0.0.1/32 \
  > /dev/null 2> "$tmp/forged-direct.log" &
pids+=($!)
wait_for_port 127.0.0.1 "$trusting_port"
forged_direct() {
  python3 - "$trusting_port" <<'PY'
import json, socket, sys
s = socket.socket(); s.bind(("127.0.0.5", 0)); s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 80\r\nGET / HTTP/1.0\r\n\r\n")
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk: break
    data += chunk
report = json.loads(data.split(b"\r\n\r\n", 1)[1])
me = "127.0.0.5:%d" % s.getsockname()[1]
assert report["clientAddress"] == me, report
assert report["proxy"] is None and report["untrustedProxy"]["source"] == "1.2.3.4:1111", report
print("ok   forged-direct: the target saw " + report["clientAddress"] + ", not 1.2.3.4 — " + report["refused"])
PY
  grep -q "not a trusted proxy" "$tmp/forged-direct.log"
}
result forged-direct forged_direct

# A hostile client (b): a forged header through a group with PROXY v2 on reaches the target as data,
# after the load balancer's own header, which is the one honoured (docs/proxy-protocol.md §6).
echo_port=$(free_port)
"$bin" target --listen "127.0.0.1:$echo_port" --name echo --proxy-protocol required > /dev/null 2>&1 &
pids+=($!)
wait_for_port 127.0.0.1 "$echo_port"
forged_through() {
  start_lb forged-through "$echo_port" '{ "Key": "proxy_protocol_v2.enabled", "Value": "true" }'
  python3 - "$lb_port" <<'PY'
import json, socket, sys
s = socket.socket(); s.bind(("127.0.0.2", 0)); s.connect(("127.0.0.1", int(sys.argv[1])))
s.settimeout(5)
forged = b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 80\r\n"
s.sendall(forged)
data = b""
while data.count(b"\n") < 2:
    chunk = s.recv(65536)
    if not chunk: break
    data += chunk
line, echoed = data.split(b"\n", 1)
report = json.loads(line)
me = "127.0.0.2:%d" % s.getsockname()[1]
assert report["proxy"]["source"] == me and report["clientAddress"] == me, report
assert echoed == forged, echoed
print("ok   forged-through: the target honoured the load balancer's header (" + me + ") and got the forged line as data")
PY
  local code=$?
  stop_lb
  return $code
}
result forged-through forged_through

echo "interop: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
