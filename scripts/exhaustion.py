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

Bounded: 2 runs, at most 60 clients each, every wait with a timeout. All traffic stays on 127.0.0.1.
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
    checks = [
        ("localnlb survived running out of descriptors", all(r["alive"] for r in results)),
        (f"all {HELD} held flows moved 1 MiB each way intact without a pipe",
         all(r["intact"] == HELD for r in results)),
        ("a flow with no descriptor for its target was reset as 'out of descriptors'",
         any(r["out_of_descriptors"] > 0 for r in results)),
        ("each such reset is counted in localnlb_tcp_elb_reset_count_total",
         all(r["resets"] >= r["out_of_descriptors"] for r in results)),
    ]
    failed = 0
    for name, ok in checks:
        print(f"  {'passed' if ok else 'FAILED'}  {name}")
        failed += 0 if ok else 1
    print(f"exhaustion: {len(checks) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
