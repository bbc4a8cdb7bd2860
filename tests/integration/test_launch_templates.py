"""Launch templates through the EC2 API: templates and their numbered versions, the launch data as
EC2 renders it, the errors EC2 names, and RunInstances from a template (the template's parameters
fill in what the request does not give)."""
import base64
import json
import os
import subprocess

import pytest

from conftest import AWS, client, error_of


def busybox(ec2):
    images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-busybox"]}])
    assert images["Images"], "the public busybox image is missing (make images)"
    return images["Images"][0]["ImageId"]


DATA = {
    "InstanceType": "t2.nano",
    "KeyName": "my-key",
    "UserData": base64.b64encode(b"#!/bin/sh\necho from-template\n").decode(),
    "SecurityGroupIds": ["sg-0123456789abcdef0", "sg-0123456789abcdef1"],
    "DisableApiTermination": False,
    "InstanceInitiatedShutdownBehavior": "terminate",
    "Placement": {"AvailabilityZone": "us-east-1b"},
    "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2},
    "BlockDeviceMappings": [{"DeviceName": "/dev/xvda",
                             "Ebs": {"VolumeSize": 2, "DeleteOnTermination": True, "VolumeType": "gp3"}}],
    "NetworkInterfaces": [{"DeviceIndex": 0, "SubnetId": "subnet-0123456789abcdef0",
                           "Groups": ["sg-0123456789abcdef0"], "DeleteOnTermination": True}],
    "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "role", "Value": "web"},
                                                               {"Key": "empty", "Value": ""}]}],
}


def test_create_describe_versions(server):
    ec2 = client(server)
    lt = ec2.create_launch_template(
        LaunchTemplateName="web-1", VersionDescription="first", LaunchTemplateData=DATA,
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": [{"Key": "team", "Value": "a"}]}])["LaunchTemplate"]
    ltid = lt["LaunchTemplateId"]
    assert ltid.startswith("lt-") and len(ltid) == 3 + 17
    assert (lt["DefaultVersionNumber"], lt["LatestVersionNumber"]) == (1, 1)
    assert lt["CreatedBy"].startswith("arn:aws:iam::") and lt["Tags"] == [{"Key": "team", "Value": "a"}]

    v1 = ec2.describe_launch_template_versions(LaunchTemplateId=ltid)["LaunchTemplateVersions"]
    assert len(v1) == 1 and v1[0]["VersionNumber"] == 1 and v1[0]["DefaultVersion"] is True
    assert v1[0]["VersionDescription"] == "first" and v1[0]["LaunchTemplateName"] == "web-1"
    assert v1[0]["LaunchTemplateData"] == DATA  # every member comes back as it was given

    # a new version from version 1: InstanceType replaced, the rest inherited
    v2 = ec2.create_launch_template_version(LaunchTemplateName="web-1", SourceVersion="1",
                                            VersionDescription="bigger",
                                            LaunchTemplateData={"InstanceType": "t2.small"})["LaunchTemplateVersion"]
    assert v2["VersionNumber"] == 2 and v2["DefaultVersion"] is False
    assert v2["LaunchTemplateData"] == dict(DATA, InstanceType="t2.small")
    # without a source version it holds only what it is given
    v3 = ec2.create_launch_template_version(LaunchTemplateId=ltid,
                                            LaunchTemplateData={"ImageId": busybox(ec2)})["LaunchTemplateVersion"]
    assert v3["VersionNumber"] == 3 and v3["LaunchTemplateData"] == {"ImageId": busybox(ec2)}

    all_v = ec2.describe_launch_template_versions(LaunchTemplateId=ltid)["LaunchTemplateVersions"]
    assert [v["VersionNumber"] for v in all_v] == [3, 2, 1]
    sel = ec2.describe_launch_template_versions(LaunchTemplateName="web-1", Versions=["$Latest", "$Default"])
    assert sorted(v["VersionNumber"] for v in sel["LaunchTemplateVersions"]) == [1, 3]
    rng = ec2.describe_launch_template_versions(LaunchTemplateId=ltid, MinVersion="2", MaxVersion="3")
    assert [v["VersionNumber"] for v in rng["LaunchTemplateVersions"]] == [3, 2]
    f = ec2.describe_launch_template_versions(
        LaunchTemplateId=ltid, Filters=[{"Name": "instance-type", "Values": ["t2.small"]}])
    assert [v["VersionNumber"] for v in f["LaunchTemplateVersions"]] == [2]
    f = ec2.describe_launch_template_versions(
        LaunchTemplateId=ltid, Filters=[{"Name": "is-default-version", "Values": ["true"]}])
    assert [v["VersionNumber"] for v in f["LaunchTemplateVersions"]] == [1]
    page = ec2.describe_launch_template_versions(LaunchTemplateId=ltid, MaxResults=2)
    assert len(page["LaunchTemplateVersions"]) == 2 and page["NextToken"]

    # the default moves; the template shows it
    m = ec2.modify_launch_template(LaunchTemplateId=ltid, DefaultVersion="2")["LaunchTemplate"]
    assert (m["DefaultVersionNumber"], m["LatestVersionNumber"]) == (2, 3)

    # Describe: by id, by name, by filter, tags
    d = ec2.describe_launch_templates(LaunchTemplateIds=[ltid])["LaunchTemplates"]
    assert [t["LaunchTemplateName"] for t in d] == ["web-1"] and d[0]["DefaultVersionNumber"] == 2
    ec2.create_launch_template(LaunchTemplateName="db-1", LaunchTemplateData={"InstanceType": "t2.micro"})
    names = lambda **kw: sorted(t["LaunchTemplateName"] for t in ec2.describe_launch_templates(**kw)["LaunchTemplates"])
    assert names() == ["db-1", "web-1"]
    assert names(LaunchTemplateNames=["db-1"]) == ["db-1"]
    assert names(Filters=[{"Name": "launch-template-name", "Values": ["web-*"]}]) == ["web-1"]
    assert names(Filters=[{"Name": "tag:team", "Values": ["a"]}]) == ["web-1"]
    # $Latest / $Default across all templates
    latest = ec2.describe_launch_template_versions(Versions=["$Latest"])["LaunchTemplateVersions"]
    assert sorted((v["LaunchTemplateName"], v["VersionNumber"]) for v in latest) == [("db-1", 1), ("web-1", 3)]

    # the tag is an ordinary tag: DescribeTags shows it with its type
    tags = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [ltid]}])["Tags"]
    assert tags == [{"Key": "team", "ResourceId": ltid, "ResourceType": "launch-template", "Value": "a"}]

    # versions go, but never the default one
    r = ec2.delete_launch_template_versions(LaunchTemplateId=ltid, Versions=["1", "2", "9"])
    assert [v["VersionNumber"] for v in r["SuccessfullyDeletedLaunchTemplateVersions"]] == [1]
    bad = {v["VersionNumber"]: v["ResponseError"]["Code"] for v in r["UnsuccessfullyDeletedLaunchTemplateVersions"]}
    assert bad == {2: "unexpectedError", 9: "launchTemplateVersionDoesNotExist"}
    assert [v["VersionNumber"] for v in
            ec2.describe_launch_template_versions(LaunchTemplateId=ltid)["LaunchTemplateVersions"]] == [3, 2]
    # version numbers are never reused
    v4 = ec2.create_launch_template_version(LaunchTemplateId=ltid, LaunchTemplateData={})
    assert v4["LaunchTemplateVersion"]["VersionNumber"] == 4

    gone = ec2.delete_launch_template(LaunchTemplateName="web-1")["LaunchTemplate"]
    assert gone["LaunchTemplateId"] == ltid
    assert names() == ["db-1"]
    assert ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [ltid]}])["Tags"] == []
    ec2.delete_launch_template(LaunchTemplateId=ec2.describe_launch_templates()["LaunchTemplates"][0]["LaunchTemplateId"])
    assert names() == []


def test_errors(server):
    ec2 = client(server)
    lt = ec2.create_launch_template(LaunchTemplateName="errs", LaunchTemplateData={"InstanceType": "t2.micro"})
    ltid = lt["LaunchTemplate"]["LaunchTemplateId"]
    try:
        assert error_of(lambda: ec2.create_launch_template(
            LaunchTemplateName="errs", LaunchTemplateData={})) == ("InvalidLaunchTemplateName.AlreadyExistsException", 400)
        assert error_of(lambda: ec2.create_launch_template(
            LaunchTemplateName="a b", LaunchTemplateData={})) == ("InvalidLaunchTemplateName.MalformedException", 400)
        assert error_of(lambda: ec2.describe_launch_template_versions(
            LaunchTemplateId="lt-0123456789abcdef0")) == ("InvalidLaunchTemplateId.NotFound", 400)
        assert error_of(lambda: ec2.describe_launch_template_versions(
            LaunchTemplateName="nope")) == ("InvalidLaunchTemplateName.NotFoundException", 400)
        assert error_of(lambda: ec2.describe_launch_templates(
            LaunchTemplateNames=["nope"])) == ("InvalidLaunchTemplateName.NotFoundException", 400)
        assert error_of(lambda: ec2.describe_launch_templates(
            LaunchTemplateIds=["lt-0123456789abcdef0"])) == ("InvalidLaunchTemplateId.NotFound", 400)
        assert error_of(lambda: ec2.delete_launch_template(
            LaunchTemplateId="lt-xyz")) == ("InvalidLaunchTemplateId.Malformed", 400)
        assert error_of(lambda: ec2.modify_launch_template(
            LaunchTemplateId=ltid, DefaultVersion="7")) == ("InvalidLaunchTemplateId.VersionNotFound", 400)
        assert error_of(lambda: ec2.describe_launch_template_versions(
            LaunchTemplateId=ltid, Versions=["5"])) == ("InvalidLaunchTemplateId.VersionNotFound", 400)
        assert error_of(lambda: ec2.create_launch_template_version(
            LaunchTemplateId=ltid, SourceVersion="3", LaunchTemplateData={})) == (
                "InvalidLaunchTemplateId.VersionNotFound", 400)
        assert error_of(lambda: ec2.delete_launch_template(
            LaunchTemplateId=ltid, LaunchTemplateName="errs")) == ("InvalidParameterCombination", 400)
        assert error_of(lambda: ec2.delete_launch_template()) == ("MissingParameter", 400)
        # what kiln does not keep is refused, not dropped
        assert error_of(lambda: ec2.create_launch_template_version(
            LaunchTemplateId=ltid, LaunchTemplateData={"InstanceMarketOptions": {"MarketType": "spot"}})) == (
                "InvalidParameterValue", 400)
        assert error_of(lambda: ec2.create_launch_template(
            LaunchTemplateName="x-tags", LaunchTemplateData={},
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "k", "Value": "v"}]}])) == (
                "InvalidParameterValue", 400)
        assert error_of(lambda: ec2.create_launch_template(
            LaunchTemplateName="x-dry", LaunchTemplateData={}, DryRun=True)) == ("DryRunOperation", 412)
        # the only (default) version cannot go alone
        r = ec2.delete_launch_template_versions(LaunchTemplateId=ltid, Versions=["1"])
        assert r["UnsuccessfullyDeletedLaunchTemplateVersions"][0]["VersionNumber"] == 1
        # another account sees none of it
        other = client(server, key="AKIAOTHEROTHEROTHER1", secret="other-secret-other-secret")
        assert other.describe_launch_templates()["LaunchTemplates"] == []
        assert error_of(lambda: other.delete_launch_template(LaunchTemplateId=ltid)) == (
            "InvalidLaunchTemplateId.NotFound", 400)
    finally:
        ec2.delete_launch_template(LaunchTemplateId=ltid)


def test_aws_cli(server):
    """The aws CLI commands of the user guide's "Launch templates" section."""
    env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=os.path.join(server["data"], "credentials"),
               AWS_CONFIG_FILE=os.path.join(server["data"], "config"))
    env.pop("AWS_ACCESS_KEY_ID", None)
    env.pop("AWS_SECRET_ACCESS_KEY", None)

    def aws(*args):
        out = subprocess.run([AWS, "--endpoint-url", server["url"], "ec2", *args, "--region", "us-east-1",
                              "--output", "json"], capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else None

    lt = aws("create-launch-template", "--launch-template-name", "from-cli", "--launch-template-data",
             '{"InstanceType":"t2.nano","SecurityGroupIds":["sg-0123456789abcdef0"]}')["LaunchTemplate"]
    aws("create-launch-template-version", "--launch-template-name", "from-cli", "--source-version", "1",
        "--launch-template-data", '{"InstanceType":"t2.small"}')
    aws("modify-launch-template", "--launch-template-name", "from-cli", "--default-version", "2")
    v = aws("describe-launch-template-versions", "--launch-template-name", "from-cli")["LaunchTemplateVersions"]
    assert [x["LaunchTemplateData"] for x in v] == [
        {"InstanceType": "t2.small", "SecurityGroupIds": ["sg-0123456789abcdef0"]},
        {"InstanceType": "t2.nano", "SecurityGroupIds": ["sg-0123456789abcdef0"]}]
    d = aws("delete-launch-template-versions", "--launch-template-name", "from-cli", "--versions", "1")
    assert [x["VersionNumber"] for x in d["SuccessfullyDeletedLaunchTemplateVersions"]] == [1]
    assert aws("delete-launch-template", "--launch-template-name", "from-cli")["LaunchTemplate"][
        "LaunchTemplateId"] == lt["LaunchTemplateId"]


@pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")
def test_run_instances_from_template(server):
    ec2 = client(server)
    ami = busybox(ec2)
    lt = ec2.create_launch_template(LaunchTemplateName="launcher", LaunchTemplateData={
        "ImageId": ami, "InstanceType": "t2.nano",
        "TagSpecifications": [{"ResourceType": "instance", "Tags": [{"Key": "from", "Value": "template"}]}],
    })["LaunchTemplate"]
    ltid = lt["LaunchTemplateId"]
    ec2.create_launch_template_version(LaunchTemplateId=ltid, SourceVersion="1",
                                       LaunchTemplateData={"InstanceType": "t2.micro"})
    ids = []
    try:
        # the default version (1): image, type and tags from the template
        r = ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateName": "launcher"})
        inst = r["Instances"][0]
        ids.append(inst["InstanceId"])
        assert (inst["ImageId"], inst["InstanceType"]) == (ami, "t2.nano")
        assert {"Key": "from", "Value": "template"} in inst.get("Tags", [])
        # $Latest, with the request's own type and tags overriding the template's
        r = ec2.run_instances(MinCount=1, MaxCount=1, InstanceType="t2.small",
                              TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "own", "Value": "1"}]}],
                              LaunchTemplate={"LaunchTemplateId": ltid, "Version": "$Latest"})
        inst = r["Instances"][0]
        ids.append(inst["InstanceId"])
        assert inst["InstanceType"] == "t2.small" and inst["Tags"] == [{"Key": "own", "Value": "1"}]
        r = ec2.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateId": ltid, "Version": "2"})
        ids.append(r["Instances"][0]["InstanceId"])
        assert r["Instances"][0]["InstanceType"] == "t2.micro"
        ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        tagged = ec2.describe_instances(Filters=[{"Name": "tag:from", "Values": ["template"]}])
        assert [i["InstanceId"] for res in tagged["Reservations"] for i in res["Instances"]] == ids[0:1] + ids[2:3]

        # errors: no image from either side, unknown template or version
        ec2.create_launch_template(LaunchTemplateName="no-image", LaunchTemplateData={"InstanceType": "t2.nano"})
        assert error_of(lambda: ec2.run_instances(
            MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateName": "no-image"})) == ("MissingParameter", 400)
        assert error_of(lambda: ec2.run_instances(
            MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateName": "nope"})) == (
                "InvalidLaunchTemplateName.NotFoundException", 400)
        assert error_of(lambda: ec2.run_instances(
            MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateId": ltid, "Version": "8"})) == (
                "InvalidLaunchTemplateId.VersionNotFound", 400)
        assert error_of(lambda: ec2.run_instances(MinCount=1, MaxCount=1)) == ("MissingParameter", 400)
    finally:
        if ids:
            ec2.terminate_instances(InstanceIds=ids)
            ec2.get_waiter("instance_terminated").wait(InstanceIds=ids, WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def test_client_tokens(server):
    """A retried create with the same ClientToken answers what the first one made."""
    ec2 = client(server)
    a = ec2.create_launch_template(LaunchTemplateName="tok", ClientToken="t-1",
                                   LaunchTemplateData={"InstanceType": "t2.nano"})["LaunchTemplate"]
    b = ec2.create_launch_template(LaunchTemplateName="tok", ClientToken="t-1",
                                   LaunchTemplateData={"InstanceType": "t2.nano"})["LaunchTemplate"]
    assert a["LaunchTemplateId"] == b["LaunchTemplateId"]
    v = [ec2.create_launch_template_version(LaunchTemplateId=a["LaunchTemplateId"], ClientToken="v-1",
                                            LaunchTemplateData={"InstanceType": "t2.micro"})
         ["LaunchTemplateVersion"]["VersionNumber"] for _ in range(2)]
    assert v == [2, 2]
    assert ec2.describe_launch_templates(LaunchTemplateIds=[a["LaunchTemplateId"]])[
        "LaunchTemplates"][0]["LatestVersionNumber"] == 2
    ec2.delete_launch_template(LaunchTemplateId=a["LaunchTemplateId"])
