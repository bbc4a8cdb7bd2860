"""VPCs are real networks and security groups are enforced (issue 11), tried from inside busybox
instances launched through the API and from the host. Every account's default VPC is
172.31.0.0/16, so two accounts' instances may have the same private address: each VPC is a
network namespace of its own, and the host reaches an instance only by its public address (1:1
NAT, routed to the VPC's transit link), and only where a security group rule lets it. Every probe
is bounded in time and goes only to this test's instances and to the host's own addresses, and
only to addresses the host routes to kiln."""
import json
import os
import socket
import subprocess
import threading
import time

import pytest

from conftest import KILN, client, host_fetch, kiln, routed_to_kiln, until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")

OTHER = dict(key="AKIAOTHEROTHEROTHER1", secret="other-secret-other-secret")
PORT = 7070  # busybox httpd in every instance
CONNECT = """
import socket, sys
s = socket.socket()
s.settimeout(3)
if sys.argv[3]:
    s.bind((sys.argv[3], 0))
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
    print("open")
except OSError as e:
    print("closed", e)
"""


class Box:
    """One instance: its account, addresses, and how to run things in it."""

    def __init__(self, env, ec2, iid):
        self.env, self.ec2, self.iid = env, ec2, iid
        self.refresh()

    def refresh(self):
        d = self.ec2.describe_instances(InstanceIds=[self.iid])["Reservations"][0]["Instances"][0]
        self.ip, self.pub = d["PrivateIpAddress"], d.get("PublicIpAddress")
        self.vpc, self.subnet = d["VpcId"], d["SubnetId"]
        self.groups = [g["GroupId"] for g in d["SecurityGroups"]]
        return d

    def __repr__(self):
        return f"{self.iid} ({self.ip}, public {self.pub}, {self.vpc})"

    def sh(self, script, timeout=60):
        return subprocess.run([KILN, "runtime", "exec", os.path.join(self.env["data"], "run"), self.iid, "--",
                               "/bin/sh", "-c", script], capture_output=True, text=True, timeout=timeout)

    def init_pid(self):
        with open(os.path.join(self.env["data"], "run", self.iid, "state")) as f:
            return int(dict(l.strip().split("=", 1) for l in f if "=" in l)["init-pid"])

    def in_netns(self, *cmd):
        """A host tool in the instance's network namespace (as the host's root: for crafting
        what the instance itself may not)."""
        return subprocess.run(["nsenter", "-t", str(self.init_pid()), "-n", *map(str, cmd)],
                              capture_output=True, text=True, timeout=20)

    def serve(self):
        r = self.sh(f"mkdir -p /tmp/www && echo {self.iid} > /tmp/www/who && httpd -p {PORT} -h /tmp/www")
        assert r.returncode == 0, f"httpd in {self}: {r.stdout}{r.stderr}"

    def connects(self, addr, port):
        """Does a TCP connection from inside reach addr:port? (busybox nc: a dropped SYN times
        out in 2 s)"""
        return self.sh(f"timeout 5 nc -w 2 {addr} {port} </dev/null").returncode == 0

    def fetch(self, addr):
        r = self.sh(f"printf 'GET /who HTTP/1.0\\r\\n\\r\\n' | timeout 5 nc -w 2 {addr} {PORT}")
        # text mode made the answer's CRLFs newlines
        return r.stdout.split("\n\n", 1)[-1].strip() if r.returncode == 0 else None

    def reaches(self, other, public=False):
        """Does other's httpd answer a GET from inside, naming other?"""
        return self.fetch(other.pub if public else other.ip) == other.iid

    def connects_from(self, src, addr, port=PORT):
        r = self.in_netns("python3", "-c", CONNECT, addr, port, src or "")
        return r.stdout.startswith("open")


def start_daemon(data):
    proc = subprocess.Popen([KILN, "serve", "--data", str(data), "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert "serving" in line, proc.stderr.read()
    return proc, f"http://127.0.0.1:{int(line.split()[-1])}"


def web_group(ec2, vpc, name="web"):
    g = ec2.create_security_group(GroupName=name, Description="httpd from anywhere", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=g, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": PORT, "ToPort": PORT, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    return g


def launch(ec2, ami, **kw):
    return ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1,
                             **kw)["Instances"][0]["InstanceId"]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A daemon of our own (the tests restart it) with accounts "default" and 222233334444:
    a1 (default and web groups) and a2 of the default account in us-east-1a, a3 of it in
    us-east-1b, b1 of the other account in us-east-1a (its own web group); busybox httpd in
    each."""
    data = tmp_path_factory.mktemp("vpcnet") / "data"
    kiln("init", "--data", data)
    kiln("account", "create", "other", "--account-id", "222233334444", "--access-key", OTHER["key"],
         "--secret-key", OTHER["secret"], "--data", data)
    env = {"data": str(data)}
    env["proc"], env["url"] = start_daemon(data)
    try:
        mine, other = client(env), client(env, **OTHER)
        ami = mine.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-busybox"]}])
        assert ami["Images"], "the public busybox image is missing (make images)"
        ami = env["ami"] = ami["Images"][0]["ImageId"]
        vpc_a = mine.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
        vpc_b = other.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
        default_a = mine.describe_security_groups(Filters=[
            {"Name": "vpc-id", "Values": [vpc_a]}, {"Name": "group-name", "Values": ["default"]}])[
            "SecurityGroups"][0]["GroupId"]
        env["default_a"] = default_a
        env["web_a"], web_b = web_group(mine, vpc_a), web_group(other, vpc_b)
        ids = {
            "a1": (mine, launch(mine, ami, Placement={"AvailabilityZone": "us-east-1a"},
                                SecurityGroupIds=[default_a, env["web_a"]])),
            "a2": (mine, launch(mine, ami, Placement={"AvailabilityZone": "us-east-1a"})),
            "a3": (mine, launch(mine, ami, Placement={"AvailabilityZone": "us-east-1b"})),
            "b1": (other, launch(other, ami, Placement={"AvailabilityZone": "us-east-1a"},
                                 SecurityGroupIds=[web_b])),
        }
        for ec2, iid in ids.values():
            ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        boxes = {name: Box(env, ec2, iid) for name, (ec2, iid) in ids.items()}
        for b in boxes.values():
            b.serve()
        until(lambda: host_fetch(boxes["a1"].pub) == boxes["a1"].iid, "the host to reach a1")
        env.update(boxes)
        env["mine"], env["other"] = mine, other
        yield env
    finally:
        env["proc"].terminate()
        env["proc"].wait(timeout=30)
        kiln("down", "--data", data, check=False)


def test_instances_are_in_their_accounts_default_vpcs(world):
    a1, a2, a3, b1 = (world[n] for n in ("a1", "a2", "a3", "b1"))
    assert a1.vpc == a2.vpc == a3.vpc != b1.vpc
    assert a1.subnet == a2.subnet != a3.subnet
    for b in (a1, a2, a3, b1):
        assert b.ip.startswith("172.31."), b
        assert b.pub and b.pub.startswith("198.1"), b
        assert routed_to_kiln(b.pub)
    # the same range in both accounts: the first address of each default subnet is .4
    assert a1.ip == b1.ip == "172.31.0.4", (a1, b1)
    assert len({a1.pub, a2.pub, a3.pub, b1.pub}) == 4
    assert a1.groups and world["web_a"] in a1.groups and a2.groups == [world["default_a"]]


def test_default_group_members_reach_each_other_across_zones(world):
    a1, a2, a3 = world["a1"], world["a2"], world["a3"]
    assert a1.reaches(a2), f"{a1} cannot reach {a2} (same subnet)"
    assert a2.reaches(a3), f"{a2} cannot reach {a3} (other zone)"
    assert a3.reaches(a1), f"{a3} cannot reach {a1}"


def test_a_port_closed_then_opened_by_authorize_then_closed_by_revoke(world):
    a2, ec2 = world["a2"], world["mine"]
    perm = [{"IpProtocol": "tcp", "FromPort": PORT, "ToPort": PORT, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    assert host_fetch(a1_pub := world["a1"].pub) == world["a1"].iid  # the web group opens a1
    assert host_fetch(a2.pub) is None  # the default group opens nothing to the outside
    ec2.authorize_security_group_ingress(GroupId=world["default_a"], IpPermissions=perm)
    try:
        until(lambda: host_fetch(a2.pub) == a2.iid, "the rule to open a2", seconds=3)
    finally:
        ec2.revoke_security_group_ingress(GroupId=world["default_a"], IpPermissions=perm)
    until(lambda: host_fetch(a2.pub, timeout=1) is None, "the revoke to close a2", seconds=3)
    assert host_fetch(a1_pub) == world["a1"].iid


def test_nothing_crosses_between_vpcs(world):
    a1, a2, b1 = world["a1"], world["a2"], world["b1"]
    assert host_fetch(b1.pub) == b1.iid  # b1 is open to the world ...
    assert not a1.reaches(b1, public=True)  # ... but not to another VPC
    assert not b1.reaches(a1, public=True)
    # b1's private address is a1's own: from b1 it is b1 itself, a2's is nobody in b1's VPC
    assert b1.fetch(a2.ip) is None


def test_an_instance_without_a_rule_sends_nothing_out(world):
    """a group with no egress rule: its member sends nothing, not even to its VPC."""
    ec2, a3 = world["mine"], world["a3"]
    g = ec2.create_security_group(GroupName="mute", Description="no egress", VpcId=a3.vpc)["GroupId"]
    ec2.revoke_security_group_egress(GroupId=g, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    ec2.modify_instance_attribute(InstanceId=a3.iid, Groups=[g])
    try:
        until(lambda: not a3.reaches(world["a1"]), "a3 to be muted", seconds=5)
    finally:
        ec2.modify_instance_attribute(InstanceId=a3.iid, Groups=[world["default_a"]])
    until(lambda: a3.reaches(world["a1"]), "a3 to speak again", seconds=5)


def test_overlapping_vpcs_of_one_account(world):
    ec2, ami = world["mine"], world["ami"]
    boxes = []
    for _ in range(2):
        vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
        sn = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
        web = web_group(ec2, vpc, "web")
        iid = launch(ec2, ami, NetworkInterfaces=[{"DeviceIndex": 0, "SubnetId": sn, "Groups": [web],
                                                   "AssociatePublicIpAddress": True}])
        ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        b = Box(world, ec2, iid)
        b.serve()
        boxes.append(b)
    x, y = boxes
    assert x.ip == y.ip == "10.0.1.4" and x.vpc != y.vpc
    until(lambda: host_fetch(x.pub) == x.iid, "the host to reach x")
    until(lambda: host_fetch(y.pub) == y.iid, "the host to reach y")
    assert not x.reaches(y, public=True)
    ec2.terminate_instances(InstanceIds=[x.iid, y.iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[x.iid, y.iid],
                                               WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert host_fetch(x.pub, timeout=1) is None


class HostListener:
    """TCP on one port of every host address; remembers who came."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("0.0.0.0", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.seen, self.stop = [], False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop:
            try:
                c, peer = self.sock.accept()
            except OSError:
                continue
            self.seen.append(peer[0])
            c.close()

    def close(self):
        self.stop = True
        self.thread.join()
        self.sock.close()


def host_addresses():
    """Every IPv4 address the host delivers locally, but loopback (the instance's own inside)."""
    out = json.loads(subprocess.run(["ip", "-j", "-4", "addr", "show"], capture_output=True, text=True,
                                    check=True).stdout)
    addrs = {a["local"] for link in out for a in link.get("addr_info", []) if not a["local"].startswith("127.")}
    local = []
    for a in sorted(addrs):
        r = json.loads(subprocess.run(["ip", "-j", "route", "get", a], capture_output=True, text=True,
                                      check=True).stdout)[0]
        if r.get("type") == "local":
            local.append(a)
    return local


def test_host_services_are_unreachable(world):
    hl = HostListener()
    try:
        addrs = host_addresses() + ["172.31.0.1"]  # and the router, the gateway of a1's subnet
        assert "169.254.0.1" in addrs, addrs  # the host's end of the transit links
        with socket.create_connection(("127.0.0.1", hl.port), timeout=3):
            pass  # the listener works
        reached = [(b, a) for b in (world["a1"], world["b1"]) for a in addrs if b.connects(a, hl.port)]
        time.sleep(0.2)
    finally:
        hl.close()
    assert not reached, f"instances reached a host listener: {reached}"
    assert [p for p in hl.seen if p != "127.0.0.1"] == [], hl.seen


def test_instances_send_only_from_their_own_address(world):
    a1, a2, a3 = world["a1"], world["a2"], world["a3"]
    assert a1.connects_from(a1.ip, a3.ip)  # the check works: its own address gets through
    r = a1.in_netns("ip", "addr", "add", f"{a2.ip}/32", "dev", "eth0")
    assert r.returncode == 0, r.stderr
    try:
        assert not a1.connects_from(a2.ip, a3.ip), f"{a1} sent as {a2.ip}"
    finally:
        a1.in_netns("ip", "addr", "del", f"{a2.ip}/32", "dev", "eth0")
    until(lambda: a1.connects_from(a1.ip, a3.ip), f"{a1} to reach {a3} again")


def test_daemon_restart_keeps_instances_reachable_and_filtered(world):
    a1, a2, a3, b1 = (world[n] for n in ("a1", "a2", "a3", "b1"))
    world["proc"].terminate()
    assert world["proc"].wait(timeout=30) == 0
    world["proc"], world["url"] = start_daemon(world["data"])
    world["mine"], world["other"] = client(world), client(world, **OTHER)  # the new port
    for b in (a1, a2, a3):
        b.ec2 = world["mine"]
    b1.ec2 = world["other"]
    assert host_fetch(a1.pub) == a1.iid and host_fetch(b1.pub) == b1.iid
    assert host_fetch(a2.pub, timeout=1) is None
    assert a1.reaches(a3)
    assert not a1.reaches(b1, public=True)


def test_stop_takes_the_public_address_away_and_start_brings_one(world):
    a1, ec2 = world["a1"], world["mine"]
    old = a1.pub
    ec2.stop_instances(InstanceIds=[a1.iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[a1.iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert a1.refresh().get("PublicIpAddress") is None
    assert not routed_to_kiln(old)
    ec2.start_instances(InstanceIds=[a1.iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[a1.iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    a1.refresh()
    assert a1.pub and routed_to_kiln(a1.pub)
    a1.serve()
    until(lambda: host_fetch(a1.pub) == a1.iid, f"the host to reach {a1} again")
    assert world["a2"].reaches(a1)
