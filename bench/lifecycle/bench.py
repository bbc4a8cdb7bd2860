"""bench/lifecycle: the image workflow's own numbers on a real `kiln serve`.

- CreateImage of a running debian-12 instance with a 2 GiB root of which about 1% (20 MiB)
  changed since launch: time from the call to `available` (and with NoReboot);
- RunInstances from the baked image to `running`;
- CopyImage to eu-west-1: time and bytes moved, for the first copy and for a derived image
  (1% more changed), against the compressed size of the derived snapshot's new chunks;
- launch-and-configure from the base image (user data installs busybox with apt-get and serves a
  page) against launch from the baked image, both to the page answering.

Run as root: bench/lifecycle/run.sh. Medians of RUNS runs; writes its section of bench/RESULTS.md."""
import configparser
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import boto3
from botocore.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from results import splice, verdict  # noqa: E402

KILN = os.environ.get("KILN", os.path.join(ROOT, "build", "kiln"))
RUNS = int(os.environ.get("RUNS", "3"))
RESULTS_MD = os.environ.get("RESULTS_MD", os.path.join(ROOT, "bench", "RESULTS.md"))
CONFIGURE = """#!/bin/sh
set -e
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
apt-get install -y -q --no-install-recommends busybox >/dev/null
mkdir -p /var/www /etc/kiln/rc.d
echo '<h1>kiln</h1>' > /var/www/index.html
printf '#!/bin/sh\\nbusybox httpd -p 80 -h /var/www\\n' > /etc/kiln/rc.d/50-web
chmod +x /etc/kiln/rc.d/50-web
/etc/kiln/rc.d/50-web
"""


def poll(fn, seconds=300, every=0.005):
    end = time.time() + seconds
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(every)
    raise SystemExit("bench/lifecycle: timed out")


def state(ec2, iid):
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]


def image_state(ec2, ami):
    return ec2.describe_images(ImageIds=[ami])["Images"][0]["State"]


def ip(ec2, iid):
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["PublicIpAddress"]


def page(addr):
    try:
        return b"kiln" in urllib.request.urlopen(f"http://{addr}/", timeout=0.5).read()
    except Exception:
        return False


def store_stats(data, region):
    out = subprocess.run([KILN, "store", "stats", os.path.join(data, "regions", region, "store"), "--json"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def exec_in(data, iid, script):
    subprocess.run([KILN, "runtime", "exec", os.path.join(data, "run"), iid, "--", "sh", "-c", script], check=True,
                   stdout=subprocess.DEVNULL)


def change_1pct(data, iid, n):
    # about 1% of 2 GiB: 20 MiB of new data in a few hundred files, synced
    exec_in(data, iid, f"mkdir -p /root/c{n} && for i in $(seq 200); do head -c 104857 /dev/urandom > /root/c{n}/f$i; "
                       "done; sync")


def main():
    if os.geteuid() != 0:
        raise SystemExit("bench/lifecycle: run as root")
    work = tempfile.mkdtemp(prefix="kiln-bench-lifecycle.", dir="/var/tmp")
    data = os.path.join(work, "data")
    subprocess.run([KILN, "init", "--data", data], check=True, stdout=subprocess.DEVNULL)
    cred = configparser.ConfigParser()
    cred.read(os.path.join(data, "credentials"))
    key, secret = cred["default"]["aws_access_key_id"], cred["default"]["aws_secret_access_key"]
    srv = subprocess.Popen([KILN, "serve", "--data", data, "--listen", "127.0.0.1:0"], stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    url = "http://127.0.0.1:%d" % int(srv.stdout.readline().split()[-1])
    mk = lambda region: boto3.client("ec2", region_name=region, endpoint_url=url, aws_access_key_id=key,  # noqa
                                     aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))
    ec2, eu = mk("us-east-1"), mk("eu-west-1")
    res = {k: [] for k in ("create", "create_noreboot", "run", "configure", "baked", "copy1_s", "copy1_b",
                           "copy2_s", "copy2_b", "new2_b")}
    try:
        base = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-debian-12"]}])
        base = base["Images"][0]["ImageId"]
        bdm = [{"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 2}}]
        # the page, from the host: port 80 open in the default security group, as on EC2
        ec2.authorize_security_group_ingress(GroupName="default", IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
        for run in range(RUNS):
            # launch and configure from the base image, to the page
            t0 = time.time()
            iid = ec2.run_instances(ImageId=base, InstanceType="t3.small", MinCount=1, MaxCount=1, UserData=CONFIGURE,
                                    BlockDeviceMappings=bdm,
                                    Placement={"AvailabilityZone": "us-east-1a"})["Instances"][0]["InstanceId"]
            poll(lambda: state(ec2, iid) == "running")
            addr = ip(ec2, iid)
            poll(lambda: page(addr), every=0.02)
            res["configure"].append(time.time() - t0)
            change_1pct(data, iid, 1)
            # CreateImage of the running instance (stopped and started again), to available
            t0 = time.time()
            ami = ec2.create_image(InstanceId=iid, Name=f"bench-{run}-a")["ImageId"]
            poll(lambda: image_state(ec2, ami) == "available")
            res["create"].append(time.time() - t0)
            poll(lambda: state(ec2, iid) == "running")
            change_1pct(data, iid, 2)
            t0 = time.time()
            ami_nr = ec2.create_image(InstanceId=iid, Name=f"bench-{run}-b", NoReboot=True)["ImageId"]
            poll(lambda: image_state(ec2, ami_nr) == "available")
            res["create_noreboot"].append(time.time() - t0)
            # RunInstances from the baked image: to running, and to the page
            t0 = time.time()
            i2 = ec2.run_instances(ImageId=ami, InstanceType="t3.small", MinCount=1, MaxCount=1,
                                   Placement={"AvailabilityZone": "us-east-1b"})["Instances"][0]["InstanceId"]
            poll(lambda: state(ec2, i2) == "running", every=0.002)
            res["run"].append(time.time() - t0)
            a2 = ip(ec2, i2)
            poll(lambda: page(a2), every=0.02)
            res["baked"].append(time.time() - t0)
            # CopyImage: the first copy, then the derived image (1% more changed)
            for name, src, key_s, key_b in ((f"bench-{run}-a", ami, "copy1_s", "copy1_b"),
                                            (f"bench-{run}-b", ami_nr, "copy2_s", "copy2_b")):
                before = store_stats(data, "eu-west-1")["total"]["pack_bytes"]
                t0 = time.time()
                c = eu.copy_image(SourceRegion="us-east-1", SourceImageId=src, Name=name)["ImageId"]
                poll(lambda: image_state(eu, c) == "available")
                res[key_s].append(time.time() - t0)
                res[key_b].append(store_stats(data, "eu-west-1")["total"]["pack_bytes"] - before)
            snap = ec2.describe_images(ImageIds=[ami_nr])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
            per = {s["id"]: s for s in store_stats(data, "us-east-1")["snapshots"]}
            res["new2_b"].append(per[snap]["new_bytes"])
            ec2.terminate_instances(InstanceIds=[iid, i2])
            poll(lambda: state(ec2, i2) == "terminated" and state(ec2, iid) == "terminated")
            print(f"bench/lifecycle: run {run + 1}: " + ", ".join(f"{k} {v[-1]:.3f}" if v[-1] < 1e5 else f"{k} {v[-1]}"
                                                                    for k, v in res.items()), flush=True)
    finally:
        srv.terminate()
        srv.wait(timeout=60)
        subprocess.run([KILN, "down", "--data", data], stdout=subprocess.DEVNULL)
        subprocess.run(["rm", "-rf", work])
    report(res)


def report(res):
    med = {k: statistics.median(v) for k, v in res.items()}
    ms = lambda s: f"{s * 1000:.0f} ms"  # noqa: E731
    ratio2 = med["copy2_b"] / med["new2_b"] if med["new2_b"] else None
    lines = [
        "## Image lifecycle (bench/lifecycle)\n", "\n",
        f"A debian-12 instance with a 2 GiB root (t3.small) on `kiln serve`, driven with boto3; medians of {RUNS} runs "
        "on this 2-core machine. \"1% changed\": 20 MiB of new random data in 200 files, synced.\n", "\n",
        "| measure | median | target |\n", "|---|---|---|\n",
        f"| CreateImage of the running instance (stopped, copied, started again), 1% changed, to `available` | "
        f"{ms(med['create'])} | ≤ 1 s: {verdict(med['create'] <= 1.0)} |\n",
        f"| CreateImage with NoReboot (root frozen for the copy), 1% more changed, to `available` | "
        f"{ms(med['create_noreboot'])} | – |\n",
        f"| RunInstances from the baked image to `running` (polled every 2 ms) | {ms(med['run'])} | ≤ 150 ms: "
        f"{verdict(med['run'] <= 0.150)} |\n",
        f"| CopyImage to eu-west-1, first copy: time, bytes moved | {ms(med['copy1_s'])}, "
        f"{med['copy1_b'] / 2**20:.1f} MiB | – |\n",
        f"| CopyImage of the derived image: time, bytes moved | {ms(med['copy2_s'])}, {med['copy2_b'] / 2**20:.1f} MiB | – |\n",
        f"| derived copy's bytes / compressed size of its new chunks ({med['new2_b'] / 2**20:.1f} MiB) | "
        f"{ratio2:.3f}x | ≤ 1.05x: {verdict(ratio2 is not None and ratio2 <= 1.05)} |\n",
        f"| launch + configure from the base image (apt-get install, page served) | {ms(med['configure'])} | – |\n",
        f"| launch from the baked image (page served) | {ms(med['baked'])} | – |\n",
        "\n",
        f"The baked image saves {med['configure'] - med['baked']:.2f} s per machine here "
        f"({med['configure'] / med['baked']:.1f}x). The first copy moves only what eu-west-1's store lacks: "
        "the base image is there already (kiln init imports it in every region), so the copy carries the "
        "configuration and the changed data, not the 1 GiB system.\n", "\n"]
    text = "".join(lines)
    if os.environ.get("NO_REPORT") == "1":
        print(text)
    else:
        splice(RESULTS_MD, lines[0].rstrip(), text)
        print(text)


if __name__ == "__main__":
    main()
