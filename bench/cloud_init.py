#!/usr/bin/python3
"""debian-12 through `kiln serve`, with and without cloud-init: RunInstances (with a key pair) to
sshd's banner at the instance's address, to admin logging in with the key pair, and (with
cloud-init) to the end of cloud-init ("Cloud-init v. ... finished" on the console, which
cloud-init writes with boot-finished), plus cloud-init's own `cloud-init analyze show` total.
The images take turns (one daemon at a time); prints medians (min-max) in ms as a Markdown table. Run as root, under the
instances lock:

  flock /tmp/kiln-instances.lock bench/cloud_init.py --after build/images/debian-12.tar \\
      --before OLD/debian-12.tar [--runs 5] [--kiln build/kiln]
"""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))


def banner(addr, deadline):
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((addr, 22), timeout=0.5) as s:
                s.settimeout(2)
                if s.recv(64).startswith(b"SSH-2.0"):
                    return time.monotonic()
        except OSError:
            time.sleep(0.005)
    raise RuntimeError(f"no sshd at {addr}")


def ssh(key, addr, command):
    return subprocess.run(
        ["ssh", "-i", key, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=error", "-o", "ConnectTimeout=5",
         "-o", "IdentitiesOnly=yes", f"admin@{addr}", command],
        capture_output=True, text=True, timeout=120)


def one(ec2, ami, key, cloud_init):
    t0 = time.monotonic()
    iid = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                            KeyName="bench")["Instances"][0]["InstanceId"]
    deadline = t0 + 180
    try:
        while True:
            d = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
            addr = d.get("PublicIpAddress") or d.get("PrivateIpAddress")
            if d["State"]["Name"] == "running" and addr:
                break
            if d["State"]["Name"] not in ("pending", "running") or time.monotonic() > deadline:
                raise RuntimeError(f"{iid} is {d['State']['Name']}, not running")
            time.sleep(0.005)
        t_sshd = banner(addr, deadline)
        while ssh(key, addr, "true").returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError("admin never logged in")
            time.sleep(0.05)
        t_login = time.monotonic()
        out = {"sshd": t_sshd - t0, "login": t_login - t0}
        if cloud_init:
            while "Cloud-init v. " not in ec2.get_console_output(InstanceId=iid).get("Output", "") \
                    or " finished at " not in ec2.get_console_output(InstanceId=iid).get("Output", ""):
                if time.monotonic() > deadline:
                    raise RuntimeError("cloud-init never finished")
                time.sleep(0.05)
            out["finished"] = time.monotonic() - t0
            r = ssh(key, addr, "sudo -n cloud-init analyze show")
            m = re.findall(r"Total Time: ([0-9.]+) seconds", r.stdout)
            if m:
                out["analyze"] = float(m[-1])
        return out
    finally:
        ec2.terminate_instances(InstanceIds=[iid])


def daemon(tar, base, kiln_bin):
    from conftest import client, kiln, serving  # noqa: E402
    images = os.path.join(base, "images")
    os.makedirs(images)
    os.symlink(os.path.abspath(tar), os.path.join(images, "debian-12.tar"))
    data = os.path.join(base, "data")
    kiln("init", "--data", data, "--images", images)
    gen = serving(data)
    server = next(gen)
    ec2 = client(server)
    ec2.authorize_security_group_ingress(GroupName="default", IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    k = ec2.create_key_pair(KeyName="bench", KeyType="ed25519")
    key = os.path.join(base, "bench.pem")
    with open(key, "w") as f:
        f.write(k["KeyMaterial"])
    os.chmod(key, 0o600)
    ami = ec2.describe_images(Owners=["amazon"], Filters=[
        {"Name": "name", "Values": ["kiln-debian-12"]}])["Images"][0]["ImageId"]
    return gen, ec2, ami, key


def fmt(xs):
    xs = [x * 1000 for x in xs]
    return f"{statistics.median(xs):.0f} ({min(xs):.0f}–{max(xs):.0f})" if xs else "–"


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--before", required=True, help="debian-12 tarball without cloud-init")
    p.add_argument("--after", required=True, help="debian-12 tarball with cloud-init")
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--kiln", default=os.path.join(HERE, "..", "build", "kiln"))
    a = p.parse_args()
    os.environ["KILN_BIN"] = os.path.abspath(a.kiln)
    base = tempfile.mkdtemp(prefix="kiln-bench-cinit-")
    samples = {"before": [], "after": []}
    try:
        # One daemon at a time: two data directories on one host would collide on the VPCs'
        # transit links (issue 15), so the images take turns rather than interleave.
        for name, tar in (("after", a.after), ("before", a.before)):
            gen, ec2, ami, key = daemon(tar, os.path.join(base, name), a.kiln)
            try:
                for run in range(a.runs + 1):  # run 0 warms the page cache, not counted
                    s = one(ec2, ami, key, name == "after")
                    print(f"run {run} {name}: {s}", file=sys.stderr)
                    if run:
                        samples[name].append(s)
                    time.sleep(1)
            finally:
                next(gen, None)
        print(f"{a.runs} runs, t3.micro, medians (min–max) in ms from RunInstances; "
              f"load average at the end: {open('/proc/loadavg').read().split()[:3]}\n")
        print("| image | to sshd banner | to admin login | to end of cloud-init | cloud-init analyze total |")
        print("|---|---|---|---|---|")
        for name, label in (("before", "debian-12 without cloud-init (kiln-init installs the key)"),
                            ("after", "debian-12 with cloud-init")):
            s = samples[name]
            print(f"| {label} | {fmt([x['sshd'] for x in s])} | {fmt([x['login'] for x in s])} | "
                  f"{fmt([x['finished'] for x in s if 'finished' in x])} | "
                  f"{fmt([x['analyze'] for x in s if 'analyze' in x])} |")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
