#!/usr/bin/python3
"""bench/boot_storm: 100 busybox instances launched by five RunInstances calls of 20 (sent one
after the other, without waiting), timed from the first call to all 100 `running`
(DescribeInstances polled every 50 ms), on `kiln serve` over a new data directory; against
systemd-nspawn started the same way: five batches of 20 containers, each batch's 20 started at
once (a copy of the busybox root each, as nspawn locks its directory, then `systemd-nspawn -D`),
timed to the line each container prints once its shell runs.

usage (root, under the instances lock):
  flock /tmp/kiln-instances.lock /usr/bin/python3 bench/boot_storm/boot_storm.py [--runs 3]
Writes the section `## Boot storm (bench/boot_storm)` of bench/RESULTS.md (--no-report: print)."""
import argparse
import configparser
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time

import boto3
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "launch"))
import results  # noqa: E402
from busybox_host import REPO, busybox_root  # noqa: E402

WORK = os.environ.get("BENCH_DIR", "/var/tmp/kiln-bench-storm")
HEADING = "## Boot storm (bench/boot_storm)"
CALLS, PER_CALL = 5, 20


def kiln_storm(kiln, run):
    data = os.path.join(WORK, f"data{run}")
    shutil.rmtree(data, ignore_errors=True)
    topo = os.path.join(WORK, "topology")
    with open(topo, "w") as f:
        f.write("us-east-1 a b c\nquota running-vcpus 256\n")
    subprocess.run([kiln, "init", "--data", data, "--topology", topo], check=True, capture_output=True)
    proc = subprocess.Popen([kiln, "serve", "--data", data, "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=open(os.environ.get("STORM_LOG", os.devnull), "a"), text=True)
    try:
        port = int(proc.stdout.readline().split()[-1])
        cred = configparser.ConfigParser()
        cred.read(os.path.join(data, "credentials"))
        ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=f"http://127.0.0.1:{port}",
                           aws_access_key_id=cred["default"]["aws_access_key_id"],
                           aws_secret_access_key=cred["default"]["aws_secret_access_key"],
                           config=Config(retries={"max_attempts": 1}))
        ami = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-busybox"]}])["Images"][0]["ImageId"]
        # Warm: the zone's base of the image (restored once from the store on first use).
        warm = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1,
                                 Placement={"AvailabilityZone": "us-east-1a"})["Instances"][0]["InstanceId"]
        ec2.get_waiter("instance_running").wait(InstanceIds=[warm], WaiterConfig={"Delay": 0.1, "MaxAttempts": 600})
        ec2.terminate_instances(InstanceIds=[warm])
        ec2.get_waiter("instance_terminated").wait(InstanceIds=[warm], WaiterConfig={"Delay": 0.1, "MaxAttempts": 600})
        subprocess.run(["sync"])
        time.sleep(0.5)
        t0 = time.monotonic()
        ids = []
        for _ in range(CALLS):
            r = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=PER_CALL, MaxCount=PER_CALL,
                                  Placement={"AvailabilityZone": "us-east-1a"})
            ids += [i["InstanceId"] for i in r["Instances"]]
        t_calls = time.monotonic() - t0
        running, states = set(), {}
        while len(running) < len(ids):
            for res in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
                for i in res["Instances"]:
                    states[i["InstanceId"]] = i["State"]["Name"]
                    if i["State"]["Name"] == "running":
                        running.add(i["InstanceId"])
            bad = [k for k, v in states.items() if v not in ("pending", "running")]
            if bad:
                raise SystemExit(f"boot_storm: instances not running: {[(k, states[k]) for k in bad][:5]}")
            if time.monotonic() - t0 > 600:
                raise SystemExit("boot_storm: not all running after 600 s")
            time.sleep(0.05)
        total = time.monotonic() - t0
        addrs = set()
        for res in ec2.describe_instances(InstanceIds=ids)["Reservations"]:
            addrs |= {i["PrivateIpAddress"] for i in res["Instances"]}
        assert len(addrs) == len(ids), "two instances share an address"
        ec2.terminate_instances(InstanceIds=ids)
        ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig={"Delay": 0.5, "MaxAttempts": 600})
        return {"total": total, "calls": t_calls}
    finally:
        proc.terminate()
        proc.wait(timeout=60)
        subprocess.run([kiln, "down", "--data", data], capture_output=True)
        shutil.rmtree(data, ignore_errors=True)


def nspawn_storm(run):
    root = busybox_root(WORK)
    procs, ready = [], []
    lock = threading.Lock()

    def one(i):
        d = os.path.join(WORK, f"ns{run}-{i}")
        subprocess.run(["cp", "-a", "--reflink=auto", root, d], check=True)
        p = subprocess.Popen(["systemd-nspawn", "--register=no", "--keep-unit", "-q", "--private-network",
                              f"--machine=kiln-storm-{run}-{i}", "-D", d, "/bin/sh", "-c",
                              "echo STORM-READY; exec sleep 600"],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        with lock:
            procs.append(p)
        line = p.stdout.readline()
        with lock:
            ready.append(("STORM-READY" in line, time.monotonic()))

    t0 = time.monotonic()
    threads = []
    try:
        for c in range(CALLS):
            batch = [threading.Thread(target=one, args=(c * PER_CALL + k,)) for k in range(PER_CALL)]
            for t in batch:
                t.start()
            threads += batch
        for t in threads:
            t.join()
        total = max(t for _, t in ready) - t0
        if not all(ok for ok, _ in ready) or len(ready) != CALLS * PER_CALL:
            raise SystemExit("boot_storm: an nspawn container did not start")
        return {"total": total}
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        for i in range(CALLS * PER_CALL):
            shutil.rmtree(os.path.join(WORK, f"ns{run}-{i}"), ignore_errors=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default=os.path.join(REPO, "build", "kiln"))
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-report", action="store_true")
    ap.add_argument("--only", choices=["kiln", "nspawn"])
    a = ap.parse_args()
    os.makedirs(WORK, exist_ok=True)
    n = CALLS * PER_CALL
    load0 = open("/proc/loadavg").read().strip()
    k, s = [], []
    for run in range(a.runs):  # interleaved
        if a.only != "nspawn":
            k.append(kiln_storm(a.kiln, run))
            print(f"boot_storm: run {run} kiln {k[-1]['total']:.2f} s ({n / k[-1]['total']:.1f}/s), "
                  f"the five calls answered in {k[-1]['calls']:.2f} s", flush=True)
        if a.only != "kiln" and shutil.which("systemd-nspawn"):
            s.append(nspawn_storm(run))
            print(f"boot_storm: run {run} nspawn {s[-1]['total']:.2f} s ({n / s[-1]['total']:.1f}/s)", flush=True)
    load1 = open("/proc/loadavg").read().strip()
    git = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()

    def rows(name, samples):
        if not samples:
            return ""
        tot = [x["total"] for x in samples]
        med = statistics.median(tot)
        return (f"| {name} | {med:.2f} ({min(tot):.2f}–{max(tot):.2f}) | {n / med:.1f} | "
                f"{' / '.join(f'{t:.2f}' for t in tot)} |\n")

    text = (f"{HEADING}\n\nGenerated by `bench/boot_storm/boot_storm.py` on "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} (git {git}); do not edit by hand. "
            f"{n} busybox instances by {CALLS} launches of {PER_CALL}, sent back to back, timed to all "
            f"running; medians of {len(k) or len(s)} runs, kiln and nspawn interleaved. kiln: RunInstances "
            f"(t2.nano, one zone) on `kiln serve`, after one untimed launch that puts the image's base in "
            f"the zone; to every instance `running` in DescribeInstances (polled every 50 ms). "
            f"systemd-nspawn: 20 containers at once per batch, each a `cp -a` of the busybox root and "
            f"`systemd-nspawn --private-network -D` running `sh -c 'echo …'`; to the last line printed. "
            f"kiln's instances also get a veth on the zone's bridge, an address, their cgroup, a loop-mounted "
            f"ext4 root and kiln-init; nspawn's only a network namespace with no link. The machine has 2 "
            f"cores shared with other work (`/proc/loadavg` before: {load0}; after: {load1}): figures are "
            f"noisy.\n\n"
            "| launcher | 100 running, s (min–max) | instances/s (median) | runs, s |\n|---|---|---|---|\n"
            + rows("kiln, 5 RunInstances of 20", k) + rows("systemd-nspawn, 5 batches of 20", s) + "\n")
    if a.no_report:
        print(text)
    else:
        results.splice(os.path.join(REPO, "bench", "RESULTS.md"), HEADING, text)
        print(text)


if __name__ == "__main__":
    main()
