"""A region whose block store is in object storage: the topology's `store REGION s3://...` line
puts us-east-1's store on a one-node Ceph RGW (skipped with the reason where Ceph cannot
start); eu-west-1 keeps its directory. The image workflow runs on it (busybox writes a file,
CreateImage stores it in S3, launches from the image have the file, CopyImage to the directory
region and back, DeleteSnapshot), and the daemon's own count of what it asked of S3 (its
"store io" log lines) shows that a second launch of the image in a zone fetches nothing and that
a restore of it once the zone's base is gone takes every chunk from the host's chunk cache."""
import os
import re
import subprocess

import pytest

from conftest import KILN, client, kiln, need_root, s3_client, s3_url, wait_for

IO_LINE = re.compile(r"store io \((?P<what>[^)]*)\): (?P<req>\d+) requests, (?P<gets>\d+) GETs "
                     r"of (?P<inb>\d+) bytes, (?P<puts>\d+) PUTs of (?P<outb>\d+) bytes, "
                     r"(?P<hits>\d+) chunks from the host's cache; since start: "
                     r"(?P<total>\d+) requests")


def io_lines(log):
    return [m.groupdict() | {"line": line} for line in log.read_text().splitlines()
            for m in [IO_LINE.search(line)] if m]


def s3_keys(ceph, prefix):
    c = s3_client(ceph)
    return {o["Key"][len(prefix) + 1:]
            for page in c.get_paginator("list_objects_v2").paginate(Bucket="kiln-tests",
                                                                      Prefix=prefix + "/")
            for o in page.get("Contents", [])}


@pytest.fixture(scope="module")
def region(ceph, tmp_path_factory):
    """A data directory whose us-east-1 store is on Ceph, served with its log in a file."""
    need_root()
    root = tmp_path_factory.mktemp("s3region")
    prefix = "r" + os.urandom(6).hex()
    url = s3_url(ceph, prefix)
    topo = root / "topology"
    topo.write_text(f"us-east-1 a b\neu-west-1 a\nstore us-east-1 {url}\n")
    imgs = root / "images"
    imgs.mkdir()
    (imgs / "busybox.tar").symlink_to(os.path.join(os.path.dirname(KILN), "images",
                                                   "busybox.tar"))
    data = root / "data"
    kiln("init", "--data", data, "--topology", topo, "--images", imgs)
    log = root / "daemon.log"
    logf = open(log, "w")
    proc = subprocess.Popen([KILN, "serve", "--data", str(data), "--listen", "127.0.0.1:0",
                             "--gc-interval", "2"],
                            stdout=subprocess.PIPE, stderr=logf, text=True,
                            env=dict(os.environ, KILN_LOG_LEVEL="info"))
    line = proc.stdout.readline()
    assert "serving" in line, log.read_text()[-4000:]
    srv = {"url": f"http://127.0.0.1:{int(line.split()[-1])}", "data": str(data), "log": log,
           "prefix": prefix, "store": url}
    try:
        yield srv
    finally:
        proc.terminate()
        rc = proc.wait(timeout=60)
        down = kiln("down", "--data", data, check=False)
        logf.close()
        print(f"--- daemon log (tail)\n{log.read_text()[-3000:]}")
        assert rc == 0, f"kiln serve ended with {rc}"
        assert down.returncode == 0, down.stderr


def state(ec2, iid):
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0][
        "State"]["Name"]


def image_state(ec2, ami):
    imgs = ec2.describe_images(ImageIds=[ami])["Images"]
    return imgs[0]["State"] if imgs else None


def launch(srv, ec2, ami, zone, region="us-east-1"):
    iid = ec2.run_instances(ImageId=ami, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                            Placement={"AvailabilityZone": zone})["Instances"][0]["InstanceId"]
    wait_for(lambda: state(ec2, iid) == "running", f"{iid} running")
    # kiln's own keys from the data directory, not the S3 ones in the environment
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    r = subprocess.run([KILN, "exec", "--data", srv["data"], "--region", region, iid, "--", "cat",
                        "/etc/kiln-baked"], capture_output=True, text=True, env=env, timeout=120)
    assert r.stdout.strip() == "baked-before-the-image", (r.stdout, r.stderr)
    return iid


def test_init_put_the_region_store_in_s3(ceph, region):
    keys = s3_keys(ceph, region["prefix"])
    assert "KILNSTORE" in keys, keys
    assert any(k.startswith("snaps/snap-") for k in keys), keys  # the public busybox image
    assert any(k.startswith("packs/") for k in keys), keys
    # The data directory has no store of its own for that region; eu-west-1 keeps its directory.
    assert not os.path.exists(os.path.join(region["data"], "regions", "us-east-1", "store"))
    assert os.path.exists(os.path.join(region["data"], "regions", "eu-west-1", "store",
                                       "KILNSTORE"))


def test_image_workflow_on_s3(ceph, region, tmp_path):
    ec2 = client(region)
    base = ec2.describe_images(Owners=["amazon"], Filters=[
        {"Name": "name", "Values": ["kiln-busybox"]}])["Images"][0]["ImageId"]
    user_data = "#!/bin/sh\necho baked-before-the-image > /etc/kiln-baked\n"
    inst = ec2.run_instances(ImageId=base, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                             UserData=user_data, Placement={"AvailabilityZone": "us-east-1a"})[
        "Instances"][0]["InstanceId"]
    console = os.path.join(region["data"], "run", inst, "console.log")
    wait_for(lambda: os.path.exists(console) and "user-data exited" in open(console).read(),
             "the user data")
    ec2.stop_instances(InstanceIds=[inst])
    wait_for(lambda: state(ec2, inst) == "stopped", "the stop")
    ami = ec2.create_image(InstanceId=inst, Name="baked-on-s3")["ImageId"]
    wait_for(lambda: image_state(ec2, ami) in ("available", "failed"), "the image", 300)
    img = ec2.describe_images(ImageIds=[ami])["Images"][0]
    assert img["State"] == "available", img
    snap = img["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    ec2.terminate_instances(InstanceIds=[inst])
    # The snapshot went to S3: its manifest is an object, and the daemon counted its PUTs.
    assert f"snaps/{snap}" in s3_keys(ceph, region["prefix"])
    stored = [l for l in io_lines(region["log"]) if l["what"] == snap]
    assert stored and int(stored[0]["puts"]) > 0, stored

    # The image's pre-warm restores it into zone b from S3: chunks come in by GETs.
    pool_b = os.path.join(region["data"], "regions", "us-east-1", "pools", "us-east-1b")
    restore_b = f"restore {snap} into zone us-east-1b"
    first = wait_for(lambda: [l for l in io_lines(region["log"]) if l["what"] == restore_b],
                     "the restore into zone b")[0]
    assert int(first["gets"]) > 0 and int(first["inb"]) > 0, first
    cache = os.path.join(region["data"], "regions", "us-east-1", "chunk-cache")
    cached = sum(len(fs) for _, _, fs in os.walk(cache))
    assert cached > 0, "the restore filled no chunk cache"

    # The first and the second launch in zone b fetch nothing from S3: no request at all.
    mark = len(io_lines(region["log"]))
    total = io_lines(region["log"])[-1]["total"]
    i1 = launch(region, ec2, ami, "us-east-1b")
    i2 = launch(region, ec2, ami, "us-east-1b")
    after = io_lines(region["log"])[mark:]
    assert not after, after
    assert io_lines(region["log"])[-1]["total"] == total

    # The zone's base gone (as a pool that dropped it): the next launch restores it again,
    # every chunk from the host's chunk cache, no pack read from S3 (only the marker, the
    # manifest and the index, a few small GETs).
    ec2.terminate_instances(InstanceIds=[i1, i2])
    os.unlink(os.path.join(pool_b, f"base-{snap}.img"))
    mark = len(io_lines(region["log"]))
    i3 = launch(region, ec2, ami, "us-east-1b")
    again = [l for l in io_lines(region["log"])[mark:] if l["what"] == restore_b]
    assert len(again) == 1, io_lines(region["log"])[mark:]
    assert int(again[0]["hits"]) > 0, again
    print(f"\nfirst restore into us-east-1b: {first['line'].split(': ', 1)[1]}"
          f"\nafter its base was removed: {again[0]['line'].split(': ', 1)[1]}")
    assert int(again[0]["gets"]) < int(first["gets"]), (first, again)
    assert int(again[0]["inb"]) < int(first["inb"]) // 4, (first, again)
    ec2.terminate_instances(InstanceIds=[i3])

    # CopyImage to the directory region and launch there; and back into the S3 region.
    eu = client(region, region="eu-west-1")
    copy = eu.copy_image(SourceRegion="us-east-1", SourceImageId=ami, Name="to-eu")["ImageId"]
    wait_for(lambda: image_state(eu, copy) in ("available", "failed"), "the copy to eu", 300)
    assert image_state(eu, copy) == "available"
    i4 = launch(region, eu, copy, "eu-west-1a", region="eu-west-1")
    eu.terminate_instances(InstanceIds=[i4])
    back = ec2.copy_image(SourceRegion="eu-west-1", SourceImageId=copy, Name="back")["ImageId"]
    wait_for(lambda: image_state(ec2, back) in ("available", "failed"), "the copy back", 300)
    assert image_state(ec2, back) == "available"
    back_snap = ec2.describe_images(ImageIds=[back])["Images"][0]["BlockDeviceMappings"][0][
        "Ebs"]["SnapshotId"]
    assert f"snaps/{back_snap}" in s3_keys(ceph, region["prefix"])

    # DeleteSnapshot of a snapshot in S3: its manifest object goes, the automatic gc collects
    # the store in S3 (a grace period keeps recent packs: see the guide); the store verifies.
    ec2.deregister_image(ImageId=back)
    ec2.delete_snapshot(SnapshotId=back_snap)
    assert f"snaps/{back_snap}" not in s3_keys(ceph, region["prefix"])
    wait_for(lambda: [l for l in io_lines(region["log"]) if l["what"] == "gc"], "the gc", 60)
    assert "cannot collect" not in region["log"].read_text()
    r = kiln("store", "verify", region["store"])
    assert "0 problems" in r.stdout or r.returncode == 0, r.stdout


def test_start_refused_without_credentials(ceph, region, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"), HOME=str(tmp_path))
    r = subprocess.run([KILN, "serve", "--data", region["data"], "--listen", "127.0.0.1:0"],
                       capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode != 0
    assert "cannot open the store of region 'us-east-1'" in r.stderr, r.stderr
    assert "no S3 credentials" in r.stderr, r.stderr


def test_init_refused_when_the_store_is_unreachable(tmp_path):
    topo = tmp_path / "topology"
    topo.write_text("us-east-1 a\nstore us-east-1 s3://kiln-tests/x?endpoint=http://127.0.0.1:9\n")
    r = kiln("init", "--data", tmp_path / "data", "--topology", topo, check=False,
             env={"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}, timeout=120)
    assert r.returncode != 0
    assert "cannot make the store of region 'us-east-1'" in r.stderr, r.stderr
    assert not (tmp_path / "data" / "kiln.db").exists()
