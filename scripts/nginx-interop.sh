#!/usr/bin/env bash
# A real receiver nobody here wrote: nginx with `listen … proxy_protocol` behind localnlb must log the
# client's own address and port — for PROXY v2 as NLB shapes it, v2 without TLVs, and Classic v1 —
# and, with set_real_ip_from + real_ip_header proxy_protocol (seed 001's fix), use it as $remote_addr.
# With PROXY v2 on, nginx must also pass the health checks (their LOCAL header as NLB sends it) and log
# no "broken header". Also checks that `localnlb serve` exits 0 on SIGTERM.
set -euo pipefail
bin=$(realpath "${1:-.build/debug/localnlb}")
cd "$(dirname "$0")/.."
command -v nginx >/dev/null || { echo "nginx is not installed (scripts/test.sh installs it)" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null || true
  sleep 0.2
  rm -rf "$tmp"
}
trap cleanup EXIT

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
run_mode() { # name, then target group attributes as JSON
  local name=$1 attributes=$2
  local lb_port client_port admin_port
  lb_port=$(free_port)
  client_port=$(free_port)
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
  local body
  body=$(curl -sS --max-time 5 --interface 127.0.0.2 --local-port "$client_port" "http://127.0.0.1:$lb_port/")
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

echo "nginx: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
