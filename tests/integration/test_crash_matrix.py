"""The crash matrix (issue 15): kill -9 of the daemon at named fault points of RunInstances,
TerminateInstances, CreateVolume, AttachVolume, DetachVolume, CreateSnapshot, DeleteSnapshot and
the automatic gc. After a restart every resource reaches a final state, nothing leaks (volume
files, mounts, loop devices, transit links, VPC namespaces beyond the pins, instances' cgroups)
and `kiln store verify` is clean. CreateImage and CopyImage are test_lifecycle_faults'."""
import json
import os
import subprocess
import time

import pytest

from conftest import KILN, kiln
from test_lifecycle_faults import assert_no_leaks, ec2_for, until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")

REGION = "us-east-1"


def start(data, fault=None, gc=None):
    env = dict(os.environ)
    env.pop("KILN_FAULT", None)
    if fault:
        env["KILN_FAULT"] = fault
    args = [KILN, "serve", "--data", str(data), "--listen", "127.0.0.1:0"]
    if gc:
        args += ["--gc-interval", str(gc)]
    proc = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert "serving" in line, proc.stderr.read()
    return proc, ec2_for(data, f"http://127.0.0.1:{int(line.split()[-1])}")


def stop(proc):
    proc.terminate()
    assert proc.wait(timeout=60) == 0, proc.stderr.read()[-4000:]


def inst(ec2, iid):
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]


def vol(ec2, vid):
    v = ec2.describe_volumes(Filters=[{"Name": "volume-id", "Values": [vid]}])["Volumes"]
    return v[0] if v else None


def snaps(ec2):
    return ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]


def busybox(ec2):
    return ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-busybox"]}])[
        "Images"][0]["ImageId"]


def run(ec2):
    iid = ec2.run_instances(ImageId=busybox(ec2), InstanceType="t2.nano", MinCount=1, MaxCount=1,
                            Placement={"AvailabilityZone": "us-east-1a"})["Instances"][0]["InstanceId"]
    until(lambda: inst(ec2, iid)["State"]["Name"] == "running", "the instance to run")
    return iid


def volume(ec2):
    vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    until(lambda: vol(ec2, vid)["State"] == "available", "the volume")
    return vid


def attached(ec2, vid):
    v = vol(ec2, vid)
    return v["State"] == "in-use" and v["Attachments"][0]["State"] == "attached"


# Each case: what exists before (made by a daemon without faults), the call that crashes the
# daemon, and the final state that the restarted daemon must reach.
def setup_none(ec2):
    return {}


def setup_instance(ec2):
    return {"iid": run(ec2)}


def setup_attach(ec2):
    return {"iid": run(ec2), "vid": volume(ec2)}


def setup_detach(ec2):
    ctx = setup_attach(ec2)
    ec2.attach_volume(VolumeId=ctx["vid"], InstanceId=ctx["iid"], Device="/dev/sdf")
    until(lambda: attached(ec2, ctx["vid"]), "the attachment")
    return ctx


def setup_snapshot(ec2):
    ctx = {"vid": volume(ec2)}
    sid = ec2.create_snapshot(VolumeId=ctx["vid"])["SnapshotId"]
    until(lambda: all(s["State"] == "completed" for s in snaps(ec2)), "the snapshot")
    ctx["sid"] = sid
    return ctx


def act_run(ec2, ctx):
    ec2.run_instances(ImageId=busybox(ec2), InstanceType="t2.nano", MinCount=1, MaxCount=1,
                      Placement={"AvailabilityZone": "us-east-1a"})


def act_terminate(ec2, ctx):
    ec2.terminate_instances(InstanceIds=[ctx["iid"]])


def act_create_volume(ec2, ctx):
    ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)


def act_attach(ec2, ctx):
    ec2.attach_volume(VolumeId=ctx["vid"], InstanceId=ctx["iid"], Device="/dev/sdf")


def act_detach(ec2, ctx):
    ec2.detach_volume(VolumeId=ctx["vid"])


def act_snapshot(ec2, ctx):
    ec2.create_snapshot(VolumeId=ctx["vid"])


def act_delete_snapshot(ec2, ctx):
    ec2.delete_snapshot(SnapshotId=ctx["sid"])


def settled(ec2, case, ctx):
    """Every resource in a final state (no pending, stopping, shutting-down, creating,
    attaching, detaching, deleting): then the case's own outcome."""
    insts = [i for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
    if any(i["State"]["Name"] not in ("running", "stopped", "terminated") for i in insts):
        return False
    vols = ec2.describe_volumes()["Volumes"]
    if any(v["State"] not in ("available", "in-use", "error") or
           any(a["State"] not in ("attached",) for a in v.get("Attachments", [])) for v in vols):
        return False
    if any(s["State"] == "pending" for s in snaps(ec2)):
        return False
    return True


OUTCOME = {
    "run": lambda ec2, ctx: [i["State"]["Name"] for r in ec2.describe_instances()["Reservations"]
                             for i in r["Instances"]] == ["running"],
    "terminate": lambda ec2, ctx: inst(ec2, ctx["iid"])["State"]["Name"] == "terminated",
    "create-volume": lambda ec2, ctx: [v["State"] for v in ec2.describe_volumes()["Volumes"]] == ["available"],
    "attach": lambda ec2, ctx: attached(ec2, ctx["vid"]),
    "detach": lambda ec2, ctx: vol(ec2, ctx["vid"])["State"] == "available",
    "snapshot": lambda ec2, ctx: len(snaps(ec2)) == 2 and all(s["State"] == "completed" for s in snaps(ec2)),
    "delete-snapshot": lambda ec2, ctx: snaps(ec2) == [],
    "gc": lambda ec2, ctx: snaps(ec2) == [],
}

CASES = [
    ("run", "launch.volumes", setup_none, act_run),
    ("run", "launch.started", setup_none, act_run),
    ("terminate", "terminate.stopped", setup_instance, act_terminate),
    ("terminate", "terminate.released", setup_instance, act_terminate),
    ("create-volume", "volume.made", setup_none, act_create_volume),
    ("attach", "volume.attached", setup_attach, act_attach),
    ("detach", "volume.detached", setup_detach, act_detach),
    ("snapshot", "snapshot.commit", setup_snapshot, act_snapshot),
    ("snapshot", "snapshot.completed", setup_snapshot, act_snapshot),
    ("delete-snapshot", "delete.unlinked", setup_snapshot, act_delete_snapshot),
    ("gc", "gc.marked", setup_snapshot, act_delete_snapshot),
]


def cgroups_of(iids):
    """Instances' cgroups that are still there (any hierarchy)."""
    left = []
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        left += [os.path.join(root, d) for d in dirs if d in iids]
        if root.count("/") > 8:
            dirs[:] = []
    return left


@pytest.mark.parametrize("case,fault,setup,act", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_crash_matrix(tmp_path, case, fault, setup, act):
    data = tmp_path / "data"
    (tmp_path / "topo").write_text("us-east-1 a\n")
    kiln("init", "--data", data, "--topology", tmp_path / "topo")
    gc = 1 if case == "gc" else None
    proc = None
    try:
        proc, ec2 = start(data, gc=gc)
        ctx = setup(ec2)
        stop(proc)
        proc, ec2 = start(data, fault, gc=gc)
        try:
            act(ec2, ctx)
        except Exception:
            pass  # the daemon may die before it answers
        assert proc.wait(timeout=60) == -9, f"{fault} was not reached: {proc.stderr.read()[-3000:]}"
        proc, ec2 = start(data, gc=gc)
        until(lambda: settled(ec2, case, ctx) and OUTCOME[case](ec2, ctx), f"{case} to settle after {fault}",
              seconds=90)
        # then everything goes: instances, volumes, snapshots
        iids = [i["InstanceId"] for r in ec2.describe_instances()["Reservations"] for i in r["Instances"]]
        live = [i for i in iids if inst(ec2, i)["State"]["Name"] != "terminated"]
        if live:
            ec2.terminate_instances(InstanceIds=live)
            until(lambda: all(inst(ec2, i)["State"]["Name"] == "terminated" for i in live), "terminations")
        for v in ec2.describe_volumes()["Volumes"]:
            ec2.delete_volume(VolumeId=v["VolumeId"])
        until(lambda: ec2.describe_volumes()["Volumes"] == [], "the volumes to go")
        for s in snaps(ec2):
            ec2.delete_snapshot(SnapshotId=s["SnapshotId"])
        assert_no_leaks(data, [ec2])
        assert cgroups_of(set(iids)) == []
        run_dir = os.path.join(data, "run")
        assert not [d for d in os.listdir(run_dir) if d.startswith("i-")], os.listdir(run_dir)
        stop(proc)
        proc = None
        store = os.path.join(data, "regions", REGION, "store")
        r = kiln("store", "verify", store, check=False)
        assert r.returncode == 0, r.stdout + r.stderr
        kiln("store", "gc", store)
        assert json.loads(kiln("store", "stats", store, "--json").stdout)["total"]["garbage_bytes"] == 0
        r = kiln("store", "verify", store, check=False)
        assert r.returncode == 0, r.stdout + r.stderr
    finally:
        if proc:
            proc.kill()
            proc.wait()
        kiln("down", "--data", data, check=False)
