#!/usr/bin/env python3
"""localnlb out of file descriptors: flows already open go on, new ones are refused the way the docs say.

localnlb runs under a small `ulimit -n` with one event loop. A few flows are opened and held; then
clients are opened until localnlb can take no more. Then each held flow moves 1 MiB each way: a bulk
transfer wants a pipe, none can be had, and the flow must go on through the loop's buffer with every
byte intact. A flow accepted when no descriptor is left for its target connection is reset with the
reason `out of descriptors` and counted in localnlb_tcp_elb_reset_count_total.

Each run is tried at two limits: which of them leaves one descriptor over (an accept without a target
socket) depends on how many localnlb holds at start, and between the two one does.

    python3 scripts/exhaustion.py --localnlb .build/debug/localnlb

Then localnlb starved outright (every descriptor held by idle control API connections): no listener
may spin, a health check that cannot get a socket is skipped (localnlb_health_check_skipped_total), not
failed, so a healthy target stays healthy and its flows go on; and the built-in target, out of
descriptors behind 100 unfinished PROXY headers, accepts again once they time out.

Bounded: 2 runs of at most 60 clients, one of 116 idle connections, one of 100; every wait with a
timeout. All traffic stays on 127.0.0.1.
"""
import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from support import free_port, wait_port

HELD = 4
BULK = 1 << 20


class Echo:
    """An echo server on its own thread, one thread per connection."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port = self.sock.getsockname()[1]
        self.open = []
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.open.append(conn)
            threading.Thread(target=self.serve, args=(conn,), daemon=True).start()

    @staticmethod
    def serve(conn):
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    conn.shutdown(socket.SHUT_WR)
                    return
                conn.sendall(data)
        except OSError:
            pass

    def close(self):
        self.sock.close()
        for conn in self.open:
            conn.close()


def bulk_echo(sock, payload):
    """Sends `payload` on one thread while reading the echo on this one; returns what came back."""
    sock.settimeout(20)
    sender = threading.Thread(target=sock.sendall, args=(payload,), daemon=True)
    sender.start()
    received = bytearray()
    while len(received) < len(payload):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    sender.join(20)
    return bytes(received)


def run(localnlb, limit, scratch):
    echo = Echo()
    port, admin = free_port(), free_port()
    config = os.path.join(scratch, f"config-{limit}.json")
    flow_log = os.path.join(scratch, f"flows-{limit}.jsonl")
    with open(config, "w") as f:
        json.dump({
            "Admin": {"Address": f"127.0.0.1:{admin}"},
            "Listeners": [{"Port": port, "DefaultActions": [{"Type": "forward", "TargetGroupName": "echo"}]}],
            "TargetGroups": [{"Name": "echo", "Port": echo.port, "TargetType": "ip", "HealthCheckEnabled": False,
                              "Targets": [{"Id": "127.0.0.1"}]}],
        }, f)
    stderr = open(os.path.join(scratch, f"stderr-{limit}.log"), "w")
    process = subprocess.Popen(
        ["bash", "-c", f'ulimit -n {limit}; exec "$0" "$@"', localnlb, "serve", "--config", config,
         "--event-loops", "1", "--flow-log", flow_log], stderr=stderr)
    clients = []
    try:
        wait_port(port, process=process)
        held = []
        for _ in range(HELD):
            sock = socket.create_connection(("127.0.0.1", port), 5)
            sock.sendall(b"hello")
            sock.settimeout(5)
            assert sock.recv(5) == b"hello", "a held flow did not echo"
            held.append(sock)
        # Open clients until localnlb can take no more (accepts pause, or flows are reset).
        for _ in range(60):
            try:
                clients.append(socket.create_connection(("127.0.0.1", port), 2))
            except OSError:
                break
        time.sleep(0.5)
        intact = 0
        for index, sock in enumerate(held):
            payload = bytes((index * 7 + i) % 251 for i in range(BULK))
            if bulk_echo(sock, payload) == payload:
                intact += 1
        for sock in clients:
            sock.close()
        time.sleep(0.3)
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5) as response:
            metrics = response.read().decode()
        resets = sum(int(float(line.rsplit(" ", 1)[1])) for line in metrics.splitlines()
                     if line.startswith("localnlb_tcp_elb_reset_count_total{"))
        alive = process.poll() is None
        for sock in held:
            sock.close()
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(15)
        stderr.close()
        echo.close()
    records = [json.loads(line) for line in open(flow_log)] if os.path.exists(flow_log) else []
    out_of_descriptors = sum(1 for r in records if r["closeReason"] == "out of descriptors")
    return {"intact": intact, "alive": alive, "resets": resets, "out_of_descriptors": out_of_descriptors,
            "clients": len(clients)}


def cpu_seconds(pid):
    """User and system CPU time `pid` has used so far, in seconds (/proc/PID/stat fields 14 and 15)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def dns_query_tcp(sock):
    """Sends one A query over TCP (length-prefixed) for a name; returns the answer's header id, or None."""
    name = b"".join(bytes([len(label)]) + label for label in b"starved.localnlb.test".split(b".")) + b"\0"
    message = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + name + b"\x00\x01\x00\x01"
    sock.sendall(len(message).to_bytes(2, "big") + message)
    answer = b""
    while len(answer) < 4:
        chunk = sock.recv(4096)
        if not chunk:
            return None
        answer += chunk
    return answer[2:4]


def starved(localnlb, limit, scratch):
    """Every descriptor taken by idle control API connections: no listener may spin, no health check may
    count against a healthy target, no established flow may be reset, and all of it resumes after."""
    echo = Echo()
    port, admin, dns = free_port(), free_port(), free_port()
    config = os.path.join(scratch, f"starved-{limit}.json")
    flow_log = os.path.join(scratch, f"starved-flows-{limit}.jsonl")
    with open(config, "w") as f:
        json.dump({
            "Admin": {"Address": f"127.0.0.1:{admin}"}, "Dns": {"Address": f"127.0.0.1:{dns}"},
            "Listeners": [{"Port": port, "DefaultActions": [{"Type": "forward", "TargetGroupName": "echo"}]}],
            "TargetGroups": [{"Name": "echo", "Port": echo.port, "TargetType": "ip",
                              "HealthCheckIntervalSeconds": 10, "UnhealthyThresholdCount": 2,
                              "Targets": [{"Id": "127.0.0.1"}]}],
        }, f)
    log_path = os.path.join(scratch, f"starved-stderr-{limit}.log")
    stderr = open(log_path, "w")
    # Checks every 0.2 s: two failed ones would make the target unhealthy in under half a second.
    process = subprocess.Popen(
        ["bash", "-c", f'ulimit -n {limit}; exec "$0" "$@"', localnlb, "serve", "--config", config,
         "--event-loops", "1", "--time-scale", "0.02", "--flow-log", flow_log], stderr=stderr)
    idle, flows, result = [], [], {}
    try:
        wait_port(port, process=process)
        wait_port(admin, process=process)
        deadline = time.time() + 10
        while "healthy" not in api_get(admin, "/target-groups/echo/health") and time.time() < deadline:
            time.sleep(0.05)
        for _ in range(10):
            sock = socket.create_connection(("127.0.0.1", port), 5)
            sock.sendall(b"x")
            sock.settimeout(5)
            assert sock.recv(1) == b"x", "a flow did not echo"
            flows.append(sock)
        # More idle control API connections than there are descriptors: the rest wait in the backlog.
        for _ in range(limit + 20):
            idle.append(socket.create_connection(("127.0.0.1", admin), 2))
        waiting_dns = socket.create_connection(("127.0.0.1", dns), 2)
        waiting_dns.settimeout(10)
        time.sleep(0.5)
        before = cpu_seconds(process.pid)
        time.sleep(2)
        result["cpu"] = round((cpu_seconds(process.pid) - before) / 2, 3)
        for sock in idle:
            sock.close()
        idle = []
        result["dns_after"] = dns_query_tcp(waiting_dns) == b"\x12\x34"
        waiting_dns.close()
        wait_port(admin, process=process)
        result["health"] = api_get(admin, "/target-groups/echo/health")
        metrics = api_get(admin, "/metrics")
        result["skipped"] = sum(int(float(line.rsplit(" ", 1)[1])) for line in metrics.splitlines()
                                if line.startswith("localnlb_health_check_skipped_total{"))
        echoed = 0
        for sock in flows:
            sock.sendall(b"y")
            echoed += sock.recv(1) == b"y"
        result["flows_echo"] = echoed
        fresh = socket.create_connection(("127.0.0.1", port), 5)
        fresh.sendall(b"z")
        fresh.settimeout(5)
        result["new_flow"] = fresh.recv(1) == b"z"
        fresh.close()
        result["alive"] = process.poll() is None
    finally:
        for sock in idle + flows:
            sock.close()
        if process.poll() is None:
            process.terminate()
            process.wait(15)
        stderr.close()
        echo.close()
    log = open(log_path).read()
    result["went_unhealthy"] = "→ unhealthy" in log
    result["said_so"] = "tried again" in log
    records = [json.loads(line) for line in open(flow_log)] if os.path.exists(flow_log) else []
    result["reset_unhealthy"] = sum(1 for r in records if r["closeReason"] == "target unhealthy")
    return result


def api_get(admin, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}{path}", timeout=5) as response:
        return response.read().decode()


def builtin_target(localnlb, scratch):
    """`localnlb target --proxy-protocol required` at `ulimit -n 64`, 100 connections that never finish
    their header: once their header timeout closes them, the target takes new connections again."""
    port = free_port()
    stderr = open(os.path.join(scratch, "target-stderr.log"), "w")
    process = subprocess.Popen(
        ["bash", "-c", 'ulimit -n 64; exec "$0" "$@"', localnlb, "target", "--listen", f"127.0.0.1:{port}",
         "--proxy-protocol", "required", "--header-timeout", "1"], stdout=subprocess.DEVNULL, stderr=stderr)
    half = []
    try:
        wait_port(port, process=process)
        for _ in range(100):
            sock = socket.create_connection(("127.0.0.1", port), 2)
            sock.sendall(b"PROXY TCP4 ")
            half.append(sock)
        time.sleep(1.5)
        for sock in half:
            sock.close()
        half = []
        served = False
        deadline = time.time() + 15
        while not served and time.time() < deadline:
            try:
                sock = socket.create_connection(("127.0.0.1", port), 2)
                sock.settimeout(3)
                sock.sendall(b"PROXY TCP4 127.0.0.9 127.0.0.1 40000 80\r\nGET / HTTP/1.0\r\n\r\n")
                served = sock.recv(12).startswith(b"HTTP/1.")
                sock.close()
            except OSError:
                time.sleep(0.2)
        return served
    finally:
        for sock in half:
            sock.close()
        process.terminate()
        process.wait(15)
        stderr.close()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--localnlb", required=True)
    parser.add_argument("--limit", type=int, default=40)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="localnlb-exhaustion-") as scratch:
        for limit in (args.limit, args.limit + 1):
            result = run(os.path.abspath(args.localnlb), limit, scratch)
            print(f"exhaustion: ulimit -n {limit}: {result}")
            results.append(result)
        starve = starved(os.path.abspath(args.localnlb), 96, scratch)
        print(f"exhaustion: starved at ulimit -n 96: {starve}")
        target_served = builtin_target(os.path.abspath(args.localnlb), scratch)
    checks = [
        ("localnlb survived running out of descriptors", all(r["alive"] for r in results)),
        (f"all {HELD} held flows moved 1 MiB each way intact without a pipe",
         all(r["intact"] == HELD for r in results)),
        ("a flow with no descriptor for its target was reset as 'out of descriptors'",
         any(r["out_of_descriptors"] > 0 for r in results)),
        ("each such reset is counted in localnlb_tcp_elb_reset_count_total",
         all(r["resets"] >= r["out_of_descriptors"] for r in results)),
        ("starved of descriptors, no listener spins (the daemon used under a fifth of a CPU)",
         starve.get("cpu", 1) < 0.2),
        ("a health check with no socket is skipped and counted, not failed: the target stayed healthy",
         not starve["went_unhealthy"] and '"State":"healthy"' in starve.get("health", "")
         and starve.get("skipped", 0) > 0 and starve["said_so"]),
        ("no established flow was reset, and all 10 still echo",
         starve["reset_unhealthy"] == 0 and starve.get("flows_echo") == 10),
        ("once descriptors free, the control API, DNS over TCP and new flows are served again",
         starve.get("dns_after") and starve.get("new_flow") and starve.get("alive")),
        ("the built-in target accepts again after running out of descriptors", target_served),
    ]
    failed = 0
    for name, ok in checks:
        print(f"  {'passed' if ok else 'FAILED'}  {name}")
        failed += 0 if ok else 1
    print(f"exhaustion: {len(checks) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
