"""What a client asks first, as EC2 answers it: id shapes (8- and 17-digit), the error codes of
common mistakes, DryRun on every action, regions beyond the topology's, instance attributes."""
import botocore
import pytest

from conftest import client, error_of


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
