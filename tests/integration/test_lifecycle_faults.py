"""kill -9 of the daemon in the middle of CreateImage and CopyImage (fault injection at named
points): after a restart the image ends available (the job resumed from its records), the
instance that was stopped for the copy runs again, nothing leaks (volume files, mounts, loop
devices), and the stores verify and collect no garbage."""
import configparser
import os
import subprocess
import time

import pytest

from conftest import kiln, start_daemon

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")


def start(data, fault=None):
    proc, where = start_daemon(data, fault=fault)
    return proc, where["url"]


def ec2_for(data, url, region="us-east-1"):
    import boto3
    from botocore.config import Config
    cred = configparser.ConfigParser()
    cred.read(os.path.join(data, "credentials"))
    return boto3.client("ec2", region_name=region, endpoint_url=url,
                        aws_access_key_id=cred["default"]["aws_access_key_id"],
                        aws_secret_access_key=cred["default"]["aws_secret_access_key"],
                        config=Config(retries={"max_attempts": 1}))


def until(fn, what, seconds=60):
    end = time.time() + seconds
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def image_state(ec2, ami):
    return ec2.describe_images(ImageIds=[ami])["Images"][0]["State"]


def instance_state(ec2, iid):
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]


@pytest.fixture
def data(tmp_path):
    d = tmp_path / "data"
    kiln("init", "--data", d)
    yield d
    kiln("down", "--data", d)


def verify(data, region):
    r = kiln("store", "verify", os.path.join(data, "regions", region, "store"), check=False)
    assert r.returncode == 0, r.stdout + r.stderr


def assert_stores_clean(data):
    """With the daemon stopped (gc keeps everyone else out): the stores verify, and hold no
    garbage once collected."""
    import json
    for region in ("us-east-1", "eu-west-1"):
        store = os.path.join(data, "regions", region, "store")
        verify(data, region)
        kiln("store", "gc", store)
        assert json.loads(kiln("store", "stats", store, "--json").stdout)["total"]["garbage_bytes"] == 0
        verify(data, region)


def assert_no_leaks(data, ec2s):
    """After the crash and the recovery: every volume file in the pools is a volume the API
    knows, and the only mounts and loop devices under the data directory are the pools'."""
    import json
    known = {v["VolumeId"] for ec2 in ec2s for v in ec2.describe_volumes()["Volumes"]}
    for root, _, files in os.walk(os.path.join(data, "regions")):
        for f in files:
            if f.startswith("vol-") and f.endswith(".img"):
                assert f[:-4] in known, f"{f} in {root} is no volume the API knows"
    with open("/proc/mounts") as m:
        mounts = [line.split()[1] for line in m if str(data) in line.split()[1]]
    # the pools, and the pins of the VPCs' network namespaces (they live until kiln down)
    assert all("/pools/" in p or "/run/net/vpc-" in p for p in mounts), mounts
    loops = json.loads(subprocess.run(["losetup", "-J", "-l"], capture_output=True, text=True).stdout or
                       '{"loopdevices": []}')["loopdevices"]
    backing = [d.get("back-file") or "" for d in loops if str(data) in (d.get("back-file") or "")]
    assert all(b.endswith(".xfs") for b in backing), backing


@pytest.mark.parametrize("fault", ["image.copied", "snapshot.commit"])
def test_create_image_survives_a_killed_daemon(data, fault):
    proc, url = start(data)
    ec2 = ec2_for(data, url)
    base = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-busybox"]}])
    iid = ec2.run_instances(ImageId=base["Images"][0]["ImageId"], InstanceType="t2.nano", MinCount=1,
                            MaxCount=1)["Instances"][0]["InstanceId"]
    until(lambda: instance_state(ec2, iid) == "running", "the instance to run")
    proc.terminate()
    assert proc.wait(timeout=30) == 0
    # the daemon kills itself at the fault point, in the middle of the CreateImage job
    proc, url = start(data, fault)
    ec2 = ec2_for(data, url)
    ami = ec2.create_image(InstanceId=iid, Name="crash-1")["ImageId"]
    assert proc.wait(timeout=60) == -9
    proc, url = start(data)
    try:
        ec2 = ec2_for(data, url)
        until(lambda: image_state(ec2, ami) != "pending", "the image to settle")
        assert image_state(ec2, ami) == "available"
        # the instance stopped for the copy runs again
        until(lambda: instance_state(ec2, iid) == "running", "the instance to run again")
        snaps = ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]
        assert snaps and all(s["State"] == "completed" for s in snaps)
        ec2.terminate_instances(InstanceIds=[iid])
        until(lambda: instance_state(ec2, iid) == "terminated", "the instance to go")
        assert_no_leaks(data, [ec2])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert_stores_clean(data)


def image_of_a_stopped_instance(data, name):
    """With a daemon of its own (stopped again): a busybox instance, stopped, and an image of
    it; (instance, image)."""
    proc, url = start(data)
    ec2 = ec2_for(data, url)
    base = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-busybox"]}])
    iid = ec2.run_instances(ImageId=base["Images"][0]["ImageId"], InstanceType="t2.nano", MinCount=1,
                            MaxCount=1)["Instances"][0]["InstanceId"]
    until(lambda: instance_state(ec2, iid) == "running", "the instance to run")
    ec2.stop_instances(InstanceIds=[iid])
    until(lambda: instance_state(ec2, iid) == "stopped", "the instance to stop")
    ami = ec2.create_image(InstanceId=iid, Name=name)["ImageId"]
    until(lambda: image_state(ec2, ami) == "available", "the image")
    proc.terminate()
    assert proc.wait(timeout=30) == 0
    return iid, ami


def test_copy_image_survives_a_killed_daemon(data):
    iid, ami = image_of_a_stopped_instance(data, "to-copy-1")
    proc, url = start(data, "copy.commit")
    eu = ec2_for(data, url, "eu-west-1")
    copied = eu.copy_image(SourceRegion="us-east-1", SourceImageId=ami, Name="copied-1")["ImageId"]
    assert proc.wait(timeout=60) == -9
    proc, url = start(data)
    try:
        eu = ec2_for(data, url, "eu-west-1")
        until(lambda: image_state(eu, copied) != "pending", "the copy to settle")
        assert image_state(eu, copied) == "available"
        ec2 = ec2_for(data, url)
        ec2.terminate_instances(InstanceIds=[iid])
        until(lambda: instance_state(ec2, iid) == "terminated", "the instance to go")
        assert_no_leaks(data, [ec2, eu])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert_stores_clean(data)


def test_restore_temporaries_are_removed_at_start(data):
    """A daemon killed while it restores an image's base into a zone's pool leaves the
    half-written file; the next daemon removes it before any job runs."""
    iid, ami = image_of_a_stopped_instance(data, "restore-crash-1")
    # the copy's bases are restored into eu-west-1's zones: killed before the first is renamed
    proc, url = start(data, "restore.written")
    eu = ec2_for(data, url, "eu-west-1")
    copied = eu.copy_image(SourceRegion="us-east-1", SourceImageId=ami, Name="copied-2")["ImageId"]
    assert proc.wait(timeout=120) == -9
    pools = os.path.join(data, "regions", "eu-west-1", "pools")

    def temporaries():
        return [os.path.join(r, f) for r, _, files in os.walk(pools) for f in files if ".tmp-" in f]

    assert temporaries(), "the fault point comes after the base was written"
    proc, url = start(data)
    try:
        eu = ec2_for(data, url, "eu-west-1")
        until(lambda: image_state(eu, copied) == "available", "the copy")
        eid = eu.run_instances(ImageId=copied, InstanceType="t2.nano", MinCount=1,
                               MaxCount=1)["Instances"][0]["InstanceId"]
        until(lambda: instance_state(eu, eid) == "running", "the copy's instance to run")
        eu.terminate_instances(InstanceIds=[eid])
        ec2 = ec2_for(data, url)
        ec2.terminate_instances(InstanceIds=[iid])
        until(lambda: instance_state(eu, eid) == "terminated", "the copy's instance to go")
        until(lambda: instance_state(ec2, iid) == "terminated", "the instance to go")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert temporaries() == []
