"""The instance metadata service (issue 12) from inside busybox instances: 169.254.169.254:80 in
every VPC, IMDSv2 tokens and IMDSv1, the metadata options, the tree, the signed identity
document. Two accounts' instances have the same private address in their own VPCs and each gets
its own answers. Requests are made with busybox's nc inside the instance, or with the host's
python in the instance's network namespace (nsenter -n) where headers must be exact."""
import base64
import json
import os
import subprocess
import time

import pytest

from conftest import KILN, client, error_of, kiln

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")

OTHER = dict(key="AKIAOTHEROTHEROTHER1", secret="other-secret-other-secret")
IMDS = "169.254.169.254"
USER_DATA = b"#!/bin/sh\necho hello\n\x00\xff binary too"

HTTP = r"""
import socket, sys, json
method, path, headers = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
s = socket.create_connection((sys.argv[4], int(sys.argv[5])), timeout=5)
req = f"{method} {path} HTTP/1.1\r\nHost: {sys.argv[4]}\r\n"
for k, v in headers.items():
    req += f"{k}: {v}\r\n"
req += "Content-Length: 0\r\nConnection: close\r\n\r\n"
s.sendall(req.encode())
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
head, _, body = data.partition(b"\r\n\r\n")
lines = head.decode().split("\r\n")
out = {"status": int(lines[0].split()[1]), "headers": {}, "body": body.hex()}
for l in lines[1:]:
    k, _, v = l.partition(":")
    out["headers"][k.strip().lower()] = v.strip()
print(json.dumps(out))
"""


class Box:
    def __init__(self, env, ec2, iid):
        self.env, self.ec2, self.iid = env, ec2, iid
        d = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        self.d = d
        self.ip, self.pub = d["PrivateIpAddress"], d.get("PublicIpAddress")

    def sh(self, script, timeout=60):
        return subprocess.run([KILN, "runtime", "exec", os.path.join(self.env["data"], "run"), self.iid, "--",
                               "/bin/sh", "-c", script], capture_output=True, text=True, timeout=timeout)

    def init_pid(self):
        with open(os.path.join(self.env["data"], "run", self.iid, "state")) as f:
            return int(dict(l.strip().split("=", 1) for l in f if "=" in l)["init-pid"])

    def http(self, method, path, headers=None, addr=IMDS, port=80):
        """One request from the instance's network namespace: status, headers, body (bytes)."""
        r = subprocess.run(["nsenter", "-t", str(self.init_pid()), "-n", "/usr/bin/python3", "-c", HTTP,
                            method, path, json.dumps(headers or {}), addr, str(port)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        return out["status"], out["headers"], bytes.fromhex(out["body"])

    def get(self, path, token=None):
        return self.http("GET", path, {"X-aws-ec2-metadata-token": token} if token else {})

    def text(self, path, token=None):
        status, _, body = self.get(path, token)
        assert status == 200, (path, status, body)
        return body.decode()

    def token(self, ttl=60):
        status, headers, body = self.http("PUT", "/latest/api/token",
                                          {"X-aws-ec2-metadata-token-ttl-seconds": str(ttl)})
        assert status == 200, (status, body)
        return body.decode()


def start_daemon(data):
    proc = subprocess.Popen([KILN, "serve", "--data", str(data), "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert "serving" in line, proc.stderr.read()
    return proc, f"http://127.0.0.1:{int(line.split()[-1])}"


def launch(ec2, ami, **kw):
    iid = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1,
                            Placement={"AvailabilityZone": "us-east-1a"}, **kw)["Instances"][0]["InstanceId"]
    return iid


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A daemon of our own; a (default account: key pair, user data, tags, a public address) and
    b (the other account, the same private address in its own VPC, tokens required)."""
    data = tmp_path_factory.mktemp("imds") / "data"
    kiln("init", "--data", data)
    kiln("account", "create", "other", "--account-id", "222233334444", "--access-key", OTHER["key"],
         "--secret-key", OTHER["secret"], "--data", data)
    env = {"data": str(data)}
    env["proc"], env["url"] = start_daemon(data)
    try:
        mine, other = client(env), client(env, **OTHER)
        ami = mine.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-busybox"]}])
        ami = env["ami"] = ami["Images"][0]["ImageId"]
        key = mine.create_key_pair(KeyName="imds-key")
        env["key"] = mine.describe_key_pairs(KeyNames=["imds-key"], IncludePublicKey=True)["KeyPairs"][0]
        a = launch(mine, ami, KeyName="imds-key", UserData=USER_DATA,  # botocore encodes it
                   TagSpecifications=[{"ResourceType": "instance", "Tags": [
                       {"Key": "Name", "Value": "box-a"}, {"Key": "team", "Value": "kiln"}]}],
                   MetadataOptions={"InstanceMetadataTags": "enabled"})
        b = launch(other, ami, MetadataOptions={"HttpTokens": "required", "HttpPutResponseHopLimit": 2})
        for ec2, iid in ((mine, a), (other, b)):
            ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        env["a"], env["b"] = Box(env, mine, a), Box(env, other, b)
        env["mine"], env["other"] = mine, other
        del key
        yield env
    finally:
        env["proc"].terminate()
        env["proc"].wait(timeout=30)
        kiln("down", "--data", data, check=False)


def test_same_address_in_two_vpcs_gets_own_answers(world):
    a, b = world["a"], world["b"]
    assert a.ip == b.ip
    assert a.text("/latest/meta-data/instance-id") == a.iid
    assert b.text("/latest/meta-data/instance-id", b.token()) == b.iid
    assert b.text("/latest/meta-data/owner-id" if False else "/latest/meta-data/network/interfaces/macs/"
                  f"{b.text('/latest/meta-data/mac', b.token())}/owner-id", b.token()) == "222233334444"


def test_busybox_reaches_it_with_nc(world):
    a = world["a"]
    r = a.sh(f"printf 'GET /latest/meta-data/instance-id HTTP/1.0\\r\\n\\r\\n' | timeout 5 nc -w 2 {IMDS} 80")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n\n", 1)[-1].strip() == a.iid
    r = a.sh(f"wget -q -O - http://{IMDS}/latest/meta-data/local-ipv4")
    assert r.stdout.strip() == a.ip, r.stderr


def test_token_flow_and_errors(world):
    a, b = world["a"], world["b"]
    status, headers, body = a.http("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "21600"})
    assert status == 200 and headers["x-aws-ec2-metadata-token-ttl-seconds"] == "21600"
    tok = body.decode()
    assert a.text("/latest/meta-data/instance-id", tok) == a.iid
    # bad or missing TTL
    for ttl in (None, "0", "21601", "abc", "-1", ""):
        h = {} if ttl is None else {"X-aws-ec2-metadata-token-ttl-seconds": ttl}
        assert a.http("PUT", "/latest/api/token", h)[0] == 400, ttl
    # X-Forwarded-For, a dated version
    assert a.http("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60",
                                               "X-Forwarded-For": "1.2.3.4"})[0] == 403
    assert a.http("PUT", "/2021-03-23/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60"})[0] == 403
    # a bad token, another instance's token, an expired one
    assert a.get("/latest/meta-data/instance-id", "x" * 64)[0] == 401
    assert a.get("/latest/meta-data/instance-id", b.token())[0] == 401
    assert b.get("/latest/meta-data/instance-id", tok)[0] == 401
    # (a few seconds of life: each request here starts a python in the instance's namespace,
    # which takes more than a second on a loaded machine)
    short = a.token(ttl=4)
    assert a.get("/latest/meta-data/instance-id", short)[0] == 200
    time.sleep(5.1)
    assert a.get("/latest/meta-data/instance-id", short)[0] == 401
    # v1 where tokens are optional, not where they are required
    assert a.get("/latest/meta-data/instance-id")[0] == 200
    assert b.get("/latest/meta-data/instance-id")[0] == 401
    # unknown paths and versions
    assert a.get("/latest/meta-data/no-such-thing")[0] == 404
    assert a.get("/1999-01-01/meta-data/")[0] == 404
    assert a.http("POST", "/latest/meta-data/")[0] == 405


def test_versions_and_listings(world):
    a = world["a"]
    versions = a.text("/").split("\n")
    for v in ("1.0", "2009-04-04", "2016-09-02", "2018-09-24", "2021-03-23", "latest"):
        assert v in versions
        assert a.text(f"/{v}/meta-data/instance-id") == a.iid
    top = a.text("/latest/").split("\n")
    assert set(top) == {"dynamic", "meta-data", "user-data"}
    md = a.text("/latest/meta-data/").split("\n")
    for entry in ("ami-id", "ami-launch-index", "ami-manifest-path", "block-device-mapping/", "hostname",
                  "instance-action", "instance-id", "instance-life-cycle", "instance-type", "local-hostname",
                  "local-ipv4", "mac", "network/", "placement/", "public-ipv4", "public-keys/",
                  "reservation-id", "security-groups", "services/", "tags/"):
        assert entry in md, entry
    assert "iam/" not in md


def test_tree_entries(world):
    a, b = world["a"], world["b"]
    d = a.d
    t = a.text
    assert t("/latest/meta-data/ami-id") == d["ImageId"]
    assert t("/latest/meta-data/ami-launch-index") == "0"
    assert t("/latest/meta-data/instance-type") == "t2.nano"
    assert t("/latest/meta-data/reservation-id").startswith("r-")
    assert t("/latest/meta-data/local-ipv4") == a.ip
    assert t("/latest/meta-data/public-ipv4") == a.pub
    assert t("/latest/meta-data/local-hostname") == d["PrivateDnsName"]
    assert t("/latest/meta-data/hostname") == d["PrivateDnsName"]
    assert t("/latest/meta-data/instance-action") == "none"
    assert t("/latest/meta-data/placement/availability-zone") == "us-east-1a"
    assert t("/latest/meta-data/placement/region") == "us-east-1"
    assert t("/latest/meta-data/services/domain") == "amazonaws.com"
    assert t("/latest/meta-data/security-groups") == "default"
    assert t("/latest/meta-data/block-device-mapping/root") == "/dev/xvda"
    mac = t("/latest/meta-data/mac")
    assert t("/latest/meta-data/network/interfaces/macs/") == mac + "/"
    base = f"/latest/meta-data/network/interfaces/macs/{mac}/"
    assert t(base + "local-ipv4s") == a.ip
    assert mac == a.sh("cat /sys/class/net/eth0/address").stdout.strip()
    eni = d["NetworkInterfaces"][0]
    assert eni["MacAddress"] == mac
    assert t(base + "interface-id") == eni["NetworkInterfaceId"]
    assert t(base + "device-number") == "0"
    assert t(base + "public-ipv4s") == a.pub
    assert t(base + "subnet-id") == d["SubnetId"]
    assert t(base + "vpc-id") == d["VpcId"]
    assert t(base + "vpc-ipv4-cidr-block") == "172.31.0.0/16"
    assert t(base + "security-group-ids") == d["SecurityGroups"][0]["GroupId"]
    assert t(base + "owner-id") == world["mine"].describe_instances(InstanceIds=[a.iid])["Reservations"][0]["OwnerId"]
    # the key pair
    assert t("/latest/meta-data/public-keys/") == "0=imds-key"
    assert t("/latest/meta-data/public-keys/0/") == "openssh-key"
    assert t("/latest/meta-data/public-keys/0/openssh-key").strip() == world["key"]["PublicKey"].strip()
    # user data, raw
    status, _, body = a.get("/latest/user-data")
    assert status == 200 and body == USER_DATA
    # tags: on for a, off for b
    assert set(t("/latest/meta-data/tags/instance/").split("\n")) == {"Name", "team"}
    assert t("/latest/meta-data/tags/instance/team") == "kiln"
    tok = b.token()
    assert b.get("/latest/meta-data/tags/instance/", tok)[0] == 404
    assert b.get("/latest/user-data", tok)[0] == 404
    assert b.get("/latest/meta-data/public-keys/", tok)[0] == 404


def test_identity_document_and_signatures(world, tmp_path):
    a = world["a"]
    raw = a.get("/latest/dynamic/instance-identity/document")[2]
    doc = json.loads(raw)
    assert doc["instanceId"] == a.iid and doc["imageId"] == a.d["ImageId"]
    assert doc["accountId"] == "000000000000" or len(doc["accountId"]) == 12
    assert doc["region"] == "us-east-1" and doc["availabilityZone"] == "us-east-1a"
    assert doc["privateIp"] == a.ip and doc["instanceType"] == "t2.nano"
    assert doc["version"] == "2017-09-30" and doc["architecture"] in ("x86_64", "arm64")
    for k in ("billingProducts", "devpayProductCodes", "marketplaceProductCodes", "kernelId", "ramdiskId"):
        assert k in doc and doc[k] is None
    assert doc["pendingTime"].endswith("Z")
    assert set(a.text("/latest/dynamic/instance-identity/").split("\n")) == {"document", "pkcs7", "signature"}
    cert = os.path.join(world["data"], "identity", "us-east-1.crt")
    (tmp_path / "document").write_bytes(raw)
    # signature: RSA SHA-256 over the document
    sig = a.text("/latest/dynamic/instance-identity/signature")
    (tmp_path / "sig").write_bytes(base64.b64decode(sig))
    pub = subprocess.run(["openssl", "x509", "-in", cert, "-pubkey", "-noout"], capture_output=True, check=True).stdout
    (tmp_path / "pub.pem").write_bytes(pub)
    r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", tmp_path / "pub.pem", "-signature",
                        tmp_path / "sig", tmp_path / "document"], capture_output=True, text=True)
    assert r.returncode == 0 and "Verified OK" in r.stdout, r.stderr
    # pkcs7: detached, verified with the certificate as EC2's documentation does it
    p7 = a.text("/latest/dynamic/instance-identity/pkcs7")
    (tmp_path / "p7.pem").write_text("-----BEGIN PKCS7-----\n" + p7 + "\n-----END PKCS7-----\n")
    r = subprocess.run(["openssl", "smime", "-verify", "-in", tmp_path / "p7.pem", "-inform", "PEM", "-content",
                        tmp_path / "document", "-certfile", cert, "-noverify"], capture_output=True)
    assert r.returncode == 0, r.stderr
    # a changed document does not verify
    (tmp_path / "document").write_bytes(raw.replace(a.iid.encode(), b"i-00000000000000000"))
    r = subprocess.run(["openssl", "dgst", "-sha256", "-verify", tmp_path / "pub.pem", "-signature",
                        tmp_path / "sig", tmp_path / "document"], capture_output=True, text=True)
    assert r.returncode != 0
    # the other account's instance: its own document, the same region's key
    b = world["b"]
    tok = b.token()
    assert json.loads(b.get("/latest/dynamic/instance-identity/document", tok)[2])["accountId"] == "222233334444"


TTLS = r"""
import socket, sys, select
# every TCP packet this namespace receives, with its IP header
raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
s = socket.create_connection(("169.254.169.254", 80), timeout=5)
s.sendall(sys.argv[1].encode())
while s.recv(65536):
    pass
ttls = set()
while select.select([raw], [], [], 0.5)[0]:
    p = raw.recv(65536)
    ihl = (p[0] & 15) * 4
    if socket.inet_ntoa(p[12:16]) == "169.254.169.254" and len(p) > ihl + (p[ihl + 12] >> 4) * 4:
        ttls.add(p[8])  # packets with a payload: the answer
print(" ".join(map(str, sorted(ttls))))
"""


def test_hop_limit_is_the_token_answers_ip_ttl(world):
    """The answer to a PUT goes with the IP TTL HttpPutResponseHopLimit says (b: 2), other
    answers with 64."""
    b = world["b"]

    def ttls(req):
        r = subprocess.run(["nsenter", "-t", str(b.init_pid()), "-n", "/usr/bin/python3", "-c", TTLS, req],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        return set(map(int, r.stdout.split()))

    assert ttls("PUT /latest/api/token HTTP/1.1\r\nHost: x\r\nX-aws-ec2-metadata-token-ttl-seconds: 60\r\n"
                "Connection: close\r\n\r\n") == {2}
    assert ttls(f"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\nX-aws-ec2-metadata-token: {b.token()}"
                "\r\nConnection: close\r\n\r\n") == {64}


def test_describe_and_modify_metadata_options(world):
    a, b = world["a"], world["b"]
    mine, other = world["mine"], world["other"]
    mo = mine.describe_instances(InstanceIds=[a.iid])["Reservations"][0]["Instances"][0]["MetadataOptions"]
    assert mo == {"State": "applied", "HttpTokens": "optional", "HttpPutResponseHopLimit": 1,
                  "HttpEndpoint": "enabled", "HttpProtocolIpv6": "disabled", "InstanceMetadataTags": "enabled"}
    mo = other.describe_instances(InstanceIds=[b.iid])["Reservations"][0]["Instances"][0]["MetadataOptions"]
    assert mo["HttpTokens"] == "required" and mo["HttpPutResponseHopLimit"] == 2
    # refusals
    assert error_of(lambda: mine.modify_instance_metadata_options(InstanceId=a.iid, HttpTokens="sometimes"))[0] == \
        "InvalidParameterValue"
    assert error_of(lambda: mine.modify_instance_metadata_options(InstanceId=a.iid, HttpPutResponseHopLimit=65))[0] == \
        "InvalidParameterValue"
    assert error_of(lambda: mine.modify_instance_metadata_options(InstanceId=a.iid, HttpProtocolIpv6="enabled"))[0] == \
        "InvalidParameterValue"
    assert error_of(lambda: mine.modify_instance_metadata_options(InstanceId=b.iid, HttpTokens="required"))[0] == \
        "InvalidInstanceID.NotFound"
    assert error_of(lambda: mine.modify_instance_metadata_options(InstanceId=a.iid, HttpTokens="required",
                                                                  DryRun=True))[0] == "DryRunOperation"
    assert a.get("/latest/meta-data/instance-id")[0] == 200
    # required, on the running instance
    r = mine.modify_instance_metadata_options(InstanceId=a.iid, HttpTokens="required")
    assert r["InstanceId"] == a.iid and r["InstanceMetadataOptions"]["HttpTokens"] == "required"
    assert a.get("/latest/meta-data/instance-id")[0] == 401
    assert a.text("/latest/meta-data/instance-id", a.token()) == a.iid
    # tags off
    mine.modify_instance_metadata_options(InstanceId=a.iid, InstanceMetadataTags="disabled")
    tok = a.token()
    assert a.get("/latest/meta-data/tags/instance/", tok)[0] == 404
    assert "tags/" not in a.text("/latest/meta-data/", tok).split("\n")
    # the endpoint off: 403 for everything
    mine.modify_instance_metadata_options(InstanceId=a.iid, HttpEndpoint="disabled")
    assert a.get("/latest/meta-data/instance-id", tok)[0] == 403
    assert a.http("PUT", "/latest/api/token", {"X-aws-ec2-metadata-token-ttl-seconds": "60"})[0] == 403
    r = mine.modify_instance_metadata_options(InstanceId=a.iid, HttpEndpoint="enabled", HttpTokens="optional",
                                              InstanceMetadataTags="enabled")
    assert r["InstanceMetadataOptions"] == {"State": "applied", "HttpTokens": "optional", "HttpPutResponseHopLimit": 1,
                                            "HttpEndpoint": "enabled", "HttpProtocolIpv6": "disabled",
                                            "InstanceMetadataTags": "enabled"}
    assert a.text("/latest/meta-data/instance-id") == a.iid


def test_run_instances_metadata_options_refused_and_from_launch_templates(world):
    mine, ami = world["mine"], world["ami"]
    for bad in ({"HttpTokens": "no"}, {"HttpEndpoint": "off"}, {"HttpPutResponseHopLimit": 0},
                {"HttpProtocolIpv6": "enabled"}, {"InstanceMetadataTags": "yes"}):
        assert error_of(lambda: mine.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1,
                                                   MetadataOptions=bad))[0] == "InvalidParameterValue", bad
    lt = mine.create_launch_template(LaunchTemplateName="imds", LaunchTemplateData={
        "ImageId": ami, "InstanceType": "t2.nano",
        "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 3}})["LaunchTemplate"]
    iid = mine.run_instances(MinCount=1, MaxCount=1, LaunchTemplate={"LaunchTemplateId": lt["LaunchTemplateId"]})[
        "Instances"][0]["InstanceId"]
    try:
        mo = mine.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["MetadataOptions"]
        assert mo["HttpTokens"] == "required" and mo["HttpPutResponseHopLimit"] == 3
    finally:
        mine.terminate_instances(InstanceIds=[iid])


def test_no_other_link_local_address(world):
    a = world["a"]
    for addr in ("169.254.0.1", "169.254.0.2"):
        assert a.sh(f"timeout 5 nc -w 2 {addr} 22 </dev/null").returncode != 0
        assert a.sh(f"timeout 5 nc -w 2 {addr} 80 </dev/null").returncode != 0
        assert a.sh(f"ping -c 1 -W 1 {addr}").returncode != 0
    assert a.sh(f"timeout 5 nc -w 2 {IMDS} 22 </dev/null").returncode != 0


HOG = r"""
import socket, sys, time
def ask(s):
    try:
        s.sendall(b"GET /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\n\r\n")
        return s.recv(64).split(b" ")[1].decode()
    except (OSError, IndexError):
        return "closed"
held = [socket.create_connection((sys.argv[1], 80), timeout=5) for _ in range(40)]
time.sleep(0.5)
print(" ".join(ask(s) for s in held), flush=True)
sys.stdin.readline()  # held open until the test has asked from the other VPC
for s in held:
    s.close()
time.sleep(0.5)
print(ask(socket.create_connection((sys.argv[1], 80), timeout=5)), flush=True)
"""


def test_connections_per_instance_are_bounded(world):
    """One instance holds at most 32 connections to the service (more are closed as they come);
    b, with the same address in another VPC, is served meanwhile; a again once it lets go."""
    a, b = world["a"], world["b"]
    p = subprocess.Popen(["nsenter", "-t", str(a.init_pid()), "-n", "/usr/bin/python3", "-c", HOG, IMDS],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        answers = p.stdout.readline().split()
        assert answers.count("200") == 32 and answers.count("closed") == 8, answers
        assert b.get("/latest/meta-data/instance-id", b.token())[0] == 200
        p.stdin.write("\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == "200"
        assert p.wait(timeout=30) == 0
    finally:
        p.kill()


def test_instance_restart_and_daemon_restart(world):
    """A restarted instance is answered again; a restarted daemon serves the VPCs that exist at
    once (their namespaces outlive it), and the tokens of the daemon before are void."""
    a, b = world["a"], world["b"]
    mine = world["mine"]
    mine.stop_instances(InstanceIds=[a.iid])
    mine.get_waiter("instance_stopped").wait(InstanceIds=[a.iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    mine.start_instances(InstanceIds=[a.iid])
    mine.get_waiter("instance_running").wait(InstanceIds=[a.iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert a.text("/latest/meta-data/instance-id") == a.iid
    old = b.token()
    world["proc"].terminate()
    assert world["proc"].wait(timeout=30) == 0
    world["proc"], world["url"] = start_daemon(world["data"])
    world["mine"], world["other"] = client(world), client(world, **OTHER)
    assert a.text("/latest/meta-data/instance-id") == a.iid
    assert b.get("/latest/meta-data/instance-id", old)[0] == 401
    assert b.text("/latest/meta-data/instance-id", b.token()) == b.iid
