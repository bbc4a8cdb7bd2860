#!/usr/bin/python3
"""bench/load: N boto3 clients, each doing the whole image lifecycle on busybox over and over for
a bounded time against one `kiln serve` on a new data directory: RunInstances, DescribeInstances,
CreateImage, RunInstances from that image, CopyImage to a second region, DeregisterImage (both),
TerminateInstances, DeleteSnapshot (both regions). It counts 5xx answers (there must be none;
clients do not retry), other errors, and iterations; samples the daemon's RSS every 5 s; and at
the end checks that every resource reached a final state, that nothing of the data directory is
left mounted, looped, linked, namespaced or in a cgroup once the daemon is down, and that
`kiln store verify` passes for every region's store.

usage (root, under the instances lock):
  flock /tmp/kiln-instances.lock /usr/bin/python3 bench/load/load.py [--clients 8] [--seconds 60]
The issue's run is --clients 8 and --clients 32 with --seconds 600. Writes the section
`## Load, N clients (bench/load)` of bench/RESULTS.md (--no-report: print only)."""
import argparse
import configparser
import glob
import os
import shutil
import subprocess
import sys
import threading
import time

import boto3
import botocore
from botocore.config import Config

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, os.path.join(HERE, ".."))
import results  # noqa: E402

WORK = os.environ.get("BENCH_DIR", "/var/tmp/kiln-bench-load")
FAST = {"Delay": 0.25, "MaxAttempts": 1200}


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.calls = self.e5xx = self.iterations = 0
        self.errors = {}
        self.lat = []

    def error(self, what, e):
        with self.lock:
            code = e.response["Error"]["Code"] if isinstance(e, botocore.exceptions.ClientError) else type(e).__name__
            status = e.response["ResponseMetadata"].get("HTTPStatusCode", 0) if isinstance(e, botocore.exceptions.ClientError) else 0
            if status >= 500:
                self.e5xx += 1
            key = f"{what}: {code} ({status})"
            self.errors[key] = self.errors.get(key, 0) + 1


def instance_cgroups():
    return set(glob.glob("/sys/fs/cgroup/*/kiln/i-*") + glob.glob("/sys/fs/cgroup/kiln/i-*"))


def host_state(data, cgroups0):
    """What of this data directory the host holds: mounts, loop devices, instance cgroups made
    since the start (the zones' loop-backed XFS pools, which stay mounted by design, are not
    counted; another data directory's instances are not this run's)."""
    mounts = [l.split()[4] for l in open("/proc/self/mountinfo")
              if data in l and "/pools/" not in l.split()[4]]
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    loops = [l for l in loops.splitlines() if data in l and not l.rstrip(")").endswith(".xfs")]
    cgroups = sorted(instance_cgroups() - cgroups0)
    return {"mounts": mounts, "loops": loops, "cgroups": cgroups}


def links():
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return {l.split(":")[1].strip().split("@")[0] for l in out.splitlines()}


def netns():
    return set(os.listdir("/run/netns")) if os.path.isdir("/run/netns") else set()


def lifecycle(c, name, stop_at, st, created):
    """One client: the lifecycle until stop_at; every resource it makes is noted in created."""
    ec2, eu = c

    def call(what, fn, **kw):
        t0 = time.monotonic()
        try:
            return fn(**kw)
        except Exception as e:
            st.error(what, e)
            raise
        finally:
            with st.lock:
                st.calls += 1
                st.lat.append(time.monotonic() - t0)

    ami = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-busybox"]}])["Images"][0]["ImageId"]
    n = 0
    while time.monotonic() < stop_at:
        n += 1
        try:
            i1 = call("RunInstances", ec2.run_instances, ImageId=ami, InstanceType="t2.nano", MinCount=1,
                      MaxCount=1)["Instances"][0]["InstanceId"]
            created["instances"].add(i1)
            ec2.get_waiter("instance_running").wait(InstanceIds=[i1], WaiterConfig=FAST)
            call("DescribeInstances", ec2.describe_instances, InstanceIds=[i1])
            img = call("CreateImage", ec2.create_image, InstanceId=i1, Name=f"load-{name}-{n}")["ImageId"]
            created["images"].add(("us-east-1", img))
            ec2.get_waiter("image_available").wait(ImageIds=[img], WaiterConfig=FAST)
            i2 = call("RunInstances", ec2.run_instances, ImageId=img, InstanceType="t2.nano", MinCount=1,
                      MaxCount=1)["Instances"][0]["InstanceId"]
            created["instances"].add(i2)
            cp = call("CopyImage", eu.copy_image, SourceImageId=img, SourceRegion="us-east-1",
                      Name=f"load-{name}-{n}-copy")["ImageId"]
            created["images"].add(("eu-west-1", cp))
            eu.get_waiter("image_available").wait(ImageIds=[cp], WaiterConfig=FAST)
            ec2.get_waiter("instance_running").wait(InstanceIds=[i2], WaiterConfig=FAST)
            snaps = [(ec2, b["Ebs"]["SnapshotId"]) for b in
                     call("DescribeImages", ec2.describe_images, ImageIds=[img])["Images"][0]["BlockDeviceMappings"] if "Ebs" in b]
            snaps += [(eu, b["Ebs"]["SnapshotId"]) for b in
                      call("DescribeImages", eu.describe_images, ImageIds=[cp])["Images"][0]["BlockDeviceMappings"] if "Ebs" in b]
            call("DeregisterImage", ec2.deregister_image, ImageId=img)
            call("DeregisterImage", eu.deregister_image, ImageId=cp)
            call("TerminateInstances", ec2.terminate_instances, InstanceIds=[i1, i2])
            ec2.get_waiter("instance_terminated").wait(InstanceIds=[i1, i2], WaiterConfig=FAST)
            for cl, s in snaps:
                call("DeleteSnapshot", cl.delete_snapshot, SnapshotId=s)
            with st.lock:
                st.iterations += 1
        except Exception as e:  # counted in call(); waiters' failures here
            if not isinstance(e, botocore.exceptions.ClientError):
                st.error("waiter", e)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default=os.path.join(REPO, "build", "kiln"))
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--no-report", action="store_true")
    a = ap.parse_args()
    os.makedirs(WORK, exist_ok=True)
    data = os.path.join(WORK, f"data-{a.clients}")
    if os.path.exists(os.path.join(data, "kiln.db")):  # a run that died: its instances go first
        subprocess.run([a.kiln, "down", "--data", data], capture_output=True)
    shutil.rmtree(data, ignore_errors=True)
    topo = os.path.join(WORK, "topology")
    with open(topo, "w") as f:
        f.write("us-east-1 a b c\neu-west-1 a b\nquota running-vcpus 512\n")
    subprocess.run([a.kiln, "init", "--data", data, "--topology", topo], check=True, capture_output=True)
    links0, netns0, cgroups0 = links(), netns(), instance_cgroups()
    log = open(os.path.join(WORK, f"serve-{a.clients}.log"), "w")
    proc = subprocess.Popen([a.kiln, "serve", "--data", data, "--listen", "127.0.0.1:0",
                             "--max-connections-per-ip", "1024", "--max-connections", "2048"],
                            stdout=subprocess.PIPE, stderr=log, text=True)
    port = int(proc.stdout.readline().split()[-1])
    url = f"http://127.0.0.1:{port}"
    cred = configparser.ConfigParser()
    cred.read(os.path.join(data, "credentials"))
    key, secret = cred["default"]["aws_access_key_id"], cred["default"]["aws_secret_access_key"]

    def client(region):
        return boto3.client("ec2", region_name=region, endpoint_url=url, aws_access_key_id=key,
                            aws_secret_access_key=secret,
                            config=Config(retries={"max_attempts": 1}, read_timeout=300, max_pool_connections=4))

    st = Stats()
    created = {"instances": set(), "images": set()}
    rss = []
    t0 = time.monotonic()
    stop_at = t0 + a.seconds
    done = threading.Event()

    def sample():
        while not done.wait(5):
            try:
                with open(f"/proc/{proc.pid}/status") as f:
                    kb = next((int(l.split()[1]) for l in f if l.startswith("VmRSS:")), None)
                if kb is not None:  # None: the daemon has exited
                    rss.append((time.monotonic() - t0, kb / 1024, len(os.listdir(f"/proc/{proc.pid}/fd"))))
            except OSError:
                pass

    sampler = threading.Thread(target=sample)
    sampler.start()
    threads = [threading.Thread(target=lifecycle, args=((client("us-east-1"), client("eu-west-1")), f"c{i}",
                                                          stop_at, st, created)) for i in range(a.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0
    done.set()
    sampler.join()

    try:
        # Final states: every instance terminated, no image of ours registered, no snapshot left.
        ec2, eu = client("us-east-1"), client("eu-west-1")
        stuck = []
        ids = sorted(created["instances"])
        for k in range(0, len(ids), 100):
            for r in ec2.describe_instances(InstanceIds=ids[k:k + 100])["Reservations"]:
                stuck += [(i["InstanceId"], i["State"]["Name"]) for i in r["Instances"] if i["State"]["Name"] != "terminated"]
        left = {}
        for region, cl in (("us-east-1", ec2), ("eu-west-1", eu)):
            left[region] = {
                "images": [(i["ImageId"], i["State"]) for i in cl.describe_images(Owners=["self"])["Images"]],
                "snapshots": [(s["SnapshotId"], s["State"]) for s in cl.describe_snapshots(OwnerIds=["self"])["Snapshots"]],
                "volumes": [(v["VolumeId"], v["State"]) for v in cl.describe_volumes()["Volumes"]],
            }
    except Exception:  # the daemon died: nothing of the run may outlive the bench
        proc.kill()
        subprocess.run([a.kiln, "down", "--data", data], capture_output=True)
        raise
    proc.terminate()
    rc = proc.wait(timeout=120)
    log.close()
    verify = {}
    for store in sorted(glob.glob(os.path.join(data, "regions", "*", "store"))):
        r = subprocess.run([a.kiln, "store", "verify", store], capture_output=True, text=True)
        verify[store.split("/")[-2]] = "clean" if r.returncode == 0 else (r.stdout + r.stderr).strip()[-300:]
    subprocess.run([a.kiln, "down", "--data", data], capture_output=True)
    hs = host_state(data, cgroups0)
    new_links = sorted(links() - links0)
    new_ns = sorted(netns() - netns0)
    lat = sorted(st.lat) or [0]
    p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
    rss_line = ", ".join(f"{t:.0f}s {m:.1f}" for t, m, _ in rss[::max(1, len(rss) // 12)])
    fds_line = ", ".join(f"{t:.0f}s {n}" for t, _, n in rss[::max(1, len(rss) // 12)])
    leftover = sum(len(v) for r in left.values() for v in r.values())
    load1 = open("/proc/loadavg").read().strip()
    git = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    heading = f"## Load, {a.clients} clients (bench/load)"  # one section per client count
    text = (f"{heading}\n\nGenerated by `bench/load/load.py --clients {a.clients} --seconds {a.seconds:.0f}` on "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} (git {git}); do not edit by hand. "
            f"{a.clients} boto3 clients (no retries), each repeating RunInstances busybox → DescribeInstances → "
            f"CreateImage → RunInstances from it → CopyImage to eu-west-1 → DeregisterImage ×2 → "
            f"TerminateInstances → DeleteSnapshot ×2, waiting with boto3's waiters, for {a.seconds:.0f} s "
            f"(an iteration under way then is finished); one `kiln serve` on a new data directory. "
            f"The machine has 2 cores shared with other work (`/proc/loadavg` after: {load1}).\n\n"
            "| measure | value |\n|---|---|\n"
            f"| whole run | {elapsed:.0f} s |\n"
            f"| lifecycles completed | {st.iterations} |\n"
            f"| API calls (not counting waiters' polls) | {st.calls}; latency p50 {p(0.5):.0f} ms, p99 {p(0.99):.0f} ms |\n"
            f"| 5xx answers | {st.e5xx} |\n"
            f"| other errors | {sum(st.errors.values()) - st.e5xx}{': ' + '; '.join(f'{k} ×{v}' for k, v in sorted(st.errors.items())) if st.errors else ''} |\n"
            f"| instances not terminated at the end | {len(stuck)}{' ' + str(stuck[:5]) if stuck else ''} |\n"
            f"| images, snapshots, volumes of the account left | {leftover}{' ' + str(left)[:300] if leftover else ''} |\n"
            f"| daemon RSS, MiB (time: value) | {rss_line or '–'}; max {max((m for _, m, _ in rss), default=0):.1f} |\n"
            f"| daemon open descriptors (time: value) | {fds_line or '–'}; max {max((n for _, _, n in rss), default=0)} |\n"
            f"| daemon exit on SIGTERM | {rc} |\n"
            f"| after `kiln down`: mounts, loop devices, instance cgroups new since the start | "
            f"{len(hs['mounts'])}, {len(hs['loops'])}, {len(hs['cgroups'])}{' ' + str(hs)[:300] if any(hs.values()) else ''} |\n"
            f"| links, network namespaces new since the start | {len(new_links)}, {len(new_ns)}"
            f"{' ' + str(new_links[:8] + new_ns[:8]) if new_links or new_ns else ''} |\n"
            f"| `kiln store verify` | {', '.join(f'{k}: {v}' for k, v in verify.items())} |\n\n")
    print(text)
    if not a.no_report:
        results.splice(os.path.join(REPO, "bench", "RESULTS.md"), heading, text)
    shutil.rmtree(data, ignore_errors=True)
    ok = st.e5xx == 0 and not stuck and not leftover and not any(hs.values()) and all(v == "clean" for v in verify.values())
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
