#!/usr/bin/env bash
# The Fargate client-IP lab (seed 001) with real addresses, in network namespaces of its own:
#
#   client 203.0.113.10 ── 203.0.113.1 [ load balancer: localnlb, node 198.51.100.1 ] 198.51.100.1 ── br-lnb
#                                                                                                     ├── t1 198.51.100.11  instance target
#                                                                                                     ├── t2 198.51.100.12  ip target
#                                                                                                     └── t3 198.51.100.13  nginx sidecar → app nginx
#                                                                                                                          (and :81 behind the ALB)
#
#   scripts/lab.sh up      build the namespaces, veths, policy routing; start targets and localnlb
#   scripts/lab.sh run     up (if needed), send the client's requests, show what each target logged, check it
#   scripts/lab.sh check   verify what instance mode needs outside loopback, each check with its fix
#   scripts/lab.sh down    stop everything and delete the namespaces (also done on exit by run)
#
# Needs root (namespaces, IP_TRANSPARENT). No traffic leaves the lab's own namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
bin=${LOCALNLB:-$root/.build/debug/localnlb}
lab=${LAB_DIR:-/tmp/localnlb-lab}
ns=(lnb-client lnb-lb lnb-t1 lnb-t2 lnb-t3)
# One source port per request (a port just used may still be in TIME_WAIT).
client_port=40001

in_ns() { local name=$1; shift; ip netns exec "$name" "$@"; }

down() {
  local pids=()
  [ -f "$lab/pids" ] && mapfile -t pids < "$lab/pids"
  for pidfile in "$lab"/*.pid; do [ -f "$pidfile" ] && pids+=("$(cat "$pidfile")"); done
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  # Give each a moment to finish (localnlb drains), then make sure.
  for _ in $(seq 30); do
    local alive=0
    for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
    [ "$alive" -eq 0 ] && break
    sleep 0.1
  done
  for pid in "${pids[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
  for name in "${ns[@]}"; do ip netns del "$name" 2>/dev/null || true; done
  rm -rf "$lab"
}

remember() { echo "$1" >> "$lab/pids"; }

wait_for() { # namespace host port
  for _ in $(seq 100); do
    in_ns "$1" python3 -c "import socket; socket.create_connection(('$2', $3), 0.2).close()" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "lab: nothing listens on $2:$3 in $1 after 10 s" >&2
  return 1
}

up() {
  [ "$(id -u)" -eq 0 ] || { echo "lab: needs root (network namespaces, IP_TRANSPARENT)" >&2; exit 1; }
  for program in ip nginx curl python3; do
    command -v "$program" >/dev/null || { echo "lab: $program is missing (scripts/test.sh installs it)" >&2; exit 1; }
  done
  [ -x "$bin" ] || (cd "$root" && swift build)
  down
  mkdir -p "$lab"
  : > "$lab/pids"
  for name in "${ns[@]}"; do
    ip netns add "$name"
    in_ns "$name" ip link set lo up
  done

  # Client side: 203.0.113.0/24. The client reaches the node address through the load balancer host.
  ip link add lnb-c0 type veth peer name lnb-c1
  ip link set lnb-c0 netns lnb-client
  ip link set lnb-c1 netns lnb-lb
  in_ns lnb-client ip addr add 203.0.113.10/24 dev lnb-c0
  in_ns lnb-client ip link set lnb-c0 up
  in_ns lnb-client ip route add 198.51.100.0/24 via 203.0.113.1
  in_ns lnb-lb ip addr add 203.0.113.1/24 dev lnb-c1
  in_ns lnb-lb ip link set lnb-c1 up

  # Target side: 198.51.100.0/24 on a bridge in the load balancer's namespace.
  in_ns lnb-lb ip link add br-lnb type bridge
  in_ns lnb-lb ip addr add 198.51.100.1/24 dev br-lnb
  in_ns lnb-lb ip link set br-lnb up
  local i
  for i in 1 2 3; do
    ip link add "lnb-t${i}0" type veth peer name "lnb-t${i}1"
    ip link set "lnb-t${i}0" netns "lnb-t$i"
    ip link set "lnb-t${i}1" netns lnb-lb
    in_ns lnb-lb ip link set "lnb-t${i}1" master br-lnb
    in_ns lnb-lb ip link set "lnb-t${i}1" up
    in_ns "lnb-t$i" ip addr add "198.51.100.1$i/24" dev "lnb-t${i}0"
    in_ns "lnb-t$i" ip link set "lnb-t${i}0" up
    # Replies to clients go back through the load balancer, as in a VPC.
    in_ns "lnb-t$i" ip route add default via 198.51.100.1
  done

  # docs/flows.md §8: replies from targets to a client address are delivered to localnlb's transparent
  # sockets (no iptables).
  in_ns lnb-lb ip rule add iif br-lnb lookup 100
  in_ns lnb-lb ip route add local 0.0.0.0/0 dev lo table 100

  # Targets: t1 and t2 are applications that log their TCP peer; t3 is seed 001's nginx pair.
  ip netns exec lnb-t1 "$bin" target --listen 198.51.100.11:80 --name t1-instance --proxy-protocol off --udp \
    > "$lab/t1.log" 2>&1 &
  remember $!
  ip netns exec lnb-t2 "$bin" target --listen 198.51.100.12:80 --name t2-ip --proxy-protocol off > "$lab/t2.log" 2>&1 &
  remember $!
  mkdir -p "$lab/nginx-temp"
  cat > "$lab/t3-nginx.conf" <<NGINX
daemon on;
worker_processes 1;
pid $lab/t3-nginx.pid;
error_log $lab/t3-error.log;
events { worker_connections 64; }
http {
    client_body_temp_path $lab/nginx-temp;
    proxy_temp_path $lab/nginx-temp;
    fastcgi_temp_path $lab/nginx-temp;
    uwsgi_temp_path $lab/nginx-temp;
    scgi_temp_path $lab/nginx-temp;
    log_format sidecar 'sidecar: proxy_protocol_addr=\$proxy_protocol_addr remote_addr=\$remote_addr';
    log_format app 'app: remote_addr=\$remote_addr x_forwarded_for=\$http_x_forwarded_for';
    log_format alb 'alb: remote_addr=\$remote_addr x_forwarded_for=\$http_x_forwarded_for';
    # The sidecar in front of the app (seed 001): it reads the PROXY header from the load balancer only.
    server {
        listen 198.51.100.13:80 proxy_protocol;
        access_log $lab/t3-sidecar.log sidecar;
        set_real_ip_from 198.51.100.1;
        real_ip_header proxy_protocol;
        location / {
            proxy_set_header X-Forwarded-For \$remote_addr;
            proxy_pass http://127.0.0.1:8080;
        }
    }
    # The same app behind an application load balancer (seed 000): X-Forwarded-For from the ALB's node only.
    server {
        listen 198.51.100.13:81;
        access_log $lab/t3-alb.log alb;
        set_real_ip_from 198.51.100.1;
        real_ip_header X-Forwarded-For;
        location / { return 200 "hello from the app behind the ALB\n"; }
    }
    # The application, which trusts X-Forwarded-For from its sidecar only.
    server {
        listen 127.0.0.1:8080;
        access_log $lab/t3-app.log app;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;
        location / { return 200 "hello from the app\n"; }
    }
}
NGINX
  in_ns lnb-t3 nginx -p "$lab" -c "$lab/t3-nginx.conf" -e "$lab/t3-error.log" > /dev/null 2>&1

  cat > "$lab/localnlb.json" <<JSON
{
  "Admin": { "Address": "127.0.0.1:8404" },
  "LoadBalancers": [
    { "Name": "lab-nlb", "SubnetMappings": [ { "SubnetId": "subnet-lab", "PrivateIPv4Address": "198.51.100.1" } ] },
    { "Name": "lab-alb", "Type": "application",
      "SubnetMappings": [ { "SubnetId": "subnet-lab", "PrivateIPv4Address": "198.51.100.1" } ] }
  ],
  "Listeners": [
    { "LoadBalancerArn": "lab-nlb", "Port": 8001, "DefaultActions": [ { "Type": "forward", "TargetGroupName": "lab-instance" } ] },
    { "LoadBalancerArn": "lab-nlb", "Port": 8002, "DefaultActions": [ { "Type": "forward", "TargetGroupName": "lab-ip" } ] },
    { "LoadBalancerArn": "lab-nlb", "Port": 8003, "DefaultActions": [ { "Type": "forward", "TargetGroupName": "lab-ip-proxy-v2" } ] },
    { "LoadBalancerArn": "lab-nlb", "Port": 8004, "DefaultActions": [ { "Type": "forward", "TargetGroupName": "lab-hairpin" } ] },
    { "LoadBalancerArn": "lab-nlb", "Port": 8005, "Protocol": "UDP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "lab-udp" } ] },
    { "LoadBalancerArn": "lab-alb", "Port": 8006, "Protocol": "HTTP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "lab-alb-app" } ] }
  ],
  "TargetGroups": [
    { "Name": "lab-instance", "Port": 80, "TargetType": "instance",
      "Targets": [ { "Id": "i-0a11ce00000000001", "PrivateIpAddress": "198.51.100.11" } ] },
    { "Name": "lab-ip", "Port": 80, "TargetType": "ip", "Targets": [ { "Id": "198.51.100.12" } ] },
    { "Name": "lab-ip-proxy-v2", "Port": 80, "TargetType": "ip",
      "TargetGroupAttributes": [ { "Key": "proxy_protocol_v2.enabled", "Value": "true" } ],
      "Targets": [ { "Id": "198.51.100.13" } ] },
    { "Name": "lab-hairpin", "Port": 80, "TargetType": "instance",
      "Targets": [ { "Id": "198.51.100.11" } ] },
    { "Name": "lab-udp", "Port": 80, "Protocol": "UDP", "TargetType": "ip",
      "Targets": [ { "Id": "198.51.100.11" } ] },
    { "Name": "lab-alb-app", "Port": 81, "Protocol": "HTTP", "TargetType": "ip",
      "Targets": [ { "Id": "198.51.100.13" } ] }
  ]
}
JSON
  ip netns exec lnb-lb "$bin" serve --config "$lab/localnlb.json" --flow-log "$lab/flows.jsonl" --drain-seconds 1 \
    > "$lab/localnlb.out" 2> "$lab/localnlb.log" &
  remember $!
  wait_for lnb-t1 198.51.100.11 80
  wait_for lnb-t2 198.51.100.12 80
  wait_for lnb-t3 198.51.100.13 80
  wait_for lnb-lb 198.51.100.1 8001
  echo "lab: up (logs in $lab)"
}

# What instance mode needs outside loopback, checked where localnlb runs; each failure names its fix.
check() {
  local failures=0
  report() { # ok|FAIL, what, fix
    if [ "$1" = ok ]; then echo "  passed  $2"; else echo "  FAILED  $2 — fix: $3"; failures=$((failures + 1)); fi
  }
  echo "lab check (in namespace lnb-lb, where localnlb runs):"
  if in_ns lnb-lb python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_IP, 19, 1)  # IP_TRANSPARENT
s.bind(("203.0.113.99", 0))' 2>/dev/null; then
    report ok "IP_TRANSPARENT is permitted (CAP_NET_ADMIN) and binds a client address"
  else
    report FAIL "IP_TRANSPARENT is permitted" "run localnlb as root, or setcap cap_net_admin+ep on the binary"
  fi
  # Each listing is read whole before it is searched: with pipefail, `ip … | grep -q` fails whenever
  # grep exits at its match while ip still writes (ip flushes each line), killing ip with SIGPIPE.
  local rules table default_route
  rules=$(in_ns lnb-lb ip rule show)
  if grep -q "iif br-lnb lookup 100" <<< "$rules"; then
    report ok "ip rule: replies arriving from the targets (iif br-lnb) use table 100"
  else
    report FAIL "ip rule for replies from the targets" "ip rule add iif br-lnb lookup 100"
  fi
  table=$(in_ns lnb-lb ip route show table 100)
  if grep -q "^local default dev lo" <<< "$table"; then
    report ok "table 100 delivers every address locally (local 0.0.0.0/0 dev lo)"
  else
    report FAIL "table 100 local route" "ip route add local 0.0.0.0/0 dev lo table 100"
  fi
  local i
  for i in 1 2 3; do
    default_route=$(in_ns "lnb-t$i" ip route show default)
    if grep -q "via 198.51.100.1" <<< "$default_route"; then
      report ok "target t$i routes clients' replies back through the load balancer (default via 198.51.100.1)"
    else
      report FAIL "target t$i's default route" "ip route add default via 198.51.100.1 (in the target's host)"
    fi
  done
  [ "$failures" -eq 0 ]
}

run() {
  [ -f "$lab/pids" ] || up
  local instance ip app hairpin started elapsed code udp alb
  # The same request from the client to each listener.
  instance=$(in_ns lnb-client curl -sS --max-time 5 --local-port "$client_port" http://198.51.100.1:8001/)
  ip=$(in_ns lnb-client curl -sS --max-time 5 --local-port "$((client_port + 1))" http://198.51.100.1:8002/)
  app=$(in_ns lnb-client curl -sS --max-time 5 --local-port "$((client_port + 2))" http://198.51.100.1:8003/)
  alb=$(in_ns lnb-client curl -sS --max-time 5 --local-port "$((client_port + 4))" http://198.51.100.1:8006/)
  # Hairpin: t1 calls its own load balancer and is picked as its own target.
  started=$(date +%s.%N)
  set +e
  in_ns lnb-t1 curl -sS --max-time 3 -o /dev/null http://198.51.100.1:8004/ 2> "$lab/hairpin.err"
  code=$?
  set -e
  elapsed=$(python3 -c "print(round($(date +%s.%N) - $started, 1))")
  # UDP: the client's address and port kept through IP_TRANSPARENT; the answer from the listener.
  udp=$(in_ns lnb-client python3 - "$((client_port + 3))" <<'PY'
import json, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("203.0.113.10", int(sys.argv[1])))
s.settimeout(5)
s.sendto(b"hello", ("198.51.100.1", 8005))
data, sender = s.recvfrom(65536)
print(json.loads(data)["peer"], f"{sender[0]}:{sender[1]}")
PY
  ) || udp="no answer"
  hairpin="curl exit $code after ${elapsed}s: $(tr -d '\n' < "$lab/hairpin.err")"
  sleep 0.3

  local t1_peer t2_peer app_line sidecar_line alb_line
  t1_peer=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["peer"])' "$instance")
  t2_peer=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["peer"])' "$ip")
  app_line=$(tail -n 1 "$lab/t3-app.log")
  sidecar_line=$(tail -n 1 "$lab/t3-sidecar.log")
  alb_line=$(grep -v "x_forwarded_for=-" "$lab/t3-alb.log" | tail -n 1)
  cat <<TABLE

The client 203.0.113.10 sent the same request (from ports $client_port, $((client_port + 1)), $((client_port + 2))) to each listener of
the NLB node 198.51.100.1:

  target group                            what the target's log recorded
  --------------------------------------  ----------------------------------------------------------------
  instance (client IP preserved)          t1 peer: $t1_peer
  ip (the Fargate default)                t2 peer: $t2_peer
  ip + proxy_protocol_v2.enabled          t3 $sidecar_line
                                          t3 $app_line
  hairpin (t1 → NLB → t1, IP preserved)   $hairpin
  UDP (client IP always kept)             t1 peer and the answer's source: $udp
  ALB (application load balancer, :8006)  t3 $alb_line

TABLE
  local failures=0
  expect() { # what, actual, wanted
    if [ "$2" = "$3" ]; then echo "  passed  $1: $2"; else echo "  FAILED  $1: got '$2', wanted '$3'"; failures=$((failures + 1)); fi
  }
  expect "instance: the client's address and port" "$t1_peer" "203.0.113.10:$client_port"
  expect "ip: the load balancer's address" "${t2_peer%:*}" "198.51.100.1"
  expect "ip + PROXY v2: the app's \$remote_addr" "$app_line" "app: remote_addr=203.0.113.10 x_forwarded_for=203.0.113.10"
  expect "hairpin: the request times out (curl exit 28)" "$code" "28"
  expect "ALB: nginx's \$remote_addr from X-Forwarded-For (real_ip_header), the client" "$alb_line" \
    "alb: remote_addr=203.0.113.10 x_forwarded_for=203.0.113.10"
  expect "UDP: the client's address and port at the target; the answer from the listener" "$udp" \
    "203.0.113.10:$((client_port + 3)) 198.51.100.1:8005"
  if grep -q "broken header" "$lab/t3-error.log" 2>/dev/null; then
    echo "  FAILED  nginx logged 'broken header'"; failures=$((failures + 1))
  else
    echo "  passed  nginx logged no 'broken header' (health checks carry the LOCAL header)"
  fi
  echo
  check || failures=$((failures + 1))
  echo "lab: $((7 + 6 - failures)) passed, $failures failed"
  [ "$failures" -eq 0 ]
}

case "${1:-}" in
  up) up ;;
  down) down; echo "lab: down" ;;
  check) check ;;
  run)
    trap down EXIT INT TERM
    run
    ;;
  *) echo "usage: scripts/lab.sh up | run | check | down" >&2; exit 64 ;;
esac
