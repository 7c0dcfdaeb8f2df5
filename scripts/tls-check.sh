#!/usr/bin/env bash
# TLS listeners with clients and servers nobody here wrote: curl and openssl s_client (SNI, ALPN,
# versions, ciphers, the certificate), Python's ssl module, and nginx behind PROXY v2 on a TLS
# listener; then what a TLS listener refuses (a plaintext client, a version or cipher outside its
# policy, a stalled ClientHello, renegotiation) without disturbing other flows.
#   scripts/tls-check.sh [.build/debug/localnlb]
set -euo pipefail
bin=$(readlink -f "${1:-.build/debug/localnlb}")
cd "$(dirname "$0")/.."
. scripts/checks.sh
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; [ -f "$tmp/nginx.pid" ] && kill "$(cat "$tmp/nginx.pid")" 2>/dev/null; wait 2>/dev/null || true; rm -rf "$tmp"' EXIT
export LOCALNLB_CA_DIR=$tmp/ca
admin=$(free_port); l1=$(free_port); l2=$(free_port); l3=$(free_port); l4=$(free_port)
tport=$(free_port); nginx_port=$(free_port); nginx_tls=$(free_port); l5=$(free_port); l6=$(free_port)
nginx_tls_pp=$(free_port); l7=$(free_port); haproxy_tls=$(free_port); l8=$(free_port)
arn="arn:aws:acm:us-east-1:000000000000:certificate/0f5c1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b"

mkdir -p "$tmp/nginx-temp"
# nginx as a TLS target, with a certificate of its own that nobody trusts (NLB does not verify targets).
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
        listen 127.0.0.1:$nginx_port proxy_protocol;
        set_real_ip_from 127.0.0.1;
        real_ip_header proxy_protocol;
        location / { return 200 "nginx saw \$remote_addr\n"; }
    }
    server {
        listen 127.0.0.1:$nginx_tls ssl;
        ssl_certificate $tmp/nginx.pem;
        ssl_certificate_key $tmp/nginx-key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / { return 200 "nginx over \$ssl_protocol\n"; }
    }
    server {
        listen 127.0.0.1:$nginx_tls_pp ssl proxy_protocol;
        ssl_certificate $tmp/nginx.pem;
        ssl_certificate_key $tmp/nginx-key.pem;
        location / { return 200 "nginx over TLS saw \$proxy_protocol_addr\n"; }
    }
}
NGINX
nginx -p "$tmp" -c "$tmp/nginx.conf" -e "$tmp/nginx-error.log"

cat > "$tmp/tls.json" <<JSON
{ "Admin": { "Address": "127.0.0.1:$admin" }, "Dns": { "Enabled": false },
  "LoadBalancer": { "Name": "tls", "SubnetMappings": [ { "SubnetId": "subnet-a", "PrivateIPv4Address": "127.0.0.1" } ] },
  "Listeners": [
    { "Port": $l1, "Protocol": "TLS", "Certificates": [ { "CertificateArn": "$arn" } ], "AlpnPolicy": ["HTTP1Only"],
      "DefaultActions": [ { "Type": "forward", "TargetGroupName": "pp" } ] },
    { "Port": $l2, "Protocol": "TLS", "Certificates": [ { "CertificateArn": "$arn" } ],
      "SslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06", "AlpnPolicy": ["HTTP2Preferred"],
      "DefaultActions": [ { "Type": "forward", "TargetGroupName": "plain" } ] },
    { "Port": $l3, "Protocol": "TCP", "DefaultActions": [ { "Type": "forward", "TargetGroupName": "tcp" } ] },
    { "Port": $l4, "Protocol": "TLS", "Certificates": [ { "CertificateArn": "$arn" } ],
      "DefaultActions": [ { "Type": "forward", "TargetGroupName": "nginx" } ] },
    { "Port": $l5, "Protocol": "TLS", "Certificates": [ { "CertificateArn": "$arn" } ],
      "SslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06",
      "DefaultActions": [ { "Type": "forward", "TargetGroupName": "reencrypt" } ] },
    { "Port": $l6, "Protocol": "TLS", "Certificates": [ { "CertificateArn": "$arn" } ],
      "DefaultActions": [ { "Type": "forward", "TargetGroupName": "wrong" } ] },
    { "Port": $l7, "Protocol": "TLS", "Certificates": [ { "CertificateArn": "$arn" } ],
      "DefaultActions": [ { "Type": "forward", "TargetGroupName": "reencrypt-pp" } ] },
    { "Port": $l8, "Protocol": "TLS", "Certificates": [ { "CertificateArn": "$arn" } ], "AlpnPolicy": "HTTP2Optional",
      "DefaultActions": [ { "Type": "forward", "TargetGroupName": "haproxy" } ] } ],
  "TargetGroups": [
    { "Name": "pp", "Port": $tport, "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1" } ],
      "TargetGroupAttributes": [ { "Key": "proxy_protocol_v2.enabled", "Value": "true" } ] },
    { "Name": "plain", "Port": $tport, "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1" } ] },
    { "Name": "tcp", "Port": $tport, "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1" } ] },
    { "Name": "nginx", "Port": $nginx_port, "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1" } ],
      "TargetGroupAttributes": [ { "Key": "proxy_protocol_v2.enabled", "Value": "true" } ] },
    { "Name": "reencrypt", "Protocol": "TLS", "Port": $nginx_tls, "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1" } ],
      "HealthCheckProtocol": "HTTPS", "HealthCheckPath": "/" },
    { "Name": "wrong", "Protocol": "TLS", "Port": $tport, "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1" } ],
      "HealthCheckProtocol": "HTTPS" },
    { "Name": "haproxy", "Protocol": "TLS", "Port": $haproxy_tls, "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1" } ] },
    { "Name": "reencrypt-pp", "Protocol": "TLS", "Port": $nginx_tls_pp, "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1" } ],
      "HealthCheckProtocol": "HTTPS",
      "TargetGroupAttributes": [ { "Key": "proxy_protocol_v2.enabled", "Value": "true" } ] } ] }
JSON
# HAProxy as a TLS target too (mode http, answering itself).
cat "$tmp/nginx.pem" "$tmp/nginx-key.pem" > "$tmp/haproxy.pem"
cat > "$tmp/haproxy.cfg" <<HAPROXY
global
    maxconn 100
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend tls
    bind 127.0.0.1:$haproxy_tls ssl crt $tmp/haproxy.pem
    http-request return status 200 content-type text/plain string "haproxy over TLS"
HAPROXY
haproxy -db -f "$tmp/haproxy.cfg" > /dev/null 2>&1 & pids+=($!)
"$bin" target --listen "127.0.0.1:$tport" --name t --proxy-protocol optional > /dev/null 2>&1 & pids+=($!)
"$bin" serve --config "$tmp/tls.json" --time-scale 0.01 --flow-log off 2> "$tmp/lb.log" & pids+=($!)
ctl() { "$bin" ctl --endpoint-url "http://127.0.0.1:$admin" "$@"; }
for _ in $(seq 100); do ctl describe-load-balancers > /dev/null 2>&1 && break; sleep 0.1; done
ca=$("$bin" ca)
# s_client's summary of a handshake: $1 port, the rest s_client's options.
hello() { local port=$1; shift; echo Q | timeout 5 openssl s_client -connect "127.0.0.1:$port" "$@" 2>&1 || true; }

check "localnlb ca prints the authority's certificate, its key kept with mode 0600" \
  sh -c "test -f '$ca' && test \"\$(stat -c %a '$tmp/ca/ca-key.pem')\" = 600"
reply=$(curl -s --max-time 5 --cacert "$ca" --interface 127.0.0.2 "https://localhost:$l1/" || true)
check "curl --cacert verifies the listener's certificate (an ARN nobody imported, issued by the local CA) and the target answers" \
  grep -q '"target":"t"' <<< "$reply"
check "behind a TLS listener the PROXY v2 header carries the client's address (127.0.0.2), before the decrypted bytes" \
  grep -q '"source":"127.0.0.2:' <<< "$reply"
check "the certificate holds the node's address too: https://127.0.0.1 verifies" \
  sh -c "curl -s --max-time 5 --cacert '$ca' 'https://127.0.0.1:$l1/' | grep -q '\"target\":\"t\"'"
dns=$(ctl describe-load-balancers --output text | awk '$1 == "LOADBALANCERS" { print $4 }')
check "and the load balancer's DNS name (SNI $dns)" \
  grep -q 'Verify return code: 0 (ok)' <<< "$(hello "$l1" -servername "$dns" -CAfile "$ca" -verify_hostname "$dns" -verify_return_error)"
old=$(hello "$l1" -tls1 -cipher 'DEFAULT@SECLEVEL=0')
check "ELBSecurityPolicy-2016-08 (the default) accepts a TLS 1.0 client" grep -q 'Protocol  : TLSv1$' <<< "$old"
refused=$(hello "$l2" -tls1 -cipher 'DEFAULT@SECLEVEL=0')
check "ELBSecurityPolicy-TLS13-1-2-2021-06 refuses it" grep -q 'Cipher is (NONE)' <<< "$refused"
check "TLS 1.3 on the TLS 1.3 policy" grep -q 'New, TLSv1.3, Cipher is TLS_' <<< "$(hello "$l2" -tls1_3)"
check "a cipher outside the policy (ECDHE-ECDSA-AES128-SHA, TLS 1.2) is refused by TLS13-1-2-2021-06" \
  grep -q 'Cipher is (NONE)' <<< "$(hello "$l2" -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA)"
check "...and taken by 2016-08" grep -q 'Cipher is ECDHE-ECDSA-AES128-SHA$' <<< "$(hello "$l1" -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA)"
check "ALPN HTTP2Preferred picks h2 from h2,http/1.1" grep -q 'ALPN protocol: h2' <<< "$(hello "$l2" -alpn h2,http/1.1)"
check "ALPN HTTP1Only picks http/1.1" grep -q 'ALPN protocol: http/1.1' <<< "$(hello "$l1" -alpn h2,http/1.1)"
python3 - "$l2" "$ca" > "$tmp/python.out" <<'PY'
import socket, ssl, sys
port, ca = int(sys.argv[1]), sys.argv[2]
context = ssl.create_default_context(cafile=ca)
context.set_alpn_protocols(["h2", "http/1.1"])
with socket.create_connection(("127.0.0.1", port), 5) as raw:
    with context.wrap_socket(raw, server_hostname="localhost") as tls:
        print(tls.version(), tls.cipher()[0], tls.selected_alpn_protocol(), dict(x[0] for x in tls.getpeercert()["subject"])["organizationName"])
PY
check "Python's ssl verifies and negotiates TLSv1.3, a TLS 1.3 suite and h2" \
  grep -qE '^TLSv1.3 TLS_(AES_128_GCM_SHA256|AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256) h2 localnlb$' "$tmp/python.out"
check "nginx behind PROXY v2 on a TLS listener logs the client's address" \
  sh -c "curl -s --max-time 5 --cacert '$ca' --interface 127.0.0.3 'https://localhost:$l4/' | grep -qx 'nginx saw 127.0.0.3'"

check "a TLS target group: the listener re-encrypts to nginx's TLS (not verifying its certificate, as AWS), TLS 1.3 behind a TLS 1.3 policy" \
  sh -c "curl -s --max-time 5 --cacert '$ca' 'https://localhost:$l5/' | grep -qx 'nginx over TLSv1.3'"
check "a TLS group with PROXY v2: the header goes before the TLS handshake (nginx: listen … ssl proxy_protocol)" \
  sh -c "curl -s --max-time 5 --cacert '$ca' --interface 127.0.0.4 'https://localhost:$l7/' | grep -qx 'nginx over TLS saw 127.0.0.4'"
check "HAProxy as a TLS target behind a TLS listener (re-encrypted)" \
  sh -c "curl -s --max-time 5 --cacert '$ca' --http1.1 'https://localhost:$l8/' | grep -qx 'haproxy over TLS'"
optional=$(curl -sv --max-time 5 --cacert "$ca" --http2 -o /dev/null "https://localhost:$l8/" 2>&1 || true)
preferred=$(curl -sv --max-time 5 --cacert "$ca" --http2 -o /dev/null "https://localhost:$l2/" 2>&1 || true)
check "curl --http2: HTTP2Optional prefers http/1.1 (AWS's order), HTTP2Preferred gives h2" \
  bash -c "grep -q 'server accepted http/1.1' <<< \"\$0\" && grep -q 'server accepted h2' <<< \"\$1\"" "$optional" "$preferred"
check "...and its HTTPS health checks, the LOCAL header first, pass" \
  sh -c "for _ in \$(seq 50); do '$bin' ctl describe-target-health --target-group-name reencrypt-pp --endpoint-url http://127.0.0.1:$admin | grep -q '\"healthy\"' && exit 0; sleep 0.1; done; exit 1"
wrong=$(curl -s --max-time 5 --cacert "$ca" "https://localhost:$l6/" 2>&1 || true)
check "a plaintext target behind a TLS group: the client gets no answer" test -z "$(grep -o '"target"' <<< "$wrong")"
health() { ctl describe-target-health --target-group-name "$1" --query 'TargetHealthDescriptions[0].TargetHealth.State' --output text; }
for _ in $(seq 50); do [ "$(health reencrypt) $(health wrong)" = "healthy unhealthy" ] && break; sleep 0.1; done
check "HTTPS health checks: nginx's TLS answers 200 (healthy); a plaintext target fails the handshake (unhealthy)" \
  test "$(health reencrypt) $(health wrong)" = "healthy unhealthy"
check "...and the log names the cause: the TLS handshake, and the question to ask" \
  grep -q "target group wrong: target 127.0.0.1:$tport initial → unhealthy (Target.FailedHealthChecks): TLS handshake: .*does the target speak TLS on the health-check port" "$tmp/lb.log"

# What a TLS listener refuses, each without disturbing the others.
plain=$(python3 - "$l1" <<'PY'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
s.settimeout(5)
data = b""
try:
    while chunk := s.recv(4096):
        data += chunk
except OSError:
    pass
print(data[:200])
PY
)
check "a plaintext client on a TLS listener gets no answer from the target" test -z "$(grep -o '"target"' <<< "$plain")"
python3 - "$l1" > "$tmp/stall.out" <<'PY' &
import socket, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), 5)
s.send(b"\x16\x03\x01\x00")  # the first bytes of a ClientHello, and no more
start = time.time()
s.settimeout(20)
try:
    while s.recv(100):
        pass
    print("closed after", round(time.time() - start))
except (ConnectionResetError, OSError):
    print("closed after", round(time.time() - start))
PY
stall=$!
check "while a ClientHello stalls, other TLS flows go on" \
  sh -c "curl -s --max-time 5 --cacert '$ca' 'https://localhost:$l1/' | grep -q '\"target\":\"t\"'"
check "...and TCP ones" sh -c "curl -s --max-time 5 'http://127.0.0.1:$l3/' | grep -q '\"target\":\"t\"'"
wait "$stall" || true
check "a stalled ClientHello is closed after AWS's 10 s" grep -qE '^closed after (9|10|11|12)$' "$tmp/stall.out"
reneg=$( (printf 'R\n'; sleep 1; printf 'GET / HTTP/1.0\r\n\r\n'; sleep 1) | timeout 6 openssl s_client -connect "127.0.0.1:$l1" -tls1_2 -CAfile "$ca" 2>&1 || true)
check "a renegotiation is refused (as on NLB): OpenSSL's 'no renegotiation', and no answer after it" \
  bash -c "grep -q 'no renegotiation' <<< \"\$0\" && ! grep -q '\"target\":\"t\"' <<< \"\$0\"" "$reneg"
# Churn: clients that vanish mid-handshake, mid-request, after garbage, beside good ones; afterwards the
# daemon holds the descriptors it held before, and still serves.
lbpid=$(pgrep -f "serve --config $tmp/tls.json" | head -1)
# Sockets only: the pipe pool keeps the pipes it grew to for the next flows.
sockets() { ls -l "/proc/$lbpid/fd" 2>/dev/null | grep -c 'socket:'; }
fds_before=$(sockets)
python3 - "$l1" "$l5" "$ca" > "$tmp/churn.out" <<'PY'
import random, socket, ssl, sys, threading
port, reencrypt, ca = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
context = ssl.create_default_context(cafile=ca)
random.seed(7)
good = [0]
lock = threading.Lock()
def client(i):
    kind = i % 5
    target = reencrypt if i % 2 else port
    try:
        raw = socket.create_connection(("127.0.0.1", target), 5)
        if kind == 0:
            raw.sendall(b"\x16\x03\x01\x02\x00\x01")  # a ClientHello cut short, then gone
            raw.close()
            return
        if kind == 1:
            raw.sendall(bytes(random.getrandbits(8) for _ in range(300)))  # garbage
            raw.close()
            return
        tls = context.wrap_socket(raw, server_hostname="localhost")
        if kind == 2:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")  # half a request, then a reset
            raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            raw.close()
            return
        tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := tls.recv(4096):
            data += chunk
        if b"200" in data[:20] or b'"target"' in data:
            with lock:
                good[0] += 1
        tls.close()
    except (OSError, ssl.SSLError):
        pass
threads = [threading.Thread(target=client, args=(i,)) for i in range(300)]
for t in threads: t.start()
for t in threads: t.join(30)
print("good", good[0])
PY
for _ in $(seq 150); do [ "$(sockets)" -le "$fds_before" ] && break; sleep 0.1; done
check "300 clients that vanish mid-handshake, send garbage or reset mid-request beside good ones: the good ones are served (120)" \
  grep -qx 'good 120' "$tmp/churn.out"
check "...and afterwards the daemon holds no more sockets than before ($fds_before; pooled pipes aside)" \
  test "$(sockets)" -le "$fds_before"
check "...and still serves" sh -c "curl -s --max-time 5 --cacert '$ca' 'https://localhost:$l1/' | grep -q '\"target\":\"t\"'"

ctl get-metrics > "$tmp/metrics"
tls_errors() { grep "^localnlb_client_tls_negotiation_error_count_total{load_balancer=\"tls\",target_group=\"$1\"}" "$tmp/metrics" | awk '{ print $2 }'; }
check "the refusals are counted: client_tls_negotiation_error_count_total (plaintext, stalled and the churn's on one listener; version and cipher on the other)" \
  test "$(tls_errors plain)" = "2" -a "$(tls_errors pp)" -ge 40
check "and logged with their cause" grep -q "TLS client 127.0.0.1:[0-9]* on 127.0.0.1:$l1: " "$tmp/lb.log"
check "the plaintext target's failed handshake is counted: target_tls_negotiation_error_count_total" \
  grep -q '^localnlb_target_tls_negotiation_error_count_total{load_balancer="tls",target_group="wrong"} [1-9]' "$tmp/metrics"
described=$(ctl describe-listeners --load-balancer-arn "$(ctl describe-load-balancers --output text | awk '$1 == "LOADBALANCERS" { print $6 }')")
check "DescribeListeners shows the certificate, SslPolicy (AWS's default when none is given) and AlpnPolicy" \
  bash -c "grep -q '\"CertificateArn\": \"$arn\"' <<< \"\$0\" && grep -q '\"SslPolicy\": \"ELBSecurityPolicy-2016-08\"' <<< \"\$0\" && grep -q '\"HTTP1Only\"' <<< \"\$0\"" "$described"
# The TLS 1.3 "Ext" policies, switched live with ModifyListener: Ext2 keeps the CBC-SHA1 suites, Ext1 drops them.
l2_arn=$(ctl describe-listeners --load-balancer-arn "$(ctl describe-load-balancers --output text | awk '$1 == "LOADBALANCERS" { print $6 }')" \
  --query "Listeners[?Port==\`$l2\`].ListenerArn" --output text)
ctl modify-listener --listener-arn "$l2_arn" --ssl-policy ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06 > /dev/null
check "ModifyListener to ELBSecurityPolicy-TLS13-1-2-Ext2-2021-06: ECDHE-ECDSA-AES128-SHA over TLS 1.2 is taken" \
  grep -q 'Cipher is ECDHE-ECDSA-AES128-SHA$' <<< "$(hello "$l2" -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA)"
ctl modify-listener --listener-arn "$l2_arn" --ssl-policy ELBSecurityPolicy-TLS13-1-2-Ext1-2021-06 > /dev/null
check "...and refused by Ext1, which still takes ECDHE-ECDSA-AES128-SHA256" \
  bash -c "grep -q 'Cipher is (NONE)' <<< \"\$0\" && grep -q 'Cipher is ECDHE-ECDSA-AES128-SHA256\$' <<< \"\$1\"" \
  "$(hello "$l2" -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA)" "$(hello "$l2" -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA256)"
fips=$(ctl modify-listener --listener-arn "$l2_arn" --ssl-policy ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04 2>&1 || true)
check "a FIPS policy is refused with the reason (no FIPS provider here) and the listener keeps its policy" \
  bash -c "grep -q 'no FIPS provider' <<< \"\$0\" && grep -q 'Cipher is ECDHE-ECDSA-AES128-SHA256\$' <<< \"\$1\"" \
  "$fips" "$(hello "$l2" -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA256)"

# A CloudFormation template as the CDK writes a TLS listener: a certificate made in the stack (its Ref an
# ACM ARN nobody imported), SslPolicy, AlpnPolicy as a list. It serves with no edits.
cdk_port=$(free_port)
cat > "$tmp/cdk-tls.template.json" <<JSON
{ "Resources": {
    "Cert": { "Type": "AWS::CertificateManager::Certificate", "Properties": { "DomainName": "api.example.com",
      "ValidationMethod": "DNS" } },
    "Nlb": { "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer", "Properties": { "Type": "network",
      "Scheme": "internet-facing", "Subnets": [ "subnet-0abc" ] } },
    "Group": { "Type": "AWS::ElasticLoadBalancingV2::TargetGroup", "Properties": { "Port": $tport, "Protocol": "TCP",
      "TargetType": "ip", "Targets": [ { "Id": "127.0.0.1", "Port": $tport } ] } },
    "Tls": { "Type": "AWS::ElasticLoadBalancingV2::Listener", "Properties": { "LoadBalancerArn": { "Ref": "Nlb" },
      "Port": $cdk_port, "Protocol": "TLS", "Certificates": [ { "CertificateArn": { "Ref": "Cert" } } ],
      "SslPolicy": "ELBSecurityPolicy-TLS13-1-2-2021-06", "AlpnPolicy": [ "HTTP2Preferred" ],
      "DefaultActions": [ { "Type": "forward", "TargetGroupArn": { "Ref": "Group" } } ] } } } }
JSON
"$bin" serve --config "$tmp/cdk-tls.template.json" --admin-address 127.0.0.1:0 --dns-address 127.0.0.1:0 \
  --flow-log off 2> "$tmp/cdk.log" & pids+=($!)
for _ in $(seq 100); do (exec 3<> "/dev/tcp/127.0.0.1/$cdk_port") 2> /dev/null && break; sleep 0.1; done
check "a CDK template's TLS listener (its certificate made in the stack) serves with no edits, verified by curl" \
  sh -c "curl -s --max-time 5 --cacert '$ca' --http1.1 'https://127.0.0.1:$cdk_port/' | grep -q '\"target\":\"t\"'"

# Bad configuration: each named, with the fix.
cat > "$tmp/bad.json" <<JSON
{ "Listeners": [ { "Port": 443, "Protocol": "TLS", "SslPolicy": "ELBSecurityPolicy-2016-09", "AlpnPolicy": "HTTP3",
    "ListenerAttributes": [ { "Key": "tcp.idle_timeout.seconds", "Value": "600" } ],
    "DefaultActions": [ { "Type": "forward", "TargetGroupName": "web" } ] } ],
  "TargetGroups": [ { "Name": "web", "Port": 80, "TargetType": "ip" } ] }
JSON
"$bin" check-config "$tmp/bad.json" > "$tmp/bad.out" 2>&1 || true
check "check-config: a TLS listener with no certificate says how to give one" grep -q 'Listeners\[0\].Certificates: missing' "$tmp/bad.out"
check "check-config: an unknown SslPolicy gets the nearest name" grep -q 'did you mean "ELBSecurityPolicy-2016-08"' "$tmp/bad.out"
check "check-config: an unknown AlpnPolicy lists AWS's" grep -q '"HTTP3" is not one of HTTP1Only' "$tmp/bad.out"
check "check-config: tcp.idle_timeout.seconds on a TLS listener is refused (350 s fixed, as on AWS)" \
  grep -q 'a TLS listener.s idle timeout is fixed at 350 s' "$tmp/bad.out"

echo "tls: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
