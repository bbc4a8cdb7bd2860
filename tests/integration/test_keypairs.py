"""Key pairs (issue 11): CreateKeyPair (rsa and ed25519, pem and ppk), ImportKeyPair,
DescribeKeyPairs, DeleteKeyPair through boto3 and the aws CLI, with EC2's fingerprints checked
against what ssh-keygen and openssl compute from the material on their own; RunInstances'
KeyName, and logging in over SSH to the debian-12 image as its login user admin (made by
cloud-init from the metadata service; sudo without a password, root refused)."""
import base64
import hashlib
import json
import os
import re
import shutil
import subprocess
import time

import pytest

from conftest import AWS, KILN, client, error_of, kiln, serving

DEBIAN_TAR = os.environ.get("KILN_DEBIAN_IMAGE") or os.path.join(
    os.path.dirname(KILN), "images", "debian-12.tar")
BUSYBOX_TAR = os.path.join(os.path.dirname(KILN), "images", "busybox.tar")
OTHER = dict(key="AKIAOTHEROTHEROTHER1", secret="other-secret-other-secret")
KEY_ID = re.compile(r"^key-[0-9a-f]{17}$")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A daemon over a data directory whose public images are busybox and the debian-12 tarball
    of KILN_DEBIAN_IMAGE (else the one built beside kiln), with a second account."""
    base = tmp_path_factory.mktemp("keys")
    images = base / "images"
    images.mkdir()
    for tar in (BUSYBOX_TAR, DEBIAN_TAR):
        if os.path.exists(tar):
            os.symlink(os.path.abspath(tar), images / os.path.basename(tar))
    data = base / "data"
    kiln("init", "--data", data, "--images", images)
    kiln("account", "create", "other", "--account-id", "222233334444", "--access-key", OTHER["key"],
         "--secret-key", OTHER["secret"], "--data", data)
    yield from serving(data)


@pytest.fixture(scope="module")
def ec2(server):
    return client(server)


def run(*cmd, input=None):
    r = subprocess.run(list(map(str, cmd)), capture_output=True, input=input,
                       text=not isinstance(input, bytes))
    assert r.returncode == 0, f"{cmd} failed: {r.stderr}"
    return r.stdout


def save_private(tmp_path, name, material):
    p = tmp_path / name
    p.write_text(material)
    p.chmod(0o600)
    return p


def sha256_fingerprint(pub_file):
    """ssh-keygen -l's SHA256 fingerprint, with the base64 padding EC2 keeps."""
    fp = run("ssh-keygen", "-l", "-E", "sha256", "-f", pub_file).split()[1]
    assert fp.startswith("SHA256:")
    fp = fp[len("SHA256:"):]
    return fp + "=" * (-len(fp) % 4)


def aws(server, *args, key=None):
    env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=os.path.join(server["data"], "credentials"),
               AWS_CONFIG_FILE=os.path.join(server["data"], "config"), AWS_PAGER="")
    r = subprocess.run([AWS, "--endpoint-url", server["url"], "--region", "us-east-1", "--output",
                        "json", "ec2", *map(str, args)], capture_output=True, text=True, env=env,
                       timeout=60)
    return r


def test_create_rsa_pem(ec2, tmp_path):
    k = ec2.create_key_pair(KeyName="rsa-one")
    assert KEY_ID.match(k["KeyPairId"]) and k["KeyName"] == "rsa-one"
    assert k["KeyMaterial"].startswith("-----BEGIN RSA PRIVATE KEY-----\n")
    priv = save_private(tmp_path, "rsa.pem", k["KeyMaterial"])
    # EC2's fingerprint of a key it made: SHA-1 of the DER PKCS#8 private key
    der = subprocess.run(["openssl", "pkcs8", "-in", str(priv), "-inform", "PEM", "-outform", "DER",
                          "-topk8", "-nocrypt"], capture_output=True, check=True).stdout
    assert k["KeyFingerprint"] == ":".join(f"{b:02x}" for b in hashlib.sha1(der).digest())
    d = ec2.describe_key_pairs(KeyNames=["rsa-one"], IncludePublicKey=True)["KeyPairs"][0]
    assert (d["KeyPairId"], d["KeyType"], d["KeyFingerprint"]) == (k["KeyPairId"], "rsa", k["KeyFingerprint"])
    assert d["PublicKey"].split()[:2] == run("ssh-keygen", "-y", "-f", priv).split()[:2]
    assert "CreateTime" in d
    assert "PublicKey" not in ec2.describe_key_pairs(KeyNames=["rsa-one"])["KeyPairs"][0]


def test_create_ed25519_pem(ec2, tmp_path):
    k = ec2.create_key_pair(KeyName="ed-one", KeyType="ed25519", KeyFormat="pem")
    assert k["KeyMaterial"].startswith("-----BEGIN OPENSSH PRIVATE KEY-----\n")
    priv = save_private(tmp_path, "ed", k["KeyMaterial"])
    pub = tmp_path / "ed.pub"
    pub.write_text(run("ssh-keygen", "-y", "-f", priv))
    assert k["KeyFingerprint"] == sha256_fingerprint(pub)
    assert len(k["KeyFingerprint"]) == 44 and k["KeyFingerprint"].endswith("=")
    d = ec2.describe_key_pairs(KeyPairIds=[k["KeyPairId"]], IncludePublicKey=True)["KeyPairs"][0]
    assert d["KeyType"] == "ed25519" and d["PublicKey"].split()[:2] == pub.read_text().split()[:2]


@pytest.mark.parametrize("key_type", ["rsa", "ed25519"])
def test_create_ppk(ec2, tmp_path, key_type):
    """PuTTY's format, version 3: puttygen reads it (checking its MAC) and finds the same key."""
    k = ec2.create_key_pair(KeyName=f"ppk-{key_type}", KeyType=key_type, KeyFormat="ppk")
    lines = k["KeyMaterial"].splitlines()
    assert lines[0] == f"PuTTY-User-Key-File-3: ssh-{key_type}" and lines[1] == "Encryption: none"
    assert lines[-1].startswith("Private-MAC: ")
    if not shutil.which("puttygen"):
        pytest.skip("puttygen (putty-tools) is not installed")
    ppk = save_private(tmp_path, "k.ppk", k["KeyMaterial"])
    pub = run("puttygen", ppk, "-O", "public-openssh")
    d = ec2.describe_key_pairs(KeyNames=[f"ppk-{key_type}"], IncludePublicKey=True)["KeyPairs"][0]
    assert pub.split()[:2] == d["PublicKey"].split()[:2]
    # and the private half is the one that matches
    run("puttygen", ppk, "-O", "private-openssh", "-o", tmp_path / "k.pem")
    (tmp_path / "k.pem").chmod(0o600)
    assert run("ssh-keygen", "-y", "-f", tmp_path / "k.pem").split()[:2] == pub.split()[:2]


def test_import_rsa_and_ed25519(ec2, server, tmp_path):
    for t, bits in (("rsa", "2048"), ("ed25519", None)):
        path = tmp_path / f"id_{t}"
        run("ssh-keygen", "-q", "-t", t, *(["-b", bits] if bits else []), "-N", "", "-C", "me@host",
            "-f", path)
        line = (tmp_path / f"id_{t}.pub").read_bytes()
        k = ec2.import_key_pair(KeyName=f"imported-{t}", PublicKeyMaterial=line,
                                TagSpecifications=[{"ResourceType": "key-pair",
                                                    "Tags": [{"Key": "Team", "Value": t}]}])
        assert KEY_ID.match(k["KeyPairId"]) and "KeyMaterial" not in k
        assert k["Tags"] == [{"Key": "Team", "Value": t}]
        if t == "rsa":
            # EC2's fingerprint of an imported RSA key: MD5 of the DER SubjectPublicKeyInfo
            pem = run("ssh-keygen", "-e", "-m", "PKCS8", "-f", tmp_path / f"id_{t}.pub")
            der = subprocess.run(["openssl", "pkey", "-pubin", "-outform", "DER"], input=pem.encode(),
                                 capture_output=True, check=True).stdout
            assert k["KeyFingerprint"] == ":".join(f"{b:02x}" for b in hashlib.md5(der).digest())
        else:
            assert k["KeyFingerprint"] == sha256_fingerprint(tmp_path / f"id_{t}.pub")
        d = ec2.describe_key_pairs(KeyNames=[f"imported-{t}"], IncludePublicKey=True)["KeyPairs"][0]
        assert d["PublicKey"] == line.decode().strip() and d["KeyType"] == t

    # the other forms EC2 takes: RFC 4716 (ssh-keygen -e) and the DER SubjectPublicKeyInfo,
    # in PEM or bare base64; the same key, the same fingerprint
    rsa_fp = ec2.describe_key_pairs(KeyNames=["imported-rsa"])["KeyPairs"][0]["KeyFingerprint"]
    rfc4716 = run("ssh-keygen", "-e", "-f", tmp_path / "id_rsa.pub")
    pem = run("ssh-keygen", "-e", "-m", "PKCS8", "-f", tmp_path / "id_rsa.pub")
    bare = "".join(l for l in pem.splitlines() if not l.startswith("-----"))
    for name, material in (("rfc4716", rfc4716), ("pem", pem), ("der", bare)):
        k = ec2.import_key_pair(KeyName=f"rsa-{name}", PublicKeyMaterial=material.encode())
        assert k["KeyFingerprint"] == rsa_fp, name
    ed_rfc = run("ssh-keygen", "-e", "-f", tmp_path / "id_ed25519.pub")
    k = ec2.import_key_pair(KeyName="ed-rfc4716", PublicKeyMaterial=ed_rfc.encode())
    assert k["KeyFingerprint"] == sha256_fingerprint(tmp_path / "id_ed25519.pub")
    d = ec2.describe_key_pairs(KeyNames=["ed-rfc4716"], IncludePublicKey=True)["KeyPairs"][0]
    assert d["PublicKey"].split()[:2] == (tmp_path / "id_ed25519.pub").read_text().split()[:2]

    # the aws CLI sends the file as it is (fileb://), base64-encoded on the wire
    r = aws(server, "import-key-pair", "--key-name", "from-cli", "--public-key-material",
            f"fileb://{tmp_path / 'id_ed25519.pub'}")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["KeyFingerprint"] == sha256_fingerprint(tmp_path / "id_ed25519.pub")


def test_import_refuses_what_is_no_usable_public_key(ec2, tmp_path):
    run("ssh-keygen", "-q", "-t", "rsa", "-b", "1024", "-N", "", "-f", tmp_path / "small")
    run("ssh-keygen", "-q", "-t", "ecdsa", "-N", "", "-f", tmp_path / "ecdsa")
    ed = (tmp_path / "ed.pub")
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", tmp_path / "ed")
    good = ed.read_text().split()
    truncated = f"{good[0]} {good[1][:-8]}".encode()
    for bad in [b"not a key", (tmp_path / "small.pub").read_bytes(), (tmp_path / "ecdsa.pub").read_bytes(),
                truncated, f"ssh-rsa {good[1]}".encode(), (tmp_path / "ed").read_bytes()]:
        assert error_of(lambda: ec2.import_key_pair(KeyName="bad", PublicKeyMaterial=bad)) == (
            "InvalidKeyPair.Format", 400), bad
    assert not ec2.describe_key_pairs(Filters=[{"Name": "key-name", "Values": ["bad"]}])["KeyPairs"]


def test_duplicate_and_not_found(ec2, tmp_path):
    ec2.create_key_pair(KeyName="dup")
    run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", tmp_path / "k")
    assert error_of(lambda: ec2.create_key_pair(KeyName="dup")) == ("InvalidKeyPair.Duplicate", 400)
    assert error_of(lambda: ec2.import_key_pair(
        KeyName="dup", PublicKeyMaterial=(tmp_path / "k.pub").read_bytes())) == ("InvalidKeyPair.Duplicate", 400)
    assert error_of(lambda: ec2.describe_key_pairs(KeyNames=["nope"])) == ("InvalidKeyPair.NotFound", 400)
    assert error_of(lambda: ec2.describe_key_pairs(KeyPairIds=["key-0123456789abcdef0"])) == (
        "InvalidKeyPair.NotFound", 400)
    assert error_of(lambda: ec2.delete_key_pair(KeyPairId="key-0123456789abcdef0")) == (
        "InvalidKeyPair.NotFound", 400)
    assert error_of(lambda: ec2.create_key_pair(KeyName="x", KeyType="dsa")) == ("InvalidParameterValue", 400)
    assert error_of(lambda: ec2.create_key_pair(KeyName="x", KeyFormat="der")) == ("InvalidParameterValue", 400)
    assert error_of(lambda: ec2.create_key_pair(KeyName="x" * 256)) == ("InvalidParameterValue", 400)
    assert error_of(lambda: ec2.create_key_pair(KeyName="x", DryRun=True)) == ("DryRunOperation", 412)
    # a name and an id of nothing: RunInstances names the key pair
    import botocore
    ami = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, KeyName="missing")
    assert e.value.response["Error"]["Code"] == "InvalidKeyPair.NotFound"
    assert e.value.response["Error"]["Message"] == "The key pair 'missing' does not exist"


def test_describe_filters_and_per_account_and_region(ec2, server):
    a = ec2.create_key_pair(KeyName="filter-a", KeyType="ed25519",
                            TagSpecifications=[{"ResourceType": "key-pair",
                                                "Tags": [{"Key": "env", "Value": "prod"}]}])
    b = ec2.create_key_pair(KeyName="filter-b")

    def names(**kw):
        return sorted(k["KeyName"] for k in ec2.describe_key_pairs(**kw)["KeyPairs"])

    assert {"filter-a", "filter-b"} <= set(names())
    assert names(Filters=[{"Name": "key-name", "Values": ["filter-*"]}]) == ["filter-a", "filter-b"]
    assert names(Filters=[{"Name": "key-pair-id", "Values": [b["KeyPairId"]]}]) == ["filter-b"]
    assert names(Filters=[{"Name": "fingerprint", "Values": [a["KeyFingerprint"]]}]) == ["filter-a"]
    assert names(Filters=[{"Name": "tag:env", "Values": ["prod"]}]) == ["filter-a"]
    assert names(Filters=[{"Name": "tag-key", "Values": ["env"]}]) == ["filter-a"]
    assert names(KeyNames=["filter-b", "filter-a"]) == ["filter-a", "filter-b"]
    assert names(KeyPairIds=[a["KeyPairId"]]) == ["filter-a"]
    tagged = ec2.describe_key_pairs(KeyNames=["filter-a"])["KeyPairs"][0]
    assert tagged["Tags"] == [{"Key": "env", "Value": "prod"}]
    # CreateTags and DescribeTags know key pairs
    ec2.create_tags(Resources=[b["KeyPairId"]], Tags=[{"Key": "env", "Value": "dev"}])
    t = ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [b["KeyPairId"]]}])["Tags"]
    assert [(x["ResourceType"], x["Value"]) for x in t] == [("key-pair", "dev")]
    # per region and per account
    assert "filter-a" not in [k["KeyName"] for k in client(server, region="eu-west-1").describe_key_pairs()["KeyPairs"]]
    other = client(server, **OTHER)
    assert other.describe_key_pairs()["KeyPairs"] == []
    other.create_key_pair(KeyName="filter-a")  # the same name, another account's
    # the aws CLI lists them too
    r = aws(server, "describe-key-pairs", "--key-names", "filter-a")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["KeyPairs"][0]["KeyPairId"] == a["KeyPairId"]


def test_delete_by_name_and_by_id(ec2):
    a = ec2.create_key_pair(KeyName="del-a")
    b = ec2.create_key_pair(KeyName="del-b", TagSpecifications=[
        {"ResourceType": "key-pair", "Tags": [{"Key": "k", "Value": "v"}]}])
    ec2.delete_key_pair(KeyName="del-a")
    ec2.delete_key_pair(KeyPairId=b["KeyPairId"])
    left = [k["KeyName"] for k in ec2.describe_key_pairs()["KeyPairs"]]
    assert "del-a" not in left and "del-b" not in left
    assert not ec2.describe_tags(Filters=[{"Name": "resource-id", "Values": [b["KeyPairId"]]}])["Tags"]
    ec2.delete_key_pair(KeyName="del-a")  # a name that is gone: no error, as in EC2
    ec2.create_key_pair(KeyName="del-a")  # and the name is free again
    assert a["KeyPairId"] not in [k["KeyPairId"] for k in ec2.describe_key_pairs()["KeyPairs"]]


# ---- logging in ----

def login_address(ec2, iid):
    d = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    return d.get("PublicIpAddress") or d["PrivateIpAddress"], d


def ssh(key, user, addr, command, timeout=30):
    return subprocess.run(
        ["ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=error", "-o", "ConnectTimeout=5",
         "-o", "IdentitiesOnly=yes", f"{user}@{addr}", command],
        capture_output=True, text=True, timeout=timeout)


@pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")
def test_debian_login_as_admin_with_the_key_pair(ec2, tmp_path):
    if not os.path.exists(DEBIAN_TAR):
        pytest.skip(f"no debian-12 image at {DEBIAN_TAR}")
    if not shutil.which("ssh"):
        pytest.skip("no ssh client")
    listing = subprocess.run(["tar", "-tf", DEBIAN_TAR], capture_output=True, text=True, check=True).stdout
    assert "./etc/kiln/cloud-init" in listing.split("\n"), (
        f"{DEBIAN_TAR} predates cloud-init: rebuild it (KILN_REBUILD=1 make images)")
    images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-debian-12"]}])
    ami = images["Images"][0]["ImageId"]
    # as on EC2: the default group lets in only its own members; SSH from anywhere (the host)
    perm = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    try:
        ec2.authorize_security_group_ingress(GroupName="default", IpPermissions=perm)
    except ec2.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "InvalidPermission.Duplicate", e
    k = ec2.create_key_pair(KeyName="login", KeyType="ed25519")
    priv = save_private(tmp_path, "login", k["KeyMaterial"])
    iid = ec2.run_instances(ImageId=ami, InstanceType="t2.micro", MinCount=1, MaxCount=1,
                            KeyName="login")["Instances"][0]["InstanceId"]
    try:
        # the instance keeps its key when the key pair goes, as in EC2
        ec2.delete_key_pair(KeyName="login")
        ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 90})
        addr, d = login_address(ec2, iid)
        assert d["KeyName"] == "login"
        deadline = time.monotonic() + 60
        while True:
            r = ssh(priv, "admin", addr, "id -un; sudo -n true && echo sudo-ok; "
                    "stat -c '%U %a' ~/.ssh ~/.ssh/authorized_keys")
            if r.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert r.returncode == 0, f"{r.stderr}\n{ec2.get_console_output(InstanceId=iid).get('Output', '')}"
        assert r.stdout.split("\n")[:4] == ["admin", "sudo-ok", "admin 700", "admin 600"], r.stdout
        root = ssh(priv, "root", addr, "true")
        assert root.returncode == 255 and "Permission denied" in root.stderr, root
    finally:
        ec2.terminate_instances(InstanceIds=[iid])
        ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
