"""What a client asks first, as EC2 answers it: id shapes (8- and 17-digit), the error codes of
common mistakes, DryRun on every action, regions beyond the topology's, instance attributes."""
import json
import os
import subprocess

import botocore.exceptions
import pytest

from conftest import AWS, KILN, client, error_of, kiln, serving


def message_of(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


@pytest.mark.parametrize("good", ["ami-12c6146b", "ami-0123456789abcdef0"])
def test_well_formed_unknown_image_ids_are_not_found(server, good):
    ec2 = client(server)
    assert error_of(lambda: ec2.describe_images(ImageIds=[good])) == ("InvalidAMIID.NotFound", 400)
    assert error_of(lambda: ec2.deregister_image(ImageId=good)) == ("InvalidAMIID.NotFound", 400)


@pytest.mark.parametrize("bad", ["ami-12c6146", "ami-12c6146b0", "ami-12C6146B", "ami-", "12c6146b",
                                 "ami-0123456789abcdef", "ami-0123456789abcdef0g"])
def test_malformed_image_ids(server, bad):
    ec2 = client(server)
    assert error_of(lambda: ec2.describe_images(ImageIds=[bad])) == ("InvalidAMIID.Malformed", 400)


def test_short_ids_of_every_kind(server):
    ec2 = client(server)
    assert error_of(lambda: ec2.describe_instances(InstanceIds=["i-1234abcd"])) == (
        "InvalidInstanceID.NotFound", 400)
    assert error_of(lambda: ec2.stop_instances(InstanceIds=["i-1234abcd"])) == (
        "InvalidInstanceID.NotFound", 400)
    assert error_of(lambda: ec2.describe_volumes(VolumeIds=["vol-1234abcd"])) == (
        "InvalidVolume.NotFound", 400)
    assert error_of(lambda: ec2.delete_volume(VolumeId="vol-1234abcd")) == ("InvalidVolume.NotFound", 400)
    assert error_of(lambda: ec2.describe_snapshots(SnapshotIds=["snap-1234abcd"])) == (
        "InvalidSnapshot.NotFound", 400)
    assert error_of(lambda: ec2.delete_snapshot(SnapshotId="snap-1234abcd")) == (
        "InvalidSnapshot.NotFound", 400)
    assert error_of(lambda: ec2.describe_instances(InstanceIds=["i-1234abc"])) == (
        "InvalidInstanceID.Malformed", 400)
    assert error_of(lambda: ec2.describe_volumes(VolumeIds=["vol-1234abcde"])) == (
        "InvalidVolumeID.Malformed", 400)
    assert error_of(lambda: ec2.describe_snapshots(SnapshotIds=["snap-xyz"])) == (
        "InvalidSnapshotID.Malformed", 400)


def aws_cli(server, *args, region="us-east-1"):
    env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=os.path.join(server["data"], "credentials"),
               AWS_CONFIG_FILE=os.path.join(server["data"], "config"))
    env.pop("AWS_ACCESS_KEY_ID", None)
    env.pop("AWS_SECRET_ACCESS_KEY", None)
    return subprocess.run([AWS, "--endpoint-url", server["url"], "--region", region, "ec2", *args,
                           "--output", "json"], capture_output=True, text=True, env=env)


def public_busybox(ec2):
    images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-busybox"]}])
    assert images["Images"], "the public busybox image is missing (make images)"
    return images["Images"][0]["ImageId"]


def unvalidated(server, region="us-east-1"):
    """A client that sends what it is given, as a hand-written request would."""
    import configparser
    import boto3
    from botocore.config import Config
    cred = configparser.ConfigParser()
    cred.read(os.path.join(server["data"], "credentials"))
    return boto3.client("ec2", region_name=region, endpoint_url=server["url"],
                        aws_access_key_id=cred["default"]["aws_access_key_id"],
                        aws_secret_access_key=cred["default"]["aws_secret_access_key"],
                        config=Config(parameter_validation=False, retries={"max_attempts": 1}))


def test_unknown_instance_type(server):
    ec2 = client(server)
    ami = public_busybox(ec2)
    assert message_of(lambda: ec2.run_instances(ImageId=ami, InstanceType="z9.huge", MinCount=1,
                                                MaxCount=1)) == (
        "InvalidParameterValue", "Invalid value 'z9.huge' for InstanceType.")


def test_missing_parameters(server):
    ec2 = unvalidated(server)
    ami = public_busybox(client(server))
    assert message_of(lambda: ec2.run_instances(MinCount=1, MaxCount=1))[0] == "MissingParameter"
    assert message_of(lambda: ec2.run_instances(ImageId=ami, MaxCount=1)) == (
        "MissingParameter", "The request must contain the parameter MinCount")
    assert message_of(lambda: ec2.create_volume(Size=1))[0] == "MissingParameter"
    assert message_of(lambda: ec2.create_snapshot())[0] == "MissingParameter"
    assert message_of(lambda: ec2.attach_volume(VolumeId="vol-1234abcd"))[0] == "MissingParameter"


def test_dry_run_on_mutating_actions(server):
    ec2 = client(server)
    ami = public_busybox(ec2)
    calls = [
        lambda: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, DryRun=True),
        lambda: ec2.create_volume(AvailabilityZone="us-east-1a", Size=1, DryRun=True),
        lambda: ec2.create_tags(Resources=[ami], Tags=[{"Key": "k", "Value": "v"}], DryRun=True),
        lambda: ec2.copy_image(SourceRegion="us-east-1", SourceImageId=ami, Name="x-copy", DryRun=True),
        lambda: ec2.stop_instances(InstanceIds=["i-1234abcd"], DryRun=True),
        lambda: ec2.terminate_instances(InstanceIds=["i-0123456789abcdef0"], DryRun=True),
        lambda: ec2.delete_volume(VolumeId="vol-1234abcd", DryRun=True),
        lambda: ec2.modify_instance_attribute(InstanceId="i-1234abcd", InstanceType={"Value": "t2.nano"},
                                              DryRun=True),
    ]
    for call in calls:
        assert error_of(call) == ("DryRunOperation", 412)
    # nothing was made
    assert ec2.describe_volumes()["Volumes"] == []
    assert ec2.describe_tags()["Tags"] == []
    out = aws_cli(server, "create-volume", "--availability-zone", "us-east-1b", "--size", "1", "--dry-run")
    assert out.returncode != 0 and "DryRunOperation" in out.stderr


ENABLED = {"us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "eu-west-1", "eu-west-2",
           "eu-west-3", "eu-central-1", "eu-north-1", "ap-south-1", "ap-northeast-1", "ap-northeast-2",
           "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "sa-east-1"}


def test_every_commercial_region_is_listed(server):
    ec2 = client(server)
    got = {r["RegionName"]: r["OptInStatus"] for r in ec2.describe_regions()["Regions"]}
    assert set(got) == ENABLED and set(got.values()) == {"opt-in-not-required"}
    every = {r["RegionName"]: r["OptInStatus"] for r in ec2.describe_regions(AllRegions=True)["Regions"]}
    assert ENABLED < set(every)
    for name in ("af-south-1", "ap-east-1", "me-south-1", "eu-south-1"):
        assert every[name] == "not-opted-in"
    got = ec2.describe_regions(Filters=[{"Name": "opt-in-status", "Values": ["not-opted-in"]}],
                               AllRegions=True)["Regions"]
    assert "me-south-1" in {r["RegionName"] for r in got} and not ENABLED & {r["RegionName"] for r in got}
    # an opt-in region is refused as EC2 refuses it to an account that has not opted in
    assert error_of(lambda: client(server, "af-south-1").describe_images(Owners=["amazon"])) == (
        "AuthFailure", 401)
    assert error_of(lambda: client(server, "xx-nowhere-1").describe_regions()) == ("AuthFailure", 401)


def test_a_region_is_served_on_its_first_request(server):
    import concurrent.futures
    # several first requests at once: one makes the region, the others wait for it
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: client(server, "us-east-2").describe_images(Owners=["amazon"]),
                                range(4)))
    ids = [sorted(i["ImageId"] for i in a["Images"]) for a in answers]
    assert ids[0] and all(x == ids[0] for x in ids)
    east = {i["Name"]: i for i in client(server).describe_images(Owners=["amazon"])["Images"]}
    there = {i["Name"]: i for i in answers[0]["Images"]}
    assert set(there) == set(east)
    for name, im in there.items():
        assert im["ImageId"] != east[name]["ImageId"] and im["State"] == "available" and im["Public"]
        assert im["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] != east[name]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    zones = client(server, "us-east-2").describe_availability_zones()["AvailabilityZones"]
    assert [(z["ZoneName"], z["ZoneId"]) for z in zones] == [
        ("us-east-2a", "use2-az1"), ("us-east-2b", "use2-az2"), ("us-east-2c", "use2-az3")]
    out = aws_cli(server, "describe-availability-zones", region="ap-northeast-1")
    assert out.returncode == 0, out.stderr
    assert [(z["ZoneName"], z["ZoneId"]) for z in json.loads(out.stdout)["AvailabilityZones"]] == [
        ("ap-northeast-1a", "apne1-az1"), ("ap-northeast-1c", "apne1-az2"), ("ap-northeast-1d", "apne1-az3")]


@pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")
def test_run_an_instance_in_us_west_2(server):
    ec2 = client(server, "us-west-2")
    ami = public_busybox(ec2)
    zones = [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]]
    assert zones == ["us-west-2a", "us-west-2b", "us-west-2c", "us-west-2d"]
    iid = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1,
                            Placement={"AvailabilityZone": "us-west-2b"})["Instances"][0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    d = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert d["Placement"]["AvailabilityZone"] == "us-west-2b" and d["PrivateDnsName"].endswith(
        ".us-west-2.compute.internal")
    assert client(server).describe_instances(Filters=[{"Name": "instance-id", "Values": [iid]}])["Reservations"] == []
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def inside(server, iid, *cmd):
    return subprocess.run([KILN, "runtime", "exec", os.path.join(server["data"], "run"), iid, "--", *cmd],
                          capture_output=True, text=True)


def wait_state(ec2, iid, state, tries=90):
    import time
    for _ in range(tries):
        d = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        if d["State"]["Name"] == state:
            return d
        time.sleep(1)
    raise AssertionError(f"{iid} is {d['State']['Name']}, not {state}")


def attribute(ec2, iid, name):
    return ec2.describe_instance_attribute(InstanceId=iid, Attribute=name)


@pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")
def test_instance_attributes_and_their_effects(server):
    import base64
    ec2 = client(server)
    ami = public_busybox(ec2)
    iid = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1,
                            UserData="#!/bin/sh\necho hello\n", DisableApiTermination=True,
                            InstanceInitiatedShutdownBehavior="terminate")["Instances"][0]["InstanceId"]
    wait_state(ec2, iid, "running")
    assert attribute(ec2, iid, "instanceType")["InstanceType"]["Value"] == "t2.nano"
    assert base64.b64decode(attribute(ec2, iid, "userData")["UserData"]["Value"]) == b"#!/bin/sh\necho hello\n"
    assert attribute(ec2, iid, "disableApiTermination")["DisableApiTermination"]["Value"] is True
    assert attribute(ec2, iid, "instanceInitiatedShutdownBehavior")[
        "InstanceInitiatedShutdownBehavior"]["Value"] == "terminate"
    assert attribute(ec2, iid, "rootDeviceName")["RootDeviceName"]["Value"] == "/dev/xvda"
    bdm = attribute(ec2, iid, "blockDeviceMapping")["BlockDeviceMappings"]
    assert [m["DeviceName"] for m in bdm] == ["/dev/xvda"] and bdm[0]["Ebs"]["VolumeId"].startswith("vol-")
    assert error_of(lambda: attribute(ec2, iid, "kernel")) == ("InvalidParameterValue", 400)
    assert error_of(lambda: attribute(ec2, "i-1234abcd", "instanceType")) == ("InvalidInstanceID.NotFound", 400)
    # termination protection
    code, msg = message_of(lambda: ec2.terminate_instances(InstanceIds=[iid]))
    assert code == "OperationNotPermitted" and "disableApiTermination" in msg
    # stop protection, both forms
    ec2.modify_instance_attribute(InstanceId=iid, DisableApiStop={"Value": True})
    assert error_of(lambda: ec2.stop_instances(InstanceIds=[iid])) == ("OperationNotPermitted", 400)
    assert error_of(lambda: ec2.stop_instances(InstanceIds=[iid], Force=True)) == ("OperationNotPermitted", 400)
    ec2.modify_instance_attribute(InstanceId=iid, Attribute="disableApiStop", Value="false")
    ec2.modify_instance_attribute(InstanceId=iid, Attribute="instanceInitiatedShutdownBehavior", Value="stop")
    assert attribute(ec2, iid, "instanceInitiatedShutdownBehavior")[
        "InstanceInitiatedShutdownBehavior"]["Value"] == "stop"
    assert error_of(lambda: ec2.modify_instance_attribute(
        InstanceId=iid, InstanceInitiatedShutdownBehavior={"Value": "explode"})) == ("InvalidParameterValue", 400)
    # a poweroff inside: stopped, as the behaviour says, with EC2's reason
    inside(server, iid, "poweroff")
    d = wait_state(ec2, iid, "stopped")
    assert d["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown", d["StateReason"]
    ec2.modify_instance_attribute(InstanceId=iid, InstanceType={"Value": "t2.micro"})
    assert attribute(ec2, iid, "instanceType")["InstanceType"]["Value"] == "t2.micro"
    ec2.modify_instance_attribute(InstanceId=iid, InstanceInitiatedShutdownBehavior={"Value": "terminate"})
    ec2.start_instances(InstanceIds=[iid])
    wait_state(ec2, iid, "running")
    # terminate behaviour: the shutdown terminates it, termination protection notwithstanding (as on EC2)
    inside(server, iid, "poweroff")
    d = wait_state(ec2, iid, "terminated")
    assert d["StateReason"]["Code"] == "Client.InstanceInitiatedShutdown"


@pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")
def test_run_instances_attribute_errors(server):
    ec2 = client(server)
    ami = public_busybox(ec2)
    assert error_of(lambda: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1,
                                              InstanceInitiatedShutdownBehavior="explode")) == (
        "InvalidParameterValue", 400)
    assert error_of(lambda: ec2.modify_instance_attribute(
        InstanceId="i-1234abcd", DisableApiStop={"Value": True}, InstanceType={"Value": "t2.nano"})) == (
        "InvalidParameterCombination", 400)
    assert error_of(lambda: ec2.modify_instance_attribute(InstanceId="i-1234abcd", DisableApiStop={"Value": True})) == (
        "InvalidInstanceID.NotFound", 400)
    out = aws_cli(server, "describe-instance-attribute", "--instance-id", "i-1234abcd", "--attribute", "userData")
    assert out.returncode != 0 and "InvalidInstanceID.NotFound" in out.stderr


def test_instance_type_offerings(server):
    ec2 = client(server)
    types = {t["InstanceType"] for p in ec2.get_paginator("describe_instance_types").paginate()
             for t in p["InstanceTypes"]}
    region = ec2.describe_instance_type_offerings()["InstanceTypeOfferings"]
    assert {o["InstanceType"] for o in region} == types
    assert {(o["LocationType"], o["Location"]) for o in region} == {("region", "us-east-1")}
    az = [o for p in ec2.get_paginator("describe_instance_type_offerings").paginate(
        LocationType="availability-zone", PaginationConfig={"PageSize": 5}) for o in p["InstanceTypeOfferings"]]
    assert len(az) == 3 * len(types)
    assert {o["Location"] for o in az} == {"us-east-1a", "us-east-1b", "us-east-1c"}
    got = ec2.describe_instance_type_offerings(
        LocationType="availability-zone-id",
        Filters=[{"Name": "location", "Values": ["use1-az2"]},
                 {"Name": "instance-type", "Values": ["t2.nano", "m5.large"]}])["InstanceTypeOfferings"]
    assert sorted((o["InstanceType"], o["Location"], o["LocationType"]) for o in got) == [
        ("m5.large", "use1-az2", "availability-zone-id"), ("t2.nano", "use1-az2", "availability-zone-id")]
    eu = client(server, "eu-west-1").describe_instance_type_offerings(
        LocationType="availability-zone", Filters=[{"Name": "instance-type", "Values": ["t2.micro"]}])
    assert [o["Location"] for o in eu["InstanceTypeOfferings"]] == ["eu-west-1a", "eu-west-1b"]
    assert error_of(lambda: unvalidated(server).describe_instance_type_offerings(LocationType="planet")) == (
        "InvalidParameterValue", 400)
    out = aws_cli(server, "describe-instance-type-offerings", "--location-type", "availability-zone",
                  "--filters", "Name=instance-type,Values=t2.nano")
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)["InstanceTypeOfferings"]) == 3


def test_volume_status_and_attributes(server):
    ec2 = client(server)
    vol = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    st = ec2.describe_volume_status(VolumeIds=[vol])["VolumeStatuses"]
    assert len(st) == 1 and st[0]["VolumeId"] == vol and st[0]["AvailabilityZone"] == "us-east-1a"
    assert st[0]["VolumeStatus"]["Status"] == "ok"
    assert {d["Name"]: d["Status"] for d in st[0]["VolumeStatus"]["Details"]}["io-enabled"] == "passed"
    assert st[0]["Actions"] == [] and st[0]["Events"] == []
    assert vol in [s["VolumeId"] for s in ec2.describe_volume_status(
        Filters=[{"Name": "volume-status.status", "Values": ["ok"]}])["VolumeStatuses"]]
    assert ec2.describe_volume_status(Filters=[{"Name": "volume-status.status",
                                                "Values": ["impaired"]}])["VolumeStatuses"] == []
    assert error_of(lambda: ec2.describe_volume_status(VolumeIds=["vol-1234abcd"])) == ("InvalidVolume.NotFound", 400)
    a = ec2.describe_volume_attribute(VolumeId=vol, Attribute="autoEnableIO")
    assert a["VolumeId"] == vol and a["AutoEnableIO"]["Value"] is False
    assert ec2.describe_volume_attribute(VolumeId=vol, Attribute="productCodes")["ProductCodes"] == []
    assert error_of(lambda: unvalidated(server).describe_volume_attribute(VolumeId=vol, Attribute="size")) == (
        "InvalidParameterValue", 400)
    assert error_of(lambda: ec2.describe_volume_attribute(VolumeId="vol-1234abcd", Attribute="autoEnableIO")) == (
        "InvalidVolume.NotFound", 400)
    ec2.delete_volume(VolumeId=vol)


def test_a_region_made_on_first_use_outlives_a_restart(tmp_path):
    data = tmp_path / "data"
    kiln("init", "--data", data)
    gen = serving(data)
    srv = next(gen)
    try:
        first = sorted(i["ImageId"] for i in
                       client(srv, "ca-central-1").describe_images(Owners=["amazon"])["Images"])
        assert first
    finally:
        next(gen, None)  # stops the daemon
    gen = serving(data)
    srv = next(gen)
    try:
        ec2 = client(srv, "ca-central-1")
        assert sorted(i["ImageId"] for i in ec2.describe_images(Owners=["amazon"])["Images"]) == first
        assert [z["ZoneName"] for z in ec2.describe_availability_zones()["AvailabilityZones"]] == [
            "ca-central-1a", "ca-central-1b", "ca-central-1d"]
    finally:
        next(gen, None)
    r = kiln("store", "verify", data / "regions" / "ca-central-1" / "store", check=False)
    assert r.returncode == 0, r.stdout + r.stderr


def test_every_region_numbers_its_own_zones_subnets(tmp_path):
    """Each region's default VPC is 172.31.0.0/16 with its zones' /20s in order from
    172.31.0.0/20, as EC2's: regions past the 16 /20s of one VPC are all served."""
    data = tmp_path / "data"
    (tmp_path / "topology").write_text("us-east-1 a b c d e f\neu-west-1 a b c\n")
    kiln("init", "--data", data, "--topology", tmp_path / "topology", "--no-images")
    gen = serving(data)
    srv = next(gen)
    try:
        # 9 zones in the topology, 18 more in these: 27 in all
        extra = {"us-west-2": "abcd", "us-west-1": "ab", "us-east-2": "abc", "eu-west-2": "abc",
                 "ap-northeast-1": "acd", "sa-east-1": "abc"}
        for region, letters in [("us-east-1", "abcdef"), ("eu-west-1", "abc"), *extra.items()]:
            ec2 = client(srv, region)
            zones = ec2.describe_availability_zones()["AvailabilityZones"]
            assert [z["ZoneName"] for z in zones] == [region + x for x in letters]
            subnets = ec2.describe_subnets(
                Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]
            got = sorted((s["AvailabilityZone"], s["CidrBlock"]) for s in subnets)
            assert got == [(region + x, f"172.31.{16 * i}.0/20") for i, x in enumerate(letters)], region
            vpcs = ec2.describe_vpcs()["Vpcs"]
            assert [(v["CidrBlock"], v["IsDefault"]) for v in vpcs] == [("172.31.0.0/16", True)]
            if region in extra:
                assert ec2.describe_images(Owners=["amazon"])["Images"] == []  # none to copy
    finally:
        next(gen, None)  # stops the daemon
