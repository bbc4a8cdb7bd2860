"""Security groups through the EC2 API: CRUD, rules by CIDR and by group, EC2's errors and its
two renderings (ipPermissions and security group rules). Enforcement is the network's tests."""
import json
import os
import subprocess

from conftest import AWS, client, error_of


def default_vpc_id(ec2):
    return ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]


def group(ec2, gid):
    return ec2.describe_security_groups(GroupIds=[gid])["SecurityGroups"][0]


def test_default_group_rules(server):
    ec2 = client(server)
    vid = default_vpc_id(ec2)
    g = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"][0]
    assert g["VpcId"] == vid and g["GroupId"].startswith("sg-") and g["Description"] == "default VPC security group"
    # all inbound from its own members, all outbound
    assert g["IpPermissions"] == [{"IpProtocol": "-1", "IpRanges": [], "Ipv6Ranges": [], "PrefixListIds": [],
                                   "UserIdGroupPairs": [{"GroupId": g["GroupId"], "UserId": g["OwnerId"]}]}]
    assert g["IpPermissionsEgress"] == [{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                                         "Ipv6Ranges": [], "PrefixListIds": [], "UserIdGroupPairs": []}]
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [g["GroupId"]]}])["SecurityGroupRules"]
    assert len(rules) == 2
    ingress = [r for r in rules if not r["IsEgress"]][0]
    assert ingress["ReferencedGroupInfo"]["GroupId"] == g["GroupId"] and ingress["IpProtocol"] == "-1"
    assert ingress["FromPort"] == -1 and ingress["SecurityGroupRuleId"].startswith("sgr-")
    assert error_of(lambda: ec2.delete_security_group(GroupId=g["GroupId"]))[0] == "CannotDelete"
    assert error_of(lambda: ec2.delete_security_group(GroupName="default"))[0] == "CannotDelete"


def test_group_crud_and_rules(server):
    ec2 = client(server)
    vid = default_vpc_id(ec2)
    made = ec2.create_security_group(GroupName="web", Description="web servers", TagSpecifications=[
        {"ResourceType": "security-group", "Tags": [{"Key": "tier", "Value": "front"}]}])
    gid = made["GroupId"]
    assert made["Tags"] == [{"Key": "tier", "Value": "front"}]
    g = group(ec2, gid)
    assert (g["GroupName"], g["Description"], g["VpcId"]) == ("web", "web servers", vid)
    # a new group: nothing inbound, everything outbound
    assert g["IpPermissions"] == []
    assert [p["IpProtocol"] for p in g["IpPermissionsEgress"]] == ["-1"]
    assert error_of(lambda: ec2.create_security_group(GroupName="web", Description="again"))[0] == "InvalidGroup.Duplicate"
    assert error_of(lambda: ec2.create_security_group(GroupName="sg-x", Description="x"))[0] == "InvalidParameterValue"
    assert error_of(lambda: ec2.create_security_group(GroupName="x", Description="x",
                                                      VpcId="vpc-0123456789abcdef0"))[0] == "InvalidVpcID.NotFound"
    db = ec2.create_security_group(GroupName="db", Description="databases")["GroupId"]

    r = ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80,
         "IpRanges": [{"CidrIp": "0.0.0.0/0", "Description": "http"}, {"CidrIp": "10.0.0.0/8"}]},
        {"IpProtocol": "6", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": db}]},
        {"IpProtocol": "icmp", "FromPort": 8, "ToPort": -1, "IpRanges": [{"CidrIp": "192.168.0.0/16"}]},
    ])
    assert r["Return"] and len(r["SecurityGroupRules"]) == 4
    assert {x["IpProtocol"] for x in r["SecurityGroupRules"]} == {"tcp", "icmp"}
    assert all(x["GroupId"] == gid and not x["IsEgress"] for x in r["SecurityGroupRules"])
    perms = {(p["IpProtocol"], p.get("FromPort"), p.get("ToPort")): p for p in group(ec2, gid)["IpPermissions"]}
    assert set(perms) == {("tcp", 80, 80), ("tcp", 22, 22), ("icmp", 8, -1)}
    assert perms[("tcp", 80, 80)]["IpRanges"] == [{"CidrIp": "0.0.0.0/0", "Description": "http"}, {"CidrIp": "10.0.0.0/8"}]
    assert [p["GroupId"] for p in perms[("tcp", 22, 22)]["UserIdGroupPairs"]] == [db]
    # the legacy flat form, and names of groups
    ec2.authorize_security_group_ingress(GroupName="web", IpProtocol="udp", FromPort=53, ToPort=53, CidrIp="10.1.0.0/16")
    ec2.authorize_security_group_ingress(GroupId=gid, SourceSecurityGroupName="default")
    assert ("udp", 53, 53) in {(p["IpProtocol"], p.get("FromPort"), p.get("ToPort")) for p in group(ec2, gid)["IpPermissions"]}

    # errors
    dup = [{"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]
    assert error_of(lambda: ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=dup))[0] == \
        "InvalidPermission.Duplicate"
    assert error_of(lambda: ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 90, "ToPort": 80, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]))[0] == \
        "InvalidPermission.Malformed"
    assert error_of(lambda: ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "10.0.0.300/8"}]}]))[0] == \
        "InvalidParameterValue"
    assert error_of(lambda: ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "bogus", "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]))[0] == "InvalidParameterValue"
    assert error_of(lambda: ec2.authorize_security_group_ingress(GroupId="sg-0123456789abcdef0", IpPermissions=dup))[0] == \
        "InvalidGroup.NotFound"
    assert error_of(lambda: ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 1, "ToPort": 2, "UserIdGroupPairs": [{"GroupId": "sg-0123456789abcdef0"}]}]))[0] == \
        "InvalidGroup.NotFound"
    assert error_of(lambda: ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 81, "ToPort": 81, "IpRanges": [{"CidrIp": "10.0.0.0/8"}]}]))[0] == \
        "InvalidPermission.NotFound"
    assert error_of(lambda: ec2.describe_security_groups(GroupIds=["sg-0123456789abcdef0"]))[0] == "InvalidGroup.NotFound"
    assert error_of(lambda: ec2.describe_security_groups(GroupIds=["sg-bad"]))[0] == "InvalidGroupId.Malformed"
    assert error_of(lambda: ec2.describe_security_groups(GroupNames=["nope"]))[0] == "InvalidGroup.NotFound"

    # filters
    def ids(*filters):
        return {x["GroupId"] for x in ec2.describe_security_groups(Filters=list(filters))["SecurityGroups"]}
    assert ids({"Name": "group-name", "Values": ["web"]}) == {gid}
    assert ids({"Name": "ip-permission.from-port", "Values": ["22"]}) == {gid}
    assert ids({"Name": "ip-permission.cidr", "Values": ["192.168.0.0/16"]}) == {gid}
    assert ids({"Name": "ip-permission.group-id", "Values": [db]}) == {gid}
    assert gid in ids({"Name": "egress.ip-permission.cidr", "Values": ["0.0.0.0/0"]})
    assert ids({"Name": "tag:tier", "Values": ["front"]}) == {gid}
    assert ids({"Name": "description", "Values": ["data*"]}) == {db}
    assert error_of(lambda: ec2.describe_security_groups(Filters=[{"Name": "bogus", "Values": ["x"]}]))[0] == \
        "InvalidParameterValue"

    # a group another group's rule names cannot go
    assert error_of(lambda: ec2.delete_security_group(GroupId=db))[0] == "DependencyViolation"
    ec2.revoke_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "UserIdGroupPairs": [{"GroupId": db}]}])
    # revoke by rule id, and egress
    rules = ec2.describe_security_group_rules(Filters=[{"Name": "group-id", "Values": [gid]}])["SecurityGroupRules"]
    icmp = [x["SecurityGroupRuleId"] for x in rules if x["IpProtocol"] == "icmp"]
    assert ec2.describe_security_group_rules(SecurityGroupRuleIds=icmp)["SecurityGroupRules"][0]["CidrIpv4"] == "192.168.0.0/16"
    ec2.revoke_security_group_ingress(GroupId=gid, SecurityGroupRuleIds=icmp)
    assert error_of(lambda: ec2.revoke_security_group_ingress(GroupId=gid, SecurityGroupRuleIds=icmp))[0] == \
        "InvalidSecurityGroupRuleId.NotFound"
    ec2.revoke_security_group_egress(GroupId=gid, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert group(ec2, gid)["IpPermissionsEgress"] == []
    ec2.authorize_security_group_egress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    assert [(p["IpProtocol"], p["FromPort"]) for p in group(ec2, gid)["IpPermissionsEgress"]] == [("tcp", 443)]
    ec2.delete_security_group(GroupId=db)
    ec2.delete_security_group(GroupName="web")
    assert error_of(lambda: ec2.describe_security_groups(GroupIds=[gid]))[0] == "InvalidGroup.NotFound"
    assert error_of(lambda: ec2.delete_security_group(GroupId=gid))[0] == "InvalidGroup.NotFound"
    # another account's group is not found
    other = client(server, key="AKIAOTHEROTHEROTHER1", secret="other-secret-other-secret")
    assert error_of(lambda: other.describe_security_groups(GroupIds=[group(ec2, ec2.describe_security_groups(
        GroupNames=["default"])["SecurityGroups"][0]["GroupId"])["GroupId"]]))[0] == "InvalidGroup.NotFound"


def test_groups_of_another_vpc(server):
    ec2 = client(server)
    vid = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    a = ec2.create_security_group(GroupName="web", Description="same name, other VPC", VpcId=vid)["GroupId"]
    named = ec2.describe_security_groups(GroupNames=["default"])["SecurityGroups"]
    assert len(named) == 1 and named[0]["VpcId"] != vid  # names are the default VPC's
    default_gid = named[0]["GroupId"]
    assert len(ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": ["default"]}])["SecurityGroups"]) >= 2
    # a rule names groups of its own VPC only
    assert error_of(lambda: ec2.authorize_security_group_ingress(GroupId=a, IpPermissions=[
        {"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": default_gid}]}]))[0] == "InvalidGroup.NotFound"
    ec2.delete_security_group(GroupId=a)
    ec2.delete_vpc(VpcId=vid)


def test_aws_cli_security_groups(server):
    env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=os.path.join(server["data"], "credentials"),
               AWS_CONFIG_FILE=os.path.join(server["data"], "config"))
    env.pop("AWS_ACCESS_KEY_ID", None)
    env.pop("AWS_SECRET_ACCESS_KEY", None)

    def aws(*args):
        out = subprocess.run([AWS, "--endpoint-url", server["url"], "ec2", *args, "--output", "json"],
                             capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout) if out.stdout.strip() else {}

    gid = aws("create-security-group", "--group-name", "ssh", "--description", "ssh in")["GroupId"]
    r = aws("authorize-security-group-ingress", "--group-id", gid, "--protocol", "tcp", "--port", "22",
            "--cidr", "203.0.113.0/24")
    assert r["SecurityGroupRules"][0]["FromPort"] == 22
    g = aws("describe-security-groups", "--group-ids", gid)["SecurityGroups"][0]
    assert g["IpPermissions"][0]["IpRanges"] == [{"CidrIp": "203.0.113.0/24"}]
    aws("revoke-security-group-ingress", "--group-id", gid, "--protocol", "tcp", "--port", "22",
        "--cidr", "203.0.113.0/24")
    aws("delete-security-group", "--group-id", gid)


def test_limits(server):
    ec2 = client(server, "eu-west-1")
    gid = ec2.create_security_group(GroupName="many", Description="many rules")["GroupId"]
    ranges = [{"CidrIp": f"10.{i}.0.0/16"} for i in range(61)]
    code = error_of(lambda: ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": ranges}]))[0]
    assert code == "RulesPerSecurityGroupLimitExceeded"
    assert group(ec2, gid)["IpPermissions"] == []  # all or none
    ec2.authorize_security_group_ingress(GroupId=gid, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": ranges[:60]}])
    ec2.delete_security_group(GroupId=gid)
    # five VPCs per account and region, the default one included
    made = [ec2.create_vpc(CidrBlock=f"10.{i}.0.0/16")["Vpc"]["VpcId"] for i in range(4)]
    assert error_of(lambda: ec2.create_vpc(CidrBlock="10.99.0.0/16"))[0] == "VpcLimitExceeded"
    for v in made:
        ec2.delete_vpc(VpcId=v)
