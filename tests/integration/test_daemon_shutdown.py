"""Shutdown and the log of jobs: SIGTERM in the middle of a CopyImage job lets the job reach its
checkpoint and the daemon exit 0 (the image ends available, at once or after the restart), and a
job that fails leaves its image failed with a stateReason that DescribeImages shows, and a line
in the log; every API call has its line in the log."""
import os
import subprocess
import time

import pytest

from conftest import KILN
from test_lifecycle_faults import data, ec2_for, image_state, until  # noqa: F401 (data: a fixture)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the daemon sets up the host network")


def start(data, log, fault=None, level="info"):
    env = dict(os.environ)
    env.pop("KILN_FAULT", None)
    if fault:
        env["KILN_FAULT"] = fault
    env["KILN_LOG_LEVEL"] = level
    proc = subprocess.Popen([KILN, "serve", "--data", str(data), "--listen", "127.0.0.1:0"], env=env,
                            stdout=subprocess.PIPE, stderr=open(log, "a"), text=True)
    line = proc.stdout.readline()
    assert "serving" in line, open(log).read()
    return proc, f"http://127.0.0.1:{int(line.split()[-1])}"


def busybox(ec2):
    return ec2.describe_images(Owners=["amazon"],
                               Filters=[{"Name": "name", "Values": ["kiln-busybox"]}])["Images"][0]


def test_sigterm_during_copy_image_exits_0_and_the_copy_completes(data, tmp_path):
    log = tmp_path / "serve.log"
    # the copy pauses just before its commit point: SIGTERM comes while the job runs
    proc, url = start(data, log, "copy.commit@3000")
    eu = ec2_for(data, url, "eu-west-1")
    src = busybox(ec2_for(data, url))["ImageId"]
    copied = eu.copy_image(SourceRegion="us-east-1", SourceImageId=src, Name="copied-on-term")["ImageId"]
    time.sleep(0.5)
    t0 = time.time()
    proc.terminate()
    assert proc.wait(timeout=30) == 0
    assert time.time() - t0 >= 1, "the daemon did not wait for the job"
    proc, url = start(data, log)
    try:
        eu = ec2_for(data, url, "eu-west-1")
        until(lambda: image_state(eu, copied) != "pending", "the copy to settle")
        im = eu.describe_images(ImageIds=[copied])["Images"][0]
        assert im["State"] == "available" or (im["State"] == "failed" and im["StateReason"]["Message"]), im
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    text = open(log).read()
    assert "action=CopyImage" in text and " 200 " in text, text
    assert "action=DescribeImages" in text, text


def test_a_failing_copy_shows_its_reason_and_is_logged(data, tmp_path):
    log = tmp_path / "serve.log"
    proc, url = start(data, log)
    ec2 = ec2_for(data, url)
    src = busybox(ec2)
    snap = src["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    proc.terminate()
    assert proc.wait(timeout=30) == 0
    # the source snapshot's manifest is gone from its store: the copy cannot read it
    store = os.path.join(data, "regions", "us-east-1", "store")
    gone = [os.path.join(root, f) for root, _, files in os.walk(store) for f in files if f == snap]
    assert gone, f"no manifest of {snap} in {store}"
    for f in gone:
        os.unlink(f)
    proc, url = start(data, log)
    try:
        eu = ec2_for(data, url, "eu-west-1")
        copied = eu.copy_image(SourceRegion="us-east-1", SourceImageId=src["ImageId"],
                               Name="copy-that-fails")["ImageId"]
        until(lambda: image_state(eu, copied) != "pending", "the copy to fail")
        im = eu.describe_images(ImageIds=[copied])["Images"][0]
        assert im["State"] == "failed", im
        assert im["StateReason"]["Code"] == "Server.InternalError", im
        assert snap in im["StateReason"]["Message"], im
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    lines = [line for line in open(log) if copied in line and "image_copy_job" in line]
    assert lines and (" error " in lines[0] or lines[0].startswith("<3>")), open(log).read()


def test_warming_an_image_deleted_meanwhile_is_not_an_error(data, tmp_path):
    log = tmp_path / "serve.log"
    # every pre-warm waits 3 s before it starts: the image and its snapshot go in between
    proc, url = start(data, log, "prewarm.start@3000", level="debug")
    try:
        eu = ec2_for(data, url, "eu-west-1")
        src = busybox(ec2_for(data, url))["ImageId"]
        copied = eu.copy_image(SourceRegion="us-east-1", SourceImageId=src, Name="short-lived")["ImageId"]
        until(lambda: image_state(eu, copied) != "pending", "the copy")
        im = eu.describe_images(ImageIds=[copied])["Images"][0]
        assert im["State"] == "available", im
        eu.deregister_image(ImageId=copied)
        eu.delete_snapshot(SnapshotId=im["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])
        time.sleep(4)  # the pre-warm of the copy has run by now
    finally:
        proc.terminate()
        assert proc.wait(timeout=30) == 0
    warm = [line for line in open(log) if copied in line and "prewarm" in line]
    assert warm and all("job done" in line for line in warm), warm
