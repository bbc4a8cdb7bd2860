"""Disk full (issue 15): the pool and the stores on small filesystems that fill. RunInstances and
CreateVolume answer InsufficientInstanceCapacity / InsufficientVolumeCapacity, CreateImage and
CopyImage end `failed` with a stateReason, the stores still verify, and once space is freed
everything works again without a restart. The stores are small tmpfs mounts of their own; the
pool is kiln's loop-mounted XFS, filled with fallocate."""
import os
import subprocess
import time

import pytest

from conftest import KILN, error_of, kiln
from test_crash_matrix import busybox, inst, start, stop
from test_lifecycle_faults import until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")

REGIONS = ("us-east-1", "eu-west-1")


def fill(path, leave):
    """Take all but `leave` bytes of the filesystem of path with one allocated file."""
    st = os.statvfs(path)
    size = st.f_bavail * st.f_frsize - leave
    f = os.path.join(path, "fill")
    if size > 0:
        subprocess.run(["fallocate", "-l", str(size), f], check=True)
    return f


def image_state(ec2, ami):
    im = ec2.describe_images(ImageIds=[ami])["Images"][0]
    return im["State"], im.get("StateReason", {}).get("Message", "")


def verify(data, region):
    r = kiln("store", "verify", os.path.join(data, "regions", region, "store"), check=False)
    assert r.returncode == 0, r.stdout + r.stderr


def test_disk_full(tmp_path):
    data = tmp_path / "data"
    stores = [data / "regions" / r / "store" for r in REGIONS]
    for s in stores:
        s.mkdir(parents=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=160m,mode=0700", "tmpfs", str(s)], check=True)
    proc = None
    try:
        (tmp_path / "topo").write_text("us-east-1 a\neu-west-1 a\n")
        kiln("init", "--data", data, "--topology", tmp_path / "topo")
        proc, ec2 = start(data)
        ami = busybox(ec2)
        iid = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1,
                                MaxCount=1)["Instances"][0]["InstanceId"]
        until(lambda: inst(ec2, iid)["State"]["Name"] == "running", "the instance")
        # 24 MiB of its own, so that an image of it has chunks to store
        r = subprocess.run([KILN, "runtime", "exec", os.path.join(data, "run"), iid, "--", "/bin/sh", "-c",
                            "dd if=/dev/urandom of=/root/blob bs=1M count=24 2>/dev/null && sync"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr

        # The pool full: refused at once, with EC2's codes; freed: both work again.
        pool = data / "regions" / "us-east-1" / "pools" / "us-east-1a"
        f = fill(pool, 16 << 20)
        assert error_of(lambda: ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1,
                                                  MaxCount=1))[0] == "InsufficientInstanceCapacity"
        assert error_of(lambda: ec2.create_volume(AvailabilityZone="us-east-1a", Size=1))[0] == \
            "InsufficientVolumeCapacity"
        os.unlink(f)
        vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
        second = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1,
                                   MaxCount=1)["Instances"][0]["InstanceId"]
        until(lambda: inst(ec2, second)["State"]["Name"] == "running", "a launch after the pool was freed")

        # The store full: CreateImage fails with a reason, the store verifies; freed: it works.
        f = fill(str(stores[0]), 2 << 20)
        bad = ec2.create_image(InstanceId=iid, Name="full-1", NoReboot=True)["ImageId"]
        until(lambda: image_state(ec2, bad)[0] != "pending", "the image to settle", seconds=120)
        state, reason = image_state(ec2, bad)
        assert state == "failed" and "space" in reason.lower(), (state, reason)
        verify(data, "us-east-1")
        os.unlink(f)
        good = ec2.create_image(InstanceId=iid, Name="full-2", NoReboot=True)["ImageId"]
        until(lambda: image_state(ec2, good)[0] != "pending", "the image to settle", seconds=120)
        assert image_state(ec2, good)[0] == "available", image_state(ec2, good)
        verify(data, "us-east-1")

        # The destination's store full: CopyImage fails with a reason; freed: it works.
        import boto3  # noqa: F401 (the client of the other region, as ec2's)
        from test_lifecycle_faults import ec2_for
        eu = ec2_for(data, ec2.meta.endpoint_url, region="eu-west-1")
        f = fill(str(stores[1]), 2 << 20)
        bad = eu.copy_image(SourceImageId=good, SourceRegion="us-east-1", Name="copy-1")["ImageId"]
        until(lambda: image_state(eu, bad)[0] != "pending", "the copy to settle", seconds=120)
        state, reason = image_state(eu, bad)
        assert state == "failed" and "space" in reason.lower(), (state, reason)
        verify(data, "eu-west-1")
        os.unlink(f)
        copy = eu.copy_image(SourceImageId=good, SourceRegion="us-east-1", Name="copy-2")["ImageId"]
        until(lambda: image_state(eu, copy)[0] != "pending", "the copy to settle", seconds=120)
        assert image_state(eu, copy)[0] == "available", image_state(eu, copy)
        third = eu.run_instances(ImageId=copy, InstanceType="t2.nano", MinCount=1,
                                 MaxCount=1)["Instances"][0]["InstanceId"]
        until(lambda: inst(eu, third)["State"]["Name"] == "running", "a launch of the copy")
        eu.terminate_instances(InstanceIds=[third])
        ec2.terminate_instances(InstanceIds=[iid, second])
        until(lambda: inst(ec2, iid)["State"]["Name"] == "terminated" and
              inst(eu, third)["State"]["Name"] == "terminated", "the terminations")
        ec2.delete_volume(VolumeId=vid)
        stop(proc)
        proc = None
        for r in REGIONS:
            verify(data, r)
    finally:
        if proc:
            proc.kill()
            proc.wait()
        kiln("down", "--data", data, check=False)
        for s in stores:
            subprocess.run(["umount", "-l", str(s)], check=False)
