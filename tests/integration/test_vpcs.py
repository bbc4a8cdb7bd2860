"""VPCs and subnets through the EC2 API: the default VPC made at first use, CreateVpc and
CreateSubnet with EC2's range rules, dependencies, attributes; instances placed in subnets with
their private and public addresses (records only: the network's enforcement is tested apart)."""
import json
import os
import subprocess

import pytest

from conftest import AWS, client, error_of


def default_vpc(ec2):
    vpcs = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert len(vpcs) == 1
    return vpcs[0]


def test_default_vpc_and_subnets_appear(server):
    ec2 = client(server)
    v = default_vpc(ec2)
    assert v["CidrBlock"] == "172.31.0.0/16" and v["IsDefault"] and v["State"] == "available"
    assert v["VpcId"].startswith("vpc-") and len(v["VpcId"]) == 21
    assert v["OwnerId"] and v["InstanceTenancy"] == "default"
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [v["VpcId"]]}])["Subnets"]
    by_zone = {s["AvailabilityZone"]: s for s in subnets}
    assert {z: s["CidrBlock"] for z, s in by_zone.items()} == {
        "us-east-1a": "172.31.0.0/20", "us-east-1b": "172.31.16.0/20", "us-east-1c": "172.31.32.0/20"}
    for s in subnets:
        assert s["DefaultForAz"] and s["MapPublicIpOnLaunch"]
        assert s["AvailableIpAddressCount"] == 4091
        assert s["AvailabilityZoneId"].startswith("use1-az")
    assert by_zone["us-east-1b"]["AvailabilityZoneId"] == "use1-az2"
    # the same again: made once
    assert default_vpc(ec2)["VpcId"] == v["VpcId"]
    # each region and each account has its own
    eu = default_vpc(client(server, "eu-west-1"))
    other = default_vpc(client(server, key="AKIAOTHEROTHEROTHER1", secret="other-secret-other-secret"))
    assert len({v["VpcId"], eu["VpcId"], other["VpcId"]}) == 3
    assert len(client(server, "eu-west-1").describe_subnets()["Subnets"]) == 2
    # its default group
    groups = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [v["VpcId"]]}])
    assert [g["GroupName"] for g in groups["SecurityGroups"]] == ["default"]
    attrs = ec2.describe_vpc_attribute(VpcId=v["VpcId"], Attribute="enableDnsSupport")
    assert attrs["EnableDnsSupport"] == {"Value": True} and attrs["VpcId"] == v["VpcId"]


def test_create_describe_delete_vpc_and_subnet(server):
    ec2 = client(server)
    v = ec2.create_vpc(CidrBlock="10.20.0.0/16", TagSpecifications=[
        {"ResourceType": "vpc", "Tags": [{"Key": "Name", "Value": "lab"}]}])["Vpc"]
    vid = v["VpcId"]
    assert v["CidrBlock"] == "10.20.0.0/16" and not v["IsDefault"]
    assert v["Tags"] == [{"Key": "Name", "Value": "lab"}]
    # overlapping VPCs are allowed, as in EC2
    twin = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    assert [x["VpcId"] for x in ec2.describe_vpcs(Filters=[{"Name": "tag:Name", "Values": ["lab"]}])["Vpcs"]] == [vid]
    assert {x["VpcId"] for x in ec2.describe_vpcs(Filters=[{"Name": "cidr", "Values": ["10.20.0.0/16"]}])["Vpcs"]} == {vid, twin}
    assert ec2.describe_vpc_attribute(VpcId=vid, Attribute="enableDnsHostnames")["EnableDnsHostnames"] == {"Value": False}
    # a new VPC has its own default group
    g = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vid]}])["SecurityGroups"]
    assert [x["GroupName"] for x in g] == ["default"]

    s = ec2.create_subnet(VpcId=vid, CidrBlock="10.20.1.0/24", AvailabilityZone="us-east-1c",
                          TagSpecifications=[{"ResourceType": "subnet", "Tags": [{"Key": "k", "Value": "v"}]}])["Subnet"]
    sid = s["SubnetId"]
    assert sid.startswith("subnet-") and s["VpcId"] == vid and s["AvailabilityZone"] == "us-east-1c"
    assert s["AvailableIpAddressCount"] == 251 and not s["DefaultForAz"] and not s["MapPublicIpOnLaunch"]
    assert s["Tags"] == [{"Key": "k", "Value": "v"}]
    s2 = ec2.create_subnet(VpcId=vid, CidrBlock="10.20.2.0/28", AvailabilityZoneId="use1-az1")["Subnet"]
    assert s2["AvailabilityZone"] == "us-east-1a" and s2["AvailableIpAddressCount"] == 11
    s3 = ec2.create_subnet(VpcId=vid, CidrBlock="10.20.3.0/24")["Subnet"]
    assert s3["AvailabilityZone"].startswith("us-east-1")
    got = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vid]},
                                        {"Name": "cidr-block", "Values": ["10.20.1.0/24"]}])["Subnets"]
    assert [x["SubnetId"] for x in got] == [sid]
    assert ec2.describe_subnets(SubnetIds=[sid])["Subnets"][0]["CidrBlock"] == "10.20.1.0/24"
    assert [x["SubnetId"] for x in ec2.describe_subnets(Filters=[{"Name": "tag:k", "Values": ["v"]}])["Subnets"]] == [sid]

    # conflicts and ranges
    assert error_of(lambda: ec2.create_subnet(VpcId=vid, CidrBlock="10.20.1.128/25"))[0] == "InvalidSubnet.Conflict"
    assert error_of(lambda: ec2.create_subnet(VpcId=vid, CidrBlock="10.20.0.0/16"))[0] == "InvalidSubnet.Conflict"
    assert error_of(lambda: ec2.create_subnet(VpcId=vid, CidrBlock="10.21.0.0/24"))[0] == "InvalidSubnet.Range"
    assert error_of(lambda: ec2.create_subnet(VpcId=vid, CidrBlock="10.20.9.0/29"))[0] == "InvalidSubnet.Range"
    assert error_of(lambda: ec2.create_vpc(CidrBlock="10.0.0.0/8"))[0] == "InvalidVpc.Range"
    assert error_of(lambda: ec2.create_vpc(CidrBlock="10.0.0.0/29"))[0] == "InvalidVpc.Range"
    assert error_of(lambda: ec2.create_vpc(CidrBlock="banana"))[0] == "InvalidParameterValue"
    assert error_of(lambda: ec2.create_vpc(CidrBlock="10.0.0.0/16", InstanceTenancy="dedicated"))[0] == \
        "InvalidParameterValue"
    assert error_of(lambda: ec2.create_subnet(VpcId="vpc-0123456789abcdef0", CidrBlock="10.0.0.0/24"))[0] == \
        "InvalidVpcID.NotFound"
    assert error_of(lambda: ec2.create_subnet(VpcId=vid, CidrBlock="10.20.4.0/24",
                                              AvailabilityZone="eu-west-1a"))[0] == "InvalidParameterValue"
    assert error_of(lambda: ec2.describe_vpcs(VpcIds=["vpc-0123456789abcdef0"]))[0] == "InvalidVpcID.NotFound"
    assert error_of(lambda: ec2.describe_subnets(SubnetIds=["subnet-0123456789abcdef0"]))[0] == \
        "InvalidSubnetID.NotFound"
    assert error_of(lambda: ec2.describe_vpcs(VpcIds=["vpc-nope"]))[0] == "InvalidVpcID.Malformed"
    # another account sees none of it
    other = client(server, key="AKIAOTHEROTHEROTHER1", secret="other-secret-other-secret")
    assert error_of(lambda: other.describe_vpcs(VpcIds=[vid]))[0] == "InvalidVpcID.NotFound"
    assert error_of(lambda: other.delete_subnet(SubnetId=sid))[0] == "InvalidSubnetID.NotFound"

    # MapPublicIpOnLaunch
    ec2.modify_subnet_attribute(SubnetId=sid, MapPublicIpOnLaunch={"Value": True})
    assert ec2.describe_subnets(SubnetIds=[sid])["Subnets"][0]["MapPublicIpOnLaunch"]
    assert [x["SubnetId"] for x in ec2.describe_subnets(Filters=[
        {"Name": "vpc-id", "Values": [vid]}, {"Name": "map-public-ip-on-launch", "Values": ["true"]}])["Subnets"]] == [sid]

    # a VPC with subnets or groups of its own cannot go
    assert error_of(lambda: ec2.delete_vpc(VpcId=vid))[0] == "DependencyViolation"
    for x in (sid, s2["SubnetId"], s3["SubnetId"]):
        ec2.delete_subnet(SubnetId=x)
    gid = ec2.create_security_group(GroupName="web", Description="web", VpcId=vid)["GroupId"]
    assert error_of(lambda: ec2.delete_vpc(VpcId=vid))[0] == "DependencyViolation"
    ec2.delete_security_group(GroupId=gid)
    ec2.delete_vpc(VpcId=vid)
    ec2.delete_vpc(VpcId=twin)
    assert error_of(lambda: ec2.describe_vpcs(VpcIds=[vid]))[0] == "InvalidVpcID.NotFound"
    assert error_of(lambda: ec2.delete_subnet(SubnetId=sid))[0] == "InvalidSubnetID.NotFound"


def test_default_vpc_deleted_and_made_again(server):
    ec2 = client(server, "eu-west-1")
    v = default_vpc(ec2)
    assert error_of(lambda: ec2.create_default_vpc())[0] == "DefaultVpcAlreadyExists"
    assert error_of(lambda: ec2.delete_vpc(VpcId=v["VpcId"]))[0] == "DependencyViolation"
    for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [v["VpcId"]]}])["Subnets"]:
        ec2.delete_subnet(SubnetId=s["SubnetId"])
    ec2.delete_vpc(VpcId=v["VpcId"])
    # gone for good (not made again at the next use) until CreateDefaultVpc
    assert ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"] == []
    attrs = ec2.describe_account_attributes(AttributeNames=["default-vpc"])["AccountAttributes"]
    assert attrs[0]["AttributeValues"] == [{"AttributeValue": "none"}]
    new = ec2.create_default_vpc()["Vpc"]
    assert new["IsDefault"] and new["CidrBlock"] == "172.31.0.0/16" and new["VpcId"] != v["VpcId"]
    assert len(ec2.describe_subnets(Filters=[{"Name": "default-for-az", "Values": ["true"]}])["Subnets"]) == 2


def test_account_attributes(server):
    ec2 = client(server)
    attrs = {a["AttributeName"]: [v["AttributeValue"] for v in a["AttributeValues"]]
             for a in ec2.describe_account_attributes()["AccountAttributes"]}
    assert attrs["supported-platforms"] == ["VPC"]
    assert attrs["default-vpc"] == [default_vpc(ec2)["VpcId"]]
    assert attrs["vpc-max-security-groups-per-interface"] == ["5"]
    assert set(attrs) == {"supported-platforms", "default-vpc", "max-instances",
                          "vpc-max-security-groups-per-interface", "max-elastic-ips", "vpc-max-elastic-ips"}
    one = ec2.describe_account_attributes(AttributeNames=["supported-platforms"])["AccountAttributes"]
    assert [a["AttributeName"] for a in one] == ["supported-platforms"]


def test_aws_cli_vpcs(server):
    env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=os.path.join(server["data"], "credentials"),
               AWS_CONFIG_FILE=os.path.join(server["data"], "config"))
    env.pop("AWS_ACCESS_KEY_ID", None)
    env.pop("AWS_SECRET_ACCESS_KEY", None)

    def aws(*args):
        out = subprocess.run([AWS, "--endpoint-url", server["url"], "ec2", *args, "--output", "json"],
                             capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else {}

    vid = aws("create-vpc", "--cidr-block", "192.168.0.0/16")["Vpc"]["VpcId"]
    sid = aws("create-subnet", "--vpc-id", vid, "--cidr-block", "192.168.5.0/24")["Subnet"]["SubnetId"]
    got = aws("describe-subnets", "--filters", f"Name=vpc-id,Values={vid}")["Subnets"]
    assert [s["SubnetId"] for s in got] == [sid]
    aws("delete-subnet", "--subnet-id", sid)
    aws("delete-vpc", "--vpc-id", vid)


# ---- instances in subnets (records; they boot busybox) ----

def busybox(ec2):
    return ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-busybox"]}])["Images"][0]["ImageId"]


def described(ec2, iid):
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]


def wait(ec2, name, iid):
    ec2.get_waiter(name).wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})


@pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")
def test_instances_in_the_default_subnets_get_public_addresses(server):
    ec2 = client(server)
    ami = busybox(ec2)
    v = default_vpc(ec2)
    sub_b = ec2.describe_subnets(Filters=[{"Name": "availability-zone", "Values": ["us-east-1b"]},
                                          {"Name": "default-for-az", "Values": ["true"]}])["Subnets"][0]
    before = sub_b["AvailableIpAddressCount"]
    r = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1,
                          Placement={"AvailabilityZone": "us-east-1b"})
    inst = r["Instances"][0]
    iid = inst["InstanceId"]
    assert inst["SubnetId"] == sub_b["SubnetId"] and inst["VpcId"] == v["VpcId"]
    assert inst["PrivateIpAddress"] == "172.31.16.4"
    pub = inst["PublicIpAddress"]
    assert pub.startswith("198.18.") or pub.startswith("198.19.")
    default_group = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [v["VpcId"]]},
                                                          {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]
    assert inst["SecurityGroups"] == [{"GroupId": default_group["GroupId"], "GroupName": "default"}]
    eni = inst["NetworkInterfaces"]
    assert len(eni) == 1 and eni[0]["SubnetId"] == sub_b["SubnetId"] and eni[0]["Attachment"]["DeviceIndex"] == 0
    assert eni[0]["PrivateIpAddress"] == "172.31.16.4" and eni[0]["Association"]["PublicIp"] == pub
    assert eni[0]["NetworkInterfaceId"].startswith("eni-")
    assert ec2.describe_subnets(SubnetIds=[sub_b["SubnetId"]])["Subnets"][0]["AvailableIpAddressCount"] == before - 1
    got = ec2.describe_instances(Filters=[{"Name": "subnet-id", "Values": [sub_b["SubnetId"]]}])
    assert iid in [i["InstanceId"] for res in got["Reservations"] for i in res["Instances"]]
    # a subnet with instances cannot go, nor its VPC
    assert error_of(lambda: ec2.delete_subnet(SubnetId=sub_b["SubnetId"]))[0] == "DependencyViolation"
    # the public address goes at stop and a new one comes at start, as in EC2
    wait(ec2, "instance_running", iid)
    ec2.stop_instances(InstanceIds=[iid])
    wait(ec2, "instance_stopped", iid)
    d = described(ec2, iid)
    assert "PublicIpAddress" not in d and d["PrivateIpAddress"] == "172.31.16.4"
    ec2.start_instances(InstanceIds=[iid])
    assert described(ec2, iid)["PublicIpAddress"]
    wait(ec2, "instance_running", iid)
    ec2.terminate_instances(InstanceIds=[iid])
    wait(ec2, "instance_terminated", iid)
    assert "PublicIpAddress" not in described(ec2, iid)


@pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")
def test_instances_in_a_subnet_with_chosen_address_and_groups(server):
    ec2 = client(server)
    ami = busybox(ec2)
    v = default_vpc(ec2)
    # A VPC of its own that overlaps the default one (allowed): until the network branch gives
    # each VPC its own namespace, the host routes instances by the zone's /20, so the subnet
    # stays inside us-east-1a's 172.31.0.0/20 and clear of its default subnet's first addresses.
    vid = ec2.create_vpc(CidrBlock="172.31.0.0/16")["Vpc"]["VpcId"]
    sub = ec2.create_subnet(VpcId=vid, CidrBlock="172.31.8.0/24", AvailabilityZone="us-east-1a")["Subnet"]
    sid = sub["SubnetId"]
    gid = ec2.create_security_group(GroupName="app", Description="app servers", VpcId=vid)["GroupId"]
    own_default = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vid]},
                                                        {"Name": "group-name", "Values": ["default"]}])["SecurityGroups"][0]["GroupId"]
    r = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1, SubnetId=sid,
                          PrivateIpAddress="172.31.8.10", SecurityGroupIds=[gid])
    a = r["Instances"][0]
    assert (a["SubnetId"], a["VpcId"], a["PrivateIpAddress"]) == (sid, vid, "172.31.8.10")
    assert "PublicIpAddress" not in a  # the subnet maps none
    assert a["SecurityGroups"] == [{"GroupId": gid, "GroupName": "app"}]
    # the next takes the lowest free address from .4, in the VPC's default group
    b = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1,
                          SubnetId=sid)["Instances"][0]
    assert b["PrivateIpAddress"] == "172.31.8.4"
    assert b["SecurityGroups"] == [{"GroupId": own_default, "GroupName": "default"}]
    assert error_of(lambda: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=sid,
                                              PrivateIpAddress="172.31.8.10"))[0] == "InvalidIPAddress.InUse"
    assert error_of(lambda: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=sid,
                                              PrivateIpAddress="172.31.8.2"))[0] == "InvalidParameterValue"
    assert error_of(lambda: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=sid,
                                              PrivateIpAddress="10.0.0.9"))[0] == "InvalidParameterValue"
    assert error_of(lambda: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1,
                                              SubnetId="subnet-0123456789abcdef0"))[0] == "InvalidSubnetID.NotFound"
    assert error_of(lambda: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=sid,
                                              Placement={"AvailabilityZone": "us-east-1b"}))[0] == \
        "InvalidParameterCombination"
    # group names are the default VPC's; a group of another VPC does not fit the subnet
    assert error_of(lambda: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=sid,
                                              SecurityGroups=["app"]))[0] == "InvalidParameterCombination"
    default_gid = ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [v["VpcId"]]}])["SecurityGroups"][0]["GroupId"]
    assert error_of(lambda: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=sid,
                                              SecurityGroupIds=[default_gid]))[0] == "InvalidParameterValue"
    # NetworkInterfaces: device 0 with a public address; a second interface is refused
    c = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1, NetworkInterfaces=[
        {"DeviceIndex": 0, "SubnetId": sid, "AssociatePublicIpAddress": True, "Groups": [gid, own_default],
         "PrivateIpAddress": "172.31.8.20", "DeleteOnTermination": True}])["Instances"][0]
    assert (c["SubnetId"], c["PrivateIpAddress"]) == (sid, "172.31.8.20") and c["PublicIpAddress"]
    assert sorted(g["GroupName"] for g in c["SecurityGroups"]) == ["app", "default"]
    assert error_of(lambda: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, NetworkInterfaces=[
        {"DeviceIndex": 0, "SubnetId": sid}, {"DeviceIndex": 1, "SubnetId": sid}]))[0] == "InvalidParameterCombination"
    assert error_of(lambda: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, SubnetId=sid, NetworkInterfaces=[
        {"DeviceIndex": 0, "SubnetId": sid}]))[0] == "InvalidParameterCombination"
    # in the default VPC: group names, and no public address when asked for none
    d = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1, SecurityGroups=["default"],
                          Placement={"AvailabilityZone": "us-east-1c"})["Instances"][0]
    assert d["VpcId"] == v["VpcId"] and d["SecurityGroups"][0]["GroupId"] == default_gid and d["PublicIpAddress"]
    e = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1, NetworkInterfaces=[
        {"DeviceIndex": 0, "AssociatePublicIpAddress": False}],
        Placement={"AvailabilityZone": "us-east-1c"})["Instances"][0]
    assert "PublicIpAddress" not in e and e["PrivateIpAddress"] == "172.31.32.5"
    ids = [a["InstanceId"], b["InstanceId"], c["InstanceId"], d["InstanceId"], e["InstanceId"]]
    d1 = described(ec2, a["InstanceId"])
    assert (d1["SubnetId"], d1["VpcId"], d1["PrivateIpAddress"]) == (sid, vid, "172.31.8.10")
    assert d1["NetworkInterfaces"][0]["Groups"] == [{"GroupId": gid, "GroupName": "app"}]
    by_group = ec2.describe_instances(Filters=[{"Name": "instance.group-id", "Values": [gid]}])
    assert sorted(i["InstanceId"] for res in by_group["Reservations"] for i in res["Instances"]) == \
        sorted([a["InstanceId"], c["InstanceId"]])
    by_name = ec2.describe_instances(Filters=[{"Name": "instance.group-name", "Values": ["app"]},
                                              {"Name": "vpc-id", "Values": [vid]}])
    assert len([i for res in by_name["Reservations"] for i in res["Instances"]]) == 2
    # the group in use cannot go, nor the VPC; ModifyInstanceAttribute replaces the groups
    assert error_of(lambda: ec2.delete_security_group(GroupId=gid))[0] == "DependencyViolation"
    assert error_of(lambda: ec2.delete_subnet(SubnetId=sid))[0] == "DependencyViolation"
    assert error_of(lambda: ec2.modify_instance_attribute(InstanceId=a["InstanceId"], Groups=[default_gid]))[0] == \
        "InvalidInstanceAttributeValue"
    for iid in (a["InstanceId"], c["InstanceId"]):
        ec2.modify_instance_attribute(InstanceId=iid, Groups=[own_default])
    assert described(ec2, a["InstanceId"])["SecurityGroups"] == [{"GroupId": own_default, "GroupName": "default"}]
    ec2.delete_security_group(GroupId=gid)
    ec2.terminate_instances(InstanceIds=ids)
    for iid in ids:
        wait(ec2, "instance_terminated", iid)
    ec2.delete_subnet(SubnetId=sid)
    ec2.delete_vpc(VpcId=vid)


def test_topology_public_addresses_line(tmp_path):
    from conftest import kiln
    bad = tmp_path / "bad"
    bad.write_text("us-east-1 a\npublic-addresses 10.0.0.7/24\n")
    r = kiln("init", "--data", tmp_path / "d1", "--topology", bad, "--no-images", check=False)
    assert r.returncode != 0 and "public-addresses" in r.stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")
def test_public_addresses_from_the_topology_range(tmp_path):
    from conftest import KILN, kiln, serving
    busybox_tar = os.path.join(os.path.dirname(os.path.abspath(KILN)), "images", "busybox.tar")
    if not os.path.exists(busybox_tar):
        pytest.skip("no busybox image (make images)")
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "busybox.tar").symlink_to(busybox_tar)
    top = tmp_path / "topology"
    top.write_text("us-east-1 a b\npublic-addresses 100.64.7.0/30\n")
    kiln("init", "--data", tmp_path / "data", "--topology", top, "--images", tmp_path / "images")
    gen = serving(tmp_path / "data")
    srv = next(gen)
    try:
        ec2 = client(srv)
        ami = busybox(ec2)
        a = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1)["Instances"][0]
        assert a["PublicIpAddress"] == "100.64.7.1"
        b = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1,
                              Placement={"AvailabilityZone": "us-east-1b"})["Instances"][0]
        assert b["PublicIpAddress"] == "100.64.7.2"
        # the range (a /30: two usable addresses) is used up
        code = error_of(lambda: ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1))[0]
        assert code == "InsufficientInstanceCapacity"
        ec2.terminate_instances(InstanceIds=[a["InstanceId"], b["InstanceId"]])
        for iid in (a["InstanceId"], b["InstanceId"]):
            wait(ec2, "instance_terminated", iid)
        # released at terminate: the first address is free again
        c = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1)["Instances"][0]
        assert c["PublicIpAddress"] == "100.64.7.1"
        ec2.terminate_instances(InstanceIds=[c["InstanceId"]])
        wait(ec2, "instance_terminated", c["InstanceId"])
    finally:
        next(gen, None)


def test_instances_recorded_before_vpcs_join_the_default_vpc(tmp_path):
    """A data directory from before VPCs: its instances have no subnet; the daemon's start puts
    them in their account's default VPC, in the default subnet of their zone."""
    import sqlite3
    from conftest import kiln, serving
    data = tmp_path / "data"
    kiln("init", "--data", data, "--no-images")
    db = sqlite3.connect(data / "kiln.db")
    owner = [a for a, n in db.execute("SELECT id, name FROM accounts") if n == "default"][0]
    db.execute("INSERT INTO instances (id, region, zone, owner, image, type, state, private_ip, reservation, "
               "launch_index, launch_ms, root_volume, root_size, delete_on_termination) VALUES "
               "('i-0123456789abcdef0', 'us-east-1', 'us-east-1b', ?, 'ami-0123456789abcdef0', 't2.nano', "
               "'stopped', '172.31.16.4', 'r-0123456789abcdef0', 0, 1, 'vol-0123456789abcdef0', 1, 1)", (owner,))
    db.commit()
    db.close()
    gen = serving(data)
    srv = next(gen)
    try:
        ec2 = client(srv)
        i = ec2.describe_instances()["Reservations"][0]["Instances"][0]
        sub = ec2.describe_subnets(SubnetIds=[i["SubnetId"]])["Subnets"][0]
        assert (sub["AvailabilityZone"], sub["DefaultForAz"], i["PrivateIpAddress"]) == ("us-east-1b", True, "172.31.16.4")
        assert i["VpcId"] == default_vpc(ec2)["VpcId"] and i["SecurityGroups"][0]["GroupName"] == "default"
        assert sub["AvailableIpAddressCount"] == 4090
    finally:
        next(gen, None)
