"""What a client asks first, as EC2 answers it: id shapes (8- and 17-digit), the error codes of
common mistakes, DryRun on every action, regions beyond the topology's, instance attributes."""
import os
import subprocess

import botocore
import pytest

from conftest import AWS, client, error_of


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
