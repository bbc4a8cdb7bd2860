"""The stores' automatic gc: DeleteSnapshot removes a manifest, and the chunks no other snapshot
uses are collected in the background once deletions have been quiet for --gc-interval, without
anyone running `kiln store gc`; with --gc-interval 0 they stay until someone does."""
import json
import os
import time

import pytest

from conftest import client, kiln, serving

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="pools need root")


@pytest.fixture
def daemon(tmp_path, request):
    """A daemon over a new data directory, with the --gc-interval the test gives (indirect)."""
    data = tmp_path / "data"
    kiln("init", "--data", data)
    yield from serving(data, "--gc-interval", str(request.param))


def stats(server):
    store = os.path.join(server["data"], "regions", "us-east-1", "store")
    return json.loads(kiln("store", "stats", store, "--json").stdout)["total"]


def snapshot_of_random_volume(ec2, server):
    vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[vid], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    # 16 MiB that compress and deduplicate with nothing, past the filesystem's metadata
    path = os.path.join(server["data"], "regions", "us-east-1", "pools", "us-east-1a", vid + ".img")
    with open(path, "r+b") as f:
        f.seek(512 << 20)
        f.write(os.urandom(16 << 20))
    sid = ec2.create_snapshot(VolumeId=vid)["SnapshotId"]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[sid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    ec2.delete_volume(VolumeId=vid)
    return sid


def until(fn, seconds):
    end = time.time() + seconds
    while time.time() < end:
        if fn():
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("daemon", [1], indirect=True)
def test_deleted_snapshots_are_collected(daemon):
    server = daemon
    ec2 = client(server)
    sid = snapshot_of_random_volume(ec2, server)
    before = stats(server)["pack_bytes"]
    ec2.delete_snapshot(SnapshotId=sid)
    assert until(lambda: stats(server)["pack_bytes"] < before - (15 << 20), 30), stats(server)
    assert stats(server)["garbage_bytes"] == 0


@pytest.mark.parametrize("daemon", [0], indirect=True)
def test_no_automatic_gc_when_off(daemon):
    server = daemon
    ec2 = client(server)
    sid = snapshot_of_random_volume(ec2, server)
    ec2.delete_snapshot(SnapshotId=sid)
    time.sleep(3)
    assert stats(server)["garbage_bytes"] >= 15 << 20
