#!/usr/bin/env bash
# The one test command: installs what the tests need, builds, lints, runs the unit and integration
# tests, then checks localnlb against real programs nobody here wrote. Exits non-zero on any failure,
# and on any part it had to skip.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== needs root: apt-get install of missing Debian packages; the network-namespace lab (scripts/lab.sh);"
echo "   two command-line checks (a thread limit via setpriv, a port range in a network namespace)"
root=false
[ "$(id -u)" -eq 0 ] && root=true
skipped=()
skip() { skipped+=("$1"); echo "== SKIPPED: $1"; }

# Debian packages the checks need, installed only when missing (a fresh machine has none of them).
need=()
command -v nginx >/dev/null || need+=(nginx)
command -v haproxy >/dev/null || need+=(haproxy)
command -v curl >/dev/null || need+=(curl)
command -v python3 >/dev/null || need+=(python3)
command -v ip >/dev/null || need+=(iproute2)
command -v valgrind >/dev/null || need+=(valgrind)
command -v dig >/dev/null || need+=(dnsutils)
command -v dnsmasq >/dev/null || need+=(dnsmasq-base)
command -v iperf3 >/dev/null || need+=(iperf3)
# Application load balancers: wrk drives keep-alive requests through the HTTP proxy.
command -v wrk >/dev/null || need+=(wrk)
# TLS listeners build against the system's OpenSSL 3; its command line is a peer of the TLS checks.
[ -f /usr/include/openssl/ssl.h ] || need+=(libssl-dev)
command -v openssl >/dev/null || need+=(openssl)
# boto3 goes into a virtual environment of our own; Debian's python3 needs python3-venv for that.
if command -v python3 >/dev/null && ! python3 -c 'import ensurepip, venv' 2>/dev/null; then need+=(python3-venv); fi
if [ ${#need[@]} -gt 0 ]; then
  if $root; then
    echo "== installing ${need[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    skip "apt-get install ${need[*]}: not root (install them, or run as root); checks that need them are skipped too"
  fi
fi
has() { command -v "$1" >/dev/null; }

echo "== swift build"
swift build

echo "== swift format lint"
swift format lint -r --strict Sources Tests Package.swift

echo "== swift test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
swift test 2>&1 | tee "$log"
swift_tests=$(sed -n 's/.*Test run with \([0-9][0-9]*\) tests.* passed.*/\1/p' "$log" | tail -n 1)
[ -n "$swift_tests" ] || { echo "swift test reported no passing test run" >&2; exit 1; }

if has python3; then
  echo "== command line"
  scripts/cli-check.sh .build/debug/localnlb | tee -a "$log"
else
  skip "command line checks (scripts/cli-check.sh): python3 is missing"
fi

if has nginx && has haproxy && has python3; then
  echo "== real PROXY protocol peers: nginx and HAProxy, both directions; hostile clients"
  scripts/interop.sh .build/debug/localnlb | tee -a "$log"
else
  skip "nginx and HAProxy interop (scripts/interop.sh): nginx, haproxy or python3 is missing"
fi

if has python3; then
  echo "== a chaos run: misbehaving clients and targets, API churn and reloads, two event loops"
  python3 scripts/soak.py --localnlb .build/debug/localnlb | tee -a "$log"
else
  skip "chaos run (scripts/soak.py): python3 is missing"
fi

if has python3; then
  echo "== out of descriptors: open flows go on without pipes, new ones are reset as 'out of descriptors'"
  python3 scripts/exhaustion.py --localnlb .build/debug/localnlb | tee -a "$log"
else
  skip "descriptor exhaustion (scripts/exhaustion.py): python3 is missing"
fi

if has python3; then
  echo "== the ELBv2 API driven by boto3 and the AWS CLI (PyPI), in a virtual environment under .build/"
  venv=.build/aws-venv
  if [ ! -x "$venv/bin/aws" ] || ! "$venv/bin/python" -c 'import boto3, websockets, requests' 2>/dev/null; then
    python3 -m venv "$venv"
    # websockets: the WebSocket client and server of scripts/alb-check.sh; requests: its keep-alive client.
    "$venv/bin/pip" install -q --disable-pip-version-check 'boto3==1.44.8' 'awscli==1.46.3' 'websockets==17.4' \
      'requests==2.32.5'
  fi
  "$venv/bin/python" scripts/aws-check.py --localnlb .build/debug/localnlb | tee -a "$log"
  if $root && has ip && has curl; then
    echo "== a new user's first hour: the release binary without the toolchain, the README's walkthrough after install"
    scripts/release-check.sh "$venv" | tee -a "$log"
  else
    skip "the release binary and the README walkthrough (scripts/release-check.sh): need root, iproute2 and curl"
  fi
else
  skip "the ELBv2 API with boto3 and the AWS CLI (scripts/aws-check.py): python3 is missing"
fi

if has dig && has curl && has python3; then
  echo "== Availability Zones on loopback: cross-zone routing through each node, dig against the DNS responder"
  scripts/zones-check.sh .build/debug/localnlb | tee -a "$log"
else
  skip "zones and DNS (scripts/zones-check.sh): dig (dnsutils), curl or python3 is missing"
fi

if has openssl && has nginx && has haproxy && has curl && has python3; then
  echo "== TLS listeners with real peers: curl, openssl s_client, Python's ssl, nginx behind PROXY v2"
  scripts/tls-check.sh .build/debug/localnlb | tee -a "$log"
else
  skip "TLS listeners (scripts/tls-check.sh): openssl, nginx, haproxy, curl or python3 is missing"
fi

if has nginx && has curl && has python3; then
  echo "== application load balancers with real peers: curl, wrk, Python's http.server, nginx's real_ip behind X-Forwarded-For"
  scripts/alb-check.sh .build/debug/localnlb | tee -a "$log"
else
  skip "application load balancers (scripts/alb-check.sh): nginx, curl or python3 is missing"
fi

if has dnsmasq && has iperf3 && has dig && has python3; then
  echo "== UDP and TCP_UDP listeners with real peers: dnsmasq and dig, iperf3 -u"
  scripts/udp-check.sh .build/debug/localnlb | tee -a "$log"
else
  skip "UDP listeners (scripts/udp-check.sh): dnsmasq (dnsmasq-base), iperf3, dig or python3 is missing"
fi

if $root && has ip && has curl; then
  echo "== the lab: the Fargate client-IP problem with real addresses, in network namespaces"
  scripts/lab.sh run | tee -a "$log"
elif ! $root; then
  skip "the lab (scripts/lab.sh run): network namespaces and IP_TRANSPARENT need root"
else
  skip "the lab (scripts/lab.sh run): iproute2 or curl is missing"
fi

if has valgrind && has python3; then
  echo "== heap allocations per request and per new flow (valgrind, release build)"
  swift build -c release --product localnlb 2>&1 | tail -n 1
  python3 scripts/alloc-check.py --localnlb "$(swift build -c release --show-bin-path)/localnlb" | tee -a "$log"
else
  skip "allocation check (scripts/alloc-check.py): valgrind or python3 is missing"
fi

echo "== a short fuzzing run of the PROXY protocol parser, the DNS codec, the HTTP reader and the control API front ends (scripts/fuzz.sh 600 for the long one)"
scripts/fuzz.sh 15

script_checks=$(awk '/^[a-z]+: [0-9]+ passed, 0 failed$/ { n += $2 } END { print n + 0 }' "$log")
if [ ${#skipped[@]} -gt 0 ]; then
  echo "== ${#skipped[@]} part(s) skipped, so this run does not count as passing:"
  printf '   %s\n' "${skipped[@]}"
  echo "total: $((swift_tests + script_checks)) passed, ${#skipped[@]} failed"
  exit 1
fi
echo "== all checks passed"
echo "total: $((swift_tests + script_checks)) passed, 0 failed"
