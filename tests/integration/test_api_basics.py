"""The EC2 Query API as real clients see it: boto3 and the aws CLI against `kiln serve` on a
loopback port, with SigV4 on every request."""
import concurrent.futures
import json
import os
import subprocess
import urllib.request

import pytest

from conftest import AWS, client, error_of, kiln


def test_regions_and_zones(server):
    ec2 = client(server)
    regions = [r["RegionName"] for r in ec2.describe_regions()["Regions"]]
    assert regions[:2] == ["us-east-1", "eu-west-1"]  # the topology's first, then EC2's others
    zones = ec2.describe_availability_zones()["AvailabilityZones"]
    assert [(z["ZoneName"], z["ZoneId"], z["State"]) for z in zones] == [
        ("us-east-1a", "use1-az1", "available"), ("us-east-1b", "use1-az2", "available"),
        ("us-east-1c", "use1-az3", "available")]
    eu = client(server, "eu-west-1").describe_availability_zones()["AvailabilityZones"]
    assert [z["ZoneName"] for z in eu] == ["eu-west-1a", "eu-west-1b"]
    got = ec2.describe_availability_zones(Filters=[{"Name": "zone-name", "Values": ["*b", "*c"]}])
    assert [z["ZoneName"] for z in got["AvailabilityZones"]] == ["us-east-1b", "us-east-1c"]
    got = ec2.describe_regions(RegionNames=["eu-west-1"])["Regions"]
    assert [r["RegionName"] for r in got] == ["eu-west-1"]
    assert error_of(lambda: ec2.describe_regions(RegionNames=["mars-north-1"])) == (
        "InvalidParameterValue", 400)
    assert error_of(lambda: ec2.describe_availability_zones(ZoneNames=["eu-west-1a"])) == (
        "InvalidParameterValue", 400)
    assert error_of(lambda: ec2.describe_regions(Filters=[{"Name": "bogus", "Values": ["x"]}])) == (
        "InvalidParameterValue", 400)


def test_instance_types_with_filters_and_pages(server):
    ec2 = client(server)
    got = ec2.describe_instance_types(InstanceTypes=["t2.nano", "m5.large"])["InstanceTypes"]
    assert {t["InstanceType"]: (t["VCpuInfo"]["DefaultVCpus"], t["MemoryInfo"]["SizeInMiB"])
            for t in got} == {"t2.nano": (1, 512), "m5.large": (2, 8192)}
    two = ec2.describe_instance_types(Filters=[{"Name": "vcpu-info.default-vcpus", "Values": ["4"]}])
    assert all(t["VCpuInfo"]["DefaultVCpus"] == 4 for t in two["InstanceTypes"])
    assert len(two["InstanceTypes"]) >= 3
    pages = list(ec2.get_paginator("describe_instance_types").paginate(PaginationConfig={"PageSize": 5}))
    names = [t["InstanceType"] for p in pages for t in p["InstanceTypes"]]
    assert len(pages) >= 3 and len(names) == len(set(names)) >= 14
    assert error_of(lambda: ec2.describe_instance_types(InstanceTypes=["z9.huge"])) == (
        "InvalidInstanceType", 400)


def test_authentication_errors(server):
    assert error_of(lambda: client(server, key="AKIANOBODYNOBODYNOB1", secret="x" * 40)
                    .describe_regions()) == ("AuthFailure", 401)
    import configparser
    cred = configparser.ConfigParser()
    cred.read(os.path.join(server["data"], "credentials"))
    wrong = client(server, key=cred["default"]["aws_access_key_id"], secret="y" * 40)
    assert error_of(lambda: wrong.describe_regions()) == ("SignatureDoesNotMatch", 403)
    assert error_of(lambda: client(server, region="mars-north-1").describe_regions()) == (
        "AuthFailure", 401)
    # unsigned: no credentials at all
    req = urllib.request.Request(server["url"] + "/", data=b"Action=DescribeRegions",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req)
    assert e.value.code == 401 and b"<Code>MissingAuthenticationToken</Code>" in e.value.read()


def test_a_key_made_while_serving_signs_at_once(server):
    """The daemon keeps the keys it found in memory (src/cloud/memo.c), never one it did not
    find: a key refused a moment ago signs the next call once `kiln account create` beside the
    running daemon made it, and a wrong secret for a kept key is still refused."""
    key, secret = "AKIALATERLATERLATER1", "later-secret-later-secret-later-secret-1"
    late = client(server, key=key, secret=secret)
    assert error_of(lambda: late.describe_regions()) == ("AuthFailure", 401)
    kiln("account", "create", "later", "--account-id", "333344445555", "--access-key", key,
         "--secret-key", secret, "--data", server["data"])
    assert [r["RegionName"] for r in late.describe_regions()["Regions"]][:1] == ["us-east-1"]
    import boto3
    sts = boto3.client("sts", region_name="us-east-1", endpoint_url=server["url"],
                       aws_access_key_id=key, aws_secret_access_key=secret)
    assert sts.get_caller_identity()["Account"] == "333344445555"
    wrong = client(server, key=key, secret="z" * 40)
    assert error_of(lambda: wrong.describe_regions()) == ("SignatureDoesNotMatch", 403)
    assert late.describe_regions()["Regions"]


def test_unimplemented_actions_and_dry_run(server):
    ec2 = client(server)
    assert error_of(lambda: ec2.describe_regions(DryRun=True)) == ("DryRunOperation", 412)
    # an action kiln does not serve yet is a clean 400, never a 5xx (botocore would retry it)
    code, status = error_of(lambda: ec2.describe_nat_gateways())
    assert (code, status) == ("InvalidAction", 400)


def test_oversize_body_is_refused(server):
    ec2 = client(server)
    code, status = error_of(lambda: ec2.describe_regions(RegionNames=["x" * 1000] * 2000))
    assert status in (400, 413) and code in ("RequestEntityTooLarge", "RequestLimitExceeded")


def test_concurrent_requests_all_answered(server):
    def one(i):
        ec2 = client(server, "us-east-1" if i % 2 else "eu-west-1")
        return len(ec2.describe_availability_zones()["AvailabilityZones"])

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        counts = list(pool.map(one, range(200)))
    assert counts.count(3) == 100 and counts.count(2) == 100


def test_aws_cli_v2(server):
    env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=os.path.join(server["data"], "credentials"),
               AWS_CONFIG_FILE=os.path.join(server["data"], "config"))
    env.pop("AWS_ACCESS_KEY_ID", None)
    env.pop("AWS_SECRET_ACCESS_KEY", None)
    out = subprocess.run([AWS, "--endpoint-url", server["url"], "ec2", "describe-availability-zones",
                          "--region", "eu-west-1", "--output", "json"],
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert [z["ZoneName"] for z in json.loads(out.stdout)["AvailabilityZones"]] == [
        "eu-west-1a", "eu-west-1b"]
    bad = subprocess.run([AWS, "--endpoint-url", server["url"], "ec2", "describe-nat-gateways"],
                         capture_output=True, text=True, env=env)
    assert bad.returncode != 0 and "InvalidAction" in bad.stderr


def test_public_base_images(server):
    ec2 = client(server)
    images = ec2.describe_images(Owners=["amazon"])["Images"]
    names = sorted(i["Name"] for i in images)
    assert "kiln-busybox" in names
    bb = next(i for i in images if i["Name"] == "kiln-busybox")
    assert bb["State"] == "available" and bb["Public"] and bb["ImageOwnerAlias"] == "amazon"
    assert bb["RootDeviceType"] == "ebs" and bb["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"].startswith("snap-")
    assert bb["CreationDate"].endswith("Z")
    got = ec2.describe_images(Filters=[{"Name": "name", "Values": ["kiln-busy*"]}])["Images"]
    assert [i["ImageId"] for i in got] == [bb["ImageId"]]
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    # each region has its own copy, with its own id
    eu = client(server, "eu-west-1").describe_images(Owners=["amazon"])["Images"]
    assert bb["ImageId"] not in [i["ImageId"] for i in eu]
    assert error_of(lambda: ec2.describe_images(ImageIds=["ami-00000000000000000"])) == (
        "InvalidAMIID.NotFound", 400)
    assert error_of(lambda: ec2.describe_images(ImageIds=["bogus"])) == ("InvalidAMIID.Malformed", 400)
    # the aws CLI's waiter, as Packer-style scripts use it
    env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=os.path.join(server["data"], "credentials"),
               AWS_CONFIG_FILE=os.path.join(server["data"], "config"))
    w = subprocess.run([AWS, "--endpoint-url", server["url"], "ec2", "wait", "image-available",
                        "--image-ids", bb["ImageId"]], capture_output=True, text=True, env=env)
    assert w.returncode == 0, w.stderr
