"""Tags, volumes and snapshots through the EC2 API: volumes are real files in the zone's pool,
attached ones are block devices inside the instance, snapshots really go to the block store
and volumes made from them hold the same bytes, in another zone too."""
import json
import os
import subprocess
import time

import pytest

from conftest import AWS, KILN, client, error_of
from test_api_instances import busybox, inside, wait

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")

OTHER = dict(key="AKIAOTHEROTHEROTHER1", secret="other-secret-other-secret")


def launch(ec2, zone="us-east-1a", **kw):
    r = ec2.run_instances(ImageId=busybox(ec2), InstanceType="t2.nano", MinCount=1, MaxCount=1,
                          Placement={"AvailabilityZone": zone}, **kw)
    iid = r["Instances"][0]["InstanceId"]
    wait(ec2, "instance_running", iid)
    return iid


def vwait(ec2, name, vid):
    ec2.get_waiter(name).wait(VolumeIds=[vid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def attached(ec2, vid):
    """volume-in-use sees the volume in use at once; the attachment itself follows."""
    for _ in range(200):
        att = ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]["Attachments"]
        if att and att[0]["State"] == "attached":
            return att[0]
        time.sleep(0.05)
    raise AssertionError(f"{vid} did not become attached: {att}")


def swait(ec2, sid):
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[sid], WaiterConfig={"Delay": 1, "MaxAttempts": 120})


def root_volume(ec2, iid):
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    return {m["DeviceName"]: m["Ebs"]["VolumeId"] for m in inst["BlockDeviceMappings"]}["/dev/xvda"]


def tags_of(resource):
    return {t["Key"]: t["Value"] for t in resource.get("Tags", [])}


def test_tags_on_instances_and_their_volumes(server):
    ec2 = client(server)
    iid = launch(ec2, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": "web-1"}, {"Key": "team", "Value": "a"}]},
        {"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": "web-1-root"}]}])
    vid = root_volume(ec2, iid)
    assert tags_of(ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]) == {"Name": "web-1-root"}

    def found(filters):
        r = ec2.describe_instances(Filters=filters)["Reservations"]
        return {i["InstanceId"] for res in r for i in res["Instances"]}

    assert iid in found([{"Name": "tag:Name", "Values": ["web-*"]}])
    assert iid not in found([{"Name": "tag:Name", "Values": ["db-*"]}])
    assert iid in found([{"Name": "tag-key", "Values": ["team"]}])
    assert iid not in found([{"Name": "tag:Name", "Values": ["web-1"]}, {"Name": "tag:team", "Values": ["b"]}])

    ec2.create_tags(Resources=[iid, vid], Tags=[{"Key": "env", "Value": "ci"}, {"Key": "empty", "Value": ""}])
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert tags_of(inst) == {"Name": "web-1", "team": "a", "env": "ci", "empty": ""}
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [iid, vid]}])["Tags"]
    assert {(t["ResourceId"], t["ResourceType"], t["Key"]) for t in tags} >= {
        (iid, "instance", "env"), (vid, "volume", "env"), (vid, "volume", "Name")}
    # DeleteTags: a key with another value stays, a bare key goes
    ec2.delete_tags(Resources=[iid], Tags=[{"Key": "team", "Value": "b"}, {"Key": "env"}])
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert tags_of(inst) == {"Name": "web-1", "team": "a", "empty": ""}
    # pages of DescribeTags add up to the whole list
    whole = ec2.describe_tags()["Tags"]
    paged, token = [], None
    while True:
        r = ec2.describe_tags(MaxResults=5, **({"NextToken": token} if token else {}))
        paged += r["Tags"]
        token = r.get("NextToken")
        if not token:
            break
    assert paged == whole and len(whole) >= 6

    assert error_of(lambda: ec2.create_tags(Resources=["i-0123456789abcdef0"], Tags=[{"Key": "a", "Value": "b"}])) == (
        "InvalidInstanceID.NotFound", 400)
    assert error_of(lambda: ec2.create_tags(Resources=["nothing-1"], Tags=[{"Key": "a", "Value": "b"}]))[0] == "InvalidID"
    assert error_of(lambda: ec2.create_tags(Resources=[iid], Tags=[{"Key": "aws:x", "Value": "b"}]))[0] == (
        "InvalidParameterValue")
    many = [{"Key": f"k{i}", "Value": "v"} for i in range(50)]
    assert error_of(lambda: ec2.create_tags(Resources=[iid], Tags=many))[0] == "TagLimitExceeded"
    # another account neither sees nor touches them
    other = client(server, **OTHER)
    assert error_of(lambda: other.create_tags(Resources=[iid], Tags=[{"Key": "a", "Value": "b"}]))[0] == (
        "InvalidInstanceID.NotFound")
    assert not [t for t in other.describe_tags()["Tags"] if t["ResourceId"] in (iid, vid)]
    ec2.terminate_instances(InstanceIds=[iid])
    wait(ec2, "instance_terminated", iid)
    # the root volume went with the instance (DeleteOnTermination), its tags too
    assert error_of(lambda: ec2.describe_volumes(VolumeIds=[vid]))[0] == "InvalidVolume.NotFound"
    assert not [t for t in ec2.describe_tags()["Tags"] if t["ResourceId"] == vid]


def test_volume_attach_snapshot_and_restore_in_another_zone(server):
    ec2 = client(server)
    iid = launch(ec2, "us-east-1a")
    v = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1,
                          TagSpecifications=[{"ResourceType": "volume", "Tags": [{"Key": "Name", "Value": "data"}]}])
    vid = v["VolumeId"]
    assert v["State"] == "creating" and v["Size"] == 1 and tags_of(v) == {"Name": "data"}
    vwait(ec2, "volume_available", vid)
    pool_file = os.path.join(server["data"], "regions", "us-east-1", "pools", "us-east-1a", vid + ".img")
    assert os.path.getsize(pool_file) == 1 << 30 and os.stat(pool_file).st_blocks == 0  # blank, sparse

    a = ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device="/dev/sdf")
    assert a["State"] == "attaching" and a["Device"] == "/dev/sdf"
    vwait(ec2, "volume_in_use", vid)
    assert attached(ec2, vid)["InstanceId"] == iid
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert {m["DeviceName"] for m in inst["BlockDeviceMappings"]} == {"/dev/xvda", "/dev/sdf"}
    # it is a real block device inside the instance; what is written reaches the volume
    r = inside(server, iid, "sh", "-c", "echo kiln-volume-data | dd of=/dev/sdf bs=512 conv=sync,fsync 2>/dev/null;"
               " dd if=/dev/sdf bs=512 count=1 2>/dev/null")
    assert r.stdout.startswith("kiln-volume-data"), r.stderr

    # the same-zone rule and the one-device rule
    iid_b = launch(ec2, "us-east-1b")
    v2 = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    vwait(ec2, "volume_available", v2)
    assert error_of(lambda: ec2.attach_volume(VolumeId=v2, InstanceId=iid_b, Device="/dev/sdf"))[0] == (
        "InvalidVolume.ZoneMismatch")
    assert error_of(lambda: ec2.attach_volume(VolumeId=v2, InstanceId=iid, Device="/dev/sdf"))[0] == (
        "InvalidParameterValue")
    assert error_of(lambda: ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device="/dev/sdg"))[0] == "IncorrectState"
    assert error_of(lambda: ec2.delete_volume(VolumeId=vid))[0] == "VolumeInUse"
    assert error_of(lambda: ec2.detach_volume(VolumeId=root_volume(ec2, iid)))[0] == "OperationNotPermitted"

    # a snapshot of the attached volume, then a volume from it in another zone
    s = ec2.create_snapshot(VolumeId=vid, Description="data v1")
    sid = s["SnapshotId"]
    assert s["State"] == "pending" and s["VolumeSize"] == 1
    swait(ec2, sid)
    snap = ec2.describe_snapshots(SnapshotIds=[sid])["Snapshots"][0]
    assert (snap["State"], snap["Progress"], snap["VolumeId"], snap["Description"]) == ("completed", "100%", vid, "data v1")
    assert sid in [x["id"] for x in json.loads(subprocess.run(
        [KILN, "store", "ls", os.path.join(server["data"], "regions", "us-east-1", "store"), "--json"],
        capture_output=True, text=True, check=True).stdout)]
    vb = ec2.create_volume(AvailabilityZone="us-east-1b", SnapshotId=sid)["VolumeId"]
    vwait(ec2, "volume_available", vb)
    ec2.attach_volume(VolumeId=vb, InstanceId=iid_b, Device="/dev/xvdh")
    vwait(ec2, "volume_in_use", vb)
    attached(ec2, vb)
    r = inside(server, iid_b, "sh", "-c", "dd if=/dev/xvdh bs=512 count=1 2>/dev/null")
    assert r.stdout.startswith("kiln-volume-data")

    # detach while running: the device goes from the instance; the volume is available again
    ec2.detach_volume(VolumeId=vb)
    vwait(ec2, "volume_available", vb)
    assert inside(server, iid_b, "test", "-e", "/dev/xvdh").returncode != 0
    ec2.delete_volume(VolumeId=vb)
    ec2.get_waiter("volume_deleted").wait(VolumeIds=[vb], WaiterConfig={"Delay": 1, "MaxAttempts": 30})

    # attached volumes survive a stop and come back at start
    ec2.stop_instances(InstanceIds=[iid])
    wait(ec2, "instance_stopped", iid)
    ec2.start_instances(InstanceIds=[iid])
    wait(ec2, "instance_running", iid)
    r = inside(server, iid, "sh", "-c", "dd if=/dev/sdf bs=512 count=1 2>/dev/null")
    assert r.stdout.startswith("kiln-volume-data")

    ec2.terminate_instances(InstanceIds=[iid, iid_b])
    wait(ec2, "instance_terminated", iid)
    wait(ec2, "instance_terminated", iid_b)
    # a data volume outlives its instance (DeleteOnTermination false)
    vwait(ec2, "volume_available", vid)
    for v in (vid, v2):
        ec2.delete_volume(VolumeId=v)
        ec2.get_waiter("volume_deleted").wait(VolumeIds=[v], WaiterConfig={"Delay": 1, "MaxAttempts": 30})
    assert not os.path.exists(pool_file)
    ec2.delete_snapshot(SnapshotId=sid)
    assert error_of(lambda: ec2.describe_snapshots(SnapshotIds=[sid]))[0] == "InvalidSnapshot.NotFound"


def test_root_snapshots_are_incremental_and_consistent(server, tmp_path):
    ec2 = client(server)
    iid = launch(ec2)
    vid = root_volume(ec2, iid)
    store = os.path.join(server["data"], "regions", "us-east-1", "store")
    inside(server, iid, "sh", "-c", "echo first > /root/state && sync")
    s1 = ec2.create_snapshot(VolumeId=vid)["SnapshotId"]  # of a running instance: frozen, consistent
    swait(ec2, s1)
    inside(server, iid, "sh", "-c", "echo second > /root/state")  # no sync: the freeze flushes it
    s2 = ec2.create_snapshot(VolumeId=vid)["SnapshotId"]
    swait(ec2, s2)
    stats = {s["id"]: s for s in json.loads(subprocess.run([KILN, "store", "stats", store, "--json"],
                                                           capture_output=True, text=True, check=True).stdout)["snapshots"]}
    # each is incremental: it adds far less than the image holds
    assert stats[s2]["parent"] == s1 and stats[s2]["new_bytes"] < 4 << 20
    for sid, want in ((s1, "first"), (s2, "second")):
        out = tmp_path / (sid + ".img")
        subprocess.run([KILN, "store", "restore", store, sid, str(out)], check=True)
        r = subprocess.run(["debugfs", "-R", "cat /root/state", str(out)], capture_output=True, text=True)
        assert r.stdout.strip() == want
    ec2.terminate_instances(InstanceIds=[iid])
    wait(ec2, "instance_terminated", iid)


def test_snapshot_sharing_and_errors(server):
    ec2, other = client(server), client(server, **OTHER)
    vid = ec2.create_volume(AvailabilityZone="us-east-1c", Size=1, ClientToken="vol-token-1")["VolumeId"]
    assert ec2.create_volume(AvailabilityZone="us-east-1c", Size=1, ClientToken="vol-token-1")["VolumeId"] == vid
    vwait(ec2, "volume_available", vid)
    sid = ec2.create_snapshot(VolumeId=vid, TagSpecifications=[
        {"ResourceType": "snapshot", "Tags": [{"Key": "k", "Value": "v"}]}])["SnapshotId"]
    swait(ec2, sid)
    mine = ec2.describe_snapshots(OwnerIds=["self"], Filters=[{"Name": "tag:k", "Values": ["v"]}])["Snapshots"]
    assert [s["SnapshotId"] for s in mine] == [sid]
    assert sid not in [s["SnapshotId"] for s in other.describe_snapshots()["Snapshots"]]
    assert error_of(lambda: other.create_volume(AvailabilityZone="us-east-1c", SnapshotId=sid))[0] == (
        "InvalidSnapshot.NotFound")

    ec2.modify_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission", OperationType="add",
                                  UserIds=["222233334444"])
    perm = ec2.describe_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission")
    assert perm["CreateVolumePermissions"] == [{"UserId": "222233334444"}]
    seen = other.describe_snapshots(RestorableByUserIds=["self"])["Snapshots"]
    assert sid in [s["SnapshotId"] for s in seen]
    ov = other.create_volume(AvailabilityZone="us-east-1c", SnapshotId=sid)["VolumeId"]
    vwait(other, "volume_available", ov)
    assert error_of(lambda: other.delete_snapshot(SnapshotId=sid))[0] == "InvalidSnapshot.NotFound"
    assert error_of(lambda: other.describe_snapshot_attribute(
        SnapshotId=sid, Attribute="createVolumePermission"))[0] == "InvalidSnapshot.NotFound"
    ec2.modify_snapshot_attribute(SnapshotId=sid, CreateVolumePermission={"Remove": [{"UserId": "222233334444"}],
                                                                         "Add": [{"Group": "all"}]})
    perm = ec2.describe_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission")
    assert perm["CreateVolumePermissions"] == [{"Group": "all"}]
    assert sid in [s["SnapshotId"] for s in other.describe_snapshots(RestorableByUserIds=["all"])["Snapshots"]]

    assert error_of(lambda: ec2.create_volume(Size=1, AvailabilityZone=""))[0] == "MissingParameter"
    assert error_of(lambda: ec2.create_volume(AvailabilityZone="us-east-1z", Size=1))[0] == "InvalidZone.NotFound"
    assert error_of(lambda: ec2.create_volume(AvailabilityZone="us-east-1a", Size=0))[0] == "InvalidParameterValue"
    assert error_of(lambda: ec2.create_volume(AvailabilityZone="us-east-1a", SnapshotId="snap-1"))[0] == (
        "InvalidSnapshotID.Malformed")
    assert error_of(lambda: ec2.describe_volumes(VolumeIds=["vol-0123456789abcdef0"]))[0] == "InvalidVolume.NotFound"
    assert error_of(lambda: ec2.describe_volumes(VolumeIds=["vol-x"]))[0] == "InvalidVolumeID.Malformed"
    assert error_of(lambda: ec2.create_snapshot(VolumeId="vol-0123456789abcdef0"))[0] == "InvalidVolume.NotFound"
    assert error_of(lambda: ec2.delete_snapshot(SnapshotId="snap-0123456789abcdef0"))[0] == "InvalidSnapshot.NotFound"
    assert error_of(lambda: ec2.create_volume(AvailabilityZone="us-east-1a", Size=1, DryRun=True)) == (
        "DryRunOperation", 412)
    other.delete_volume(VolumeId=ov)
    ec2.delete_volume(VolumeId=vid)
    ec2.delete_snapshot(SnapshotId=sid)


def test_volumes_with_the_aws_cli(server):
    env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=os.path.join(server["data"], "credentials"),
               AWS_CONFIG_FILE=os.path.join(server["data"], "config"), AWS_PAGER="")

    def aws(*args):
        r = subprocess.run([AWS, "--endpoint-url", server["url"], "--output", "json", "ec2", *args],
                           capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout) if r.stdout.strip() else None

    vid = aws("create-volume", "--availability-zone", "us-east-1a", "--size", "2",
              "--tag-specifications", "ResourceType=volume,Tags=[{Key=cli,Value=yes}]")["VolumeId"]
    aws("wait", "volume-available", "--volume-ids", vid)
    out = aws("describe-volumes", "--filters", "Name=tag:cli,Values=yes", "Name=size,Values=2")
    assert [v["VolumeId"] for v in out["Volumes"]] == [vid]
    sid = aws("create-snapshot", "--volume-id", vid)["SnapshotId"]
    aws("wait", "snapshot-completed", "--snapshot-ids", sid)
    # Without ids or filters the aws CLI asks for pages of 1000 (its ec2 default page size): EC2
    # answers at most 500 volumes (1000 snapshots) a page, as DescribeVolumes documents, not an error
    assert vid in [v["VolumeId"] for v in aws("describe-volumes")["Volumes"]]
    assert sid in [s["SnapshotId"] for s in aws("describe-snapshots", "--owner-ids", "self")["Snapshots"]]
    assert vid in [v["VolumeId"] for v in aws("describe-volume-status")["VolumeStatuses"]]
    ec2 = client(server)
    assert vid in [v["VolumeId"] for v in ec2.describe_volumes(MaxResults=100000)["Volumes"]]
    assert error_of(lambda: ec2.describe_volumes(MaxResults=4))[0] == "InvalidParameterValue"
    aws("delete-volume", "--volume-id", vid)
    aws("wait", "volume-deleted", "--volume-ids", vid)
    aws("delete-snapshot", "--snapshot-id", sid)


def test_register_image_from_a_root_snapshot_and_launch_it_elsewhere(server):
    ec2 = client(server)
    iid = launch(ec2, "us-east-1a")
    inside(server, iid, "sh", "-c", "echo baked-in > /root/baked && sync")
    ec2.stop_instances(InstanceIds=[iid])
    wait(ec2, "instance_stopped", iid)
    sid = ec2.create_snapshot(VolumeId=root_volume(ec2, iid), Description="golden")["SnapshotId"]
    swait(ec2, sid)
    bdm = [{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": sid}}]
    ami = ec2.register_image(Name="golden-1", RootDeviceName="/dev/xvda", BlockDeviceMappings=bdm,
                             Architecture="x86_64", VirtualizationType="hvm")["ImageId"]
    im = ec2.describe_images(ImageIds=[ami])["Images"][0]
    assert (im["State"], im["Public"], im["Name"]) == ("available", False, "golden-1")
    assert im["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == sid
    assert [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]] == [ami]
    # private: another account cannot see or launch it
    other = client(server, **OTHER)
    assert ami not in [i["ImageId"] for i in other.describe_images()["Images"]]
    assert error_of(lambda: other.run_instances(ImageId=ami, MinCount=1, MaxCount=1))[0] == "InvalidAMIID.NotFound"

    r = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1,
                          Placement={"AvailabilityZone": "us-east-1b"})
    copy = r["Instances"][0]["InstanceId"]
    wait(ec2, "instance_running", copy)
    assert inside(server, copy, "cat", "/root/baked").stdout == "baked-in\n"

    assert error_of(lambda: ec2.register_image(Name="golden-1", RootDeviceName="/dev/xvda",
                                               BlockDeviceMappings=bdm))[0] == "InvalidAMIName.Duplicate"
    assert error_of(lambda: ec2.register_image(Name="x", BlockDeviceMappings=bdm))[0] == "InvalidAMIName.Malformed"
    assert error_of(lambda: ec2.register_image(Name="arm-1", Architecture="arm64", BlockDeviceMappings=bdm))[0] == (
        "InvalidParameterValue")
    assert error_of(lambda: ec2.delete_snapshot(SnapshotId=sid))[0] == "InvalidSnapshot.InUse"
    ec2.deregister_image(ImageId=ami)
    assert error_of(lambda: ec2.describe_images(ImageIds=[ami]))[0] == "InvalidAMIID.NotFound"
    ec2.terminate_instances(InstanceIds=[iid, copy])
    wait(ec2, "instance_terminated", iid)
    wait(ec2, "instance_terminated", copy)
    ec2.delete_snapshot(SnapshotId=sid)  # the image is gone: the snapshot is free to go


def test_root_volume_kept_when_asked(server):
    ec2 = client(server)
    iid = launch(ec2, "us-east-1a", BlockDeviceMappings=[
        {"DeviceName": "/dev/xvda", "Ebs": {"VolumeSize": 2, "DeleteOnTermination": False}}])
    vid = root_volume(ec2, iid)
    v = ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]
    assert v["Size"] == 2 and v["Attachments"][0]["DeleteOnTermination"] is False
    assert int(inside(server, iid, "sh", "-c", "df -k / | tail -1").stdout.split()[1]) > 1_500_000  # grown
    ec2.terminate_instances(InstanceIds=[iid])
    wait(ec2, "instance_terminated", iid)
    vwait(ec2, "volume_available", vid)  # it outlived its instance
    assert error_of(lambda: ec2.run_instances(ImageId=busybox(ec2), MinCount=1, MaxCount=1, BlockDeviceMappings=[
        {"DeviceName": "/dev/sdf", "Ebs": {"VolumeSize": 1}}]))[0] == "InvalidParameterValue"
    ec2.delete_volume(VolumeId=vid)
