"""CreateImage for real: every attached volume becomes a snapshot, a running instance is stopped
for the copy and started again (or frozen only, with NoReboot), and the image launches in
another zone with the files and the data volume of the original."""
import os
import time

import pytest

from conftest import client, error_of
from test_api_instances import inside, wait
from test_api_volumes import attached, launch, swait, vwait

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")


def iwait(ec2, ami):
    ec2.get_waiter("image_available").wait(ImageIds=[ami], WaiterConfig={"Delay": 1, "MaxAttempts": 120})


def state(ec2, iid):
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]


def test_create_image_of_a_running_instance_with_a_data_volume(server):
    ec2 = client(server)
    iid = launch(ec2, "us-east-1a")
    inside(server, iid, "sh", "-c", "echo configured > /root/config && sync")
    vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    vwait(ec2, "volume_available", vid)
    ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device="/dev/sdf")
    attached(ec2, vid)
    inside(server, iid, "sh", "-c", "echo data-on-sdf | dd of=/dev/sdf bs=512 conv=sync,fsync 2>/dev/null")

    ami = ec2.create_image(InstanceId=iid, Name="web-v1", Description="web server",
                           TagSpecifications=[{"ResourceType": "image", "Tags": [{"Key": "app", "Value": "web"}]},
                                              {"ResourceType": "snapshot", "Tags": [{"Key": "app", "Value": "web"}]}]
                           )["ImageId"]
    im = ec2.describe_images(ImageIds=[ami])["Images"][0]
    assert im["State"] == "pending"
    # (Debian's botocore predates the sourceInstanceId member; the filter shows it)
    assert [i["ImageId"] for i in ec2.describe_images(
        Filters=[{"Name": "source-instance-id", "Values": [iid]}])["Images"]] == [ami]
    iwait(ec2, ami)
    im = ec2.describe_images(ImageIds=[ami])["Images"][0]
    maps = {m["DeviceName"]: m["Ebs"] for m in im["BlockDeviceMappings"]}
    assert set(maps) == {"/dev/xvda", "/dev/sdf"} and {t["Key"]: t["Value"] for t in im["Tags"]} == {"app": "web"}
    snaps = ec2.describe_snapshots(SnapshotIds=[m["SnapshotId"] for m in maps.values()])["Snapshots"]
    assert all(s["State"] == "completed" and s["Description"].startswith(f"Created by CreateImage({iid}) for {ami}")
               for s in snaps)
    assert all({t["Key"]: t["Value"] for t in s["Tags"]} == {"app": "web"} for s in snaps)
    # the instance was stopped for the copy and runs again
    wait(ec2, "instance_running", iid)
    assert inside(server, iid, "cat", "/root/config").stdout == "configured\n"

    # launched in another zone: the same files, and the data volume with its bytes
    r = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1,
                          Placement={"AvailabilityZone": "us-east-1b"})
    copy = r["Instances"][0]["InstanceId"]
    wait(ec2, "instance_running", copy)
    assert inside(server, copy, "cat", "/root/config").stdout == "configured\n"
    assert inside(server, copy, "sh", "-c", "dd if=/dev/sdf bs=512 count=1 2>/dev/null").stdout.startswith(
        "data-on-sdf")
    vols = ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [copy]}])["Volumes"]
    assert sorted(v["Attachments"][0]["Device"] for v in vols) == ["/dev/sdf", "/dev/xvda"]
    assert all(v["AvailabilityZone"] == "us-east-1b" for v in vols)

    assert error_of(lambda: ec2.create_image(InstanceId=iid, Name="web-v1"))[0] == "InvalidAMIName.Duplicate"
    assert error_of(lambda: ec2.create_image(InstanceId=iid, Name="a"))[0] == "InvalidAMIName.Malformed"
    assert error_of(lambda: ec2.create_image(InstanceId="i-0123456789abcdef0", Name="x-1"))[0] == (
        "InvalidInstanceID.NotFound")
    assert error_of(lambda: ec2.delete_snapshot(SnapshotId=maps["/dev/sdf"]["SnapshotId"]))[0] == (
        "InvalidSnapshot.InUse")

    ec2.terminate_instances(InstanceIds=[iid, copy])
    wait(ec2, "instance_terminated", copy)
    wait(ec2, "instance_terminated", iid)
    assert error_of(lambda: ec2.create_image(InstanceId=iid, Name="too-late"))[0] == "IncorrectInstanceState"
    # the copy's volumes went with it (DeleteOnTermination from the image); the original's
    # data volume stays
    assert not ec2.describe_volumes(Filters=[{"Name": "attachment.instance-id", "Values": [copy]}])["Volumes"]
    vwait(ec2, "volume_available", vid)
    ec2.delete_volume(VolumeId=vid)


def test_no_reboot_and_stopped_instances_stay_as_they_are(server):
    ec2 = client(server)
    iid = launch(ec2, "us-east-1c")
    inside(server, iid, "sh", "-c", "echo live > /root/live")  # not synced: the freeze flushes it
    ami = ec2.create_image(InstanceId=iid, Name="live-1", NoReboot=True)["ImageId"]
    seen = set()
    for _ in range(200):
        seen.add(state(ec2, iid))
        if ec2.describe_images(ImageIds=[ami])["Images"][0]["State"] != "pending":
            break
        time.sleep(0.05)
    iwait(ec2, ami)
    assert seen == {"running"}  # never stopped
    ec2.stop_instances(InstanceIds=[iid])
    wait(ec2, "instance_stopped", iid)
    ami2 = ec2.create_image(InstanceId=iid, Name="stopped-1")["ImageId"]
    iwait(ec2, ami2)
    assert state(ec2, iid) == "stopped"
    r = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1,
                          Placement={"AvailabilityZone": "us-east-1a"})
    copy = r["Instances"][0]["InstanceId"]
    wait(ec2, "instance_running", copy)
    assert inside(server, copy, "cat", "/root/live").stdout == "live\n"
    # the newest image of a name prefix is the last made: creation dates increase
    ims = ec2.describe_images(ImageIds=[ami, ami2])["Images"]
    assert max(ims, key=lambda i: i["CreationDate"])["ImageId"] == ami2
    ec2.terminate_instances(InstanceIds=[iid, copy])
    wait(ec2, "instance_terminated", copy)
    wait(ec2, "instance_terminated", iid)


def test_sharing_across_three_accounts(server):
    from conftest import KILN, kiln
    from test_api_volumes import OTHER
    kiln("account", "create", "third", "--account-id", "333344445555", "--access-key", "AKIATHIRDTHIRDTHIRD1",
         "--secret-key", "third-secret-third-secret", "--data", server["data"])
    ec2, other = client(server), client(server, **OTHER)
    third = client(server, key="AKIATHIRDTHIRDTHIRD1", secret="third-secret-third-secret")
    iid = launch(ec2, "us-east-1a")
    inside(server, iid, "sh", "-c", "echo shared > /root/shared && sync")
    ami = ec2.create_image(InstanceId=iid, Name="shared-1")["ImageId"]
    iwait(ec2, ami)

    def sees(c):
        return ami in [i["ImageId"] for i in c.describe_images()["Images"]]

    assert sees(ec2) and not sees(other) and not sees(third)
    ec2.modify_image_attribute(ImageId=ami, LaunchPermission={"Add": [{"UserId": "222233334444"}]})
    assert sees(other) and not sees(third)
    assert [i["ImageId"] for i in other.describe_images(ExecutableUsers=["self"])["Images"]] == [ami]
    assert ami not in [i["ImageId"] for i in other.describe_images(Owners=["self"])["Images"]]
    perm = ec2.describe_image_attribute(ImageId=ami, Attribute="launchPermission")["LaunchPermissions"]
    assert perm == [{"UserId": "222233334444"}]
    assert error_of(lambda: other.describe_image_attribute(ImageId=ami, Attribute="launchPermission"))[0] == (
        "AuthFailure")
    assert error_of(lambda: other.modify_image_attribute(
        ImageId=ami, LaunchPermission={"Add": [{"Group": "all"}]}))[0] == "AuthFailure"
    assert error_of(lambda: third.run_instances(ImageId=ami, MinCount=1, MaxCount=1))[0] == "InvalidAMIID.NotFound"
    # the account it is shared with launches it, in its own name
    r = other.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1,
                            Placement={"AvailabilityZone": "us-east-1b"})
    theirs = r["Instances"][0]["InstanceId"]
    wait(other, "instance_running", theirs)
    assert inside(server, theirs, "cat", "/root/shared").stdout == "shared\n"
    assert error_of(lambda: ec2.describe_instances(InstanceIds=[theirs]))[0] == "InvalidInstanceID.NotFound"

    ec2.modify_image_attribute(ImageId=ami, Attribute="launchPermission", OperationType="add", UserGroups=["all"])
    assert sees(third) and third.describe_images(ImageIds=[ami])["Images"][0]["Public"] is True
    ec2.modify_image_attribute(ImageId=ami, Description={"Value": "now public"})
    assert ec2.describe_image_attribute(ImageId=ami, Attribute="description")["Description"]["Value"] == "now public"
    ec2.reset_image_attribute(ImageId=ami, Attribute="launchPermission")
    assert sees(ec2) and not sees(other) and not sees(third)
    assert ec2.describe_images(ImageIds=[ami])["Images"][0]["Public"] is False
    assert error_of(lambda: ec2.modify_image_attribute(
        ImageId=ami, LaunchPermission={"Add": [{"UserId": "12"}]}))[0] == "InvalidUserID.Malformed"
    other.terminate_instances(InstanceIds=[theirs])
    ec2.terminate_instances(InstanceIds=[iid])
    wait(other, "instance_terminated", theirs)
    wait(ec2, "instance_terminated", iid)


def pack_bytes(server, region):
    import json
    import subprocess
    from conftest import KILN
    out = subprocess.run([KILN, "store", "stats", os.path.join(server["data"], "regions", region, "store"), "--json"],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)["total"]["pack_bytes"]


def test_copy_image_to_another_region_moves_only_missing_chunks(server):
    ec2, eu = client(server), client(server, region="eu-west-1")
    iid = launch(ec2, "us-east-1a")
    inside(server, iid, "sh", "-c", "head -c 3000000 /dev/urandom > /root/blob && echo v1 > /root/version && sync")
    ami = ec2.create_image(InstanceId=iid, Name="copy-src-1")["ImageId"]
    iwait(ec2, ami)
    before = pack_bytes(server, "eu-west-1")
    copied = eu.copy_image(SourceRegion="us-east-1", SourceImageId=ami, Name="copy-dst-1",
                           ClientToken="copy-token-1")["ImageId"]
    assert eu.copy_image(SourceRegion="us-east-1", SourceImageId=ami, Name="copy-dst-1",
                         ClientToken="copy-token-1")["ImageId"] == copied  # idempotent
    im = eu.describe_images(ImageIds=[copied])["Images"][0]
    assert im["State"] in ("pending", "available") and im["Name"] == "copy-dst-1"
    iwait(eu, copied)
    first = pack_bytes(server, "eu-west-1") - before
    # eu-west-1 already holds the busybox base the image came from: only the changes moved
    # (3 MB of random data and what the boot wrote), not the whole image
    assert 3_000_000 <= first < 8_000_000, first
    snap = eu.describe_images(ImageIds=[copied])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    s = eu.describe_snapshots(SnapshotIds=[snap])["Snapshots"][0]
    assert (s["State"], s["Progress"]) == ("completed", "100%") and "SourceAmi " + ami in s["Description"]
    assert error_of(lambda: ec2.describe_images(ImageIds=[copied]))[0] == "InvalidAMIID.NotFound"

    r = eu.run_instances(ImageId=copied, InstanceType="t2.nano", MinCount=1, MaxCount=1,
                         Placement={"AvailabilityZone": "eu-west-1b"})
    there = r["Instances"][0]["InstanceId"]
    wait(eu, "instance_running", there)
    assert inside(server, there, "cat", "/root/version").stdout == "v1\n"
    assert r["Instances"][0]["PrivateDnsName"].endswith(".eu-west-1.compute.internal")

    # a derived image: one small change; its copy moves a few chunks only
    inside(server, iid, "sh", "-c", "echo v2 > /root/version && sync")
    ami2 = ec2.create_image(InstanceId=iid, Name="copy-src-2")["ImageId"]
    iwait(ec2, ami2)
    before = pack_bytes(server, "eu-west-1")
    copied2 = eu.copy_image(SourceRegion="us-east-1", SourceImageId=ami2, Name="copy-dst-2")["ImageId"]
    iwait(eu, copied2)
    assert pack_bytes(server, "eu-west-1") - before < 1_000_000

    # CopySnapshot, and the errors
    sid = ec2.describe_images(ImageIds=[ami2])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    sc = eu.copy_snapshot(SourceRegion="us-east-1", SourceSnapshotId=sid, Description="one more")["SnapshotId"]
    swait(eu, sc)
    assert eu.describe_snapshots(SnapshotIds=[sc])["Snapshots"][0]["Description"] == "one more"
    assert error_of(lambda: eu.copy_image(SourceRegion="us-east-1", SourceImageId="ami-0123456789abcdef0",
                                          Name="nope-1"))[0] == "InvalidAMIID.NotFound"
    assert error_of(lambda: eu.copy_image(SourceRegion="us-east-1", SourceImageId=ami, Name="copy-dst-1"))[0] == (
        "InvalidAMIName.Duplicate")
    assert error_of(lambda: eu.copy_snapshot(SourceRegion="us-east-1",
                                             SourceSnapshotId="snap-0123456789abcdef0"))[0] == "InvalidSnapshot.NotFound"
    eu.terminate_instances(InstanceIds=[there])
    ec2.terminate_instances(InstanceIds=[iid])
    wait(eu, "instance_terminated", there)
    wait(ec2, "instance_terminated", iid)


def raw_call(server, action, **params):
    """An action Debian's botocore does not know yet (DisableImage, EnableImage), signed by hand."""
    import configparser
    import urllib.parse
    import urllib.request
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    cred = configparser.ConfigParser()
    cred.read(os.path.join(server["data"], "credentials"))
    body = urllib.parse.urlencode(dict(Action=action, Version="2016-11-15", **params))
    req = AWSRequest("POST", server["url"] + "/", data=body,
                     headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"})
    SigV4Auth(Credentials(cred["default"]["aws_access_key_id"], cred["default"]["aws_secret_access_key"]),
              "ec2", "us-east-1").add_auth(req)
    r = urllib.request.Request(req.url, data=body.encode(), headers=dict(req.headers), method="POST")
    try:
        with urllib.request.urlopen(r) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_deprecation_and_disabling(server):
    from test_api_volumes import OTHER
    ec2, other = client(server), client(server, **OTHER)
    iid = launch(ec2, "us-east-1a")
    ec2.stop_instances(InstanceIds=[iid])
    wait(ec2, "instance_stopped", iid)
    ami = ec2.create_image(InstanceId=iid, Name="old-1")["ImageId"]
    iwait(ec2, ami)
    ec2.modify_image_attribute(ImageId=ami, LaunchPermission={"Add": [{"UserId": "222233334444"}]})
    ec2.enable_image_deprecation(ImageId=ami, DeprecateAt="2020-01-01T00:00:00Z")
    im = ec2.describe_images(ImageIds=[ami])["Images"][0]
    assert im["DeprecationTime"].startswith("2020-01-01T00:00:00")
    # deprecated: others see it only when they ask for deprecated images; the owner always
    assert ami not in [i["ImageId"] for i in other.describe_images(ExecutableUsers=["self"])["Images"]]
    assert ami in [i["ImageId"] for i in other.describe_images(ExecutableUsers=["self"], IncludeDeprecated=True)["Images"]]
    ec2.disable_image_deprecation(ImageId=ami)
    assert ami in [i["ImageId"] for i in other.describe_images(ExecutableUsers=["self"])["Images"]]
    status, body = raw_call(server, "EnableImageDeprecation", ImageId=ami, DeprecateAt="soon")
    assert status == 400 and "InvalidParameterValue" in body

    status, body = raw_call(server, "DisableImage", ImageId=ami)
    assert status == 200 and "<return>true</return>" in body
    # disabled: private again, not launchable, listed only when asked for
    assert ami not in [i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]]
    assert error_of(lambda: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1))[0] == "InvalidAMIID.Unavailable"
    assert ami not in [i["ImageId"] for i in other.describe_images()["Images"]]
    status, body = raw_call(server, "DisableImage", ImageId=ami)
    assert status == 400 and "IncorrectState" in body
    status, body = raw_call(server, "EnableImage", ImageId=ami)
    assert status == 200
    assert ec2.describe_images(ImageIds=[ami])["Images"][0]["State"] == "available"
    assert ami not in [i["ImageId"] for i in other.describe_images()["Images"]]  # its grants went
    assert ec2.describe_images(Filters=[{"Name": "product-code", "Values": ["*"]}])["Images"] == []
    ec2.terminate_instances(InstanceIds=[iid])
    wait(ec2, "instance_terminated", iid)


def test_register_image_with_a_data_volume_and_the_aws_cli(server):
    """RegisterImage with a second mapping; then the image workflow through /usr/bin/aws (v2)."""
    import json
    import subprocess
    from conftest import AWS
    ec2 = client(server)
    iid = launch(ec2, "us-east-1a")
    vid = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    vwait(ec2, "volume_available", vid)
    ec2.attach_volume(VolumeId=vid, InstanceId=iid, Device="/dev/sdg")
    attached(ec2, vid)
    inside(server, iid, "sh", "-c", "echo registered-data | dd of=/dev/sdg bs=512 conv=sync,fsync 2>/dev/null")
    ec2.stop_instances(InstanceIds=[iid])
    wait(ec2, "instance_stopped", iid)
    root = ec2.create_snapshot(VolumeId=[m["Ebs"]["VolumeId"] for m in ec2.describe_instances(
        InstanceIds=[iid])["Reservations"][0]["Instances"][0]["BlockDeviceMappings"] if m["DeviceName"] == "/dev/xvda"][0])
    data = ec2.create_snapshot(VolumeId=vid)
    swait(ec2, root["SnapshotId"])
    swait(ec2, data["SnapshotId"])
    ami = ec2.register_image(Name="registered-2", RootDeviceName="/dev/xvda", BlockDeviceMappings=[
        {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": root["SnapshotId"]}},
        {"DeviceName": "/dev/sdg", "Ebs": {"SnapshotId": data["SnapshotId"], "VolumeSize": 2}},
        {"DeviceName": "/dev/sdh", "NoDevice": ""}])["ImageId"]
    maps = {m["DeviceName"]: m["Ebs"] for m in ec2.describe_images(ImageIds=[ami])["Images"][0]["BlockDeviceMappings"]}
    assert set(maps) == {"/dev/xvda", "/dev/sdg"} and maps["/dev/sdg"]["VolumeSize"] == 2
    assert error_of(lambda: ec2.register_image(Name="registered-3", RootDeviceName="/dev/xvda", BlockDeviceMappings=[
        {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": root["SnapshotId"]}},
        {"DeviceName": "/dev/sdg", "Ebs": {"VolumeSize": 2}}]))[0] == "InvalidParameterValue"

    env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=os.path.join(server["data"], "credentials"),
               AWS_CONFIG_FILE=os.path.join(server["data"], "config"), AWS_PAGER="")

    def aws(*args, region="us-east-1"):
        r = subprocess.run([AWS, "--endpoint-url", server["url"], "--region", region, "--output", "json", "ec2",
                            *args], capture_output=True, text=True, env=env)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout) if r.stdout.strip() else None

    out = aws("run-instances", "--image-id", ami, "--count", "1", "--instance-type", "t2.nano",
              "--placement", "AvailabilityZone=us-east-1b")
    copy = out["Instances"][0]["InstanceId"]
    aws("wait", "instance-running", "--instance-ids", copy)
    assert inside(server, copy, "sh", "-c", "dd if=/dev/sdg bs=512 count=1 2>/dev/null").stdout.startswith(
        "registered-data")
    baked = aws("create-image", "--instance-id", copy, "--name", "cli-made-1", "--no-reboot")["ImageId"]
    aws("wait", "image-available", "--image-ids", baked)
    eu = aws("copy-image", "--source-region", "us-east-1", "--source-image-id", baked, "--name", "cli-made-1",
             region="eu-west-1")["ImageId"]
    aws("wait", "image-available", "--image-ids", eu, region="eu-west-1")
    aws("modify-image-attribute", "--image-id", baked, "--launch-permission", "Add=[{Group=all}]")
    assert aws("describe-images", "--image-ids", baked)["Images"][0]["Public"] is True
    aws("deregister-image", "--image-id", eu, region="eu-west-1")
    aws("terminate-instances", "--instance-ids", copy, iid)
    aws("wait", "instance-terminated", "--instance-ids", copy, iid)
