#!/usr/bin/env python3
"""Counts localnlb's heap allocations per request and per new flow in steady state.

localnlb runs under valgrind (memcheck counts every malloc), serving one listener in front of an echo
target on 127.0.0.1. Three runs, each with the same warm-up: one with nothing more, one with REQUESTS
more round trips on a kept-alive flow, one with FLOWS more flows of one round trip each, and one with
FLOWS flows through a second listener whose group sends PROXY v2, and one with DATAGRAMS more round
trips on a UDP flow through a UDP listener. What a run allocated beyond the warm-up run, divided by
its requests, flows or datagrams, is the cost of each. Exit 1 when any of them allocates: the data
path, a new flow and its PROXY v2 header (written from a template), a datagram must not.
"""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from support import free_port, wait_port

REQUESTS = 5000
FLOWS = 500
DATAGRAMS = 5000
# Timer ticks allocate now and then during a run; less than this per request or flow is none.
NONE = 0.05


def echo_server():
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(512)

    def serve(conn):
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept():
        while True:
            conn, _ = server.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return server.getsockname()[1]


def udp_echo_server():
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))

    def serve():
        while True:
            data, peer = server.recvfrom(65536)
            server.sendto(data, peer)

    threading.Thread(target=serve, daemon=True).start()
    return server.getsockname()[1]


def http_server():
    """An HTTP target answering every request on a kept-alive connection with a 2-byte body."""
    server = socket.socket()
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(512)

    def serve(conn):
        with conn:
            pending = b""
            while data := conn.recv(65536):
                pending += data
                while b"\r\n\r\n" in pending:
                    _, pending = pending.split(b"\r\n\r\n", 1)
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")

    def accept():
        while True:
            conn, _ = server.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return server.getsockname()[1]


def http_round_trips(port, count):
    """Requests on one kept-alive connection through the application load balancer's listener."""
    with socket.create_connection(("127.0.0.1", port), 10) as sock:
        for _ in range(count):
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            got = b""
            while not (b"\r\n\r\n" in got and got.endswith(b"ok")):
                chunk = sock.recv(65536)
                if not chunk:
                    raise RuntimeError("the HTTP connection closed")
                got += chunk


def datagram_round_trip(sock, port, payload):
    sock.sendto(payload, ("127.0.0.1", port))
    sock.recvfrom(65536)


def round_trip(sock, payload):
    sock.sendall(payload)
    got = b""
    while len(got) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            raise RuntimeError("the flow closed")
        got += chunk


def tls_round_trips(port, authority, count):
    import ssl
    context = ssl.create_default_context(cafile=authority)
    with context.wrap_socket(socket.create_connection(("127.0.0.1", port), 10), server_hostname="localhost") as tls:
        round_trip(tls, b"hello")
        for _ in range(count):
            round_trip(tls, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")


def run(binary, config, port, requests, flows, flow_port=None, udp_port=None, datagrams=0, tls_port=None,
        tls_requests=0, authority=None, http_port=None, http_requests=0):
    log = tempfile.NamedTemporaryFile(prefix="localnlb-valgrind.", suffix=".log", delete=False).name
    proc = subprocess.Popen(
        # One event loop: every loop runs the same code per event, and with one the warm-up surely
        # reaches the loop that later takes the measured flows (its slab and pipe pool are warm).
        ["valgrind", "--tool=memcheck", "--leak-check=no", f"--log-file={log}", binary, "serve",
         "--config", config, "--flow-log", "off", "--event-loops", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, 60, proc, explain=lambda: (
            " under valgrind (is valgrind installed and the release build current?); valgrind said:\n"
            + open(log).read()[-2000:]))
        # Warm-up, the same in every run: pools, slabs and caches reach their steady size.
        warm = [socket.create_connection(("127.0.0.1", port), 10) for _ in range(8)]
        for sock in warm:
            for _ in range(50):
                round_trip(sock, b"warm-up")
        for sock in warm:
            sock.close()
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.settimeout(10)
        for _ in range(50):
            datagram_round_trip(udp, udp_port, b"warm-up")
        for _ in range(datagrams):
            datagram_round_trip(udp, udp_port, b"one datagram")
        udp.close()
        kept = socket.create_connection(("127.0.0.1", port), 10)
        round_trip(kept, b"hello")
        for _ in range(requests):
            round_trip(kept, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        for _ in range(flows):
            with socket.create_connection(("127.0.0.1", flow_port or port), 10) as sock:
                round_trip(sock, b"one request")
        kept.close()
        if http_port:
            http_round_trips(http_port, 50)  # every run: the session, its field lists and buffers reach their size
            if http_requests:
                http_round_trips(http_port, http_requests)
        if tls_port:
            tls_round_trips(tls_port, authority, 50)  # every run: the session's buffers reach their size
            if tls_requests:
                tls_round_trips(tls_port, authority, tls_requests)
        time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(60)
    text = open(log).read()
    os.unlink(log)
    match = re.search(r"total heap usage: ([\d,]+) allocs", text)
    if not match:
        raise RuntimeError("no heap summary from valgrind:\n" + text[-2000:])
    return int(match.group(1).replace(",", ""))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--localnlb", required=True)
    args = parser.parse_args()
    target = echo_server()
    udp_target = udp_echo_server()
    http_target = http_server()
    port, proxy_port, udp_port, tls_port, http_port = free_port(), free_port(), free_port(), free_port(), free_port()
    tmp = tempfile.mkdtemp(prefix="localnlb-alloc.")
    os.environ["LOCALNLB_CA_DIR"] = os.path.join(tmp, "ca")
    authority = subprocess.run([args.localnlb, "ca"], capture_output=True, text=True, check=True).stdout.strip()
    config = os.path.join(tmp, "localnlb.json")
    with open(config, "w") as f:
        json.dump({
            "Admin": {"Enabled": False},
            "LoadBalancers": [
                {"Name": "localnlb", "SubnetMappings": [{"SubnetId": "s", "PrivateIPv4Address": "127.0.0.1"}]},
                {"Name": "alb", "Type": "application",
                 "SubnetMappings": [{"SubnetId": "s", "PrivateIPv4Address": "127.0.0.1"}]},
            ],
            "Listeners": [
                {"LoadBalancerArn": "alb", "Port": http_port, "Protocol": "HTTP",
                 "DefaultActions": [{"Type": "forward", "TargetGroupName": "echo-http"}]},
                {"LoadBalancerArn": "localnlb", "Port": port, "DefaultActions": [{"Type": "forward", "TargetGroupName": "echo"}]},
                {"LoadBalancerArn": "localnlb", "Port": proxy_port, "DefaultActions": [{"Type": "forward", "TargetGroupName": "echo-pp"}]},
                {"LoadBalancerArn": "localnlb", "Port": udp_port, "Protocol": "UDP",
                 "DefaultActions": [{"Type": "forward", "TargetGroupName": "echo-udp"}]},
                {"LoadBalancerArn": "localnlb", "Port": tls_port, "Protocol": "TLS",
                 "Certificates": [{"CertificateArn": "arn:aws:acm:us-east-1:000000000000:certificate/alloc"}],
                 "DefaultActions": [{"Type": "forward", "TargetGroupName": "echo-tls"}]},
            ],
            "TargetGroups": [
                {"Name": "echo", "Port": target, "TargetType": "ip", "HealthCheckEnabled": False,
                 "Targets": [{"Id": "127.0.0.1"}]},
                {"Name": "echo-pp", "Port": target, "TargetType": "ip", "HealthCheckEnabled": False,
                 "TargetGroupAttributes": [{"Key": "proxy_protocol_v2.enabled", "Value": "true"}],
                 "Targets": [{"Id": "127.0.0.1"}]},
                {"Name": "echo-udp", "Protocol": "UDP", "Port": udp_target, "TargetType": "ip",
                 "HealthCheckEnabled": False, "Targets": [{"Id": "127.0.0.1"}]},
                {"Name": "echo-tls", "Port": target, "TargetType": "ip", "HealthCheckEnabled": False,
                 "Targets": [{"Id": "127.0.0.1"}]},
                {"Name": "echo-http", "Protocol": "HTTP", "Port": http_target, "TargetType": "ip",
                 "HealthCheckEnabled": False, "Targets": [{"Id": "127.0.0.1"}]},
            ],
            "Dns": {"Enabled": False},
        }, f)
    common = dict(udp_port=udp_port, tls_port=tls_port, authority=authority, http_port=http_port)
    base = run(args.localnlb, config, port, 0, 0, **common)
    with_requests = run(args.localnlb, config, port, REQUESTS, 0, **common)
    with_flows = run(args.localnlb, config, port, 0, FLOWS, **common)
    with_proxy_flows = run(args.localnlb, config, port, 0, FLOWS, flow_port=proxy_port, **common)
    with_datagrams = run(args.localnlb, config, port, 0, 0, datagrams=DATAGRAMS, **common)
    with_tls = run(args.localnlb, config, port, 0, 0, tls_requests=REQUESTS, **common)
    with_http = run(args.localnlb, config, port, 0, 0, http_requests=REQUESTS, **common)
    per_request = (with_requests - base) / REQUESTS
    per_flow = (with_flows - base) / FLOWS
    per_proxy_flow = (with_proxy_flows - base) / FLOWS
    per_datagram = (with_datagrams - base) / DATAGRAMS
    print(f"allocations: warm-up run {base}; +{REQUESTS} requests {with_requests}; +{FLOWS} flows {with_flows}; "
          f"+{FLOWS} PROXY v2 flows {with_proxy_flows}; +{DATAGRAMS} UDP round trips {with_datagrams}")
    print(f"allocations per request (kept-alive flow): {per_request:.3f}")
    print(f"allocations per new flow (accept, connect, one round trip, close): {per_flow:.3f}")
    print(f"allocations per new PROXY v2 flow: {per_proxy_flow:.3f}")
    print(f"allocations per UDP round trip (a datagram each way): {per_datagram:.3f}")
    per_tls = (with_tls - base) / REQUESTS
    # OpenSSL's own, reported: with SSL_MODE_RELEASE_BUFFERS (as nginx and HAProxy run it) it takes a
    # record buffer when one is needed and gives it back when idle. LocalNLB's bridge reuses its buffers.
    print(f"allocations per TLS request (kept-alive TLS flow, OpenSSL's record buffers included): {per_tls:.3f}")
    per_http = (with_http - base) / REQUESTS
    print(f"allocations per HTTP request through an application load balancer (kept-alive both sides): "
          f"{per_http:.3f}")
    checks = [per_request < NONE, per_flow < NONE, per_proxy_flow < NONE, per_datagram < NONE, per_http < NONE]
    print(f"allocations: {checks.count(True)} passed, {checks.count(False)} failed")
    sys.exit(0 if all(checks) else 1)


if __name__ == "__main__":
    main()
