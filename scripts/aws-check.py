#!/usr/bin/env python3
"""boto3 and the AWS CLI, clients nobody here wrote, drive localnlb through the ELBv2 Query API on the
admin address.

    VENV/bin/python scripts/aws-check.py --localnlb .build/debug/localnlb   (boto3 and awscli in VENV)

One load balancer from a file, with a listener and an `ip` target group. boto3 describes it, registers
a second target and waits with its own `target_in_service` waiter, turns PROXY v2 on live and sees the
next flow carry the header, deregisters and waits with `target_deregistered`, and gets AWS's error
codes as ClientError. Then, on an empty host, boto3 creates load balancers (each on loopback addresses
of its own), listeners on the same port of two of them, deletes one, and a restart replays what
--persist wrote. Timers run under --time-scale 0.01. Everything stays on 127.0.0.0/8.
"""
import argparse
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

import boto3
from botocore.exceptions import ClientError

from support import free_port, wait_port

results = []


def check(name, ok, detail=""):
    results.append(ok)
    print(f"  {'passed' if ok else 'FAILED'}  {name}" + (f" ({detail})" if detail and not ok else ""))


def error_code(call):
    try:
        call()
    except ClientError as error:
        return error.response["Error"]["Code"]
    return None


def get_through(port, host="127.0.0.1"):
    """One HTTP GET through the listener: the built-in target's JSON report."""
    with socket.create_connection((host, port), 5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return json.loads(data.split(b"\r\n\r\n", 1)[1])


def raw_post(admin, body):
    request = urllib.request.Request(f"http://127.0.0.1:{admin}/", data=body, method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def instance_targets(client, admin, target_port):
    """Instance targets by id: boto3 registers i-… once the JSON API has said where that instance is."""
    group = client.create_target_group(Name="instances", Protocol="TCP", Port=target_port, TargetType="instance")[
        "TargetGroups"][0]["TargetGroupArn"]
    instance = "i-0123456789abcdef0"
    unknown = error_code(lambda: client.register_targets(TargetGroupArn=group, Targets=[{"Id": instance}]))
    request = urllib.request.Request(f"http://127.0.0.1:{admin}/instances/{instance}", method="PUT",
                                     data=json.dumps({"PrivateIpAddress": "127.0.0.1"}).encode())
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=5) as response:
        declared = json.loads(response.read())
    client.register_targets(TargetGroupArn=group, Targets=[{"Id": instance}])
    health = client.describe_target_health(TargetGroupArn=group)["TargetHealthDescriptions"]
    client.deregister_targets(TargetGroupArn=group, Targets=[{"Id": instance}])
    again = client.deregister_targets(TargetGroupArn=group, Targets=[{"Id": "i-0fedcba9876543210"}])
    client.delete_target_group(TargetGroupArn=group)
    check("register_targets Id=i-…: InvalidTarget until PUT /instances/i-… declares its address; then registered, "
          "described by its id, deregistered; an instance nobody declared deregisters as a no-op",
          unknown == "InvalidTarget" and declared.get("PrivateIpAddress") == "127.0.0.1"
          and [(d["Target"]["Id"], d["Target"]["Port"]) for d in health] == [(instance, target_port)]
          and again["ResponseMetadata"]["HTTPStatusCode"] == 200, f"{unknown} {declared} {health}")


def regions_apart(admin, home_group_arn):
    """Each region is a world of its own, the region taken from the request's SigV4 scope."""
    eu = boto3.client("elbv2", endpoint_url=f"http://127.0.0.1:{admin}", region_name="eu-west-1",
                      aws_access_key_id="test", aws_secret_access_key="test")
    home = boto3.client("elbv2", endpoint_url=f"http://127.0.0.1:{admin}", region_name="us-east-1",
                        aws_access_key_id="test", aws_secret_access_key="test")
    group = eu.create_target_group(Name="kept", Protocol="TCP", Port=80, TargetType="ip")["TargetGroups"][0]
    balancer = eu.create_load_balancer(Name="kept-nlb", Type="network", Subnets=["subnet-e"])["LoadBalancers"][0]
    seen_eu = [g["TargetGroupName"] for g in eu.describe_target_groups()["TargetGroups"]]
    seen_home = [g["TargetGroupArn"] for g in home.describe_target_groups(Names=["kept"])["TargetGroups"]]
    crossed = error_code(lambda: home.describe_target_groups(TargetGroupArns=[group["TargetGroupArn"]]))
    eu_limits = {l["Name"]: l["Max"] for l in eu.describe_account_limits()["Limits"]}
    check("regions are kept apart by the request's SigV4 scope: the same names in eu-west-1 with eu-west-1's ARNs, "
          "DNS name and zones; us-east-1 sees only its own, and an eu-west-1 ARN is not found there",
          group["TargetGroupArn"].startswith("arn:aws:elasticloadbalancing:eu-west-1:")
          and group["TargetGroupArn"] != home_group_arn and seen_eu == ["kept"] and seen_home == [home_group_arn]
          and crossed == "TargetGroupNotFound" and balancer["DNSName"].endswith(".elb.eu-west-1.amazonaws.com")
          and balancer["AvailabilityZones"][0]["ZoneName"] == "eu-west-1a"
          and balancer["LoadBalancerName"] == "kept-nlb" and eu_limits.get("network-load-balancers") == "50",
          f"{group} {balancer} {seen_eu} {seen_home} {crossed}")
    return eu, group["TargetGroupArn"]


def certificates_and_tls(admin, lb_arn, target_port, scratch):
    """ACM as the AWS CLI's and boto3's acm clients drive it, and a TLS listener serving what it holds."""
    acm = boto3.client("acm", endpoint_url=f"http://127.0.0.1:{admin}", region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    elb = boto3.client("elbv2", endpoint_url=f"http://127.0.0.1:{admin}", region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    cert, key = os.path.join(scratch, "api.pem"), os.path.join(scratch, "api-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", key, "-out", cert, "-days", "30", "-subj", "/CN=api.test",
                    "-addext", "subjectAltName=DNS:api.test,IP:127.0.0.1"], check=True, capture_output=True)
    weak_cert, weak_key = os.path.join(scratch, "weak.pem"), os.path.join(scratch, "weak-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:1024", "-nodes", "-keyout", weak_key, "-out",
                    weak_cert, "-days", "30", "-subj", "/CN=weak.test"], check=True, capture_output=True)
    pem = open(cert, "rb").read()
    arn = acm.import_certificate(Certificate=pem, PrivateKey=open(key, "rb").read(),
                                 Tags=[{"Key": "team", "Value": "edge"}])["CertificateArn"]
    described = acm.describe_certificate(CertificateArn=arn)["Certificate"]
    fetched = acm.get_certificate(CertificateArn=arn)["Certificate"]
    mismatched = error_code(lambda: acm.import_certificate(Certificate=pem, PrivateKey=open(weak_key, "rb").read()))
    weak = error_code(lambda: acm.import_certificate(Certificate=open(weak_cert, "rb").read(),
                                                     PrivateKey=open(weak_key, "rb").read()))
    check("acm import_certificate (a key openssl made): describe shows ISSUED, IMPORTED, the names and "
          "EC_prime256v1; get_certificate gives the PEM back; a key that does not match and RSA 1024 are "
          "ValidationException",
          arn.startswith("arn:aws:acm:us-east-1:000000000000:certificate/") and described["Status"] == "ISSUED"
          and described["Type"] == "IMPORTED" and described["DomainName"] == "api.test"
          and described["SubjectAlternativeNames"] == ["api.test", "127.0.0.1"]
          and described["KeyAlgorithm"] == "EC_prime256v1" and fetched.strip() == pem.decode().strip()
          and mismatched == "ValidationException" and weak == "ValidationException",
          f"{described} {mismatched} {weak}")
    group = elb.create_target_group(Name="tls-web", Protocol="TCP", Port=target_port, TargetType="ip")[
        "TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=group, Targets=[{"Id": "127.0.0.1"}])
    port = free_port()
    listener = elb.create_listener(LoadBalancerArn=lb_arn, Protocol="TLS", Port=port, Certificates=[
        {"CertificateArn": arn}], SslPolicy="ELBSecurityPolicy-TLS13-1-2-2021-06", AlpnPolicy=["HTTP2Optional"],
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])["Listeners"][0]
    import ssl
    context = ssl.create_default_context(cafile=cert)
    with socket.create_connection(("127.0.0.1", port), 5) as raw:
        with context.wrap_socket(raw, server_hostname="api.test") as tls:
            tls.sendall(b"GET / HTTP/1.1\r\nHost: api.test\r\nConnection: close\r\n\r\n")
            reply = b""
            while chunk := tls.recv(65536):
                reply += chunk
            version = tls.version()
    in_use = error_code(lambda: acm.delete_certificate(CertificateArn=arn))
    used_by = acm.describe_certificate(CertificateArn=arn)["Certificate"]["InUseBy"]
    check("create_listener Protocol=TLS with the imported ARN: Python's ssl verifies it, TLS 1.3 (the policy), the "
          "target answers; DescribeListeners shows it; delete_certificate is ResourceInUseException, InUseBy names "
          "the listener",
          b'"target":"a"' in reply and version == "TLSv1.3" and listener["Protocol"] == "TLS"
          and listener["Certificates"] == [{"CertificateArn": arn}]
          and listener["SslPolicy"] == "ELBSecurityPolicy-TLS13-1-2-2021-06"
          and listener["AlpnPolicy"] == ["HTTP2Optional"] and in_use == "ResourceInUseException"
          and used_by == [listener["ListenerArn"]], f"{reply[:200]} {version} {listener} {in_use}")
    # SNI: a second certificate for b.test beside the default; the client's name picks, as AWS does.
    second = acm.request_certificate(DomainName="b.test", KeyAlgorithm="EC_prime256v1")["CertificateArn"]
    added = elb.add_listener_certificates(ListenerArn=listener["ListenerArn"],
                                          Certificates=[{"CertificateArn": second}])["Certificates"]
    listed = elb.describe_listener_certificates(ListenerArn=listener["ListenerArn"])["Certificates"]

    def subject(name):
        out = subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", name],
                             input="Q\n", capture_output=True, text=True, timeout=10).stdout
        found = re.search(r"subject=.*?CN ?= ?([^,\n]+)", out)
        return found.group(1).strip() if found else out[-300:]
    by_name = [subject("b.test"), subject("api.test"), subject("unknown.test")]
    # localnlb ctl prints what the AWS CLI prints for a TLS listener and its certificate list.
    differing = ctl_differences(admin, [["describe-listeners", "--listener-arns", listener["ListenerArn"]],
                                        ["describe-listener-certificates", "--listener-arn", listener["ListenerArn"]]])
    check("localnlb ctl prints what the AWS CLI prints for a TLS listener and describe-listener-certificates",
          not differing, str(differing[:1]))
    default_removal = error_code(lambda: elb.remove_listener_certificates(
        ListenerArn=listener["ListenerArn"], Certificates=[{"CertificateArn": arn}]))
    not_tls = error_code(lambda: elb.add_listener_certificates(
        ListenerArn=elb.describe_listeners(LoadBalancerArn=lb_arn)["Listeners"][0]["ListenerArn"],
        Certificates=[{"CertificateArn": second}]))
    elb.remove_listener_certificates(ListenerArn=listener["ListenerArn"], Certificates=[{"CertificateArn": second}])
    after = elb.describe_listener_certificates(ListenerArn=listener["ListenerArn"])["Certificates"]
    # A re-import under the same ARN: the listener serves the new certificate from its next handshake.
    renewed, renewed_key = os.path.join(scratch, "renewed.pem"), os.path.join(scratch, "renewed-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", renewed_key, "-out", renewed, "-days", "30", "-subj", "/CN=renewed.test"],
                   check=True, capture_output=True)
    acm.import_certificate(CertificateArn=arn, Certificate=open(renewed, "rb").read(),
                           PrivateKey=open(renewed_key, "rb").read())
    check("import_certificate with the ARN of a certificate a listener serves (a renewal): the next handshake "
          "gets the new one", subject("api.test") == "renewed.test", subject("api.test"))
    check("add_listener_certificates: SNI b.test gets b.test's certificate, api.test and an unknown name the default "
          "(openssl s_client -servername); describe_listener_certificates marks IsDefault; the default cannot be "
          "removed (OperationNotPermitted), a TCP listener takes none; remove_listener_certificates",
          added == [{"CertificateArn": second, "IsDefault": False}]
          and listed == [{"CertificateArn": arn, "IsDefault": True}, {"CertificateArn": second, "IsDefault": False}]
          and by_name == ["b.test", "api.test", "api.test"] and default_removal == "OperationNotPermitted"
          and not_tls == "InvalidConfigurationRequest" and after == [{"CertificateArn": arn, "IsDefault": True}],
          f"{added} {listed} {by_name} {default_removal} {not_tls} {after}")
    elb.delete_listener(ListenerArn=listener["ListenerArn"])
    elb.delete_target_group(TargetGroupArn=group)
    acm.delete_certificate(CertificateArn=arn)
    acm.delete_certificate(CertificateArn=second)
    requested = acm.request_certificate(DomainName="www.example.test",
                                        SubjectAlternativeNames=["www.example.test", "example.test"],
                                        KeyAlgorithm="EC_prime256v1")["CertificateArn"]
    issued = acm.describe_certificate(CertificateArn=requested)["Certificate"]
    listed = [c["CertificateArn"] for c in acm.list_certificates()["CertificateSummaryList"]]
    tags = acm.list_tags_for_certificate(CertificateArn=requested)["Tags"]
    check("acm request_certificate is ISSUED at once by localnlb's CA (AMAZON_ISSUED); list_certificates lists it; "
          "a deleted ARN is ResourceNotFoundException; an ARN that is not ACM's is InvalidArnException",
          issued["Status"] == "ISSUED" and issued["Type"] == "AMAZON_ISSUED"
          and issued["SubjectAlternativeNames"] == ["www.example.test", "example.test"] and requested in listed
          and arn not in listed and tags == []
          and error_code(lambda: acm.describe_certificate(CertificateArn=arn)) == "ResourceNotFoundException"
          and error_code(lambda: acm.describe_certificate(CertificateArn="arn:aws:iam::123456789012:server-certificate/x")) == "InvalidArnException",
          f"{issued} {listed}")
    # A name ACM's pattern refuses (a comma once reached OpenSSL as two names, and leaked a certificate).
    listed_before = len(acm.list_certificates()["CertificateSummaryList"])
    bad_names = [error_code(lambda: acm.request_certificate(DomainName="a,test")),
                 error_code(lambda: acm.request_certificate(DomainName="ok.test", SubjectAlternativeNames=["bad name.test"])),
                 error_code(lambda: acm.request_certificate(DomainName="-x.test"))]
    check("acm request_certificate: a domain name outside ACM's pattern (a comma, a space, a leading hyphen) is "
          "ValidationException, and no certificate is made",
          bad_names == ["ValidationException"] * 3
          and len(acm.list_certificates()["CertificateSummaryList"]) == listed_before, f"{bad_names}")
    # The AWS CLI's acm, as users type it (fileb://).
    aws = os.path.join(os.path.dirname(sys.executable), "aws")
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    imported = subprocess.run([aws, "acm", "import-certificate", "--certificate", f"fileb://{cert}", "--private-key",
                               f"fileb://{key}", "--endpoint-url", f"http://127.0.0.1:{admin}", "--query",
                               "CertificateArn", "--output", "text"], capture_output=True, text=True, env=env)
    check("the AWS CLI: aws acm import-certificate --certificate fileb://… --private-key fileb://…",
          imported.returncode == 0 and imported.stdout.startswith("arn:aws:acm:us-east-1:"), imported.stderr)
    return acm, sorted([requested, imported.stdout.strip()])


def fetch_on(host, port, path, hostname="app"):
    """One HTTP GET through a listener, the whole answer as text."""
    with socket.create_connection((host, port), 5) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: {hostname}\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data.decode("latin1")


def ctl_differences(admin, commands):
    """Each `aws elbv2` command against `localnlb ctl`, json and text: the ones whose bytes differ."""
    import difflib
    aws = os.path.join(os.path.dirname(sys.executable), "aws")
    env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="us-east-1")
    differing = []
    for command in commands:
        for output in ["json", "text"]:
            line = command + ["--output", output, "--endpoint-url", f"http://127.0.0.1:{admin}"]
            theirs = subprocess.run([aws, "elbv2"] + line, capture_output=True, text=True, env=env)
            ours = subprocess.run([os.environ["LOCALNLB_BINARY"], "ctl"] + line, capture_output=True, text=True,
                                  env=env)
            if theirs.returncode != 0 or theirs.stdout != ours.stdout:
                diff = "".join(list(difflib.unified_diff(theirs.stdout.splitlines(True),
                                                         ours.stdout.splitlines(True)))[:12])
                differing.append((command[0], output, diff, theirs.stderr[-200:], ours.stderr[-200:]))
    return differing


def application_load_balancer(admin, target_port):
    """An application load balancer as boto3 makes one: CreateLoadBalancer without Type (AWS's default is
    application), an HTTP target group with ALB's health-check defaults, an HTTP listener, a request
    through it; AWS's refusals of what does not pair; the AWS CLI's bytes from ctl."""
    elb = boto3.client("elbv2", endpoint_url=f"http://127.0.0.1:{admin}", region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    lb = elb.create_load_balancer(Name="app", Subnets=["subnet-alb-a", "subnet-alb-b"])["LoadBalancers"][0]
    group = elb.create_target_group(Name="app-http", Protocol="HTTP", Port=target_port, VpcId="vpc-1",
                                    TargetType="ip")["TargetGroups"][0]
    elb.register_targets(TargetGroupArn=group["TargetGroupArn"], Targets=[{"Id": "127.0.0.1"}])
    port = free_port()
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=port, DefaultActions=[
        {"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}])["Listeners"][0]
    node = lb["AvailabilityZones"][0]["LoadBalancerAddresses"][0]["IpAddress"]
    with socket.create_connection((node, port), 5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    tcp_group = elb.create_target_group(Name="app-tcp", Protocol="TCP", Port=target_port, TargetType="ip")[
        "TargetGroups"][0]
    wrong_protocol = error_code(lambda: elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TCP", Port=free_port(),
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tcp_group["TargetGroupArn"]}]))
    wrong_group = error_code(lambda: elb.create_listener(
        LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=free_port(),
        DefaultActions=[{"Type": "forward", "TargetGroupArn": tcp_group["TargetGroupArn"]}]))
    bad_mode = error_code(lambda: elb.modify_load_balancer_attributes(LoadBalancerArn=lb["LoadBalancerArn"], Attributes=[
        {"Key": "routing.http.xff_header_processing.mode", "Value": "prepend"}]))
    changed = {a["Key"]: a["Value"] for a in elb.modify_load_balancer_attributes(
        LoadBalancerArn=lb["LoadBalancerArn"], Attributes=[{"Key": "idle_timeout.timeout_seconds", "Value": "120"}])[
        "Attributes"]}
    elb.get_waiter("load_balancer_available").wait(Names=["app"], WaiterConfig={"Delay": 1})
    # The listener's own attributes: header modification.
    listener_attributes = {a["Key"]: a["Value"] for a in elb.modify_listener_attributes(
        ListenerArn=listener["ListenerArn"], Attributes=[
            {"Key": "routing.http.response.server.enabled", "Value": "false"},
            {"Key": "routing.http.response.access_control_allow_origin.header_value", "Value": "https://app.example"}])[
        "Attributes"]}
    with socket.create_connection((node, port), 5) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n")
        headed = b""
        while chunk := s.recv(65536):
            headed += chunk
    bad_header = error_code(lambda: elb.modify_listener_attributes(ListenerArn=listener["ListenerArn"], Attributes=[
        {"Key": "routing.http.response.access_control_allow_credentials.header_value", "Value": "yes"}]))
    check("application listener attributes: modify_listener_attributes sets the Server header off and "
          "Access-Control-Allow-Origin, which the target's answer then carries; describe lists ALB's 11; a value "
          "AWS does not take is ValidationError",
          listener_attributes.get("routing.http.response.server.enabled") == "false" and len(listener_attributes) == 11
          and b"\r\nAccess-Control-Allow-Origin: https://app.example\r\n" in headed and bad_header == "ValidationError",
          f"{listener_attributes} {headed[:300]} {bad_header}")
    differing = ctl_differences(admin, [["describe-load-balancers", "--names", "app"],
                                        ["describe-target-groups", "--names", "app-http"],
                                        ["describe-listeners", "--listener-arns", listener["ListenerArn"]],
                                        ["describe-listener-attributes", "--listener-arn", listener["ListenerArn"]]])
    # Listener rules: a fixed response by path, a redirect by host, priorities swapped, a condition modified.
    def fetch(path, host="app"):
        with socket.create_connection((node, port), 5) as s:
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        return data.decode("latin1")
    fixed = elb.create_rule(ListenerArn=listener["ListenerArn"], Priority=10, Conditions=[
        {"Field": "path-pattern", "PathPatternConfig": {"Values": ["/maintenance*"]}}], Actions=[
        {"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "503", "ContentType": "text/plain",
                                                            "MessageBody": "down for maintenance"}}])["Rules"][0]
    moved = elb.create_rule(ListenerArn=listener["ListenerArn"], Priority=20, Conditions=[
        {"Field": "host-header", "Values": ["old.*"]}], Actions=[
        {"Type": "redirect", "RedirectConfig": {"Protocol": "HTTPS", "Port": "443", "Host": "new.example.com",
                                                "StatusCode": "HTTP_301"}}])["Rules"][0]
    served = [fetch("/maintenance/now"), fetch("/a/b?x=1", host="old.example.com"), fetch("/")]
    in_use = error_code(lambda: elb.create_rule(ListenerArn=listener["ListenerArn"], Priority=20, Conditions=[
        {"Field": "path-pattern", "Values": ["/x"]}], Actions=[{"Type": "forward", "TargetGroupArn": group["TargetGroupArn"]}]))
    to_tcp = error_code(lambda: elb.create_rule(ListenerArn=listener["ListenerArn"], Priority=30, Conditions=[
        {"Field": "path-pattern", "Values": ["/x"]}], Actions=[{"Type": "forward", "TargetGroupArn": tcp_group["TargetGroupArn"]}]))
    elb.set_rule_priorities(RulePriorities=[{"RuleArn": fixed["RuleArn"], "Priority": 30},
                                            {"RuleArn": moved["RuleArn"], "Priority": 5}])
    modified = elb.modify_rule(RuleArn=fixed["RuleArn"], Conditions=[{"Field": "http-request-method",
                                                                       "HttpRequestMethodConfig": {"Values": ["DELETE"]}}])
    described = elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]
    rule_bytes = ctl_differences(admin, [["describe-rules", "--listener-arn", listener["ListenerArn"]]])
    made_by_ctl = subprocess.run(
        [os.environ["LOCALNLB_BINARY"], "ctl", "create-rule", "--endpoint-url", f"http://127.0.0.1:{admin}",
         "--listener-arn", listener["ListenerArn"], "--priority", "40", "--conditions",
         '[{"Field": "http-header", "HttpHeaderConfig": {"HttpHeaderName": "X-Env", "Values": ["staging"]}}]',
         "--actions", '[{"Type": "fixed-response", "FixedResponseConfig": {"StatusCode": "200", "MessageBody": "staging"}}]',
         "--query", "Rules[0].RuleArn", "--output", "text"], capture_output=True, text=True)
    by_ctl = made_by_ctl.stdout.strip()
    after = fetch("/maintenance/now")
    missing = error_code(lambda: elb.delete_rule(RuleArn=fixed["RuleArn"] + "0"))
    used = error_code(lambda: elb.delete_target_group(TargetGroupArn=group["TargetGroupArn"]))
    for rule in [fixed, moved, {"RuleArn": by_ctl}]:
        elb.delete_rule(RuleArn=rule["RuleArn"])
    left = [r["Priority"] for r in elb.describe_rules(ListenerArn=listener["ListenerArn"])["Rules"]]
    check("listener rules: create_rule's fixed-response (503, its body) and redirect (Location https://new.example.com:443"
          "/a/b?x=1) answer before the default forward; PriorityInUse; a TCP group is IncompatibleProtocols; "
          "set_rule_priorities reorders; modify_rule changes the condition; describe_rules ends with the default rule; "
          "RuleNotFound; delete_rule; ctl describe-rules prints the AWS CLI's bytes and ctl create-rule takes JSON",
          served[0].startswith("HTTP/1.1 503") and served[0].endswith("down for maintenance")
          and "Location: https://new.example.com:443/a/b?x=1" in served[1] and served[1].startswith("HTTP/1.1 301")
          and '"target":' in served[2] and in_use == "PriorityInUse" and to_tcp == "IncompatibleProtocols"
          and [(r["Priority"], r["IsDefault"]) for r in described] == [("5", False), ("30", False), ("default", True)]
          and modified["Rules"][0]["Conditions"][0]["HttpRequestMethodConfig"]["Values"] == ["DELETE"]
          and '"target":' in after and missing == "RuleNotFound" and used == "ResourceInUse" and left == ["default"]
          and not rule_bytes and ":listener-rule/app/app/" in by_ctl,
          f"{rule_bytes[:1]} {made_by_ctl.stderr[-300:]} {by_ctl} {served} {in_use} {to_tcp} {described} {after[:80]} "
          f"{missing} {used} {left}")
    # Default actions beyond one forward: a redirect (no group), then a weighted forward by ModifyListener.
    green = elb.create_target_group(Name="app-green", Protocol="HTTP", Port=target_port, VpcId="vpc-1",
                                    TargetType="ip")["TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=green, Targets=[{"Id": "127.0.0.1"}])
    redirecting = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="HTTP", Port=free_port(),
                                      DefaultActions=[{"Type": "redirect", "RedirectConfig": {
                                          "Protocol": "HTTPS", "Port": "443", "StatusCode": "HTTP_301"}}])["Listeners"][0]
    moved_away = fetch_on(node, redirecting["Port"], "/old")
    weighted = elb.modify_listener(ListenerArn=redirecting["ListenerArn"], DefaultActions=[{"Type": "forward", "ForwardConfig": {
        "TargetGroups": [{"TargetGroupArn": group["TargetGroupArn"], "Weight": 0}, {"TargetGroupArn": green, "Weight": 5}]}}])[
        "Listeners"][0]
    to_green = fetch_on(node, redirecting["Port"], "/new")
    green_in_use = error_code(lambda: elb.delete_target_group(TargetGroupArn=green))
    # Target group stickiness on the weighted forward: AWSALBTG on the answer; AWS's refusals.
    both = [{"TargetGroupArn": group["TargetGroupArn"], "Weight": 1}, {"TargetGroupArn": green, "Weight": 1}]
    sticky = elb.modify_listener(ListenerArn=redirecting["ListenerArn"], DefaultActions=[{"Type": "forward", "ForwardConfig": {
        "TargetGroups": both, "TargetGroupStickinessConfig": {"Enabled": True, "DurationSeconds": 600}}}])["Listeners"][0]
    stuck = fetch_on(node, redirecting["Port"], "/sticky")
    sticky_bytes = ctl_differences(admin, [["describe-listeners", "--listener-arns", redirecting["ListenerArn"]]])
    no_duration = error_code(lambda: elb.modify_listener(ListenerArn=redirecting["ListenerArn"], DefaultActions=[
        {"Type": "forward", "ForwardConfig": {"TargetGroups": both, "TargetGroupStickinessConfig": {"Enabled": True}}}]))
    elb.modify_target_group_attributes(TargetGroupArn=green, Attributes=[{"Key": "stickiness.enabled", "Value": "true"}])
    sticky_group = error_code(lambda: elb.modify_listener(ListenerArn=redirecting["ListenerArn"], DefaultActions=[
        {"Type": "forward", "ForwardConfig": {"TargetGroups": both}}]))
    check("target group stickiness: modify_listener with TargetGroupStickinessConfig (600 s) is described back and "
          "the answer sets AWSALBTG and AWSALBTGCORS; ctl prints the AWS CLI's bytes; Enabled without DurationSeconds "
          "is ValidationError; a forward to two groups, one sticky, without it is InvalidConfigurationRequest",
          sticky["DefaultActions"][0]["ForwardConfig"]["TargetGroupStickinessConfig"]
          == {"Enabled": True, "DurationSeconds": 600}
          and "\r\nSet-Cookie: AWSALBTG=" in stuck and "\r\nSet-Cookie: AWSALBTGCORS=" in stuck and not sticky_bytes
          and no_duration == "ValidationError" and sticky_group == "InvalidConfigurationRequest",
          f"{sticky['DefaultActions']} {stuck[:400]} {sticky_bytes[:1]} {no_duration} {sticky_group}")
    # Slow start: AWS's range, and round robin only.
    slow = {a["Key"]: a["Value"] for a in elb.modify_target_group_attributes(TargetGroupArn=green, Attributes=[
        {"Key": "slow_start.duration_seconds", "Value": "30"}])["Attributes"]}
    too_short = error_code(lambda: elb.modify_target_group_attributes(TargetGroupArn=green, Attributes=[
        {"Key": "slow_start.duration_seconds", "Value": "10"}]))
    with_lor = error_code(lambda: elb.modify_target_group_attributes(TargetGroupArn=green, Attributes=[
        {"Key": "load_balancing.algorithm.type", "Value": "least_outstanding_requests"}]))
    check("slow start: modify_target_group_attributes sets slow_start.duration_seconds 30; 10 is ValidationError, "
          "and so is least_outstanding_requests while slow start is on",
          slow.get("slow_start.duration_seconds") == "30" and too_short == "ValidationError" and with_lor == "ValidationError",
          f"{slow.get('slow_start.duration_seconds')} {too_short} {with_lor}")
    elb.delete_listener(ListenerArn=redirecting["ListenerArn"])
    elb.delete_target_group(TargetGroupArn=green)
    check("default actions: create_listener with a redirect (no target group) answers 301 to https://…:443; "
          "modify_listener to a weighted forward (0 and 5) describes both groups and serves from the weighted one; "
          "that group is then in use",
          redirecting["DefaultActions"][0]["Type"] == "redirect" and moved_away.startswith("HTTP/1.1 301")
          and "Location: https://app:443/old" in moved_away
          and [g["Weight"] for g in weighted["DefaultActions"][0]["ForwardConfig"]["TargetGroups"]] == [0, 5]
          and '"target":' in to_green and green_in_use == "ResourceInUse",
          f"{redirecting['DefaultActions']} {moved_away[:200]} {weighted['DefaultActions']} {to_green[:100]} {green_in_use}")
    elb.delete_listener(ListenerArn=listener["ListenerArn"])
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    elb.delete_target_group(TargetGroupArn=group["TargetGroupArn"])
    elb.delete_target_group(TargetGroupArn=tcp_group["TargetGroupArn"])
    check("application load balancer: create_load_balancer without Type is application (an app ARN, ALB's DNS "
          "name and hosted zone); an HTTP group has ALB's health check (HTTP /, 30 s, 5 s, 5/2, 200); a request "
          "through its HTTP listener reaches the target",
          lb["Type"] == "application" and ":loadbalancer/app/app/" in lb["LoadBalancerArn"]
          and lb["DNSName"].endswith(".us-east-1.elb.amazonaws.com") and lb["CanonicalHostedZoneId"] == "Z35SXDOTRQ7X7K"
          and (group["HealthCheckProtocol"], group["HealthCheckPath"], group["HealthCheckIntervalSeconds"],
               group["HealthCheckTimeoutSeconds"], group["HealthyThresholdCount"], group["UnhealthyThresholdCount"],
               group["Matcher"]) == ("HTTP", "/", 30, 5, 5, 2, {"HttpCode": "200"})
          and listener["Protocol"] == "HTTP" and b" 200 " in answer.split(b"\r\n", 1)[0]
          and b'"target":' in answer, f"{lb} {group} {answer[:300]}")
    check("application load balancer: a TCP listener is ValidationError, an HTTP listener to a TCP group "
          "IncompatibleProtocols, an unknown xff mode ValidationError; idle_timeout.timeout_seconds modifies; "
          "ctl prints the AWS CLI's bytes for it",
          wrong_protocol == "ValidationError" and wrong_group == "IncompatibleProtocols" and bad_mode == "ValidationError"
          and changed.get("idle_timeout.timeout_seconds") == "120" and not differing,
          f"{wrong_protocol} {wrong_group} {bad_mode} {changed} {differing[:1]}")


def weighted_target_groups(admin, targets):
    """A network load balancer's weighted target groups (November 2025): new flows split by weight, each
    flow staying with its group when the weights move; per-group metrics show the split; AWS's refusals."""
    elb = boto3.client("elbv2", endpoint_url=f"http://127.0.0.1:{admin}", region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    lb = elb.create_load_balancer(Name="weighted", Type="network", Subnets=["subnet-weighted"])["LoadBalancers"][0]
    node = lb["AvailabilityZones"][0]["LoadBalancerAddresses"][0]["IpAddress"]
    blue, green = [elb.create_target_group(Name=name, Protocol="TCP", Port=port, TargetType="ip")["TargetGroups"][0][
        "TargetGroupArn"] for name, port in [("blue", targets[0]), ("green", targets[1])]]
    for arn, port in [(blue, targets[0]), (green, targets[1])]:
        elb.register_targets(TargetGroupArn=arn, Targets=[{"Id": "127.0.0.1", "Port": port}])
    port = free_port()
    def forward(weights, **extra):
        return [{"Type": "forward", "ForwardConfig": dict({"TargetGroups": [
            {"TargetGroupArn": blue, "Weight": weights[0]}, {"TargetGroupArn": green, "Weight": weights[1]}]}, **extra)}]
    listener = elb.create_listener(LoadBalancerArn=lb["LoadBalancerArn"], Protocol="TCP", Port=port,
                                   DefaultActions=forward((3, 1)))["Listeners"][0]
    seen = [get_through(port, node).get("target") for _ in range(40)]
    def new_flows():
        with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5) as answer:
            text = answer.read().decode()
        counts = {}
        for line in text.splitlines():
            for name in ("blue", "green"):
                if line.startswith(f'localnlb_new_flow_count_total{{load_balancer="weighted",target_group="{name}"}}'):
                    counts[name] = int(float(line.split()[-1]))
        return counts
    split = new_flows()
    # Blue/green: every new flow to blue, a flow held open there, then all weight to green.
    elb.modify_listener(ListenerArn=listener["ListenerArn"], DefaultActions=forward((1, 0)))
    held = socket.create_connection((node, port), 5)
    elb.modify_listener(ListenerArn=listener["ListenerArn"], DefaultActions=forward((0, 1)))
    after = [get_through(port, node).get("target") for _ in range(6)]
    held.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    while chunk := held.recv(65536):
        data += chunk
    held.close()
    held_target = json.loads(data.split(b"\r\n\r\n", 1)[1]).get("target")
    described = elb.describe_listeners(ListenerArns=[listener["ListenerArn"]])["Listeners"][0]["DefaultActions"][0]
    bytes_differ = ctl_differences(admin, [["describe-listeners", "--listener-arns", listener["ListenerArn"]]])
    too_heavy = error_code(lambda: elb.modify_listener(ListenerArn=listener["ListenerArn"], DefaultActions=forward((1000, 1))))
    all_zero = error_code(lambda: elb.modify_listener(ListenerArn=listener["ListenerArn"], DefaultActions=forward((0, 0))))
    # Target group stickiness: one client address stays with the group of its first flow, weights 1:1.
    sticky_described = elb.modify_listener(ListenerArn=listener["ListenerArn"], DefaultActions=forward(
        (1, 1), TargetGroupStickinessConfig={"Enabled": True, "DurationSeconds": 60}))["Listeners"][0][
        "DefaultActions"][0]["ForwardConfig"]["TargetGroupStickinessConfig"]
    stuck = [get_through(port, node).get("target") for _ in range(12)]
    no_duration = error_code(lambda: elb.modify_listener(ListenerArn=listener["ListenerArn"], DefaultActions=forward(
        (1, 1), TargetGroupStickinessConfig={"Enabled": True})))
    elb.modify_listener(ListenerArn=listener["ListenerArn"], DefaultActions=forward((0, 1)))
    udp = elb.create_target_group(Name="weighted-udp", Protocol="UDP", Port=targets[1], TargetType="ip")[
        "TargetGroups"][0]["TargetGroupArn"]
    to_udp = error_code(lambda: elb.modify_listener(ListenerArn=listener["ListenerArn"], DefaultActions=[
        {"Type": "forward", "ForwardConfig": {"TargetGroups": [{"TargetGroupArn": blue, "Weight": 1},
                                                                {"TargetGroupArn": udp, "Weight": 1}]}}]))
    still = [get_through(port, node).get("target") for _ in range(3)]
    check("weighted target groups on an NLB: create_listener with ForwardConfig 3:1 splits 40 new flows "
          f"({seen.count('a')}:{seen.count('b')}), per-group new_flow_count_total shows it ({split}); weights moved to "
          "0:1 send every new flow to green while a flow opened on blue stays there; describe_listeners shows the "
          "weights, ctl prints the AWS CLI's bytes; with TargetGroupStickinessConfig (60 s) 12 flows of one client "
          "stay with one group at 1:1; weight 1000, all-zero weights and stickiness without DurationSeconds are "
          "ValidationError, a UDP group IncompatibleProtocols, and the listener still serves",
          20 <= seen.count("a") <= 38 and seen.count("a") + seen.count("b") == 40
          and split == {"blue": seen.count("a"), "green": seen.count("b")} and after == ["b"] * 6 and held_target == "a"
          and [g["Weight"] for g in described["ForwardConfig"]["TargetGroups"]] == [0, 1] and not bytes_differ
          and too_heavy == "ValidationError" and all_zero == "ValidationError"
          and sticky_described == {"Enabled": True, "DurationSeconds": 60} and len(set(stuck)) == 1
          and no_duration == "ValidationError" and to_udp == "IncompatibleProtocols" and still == ["b"] * 3,
          f"{seen} {split} {after} {held_target} {described} {bytes_differ[:1]} {too_heavy} {all_zero} "
          f"{sticky_described} {stuck} {no_duration} {to_udp} {still}")
    elb.delete_listener(ListenerArn=listener["ListenerArn"])
    elb.delete_load_balancer(LoadBalancerArn=lb["LoadBalancerArn"])
    for arn in (blue, green, udp):
        elb.delete_target_group(TargetGroupArn=arn)


def mutual_tls(admin, lb_arn, target_port, scratch):
    """Mutual TLS in verify mode: a trust store from a CA bundle (openssl made), a listener that admits
    only clients whose certificate chains to it."""
    import ssl
    elb = boto3.client("elbv2", endpoint_url=f"http://127.0.0.1:{admin}", region_name="us-east-1",
                       aws_access_key_id="test", aws_secret_access_key="test")
    def run(*argv):
        subprocess.run(list(argv), check=True, capture_output=True)
    d = lambda name: os.path.join(scratch, name)
    for ca in ["clients-ca", "other-ca"]:
        run("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
            "-keyout", d(f"{ca}-key.pem"), "-out", d(f"{ca}.pem"), "-days", "5", "-subj", f"/CN={ca}")
        run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            d(f"{ca}-client-key.pem"), "-out", d(f"{ca}-client.csr"), "-subj", "/CN=client.test")
        run("openssl", "x509", "-req", "-in", d(f"{ca}-client.csr"), "-CA", d(f"{ca}.pem"), "-CAkey",
            d(f"{ca}-key.pem"), "-CAcreateserial", "-out", d(f"{ca}-client.pem"), "-days", "5")
    store = elb.create_trust_store(Name="clients", CaCertificatesBundleS3Bucket="local",
                                   CaCertificatesBundleS3Key=d("clients-ca.pem"))["TrustStores"][0]
    missing = error_code(lambda: elb.create_trust_store(Name="none", CaCertificatesBundleS3Bucket="local",
                                                        CaCertificatesBundleS3Key=d("no-such.pem")))
    group = elb.create_target_group(Name="mtls", Protocol="TCP", Port=target_port, TargetType="ip")[
        "TargetGroups"][0]["TargetGroupArn"]
    elb.register_targets(TargetGroupArn=group, Targets=[{"Id": "127.0.0.1"}])
    port = free_port()
    listener = elb.create_listener(
        LoadBalancerArn=lb_arn, Protocol="TLS", Port=port,
        Certificates=[{"CertificateArn": "arn:aws:acm:us-east-1:000000000000:certificate/mtls-server"}],
        MutualAuthentication={"Mode": "verify", "TrustStoreArn": store["TrustStoreArn"]},
        DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])["Listeners"][0]

    def get(cert=None):
        context = ssl.create_default_context(cafile=os.path.join(scratch, "ca", "ca.pem"))
        if cert:
            context.load_cert_chain(d(f"{cert}-client.pem"), d(f"{cert}-client-key.pem"))
        try:
            with socket.create_connection(("127.0.0.1", port), 5) as raw:
                with context.wrap_socket(raw, server_hostname="localhost") as tls:
                    tls.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    data = b""
                    while chunk := tls.recv(65536):
                        data += chunk
                    return b'"target":"a"' in data
        except (OSError, ssl.SSLError):
            return False
    answers = [get("clients-ca"), get(None), get("other-ca")]

    def filtered(match, value):
        elb.modify_listener(ListenerArn=listener["ListenerArn"], MutualAuthentication={
            "Mode": "verify", "TrustStoreArn": store["TrustStoreArn"],
            "ClientCertificateIdentityFilters": [
                {"Action": "accept", "Field": "subject-cn", "MatchType": match, "Value": value}]})
        return get("clients-ca")
    by_filter = [filtered("exact", "other.test"), filtered("prefix", "CLIENT."), filtered("exact", "client.test")]
    shown = elb.describe_listeners(ListenerArns=[listener["ListenerArn"]])["Listeners"][0]["MutualAuthentication"]
    # Revocation: a second client of the same CA, revoked in a CRL that openssl's own CA tool writes.
    run("openssl", "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
        d("revoked-client-key.pem"), "-out", d("revoked.csr"), "-subj", "/CN=client.test")
    run("openssl", "x509", "-req", "-in", d("revoked.csr"), "-CA", d("clients-ca.pem"), "-CAkey",
        d("clients-ca-key.pem"), "-CAcreateserial", "-out", d("revoked-client.pem"), "-days", "5")
    with open(d("crl.cnf"), "w") as f:
        f.write(f"[ca]\ndefault_ca=c\n[c]\ndatabase={d('index.txt')}\ncrlnumber={d('crlnumber')}\n"
                "default_md=sha256\ndefault_crl_days=5\n")
    open(d("index.txt"), "w").close()
    with open(d("crlnumber"), "w") as f:
        f.write("01\n")
    ca_args = ["-config", d("crl.cnf"), "-keyfile", d("clients-ca-key.pem"), "-cert", d("clients-ca.pem")]
    run("openssl", "ca", *ca_args, "-revoke", d("revoked-client.pem"))
    run("openssl", "ca", *ca_args, "-gencrl", "-out", d("clients.crl"))
    before_revocation = get("revoked")
    added = elb.add_trust_store_revocations(TrustStoreArn=store["TrustStoreArn"], RevocationContents=[
        {"S3Bucket": "local", "S3Key": d("clients.crl"), "RevocationType": "CRL"}])["TrustStoreRevocations"]
    after_revocation = [get("revoked"), get("clients-ca")]
    listed = elb.describe_trust_store_revocations(TrustStoreArn=store["TrustStoreArn"])["TrustStoreRevocations"]
    ctl_differing = ctl_differences(admin, [
        ["describe-trust-stores", "--names", "clients"],
        ["describe-trust-store-revocations", "--trust-store-arn", store["TrustStoreArn"]]])
    total = elb.describe_trust_stores(Names=["clients"])["TrustStores"][0]["TotalRevokedEntries"]
    not_crl = error_code(lambda: elb.add_trust_store_revocations(TrustStoreArn=store["TrustStoreArn"], RevocationContents=[
        {"S3Bucket": "local", "S3Key": d("clients-ca.pem"), "RevocationType": "CRL"}]))
    unknown_id = error_code(lambda: elb.remove_trust_store_revocations(TrustStoreArn=store["TrustStoreArn"],
                                                                       RevocationIds=[99]))
    elb.remove_trust_store_revocations(TrustStoreArn=store["TrustStoreArn"], RevocationIds=[added[0]["RevocationId"]])
    after_removal = get("revoked")
    check("trust store revocations: add_trust_store_revocations with a CRL (openssl ca -gencrl) refuses the client "
          "it revokes and still serves the CA's others; NumberOfRevokedEntries and TotalRevokedEntries count it; "
          "a file that is no CRL is InvalidRevocationContent, an unknown id RevocationIdNotFound; removed, the "
          "client is served again; localnlb ctl prints the AWS CLI's bytes for both describes",
          before_revocation and after_revocation == [False, True] and added[0]["NumberOfRevokedEntries"] == 1
          and [r["RevocationId"] for r in listed] == [added[0]["RevocationId"]] and total == 1
          and not_crl == "InvalidRevocationContent" and unknown_id == "RevocationIdNotFound" and after_removal
          and not ctl_differing,
          f"{ctl_differing[:1]} {before_revocation} {added} {after_revocation} {listed} {total} {not_crl} {unknown_id} {after_removal}")
    in_use = error_code(lambda: elb.delete_trust_store(TrustStoreArn=store["TrustStoreArn"]))
    described = elb.describe_trust_stores(Names=["clients"])["TrustStores"][0]
    elb.delete_listener(ListenerArn=listener["ListenerArn"])
    elb.delete_trust_store(TrustStoreArn=store["TrustStoreArn"])
    elb.delete_target_group(TargetGroupArn=group)
    check("mutual TLS (verify): create_trust_store from a CA bundle (ACTIVE, 1 CA); a client certificate that "
          "chains to it is served, none or another CA's is refused in the handshake; TrustStoreInUse while a "
          "listener verifies with it; a bundle that is not there is InvalidCaCertificatesBundle",
          store["Status"] == "ACTIVE" and described["NumberOfCaCertificates"] == 1
          and answers == [True, False, False] and in_use == "TrustStoreInUse"
          and listener["MutualAuthentication"]["Mode"] == "verify"
          and missing == "InvalidCaCertificatesBundle", f"{store} {answers} {in_use} {listener} {missing}")
    check("ClientCertificateIdentityFilters (modify_listener): a verified client whose subject CN matches no filter is "
          "refused; prefix matching is case-insensitive; describe_listeners shows the filters",
          by_filter == [False, True, True] and shown["ClientCertificateIdentityFilters"] == [
              {"Action": "accept", "Field": "subject-cn", "MatchType": "exact", "Value": "client.test"}],
          f"{by_filter} {shown}")


def after_load_balancer_changes(client, lb_arn, port):
    """The actions that change a load balancer after it is made, and the account's quotas and policies."""
    limits = {limit["Name"]: limit["Max"] for limit in client.describe_account_limits()["Limits"]}
    paged = client.describe_account_limits(PageSize=2)
    check("describe_account_limits: AWS's names and NLB defaults, paged",
          limits.get("network-load-balancers") == "50" and limits.get("listeners-per-network-load-balancer") == "50"
          and limits.get("targets-per-network-load-balancer") == "3000" and len(limits) == 18
          and len(paged["Limits"]) == 2 and "NextMarker" in paged, f"{limits}")
    policy = client.describe_ssl_policies(Names=["ELBSecurityPolicy-2016-08"])["SslPolicies"][0]
    tls13 = client.describe_ssl_policies(Names=["ELBSecurityPolicy-TLS13-1-2-2021-06"])["SslPolicies"][0]
    check("describe_ssl_policies: AWS's protocols and ciphers in priority order; an unknown name is "
          "SSLPolicyNotFound; LoadBalancerType filters",
          policy["SslProtocols"] == ["TLSv1", "TLSv1.1", "TLSv1.2"]
          and policy["Ciphers"][0] == {"Name": "ECDHE-ECDSA-AES128-GCM-SHA256", "Priority": 1}
          and len(policy["Ciphers"]) == 18 and tls13["Ciphers"][0]["Name"] == "TLS_AES_128_GCM_SHA256"
          and "network" in policy["SupportedLoadBalancerTypes"]
          and error_code(lambda: client.describe_ssl_policies(Names=["ELBSecurityPolicy-Nope"])) == "SSLPolicyNotFound"
          and client.describe_ssl_policies(LoadBalancerType="gateway")["SslPolicies"] == [], f"{policy} {tls13}")

    # Security groups: only a load balancer made with them can have them set.
    refused = error_code(lambda: client.set_security_groups(LoadBalancerArn=lb_arn, SecurityGroups=["sg-1"]))
    guarded = client.create_load_balancer(Name="guarded", Type="network", Subnets=["subnet-9"],
                                          SecurityGroups=["sg-0a"])["LoadBalancers"][0]["LoadBalancerArn"]
    answer = client.set_security_groups(LoadBalancerArn=guarded, SecurityGroups=["sg-0b", "sg-0c"],
                                        EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic="off")
    described = client.describe_load_balancers(LoadBalancerArns=[guarded])["LoadBalancers"][0]
    bad_group = error_code(lambda: client.set_security_groups(LoadBalancerArn=guarded, SecurityGroups=["web"]))
    client.delete_load_balancer(LoadBalancerArn=guarded)
    check("set_security_groups: InvalidConfigurationRequest for a load balancer made without them; replaced and "
          "described with EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic; not sg-…: InvalidSecurityGroup",
          refused == "InvalidConfigurationRequest" and answer["SecurityGroupIds"] == ["sg-0b", "sg-0c"]
          and described["SecurityGroups"] == ["sg-0b", "sg-0c"]
          and described["EnforceSecurityGroupInboundRulesOnPrivateLinkTraffic"] == "off"
          and bad_group == "InvalidSecurityGroup", f"{refused} {answer} {bad_group}")

    check("set_ip_address_type: dualstack needs IPv6 on every node (InvalidConfigurationRequest), an unknown type "
          "is ValidationError, ipv4 is kept",
          error_code(lambda: client.set_ip_address_type(LoadBalancerArn=lb_arn, IpAddressType="dualstack"))
          == "InvalidConfigurationRequest"
          and error_code(lambda: client.set_ip_address_type(LoadBalancerArn=lb_arn, IpAddressType="ipv5"))
          == "ValidationError"
          and client.set_ip_address_type(LoadBalancerArn=lb_arn, IpAddressType="ipv4")["IpAddressType"] == "ipv4")

    # Subnets change live: a new subnet is a new node the listener serves on; one left out closes.
    zones = client.set_subnets(LoadBalancerArn=lb_arn, Subnets=["subnet-1", "subnet-2", "subnet-3"])[
        "AvailabilityZones"]
    nodes = [z["LoadBalancerAddresses"][0]["IpAddress"] for z in zones]
    through_new = get_through(port, nodes[2]).get("target") if len(nodes) == 3 else None
    client.set_subnets(LoadBalancerArn=lb_arn, Subnets=["subnet-1", "subnet-2"])
    gone = False
    try:
        socket.create_connection((nodes[2], port), 2).close()
    except (ConnectionRefusedError, IndexError):
        gone = True
    check("set_subnets: a third subnet is a node on an address of its own that serves the listener; the first "
          "two keep theirs; taken away again, its address closes; no subnet is ValidationError",
          nodes[:2] == ["127.0.0.1", "127.0.0.2"] and len(nodes) == 3 and nodes[2] not in nodes[:2]
          and through_new == "b" and gone and get_through(port).get("target") == "b"
          and error_code(lambda: client.set_subnets(LoadBalancerArn=lb_arn, Subnets=[])) == "ValidationError",
          f"{nodes} {through_new} {gone}")

    # Capacity reservations: pending, then provisioned, spread over the zones (one here: no Subnets give the
    # nodes zones of their own); AWS's limits on changes.
    pending = client.modify_capacity_reservation(LoadBalancerArn=lb_arn,
                                                 MinimumLoadBalancerCapacity={"CapacityUnits": 3000})
    busy = error_code(lambda: client.modify_capacity_reservation(
        LoadBalancerArn=lb_arn, MinimumLoadBalancerCapacity={"CapacityUnits": 4000}))
    deadline = time.time() + 5
    while True:
        described = client.describe_capacity_reservation(LoadBalancerArn=lb_arn)
        states = [z["State"]["Code"] for z in described["CapacityReservationState"]]
        if states == ["provisioned"] or time.time() > deadline:
            break
        time.sleep(0.1)
    decreases = []
    for units in [2000, 1000, 500]:
        while client.describe_capacity_reservation(LoadBalancerArn=lb_arn)["CapacityReservationState"][0]["State"][
                "Code"] == "pending":
            time.sleep(0.1)
        decreases.append(error_code(lambda: client.modify_capacity_reservation(
            LoadBalancerArn=lb_arn, MinimumLoadBalancerCapacity={"CapacityUnits": units})))
    check("modify/describe_capacity_reservation: pending then provisioned in each zone, units spread evenly; "
          "CapacityReservationPending while pending; a third decrease in a day is CapacityDecreaseRequestLimitExceeded",
          [z["State"]["Code"] for z in pending["CapacityReservationState"]] == ["pending"]
          and busy == "CapacityReservationPending" and states == ["provisioned"]
          and [z["EffectiveCapacityUnits"] for z in described["CapacityReservationState"]] == [3000.0]
          and described["MinimumLoadBalancerCapacity"] == {"CapacityUnits": 3000}
          and decreases == [None, None, "CapacityDecreaseRequestLimitExceeded"]
          and error_code(lambda: client.modify_capacity_reservation(LoadBalancerArn=lb_arn)) == "ValidationError",
          f"{pending} {busy} {described} {decreases}")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--localnlb", required=True)
    args = parser.parse_args()
    binary = os.path.abspath(args.localnlb)
    os.environ["LOCALNLB_BINARY"] = binary
    scratch = tempfile.mkdtemp(prefix="localnlb-aws-")
    # The certificate authority (and, with --persist, the certificates) in the scratch folder, not ~.
    os.environ["LOCALNLB_CA_DIR"] = os.path.join(scratch, "ca")
    procs = []
    try:
        targets = []
        for name in ["a", "b"]:
            port = free_port()
            procs.append(subprocess.Popen([binary, "target", "--listen", f"127.0.0.1:{port}", "--name", name, "--udp"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            wait_port(port)
            targets.append(port)
        listener, admin = free_port(), free_port()
        config = os.path.join(scratch, "config.json")
        with open(config, "w") as f:
            json.dump({
                "Admin": {"Address": f"127.0.0.1:{admin}", "Region": "eu-west-1", "AccountId": "123456789012"},
                "LoadBalancer": {"Name": "aws-check", "SubnetMappings": [
                    {"SubnetId": "subnet-1", "PrivateIPv4Address": "127.0.0.1"}]},
                "Listeners": [{"Port": listener, "Protocol": "TCP",
                               "DefaultActions": [{"Type": "forward", "TargetGroupName": "web"}]}],
                "TargetGroups": [{"Name": "web", "Port": targets[0], "Protocol": "TCP", "TargetType": "ip",
                                  "HealthCheckIntervalSeconds": 5, "HealthyThresholdCount": 2,
                                  "Targets": [{"Id": "127.0.0.1"}]}],
            }, f)
        log = open(os.path.join(scratch, "localnlb.log"), "w")
        procs.append(subprocess.Popen([binary, "serve", "--config", config, "--time-scale", "0.01",
                                       "--flow-log", "off"], stderr=log))
        wait_port(listener, process=procs[-1])
        elb = boto3.client("elbv2", endpoint_url=f"http://127.0.0.1:{admin}", region_name="eu-west-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
        fast = {"Delay": 1, "MaxAttempts": 30}

        lbs = elb.describe_load_balancers()["LoadBalancers"]
        lb = lbs[0] if len(lbs) == 1 else {}
        lb_arn = lb.get("LoadBalancerArn", "")
        check("describe_load_balancers: one network load balancer, active, with AWS's ARN and DNS name",
              re.fullmatch(r"arn:aws:elasticloadbalancing:eu-west-1:123456789012:loadbalancer/net/aws-check/[0-9a-f]{16}",
                           lb_arn) is not None and lb.get("Type") == "network" and lb.get("State", {}).get("Code") == "active"
              and lb.get("DNSName") == f"aws-check-{lb_arn[-16:]}.elb.eu-west-1.amazonaws.com"
              and lb.get("AvailabilityZones", [{}])[0].get("LoadBalancerAddresses", [{}])[0].get("IpAddress") == "127.0.0.1",
              str(lb))
        groups = elb.describe_target_groups(Names=["web"])["TargetGroups"]
        tg_arn = groups[0]["TargetGroupArn"]
        check("describe_target_groups by name: the ARN, the load balancer, the health-check settings",
              re.fullmatch(r"arn:aws:elasticloadbalancing:eu-west-1:123456789012:targetgroup/web/[0-9a-f]{16}", tg_arn)
              is not None and groups[0]["LoadBalancerArns"] == [lb_arn] and groups[0]["HealthCheckIntervalSeconds"] == 5
              and groups[0]["TargetType"] == "ip", str(groups))
        check("describe_target_groups by load balancer finds the same group",
              [g["TargetGroupArn"] for g in elb.describe_target_groups(LoadBalancerArn=lb_arn)["TargetGroups"]] == [tg_arn])
        listeners = elb.describe_listeners(LoadBalancerArn=lb_arn)["Listeners"]
        check("describe_listeners: the port and the forward to the group",
              len(listeners) == 1 and listeners[0]["Port"] == listener
              and listeners[0]["DefaultActions"][0]["TargetGroupArn"] == tg_arn, str(listeners))

        b = {"Id": "127.0.0.1", "Port": targets[1]}
        elb.register_targets(TargetGroupArn=tg_arn, Targets=[b])
        elb.get_waiter("target_in_service").wait(TargetGroupArn=tg_arn, Targets=[b], WaiterConfig=fast)
        health = elb.describe_target_health(TargetGroupArn=tg_arn)["TargetHealthDescriptions"]
        check("register_targets, then boto3's target_in_service waiter sees the new target healthy",
              sorted(d["Target"]["Port"] for d in health if d["TargetHealth"]["State"] == "healthy") == sorted(targets),
              str(health))

        before = get_through(listener)
        elb.modify_target_group_attributes(
            TargetGroupArn=tg_arn, Attributes=[{"Key": "proxy_protocol_v2.enabled", "Value": "true"}])
        after = get_through(listener)
        check("modify_target_group_attributes turns PROXY v2 on for the next flow",
              before.get("proxy") is None and (after.get("proxy") or {}).get("version") == 2, f"{before} / {after}")
        attributes = {a["Key"]: a["Value"] for a in
                      elb.describe_target_group_attributes(TargetGroupArn=tg_arn)["Attributes"]}
        check("describe_target_group_attributes shows the change", attributes.get("proxy_protocol_v2.enabled") == "true")

        elb.deregister_targets(TargetGroupArn=tg_arn, Targets=[b])
        draining = elb.describe_target_health(TargetGroupArn=tg_arn, Targets=[b])["TargetHealthDescriptions"]
        elb.get_waiter("target_deregistered").wait(TargetGroupArn=tg_arn, Targets=[b], WaiterConfig=fast)
        gone = elb.describe_target_health(TargetGroupArn=tg_arn, Targets=[b])["TargetHealthDescriptions"]
        check("deregister_targets drains, then boto3's target_deregistered waiter sees unused / Target.NotRegistered",
              draining[0]["TargetHealth"]["State"] == "draining"
              and gone[0]["TargetHealth"] == {"State": "unused", "Reason": "Target.NotRegistered",
                                              "Description": "Target is not registered to the target group"},
              f"{draining} / {gone}")

        # Target groups and listeners made and removed at run time: real ports open and close.
        api_args = dict(Name="api", Protocol="TCP", Port=targets[0], TargetType="ip", VpcId=lb.get("VpcId", ""),
                        HealthCheckIntervalSeconds=5, HealthyThresholdCount=2)
        api_arn = elb.create_target_group(**api_args)["TargetGroups"][0]["TargetGroupArn"]
        again = elb.create_target_group(**api_args)["TargetGroups"][0]["TargetGroupArn"]
        check("create_target_group, and again with the same settings returns the same group",
              again == api_arn and api_arn.split(":")[-1].startswith("targetgroup/api/"), f"{api_arn} / {again}")
        check("create_target_group with the same name and other settings is DuplicateTargetGroupName",
              error_code(lambda: elb.create_target_group(**dict(api_args, Port=targets[1])))
              == "DuplicateTargetGroupName")
        elb.register_targets(TargetGroupArn=api_arn, Targets=[{"Id": "127.0.0.1", "Port": targets[1]}])
        new_port = free_port()
        listener_args = dict(LoadBalancerArn=lb_arn, Protocol="TCP", Port=new_port,
                             DefaultActions=[{"Type": "forward", "TargetGroupArn": api_arn}])
        new_listener = elb.create_listener(**listener_args)["Listeners"][0]["ListenerArn"]
        report = get_through(new_port)
        check("create_listener opens the port at once and forwards to the group",
              report.get("target") == "b" and elb.create_listener(**listener_args)["Listeners"][0]["ListenerArn"]
              == new_listener, str(report))
        check("create_listener on a used port with another action is DuplicateListener",
              error_code(lambda: elb.create_listener(**dict(listener_args, DefaultActions=[
                  {"Type": "forward", "TargetGroupArn": tg_arn}]))) == "DuplicateListener")
        taken = socket.socket()
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        check("create_listener on a port another program holds is InvalidConfigurationRequest",
              error_code(lambda: elb.create_listener(**dict(listener_args, Port=taken.getsockname()[1])))
              == "InvalidConfigurationRequest")
        taken.close()
        check("delete_target_group while a listener forwards to it is ResourceInUse",
              error_code(lambda: elb.delete_target_group(TargetGroupArn=api_arn)) == "ResourceInUse")
        held = socket.create_connection(("127.0.0.1", new_port), 5)
        held.sendall(b"hello")
        held.settimeout(5)
        seen = b""
        while not seen.endswith(b"\nhello"):  # the target's report line, then the echo
            chunk = held.recv(4096)
            if not chunk:
                break
            seen += chunk
        elb.delete_listener(ListenerArn=new_listener)
        ended, reset = False, False
        try:
            while held.recv(4096):  # nothing more should come but the reset
                pass
            ended = True
        except ConnectionResetError:
            ended, reset = True, True
        refused = False
        try:
            socket.create_connection(("127.0.0.1", new_port), 2).close()
        except ConnectionRefusedError:
            refused = True
        check("delete_listener resets its flows and closes the port", ended and reset and refused,
              f"reset {reset}, refused {refused}")
        elb.delete_target_group(TargetGroupArn=api_arn)
        check("delete_target_group, then the group is gone",
              error_code(lambda: elb.describe_target_groups(Names=["api"])) == "TargetGroupNotFound")
        check("the first listener kept its group's live settings through those edits (PROXY v2 still on)",
              (get_through(listener).get("proxy") or {}).get("version") == 2)

        # UDP: a UDP target group and listener made by boto3 carry datagrams at once.
        udp_arn = elb.create_target_group(Name="udp", Protocol="UDP", Port=targets[1], TargetType="ip",
                                          HealthCheckProtocol="TCP")["TargetGroups"][0]["TargetGroupArn"]
        elb.register_targets(TargetGroupArn=udp_arn, Targets=[{"Id": "127.0.0.1"}])
        udp_port = free_port()
        udp_listener = elb.create_listener(LoadBalancerArn=lb_arn, Protocol="UDP", Port=udp_port, DefaultActions=[
            {"Type": "forward", "TargetGroupArn": udp_arn}])["Listeners"][0]
        datagram = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        datagram.bind(("127.0.0.2", 0))
        datagram.settimeout(5)
        datagram.sendto(b"ping", ("127.0.0.1", udp_port))
        answer, sender = datagram.recvfrom(65536)
        datagram.close()
        seen = json.loads(answer)
        check("create_target_group / create_listener Protocol=UDP: a datagram reaches the target from the "
              "client's address, the answer comes from the listener",
              udp_listener["Protocol"] == "UDP" and seen.get("target") == "b" and seen["peer"].startswith("127.0.0.2:")
              and sender == ("127.0.0.1", udp_port), f"{seen} from {sender}")
        check("a TCP listener to a UDP group is IncompatibleProtocols; a UDP health check is ValidationError",
              error_code(lambda: elb.create_listener(LoadBalancerArn=lb_arn, Protocol="TCP", Port=free_port(),
                                                     DefaultActions=[{"Type": "forward", "TargetGroupArn": udp_arn}]))
              == "IncompatibleProtocols"
              and error_code(lambda: elb.create_target_group(Name="udp2", Protocol="UDP", Port=53, TargetType="ip",
                                                             HealthCheckProtocol="UDP")) == "ValidationError")
        elb.delete_listener(ListenerArn=udp_listener["ListenerArn"])
        elb.delete_target_group(TargetGroupArn=udp_arn)

        # Tags, and the settings that are not target lists.
        elb.add_tags(ResourceArns=[tg_arn, lb_arn], Tags=[{"Key": "team", "Value": "edge"}, {"Key": "env", "Value": "test"}])
        elb.remove_tags(ResourceArns=[tg_arn], TagKeys=["env"])
        described = {d["ResourceArn"]: {t["Key"]: t["Value"] for t in d["Tags"]}
                     for d in elb.describe_tags(ResourceArns=[tg_arn, lb_arn])["TagDescriptions"]}
        check("add_tags, remove_tags and describe_tags", described == {
            tg_arn: {"team": "edge"}, lb_arn: {"team": "edge", "env": "test"}}, str(described))
        check("add_tags with a key twice is DuplicateTagKeys", error_code(lambda: elb.add_tags(
            ResourceArns=[tg_arn], Tags=[{"Key": "a", "Value": "1"}, {"Key": "a", "Value": "2"}])) == "DuplicateTagKeys")
        modified = elb.modify_target_group(TargetGroupArn=tg_arn, HealthCheckIntervalSeconds=10)["TargetGroups"][0]
        check("modify_target_group changes the health check", modified["HealthCheckIntervalSeconds"] == 10
              and elb.describe_target_groups(TargetGroupArns=[tg_arn])["TargetGroups"][0]["HealthCheckIntervalSeconds"] == 10)
        lb_attributes = {a["Key"]: a["Value"] for a in elb.modify_load_balancer_attributes(
            LoadBalancerArn=lb_arn, Attributes=[{"Key": "deletion_protection.enabled", "Value": "true"}])["Attributes"]}
        check("modify_load_balancer_attributes", lb_attributes.get("deletion_protection.enabled") == "true"
              and {a["Key"]: a["Value"] for a in elb.describe_load_balancer_attributes(LoadBalancerArn=lb_arn)[
                  "Attributes"]}.get("deletion_protection.enabled") == "true")
        first_listener = listeners[0]["ListenerArn"]
        elb.modify_listener_attributes(ListenerArn=first_listener,
                                       Attributes=[{"Key": "tcp.idle_timeout.seconds", "Value": "120"}])
        idle = {a["Key"]: a["Value"] for a in elb.describe_listener_attributes(ListenerArn=first_listener)["Attributes"]}
        check("modify_listener_attributes: tcp.idle_timeout.seconds 120; 5 is outside AWS's 60-6000",
              idle.get("tcp.idle_timeout.seconds") == "120" and error_code(lambda: elb.modify_listener_attributes(
                  ListenerArn=first_listener, Attributes=[{"Key": "tcp.idle_timeout.seconds", "Value": "5"}]))
              == "ValidationError", str(idle))

        # ARC's zonal shift API, from boto3's own arc-zonal-shift client.
        arc = boto3.client("arc-zonal-shift", endpoint_url=f"http://127.0.0.1:{admin}", region_name="eu-west-1",
                           aws_access_key_id="test", aws_secret_access_key="test")
        not_enabled = error_code(lambda: arc.start_zonal_shift(
            resourceIdentifier=lb_arn, awayFrom="eu-west-1a", expiresIn="1h", comment="check"))
        elb.modify_load_balancer_attributes(LoadBalancerArn=lb_arn, Attributes=[
            {"Key": "zonal_shift.config.enabled", "Value": "true"}])
        started = arc.start_zonal_shift(resourceIdentifier=lb_arn, awayFrom="eu-west-1a", expiresIn="1h",
                                        comment="check")
        conflict = error_code(lambda: arc.start_zonal_shift(
            resourceIdentifier=lb_arn, awayFrom="eu-west-1a", expiresIn="30m", comment="again"))
        listed = [(z["zonalShiftId"], z["status"]) for z in arc.list_zonal_shifts()["items"]]
        cancelled = arc.cancel_zonal_shift(zonalShiftId=started["zonalShiftId"])
        check("arc-zonal-shift: ValidationException until zonal_shift.config.enabled; start, ConflictException for a "
              "second, list, cancel",
              not_enabled == "ValidationException" and started["status"] == "ACTIVE" and started["awayFrom"] == "eu-west-1a"
              and conflict == "ConflictException" and listed == [(started["zonalShiftId"], "ACTIVE")]
              and cancelled["status"] == "CANCELED"
              and error_code(lambda: arc.cancel_zonal_shift(zonalShiftId=started["zonalShiftId"])) == "ConflictException",
              f"{not_enabled} {started} {conflict} {listed} {cancelled}")

        # The AWS CLI (from the same virtual environment) reads the same answers.
        aws = os.path.join(os.path.dirname(sys.executable), "aws")
        env = dict(os.environ, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test", AWS_DEFAULT_REGION="eu-west-1")
        cli = subprocess.run([aws, "elbv2", "describe-target-groups", "--names", "web", "--output", "json",
                              "--endpoint-url", f"http://127.0.0.1:{admin}"], capture_output=True, text=True, env=env)
        check("the AWS CLI: describe-target-groups --names web",
              cli.returncode == 0 and json.loads(cli.stdout)["TargetGroups"][0]["TargetGroupArn"] == tg_arn,
              cli.stderr)
        # localnlb ctl against the AWS CLI, the same commands and options: the same bytes on stdout.
        ctl_env = dict(env, AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="")
        differing = []
        for command in [["describe-load-balancers"], ["describe-target-groups"],
                        ["describe-listeners", "--load-balancer-arn", lb_arn],
                        ["describe-target-health", "--target-group-arn", tg_arn],
                        ["describe-tags", "--resource-arns", tg_arn, lb_arn],
                        ["describe-target-group-attributes", "--target-group-arn", tg_arn]]:
            for output in ["json", "text"]:
                line = command + ["--output", output, "--endpoint-url", f"http://127.0.0.1:{admin}"]
                theirs = subprocess.run([aws, "elbv2"] + line, capture_output=True, text=True, env=env)
                ours = subprocess.run([binary, "ctl"] + line[::-1][:2][::-1] + line[:-2], capture_output=True,
                                      text=True, env=ctl_env)
                if theirs.returncode != 0 or ours.returncode != 0 or theirs.stdout != ours.stdout:
                    differing.append((" ".join(command[:1] + [output]), theirs.stdout[:300], ours.stdout[:300],
                                      theirs.stderr[-200:], ours.stderr[-200:]))
        for output in ["json", "text"]:
            line = ["list-zonal-shifts", "--output", output, "--endpoint-url", f"http://127.0.0.1:{admin}"]
            theirs = subprocess.run([aws, "arc-zonal-shift"] + line, capture_output=True, text=True, env=env)
            ours = subprocess.run([binary, "ctl"] + line, capture_output=True, text=True, env=ctl_env)
            if theirs.returncode != 0 or ours.returncode != 0 or theirs.stdout != ours.stdout:
                differing.append((f"list-zonal-shifts {output}", theirs.stdout[:400], ours.stdout[:400],
                                  theirs.stderr[-200:], ours.stderr[-200:]))
        check("localnlb ctl prints what the AWS CLI prints (json and text; 6 elbv2 commands and "
              "arc-zonal-shift list-zonal-shifts, --endpoint-url first)", not differing, str(differing[:1]))
        # --query: JMESPath as AWS CLI users type it; the AWS CLI's own jmespath is the reference.
        queries = [
            "TargetGroups[0].TargetGroupArn", "TargetGroups[*].[TargetGroupName, Port]",
            "TargetGroups[?TargetType==`ip`].TargetGroupName", "TargetGroups[?TargetType=='ip'] | [0].Port",
            "TargetGroups[?Port > `1` && HealthCheckEnabled].{Name: TargetGroupName, Checks: HealthCheckProtocol}",
            "length(TargetGroups)", "TargetGroups[].LoadBalancerArns[]", "TargetGroups[-1].Matcher",
            "TargetGroups[0:1].Port", "TargetGroups[?!HealthCheckEnabled]", "TargetGroups[0].Nope",
            "sort(TargetGroups[*].TargetGroupName)", "TargetGroups[?starts_with(TargetGroupName, 'we')].Port",
        ]
        query_differing = []
        for query in queries:
            for output in ["json", "text"]:
                line = ["describe-target-groups", "--query", query, "--output", output,
                        "--endpoint-url", f"http://127.0.0.1:{admin}"]
                theirs = subprocess.run([aws, "elbv2"] + line, capture_output=True, text=True, env=env)
                ours = subprocess.run([binary, "ctl"] + line, capture_output=True, text=True, env=ctl_env)
                if theirs.returncode != ours.returncode or theirs.stdout != ours.stdout:
                    query_differing.append((query, output, theirs.stdout[:300], ours.stdout[:300], ours.stderr[-200:]))
        check(f"localnlb ctl --query prints what the AWS CLI prints ({len(queries)} JMESPath queries, json and text)",
              not query_differing, str(query_differing[:2]))
        bogus_tg = tg_arn[:-16] + "0" * 16
        cli = subprocess.run([aws, "elbv2", "describe-target-health", "--target-group-arn", bogus_tg,
                              "--endpoint-url", f"http://127.0.0.1:{admin}"], capture_output=True, text=True, env=env)
        check("the AWS CLI: an unknown target group is TargetGroupNotFound, a failing exit",
              cli.returncode != 0 and "(TargetGroupNotFound)" in cli.stderr, f"exit {cli.returncode}: {cli.stderr}")

        errors = {
            "TargetGroupNotFound": error_code(lambda: elb.describe_target_groups(Names=["nope"])),
            "TargetGroupNotFound (ARN)": error_code(lambda: elb.describe_target_health(TargetGroupArn=bogus_tg)),
            "LoadBalancerNotFound": error_code(lambda: elb.describe_load_balancers(Names=["nope"])),
            "ListenerNotFound": error_code(lambda: elb.describe_listeners(ListenerArns=[lb_arn.replace(
                ":loadbalancer/", ":listener/") + "/0123456789abcdef"])),
            "ValidationError": error_code(lambda: elb.modify_target_group_attributes(
                TargetGroupArn=tg_arn, Attributes=[{"Key": "deregistration_delay.timeout_seconds", "Value": "5000"}])),
        }
        # AWS: "If the specified target does not exist, the action returns successfully."
        gone_again = elb.deregister_targets(TargetGroupArn=tg_arn, Targets=[b])
        check("deregistering a target that is not registered succeeds, as AWS documents",
              gone_again["ResponseMetadata"]["HTTPStatusCode"] == 200, str(gone_again))
        check("AWS's error codes reach boto3 as ClientError",
              all(code == name.split(" ")[0] for name, code in errors.items()), str(errors))
        status, body = raw_post(admin, b"Action=NoSuchAction&Version=2015-12-01")
        check("an unknown action is 400 InvalidAction", status == 400 and "<Code>InvalidAction</Code>" in body, body)
        status, body = raw_post(admin, b"Action=DescribeTargetGroups&Names.member.1=%zz")
        check("a broken form body is a 400, the daemon unaffected",
              status == 400 and "MalformedQueryString" in body and procs[-1].poll() is None
              and len(elb.describe_target_groups()["TargetGroups"]) == 1, body)

        # With keys configured, every request's SigV4 signature is checked: botocore's own signing
        # must pass, a wrong secret or key id must not.
        signed_admin, signed_listener = free_port(), free_port()
        signed_config = os.path.join(scratch, "signed.json")
        with open(signed_config, "w") as f:
            json.dump({
                "Admin": {"Address": f"127.0.0.1:{signed_admin}", "AccessKeyId": "AKIDLOCALNLBTEST01",
                          "SecretAccessKey": "local/secret+key/for-the-check"},
                "Listeners": [{"Port": signed_listener, "DefaultActions": [
                    {"Type": "forward", "TargetGroupName": "web"}]}],
                "TargetGroups": [{"Name": "web", "Port": targets[0], "TargetType": "ip",
                                  "Targets": [{"Id": "127.0.0.1"}]}],
            }, f)
        procs.append(subprocess.Popen([binary, "serve", "--config", signed_config, "--flow-log", "off"], stderr=log))
        wait_port(signed_listener, process=procs[-1])

        def signed_client(key, secret):
            return boto3.client("elbv2", endpoint_url=f"http://127.0.0.1:{signed_admin}", region_name="us-east-1",
                                aws_access_key_id=key, aws_secret_access_key=secret)
        good = signed_client("AKIDLOCALNLBTEST01", "local/secret+key/for-the-check")
        check("SigV4: botocore's signature with the configured keys is accepted (POST and with a list)",
              [g["TargetGroupName"] for g in good.describe_target_groups(Names=["web"])["TargetGroups"]] == ["web"])
        check("SigV4: a wrong secret is SignatureDoesNotMatch", error_code(lambda: signed_client(
            "AKIDLOCALNLBTEST01", "not/the/secret/at/all").describe_target_groups()) == "SignatureDoesNotMatch")
        check("SigV4: another key id is InvalidClientTokenId", error_code(lambda: signed_client(
            "AKIDSOMEBODYELSE0", "local/secret+key/for-the-check").describe_target_groups()) == "InvalidClientTokenId")
        status, body = raw_post(signed_admin, b"Action=DescribeTargetGroups&Version=2015-12-01")
        check("SigV4: an unsigned request is 403 MissingAuthenticationToken",
              status == 403 and "MissingAuthenticationToken" in body, body)

        # A signature binds its body: botocore's own signature of a DescribeTargetGroups, captured and
        # replayed over a DeregisterTargets, with and without the X-Amz-Content-Sha256 it computed.
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        web_arn = good.describe_target_groups(Names=["web"])["TargetGroups"][0]["TargetGroupArn"]
        describe = b"Action=DescribeTargetGroups&Version=2015-12-01"
        deregister = urllib.parse.urlencode({"Action": "DeregisterTargets", "Version": "2015-12-01",
                                             "TargetGroupArn": web_arn, "Targets.member.1.Id": "127.0.0.1"}).encode()
        replays = []
        for with_hash in (False, True):
            captured = AWSRequest(method="POST", url=f"http://127.0.0.1:{signed_admin}/", data=describe,
                                  headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
            if with_hash:
                captured.headers["X-Amz-Content-Sha256"] = hashlib.sha256(describe).hexdigest()
            SigV4Auth(Credentials("AKIDLOCALNLBTEST01", "local/secret+key/for-the-check"),
                      "elasticloadbalancing", "us-east-1").add_auth(captured)
            headers = dict(captured.headers.items())
            genuine = urllib.request.Request(f"http://127.0.0.1:{signed_admin}/", data=describe, headers=headers)
            with urllib.request.urlopen(genuine, timeout=5) as response:
                replays.append(response.status)
            forged = urllib.request.Request(f"http://127.0.0.1:{signed_admin}/", data=deregister, headers=headers)
            try:
                with urllib.request.urlopen(forged, timeout=5) as response:
                    replays.append((response.status, ""))
            except urllib.error.HTTPError as error:
                replays.append((error.code, error.read().decode()))
        health = good.describe_target_health(TargetGroupArn=web_arn)["TargetHealthDescriptions"]
        check("SigV4: botocore's signature replayed over another body is SignatureDoesNotMatch; the target stays",
              replays[0] == 200 and replays[2] == 200
              and all(r[0] == 403 and "SignatureDoesNotMatch" in r[1] for r in (replays[1], replays[3]))
              and all(h["TargetHealth"]["State"] != "draining" for h in health), str(replays)[:400])

        # With keys, the rest of the control address is closed too; curl with the rules, ctl signing.
        def curl(*args):
            done = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", *args,
                                   f"http://127.0.0.1:{signed_admin}/target-groups/web/register"],
                                  capture_output=True, text=True, timeout=10)
            return done.stdout
        register = ["-X", "POST", "--data", '{"Targets":[{"Id":"127.0.0.1","Port":9}]}']
        closed = {path: urllib.request.Request(f"http://127.0.0.1:{signed_admin}{path}")
                  for path in ("/config", "/flows", "/metrics", "/target-groups")}
        refused = []
        for path, request in closed.items():
            try:
                urllib.request.urlopen(request, timeout=5)
                refused.append(path)
            except urllib.error.HTTPError as error:
                if error.code not in (401, 403):
                    refused.append(f"{path}: {error.code}")
        signed_env = dict(env, AWS_ACCESS_KEY_ID="AKIDLOCALNLBTEST01",
                          AWS_SECRET_ACCESS_KEY="local/secret+key/for-the-check")
        exported = subprocess.run([binary, "ctl", "export-config", "--endpoint-url", f"http://127.0.0.1:{signed_admin}"],
                                  capture_output=True, text=True, env=signed_env, timeout=10)
        arc_signed = subprocess.run([aws, "arc-zonal-shift", "list-zonal-shifts", "--endpoint-url",
                                     f"http://127.0.0.1:{signed_admin}"], capture_output=True, text=True,
                                    env=signed_env, timeout=60)
        arc_unsigned = subprocess.run([aws, "arc-zonal-shift", "list-zonal-shifts", "--no-sign-request",
                                       "--endpoint-url", f"http://127.0.0.1:{signed_admin}"], capture_output=True,
                                      text=True, env=signed_env, timeout=60)
        check("with keys, /config, /flows, /metrics and the JSON API refuse the unsigned (curl too); ctl signs and "
              "export-config redacts the secret; the AWS CLI's arc-zonal-shift signed is served, unsigned refused",
              not refused and curl(*register, "-H", "Content-Type: application/json") == "401"
              and exported.returncode == 0 and "REDACTED" in exported.stdout
              and "local/secret+key" not in exported.stdout and "REDACTED" in exported.stderr
              and arc_signed.returncode == 0 and arc_unsigned.returncode != 0,
              f"{refused} {exported.stderr[:200]} {arc_signed.stderr[:200]} {arc_unsigned.stderr[:200]}")
        open_register = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "--data",
             '{"Targets":[{"Id":"127.0.0.1","Port":9}]}',
             f"http://127.0.0.1:{admin}/target-groups/web-missing/register"], capture_output=True, text=True)
        origin = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Origin: http://attacker.example",
             "--data", "Action=DescribeTargetGroups&Version=2015-12-01", f"http://127.0.0.1:{admin}/"],
            capture_output=True, text=True)
        rebound = subprocess.run(
            ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--resolve", f"rebound.example:{admin}:127.0.0.1",
             f"http://rebound.example:{admin}/status"], capture_output=True, text=True)
        check("a browser's shapes are refused on the open loopback API: a JSON write without Content-Type (415), "
              "another Origin (403), a rebound Host (403); the AWS CLI and boto3 above were not",
              open_register.stdout == "415" and origin.stdout == "403" and rebound.stdout == "403",
              f"{open_register.stdout} {origin.stdout} {rebound.stdout}")

        # serve --persist: every API change is written back to the file; a restart replays it, ARNs and all.
        persist_admin = free_port()
        persist_config = os.path.join(scratch, "persisted.json")
        with open(persist_config, "w") as f:
            json.dump({"Admin": {"Address": f"127.0.0.1:{persist_admin}"}}, f)
        first = subprocess.Popen([binary, "serve", "--config", persist_config, "--persist", "--flow-log", "off"],
                                 stderr=log)
        procs.append(first)
        wait_port(persist_admin, process=first)
        client = boto3.client("elbv2", endpoint_url=f"http://127.0.0.1:{persist_admin}", region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")
        kept_arn = client.create_target_group(Name="kept", Protocol="TCP", Port=targets[0], TargetType="ip",
                                              Tags=[{"Key": "owner", "Value": "aws-check"}])["TargetGroups"][0][
            "TargetGroupArn"]
        client.register_targets(TargetGroupArn=kept_arn, Targets=[{"Id": "127.0.0.1", "Port": targets[1]}])
        client.modify_target_group_attributes(TargetGroupArn=kept_arn, Attributes=[
            {"Key": "deregistration_delay.timeout_seconds", "Value": "42"}])
        # Load balancers made by the API on an empty host: each gets loopback addresses of its own.
        made = client.create_load_balancer(Name="kept-nlb", Type="network", Subnets=["subnet-1", "subnet-2"],
                                           Tags=[{"Key": "owner", "Value": "aws-check"}])["LoadBalancers"][0]
        kept_lb = made["LoadBalancerArn"]
        client.get_waiter("load_balancer_available").wait(LoadBalancerArns=[kept_lb], WaiterConfig=fast)
        second = client.create_load_balancer(Name="second", Type="network", Scheme="internal",
                                             Subnets=["subnet-1"])["LoadBalancers"][0]
        addresses = [[a["IpAddress"] for a in z["LoadBalancerAddresses"]] for z in made["AvailabilityZones"]]
        second_ip = second["AvailabilityZones"][0]["LoadBalancerAddresses"][0]["IpAddress"]
        check("create_load_balancer: a node per subnet on 127.0.0.1, 127.0.0.2; the next one on 127.0.0.3; "
              "load_balancer_available waits",
              addresses == [["127.0.0.1"], ["127.0.0.2"]] and second_ip == "127.0.0.3"
              and second["Scheme"] == "internal" and made["State"]["Code"] == "provisioning"
              and client.describe_load_balancers(LoadBalancerArns=[kept_lb])["LoadBalancers"][0]["State"]["Code"]
              == "active", f"{addresses} {second_ip} {made['State']}")
        first_page = client.describe_load_balancers(PageSize=1)
        second_page = client.describe_load_balancers(PageSize=1, Marker=first_page.get("NextMarker", ""))
        check("describe_load_balancers pages with PageSize and Marker across several",
              [lb["LoadBalancerName"] for lb in first_page["LoadBalancers"] + second_page["LoadBalancers"]]
              == ["kept-nlb", "second"] and "NextMarker" not in second_page, f"{first_page} / {second_page}")
        check("create_load_balancer: the same name and subnets returns it; other subnets are "
              "DuplicateLoadBalancerName; Type gateway (not emulated) is ValidationError",
              client.create_load_balancer(Name="second", Type="network", Subnets=["subnet-1"])["LoadBalancers"][0][
                  "LoadBalancerArn"] == second["LoadBalancerArn"]
              and error_code(lambda: client.create_load_balancer(Name="second", Type="network", Subnets=["subnet-9"]))
              == "DuplicateLoadBalancerName"
              and error_code(lambda: client.create_load_balancer(Name="gwlb", Type="gateway", Subnets=["subnet-1"]))
              == "ValidationError")
        kept_port = free_port()
        other_arn = client.create_target_group(Name="other", Protocol="TCP", Port=targets[0], TargetType="ip")[
            "TargetGroups"][0]["TargetGroupArn"]
        client.register_targets(TargetGroupArn=other_arn, Targets=[{"Id": "127.0.0.1", "Port": targets[0]}])
        client.create_listener(LoadBalancerArn=second["LoadBalancerArn"], Protocol="TCP", Port=kept_port,
                               DefaultActions=[{"Type": "forward", "TargetGroupArn": other_arn}])
        kept_listener = client.create_listener(LoadBalancerArn=kept_lb, Protocol="TCP", Port=kept_port, DefaultActions=[
            {"Type": "forward", "TargetGroupArn": kept_arn}])["Listeners"][0]["ListenerArn"]
        check("the same port on two load balancers: each listener on its own addresses, its own group",
              get_through(kept_port).get("target") == "b" and get_through(kept_port, second_ip).get("target") == "a")
        after_load_balancer_changes(client, kept_lb, kept_port)
        instance_targets(client, persist_admin, targets[0])
        eu_client, eu_group = regions_apart(persist_admin, kept_arn)
        acm, kept_certificates = certificates_and_tls(persist_admin, kept_lb, targets[0], scratch)
        mutual_tls(persist_admin, kept_lb, targets[0], scratch)
        application_load_balancer(persist_admin, targets[0])
        weighted_target_groups(persist_admin, targets)
        check("a target group serves one network load balancer: TargetGroupAssociationLimit",
              error_code(lambda: client.create_listener(
                  LoadBalancerArn=second["LoadBalancerArn"], Protocol="TCP", Port=free_port(),
                  DefaultActions=[{"Type": "forward", "TargetGroupArn": kept_arn}])) == "TargetGroupAssociationLimit")
        client.modify_load_balancer_attributes(LoadBalancerArn=second["LoadBalancerArn"], Attributes=[
            {"Key": "deletion_protection.enabled", "Value": "true"}])
        protected = error_code(lambda: client.delete_load_balancer(LoadBalancerArn=second["LoadBalancerArn"]))
        client.modify_load_balancer_attributes(LoadBalancerArn=second["LoadBalancerArn"], Attributes=[
            {"Key": "deletion_protection.enabled", "Value": "false"}])
        client.delete_load_balancer(LoadBalancerArn=second["LoadBalancerArn"])
        client.get_waiter("load_balancers_deleted").wait(LoadBalancerArns=[second["LoadBalancerArn"]],
                                                         WaiterConfig=fast)
        closed = False
        try:
            socket.create_connection((second_ip, kept_port), 2).close()
        except ConnectionRefusedError:
            closed = True
        check("delete_load_balancer: OperationNotPermitted under deletion protection; then its listener's port "
              "closes, the other's stays, load_balancers_deleted waits, a second delete succeeds",
              protected == "OperationNotPermitted" and closed and get_through(kept_port).get("target") == "b"
              and client.delete_load_balancer(LoadBalancerArn=second["LoadBalancerArn"]) is not None
              and [g["LoadBalancerArns"] for g in client.describe_target_groups(Names=["other"])["TargetGroups"]]
              == [[]], f"protected {protected}, closed {closed}")
        exported = subprocess.run([binary, "ctl", "export-config", "--endpoint-url", f"http://127.0.0.1:{persist_admin}"],
                                  capture_output=True, text=True)
        on_disk = open(persist_config).read()
        valid = subprocess.run([binary, "check-config", persist_config], capture_output=True, text=True)
        check("--persist keeps the file in step with the API, as ctl export-config prints it, and it is valid",
              exported.returncode == 0 and exported.stdout.strip() == on_disk.strip() and valid.returncode == 0
              and '"kept"' in on_disk, valid.stderr + exported.stderr)
        first.terminate()
        first.wait(15)
        second = subprocess.Popen([binary, "serve", "--config", persist_config, "--flow-log", "off"], stderr=log)
        procs.append(second)
        wait_port(kept_port, process=second)
        replayed = client.describe_target_groups(Names=["kept"])["TargetGroups"][0]["TargetGroupArn"]
        replayed_attributes = {a["Key"]: a["Value"] for a in client.describe_target_group_attributes(
            TargetGroupArn=kept_arn)["Attributes"]}
        replayed_targets = [d["Target"]["Port"] for d in client.describe_target_health(
            TargetGroupArn=kept_arn)["TargetHealthDescriptions"]]
        replayed_tags = client.describe_tags(ResourceArns=[kept_arn])["TagDescriptions"][0]["Tags"]
        replayed_listener = client.describe_listeners(LoadBalancerArn=kept_lb)["Listeners"][0]["ListenerArn"]
        replayed_lbs = [lb["LoadBalancerArn"] for lb in client.describe_load_balancers()["LoadBalancers"]]
        replayed_eu = [g["TargetGroupArn"] for g in eu_client.describe_target_groups()["TargetGroups"]]
        replayed_certificates = sorted(c["CertificateArn"] for c in acm.list_certificates()["CertificateSummaryList"])
        key_files = [os.stat(os.path.join(scratch, "ca", "certificates", f)).st_mode & 0o777
                     for f in os.listdir(os.path.join(scratch, "ca", "certificates"))]
        check("a restart from the persisted file replays the load balancer, group, listener, ARNs, attribute, "
              "target and tag, another region's group, and the ACM certificates (their files mode 0600)",
              replayed == kept_arn and replayed_listener == kept_listener and replayed_lbs == [kept_lb]
              and replayed_attributes.get("deregistration_delay.timeout_seconds") == "42"
              and replayed_targets == [targets[1]] and replayed_tags == [{"Key": "owner", "Value": "aws-check"}]
              and replayed_eu == [eu_group] and set(kept_certificates) <= set(replayed_certificates)
              and key_files and all(mode == 0o600 for mode in key_files)
              and get_through(kept_port).get("target") == "b",
              f"{replayed} {replayed_listener} {replayed_attributes.get('deregistration_delay.timeout_seconds')} "
              f"{replayed_targets} {replayed_tags}")
    except Exception as error:  # a boto3 failure is a failed check, with what it said
        check("the scenario ran to its end", False, repr(error))
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(15)
    failed = results.count(False)
    print(f"aws: {len(results) - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
