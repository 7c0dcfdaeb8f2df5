#!/usr/bin/env python3
"""A bounded chaos run: clients and targets that misbehave on purpose, through localnlb with two event
loops, while the control API deregisters and registers targets and SIGHUP reloads the file.

Two listeners: an `instance` group (client IP preserved) and an `ip` group with PROXY v2. The targets
echo what they read, after checking the PROXY header where one is due; some reset or close at once,
some reset in the middle. Clients echo small and large payloads, half-close, reset before or during
the transfer, close at once, or send and vanish.

What must hold afterwards:
  - every echo that came back whole is byte for byte what was sent (a cut-short one is a prefix);
  - localnlb is still running, its active flow count returns to 0 and /flows is empty;
  - it holds the descriptors it held before, plus at most its pooled pipes;
  - SIGTERM still ends it with exit 0.

    python3 scripts/soak.py --localnlb .build/debug/localnlb [--clients 3000] [--seed 1]

Bounded: a fixed number of clients, at most 64 at a time, and --seconds (default 90) for all of it.
All traffic stays on 127.0.0.1.
"""
import argparse
import json
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

from support import free_port, wait_port

PROXY_V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
POOLED_PIPES_PER_LOOP = 256  # PipePool.maximumPooled
LOOPS = 2


def reset(sock):
    """Closes with a RST instead of a FIN."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def receive_exactly(sock, count):
    data = b""
    while len(data) < count:
        chunk = sock.recv(count - len(data))
        if not chunk:
            raise ConnectionError("EOF inside the PROXY header")
        data += chunk
    return data


class Target:
    """An echo server on its own thread; `listener_port` set means a PROXY v2 header is due first."""

    def __init__(self, rng, listener_port=None):
        self.port = free_port()
        self.listener_port = listener_port
        self.rng = random.Random(rng.random())
        self.bad_headers = 0
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(512)
        self.sock.settimeout(0.2)
        self.stopped = threading.Event()
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            threading.Thread(target=self.handle, args=(conn, self.rng.random()), daemon=True).start()
        self.sock.close()

    def read_header(self, conn):
        """True for a flow: NLB's v2 header, PROXY over TCP4, naming our listener as the destination.
        False for a health check (a LOCAL header); a header that is neither is counted as bad."""
        fixed = receive_exactly(conn, 16)
        rest = receive_exactly(conn, struct.unpack("!H", fixed[14:16])[0])
        if fixed[:12] == PROXY_V2_SIGNATURE and fixed[12] == 0x20:
            return False
        if (fixed[:12] == PROXY_V2_SIGNATURE and fixed[12] == 0x21 and fixed[13] == 0x11
                and len(rest) >= 12 and struct.unpack("!H", rest[10:12])[0] == self.listener_port):
            return True
        self.bad_headers += 1
        return False

    def handle(self, conn, luck):
        try:
            conn.settimeout(20)
            if self.listener_port is not None and not self.read_header(conn):
                return reset(conn)
            if luck < 0.05:
                return reset(conn)
            if luck < 0.08:
                return conn.close()
            chunks = 0
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                conn.sendall(data)
                chunks += 1
                if luck < 0.10 and chunks == 3:
                    return reset(conn)
            conn.shutdown(socket.SHUT_WR)
            conn.close()
        except OSError:
            conn.close()


class Soak:
    def __init__(self, args):
        self.args = args
        self.rng = random.Random(args.seed)
        self.tmp = tempfile.mkdtemp(prefix="localnlb-soak.")
        self.lock = threading.Lock()
        self.counts = {"whole": 0, "cut short": 0, "corrupted": 0, "refused or reset": 0, "asked for no echo": 0}
        self.api_errors = []
        self.failures = []
        self.passed = 0

    def check(self, name, ok, detail=""):
        if ok:
            self.passed += 1
            print(f"  passed  {name}")
        else:
            self.failures.append(name)
            print(f"  FAILED  {name}{': ' + detail if detail else ''}")

    # -- localnlb ---------------------------------------------------------------------------------
    def start(self):
        self.instance_port, self.proxy_port, self.admin_port = free_port(), free_port(), free_port()
        self.instance_targets = [Target(self.rng) for _ in range(2)]
        self.proxy_targets = [Target(self.rng, listener_port=self.proxy_port) for _ in range(2)]
        self.groups = {"soak-instance": self.instance_targets, "soak-proxy": self.proxy_targets}

        def group(name, target_type, targets, proxy):
            return {"Name": name, "Port": targets[0].port, "TargetType": target_type,
                    "HealthCheckIntervalSeconds": 5,
                    "TargetGroupAttributes": [
                        {"Key": "deregistration_delay.timeout_seconds", "Value": "1"},
                        {"Key": "proxy_protocol_v2.enabled", "Value": "true" if proxy else "false"}],
                    "Targets": [{"Id": "127.0.0.1", "Port": t.port} for t in targets]}

        self.config = os.path.join(self.tmp, "soak.json")
        with open(self.config, "w") as f:
            json.dump({
                "Admin": {"Enabled": True, "Address": f"127.0.0.1:{self.admin_port}"},
                "Listeners": [
                    {"Port": self.instance_port,
                     "DefaultActions": [{"Type": "forward", "TargetGroupName": "soak-instance"}]},
                    {"Port": self.proxy_port,
                     "DefaultActions": [{"Type": "forward", "TargetGroupName": "soak-proxy"}]}],
                "TargetGroups": [group("soak-instance", "instance", self.instance_targets, False),
                                 group("soak-proxy", "ip", self.proxy_targets, True)]}, f)
        self.log = os.path.join(self.tmp, "localnlb.log")
        self.proc = subprocess.Popen(
            [self.args.localnlb, "serve", "--config", self.config, "--event-loops", str(LOOPS), "--flow-log", "off"],
            stdout=subprocess.DEVNULL, stderr=open(self.log, "w"))
        try:
            for port in (self.instance_port, self.proxy_port, self.admin_port):
                wait_port(port, 10, self.proc, explain=lambda: f"; localnlb's log:\n{open(self.log).read()}")
        except RuntimeError as error:
            sys.exit(f"soak: {error}")

    def api(self, method, path, body=None):
        request = urllib.request.Request(f"http://127.0.0.1:{self.admin_port}{path}", method=method,
                                         data=json.dumps(body).encode() if body is not None else None,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.read().decode()

    def active_flows(self):
        return sum(float(line.split()[-1]) for line in self.api("GET", "/metrics").splitlines()
                   if line.startswith("localnlb_active_flow_count{"))

    def descriptors(self):
        kinds = {}
        for fd in os.listdir(f"/proc/{self.proc.pid}/fd"):
            try:
                kind = os.readlink(f"/proc/{self.proc.pid}/fd/{fd}").split(":")[0]
            except OSError:
                continue
            kinds[kind] = kinds.get(kind, 0) + 1
        return kinds

    # -- load ---------------------------------------------------------------------------------------
    def client(self, luck, size_luck):
        outcome = self.exchange(luck, size_luck)
        with self.lock:
            self.counts[outcome] += 1

    def exchange(self, luck, size_luck):
        """One client's behaviour, and what came of it."""
        port = self.proxy_port if luck < 0.5 else self.instance_port
        behaviour = ["echo", "echo", "large", "reset", "reset midway", "close", "half-close", "linger",
                     "send and reset"][int(luck * 2 * 9) % 9]
        try:
            with socket.create_connection(("127.0.0.1", port), 5) as sock:
                sock.settimeout(20)
                return self.behave(sock, behaviour, size_luck)
        except OSError:
            return "refused or reset"

    def behave(self, sock, behaviour, size_luck):
        if behaviour == "reset":
            reset(sock)
        elif behaviour == "close":
            sock.close()
        elif behaviour == "linger":
            time.sleep(size_luck)
            sock.close()
        elif behaviour == "send and reset":
            sock.sendall(os.urandom(1 + int(size_luck * 200_000)))
            reset(sock)
        if behaviour in ("reset", "close", "linger", "send and reset"):
            return "asked for no echo"
        large = behaviour in ("large", "reset midway")
        payload = os.urandom(100_000 + int(size_luck * 2_900_000) if large else 1 + int(size_luck * 3000))
        if behaviour == "reset midway":
            sock.sendall(payload[: len(payload) // 2])
            sock.recv(1000)
            reset(sock)
            return "asked for no echo"
        echoed = bytearray()

        def read_all():
            # "echo" closes once the whole echo is back; "half-close" and "large" read to the EOF.
            try:
                while behaviour != "echo" or len(echoed) < len(payload):
                    data = sock.recv(1 << 20)
                    if not data:
                        break
                    echoed.extend(data)
            except OSError:
                pass

        reader = threading.Thread(target=read_all)
        reader.start()
        try:
            sock.sendall(payload)
            if behaviour != "echo":
                sock.shutdown(socket.SHUT_WR)
        finally:
            reader.join(30)
        if bytes(echoed) == payload:
            return "whole"
        if len(echoed) < len(payload) and bytes(echoed) == payload[: len(echoed)]:
            return "cut short"  # the target reset or closed on purpose
        return "corrupted"

    def churn(self, stop):
        """Deregisters and re-registers a target every few hundred ms; now and then a SIGHUP reload."""
        rng = random.Random(self.rng.random())
        while not stop.is_set():
            name = rng.choice(sorted(self.groups))
            body = {"Targets": [{"Id": "127.0.0.1", "Port": rng.choice(self.groups[name]).port}]}
            try:
                self.api("POST", f"/target-groups/{name}/deregister", body)
                stop.wait(0.2)
                self.api("POST", f"/target-groups/{name}/register", body)
                json.loads(self.api("GET", "/flows"))
            except Exception as error:  # noqa: BLE001 - reported as a failure below
                self.api_errors.append(f"{type(error).__name__}: {error}")
            if rng.random() < 0.3:
                self.proc.send_signal(1)
            stop.wait(0.2)

    def run(self):
        self.start()
        time.sleep(0.5)
        before = self.descriptors()
        started = time.monotonic()
        stop = threading.Event()
        churner = threading.Thread(target=self.churn, args=(stop,), daemon=True)
        churner.start()
        slots = threading.Semaphore(64)
        clients = []
        for _ in range(self.args.clients):
            if time.monotonic() - started > self.args.seconds:
                break
            slots.acquire()

            def one(luck=self.rng.random(), size_luck=self.rng.random()):
                try:
                    self.client(luck, size_luck)
                finally:
                    slots.release()

            thread = threading.Thread(target=one, daemon=True)
            thread.start()
            clients.append(thread)
        for thread in clients:
            thread.join(max(1, self.args.seconds - (time.monotonic() - started)))
        stop.set()
        churner.join(5)
        elapsed = time.monotonic() - started
        print(f"soak: {len(clients)} clients in {elapsed:.1f} s: "
              + ", ".join(f"{count} {outcome}" for outcome, count in self.counts.items()))

        finished = sum(self.counts.values())
        self.check("every client finished within the time limit", finished == len(clients),
                   f"{len(clients) - finished} still running")
        self.check("no echo came back altered", self.counts["corrupted"] == 0,
                   f"{self.counts['corrupted']} corrupted")
        # A third of the clients ask for a whole echo; most targets give one.
        self.check("whole echoes got through the chaos", self.counts["whole"] >= len(clients) // 6,
                   f"only {self.counts['whole']} of {len(clients)}")
        bad_headers = sum(t.bad_headers for t in self.proxy_targets)
        self.check("every PROXY v2 flow started with a valid header naming the listener", bad_headers == 0,
                   f"{bad_headers} bad headers")
        self.check("the control API answered every call", not self.api_errors, "; ".join(self.api_errors[:3]))
        alive = self.proc.poll() is None
        self.check("localnlb survived", alive, f"exit {self.proc.returncode}; log:\n{open(self.log).read()[-2000:]}")
        if alive:
            deadline = time.monotonic() + 10
            while self.active_flows() > 0 and time.monotonic() < deadline:
                time.sleep(0.2)
            active = self.active_flows()
            self.check("active flows return to 0", active == 0, f"{active:.0f} still active")
            self.check("/flows is empty", json.loads(self.api("GET", "/flows"))["Flows"] == [])
            # A health check or the API's own connection may be open at the moment of looking; a
            # leaked descriptor stays.
            before_pipes = before.pop("pipe", 0)
            for _ in range(10):
                time.sleep(0.3)
                after = self.descriptors()
                pipes = after.pop("pipe", 0) - before_pipes
                if after == before:
                    break
            self.check("no descriptor leaked (pipes aside)", after == before, f"before {before}, after {after}")
            self.check("pooled pipes stay within the pool", pipes <= 2 * POOLED_PIPES_PER_LOOP * LOOPS,
                       f"{pipes} pipe descriptors")
            self.proc.terminate()
            try:
                code = self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                code = "none within 15 s"
            self.check("SIGTERM ends it with exit 0", code == 0, f"exit {code}")
        for target in self.instance_targets + self.proxy_targets:
            target.stopped.set()
        print(f"soak: {self.passed} passed, {len(self.failures)} failed")
        if self.failures:
            print(f"soak: localnlb's log is in {self.log}")
        return 1 if self.failures else 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--localnlb", default=".build/debug/localnlb")
    parser.add_argument("--clients", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=90)
    sys.exit(Soak(parser.parse_args()).run())


if __name__ == "__main__":
    main()
