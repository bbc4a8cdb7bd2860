"""Regions as separate deployments: two "hosts" (network namespaces joined by a veth pair, each
with its own `kiln serve --region` and data directory) share a regions file. An image made in
us-east-1 on host A is copied by an account of host B into eu-west-1 with the aws CLI against B,
only after A's owner shares it (A checks), and an instance launched from the copy on B has the
file baked in on A. Needs root; cleans namespaces, links and daemons up even on failure."""
import json
import os
import secrets
import shutil
import subprocess
import time

import pytest

from conftest import AWS, KILN, kiln, need_root, wait_for

PORT = 8773
BOB_ID = "555566667777"
BOB_KEY = "AKIABOBBOBBOBBOBBOB1"
BOB_SECRET = "bob-secret-bob-secret-bob-secret"


def sh(*args, check=True):
    r = subprocess.run(list(map(str, args)), capture_output=True, text=True)
    if check and r.returncode:
        raise AssertionError(f"{' '.join(map(str, args))} failed: {r.stderr}")
    return r


class Host:
    """A data directory served by its own daemon inside its own network namespace."""

    def __init__(self, root, name, region, addr):
        self.ns, self.region, self.addr = name, region, addr
        self.data = root / name
        self.url = f"http://{addr}:{PORT}"
        self.proc = None
        self.log = root / f"{name}.log"

    def run(self, *args, **kw):
        return sh("nsenter", f"--net=/run/netns/{self.ns}", *args, **kw)

    def serve(self, regions_file, fault=None):
        self.regions_file = regions_file
        self.logf = open(self.log, "a")
        env = dict(os.environ)
        env.pop("KILN_FAULT", None)
        if fault:
            env["KILN_FAULT"] = fault
        self.proc = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.ns}", KILN, "serve", "--data", str(self.data),
             "--listen", f"{self.addr}:{PORT}", "--region", self.region, "--regions",
             str(regions_file)], stdout=subprocess.PIPE, stderr=self.logf, text=True, env=env)
        line = self.proc.stdout.readline()
        assert "serving" in line, self.log.read_text()[-4000:]

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        if self.data.exists():
            self.run(KILN, "down", "--data", self.data, check=False)

    def creds(self, profile="default"):
        import configparser
        c = configparser.ConfigParser()
        c.read(self.data / "credentials")
        return c[profile]["aws_access_key_id"], c[profile]["aws_secret_access_key"]

    def aws(self, *args, key=None, region=None, check=True):
        """The aws CLI inside this host's namespace, against this host's endpoint."""
        k, s = key or self.creds()
        env = dict(os.environ, AWS_ACCESS_KEY_ID=k, AWS_SECRET_ACCESS_KEY=s, AWS_PAGER="",
                   AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
        r = subprocess.run(["nsenter", f"--net=/run/netns/{self.ns}", AWS, "--endpoint-url",
                            self.url, "--region", region or self.region, "--output", "json",
                            *map(str, args)], capture_output=True, text=True, env=env)
        if check and r.returncode:
            raise AssertionError(f"aws {' '.join(map(str, args))} on {self.ns}: {r.stderr}")
        return json.loads(r.stdout) if r.returncode == 0 and r.stdout.strip() else r


@pytest.fixture
def hosts(tmp_path, request):
    need_root()
    if not shutil.which("nsenter") or not shutil.which("ip") or not os.path.exists(AWS):
        pytest.skip("needs nsenter, ip and the aws CLI")
    tag = f"{os.getpid() % 10000}"
    net = 1 + os.getpid() % 250
    params = getattr(request, "param", {})
    a = Host(tmp_path, f"kra{tag}", "us-east-1", f"10.250.{net}.1")
    b = Host(tmp_path, f"krb{tag}", "eu-west-1", f"10.250.{net}.2")
    made = []
    try:
        for h in (a, b):
            sh("ip", "netns", "add", h.ns)
            made.append(h.ns)
            h.run("ip", "link", "set", "lo", "up")
        sh("ip", "link", "add", f"ve{a.ns}", "netns", a.ns, "type", "veth", "peer", "name",
           f"ve{b.ns}", "netns", b.ns)
        for h in (a, b):
            h.run("ip", "addr", "add", f"{h.addr}/30", "dev", f"ve{h.ns}")
            h.run("ip", "link", "set", f"ve{h.ns}", "up")
        regions = tmp_path / "regions"
        # ap-south-1: a deployment that does not answer (nothing listens there)
        regions.write_text(f"# the two deployments\nregion us-east-1 {a.url}\n"
                           f"region eu-west-1 {b.url}\n"
                           f"region ap-south-1 http://{a.addr}:{PORT + 1}\n"
                           f"internal-key {secrets.token_hex(32)}\n")
        regions.chmod(0o600)
        for h in (a, b):
            topo = tmp_path / f"{h.ns}.topology"
            topo.write_text(f"{h.region} a\n")
            extra = []
            if params.get(f"{h.ns[:3]}-busybox-only"):  # no debian-12 to share chunks with
                imgs = tmp_path / f"{h.ns}.images"
                imgs.mkdir()
                (imgs / "busybox.tar").symlink_to(
                    os.path.join(os.path.dirname(KILN), "images", "busybox.tar"))
                extra = ["--images", imgs]
            kiln("init", "--data", h.data, "--topology", topo, *extra)
        for h in (a, b):  # bob has an account in both deployments
            kiln("account", "create", "bob", "--account-id", BOB_ID, "--access-key", BOB_KEY,
                 "--secret-key", BOB_SECRET, "--data", h.data)
        for h in (a, b):
            h.serve(regions, fault=params.get(h.ns[:3]))
        yield a, b
    finally:
        for h in (a, b):
            try:
                h.stop()
            except Exception as e:  # noqa: BLE001 - clean the rest up whatever happened
                print("cleanup:", e)
        for ns in made:
            sh("ip", "netns", "del", ns, check=False)
        for h in (a, b):
            if h.log.exists():
                print(f"--- {h.ns} log (tail)\n{h.log.read_text()[-3000:]}")


def regions_key(h):
    text = (h.data.parent / "regions").read_text()
    return next(line.split()[1] for line in text.splitlines() if line.startswith("internal-key"))


SIGNED_CALL = """
import sys, urllib.request
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
url, region, service, key, secret, body = sys.argv[1:]
req = AWSRequest(method="POST", url=url, data=body,
                 headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
SigV4Auth(Credentials(key, secret), service, region).add_auth(req)
try:
    with urllib.request.urlopen(urllib.request.Request(url, data=body.encode(),
                                headers=dict(req.headers.items()), method="POST")) as r:
        print(r.status, r.read()[:200])
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode())
"""


def signed_call(h, service, key, secret, body):
    """A request signed by hand (botocore's SigV4) from inside h's namespace: status, body."""
    out = h.run("/usr/bin/python3", "-c", SIGNED_CALL, h.url, h.region, service, key, secret,
                body).stdout
    status, _, rest = out.partition(" ")
    return int(status), rest


def image_state(h, image, key=None):
    imgs = h.aws("ec2", "describe-images", "--image-ids", image, key=key)["Images"]
    return imgs[0]["State"] if imgs else None


def test_copy_between_deployments(hosts, tmp_path):
    a, b = hosts
    bob = (BOB_KEY, BOB_SECRET)

    # DescribeRegions on B: both regions, each with its own deployment's endpoint.
    regions = {r["RegionName"]: r["Endpoint"]
               for r in b.aws("ec2", "describe-regions", key=bob)["Regions"]}
    assert regions == {"us-east-1": f"{a.addr}:{PORT}", "eu-west-1": f"{b.addr}:{PORT}",
                       "ap-south-1": f"{a.addr}:{PORT + 1}"}
    # A request for the region served elsewhere is refused, naming where it is served.
    r = b.aws("ec2", "describe-images", "--owners", "self", key=bob, region="us-east-1",
              check=False)
    assert r.returncode != 0 and "AuthFailure" in r.stderr and a.url in r.stderr, r.stderr

    # The deployments' key signs their calls to each other only, and only it signs them.
    peer_key = regions_key(b)
    status, body = signed_call(a, "ec2", "KILNPEERDEPLOYMENT00", peer_key,
                               "Action=DescribeImages&Version=2016-11-15")
    assert status == 403 and "AuthFailure" in body, body
    status, body = signed_call(a, "kiln-peer", BOB_KEY, BOB_SECRET,
                               "Action=DescribeCopySource&Account=555566667777&ImageId=ami-1")
    assert status in (401, 403), body
    status, body = signed_call(a, "kiln-peer", "KILNPEERDEPLOYMENT00", "x" * 64,
                               "Action=DescribeCopySource&Account=555566667777&ImageId=ami-1")
    assert status == 403 and "SignatureDoesNotMatch" in body, body

    # On A: a busybox instance writes a file; its image is the source.
    base = a.aws("ec2", "describe-images", "--owners", "amazon", "--filters",
                 "Name=name,Values=kiln-busybox")["Images"][0]["ImageId"]
    user_data = tmp_path / "bake.sh"
    user_data.write_text("#!/bin/sh\necho baked-on-host-a > /etc/kiln-baked\n")
    inst = a.aws("ec2", "run-instances", "--image-id", base, "--instance-type", "t3.micro",
                 "--count", "1", "--user-data", f"file://{user_data}")["Instances"][0]["InstanceId"]
    console = a.data / "run" / inst / "console.log"
    wait_for(lambda: console.exists() and "user-data exited" in console.read_text(),
             "the user data on A")
    a.aws("ec2", "stop-instances", "--instance-ids", inst)
    wait_for(lambda: a.aws("ec2", "describe-instances", "--instance-ids", inst)
             ["Reservations"][0]["Instances"][0]["State"]["Name"] == "stopped", "the stop on A")
    src = a.aws("ec2", "create-image", "--instance-id", inst, "--name", "baked")["ImageId"]
    wait_for(lambda: image_state(a, src) == "available", "the image on A")
    a.aws("ec2", "terminate-instances", "--instance-ids", inst)

    # Not shared with bob yet: A refuses the copy for bob's account.
    r = b.aws("ec2", "copy-image", "--source-region", "us-east-1", "--source-image-id", src,
              "--name", "copy", key=bob, check=False)
    assert r.returncode != 0 and "InvalidAMIID.NotFound" in r.stderr, r.stderr
    a.aws("ec2", "modify-image-attribute", "--image-id", src, "--launch-permission",
          f"Add=[{{UserId={BOB_ID}}}]")

    # The copy, asked of B; B pulls the chunks from A.
    copy = b.aws("ec2", "copy-image", "--source-region", "us-east-1", "--source-image-id", src,
                 "--name", "copy", key=bob)["ImageId"]
    wait_for(lambda: image_state(b, copy, key=bob) in ("available", "failed"), "the copy on B")
    img = b.aws("ec2", "describe-images", "--image-ids", copy, key=bob)["Images"][0]
    assert img["State"] == "available", img
    assert img["OwnerId"] == BOB_ID

    # An instance of the copy on B has A's file.
    inst_b = b.aws("ec2", "run-instances", "--image-id", copy, "--instance-type", "t3.micro",
                   "--count", "1", key=bob)["Instances"][0]["InstanceId"]
    wait_for(lambda: b.aws("ec2", "describe-instances", "--instance-ids", inst_b, key=bob)
             ["Reservations"][0]["Instances"][0]["State"]["Name"] == "running", "the launch on B")
    with open(b.data / "credentials", "a") as f:
        f.write(f"[bob]\naws_access_key_id = {BOB_KEY}\naws_secret_access_key = {BOB_SECRET}\n")
    out = kiln("exec", "--data", b.data, "--profile", "bob", "--region", "eu-west-1", inst_b,
               "--", "cat", "/etc/kiln-baked").stdout
    assert out.strip() == "baked-on-host-a"

    # CopySnapshot of the image's snapshot: refused until A's owner shares the snapshot.
    snap = a.aws("ec2", "describe-images", "--image-ids", src)["Images"][0][
        "BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    r = b.aws("ec2", "copy-snapshot", "--source-region", "us-east-1", "--source-snapshot-id",
              snap, key=bob, check=False)
    assert r.returncode != 0 and "NotFound" in r.stderr, r.stderr
    a.aws("ec2", "modify-snapshot-attribute", "--snapshot-id", snap, "--attribute",
          "createVolumePermission", "--operation-type", "add", "--user-ids", BOB_ID)
    snap_b = b.aws("ec2", "copy-snapshot", "--source-region", "us-east-1",
                   "--source-snapshot-id", snap, key=bob)["SnapshotId"]
    wait_for(lambda: b.aws("ec2", "describe-snapshots", "--snapshot-ids", snap_b, key=bob)
             ["Snapshots"][0]["State"] in ("completed", "error"), "the snapshot copy on B")
    assert b.aws("ec2", "describe-snapshots", "--snapshot-ids", snap_b, key=bob)[
        "Snapshots"][0]["State"] == "completed"
    b.aws("ec2", "terminate-instances", "--instance-ids", inst_b, key=bob)
    # B's store is sound.
    kiln("store", "verify", b.data / "regions" / "eu-west-1" / "store")


# A's local copies stop 40 s before they commit: an image of A stays pending that long.
@pytest.mark.parametrize("hosts", [{"kra": "copy.commit@40000"}], indirect=True)
def test_source_errors_carried(hosts):
    """The source's refusal reaches the destination's caller as the error itself (its kind and
    subject, carried structured, mapped by the destination's table), and a source that does
    not answer is named with its endpoint."""
    a, b = hosts
    bob = (BOB_KEY, BOB_SECRET)
    base = a.aws("ec2", "describe-images", "--owners", "amazon", "--filters",
                 "Name=name,Values=kiln-busybox", key=bob)["Images"][0]["ImageId"]
    pending = a.aws("ec2", "copy-image", "--source-region", "us-east-1", "--source-image-id",
                    base, "--name", "slow", key=bob)["ImageId"]
    assert image_state(a, pending, key=bob) == "pending"
    # Bob's own image on A, pending there: the same refusal a copy within A has.
    r = b.aws("ec2", "copy-image", "--source-region", "us-east-1", "--source-image-id", pending,
              "--name", "copy", key=bob, check=False)
    assert r.returncode != 0 and "(IncorrectState)" in r.stderr, r.stderr
    assert "pending" in r.stderr and pending in r.stderr, r.stderr
    # An image A does not have: A's NotFound, with EC2's wording for the id.
    r = b.aws("ec2", "copy-image", "--source-region", "us-east-1", "--source-image-id",
              "ami-0123456789abcdef0", "--name", "copy", key=bob, check=False)
    assert r.returncode != 0 and "(InvalidAMIID.NotFound)" in r.stderr, r.stderr
    assert "ami-0123456789abcdef0" in r.stderr, r.stderr
    r = b.aws("ec2", "copy-snapshot", "--source-region", "us-east-1", "--source-snapshot-id",
              "snap-0123456789abcdef0", key=bob, check=False)
    assert r.returncode != 0 and "(InvalidSnapshot.NotFound)" in r.stderr, r.stderr
    # A deployment that does not answer: its region and endpoint are named.
    r = b.aws("ec2", "copy-image", "--source-region", "ap-south-1", "--source-image-id", base,
              "--name", "copy", key=bob, check=False)
    assert r.returncode != 0 and "ap-south-1" in r.stderr, r.stderr
    assert f"http://{a.addr}:{PORT + 1}" in r.stderr, r.stderr


@pytest.mark.skipif(not os.environ.get("KILN_BENCH"), reason="a measurement: KILN_BENCH=1")
@pytest.mark.parametrize("hosts", [{"krb-busybox-only": True}], indirect=True)
def test_bench_copy_debian(hosts):
    """The time of a copy of kiln-debian-12 (about 1 GiB) from A's deployment to B's (B has no
    debian-12 of its own, so every chunk moves); printed for bench/RESULTS.md."""
    a, b = hosts
    bob = (BOB_KEY, BOB_SECRET)
    base = a.aws("ec2", "describe-images", "--owners", "amazon", "--filters",
                 "Name=name,Values=kiln-debian-12", key=bob)["Images"][0]["ImageId"]
    for name, h, region in (("peer", b, "us-east-1"),):
        t = time.time()
        copy = h.aws("ec2", "copy-image", "--source-region", region, "--source-image-id", base,
                     "--name", f"bench-{name}", key=bob)["ImageId"]
        wait_for(lambda: image_state(h, copy, key=bob) in ("available", "failed"), "the copy",
                 timeout=900)
        assert image_state(h, copy, key=bob) == "available"
        print(f"\nBENCH {name} copy of kiln-debian-12: {time.time() - t:.1f} s")


# B dies by SIGKILL (KILN_FAULT) right after it indexes the first pack (64 MiB) of the copy.
@pytest.mark.parametrize("hosts", [{"krb-busybox-only": True, "krb": "index.renamed"}],
                         indirect=True)
def test_copy_resumes_after_kill(hosts):
    """B killed (SIGKILL) in the middle of a copy from A and started again: the pending copy
    resumes, asks A only for the chunks B did not keep (its bytes sent fall short of the
    image's), completes, and B's store verifies clean."""
    import sqlite3
    a, b = hosts
    bob = (BOB_KEY, BOB_SECRET)
    base = a.aws("ec2", "describe-images", "--owners", "amazon", "--filters",
                 "Name=name,Values=kiln-debian-12", key=bob)["Images"][0]["ImageId"]
    copy = b.aws("ec2", "copy-image", "--source-region", "us-east-1", "--source-image-id", base,
                 "--name", "resumed", key=bob)["ImageId"]

    # B's first pack of the copy sealed and indexed, B is killed (SIGKILL, as kill -9 does).
    b.proc.wait(timeout=600)
    assert b.proc.returncode == -9, b.proc.returncode
    b.proc = None
    b.serve(b.regions_file)
    wait_for(lambda: image_state(b, copy, key=bob) in ("available", "failed"), "the resumed copy",
             timeout=900)
    assert image_state(b, copy, key=bob) == "available"
    snap = b.aws("ec2", "describe-images", "--image-ids", copy, key=bob)["Images"][0][
        "BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    db = sqlite3.connect(b.data / "kiln.db")
    sent = db.execute("SELECT bytes_sent FROM snapshots WHERE id = ?", (snap,)).fetchone()[0]
    db.close()
    # Only the rest came after the restart: well short of all A holds (debian-12, most of it).
    stored = json.loads(kiln("store", "stats", a.data / "regions" / "us-east-1" / "store",
                             "--json").stdout)["total"]["stored_bytes"]
    print(f"\nresumed copy: {sent} of A's {stored} bytes after the restart")
    assert 0 < sent < 0.5 * stored, (sent, stored)
    kiln("store", "verify", b.data / "regions" / "eu-west-1" / "store")
