"""Packer's amazon-ebs builder (Debian's packer 1.6.6) against kiln, with examples/packer's template:
it finds kiln-debian-12 by a source_ami_filter, makes a temporary key pair and security group,
launches a t3.micro, SSHes to its public address, uploads Debian's `hello` .deb, installs it and
writes a stamp file, stops the instance, makes the image, copies it to eu-west-1 and shares both
with a second account, which launches the copy and finds the package and the file. A build whose
provisioner fails leaves nothing behind. Packer reaches nothing but kiln: its HTTP proxy is a trap
that records any request (the endpoint on loopback is never proxied), and its log names no AWS host."""
import glob
import os
import re
import shutil
import socket
import subprocess
import threading
import time

import pytest

from conftest import KILN, client, kiln, serving

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE = os.path.join(os.path.dirname(os.path.dirname(HERE)), "examples", "packer", "debian-hello.pkr.hcl")
DEBIAN_TAR = os.environ.get("KILN_DEBIAN_IMAGE") or os.path.join(os.path.dirname(KILN), "images", "debian-12.tar")
OTHER_ID = "222233334444"
OTHER = {"AWS_ACCESS_KEY_ID": "AKIAOTHEROTHEROTHER1", "AWS_SECRET_ACCESS_KEY": "other-secret-other-secret"}

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="instances need root"),
    pytest.mark.skipif(not shutil.which("packer"),
                       reason="Debian's packer is not installed (apt-get install packer; scripts/deps.sh does)"),
    pytest.mark.skipif(not os.path.exists(DEBIAN_TAR), reason=f"no debian-12 image at {DEBIAN_TAR}"),
]


class ProxyTrap:
    """An HTTP proxy on loopback that forwards nothing: it records each request's first line and
    answers 403. Packer's HTTP_PROXY/HTTPS_PROXY point here, so any request to a host that is not
    loopback (an AWS endpoint, STS, a checkpoint server) shows up in `seen`."""

    def __init__(self):
        self.seen = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.url = "http://127.0.0.1:%d" % self.sock.getsockname()[1]
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                try:
                    self.seen.append(conn.recv(4096).split(b"\r\n")[0].decode(errors="replace"))
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError:
                    pass

    def close(self):
        self.sock.close()


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A daemon of this module's own with a second account, the hello .deb, a proxy trap."""
    work = tmp_path_factory.mktemp("packer")
    r = subprocess.run(["apt-get", "download", "hello"], cwd=work, capture_output=True, text=True, timeout=120)
    debs = glob.glob(str(work / "hello_*.deb"))
    if r.returncode != 0 or not debs:
        pytest.skip(f"apt-get download hello failed (Debian's archive unreachable): {r.stderr.strip()[-300:]}")
    data = work / "data"
    kiln("init", "--data", data)
    kiln("account", "create", "other", "--account-id", OTHER_ID, "--access-key", OTHER["AWS_ACCESS_KEY_ID"],
         "--secret-key", OTHER["AWS_SECRET_ACCESS_KEY"], "--data", data)
    daemon = serving(data)
    e = next(daemon)
    e.update(work=str(work), deb=debs[0], trap=ProxyTrap())
    yield e
    e["trap"].close()
    next(daemon, None)


def packer_build(e, name, *extra):
    """`packer build` of the example template as the default account; (returncode, output, log)."""
    import configparser
    cred = configparser.ConfigParser()
    cred.read(os.path.join(e["data"], "credentials"))
    log = os.path.join(e["work"], f"packer-{name}.log")
    full = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    full.update(AWS_ACCESS_KEY_ID=cred["default"]["aws_access_key_id"],
                AWS_SECRET_ACCESS_KEY=cred["default"]["aws_secret_access_key"],
                AWS_POLL_DELAY_SECONDS="1", AWS_MAX_ATTEMPTS="600",  # the SDK's waiters poll every 15 s
                PACKER_LOG="1", PACKER_LOG_PATH=log, PACKER_CACHE_DIR=os.path.join(e["work"], "cache"),
                HTTP_PROXY=e["trap"].url, HTTPS_PROXY=e["trap"].url, NO_PROXY="", http_proxy=e["trap"].url,
                https_proxy=e["trap"].url, no_proxy="")
    r = subprocess.run(["packer", "build", "-color=false", "-var", f"endpoint={e['url']}", "-var", f"deb={e['deb']}",
                        "-var", f"share_with={OTHER_ID}", "-var", f"ami_name={name}", *extra, TEMPLATE],
                       capture_output=True, text=True, cwd=e["work"], env=full, timeout=900)
    with open(log) as f:
        text = f.read()
    return r.returncode, r.stdout + r.stderr, text


def assert_only_kiln(e, log):
    assert e["trap"].seen == [], f"packer asked for something outside kiln: {e['trap'].seen}"
    assert "amazonaws" not in log, [line for line in log.splitlines() if "amazonaws" in line][:5]


def leftovers(e):
    """What Packer could leave behind, in both regions of the default account."""
    out = {}
    for region in ("us-east-1", "eu-west-1"):
        ec2 = client(e, region=region)
        out[region] = {
            "instances": sorted(i["InstanceId"] for r in ec2.describe_instances()["Reservations"]
                                for i in r["Instances"] if i["State"]["Name"] != "terminated"),
            "keys": sorted(k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]),
            "groups": sorted(g["GroupName"] for g in ec2.describe_security_groups()["SecurityGroups"]),
            "images": sorted(i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]),
            "snapshots": sorted(s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]),
            "volumes": sorted(v["VolumeId"] for v in ec2.describe_volumes()["Volumes"]),
        }
    return out


def test_packer_builds_copies_and_shares_an_image(env):
    before = leftovers(env)
    t0 = time.monotonic()
    rc, out, log = packer_build(env, "debian-12-hello")
    took = time.monotonic() - t0
    assert rc == 0, out[-4000:]
    assert "Build 'amazon-ebs.kiln' finished" in out, out[-2000:]
    amis = dict(re.findall(r"^(us-east-1|eu-west-1): (ami-[0-9a-f]+)$", out, re.M))
    assert set(amis) == {"us-east-1", "eu-west-1"}, out[-2000:]
    print(f"packer build: {took:.0f} s")
    assert_only_kiln(env, log)
    assert "Hello, world!" in out

    # Packer's temporary key pair, security group and instance are gone; its images and their
    # snapshots are all it left, in both regions
    after = leftovers(env)
    for region, ami in amis.items():
        ec2 = client(env, region=region)
        img = ec2.describe_images(ImageIds=[ami])["Images"][0]
        assert img["State"] == "available" and img["Name"] == "debian-12-hello"
        snaps = {m["Ebs"]["SnapshotId"] for m in img["BlockDeviceMappings"] if "Ebs" in m}
        assert ec2.describe_image_attribute(ImageId=ami, Attribute="launchPermission")["LaunchPermissions"] == [
            {"UserId": OTHER_ID}]
        assert after[region]["images"] == sorted(set(before[region]["images"]) | {ami})
        assert set(after[region]["snapshots"]) == set(before[region]["snapshots"]) | snaps
        for what in ("instances", "keys", "groups", "volumes"):
            assert after[region][what] == before[region][what], (region, what)

    # the other account launches the copy in eu-west-1 and finds the package and the file
    other = client(env, region="eu-west-1", key=OTHER["AWS_ACCESS_KEY_ID"], secret=OTHER["AWS_SECRET_ACCESS_KEY"])
    assert [i["ImageId"] for i in other.describe_images(ExecutableUsers=["self"])["Images"]] == [amis["eu-west-1"]]
    iid = other.run_instances(ImageId=amis["eu-west-1"], InstanceType="t3.micro", MinCount=1,
                              MaxCount=1)["Instances"][0]["InstanceId"]
    other.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    full = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    full.update(OTHER, AWS_REGION="eu-west-1", KILN_ENDPOINT=env["url"], KILN_DATA=env["data"])
    script = "dpkg -s hello | grep -x 'Status: install ok installed' && hello && cat /etc/kiln-packer-stamp"
    deadline = time.monotonic() + 60
    while True:
        r = subprocess.run([KILN, "exec", iid, "--", "sh", "-c", script], capture_output=True, text=True,
                           env=full, timeout=60)
        if r.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines() == ["Status: install ok installed", "Hello, world!", "built by packer on kiln"]
    other.terminate_instances(InstanceIds=[iid])
    other.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def test_a_failed_build_leaves_nothing(env):
    before = leftovers(env)
    rc, out, log = packer_build(env, "debian-12-fails", "-var", "stamp_exit=1")
    assert rc == 1, out[-4000:]
    assert "Build 'amazon-ebs.kiln' errored" in out and "non-zero exit status: 1" in out, out[-2000:]
    assert "Terminating the source AWS instance" in out and "Deleting temporary keypair" in out
    assert_only_kiln(env, log)
    assert leftovers(env) == before
    ec2 = client(env)
    assert ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": ["debian-12-fails"]}])[
        "Images"] == []
