#!/usr/bin/env bash
# Application load balancers with clients and servers nobody here wrote: curl (keep-alive, bodies,
# 100-continue, HTTPS), wrk, Python's http.server as the target that prints what it got, nginx with
# `real_ip_header X-Forwarded-For` (the seeds' fix behind an ALB); then what the load balancer answers
# itself (400, 463, 502, 503, 504) without disturbing other requests.
#   scripts/alb-check.sh [.build/debug/localnlb]
set -euo pipefail
bin=$(readlink -f "${1:-.build/debug/localnlb}")
cd "$(dirname "$0")/.."
. scripts/checks.sh
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
export LOCALNLB_CA_DIR=$tmp/ca
admin=$(free_port); to_https=$(free_port); random_port=$(free_port); nginx_tls=$(free_port); reencrypt=$(free_port); echo2_port=$(free_port); app_sticky=$(free_port); sticky=$(free_port); lor=$(free_port); ruled=$(free_port); ws=$(free_port); ws_port=$(free_port); http=$(free_port); https=$(free_port); via_nginx=$(free_port); silent_port=$(free_port)
echo_port=$(free_port); nginx_port=$(free_port); silent=$(free_port); refused=$(free_port); empty=$(free_port); warming=$(free_port)
arn="arn:aws:acm:us-east-1:000000000000:certificate/6b1c0a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"

# The target: Python's http.server, answering with what it received (peer, header lines in order, body size).
cat > "$tmp/echo.py" <<'PY'
import http.server, json, sys
class Echo(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Its head and body are two writes: without TCP_NODELAY the body waits on the client's delayed ACK.
    disable_nagle_algorithm = True
    def answer(self, extra):
        body = json.dumps(dict({"peer": self.client_address[0], "peerPort": self.client_address[1], "path": self.path,
                                "server": self.server.server_address[1],
                                "headers": [list(h) for h in self.headers.items()]}, **extra)).encode()
        self.send_response(200)
        if self.path.startswith("/login"):
            self.send_header("Set-Cookie", "session=s1; Path=/")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def do_GET(self):
        if self.path.startswith("/slow"):
            __import__("time").sleep(1)
        self.answer({})
    def do_POST(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data += self.rfile.read(size)
                self.rfile.readline()
        else:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.answer({"received": len(data)})
    def log_message(self, *args):
        pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Echo).serve_forever()
PY
python3 "$tmp/echo.py" "$echo_port" 2> "$tmp/echo.log" & pids+=($!)
python3 "$tmp/echo.py" "$echo2_port" 2> "$tmp/echo2.log" & pids+=($!)
# A target that accepts and never answers (the 504), and a port nothing listens on (the 502).
python3 - "$silent" <<'PY' & pids+=($!)
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]))); s.listen(64)
held = []
while True:
    c, _ = s.accept(); held.append(c)
PY

mkdir -p "$tmp/nginx-temp"
# nginx over TLS with a certificate nobody trusts: ALB does not verify its targets' certificates.
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$tmp/nginx-key.pem" -out "$tmp/nginx.pem" -days 2 \
  -subj /CN=target.internal > /dev/null 2>&1
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
    access_log off;
    server {
        listen 127.0.0.1:$nginx_port;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;
        location / { return 200 "nginx saw \$remote_addr\n"; }
    }
    server {
        listen 127.0.0.1:$nginx_tls ssl;
        ssl_certificate $tmp/nginx.pem;
        ssl_certificate_key $tmp/nginx-key.pem;
        set_real_ip_from 127.0.0.1;
        real_ip_header X-Forwarded-For;
        location / { return 200 "nginx over \$ssl_protocol saw \$remote_addr\n"; }
    }
}
NGINX
nginx -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/nginx-error.log"

cat > "$tmp/alb.json" <<JSON
{ "Admin": { "Address": "127.0.0.1:$admin" }, "Dns": { "Enabled": false },
  "LoadBalancer": { "Name": "web-alb", "Type": "application",
    "SubnetMappings": [ { "SubnetId": "subnet-a", "PrivateIPv4Address": "127.0.0.1" } ],
    "LoadBalancerAttributes": [ { "Key": "idle_timeout.timeout_seconds", "Value": "60" } ] },
  "Listeners": [
    { "Port": $http, "Protocol": "HTTP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "echo" } ] },
    { "Port": $https, "Protocol": "HTTPS", "Certificates": [ { "CertificateArn": "$arn" } ],
      "DefaultActions": [ { "Type": "forward", "TargetGroupName": "echo" } ] },
    { "Port": $via_nginx, "Protocol": "HTTP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "nginx" } ] },
    { "Port": $silent_port, "Protocol": "HTTP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "silent" } ] },
    { "Port": $refused, "Protocol": "HTTP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "refused" } ] },
    { "Port": $empty, "Protocol": "HTTP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "empty" } ] },
    { "Port": $ws, "Protocol": "HTTP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "ws" } ] },
    { "Port": $lor, "Protocol": "HTTP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "lor" } ] },
    { "Port": $sticky, "Protocol": "HTTP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "sticky" } ] },
    { "Port": $to_https, "Protocol": "HTTP", "DefaultActions": [ { "Type": "redirect",
        "RedirectConfig": { "Protocol": "HTTPS", "Port": "$https", "StatusCode": "HTTP_301" } } ] },
    { "Port": $random_port, "Protocol": "HTTP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "random" } ] },
    { "Port": $reencrypt, "Protocol": "HTTP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "secure" } ] },
    { "Port": $app_sticky, "Protocol": "HTTP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "app-sticky" } ] },
    { "Port": $warming, "Protocol": "HTTP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "warming" } ] },
    { "Port": $ruled, "Protocol": "HTTP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "echo" } ],
      "Rules": [
        { "Priority": 10, "Conditions": [ { "Field": "path-pattern", "PathPatternConfig": { "Values": [ "/nginx/*" ] } } ],
          "Actions": [ { "Type": "forward", "TargetGroupName": "nginx" } ] },
        { "Priority": 20, "Conditions": [ { "Field": "host-header", "HostHeaderConfig": { "Values": [ "old.*.test" ] } } ],
          "Actions": [ { "Type": "redirect", "RedirectConfig": { "Protocol": "HTTPS", "Port": "443", "Host": "new.#{host}", "Path": "/v2/#{path}", "StatusCode": "HTTP_302" } } ] },
        { "Priority": 30, "Conditions": [ { "Field": "http-request-method", "HttpRequestMethodConfig": { "Values": [ "DELETE" ] } } ],
          "Actions": [ { "Type": "fixed-response", "FixedResponseConfig": { "StatusCode": "405", "ContentType": "application/json", "MessageBody": "{\"error\":\"no deletes\"}" } } ] },
        { "Priority": 40, "Conditions": [ { "Field": "http-header", "HttpHeaderConfig": { "HttpHeaderName": "X-Canary", "Values": [ "on" ] } },
                                          { "Field": "query-string", "QueryStringConfig": { "Values": [ { "Key": "v", "Value": "2" } ] } } ],
          "Actions": [ { "Type": "forward", "TargetGroupName": "nginx" } ] },
        { "Priority": 45, "Conditions": [ { "Field": "path-pattern", "PathPatternConfig": { "Values": [ "/weighted/*" ] } } ],
          "Actions": [ { "Type": "forward", "ForwardConfig": { "TargetGroups": [
            { "TargetGroupName": "echo", "Weight": 0 }, { "TargetGroupName": "nginx", "Weight": 5 } ] } } ] },
        { "Priority": 46, "Conditions": [ { "Field": "path-pattern", "PathPatternConfig": { "Values": [ "/canary/*" ] } } ],
          "Actions": [ { "Type": "forward", "ForwardConfig": { "TargetGroups": [
            { "TargetGroupName": "echo", "Weight": 1 }, { "TargetGroupName": "nginx", "Weight": 1 } ],
            "TargetGroupStickinessConfig": { "Enabled": true, "DurationSeconds": 300 } } } ] },
        { "Priority": 50, "Conditions": [ { "Field": "source-ip", "SourceIpConfig": { "Values": [ "127.0.0.3/32" ] } } ],
          "Actions": [ { "Type": "fixed-response", "FixedResponseConfig": { "StatusCode": "403", "MessageBody": "not from there" } } ] } ] } ],
  "TargetGroups": [
    { "Name": "echo", "Protocol": "HTTP", "Port": $echo_port, "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1" } ] },
    { "Name": "nginx", "Protocol": "HTTP", "Port": $nginx_port, "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1" } ] },
    { "Name": "silent", "Protocol": "HTTP", "Port": $silent, "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1" } ],
      "HealthCheckProtocol": "TCP" },
    { "Name": "refused", "Protocol": "HTTP", "Port": $(free_port), "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1" } ] },
    { "Name": "empty", "Protocol": "HTTP", "Port": 80, "TargetType": "ip" },
    { "Name": "app-sticky", "Protocol": "HTTP", "Port": 80, "TargetType": "ip",
      "Targets": [ { "Id": "127.0.0.1", "Port": $echo_port }, { "Id": "127.0.0.1", "Port": $echo2_port } ],
      "TargetGroupAttributes": [ { "Key": "stickiness.enabled", "Value": "true" }, { "Key": "stickiness.type", "Value": "app_cookie" },
        { "Key": "stickiness.app_cookie.cookie_name", "Value": "session" } ] },
    { "Name": "random", "Protocol": "HTTP", "Port": 80, "TargetType": "ip",
      "Targets": [ { "Id": "127.0.0.1", "Port": $echo_port }, { "Id": "127.0.0.1", "Port": $echo2_port } ],
      "TargetGroupAttributes": [ { "Key": "load_balancing.algorithm.type", "Value": "weighted_random" } ] },
    { "Name": "secure", "Protocol": "HTTPS", "Port": $nginx_tls, "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1" } ] },
    { "Name": "sticky", "Protocol": "HTTP", "Port": 80, "TargetType": "ip",
      "Targets": [ { "Id": "127.0.0.1", "Port": $echo_port }, { "Id": "127.0.0.1", "Port": $nginx_port } ],
      "TargetGroupAttributes": [ { "Key": "stickiness.enabled", "Value": "true" }, { "Key": "stickiness.type", "Value": "lb_cookie" },
        { "Key": "stickiness.lb_cookie.duration_seconds", "Value": "600" } ] },
    { "Name": "lor", "Protocol": "HTTP", "Port": 80, "TargetType": "ip", "HealthCheckProtocol": "TCP",
      "Targets": [ { "Id": "127.0.0.1", "Port": $silent }, { "Id": "127.0.0.1", "Port": $echo_port } ],
      "TargetGroupAttributes": [ { "Key": "load_balancing.algorithm.type", "Value": "least_outstanding_requests" } ] },
    { "Name": "ws", "Protocol": "HTTP", "Port": $ws_port, "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1" } ],
      "HealthCheckProtocol": "TCP" },
    { "Name": "warming", "Protocol": "HTTP", "Port": 80, "TargetType": "ip",
      "Targets": [ { "Id": "127.0.0.1", "Port": $echo_port } ],
      "TargetGroupAttributes": [ { "Key": "slow_start.duration_seconds", "Value": "120" } ] } ] }
JSON
# --time-scale 0.05: the 60 s idle timeout is 3 s here.
"$bin" serve --config "$tmp/alb.json" --time-scale 0.05 --event-loops 2 --flow-log "$tmp/access.jsonl" 2> "$tmp/lb.log" & pids+=($!)
lb_pid=$!
ctl() { "$bin" ctl --endpoint-url "http://127.0.0.1:$admin" "$@"; }
for _ in $(seq 100); do ctl describe-load-balancers > /dev/null 2>&1 && break; sleep 0.1; done
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1]))' "$1"; }

check "the event log names what the file sets apart from ALB's defaults (the sticky group's stickiness.enabled), not ALB's defaults themselves" \
  bash -c 'grep -q "target group sticky: stickiness.enabled false → true (file)" "$0" && ! grep -q "stickiness.type source_ip → lb_cookie" "$0"' "$tmp/lb.log"

# What the target sees, against seed 000's capture: X-Forwarded-For, -Proto, -Port, Host, X-Amzn-Trace-Id,
# then the client's own fields in its order.
seen=$(curl -s --max-time 5 --interface 127.0.0.2 -H 'Accept: */*' "http://127.0.0.1:$http/hello?x=1")
names=$(field '[h[0] for h in d["headers"]]' <<< "$seen")
check "the target sees the seed's field order: X-Forwarded-For, X-Forwarded-Proto, X-Forwarded-Port, Host, X-Amzn-Trace-Id, User-Agent, Accept ($names)" \
  test "$names" = "['X-Forwarded-For', 'X-Forwarded-Proto', 'X-Forwarded-Port', 'Host', 'X-Amzn-Trace-Id', 'User-Agent', 'Accept']"
check "X-Forwarded-For is the client (127.0.0.2), Proto http, Port the listener's; the peer is the node (127.0.0.1)" \
  test "$(field '[dict(d["headers"])[k] for k in ("X-Forwarded-For","X-Forwarded-Proto","X-Forwarded-Port")] + [d["peer"]]' <<< "$seen")" \
  = "['127.0.0.2', 'http', '$http', '127.0.0.1']"
check "Host is kept as the client sent it" test "$(field 'dict(d["headers"])["Host"]' <<< "$seen")" = "127.0.0.1:$http"
portless=$(curl -s --max-time 5 -H 'Host: app.example' "http://127.0.0.1:$http/" | field 'dict(d["headers"])["Host"]')
check "a Host without a port gets the listener's (not 80) appended, as ALB does without preserve_host_header ($portless)" \
  test "$portless" = "app.example:$http"
check "X-Amzn-Trace-Id is Root=1-<8 hex seconds>-<24 hex>, the seconds now" \
  python3 -c 'import re,sys,time; m=re.fullmatch(r"Root=1-([0-9a-f]{8})-[0-9a-f]{24}", sys.argv[1]); assert m and abs(int(m.group(1),16)-time.time()) < 60' \
  "$(field 'dict(d["headers"])["X-Amzn-Trace-Id"]' <<< "$seen")"
traced=$(curl -s --max-time 5 -H 'X-Amzn-Trace-Id: Root=1-5ee5f641-b7ceb780f01cd2f07af9b4d0;Sampled=0' \
  -H 'X-Forwarded-For: 203.0.113.7' "http://127.0.0.1:$http/")
check "an arriving trace gets a Self= first, its Root and fields kept (seed 000 behind API Gateway)" \
  python3 -c 'import re,sys; assert re.fullmatch(r"Self=1-[0-9a-f]{8}-[0-9a-f]{24};Root=1-5ee5f641-b7ceb780f01cd2f07af9b4d0;Sampled=0", sys.argv[1]), sys.argv[1]' \
  "$(field 'dict(d["headers"])["X-Amzn-Trace-Id"]' <<< "$traced")"
check "X-Forwarded-For appends the client to what arrived (routing.http.xff_header_processing.mode append)" \
  test "$(field 'dict(d["headers"])["X-Forwarded-For"]' <<< "$traced")" = "203.0.113.7, 127.0.0.1"
reuse=$(curl -s -v --max-time 5 "http://127.0.0.1:$http/a" "http://127.0.0.1:$http/b" 2>&1)
check "keep-alive: curl's second request reuses the connection, both answered" \
  bash -c 'grep -q "Re-using existing connection" <<< "$0" && [ "$(grep -c "< HTTP/1.1 200" <<< "$0")" = 2 ]' "$reuse"
ports=$(for _ in 1 2 3 4 5 6; do curl -s --max-time 5 "http://127.0.0.1:$http/" | field 'd["peerPort"]'; done | sort -u | wc -l)
check "six clients one after another are served over pooled target connections, one per event loop at most (the target saw $ports source ports)" \
  test "$ports" -le 2
head -c 3000000 /dev/urandom > "$tmp/big"
posted=$(curl -s -v --max-time 10 -X POST --data-binary @"$tmp/big" "http://127.0.0.1:$http/up" 2>&1)
check "a 3 MB POST: curl's Expect: 100-continue gets the target's 100 Continue, and the body arrives whole" \
  bash -c 'grep -q "< HTTP/1.1 100 Continue" <<< "$0" && grep -q "\"received\": 3000000" <<< "$0"' "$posted"
chunked=$(curl -s --max-time 10 -X POST -H 'Transfer-Encoding: chunked' --data-binary @"$tmp/big" "http://127.0.0.1:$http/up")
check "a chunked request body arrives whole" grep -q '"received": 3000000' <<< "$chunked"
ca=$("$bin" ca)
secure=$(curl -s --max-time 5 --cacert "$ca" "https://localhost:$https/")
check "HTTPS listener: curl --cacert verifies the certificate; the target gets plain HTTP with X-Forwarded-Proto https" \
  test "$(field '[dict(d["headers"])[k] for k in ("X-Forwarded-Proto","X-Forwarded-Port")]' <<< "$secure")" = "['https', '$https']"
check "nginx behind the ALB with real_ip_header X-Forwarded-For logs the client (127.0.0.2), not the node" \
  grep -q "nginx saw 127.0.0.2" <<< "$(curl -s --max-time 5 --interface 127.0.0.2 "http://127.0.0.1:$via_nginx/")"
if command -v wrk > /dev/null; then
  wrk -t1 -c20 -d2s "http://127.0.0.1:$via_nginx/" > "$tmp/wrk.out" 2>&1 || true
  check "wrk: 20 keep-alive connections for 2 s through the proxy, no socket error or non-2xx answer" \
    bash -c 'grep -q "Requests/sec" "$0" && ! grep -q "Socket errors\|Non-2xx" "$0"' "$tmp/wrk.out"
fi

# Listener rules, in priority order before the default forward (docs/alb.md §20).
via() { curl -s --max-time 5 "$@"; }
check "rules: path-pattern /nginx/* forwards to the nginx group, anything else to the default (echo)" \
  bash -c 'grep -q "nginx saw" <<< "$0" && grep -q "\"peer\"" <<< "$1"' \
  "$(via "http://127.0.0.1:$ruled/nginx/x")" "$(via "http://127.0.0.1:$ruled/other")"
moved=$(via -i -H 'Host: old.shop.test' "http://127.0.0.1:$ruled/cart/1?id=7")
check "rules: host-header old.*.test redirects (302) to https://new.#{host}:443/v2/#{path}?#{query}" \
  bash -c 'grep -q "^HTTP/1.1 302 Found" <<< "$0" && grep -q "^Location: https://new.old.shop.test:443/v2/cart/1?id=7" <<< "$0"' "$moved"
fixed=$(via -i -X DELETE "http://127.0.0.1:$ruled/thing")
check "rules: http-request-method DELETE gets the fixed response (405, application/json, its body)" \
  bash -c 'grep -q "^HTTP/1.1 405 Method Not Allowed" <<< "$0" && grep -q "^Content-Type: application/json" <<< "$0" && grep -q "{\"error\":\"no deletes\"}" <<< "$0"' "$fixed"
check "rules: http-header X-Canary: on AND query-string v=2 both needed for the canary group" \
  bash -c 'grep -q "nginx saw" <<< "$0" && grep -q "\"peer\"" <<< "$1" && grep -q "\"peer\"" <<< "$2"' \
  "$(via -H 'X-Canary: on' "http://127.0.0.1:$ruled/?v=2")" "$(via -H 'X-Canary: on' "http://127.0.0.1:$ruled/?v=3")" \
  "$(via "http://127.0.0.1:$ruled/?v=2")"
check "rules: source-ip 127.0.0.3/32 is refused with 403, 127.0.0.2 is not" \
  bash -c 'grep -q "not from there" <<< "$0" && grep -q "\"peer\"" <<< "$1"' \
  "$(via --interface 127.0.0.3 "http://127.0.0.1:$ruled/")" "$(via --interface 127.0.0.2 "http://127.0.0.1:$ruled/")"
weighted=$(for _ in 1 2 3 4 5 6; do via "http://127.0.0.1:$ruled/weighted/x"; done | grep -c "nginx saw" || true)
check "rules: a weighted forward (echo 0, nginx 5) sends every request to nginx ($weighted of 6)" test "$weighted" = 6
# Target group stickiness (AWSALBTG): a client with the cookie stays with its group, even after its
# group's weight drops to 0 (blue/green moves new clients only); clients without it go by weight.
group_of() { grep -q "nginx saw" <<< "$1" && echo nginx || echo echo; }
canary_first=$(via -i -c "$tmp/tgjar" "http://127.0.0.1:$ruled/canary/x")
stuck_group=$(group_of "$canary_first")
stuck=$(for _ in 1 2 3 4 5 6; do group_of "$(via -b "$tmp/tgjar" "http://127.0.0.1:$ruled/canary/x")"; done | sort -u | tr '\n' ' ')
loose=$(for _ in $(seq 20); do group_of "$(via "http://127.0.0.1:$ruled/canary/x")"; done | sort -u | tr '\n' ' ')
check "group stickiness: AWSALBTG and AWSALBTGCORS (SameSite=None; Secure) set for 300 s; with them 6 requests stay with one group ($stuck), without them 20 reach both ($loose)" \
  bash -c 'grep -q "^Set-Cookie: AWSALBTG=[0-9a-f]\{16\}; Expires=.*; Path=/" <<< "$0" && grep -q "^Set-Cookie: AWSALBTGCORS=[0-9a-f]\{16\}; .*SameSite=None; Secure" <<< "$0" && [ "$(wc -w <<< "$1")" = 1 ] && [ "$(wc -w <<< "$2")" = 2 ]' \
  "$canary_first" "$stuck" "$loose"
ruled_arn=$(ctl describe-listeners --load-balancer-arn "$(ctl describe-load-balancers --query 'LoadBalancers[0].LoadBalancerArn' --output text)" \
  --query "Listeners[?Port==\`$ruled\`].ListenerArn" --output text)
canary_rule=$(ctl describe-rules --listener-arn "$ruled_arn" --query "Rules[?Priority=='46'].RuleArn" --output text)
other_group=$([ "$stuck_group" = echo ] && echo nginx || echo echo)
ctl modify-rule --rule-arn "$canary_rule" --actions "[{\"Type\": \"forward\", \"ForwardConfig\": {\"TargetGroups\": [{\"TargetGroupArn\": \"$(ctl describe-target-groups --names "$stuck_group" --query 'TargetGroups[0].TargetGroupArn' --output text)\", \"Weight\": 0}, {\"TargetGroupArn\": \"$(ctl describe-target-groups --names "$other_group" --query 'TargetGroups[0].TargetGroupArn' --output text)\", \"Weight\": 1}], \"TargetGroupStickinessConfig\": {\"Enabled\": true, \"DurationSeconds\": 300}}}]" > /dev/null
after_stuck=$(for _ in 1 2 3; do group_of "$(via -b "$tmp/tgjar" "http://127.0.0.1:$ruled/canary/x")"; done | sort -u | tr -d '\n')
after_new=$(for _ in 1 2 3; do group_of "$(via "http://127.0.0.1:$ruled/canary/x")"; done | sort -u | tr -d '\n')
described=$(ctl describe-rules --rule-arns "$canary_rule" --query 'Rules[0].Actions[0].ForwardConfig.TargetGroupStickinessConfig' --output json | tr -d ' \n')
check "group stickiness: its group's weight set to 0 by modify-rule, the client with AWSALBTG stays ($after_stuck), new clients go to $other_group ($after_new); describe-rules shows $described" \
  bash -c '[ "$0" = "$1" ] && [ "$2" = "$3" ] && [ "$4" = "{\"Enabled\":true,\"DurationSeconds\":300}" ]' \
  "$after_stuck" "$stuck_group" "$after_new" "$other_group" "$described"
kept=$(curl -s -v --max-time 5 -X DELETE "http://127.0.0.1:$ruled/a" -X DELETE "http://127.0.0.1:$ruled/b" 2>&1)
check "rules: a fixed response keeps the connection for the next request" \
  bash -c 'grep -q "Re-using existing connection" <<< "$0" && [ "$(grep -c "< HTTP/1.1 405" <<< "$0")" = 2 ]' "$kept"

# An HTTPS target group: the load balancer re-encrypts to nginx (its certificate not verified, as on AWS).
secure=$(for _ in 1 2; do curl -s --max-time 5 --interface 127.0.0.2 "http://127.0.0.1:$reencrypt/"; done)
check "HTTPS target group: requests re-encrypted to nginx over TLS, twice on a kept connection, the client from X-Forwarded-For ($secure)" \
  bash -c '[ "$(grep -c "nginx over TLSv1.[23] saw 127.0.0.2" <<< "$0")" = 2 ]' "$secure"
health=$(ctl describe-target-health --target-group-arn "$(ctl describe-target-groups --names secure --query 'TargetGroups[0].TargetGroupArn' --output text)" --query 'TargetHealthDescriptions[0].TargetHealth.State' --output text)
check "HTTPS target group: its health check goes over HTTPS, and the target is healthy ($health)" test "$health" = healthy

# A default action that redirects (the CDK's redirectHTTP listener): no target group, and curl follows it
# to the HTTPS listener.
followed=$(curl -s -L --max-time 5 --cacert "$("$bin" ca)" -H "Host: localhost" "http://127.0.0.1:$to_https/moved?x=1" || true)
check "a default action that redirects HTTP to HTTPS (no target group): curl -L lands on the HTTPS listener's target" \
  bash -c 'grep -q "\"path\": \"/moved?x=1\"" <<< "$0" && grep -q "\"X-Forwarded-Proto\", \"https\"" <<< "$0"' "$followed"

# weighted_random: over 20 requests both targets answer (a 2^-19 chance of a false failure).
spread=$(for _ in $(seq 20); do curl -s --max-time 5 "http://127.0.0.1:$random_port/" | field 'd["server"]'; done | sort | uniq -c | tr -s ' \n' ' ')
check "weighted_random: both targets take requests ($spread)" test "$(wc -w <<< "$spread")" = 4

# lb_cookie stickiness: curl's cookie jar keeps a client on its first target; without it, round robin.
first=$(curl -s -i -c "$tmp/jar" --max-time 5 "http://127.0.0.1:$sticky/")
kind() { grep -q "nginx saw" <<< "$1" && echo nginx || echo echo; }
stuck=$(for _ in 1 2 3 4; do kind "$(curl -s -b "$tmp/jar" --max-time 5 "http://127.0.0.1:$sticky/")"; done | sort -u | tr '\n' ' ')
loose=$(for _ in 1 2 3 4; do kind "$(curl -s --max-time 5 "http://127.0.0.1:$sticky/")"; done | sort -u | tr '\n' ' ')
check "lb_cookie stickiness: AWSALB and AWSALBCORS (SameSite=None; Secure) set for 600 s; with them every request goes to one target ($stuck), without them to both ($loose)" \
  bash -c 'grep -q "^Set-Cookie: AWSALB=[0-9a-f]*; Expires=.*; Path=/" <<< "$0" && grep -q "^Set-Cookie: AWSALBCORS=.*SameSite=None; Secure" <<< "$0" && [ "$(wc -w <<< "$1")" = 1 ] && [ "$(wc -w <<< "$2")" = 2 ]' \
  "$first" "$stuck" "$loose"

# app_cookie stickiness: once the application sets its cookie, AWSALBAPP-0 keeps the client on that target.
plain=$(curl -s -i --max-time 5 "http://127.0.0.1:$app_sticky/")
login=$(curl -s -i -c "$tmp/appjar" --max-time 5 "http://127.0.0.1:$app_sticky/login")
served_by=$(for _ in 1 2 3 4; do curl -s -b "$tmp/appjar" --max-time 5 "http://127.0.0.1:$app_sticky/" | field 'd["server"]'; done | sort -u | wc -l)
check "app_cookie stickiness: no AWSALBAPP-0 until the application sets its cookie; then every request goes to one target (of two)" \
  bash -c '! grep -q AWSALBAPP <<< "$0" && grep -q "^Set-Cookie: AWSALBAPP-0=[0-9a-f]*; Expires=" <<< "$1" && [ "$2" = 1 ]' \
  "$plain" "$login" "$served_by"

# least_outstanding_requests: a target that holds a request unanswered gets no more while the other is free.
for i in 1 2 3 4 5 6; do
  curl -s -o /dev/null -w '%{http_code}\n' --max-time 10 "http://127.0.0.1:$lor/$i" >> "$tmp/lor.codes" &
  sleep 0.2
done
wait_for() { for _ in $(seq 100); do [ "$(wc -l < "$1" 2> /dev/null || echo 0)" -ge "$2" ] && return; sleep 0.1; done; }
wait_for "$tmp/lor.codes" 6
check "least_outstanding_requests: of 6 requests at most one waits on the target that never answers ($(sort "$tmp/lor.codes" | uniq -c | tr -s ' \n' ' '))" \
  bash -c '[ "$(grep -c "^200$" "$0")" -ge 5 ]' "$tmp/lor.codes"

# Slow start (120 s, 6 s at this time scale): a target registered beside a warm one gets a small share at
# first, then an equal one. Python's requests (PyPI) is the client, one keep-alive session.
venv_python=.build/aws-venv/bin/python
warming_arn=$(ctl describe-target-groups --names warming --query 'TargetGroups[0].TargetGroupArn' --output text)
for _ in $(seq 100); do grep -q "target group warming: target 127.0.0.1:$echo_port initial → healthy" "$tmp/lb.log" && break; sleep 0.05; done
ctl register-targets --target-group-arn "$warming_arn" --targets "Id=127.0.0.1,Port=$echo2_port" > /dev/null
for _ in $(seq 100); do grep -q "target 127.0.0.1:$echo2_port initial → healthy, in slow start" "$tmp/lb.log" && break; sleep 0.02; done
share() {
  "$venv_python" - "$warming" "$echo2_port" <<'PY'
import sys, time, requests
port, new = sys.argv[1], int(sys.argv[2])
with requests.Session() as session:
    started = time.monotonic()
    servers = [session.get(f"http://127.0.0.1:{port}/", timeout=5).json()["server"] for _ in range(60)]
print(sum(1 for s in servers if s == new), file=sys.stdout)
print(f"60 requests in {time.monotonic() - started:.2f} s", file=sys.stderr)
PY
}
early=$(share)
sleep 6.2
late=$(share)
check "slow start: the event log says the new target is in slow start ($(grep -o "target 127.0.0.1:$echo2_port initial → healthy.*" "$tmp/lb.log" | head -c 120))" \
  grep -q "target 127.0.0.1:$echo2_port initial → healthy, in slow start for 120 s" "$tmp/lb.log"
check "slow start: of 60 requests (Python requests, keep-alive) the new target gets few at first ($early), half once it is over ($late)" \
  bash -c '[ "$0" -le 15 ] && [ "$1" -ge 24 ] && [ "$1" -le 36 ]' "$early" "$late"

# WebSocket through the listener: the websockets package (PyPI) on both ends, the upgrade a byte tunnel.
if [ -x "$venv_python" ] && "$venv_python" -c 'import websockets' 2> /dev/null; then
  "$venv_python" - "$ws_port" <<'PY' > /dev/null 2>&1 & pids+=($!)
import asyncio, sys, websockets
async def echo(socket):
    async for message in socket:
        await socket.send("echo " + message + " from " + socket.request.headers.get("X-Forwarded-For", "?"))
async def main():
    async with websockets.serve(echo, "127.0.0.1", int(sys.argv[1])):
        await asyncio.Future()
asyncio.run(main())
PY
  for _ in $(seq 50); do (exec 3<> "/dev/tcp/127.0.0.1/$ws_port") 2> /dev/null && break; sleep 0.1; done
  echoed=$(timeout 10 "$venv_python" - "$ws" <<'PY' 2>&1
import asyncio, sys, websockets
async def main():
    async with websockets.connect(f"ws://127.0.0.1:{sys.argv[1]}/chat") as socket:
        answers = []
        for text in ["one", "two", "x" * 200000]:
            await socket.send(text)
            answers.append(await socket.recv())
        print(answers[0], "|", answers[1], "|", len(answers[2]))
asyncio.run(main())
PY
)
  check "WebSocket (websockets from PyPI, both ends): the upgrade passes, messages go both ways, a 200 KB one too ($echoed)" \
    test "$echoed" = "echo one from 127.0.0.1 | echo two from 127.0.0.1 | 200020"
else
  echo "FAIL: the WebSocket check needs .build/aws-venv with websockets (scripts/test.sh makes it)" >&2
  failed=$((failed + 1))
fi

# What the load balancer answers itself.
raw() { python3 - "$@" <<'PY'
import socket, sys
port, data = int(sys.argv[1]), sys.argv[2].encode().decode("unicode_escape").encode("latin1")
s = socket.create_connection(("127.0.0.1", port), 5)
s.sendall(data)
out = b""
try:
    while chunk := s.recv(65536):
        out += chunk
except socket.timeout:
    out += b"<timeout>"
sys.stdout.write(out.decode("latin1"))
PY
}
bad=$(raw "$http" 'GET / HTTP/1.1\r\nHost : x\r\n\r\n')
check "a header name with a space before its colon: 400 from awselb/2.0 with ALB's body, and the connection closes" \
  bash -c 'grep -q "^HTTP/1.1 400 Bad Request" <<< "$0" && grep -q "^Server: awselb/2.0" <<< "$0" && grep -q "<center><h1>400 Bad Request</h1></center>" <<< "$0" && grep -q "^Content-Length: 122" <<< "$0"' "$bad"
check "conflicting Content-Length values: 400" grep -q "^HTTP/1.1 400" <<< "$(raw "$http" 'POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab')"
check "a request line with a control byte: 400" grep -q "^HTTP/1.1 400" <<< "$(raw "$http" 'GET /\x01 HTTP/1.1\r\nHost: x\r\n\r\n')"
huge=$(python3 -c 'print("GET / HTTP/1.1\\r\\nHost: x\\r\\nX-Big: " + "a" * 70000 + "\\r\\n\\r\\n")')
check "a header block over 64 KB: 400" grep -q "^HTTP/1.1 400" <<< "$(raw "$http" "$huge")"
many=$(python3 -c 'print(", ".join("10.0.0.%d" % i for i in range(31)))')
check "31 addresses in X-Forwarded-For: ALB's 463" grep -q "^HTTP/1.1 463" <<< "$(raw "$http" "GET / HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: $many\r\n\r\n")"
both=$(raw "$http" 'POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n')
check "Content-Length with Transfer-Encoding (defensive mode): served by chunked framing, then the connection closes (no second request)" \
  bash -c 'grep -q "\"received\": 3" <<< "$0" && ! grep -q smuggled <<< "$0" && grep -q "Connection: close" <<< "$0"' "$both"
check "a target that refuses: 502 Bad Gateway" grep -q "^HTTP/1.1 502 Bad Gateway" <<< "$(curl -s -i --max-time 5 "http://127.0.0.1:$refused/")"
check "no registered target: 503" grep -q "^HTTP/1.1 503" <<< "$(curl -s -i --max-time 5 "http://127.0.0.1:$empty/")"
started=$(date +%s%N)
timed=$(curl -s -i --max-time 10 "http://127.0.0.1:$silent_port/")
elapsed=$(( ($(date +%s%N) - started) / 1000000 ))
check "a target that never answers: 504 after the idle timeout (60 s × 0.05 = 3 s; took ${elapsed} ms)" \
  bash -c 'grep -q "^HTTP/1.1 504" <<< "$0" && [ "$1" -ge 2500 ] && [ "$1" -lt 8000 ]' "$timed" "$elapsed"
started=$(date +%s%N)
loris=$(raw "$http" 'GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ')
elapsed=$(( ($(date +%s%N) - started) / 1000000 ))
check "a slow-loris head is closed at the idle timeout (${elapsed} ms), and the loop still serves" \
  bash -c '[ "$1" -lt 8000 ] && grep -q "\"peer\"" <<< "$(curl -s --max-time 5 "http://127.0.0.1:$2/")"' "$loris" "$elapsed" "$http"
cat > "$tmp/short.py" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort")
s.shutdown(socket.SHUT_WR)
print(s.recv(100))
PY
short=$(timeout 10 python3 "$tmp/short.py" "$http" 2>&1 || true)
check "a body shorter than its length, then the client's FIN: no answer is made up, the connection just ends ($short)" \
  test "$short" = "b''"
check "...and other clients are served" grep -q '"peer"' <<< "$(curl -s --max-time 5 "http://127.0.0.1:$http/")"
curl -s --max-time 0.4 "http://127.0.0.1:$http/slow/gave-up" > /dev/null || true
gave_up=""
for _ in $(seq 20); do
  gave_up=$(grep '/slow/gave-up' "$tmp/access.jsonl" || true)
  [ -n "$gave_up" ] && break
  sleep 0.1
done
check "a client that gives up before the answer (curl --max-time 0.4, a 1 s target): ALB's 460 in the access log at once, target status - ($(head -c 160 <<< "$gave_up"))" \
  python3 -c 'import json,sys; e=json.loads(sys.argv[1]); assert e["elb_status_code"] == "460" and e["target_status_code"] == "-" and e["target:port"] != "-", e' "$gave_up"

ctl get-metrics > "$tmp/metrics"
metric() { grep "^localnlb_$1{load_balancer=\"web-alb\",target_group=\"$2\"}" "$tmp/metrics" | awk '{ print $2 }'; }
check "metrics in AWS/ApplicationELB's words: RequestCount, HTTPCode_Target_2XX_Count, HTTPCode_ELB_4XX/5XX_Count" \
  bash -c '[ "$0" -ge 8 ] && [ "$1" -ge 8 ] && [ "$2" -ge 4 ] && [ "$3" = 1 ] && [ "$4" = 1 ]' \
  "$(metric request_count_total echo)" "$(metric httpcode_target_2xx_count_total echo)" \
  "$(metric httpcode_elb_4xx_count_total echo)" "$(metric httpcode_elb_5xx_count_total refused)" \
  "$(metric httpcode_elb_5xx_count_total silent)"
lb_metric() { ctl get-metrics | grep "^localnlb_load_balancer_httpcode_elb_$1_count_total{load_balancer=\"web-alb\"}" | awk '{ print $2 }'; }
redirects_before=$(lb_metric 3xx)
curl -s -o /dev/null --max-time 5 "http://127.0.0.1:$to_https/counted"
redirects_after=$(lb_metric 3xx)
check "metrics by load balancer: a redirect of a listener with no target group counts in HTTPCode_ELB_3XX_Count ($redirects_before → $redirects_after); 502, 503, 504 and 4XX by code ($(lb_metric 502) $(lb_metric 503) $(lb_metric 504) $(lb_metric 4xx))" \
  bash -c '[ "$1" = $(($0 + 1)) ] && [ "$2" -ge 1 ] && [ "$3" -ge 1 ] && [ "$4" -ge 1 ] && [ "$5" -ge 5 ]' \
  "$redirects_before" "$redirects_after" "$(lb_metric 502)" "$(lb_metric 503)" "$(lb_metric 504)" "$(lb_metric 4xx)"
lb=$(ctl describe-load-balancers --output text | awk '$1 == "LOADBALANCERS" { print $6 }')
check "DescribeLoadBalancers: Type application, an app ARN, ALB's DNS name shape and hosted zone" \
  bash -c 'grep -q ":loadbalancer/app/web-alb/" <<< "$0" && grep -qP "\tapplication\t" <<< "$1" && grep -q "web-alb-[0-9a-f]*\.us-east-1\.elb\.amazonaws\.com" <<< "$1" && grep -q Z35SXDOTRQ7X7K <<< "$1"' \
  "$lb" "$(ctl describe-load-balancers --output text)"
attrs=$(ctl describe-load-balancer-attributes --load-balancer-arn "$lb" --output text)
check "DescribeLoadBalancerAttributes lists ALB's (idle_timeout.timeout_seconds 60, routing.http.xff_header_processing.mode append)" \
  bash -c 'grep -qP "idle_timeout.timeout_seconds\t60" <<< "$0" && grep -qP "routing.http.xff_header_processing.mode\tappend" <<< "$0"' "$attrs"

# Chaos: 400 clients doing what a broken client does (random bytes, a head cut short, a body cut short with a
# reset, garbage pipelined after a good request, an upgrade then a reset) beside well-behaved ones; the
# daemon survives, every good request is answered, and no descriptor is left behind.
fds() { ls "/proc/$lb_pid/fd" | wc -l; }
fds_before=$(fds)
python3 - "$http" "$ws" > "$tmp/chaos.out" 2>&1 <<'PY' || true
import os, random, socket, struct, sys, threading
port, ws = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(7)
good = []
def bad(kind):
    try:
        s = socket.create_connection(("127.0.0.1", port if kind != 4 else ws), 5)
        s.settimeout(2)
        if kind == 0:
            s.sendall(os.urandom(rng.randint(1, 3000)))
        elif kind == 1:
            s.sendall(b"GET /cut HTTP/1.1\r\nHost: x\r\nX-Half: ")
        elif kind == 2:
            s.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + os.urandom(5000))
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        elif kind == 3:
            s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" + os.urandom(200))
            s.recv(100)
        else:
            s.sendall(b"GET /chat HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
                      b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
            s.recv(100)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        s.close()
    except OSError:
        pass
def fine():
    try:
        s = socket.create_connection(("127.0.0.1", port), 5)
        s.sendall(b"GET /fine HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        good.append(data.startswith(b"HTTP/1.1 200"))
    except OSError:
        good.append(False)
threads = []
for i in range(400):
    threads.append(threading.Thread(target=bad, args=(i % 5,)))
    if i % 8 == 0:
        threads.append(threading.Thread(target=fine))
for t in threads:
    t.start()
for t in threads:
    t.join(20)
print(f"{sum(good)}/{len(good)} good requests answered")
PY
sleep 3.5  # the idle timeout (3 s here) ends what the broken clients left open
check "chaos: 400 broken clients beside good ones: $(cat "$tmp/chaos.out"); the daemon serves on, $(fds) descriptors against $fds_before before" \
  bash -c 'grep -q "^50/50 good" "$0" && grep -q "\"peer\"" <<< "$(curl -s --max-time 5 "http://127.0.0.1:$1/")" && [ "$(ls /proc/$2/fd | wc -l)" -le "$(( $3 + 8 ))" ]' \
  "$tmp/chaos.out" "$http" "$lb_pid" "$fds_before"

# The access log: one entry a request, ALB's fields in ALB's order (JSON lines with --flow-log FILE).
python3 - "$tmp/access.jsonl" "$http" "$(field 'dict(d["headers"])["X-Amzn-Trace-Id"]' <<< "$seen")" "$ruled" > "$tmp/access.out" <<'PY'
import json, sys
path, port, trace, ruled = sys.argv[1:]
entries = [json.loads(line) for line in open(path)]
order = ["type", "time", "elb", "client:port", "target:port", "request_processing_time", "target_processing_time",
         "response_processing_time", "elb_status_code", "target_status_code", "received_bytes", "sent_bytes", "request",
         "user_agent", "ssl_cipher", "ssl_protocol", "target_group_arn", "trace_id", "domain_name", "chosen_cert_arn",
         "matched_rule_priority", "request_creation_time", "actions_executed", "redirect_url", "error_reason",
         "target:port_list", "target_status_code_list", "classification", "classification_reason", "conn_trace_id"]
first = next(e for e in entries if e["request"] == f"GET http://127.0.0.1:{port}/hello?x=1 HTTP/1.1")
moved = next(e for e in entries if e["actions_executed"] == "redirect")
bad = next(e for e in entries if e["elb_status_code"] == "400")
ok = (all(list(e) == order for e in entries) and first["client:port"].startswith("127.0.0.2:")
      and first["elb"].startswith("app/web-alb/") and first["elb_status_code"] == first["target_status_code"] == "200"
      and first["trace_id"] == trace and first["matched_rule_priority"] == "0"
      and first["target_group_arn"].endswith(":targetgroup/echo/" + first["target_group_arn"].split("/")[-1])
      and moved["redirect_url"].startswith("https://new.old.shop.test:443/v2/cart/1") and moved["matched_rule_priority"] == "20"
      and moved["target:port"] == "-" and bad["target:port"] == "-" and bad["target_status_code"] == "-")
print("ok" if ok else f"{len(entries)} entries; first {first}; moved {moved}")
PY
check "access log: every request an entry with ALB's 30 fields in ALB's order; the target's status and trace id, the matched rule, a redirect's URL ($(head -c 300 "$tmp/access.out"))" \
  grep -qx ok "$tmp/access.out"

# The same refusals through the JSON API and a reload: nothing half-applies.
refusal=$(curl -s -X PUT "http://127.0.0.1:$admin/target-groups/echo/attributes" -H 'Content-Type: application/json' \
  -d '{"Attributes":[{"Key":"stickiness.type","Value":"source_ip"}]}')
check "JSON API: source_ip stickiness on an HTTP group is refused by name (an NLB's), and the group still serves" \
  bash -c 'grep -q "is not lb_cookie or app_cookie" <<< "$0" && grep -q "\"peer\"" <<< "$(curl -s --max-time 5 "http://127.0.0.1:$1/")"' \
  "$refusal" "$http"
refusal=$(curl -s -X PUT "http://127.0.0.1:$admin/target-groups/warming/attributes" -H 'Content-Type: application/json' \
  -d '{"Attributes":[{"Key":"slow_start.duration_seconds","Value":"10"}]}')
check "JSON API: slow_start.duration_seconds 10 is refused (0, or 30 to 900)" grep -q "is not 0 (off) or a number of seconds from 30 to 900" <<< "$refusal"
lor_arn=$(ctl describe-target-groups --names lor --query 'TargetGroups[0].TargetGroupArn' --output text)
refusal=$(ctl modify-target-group-attributes --target-group-arn "$lor_arn" --attributes Key=slow_start.duration_seconds,Value=30 2>&1 || true)
check "Query API: slow start on a least_outstanding_requests group is refused, naming the algorithm ($(head -c 200 <<< "$refusal"))" \
  bash -c 'grep -q "ValidationError" <<< "$0" && grep -q "cannot be enabled with the least_outstanding_requests routing algorithm" <<< "$0"' "$refusal"
cp "$tmp/alb.json" "$tmp/alb.good.json"
sed -i 's/"Key": "slow_start.duration_seconds", "Value": "120"/"Key": "slow_start.duration_seconds", "Value": "5"/' "$tmp/alb.json"
kill -HUP "$lb_pid"
sleep 0.5
check "a reload with slow_start.duration_seconds 5 is refused, naming it, and the listener keeps serving" \
  bash -c 'grep -q "slow_start.duration_seconds.*5 is not 0 (off)" "$0" && grep -q "\"peer\"" <<< "$(curl -s --max-time 5 "http://127.0.0.1:$1/")"' \
  "$tmp/lb.log" "$warming"
cp "$tmp/alb.good.json" "$tmp/alb.json"
sed -i 's/"Key": "idle_timeout.timeout_seconds", "Value": "60"/"Key": "idle_timeout.timeout_seconds", "Value": "0"/' "$tmp/alb.json"
kill -HUP "$lb_pid"
sleep 0.5
check "a reload with idle_timeout.timeout_seconds 0 is refused, naming it, and the listener keeps serving" \
  bash -c 'grep -q "idle_timeout.timeout_seconds.*out of range" "$0" && grep -q "\"peer\"" <<< "$(curl -s --max-time 5 "http://127.0.0.1:$1/")"' \
  "$tmp/lb.log" "$http"
cp "$tmp/alb.good.json" "$tmp/alb.json"

# routing.http.drop_invalid_header_fields.enabled, changed live: a field named with an underscore is dropped.
lb_arn=$(ctl describe-load-balancers --output text | awk '$1 == "LOADBALANCERS" { print $6 }')
before_drop=$(curl -s --max-time 5 -H 'X_Legacy: 1' -H 'X-Fine: 2' "http://127.0.0.1:$http/")
ctl modify-load-balancer-attributes --load-balancer-arn "$lb_arn" \
  --attributes Key=routing.http.drop_invalid_header_fields.enabled,Value=true > /dev/null
after_drop=$(curl -s --max-time 5 -H 'X_Legacy: 1' -H 'X-Fine: 2' "http://127.0.0.1:$http/")
check "drop_invalid_header_fields: X_Legacy reaches the target until the attribute is on, then only X-Fine does" \
  bash -c 'grep -q "X_Legacy" <<< "$0" && ! grep -q "X_Legacy" <<< "$1" && grep -q "X-Fine" <<< "$1"' "$before_drop" "$after_drop"

ctl modify-load-balancer-attributes --load-balancer-arn "$lb_arn" \
  --attributes Key=routing.http.preserve_host_header.enabled,Value=true > /dev/null
preserved=$(curl -s --max-time 5 -H 'Host: app.example' "http://127.0.0.1:$http/" | field 'dict(d["headers"])["Host"]')
check "routing.http.preserve_host_header.enabled true: the Host goes as sent ($preserved)" test "$preserved" = "app.example"

# routing.http.x_amzn_tls_version_and_cipher_suite.enabled: the HTTPS listener's TLS version and cipher go to
# the target, under the names the listener's attributes give them.
ctl modify-load-balancer-attributes --load-balancer-arn "$lb_arn" \
  --attributes Key=routing.http.x_amzn_tls_version_and_cipher_suite.enabled,Value=true > /dev/null
# The listener's policy is AWS's default, ELBSecurityPolicy-2016-08: TLS 1.2 at most.
tls_seen=$(curl -s --max-time 5 --cacert "$ca" "https://localhost:$https/tls-info")
https_arn=$(ctl describe-listeners --load-balancer-arn "$lb_arn" --query "Listeners[?Port==\`$https\`].ListenerArn" --output text)
ctl modify-listener-attributes --listener-arn "$https_arn" \
  --attributes Key=routing.http.request.x_amzn_tls_version.header_name,Value=X-Tls-Version > /dev/null
renamed=$(curl -s --max-time 5 --cacert "$ca" "https://localhost:$https/tls-info")
check "X-Amzn-Tls-Version and X-Amzn-Tls-Cipher-Suite reach the target over the HTTPS listener ($(field '[h for h in d["headers"] if "Tls" in h[0]]' <<< "$tls_seen")); renamed by the listener attribute ($(field '[h for h in d["headers"] if "Tls" in h[0]]' <<< "$renamed"))" \
  bash -c 'python3 -c "import json,sys; h=dict(json.loads(sys.argv[1])[\"headers\"]); r=dict(json.loads(sys.argv[2])[\"headers\"]); assert h[\"X-Amzn-Tls-Version\"] == \"TLSv1.2\" and h[\"X-Amzn-Tls-Cipher-Suite\"].startswith(\"ECDHE-\") and r[\"X-Tls-Version\"] == \"TLSv1.2\" and \"X-Amzn-Tls-Version\" not in r and r[\"X-Amzn-Tls-Cipher-Suite\"] == h[\"X-Amzn-Tls-Cipher-Suite\"]" "$0" "$1"' \
  "$tls_seen" "$renamed"
bad_name=$(ctl modify-listener-attributes --listener-arn "$https_arn" --attributes "Key=routing.http.request.x_amzn_tls_cipher_suite.header_name,Value=X Cipher" 2>&1 || true)
check "a header name with a space is refused by name (Query API)" \
  bash -c 'grep -q ValidationError <<< "$0" && grep -q "x_amzn_tls_cipher_suite.header_name.*is not a header name" <<< "$0"' "$bad_name"
logged_tls=$(grep '/tls-info' "$tmp/access.jsonl" | head -1)
check "the access log gives ssl_protocol and ssl_cipher for HTTPS requests ($(head -c 120 <<< "$logged_tls"))" \
  python3 -c 'import json,sys; e=json.loads(sys.argv[1]); assert e["ssl_protocol"] == "TLSv1.2" and e["ssl_cipher"].startswith("ECDHE-") and e["type"] == "https", e' "$logged_tls"

# Bad configuration: each named, with the fix.
cat > "$tmp/bad.json" <<JSON
{ "LoadBalancers": [ { "Name": "alb", "Type": "application", "SubnetMappings": [ { "SubnetId": "s", "PrivateIPv4Address": "127.0.0.1" } ],
      "LoadBalancerAttributes": [ { "Key": "routing.http.xff_header_processing.mode", "Value": "prepend" } ] },
    { "Name": "nlb", "SubnetMappings": [ { "SubnetId": "t", "PrivateIPv4Address": "127.0.0.9" } ] } ],
  "Listeners": [ { "LoadBalancerArn": "alb", "Port": 80, "Protocol": "TCP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "tcp" } ] },
    { "LoadBalancerArn": "nlb", "Port": 81, "Protocol": "HTTP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "web" } ] },
    { "LoadBalancerArn": "alb", "Port": 82, "Protocol": "HTTP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "web" } ],
      "ListenerAttributes": [ { "Key": "routing.http.response.x_frame_options.header_value", "Value": "NEVER" } ] } ],
  "TargetGroups": [ { "Name": "web", "Protocol": "HTTP", "Port": 80, "TargetType": "ip",
      "TargetGroupAttributes": [ { "Key": "proxy_protocol_v2.enabled", "Value": "true" } ] },
    { "Name": "random", "Protocol": "HTTP", "Port": 80, "TargetType": "ip",
      "TargetGroupAttributes": [ { "Key": "load_balancing.algorithm.type", "Value": "weighted_random" },
        { "Key": "slow_start.duration_seconds", "Value": "30" } ] },
    { "Name": "tcp", "Port": 80, "TargetType": "ip" } ] }
JSON
"$bin" check-config "$tmp/bad.json" > "$tmp/bad.out" 2>&1 || true
check "check-config: a TCP listener on an application load balancer is named" grep -q "TCP is a network load balancer's protocol; alb is an application load balancer" "$tmp/bad.out"
check "check-config: an HTTP listener on a network load balancer says to give it Type application" grep -q "give it Type application" "$tmp/bad.out"
check "check-config: an unknown xff mode lists ALB's" grep -q '"prepend" is not append, preserve or remove' "$tmp/bad.out"
check "check-config: the PROXY protocol on an HTTP group points at X-Forwarded-For" grep -q "gets the client's address in X-Forwarded-For" "$tmp/bad.out"
check "check-config: a listener's X-Frame-Options value AWS does not take is named" grep -q 'x_frame_options.header_value.*"NEVER" is not DENY, SAMEORIGIN or ALLOW-FROM' "$tmp/bad.out"
check "check-config: slow start with weighted_random is refused, naming both" grep -q 'slow_start.duration_seconds.*cannot be enabled with the weighted_random routing algorithm' "$tmp/bad.out"

# The listener's own attributes (header modification): response headers added to every answer, the
# target's and the load balancer's own, and no Server header on the latter once it is turned off.
lb_arn_now=$(ctl describe-load-balancers --names web-alb --query 'LoadBalancers[0].LoadBalancerArn' --output text)
listener_arn() { ctl describe-listeners --load-balancer-arn "$lb_arn_now" --query "Listeners[?Port==\`$1\`].ListenerArn" --output text; }
for port in "$http" "$empty"; do
  ctl modify-listener-attributes --listener-arn "$(listener_arn "$port")" --attributes \
    Key=routing.http.response.server.enabled,Value=false Key=routing.http.response.x_frame_options.header_value,Value=DENY \
    "Key=routing.http.response.strict_transport_security.header_value,Value=max-age=31536000; includeSubDomains" > /dev/null
done
headed=$(curl -s -i --max-time 5 "http://127.0.0.1:$http/")
own=$(curl -s -i --max-time 5 "http://127.0.0.1:$empty/")
check "listener attributes: X-Frame-Options and Strict-Transport-Security on the target's answer and on the load balancer's own 503, which has no Server header any more" \
  bash -c 'for a in "$0" "$1"; do grep -q "^X-Frame-Options: DENY" <<< "$a" && grep -q "^Strict-Transport-Security: max-age=31536000; includeSubDomains" <<< "$a" || exit 1; done; grep -q "^HTTP/1.1 503" <<< "$1" && ! grep -qi "^Server: awselb" <<< "$1"' \
  "$headed" "$own"
described=$(ctl describe-listener-attributes --listener-arn "$(listener_arn "$http")" --query 'Attributes[?Key==`routing.http.response.x_frame_options.header_value`].Value' --output text)
refusal=$(ctl modify-listener-attributes --listener-arn "$(listener_arn "$http")" --attributes Key=routing.http.response.x_content_type_options.header_value,Value=sniff 2>&1 || true)
check "listener attributes: describe-listener-attributes shows them ($described); x_content_type_options sniff is refused by name" \
  bash -c '[ "$0" = DENY ] && grep -q "ValidationError" <<< "$1" && grep -q "x_content_type_options.header_value.*is not nosniff" <<< "$1"' "$described" "$refusal"

# GET /flows lists the ALB's connections, with the request in flight (the access log is on here).
curl -s --max-time 5 "http://127.0.0.1:$http/slow/listed" > /dev/null &
sleep 0.4
listed=$(ctl describe-flows)
wait $! || true
check "GET /flows lists an ALB connection: protocol HTTP, state request, the request in flight" \
  bash -c 'grep -q "\"protocol\": *\"HTTP\"" <<< "$0" && grep -q "/slow/listed" <<< "$0" && grep -q "\"state\": *\"request\"" <<< "$0"' "$listed"

# Shutdown: an idle keep-alive client is let go at once; a request in flight gets its answer (with
# Connection: close), then the daemon exits without waiting out the drain.
curl -s -i --max-time 10 "http://127.0.0.1:$http/slow" > "$tmp/slow.out" 2>&1 &
slow_pid=$!
sleep 0.3
started=$(date +%s%N)
kill -TERM "$lb_pid"
wait "$slow_pid" || true
for _ in $(seq 100); do kill -0 "$lb_pid" 2> /dev/null || break; sleep 0.05; done
elapsed=$(( ($(date +%s%N) - started) / 1000000 ))
check "SIGTERM: the request in flight is answered (200, Connection: close) and localnlb exits right after (${elapsed} ms)" \
  bash -c 'grep -q "^HTTP/1.1 200" "$0" && grep -q "^Connection: close" "$0" && ! kill -0 "$1" 2> /dev/null && [ "$2" -lt 3000 ]' \
  "$tmp/slow.out" "$lb_pid" "$elapsed"

echo "alb: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
