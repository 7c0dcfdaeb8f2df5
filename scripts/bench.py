#!/usr/bin/env python3
"""The benchmark behind scripts/bench.sh: LocalNLB, HAProxy, nginx stream and no proxy, same work.

Contenders alternate (A B C D, A B C D, ...) and every figure is the median of the rounds, so drift on a
shared machine hits all of them alike. Everything runs on 127.0.0.1; every process started here is
stopped here, by its pid.
"""

import argparse
import shutil
import json
import os
import platform
import re
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from support import free_port, wait_port

IDLE_FLOWS = 8000
# The file a TLS bulk transfer moves (sparse: it costs no disk).
BIG_BYTES = 512 * 1024 * 1024


def children_of(parent):
    """The processes whose parent is `parent`, from /proc (no procps needed)."""
    children = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == parent:
                        children.append(int(entry))
            except (FileNotFoundError, ProcessLookupError):
                pass
    return children


class Bench:
    def __init__(self, args):
        self.args = args
        self.seconds = 1 if args.quick else 5
        self.rounds = args.rounds
        self.tmp = tempfile.mkdtemp(prefix="localnlb-bench.")
        self.procs = []
        self.udp = {}
        self.p = {name: free_port() for name in [
            "iperf", "http", "http_pp",
            "lnb_iperf", "lnb_http", "lnb_pp",
            "hap_iperf", "hap_http", "hap_pp",
            "ngx_iperf", "ngx_http", "ngx_pp",
            "base_iperf", "base_http", "base_pp",
            "lnb_udp", "ngx_udp", "base_udp",
            "dns", "lnb_dns", "ngx_dns", "base_dns",
            "lnb_tls", "lnb_tls_rsa", "hap_tls", "hap_tls_rsa", "ngx_tls", "ngx_tls_rsa", "base_tls", "base_tls_rsa",
            "lnb_web", "hap_web", "ngx_web", "base_web",
        ]}
        # The TLS listeners' ports by contender, when the contender has them.
        self.tls_ports = {}
        # The HTTP proxies' ports by contender (an application load balancer's listener, HAProxy's mode
        # http, nginx's proxy_pass): each adds X-Forwarded-For and keeps the backend connections alive.
        self.web_ports = {}

    # -- processes -------------------------------------------------------------------------------
    def start(self, argv, **kw):
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.tmp, os.path.basename(argv[0]) + ".err"), "a"), **kw)
        self.procs.append(proc)
        return proc

    def stop_all(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:
                proc.kill()
        for pidfile in ["backend.pid", "stream.pid", "haproxy.pid"]:
            path = os.path.join(self.tmp, pidfile)
            if os.path.exists(path):
                try:
                    os.kill(int(open(path).read().strip()), signal.SIGTERM)
                except (ProcessLookupError, ValueError):
                    pass
        time.sleep(0.5)
        shutil.rmtree(self.tmp, ignore_errors=True)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def make_certificates(self):
        """One ECDSA P-256 and one RSA 2048 certificate (openssl), the same for every contender: PEM files
        for HAProxy and nginx, and for LocalNLB certificate files in its authority's folder, which it
        reads at start as a certificate ImportCertificate kept (by ARN)."""
        os.makedirs(os.path.join(self.tmp, "ca", "certificates"), exist_ok=True)
        os.environ["LOCALNLB_CA_DIR"] = os.path.join(self.tmp, "ca")
        for kind, key_args in [("ec", ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"]),
                               ("rsa", ["-newkey", "rsa:2048"])]:
            cert, key = os.path.join(self.tmp, f"{kind}.pem"), os.path.join(self.tmp, f"{kind}-key.pem")
            subprocess.run(["openssl", "req", "-x509", *key_args, "-nodes", "-keyout", key, "-out", cert, "-days", "2",
                            "-subj", "/CN=bench.test", "-addext", "subjectAltName=DNS:bench.test,IP:127.0.0.1"],
                           check=True, capture_output=True)
            pem, key_pem = open(cert).read(), open(key).read()
            self.write(f"{kind}-combined.pem", pem + key_pem)
            self.write(f"ca/certificates/bench-{kind}.json", json.dumps({
                "CertificateArn": self.certificate_arn(kind), "Type": "IMPORTED", "CreatedAt": time.time(),
                "Certificate": pem, "PrivateKey": key_pem, "Tags": []}))

    @staticmethod
    def certificate_arn(kind):
        return f"arn:aws:acm:us-east-1:000000000000:certificate/bench-{kind}"

    def start_backends(self):
        self.start(["iperf3", "-s", "-p", str(self.p["iperf"])])
        # A DNS server for UDP request/response: every query for example.test answered from memory.
        self.start(["dnsmasq", "--no-daemon", "--no-resolv", "--no-hosts", f"--port={self.p['dns']}",
                    "--listen-address=127.0.0.1", "--bind-interfaces", "--address=/example.test/192.0.2.7"])
        self.write("queries.txt", "example.test A\n")
        os.makedirs(os.path.join(self.tmp, "temp"), exist_ok=True)
        conf = self.write("backend.conf", f"""
daemon on; worker_processes 1; worker_rlimit_nofile 20000;
pid {self.tmp}/backend.pid; error_log {self.tmp}/backend-error.log;
events {{ worker_connections 19000; }}
http {{
    access_log off; keepalive_timeout 300; keepalive_requests 100000000;
    client_body_temp_path {self.tmp}/temp; proxy_temp_path {self.tmp}/temp; fastcgi_temp_path {self.tmp}/temp;
    uwsgi_temp_path {self.tmp}/temp; scgi_temp_path {self.tmp}/temp;
    server {{ listen 127.0.0.1:{self.p['http']} reuseport backlog=4096; client_max_body_size 0;
              location / {{ return 200 "hello\\n"; }} location = /big {{ alias {self.tmp}/big; }} }}
    server {{ listen 127.0.0.1:{self.p['http_pp']} proxy_protocol reuseport backlog=4096; location / {{ return 200 "hello\\n"; }} }}
}}
""")
        with open(os.path.join(self.tmp, "big"), "wb") as f:
            f.truncate(BIG_BYTES)
        # nginx's worker (not root) reads it: the scratch folder mkdtemp made private must let it through.
        os.chmod(self.tmp, 0o755)
        os.chmod(os.path.join(self.tmp, "big"), 0o644)
        subprocess.run(["nginx", "-p", self.tmp, "-c", conf, "-e", f"{self.tmp}/backend-error.log"], check=True)
        for port in ["iperf", "http", "http_pp"]:
            wait_port(self.p[port])

    def start_localnlb(self, binary=None, prefix="lnb"):
        """LocalNLB from `binary` (default --localnlb) on the ports named `prefix`_iperf/_http/_pp."""
        groups, listeners = [], []
        for name, port, backend, pp in [("iperf", f"{prefix}_iperf", "iperf", False),
                                         ("http", f"{prefix}_http", "http", False),
                                         ("pp", f"{prefix}_pp", "http_pp", True)]:
            attributes = [{"Key": "proxy_protocol_v2.enabled", "Value": "true"}] if pp else []
            groups.append({"Name": name, "Port": self.p[backend], "TargetType": "ip",
                           # Checks go to the HTTP backends, never into a running iperf3 test.
                           "HealthCheckPort": str(self.p["http"]),
                           "TargetGroupAttributes": attributes, "Targets": [{"Id": "127.0.0.1"}]})
            listeners.append({"Port": self.p[port], "DefaultActions": [{"Type": "forward", "TargetGroupName": name}]})
        # UDP: a TCP_UDP listener in front of iperf3 (its control over TCP, its datagrams over UDP),
        # when this build has UDP listeners (an older baseline may not).
        with_udp = groups + [{"Name": "iperf-udp", "Protocol": "TCP_UDP", "Port": self.p["iperf"], "TargetType": "ip",
                              "HealthCheckPort": str(self.p["http"]), "Targets": [{"Id": "127.0.0.1"}]}]
        with_udp.append({"Name": "dns", "Protocol": "UDP", "Port": self.p["dns"], "TargetType": "ip",
                         "HealthCheckPort": str(self.p["http"]), "Targets": [{"Id": "127.0.0.1"}]})
        udp_listeners = listeners + [{"Port": self.p[f"{prefix}_udp"], "Protocol": "TCP_UDP",
                                      "DefaultActions": [{"Type": "forward", "TargetGroupName": "iperf-udp"}]},
                                     {"Port": self.p[f"{prefix}_dns"], "Protocol": "UDP",
                                      "DefaultActions": [{"Type": "forward", "TargetGroupName": "dns"}]}]
        tls_listeners = [
            {"Port": self.p[f"{prefix}_tls{suffix}"], "Protocol": "TLS",
             "Certificates": [{"CertificateArn": self.certificate_arn(kind)}],
             "DefaultActions": [{"Type": "forward", "TargetGroupName": "http"}]}
            for kind, suffix in [("ec", ""), ("rsa", "_rsa")]] if "tls" in self.args.only else []
        document = {"Admin": {"Enabled": False}, "Dns": {"Enabled": False}, "Listeners": udp_listeners + tls_listeners,
                    "TargetGroups": with_udp}
        config = self.write(f"localnlb-{prefix}.json", json.dumps(document))
        executable = binary or self.args.localnlb
        tls = bool(tls_listeners) and subprocess.run(
            [executable, "check-config", config], capture_output=True).returncode == 0
        if not tls:
            # A build without TLS listeners (an older baseline): the rest of the run without them.
            document["Listeners"] = udp_listeners
            config = self.write(f"localnlb-{prefix}.json", json.dumps(document))
        self.udp[prefix] = subprocess.run([executable, "check-config", config], capture_output=True).returncode == 0
        if not self.udp[prefix]:
            config = self.write(f"localnlb-{prefix}.json", json.dumps({
                "Admin": {"Enabled": False}, "Listeners": listeners, "TargetGroups": groups}))
        web = False
        if "http" in self.args.only and self.udp[prefix]:
            # An application load balancer beside the network one, its HTTP listener before nginx's backend.
            nodes = [{"SubnetId": "subnet-a", "PrivateIPv4Address": "127.0.0.1"}]
            with_web = dict(document, LoadBalancers=[
                {"Name": "localnlb", "SubnetMappings": nodes},
                {"Name": "alb", "Type": "application", "SubnetMappings": nodes}])
            with_web["Listeners"] = [dict(listener, LoadBalancerArn="localnlb") for listener in document["Listeners"]] + [
                {"LoadBalancerArn": "alb", "Port": self.p[f"{prefix}_web"], "Protocol": "HTTP",
                 "DefaultActions": [{"Type": "forward", "TargetGroupName": "web"}]}]
            with_web["TargetGroups"] = document["TargetGroups"] + [
                {"Name": "web", "Protocol": "HTTP", "Port": self.p["http"], "TargetType": "ip",
                 "Targets": [{"Id": "127.0.0.1"}]}]
            web_config = self.write(f"localnlb-{prefix}-web.json", json.dumps(with_web))
            # A build without application load balancers (an older baseline): the run without them.
            web = subprocess.run([executable, "check-config", web_config], capture_output=True).returncode == 0
            if web:
                document = with_web
                config = web_config
        argv = [executable, "serve", "--config", config, "--flow-log", "off"]
        if binary is None and self.args.affinity:
            argv += ["--cpu-affinity", "auto"]
        proc = self.start(argv)
        for port in [f"{prefix}_iperf", f"{prefix}_http", f"{prefix}_pp"]:
            wait_port(self.p[port])
        if web:
            wait_port(self.p[f"{prefix}_web"])
            self.web_ports["localnlb" if prefix == "lnb" else "baseline"] = self.p[f"{prefix}_web"]
        if tls:
            for port in [f"{prefix}_tls", f"{prefix}_tls_rsa"]:
                wait_port(self.p[port])
            self.tls_ports["localnlb" if prefix == "lnb" else "baseline"] = (
                self.p[f"{prefix}_tls"], self.p[f"{prefix}_tls_rsa"])
        return [proc.pid]

    def haproxy_threads(self):
        """As many threads as LocalNLB has loops (one per CPU); with --affinity each on its own CPU, as
        LocalNLB's loops then are."""
        cpus = sorted(os.sched_getaffinity(0))
        lines = f"    nbthread {len(cpus)}"
        if self.args.affinity:
            lines += f"\n    cpu-map auto:1/1-{len(cpus)} {' '.join(map(str, cpus))}"
        return lines

    def start_haproxy(self):
        conf = self.write("haproxy.cfg", f"""
global
{self.haproxy_threads()}
    # 2 descriptors per connection plus pipes for splicing must fit the 20,000-file limit.
    maxconn 8200
    maxpipes 400
    pidfile {self.tmp}/haproxy.pid
defaults
    mode tcp
    balance leastconn
    option splice-auto
    timeout connect 5s
    timeout client 300s
    timeout server 300s
    maxconn 8200
listen iperf
    bind 127.0.0.1:{self.p['hap_iperf']}
    server b 127.0.0.1:{self.p['iperf']}
listen http
    bind 127.0.0.1:{self.p['hap_http']}
    server b 127.0.0.1:{self.p['http']}
listen pp
    bind 127.0.0.1:{self.p['hap_pp']}
    server b 127.0.0.1:{self.p['http_pp']} send-proxy-v2
listen tls
    bind 127.0.0.1:{self.p['hap_tls']} ssl crt {self.tmp}/ec-combined.pem
    server b 127.0.0.1:{self.p['http']}
listen tls_rsa
    bind 127.0.0.1:{self.p['hap_tls_rsa']} ssl crt {self.tmp}/rsa-combined.pem
    server b 127.0.0.1:{self.p['http']}
listen web
    mode http
    option forwardfor
    option http-keep-alive
    http-reuse safe
    timeout http-keep-alive 300s
    bind 127.0.0.1:{self.p['hap_web']}
    server b 127.0.0.1:{self.p['http']}
""")
        proc = self.start(["haproxy", "-db", "-f", conf])
        for port in ["hap_iperf", "hap_http", "hap_pp", "hap_tls", "hap_tls_rsa", "hap_web"]:
            wait_port(self.p[port])
        self.tls_ports["haproxy"] = (self.p["hap_tls"], self.p["hap_tls_rsa"])
        self.web_ports["haproxy"] = self.p["hap_web"]
        return [proc.pid]

    def start_nginx_stream(self):
        conf = self.write("stream.conf", f"""
daemon on; worker_processes auto; worker_rlimit_nofile 20000;{" worker_cpu_affinity auto;" if self.args.affinity else ""}
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
pid {self.tmp}/stream.pid; error_log {self.tmp}/stream-error.log;
events {{ worker_connections 19000; }}
stream {{
    proxy_timeout 300s;
    upstream iperf {{ least_conn; server 127.0.0.1:{self.p['iperf']}; }}
    upstream http {{ least_conn; server 127.0.0.1:{self.p['http']}; }}
    upstream pp {{ least_conn; server 127.0.0.1:{self.p['http_pp']}; }}
    server {{ listen 127.0.0.1:{self.p['ngx_iperf']}; proxy_pass iperf; }}
    server {{ listen 127.0.0.1:{self.p['ngx_http']} backlog=4096; proxy_pass http; }}
    server {{ listen 127.0.0.1:{self.p['ngx_pp']} backlog=4096; proxy_pass pp; proxy_protocol on; }}
    server {{ listen 127.0.0.1:{self.p['ngx_udp']}; listen 127.0.0.1:{self.p['ngx_udp']} udp; proxy_pass iperf; }}
    server {{ listen 127.0.0.1:{self.p['ngx_tls']} ssl backlog=4096; ssl_certificate {self.tmp}/ec.pem;
              ssl_certificate_key {self.tmp}/ec-key.pem; proxy_pass http; }}
    server {{ listen 127.0.0.1:{self.p['ngx_tls_rsa']} ssl backlog=4096; ssl_certificate {self.tmp}/rsa.pem;
              ssl_certificate_key {self.tmp}/rsa-key.pem; proxy_pass http; }}
    upstream dns {{ server 127.0.0.1:{self.p['dns']}; }}
    server {{ listen 127.0.0.1:{self.p['ngx_dns']} udp; proxy_pass dns; proxy_responses 1; proxy_timeout 10s; }}
}}
http {{
    access_log off; keepalive_timeout 300; keepalive_requests 100000000;
    client_body_temp_path {self.tmp}/temp; proxy_temp_path {self.tmp}/temp; fastcgi_temp_path {self.tmp}/temp;
    uwsgi_temp_path {self.tmp}/temp; scgi_temp_path {self.tmp}/temp;
    upstream web {{ server 127.0.0.1:{self.p['http']}; keepalive 64; keepalive_requests 100000000; }}
    server {{ listen 127.0.0.1:{self.p['ngx_web']} backlog=4096;
              location / {{ proxy_pass http://web; proxy_http_version 1.1; proxy_set_header Connection "";
                           proxy_set_header Host $host;
                           proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for; }} }}
}}
""")
        subprocess.run(["nginx", "-p", self.tmp, "-c", conf, "-e", f"{self.tmp}/stream-error.log"], check=True)
        for port in ["ngx_iperf", "ngx_http", "ngx_pp", "ngx_tls", "ngx_tls_rsa", "ngx_web"]:
            wait_port(self.p[port])
        self.tls_ports["nginx"] = (self.p["ngx_tls"], self.p["ngx_tls_rsa"])
        self.web_ports["nginx"] = self.p["ngx_web"]
        master = int(open(f"{self.tmp}/stream.pid").read().strip())
        return [master] + children_of(master)

    # -- workloads -------------------------------------------------------------------------------
    def iperf(self, port, streams, reverse):
        argv = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-t", str(self.seconds), "-P", str(streams), "-J"]
        if reverse:
            argv.append("-R")
        out = subprocess.run(argv, capture_output=True, text=True, timeout=self.seconds + 30).stdout
        return json.loads(out)["end"]["sum_received"]["bits_per_second"] / 1e9

    def iperf_udp(self, port):
        """Datagrams per second delivered (1200 bytes each, sent as fast as the client can)."""
        argv = ["iperf3", "-c", "127.0.0.1", "-p", str(port), "-u", "-b", "0", "-l", "1200",
                "-t", str(self.seconds), "-J"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=self.seconds + 30).stdout
        total = json.loads(out)["end"]["sum"]
        return (total["packets"] - total["lost_packets"]) / total["seconds"]

    def dnsperf(self, port):
        """DNS queries per second answered, and their average latency (ms): dnsperf, 4 clients, up to 100
        queries in flight."""
        argv = ["dnsperf", "-s", "127.0.0.1", "-p", str(port), "-d", os.path.join(self.tmp, "queries.txt"),
                "-l", str(self.seconds), "-c", "4", "-q", "100"]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=self.seconds + 30).stdout
        qps = float(re.search(r"Queries per second:\s+([\d.]+)", out).group(1))
        latency = float(re.search(r"Average Latency \(s\):\s+([\d.]+)", out).group(1)) * 1000
        return qps, latency

    @staticmethod
    def cpu_seconds(pids):
        """User plus system CPU time of these processes (all their threads) so far."""
        total = 0
        for pid in pids:
            try:
                with open(f"/proc/{pid}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except FileNotFoundError:
                pass
        return total / os.sysconf("SC_CLK_TCK")

    def wrk(self, port, close, pids=(), scheme="http"):
        """Requests/s, p50 and p99 latency (ms), and the proxy's CPU time per request (µs; None
        without a proxy): on a machine the load saturates, the cost that decides the others."""
        argv = ["wrk", "-t1", "-c32", f"-d{self.seconds}s", "--latency", f"{scheme}://127.0.0.1:{port}/"]
        if close:
            argv[4:4] = ["-H", "Connection: close"]
        before = self.cpu_seconds(pids)
        out = subprocess.run(argv, capture_output=True, text=True, timeout=self.seconds + 30).stdout
        cpu = self.cpu_seconds(pids) - before
        requests = int(re.search(r"(\d+) requests in", out).group(1))
        cpu_us = 1e6 * cpu / requests if pids and requests else None
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

        def latency(pct):
            m = re.search(rf"^\s+{pct}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
            value, unit = float(m.group(1)), m.group(2)
            return value * {"us": 0.001, "ms": 1, "s": 1000}[unit]
        return rps, latency(50), latency(99), cpu_us

    def tls_bulk(self, port, upload):
        """One TLS stream's throughput (Gbit/s) with curl: the backend's BIG_BYTES file downloaded
        (target→client), or as much uploaded (client→target; the backend reads and discards it)."""
        url = f"https://127.0.0.1:{port}/big"
        argv = ["curl", "-sk", "--http1.1", "-o", "/dev/null", "-w", "%{speed_upload} %{speed_download}"]
        argv += ["-T", os.path.join(self.tmp, "big"), url.replace("/big", "/upload")] if upload else [url]
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120).stdout.split()
        return float(out[0 if upload else 1]) * 8 / 1e9

    def full_handshakes(self, port, pids):
        """Full TLS handshakes per second (`openssl s_time -new`: no session is resumed), from two client
        processes at once, and the proxy's CPU per handshake (µs)."""
        before = self.cpu_seconds(pids)
        argv = ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-time", str(max(2, self.seconds))]
        clients = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
                   for _ in range(2)]
        total, seconds = 0, max(2, self.seconds)
        for client in clients:
            out = client.communicate(timeout=seconds + 30)[0]
            found = re.search(r"(\d+) connections in ([\d.]+)s", out)
            if found:
                total += int(found.group(1))
        cpu = self.cpu_seconds(pids) - before
        return total / seconds, (1e6 * cpu / total if pids and total else None)

    @staticmethod
    def footprint(pids):
        rss, fds = 0, 0
        for pid in pids:
            try:
                with open(f"/proc/{pid}/status") as f:
                    rss += int(re.search(r"VmRSS:\s+(\d+) kB", f.read()).group(1)) * 1024
                fds += len(os.listdir(f"/proc/{pid}/fd"))
            except (FileNotFoundError, AttributeError):
                pass
        return rss, fds

    def idle(self, port, pids):
        """Opens IDLE_FLOWS connections that each made one request, then measures the proxy against its
        footprint when it had just started (memory kept for reuse after a run still counts)."""
        before = self.baseline[tuple(pids)]
        socks = []
        request = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"
        try:
            for _ in range(IDLE_FLOWS):
                s = socket.create_connection(("127.0.0.1", port), 5)
                s.sendall(request)
                socks.append(s)
            for s in socks:
                data = b""
                while b"hello" not in data:
                    chunk = s.recv(4096)
                    if not chunk:
                        raise RuntimeError("a flow closed")
                    data += chunk
            time.sleep(0.5)
            after = self.footprint(pids)
        finally:
            for s in socks:
                s.close()
        time.sleep(1)
        return (after[0] - before[0]) / IDLE_FLOWS, (after[1] - before[1]) / IDLE_FLOWS

    def count_calls(self, name, ports, pids, results):
        """System calls and context switches of the proxy (all threads) per keep-alive request and per
        new flow, counted by `perf stat` in a pass of its own after the timed rounds: the counting costs
        time per call, so it never runs beside a rate."""
        http_port, pp_port = ports[1], ports[2]
        if not pids or not shutil.which("perf"):
            return
        loads = []
        if "tcp" in self.args.only:
            loads += [("keep-alive: proxy system calls per request", "keep-alive: proxy context switches per request",
                       http_port, False),
                      ("new flows: proxy system calls per flow", "new flows: proxy context switches per flow",
                       http_port, True)]
        if "tcp-pp" in self.args.only and pp_port:
            loads.append(("PROXY v2 new flows: proxy system calls per flow", None, pp_port, True))
        for calls_key, switches_key, port, close in loads:
            output = os.path.join(self.tmp, "perf.txt")
            perf = subprocess.Popen(
                ["perf", "stat", "-x,", "-o", output, "-e", "raw_syscalls:sys_enter,context-switches",
                 "-p", ",".join(str(pid) for pid in pids)],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(0.3)
            requests = self.wrk(port, close, ())[0] * self.seconds
            perf.send_signal(signal.SIGINT)
            perf.wait(10)
            counts = {}
            for line in open(output):
                fields = line.split(",")
                if len(fields) > 2 and fields[0].strip().isdigit():
                    counts[fields[2]] = int(fields[0])
            # The wrk run's requests; the few calls of the 0.3 s before it are the loops' idle ticks.
            if requests and "raw_syscalls:sys_enter" in counts:
                results.setdefault(calls_key, {})[name] = [counts["raw_syscalls:sys_enter"] / requests]
            if requests and switches_key and "context-switches" in counts:
                results.setdefault(switches_key, {})[name] = [counts["context-switches"] / requests]

    # -- the run ---------------------------------------------------------------------------------
    def measure(self, name, ports, pids, results):
        def add(key, value):
            results.setdefault(key, {}).setdefault(name, []).append(value)
        iperf_port, http_port, pp_port, udp_port, dns_port = ports
        only = self.args.only
        if "throughput" not in only:
            iperf_port = None
        if "udp" not in only:
            udp_port = dns_port = None
        if "tcp-pp" not in only:
            pp_port = None
        for streams in [1, 4] if iperf_port else []:
            for reverse in [False, True]:
                direction = "target→client" if reverse else "client→target"
                add(f"throughput {streams} stream{'s' if streams > 1 else ''} {direction} (Gbit/s)",
                    self.iperf(iperf_port, streams, reverse))
        if udp_port:
            before = self.cpu_seconds(pids)
            rate = self.iperf_udp(udp_port)
            add("UDP datagrams/s delivered (1200 bytes, iperf3 -u -b 0)", rate)
            if pids and rate:
                add("UDP: proxy CPU per datagram (µs)", 1e6 * (self.cpu_seconds(pids) - before) / (rate * self.seconds))
        if dns_port:
            before = self.cpu_seconds(pids)
            qps, latency = self.dnsperf(dns_port)
            add("UDP request/response: DNS queries/s (dnsperf → dnsmasq)", qps)
            add("UDP request/response: average latency (ms)", latency)
            if pids and qps:
                add("UDP request/response: proxy CPU per query (µs)",
                    1e6 * (self.cpu_seconds(pids) - before) / (qps * self.seconds))
        if "tcp" not in only:
            http_port = None
        if http_port:
            rps, p50, p99, cpu = self.wrk(http_port, close=False, pids=pids)
            add("keep-alive requests/s", rps)
            add("keep-alive p50 latency (ms)", p50)
            add("keep-alive p99 latency (ms)", p99)
            if cpu is not None:
                add("keep-alive: proxy CPU per request (µs)", cpu)
            rps, _, _, cpu = self.wrk(http_port, close=True, pids=pids)
            add("new flows/s (Connection: close)", rps)
            if cpu is not None:
                add("new flows: proxy CPU per flow (µs)", cpu)
        if pp_port:
            rps, p50, p99, _ = self.wrk(pp_port, close=False, pids=pids)
            add("PROXY v2: keep-alive requests/s", rps)
            add("PROXY v2: keep-alive p99 latency (ms)", p99)
            add("PROXY v2: new flows/s", self.wrk(pp_port, close=True, pids=pids)[0])
        tls = self.tls_ports.get(name) if "tls" in only else None
        if tls:
            ec, rsa = tls
            rps, _, p99, cpu = self.wrk(ec, close=False, pids=pids, scheme="https")
            add("TLS keep-alive requests/s (ECDSA P-256)", rps)
            add("TLS keep-alive p99 latency (ms)", p99)
            if cpu is not None:
                add("TLS keep-alive: proxy CPU per request (µs)", cpu)
            # wrk resumes its TLS sessions: its new flows are abbreviated handshakes.
            rps, _, _, cpu = self.wrk(ec, close=True, pids=pids, scheme="https")
            add("TLS new flows/s (wrk, sessions resumed)", rps)
            if cpu is not None:
                add("TLS new flows: proxy CPU per flow (resumed, µs)", cpu)
            add("TLS bulk target→client (Gbit/s, one curl stream)", self.tls_bulk(ec, upload=False))
            add("TLS bulk client→target (Gbit/s, one curl stream)", self.tls_bulk(ec, upload=True))
            for kind, port in [("ECDSA P-256", ec), ("RSA 2048", rsa)]:
                rate, cpu = self.full_handshakes(port, pids)
                add(f"TLS full handshakes/s ({kind}, openssl s_time -new)", rate)
                if cpu is not None:
                    add(f"TLS: proxy CPU per full handshake ({kind}, µs)", cpu)
        web = self.web_ports.get(name) if "http" in only else None
        if web:
            rps, p50, p99, cpu = self.wrk(web, close=False, pids=pids)
            add("HTTP proxy (ALB): keep-alive requests/s", rps)
            add("HTTP proxy (ALB): keep-alive p99 latency (ms)", p99)
            if cpu is not None:
                add("HTTP proxy (ALB): proxy CPU per request (µs)", cpu)
            rps, _, _, cpu = self.wrk(web, close=True, pids=pids)
            add("HTTP proxy (ALB): requests/s, a new connection each", rps)
            if cpu is not None:
                add("HTTP proxy (ALB): proxy CPU per new connection (µs)", cpu)
        if pids and "idle" in only and ports[1] and ports[2]:
            http_port, pp_port = ports[1], ports[2]
            try:
                memory, fds = self.idle(http_port, pids)
                add(f"idle flow: proxy memory (bytes per flow, {IDLE_FLOWS} flows)", memory)
                add(f"idle flow: proxy fds (per flow, {IDLE_FLOWS} flows)", fds)
                memory, fds = self.idle(pp_port, pids)
                add("PROXY v2: idle flow proxy memory (bytes per flow)", memory)
            except (OSError, RuntimeError) as error:
                # Reported, not hidden: a contender that cannot hold the idle flows gets no figure.
                print(f"   {name}: {IDLE_FLOWS} idle flows failed: {error}", file=sys.stderr, flush=True)
                add(f"idle flows that failed ({IDLE_FLOWS} each)", 1)

    def run(self):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        results = {}
        self.baseline = {}
        try:
            self.make_certificates()
            self.start_backends()
            contenders = {
                "localnlb": (None, self.start_localnlb()),
                "haproxy": (
                    (self.p["hap_iperf"], self.p["hap_http"], self.p["hap_pp"], None, None), self.start_haproxy()),
                "nginx": (
                    (self.p["ngx_iperf"], self.p["ngx_http"], self.p["ngx_pp"], self.p["ngx_udp"], self.p["ngx_dns"]),
                    self.start_nginx_stream()),
                "no proxy": ((self.p["iperf"], self.p["http"], None, self.p["iperf"], self.p["dns"]), []),
            }
            udp = self.udp["lnb"]
            contenders["localnlb"] = (
                (self.p["lnb_iperf"], self.p["lnb_http"], self.p["lnb_pp"], self.p["lnb_udp"] if udp else None,
                 self.p["lnb_dns"] if udp else None),
                contenders["localnlb"][1])
            if self.args.baseline:
                # An earlier build beside this one, alternating with the rest: an A/B in the same run.
                pids = self.start_localnlb(self.args.baseline, "base")
                udp = self.udp["base"]
                contenders["baseline"] = (
                    (self.p["base_iperf"], self.p["base_http"], self.p["base_pp"],
                     self.p["base_udp"] if udp else None, self.p["base_dns"] if udp else None), pids)
            time.sleep(0.5)
            for _, pids in contenders.values():
                self.baseline[tuple(pids)] = self.footprint(pids)
            for round_ in range(self.rounds):
                for name, (ports, pids) in contenders.items():
                    print(f"   round {round_ + 1}/{self.rounds}: {name}", file=sys.stderr, flush=True)
                    self.measure(name, ports, pids, results)
            for name, (ports, pids) in contenders.items():
                print(f"   counting system calls: {name}", file=sys.stderr, flush=True)
                self.count_calls(name, ports, pids, results)
        finally:
            self.stop_all()
        self.report(results)

    def report(self, results):
        names = ["localnlb", "haproxy", "nginx", "no proxy"] + (["baseline"] if self.args.baseline else [])
        lower_is_better = lambda key: any(word in key for word in ["latency", "idle", "CPU", "calls", "switches"])
        print()
        print(f"LocalNLB benchmark, {time.strftime('%Y-%m-%d')}: {os.cpu_count()} cores, Linux {platform.release()}, "
              f"{'quick' if self.args.quick else 'full'} run ({self.seconds} s per measurement, "
              f"median of {self.rounds} rounds), "
              + ("each proxy's loops, workers or threads one per CPU" if self.args.affinity
                 else "threads placed by the scheduler"))
        print()
        extra = " vs baseline |" if self.args.baseline else ""
        header = (f"| {'measurement':<62} | " + " | ".join(f"{n:>10}" for n in names)
                  + " | vs best peer | vs no proxy |" + extra)
        print(header)
        print("|" + "-" * 64 + "|" + "|".join("-" * 12 for _ in names) + "|--------------|-------------|"
              + ("-------------|" if self.args.baseline else ""))
        for key, by_name in results.items():
            med = {n: statistics.median(v) for n, v in by_name.items()}

            def cell(n):
                if n not in med:
                    return f"{'-':>10}"
                value = med[n]
                return f"{value:>10.2f}" if value < 1000 else f"{value:>10.0f}"
            peers = [med[n] for n in ["haproxy", "nginx"] if n in med]
            mine = med.get("localnlb")
            if lower_is_better(key):
                best = min(peers) if peers else None
                vs_best = f"{best / mine:.2f}×" if best and mine else "-"
                vs_none = f"{med['no proxy'] / mine:.2f}×" if "no proxy" in med and mine else "-"
            else:
                best = max(peers) if peers else None
                vs_best = f"{mine / best:.2f}×" if best and mine else "-"
                vs_none = f"{mine / med['no proxy']:.2f}×" if "no proxy" in med and mine else "-"
            line = f"| {key:<62} | " + " | ".join(cell(n) for n in names) + f" | {vs_best:>12} | {vs_none:>11} |"
            if self.args.baseline:
                base = med.get("baseline")
                if base and mine:
                    ratio = base / mine if lower_is_better(key) else mine / base
                    line += f" {ratio:>10.2f}× |"
                else:
                    line += f" {'-':>11} |"
            print(line)
        print()
        print("Ratios: higher is better for LocalNLB (for latency, CPU and idle cost: the peer's figure over "
              "LocalNLB's).")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--localnlb", required=True)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline", help="an earlier localnlb binary, measured beside --localnlb in the same run")
    parser.add_argument("--affinity", action="store_true",
                        help="keep every proxy's threads one per CPU (LocalNLB --cpu-affinity auto, nginx "
                        "worker_cpu_affinity auto, HAProxy cpu-map); without it the scheduler places them")
    workloads = ["throughput", "udp", "tcp", "tcp-pp", "idle", "tls", "http"]
    parser.add_argument("--only", default=",".join(workloads),
                        help="the workloads to run, comma-separated, of: " + ", ".join(workloads)
                        + " (tcp: keep-alive and new flows; tcp-pp: the same with PROXY v2; tls: TLS listeners, "
                        "ECDSA and RSA; http: an application load balancer's HTTP proxy against HAProxy's mode http "
                        "and nginx's proxy_pass)")
    args = parser.parse_args()
    args.only = set(args.only.split(","))
    unknown = args.only - set(workloads)
    if unknown:
        parser.error(f"--only: no workload {', '.join(sorted(unknown))}; the workloads are {', '.join(workloads)}")
    Bench(args).run()


if __name__ == "__main__":
    main()
