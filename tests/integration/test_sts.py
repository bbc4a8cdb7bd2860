"""STS on kiln's listener (requests signed for the service sts), instance profiles on
RunInstances, and SigV4 with the session tokens of an instance's temporary credentials."""
import configparser
import json
import os
import secrets
import sqlite3
import subprocess
import time

import boto3
import pytest
from botocore.config import Config

from conftest import AWS, client, error_of, in_netns

OTHER = ("AKIAOTHEROTHEROTHER1", "other-secret-other-secret")


def keys(server):
    cred = configparser.ConfigParser()
    cred.read(os.path.join(server["data"], "credentials"))
    return cred["default"]["aws_access_key_id"], cred["default"]["aws_secret_access_key"]


def account_id(server):
    db = sqlite3.connect(os.path.join(server["data"], "kiln.db"))
    key = keys(server)[0]
    return db.execute("SELECT account FROM access_keys WHERE access_key = ?", (key,)).fetchone()[0]


def boto(server, service, key=None, secret=None, token=None):
    k, s = keys(server)
    return boto3.client(service, region_name="us-east-1", endpoint_url=server["url"],
                        aws_access_key_id=key or k, aws_secret_access_key=secret or s,
                        aws_session_token=token, config=Config(retries={"max_attempts": 1}))


def aws_cli(server, *args):
    env = dict(os.environ, AWS_SHARED_CREDENTIALS_FILE=os.path.join(server["data"], "credentials"),
               AWS_CONFIG_FILE=os.path.join(server["data"], "config"))
    for v in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        env.pop(v, None)
    return subprocess.run([AWS, "--endpoint-url", server["url"], "--region", "us-east-1", *args,
                           "--output", "json"], capture_output=True, text=True, env=env)


def test_get_caller_identity_boto3(server):
    acct = account_id(server)
    r = boto(server, "sts").get_caller_identity()
    assert (r["Account"], r["Arn"], r["UserId"]) == (acct, f"arn:aws:iam::{acct}:root", acct)
    assert len(r["ResponseMetadata"]["RequestId"]) == 36
    o = boto(server, "sts", *OTHER).get_caller_identity()
    assert (o["Account"], o["Arn"]) == ("222233334444", "arn:aws:iam::222233334444:root")


def test_get_caller_identity_aws_cli(server):
    acct = account_id(server)
    out = aws_cli(server, "sts", "get-caller-identity")
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"UserId": acct, "Account": acct,
                                      "Arn": f"arn:aws:iam::{acct}:root"}
    bad = aws_cli(server, "sts", "get-session-token")
    assert bad.returncode != 0 and "InvalidAction" in bad.stderr, bad.stderr


def test_sts_wire_format(server):
    """The Query protocol's envelope, STS's namespace, and its error document."""
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    import urllib.request
    k, s = keys(server)

    def signed(body, secret=s):
        req = botocore.awsrequest.AWSRequest(method="POST", url=server["url"] + "/", data=body,
                                             headers={"Content-Type": "application/x-www-form-urlencoded"})
        botocore.auth.SigV4Auth(botocore.credentials.Credentials(k, secret), "sts",
                                "us-east-1").add_auth(req)
        p = req.prepare()
        r = urllib.request.Request(p.url, data=p.body, headers=dict(p.headers), method="POST")
        try:
            with urllib.request.urlopen(r) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    status, body = signed(b"Action=GetCallerIdentity&Version=2011-06-15")
    assert status == 200
    assert '<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">' in body
    assert "<GetCallerIdentityResult><Arn>" in body and "<ResponseMetadata><RequestId>" in body
    status, body = signed(b"Action=AssumeRole&Version=2011-06-15")
    assert status == 400
    assert '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender' \
           '</Type><Code>InvalidAction</Code>' in body and "</Error><RequestId>" in body
    status, body = signed(b"Action=GetCallerIdentity&Version=2011-06-15", secret="x" * 40)
    assert status == 403 and "<Code>SignatureDoesNotMatch</Code>" in body


def test_sts_errors(server):
    k, _ = keys(server)
    sts = boto(server, "sts", k, "wrong-secret-wrong-secret-wrong-secret-00")
    assert error_of(sts.get_caller_identity) == ("SignatureDoesNotMatch", 403)
    sts = boto(server, "sts", "AKIANOSUCHKEYNOSUCH1", "x" * 40)
    assert error_of(sts.get_caller_identity) == ("InvalidClientTokenId", 403)
    # an account's own key with a session token is refused, as AWS refuses it
    sts = boto(server, "sts", token="not-a-token")
    assert error_of(sts.get_caller_identity) == ("InvalidClientTokenId", 403)
    assert error_of(lambda: boto(server, "sts").assume_role(
        RoleArn="arn:aws:iam::123456789012:role/x", RoleSessionName="session")) == ("InvalidAction", 400)
    # EC2 is untouched by it: the same keys, EC2's codes
    assert error_of(lambda: boto(server, "ec2", token="not-a-token").describe_regions()) == (
        "AuthFailure", 401)


# ---- instance profiles and their temporary credentials (need instances: root) ----

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")


def busybox(ec2):
    images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-busybox"]}])
    assert images["Images"], "the public busybox image is missing (make images)"
    return images["Images"][0]["ImageId"]


def wait(ec2, name, iid):
    ec2.get_waiter(name).wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def session_keys(server, iid, expires_in=6 * 3600):
    """A set of temporary credentials for the instance, written where kiln keeps them (the
    instance metadata service hands them out; this stands in for it)."""
    db = sqlite3.connect(os.path.join(server["data"], "kiln.db"), timeout=30)
    owner = db.execute("SELECT owner FROM instances WHERE id = ?", (iid,)).fetchone()[0]
    key = "ASIA" + secrets.token_hex(8).upper()
    secret, token = secrets.token_urlsafe(30)[:40], secrets.token_urlsafe(96)
    now = int(time.time() * 1000)
    with db:
        db.execute("INSERT INTO session_keys (access_key, secret, token, account, instance, issued_ms, "
                   "expires_ms) VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (key, secret, token, owner, iid, now, now + expires_in * 1000))
    db.close()
    return key, secret, token


@needs_root
def test_instance_profile_and_session_credentials(server):
    ec2 = client(server)
    acct = account_id(server)
    ami = busybox(ec2)
    # Packer's empty name means no profile
    plain = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1,
                              IamInstanceProfile={"Name": ""})["Instances"][0]
    assert "IamInstanceProfile" not in plain
    r = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1,
                          IamInstanceProfile={"Name": "builder"})
    iid = r["Instances"][0]["InstanceId"]
    prof = r["Instances"][0]["IamInstanceProfile"]
    assert prof["Arn"] == f"arn:aws:iam::{acct}:instance-profile/builder"
    assert prof["Id"].startswith("AIPA") and len(prof["Id"]) == 21
    by_arn = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1,
                               IamInstanceProfile={"Arn": prof["Arn"]})["Instances"][0]
    assert by_arn["IamInstanceProfile"]["Arn"] == prof["Arn"]
    assert by_arn["IamInstanceProfile"]["Id"] != prof["Id"]
    for bad in [{"Name": "no spaces"}, {"Arn": "arn:aws:iam::999999999999:instance-profile/x"},
                {"Arn": "arn:aws:iam::%s:role/x" % acct},
                {"Name": "a", "Arn": f"arn:aws:iam::{acct}:instance-profile/b"}]:
        code, status = error_of(lambda: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1,
                                                          IamInstanceProfile=bad))
        assert status == 400 and code.startswith("InvalidParameter"), (bad, code)
    wait(ec2, "instance_running", iid)
    d = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert d["IamInstanceProfile"] == prof  # stable
    found = ec2.describe_instances(Filters=[{"Name": "iam-instance-profile.arn", "Values": [prof["Arn"]]}])
    assert sorted(i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]) == sorted(
        [iid, by_arn["InstanceId"]])

    key, secret, token = session_keys(server, iid)
    me = boto(server, "sts", key, secret, token).get_caller_identity()
    assert me["Arn"] == f"arn:aws:sts::{acct}:assumed-role/builder/{iid}"
    assert me["Account"] == acct and me["UserId"] == "AROA" + prof["Id"][4:] + ":" + iid
    env = dict(os.environ, AWS_ACCESS_KEY_ID=key, AWS_SECRET_ACCESS_KEY=secret, AWS_SESSION_TOKEN=token,
               AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    env.pop("AWS_PROFILE", None)
    out = subprocess.run([AWS, "--endpoint-url", server["url"], "--region", "us-east-1", "sts",
                          "get-caller-identity", "--output", "json"], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["Arn"] == me["Arn"]
    # the account's rights: it sees (and could change) the account's instances
    mine = boto(server, "ec2", key, secret, token).describe_instances(InstanceIds=[iid])
    assert mine["Reservations"][0]["Instances"][0]["InstanceId"] == iid
    # without the token, with another one
    assert error_of(lambda: boto(server, "ec2", key, secret).describe_regions()) == ("AuthFailure", 401)
    assert error_of(lambda: boto(server, "ec2", key, secret, token + "x").describe_regions()) == (
        "AuthFailure", 401)
    assert error_of(lambda: boto(server, "sts", key, secret, "y" + token).get_caller_identity()) == (
        "InvalidClientTokenId", 403)
    # expired
    old = session_keys(server, iid, expires_in=-1)
    assert error_of(lambda: boto(server, "ec2", *old).describe_regions()) == ("RequestExpired", 400)
    assert error_of(lambda: boto(server, "sts", *old).get_caller_identity()) == ("ExpiredToken", 400)
    # presigned, with the token in the query
    import botocore.auth
    import botocore.awsrequest
    import botocore.credentials
    import urllib.request
    req = botocore.awsrequest.AWSRequest(method="GET", url=server["url"] + "/?Action=GetCallerIdentity"
                                         "&Version=2011-06-15")
    botocore.auth.SigV4QueryAuth(botocore.credentials.Credentials(key, secret, token), "sts",
                                 "us-east-1", expires=300).add_auth(req)
    assert "X-Amz-Security-Token=" in req.url
    with urllib.request.urlopen(req.url) as resp:
        assert f"assumed-role/builder/{iid}" in resp.read().decode()

    # termination takes the instance's credentials with it
    for i in (iid, plain["InstanceId"], by_arn["InstanceId"]):
        ec2.terminate_instances(InstanceIds=[i])
    wait(ec2, "instance_terminated", iid)
    assert error_of(lambda: boto(server, "ec2", key, secret, token).describe_regions()) == (
        "AuthFailure", 401)
    assert error_of(lambda: boto(server, "sts", key, secret, token).get_caller_identity()) == (
        "InvalidClientTokenId", 403)
    db = sqlite3.connect(os.path.join(server["data"], "kiln.db"))
    assert db.execute("SELECT COUNT(*) FROM session_keys WHERE instance = ?", (iid,)).fetchone()[0] == 0


# ---- from inside: the metadata service's credentials, the EC2 API and STS at 169.254.169.254 ----

INSIDE = r"""
import json, sys
import boto3, botocore
from botocore.config import Config
endpoint = sys.argv[1]
cfg = Config(retries={"max_attempts": 1})
s = boto3.Session(region_name="us-east-1")
c = s.get_credentials()
if c is None:
    print(json.dumps({"method": None}))
    sys.exit(0)
out = {"method": c.method, "key": c.access_key, "token": c.token}
out["arn"] = s.client("sts", endpoint_url=endpoint, config=cfg).get_caller_identity()["Arn"]
r = s.client("ec2", endpoint_url=endpoint, config=cfg).describe_instances(InstanceIds=[sys.argv[2]])
out["seen"] = [i["InstanceId"] for x in r["Reservations"] for i in x["Instances"]]
print(json.dumps(out))
"""




def imds_get(server, iid, path):
    """GET path from the instance's metadata service, with an IMDSv2 token (from its network)."""
    script = r"""
import sys, urllib.request
t = urllib.request.urlopen(urllib.request.Request("http://169.254.169.254/latest/api/token", method="PUT",
    headers={"X-aws-ec2-metadata-token-ttl-seconds": "60"}), timeout=5).read().decode()
try:
    r = urllib.request.urlopen(urllib.request.Request("http://169.254.169.254" + sys.argv[1],
        headers={"X-aws-ec2-metadata-token": t}), timeout=5)
    print(r.status); print(r.read().decode(), end="")
except urllib.error.HTTPError as e:
    print(e.code)
"""
    r = in_netns(server, iid, "/usr/bin/python3", "-c", script, path)
    assert r.returncode == 0, r.stderr
    status, _, body = r.stdout.partition("\n")
    return int(status), body


@needs_root
def test_credentials_from_inside(server):
    """An instance launched with a profile: its metadata service hands out its credentials, and
    software inside reaches the EC2 API and STS at 169.254.169.254:PORT with them and nothing
    configured but the endpoint (boto3's and the aws CLI's instance credential providers)."""
    ec2 = client(server)
    acct = account_id(server)
    ami = busybox(ec2)
    port = server["url"].rsplit(":", 1)[1]
    endpoint = f"http://169.254.169.254:{port}"
    iid = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1,
                            IamInstanceProfile={"Name": "builder"})["Instances"][0]["InstanceId"]
    plain = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1,
                              MaxCount=1)["Instances"][0]["InstanceId"]
    wait(ec2, "instance_running", iid)
    wait(ec2, "instance_running", plain)
    prof = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["IamInstanceProfile"]

    # the tree: iam/ only with a profile
    status, listing = imds_get(server, iid, "/latest/meta-data/")
    assert status == 200 and "iam/" in listing.split("\n")
    status, listing = imds_get(server, plain, "/latest/meta-data/")
    assert status == 200 and "iam/" not in listing.split("\n")
    assert imds_get(server, plain, "/latest/meta-data/iam/info")[0] == 404
    status, info = imds_get(server, iid, "/latest/meta-data/iam/info")
    info = json.loads(info)
    assert status == 200 and info["Code"] == "Success"
    assert (info["InstanceProfileArn"], info["InstanceProfileId"]) == (prof["Arn"], prof["Id"])
    assert imds_get(server, iid, "/latest/meta-data/iam/security-credentials/") == (200, "builder")
    status, cred = imds_get(server, iid, "/latest/meta-data/iam/security-credentials/builder")
    cred = json.loads(cred)
    assert status == 200 and (cred["Code"], cred["Type"]) == ("Success", "AWS-HMAC")
    assert cred["AccessKeyId"].startswith("ASIA") and len(cred["AccessKeyId"]) == 20
    assert cred["Expiration"] > cred["LastUpdated"]
    assert imds_get(server, iid, "/latest/meta-data/iam/security-credentials/other")[0] == 404
    # the same set while it is fresh
    again = json.loads(imds_get(server, iid, "/latest/meta-data/iam/security-credentials/builder")[1])
    assert again["AccessKeyId"] == cred["AccessKeyId"]

    # boto3 inside: credentials from the metadata service, the API at the router
    r = in_netns(server, iid, "/usr/bin/python3", "-c", INSIDE, endpoint, iid)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["method"] == "iam-role" and out["key"] == cred["AccessKeyId"]
    assert out["arn"] == f"arn:aws:sts::{acct}:assumed-role/builder/{iid}"
    assert out["seen"] == [iid]
    # the aws CLI inside, the same way
    r = in_netns(server, iid, AWS, "--endpoint-url", endpoint, "--region", "us-east-1", "sts",
                 "get-caller-identity", "--output", "json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["Arn"] == out["arn"]
    # an instance without a profile has no credentials to find
    r = in_netns(server, plain, "/usr/bin/python3", "-c", INSIDE, endpoint, plain)
    assert r.returncode == 0 and json.loads(r.stdout) == {"method": None}, r.stderr

    # a wrong token, from inside: refused
    bad = r"""
import sys, boto3, botocore
from botocore.config import Config
c = boto3.client("ec2", endpoint_url=sys.argv[1], region_name="us-east-1", aws_access_key_id=sys.argv[2],
                 aws_secret_access_key=sys.argv[3], aws_session_token=sys.argv[4],
                 config=Config(retries={"max_attempts": 1}))
try:
    c.describe_instances()
    print("ok")
except botocore.exceptions.ClientError as e:
    print(e.response["Error"]["Code"])
"""
    r = in_netns(server, iid, "/usr/bin/python3", "-c", bad, endpoint, cred["AccessKeyId"],
                 cred["SecretAccessKey"], cred["Token"][::-1])
    assert r.stdout.strip() == "AuthFailure", r.stderr
    r = in_netns(server, iid, "/usr/bin/python3", "-c", bad, endpoint, cred["AccessKeyId"],
                 cred["SecretAccessKey"], cred["Token"])
    assert r.stdout.strip() == "ok", r.stderr

    # terminated: the credentials go with it
    ec2.terminate_instances(InstanceIds=[iid, plain])
    wait(ec2, "instance_terminated", iid)
    assert error_of(lambda: boto(server, "ec2", cred["AccessKeyId"], cred["SecretAccessKey"],
                                 cred["Token"]).describe_regions()) == ("AuthFailure", 401)
