"""The kiln CLI as a client of `kiln serve`: it signs with the same credentials files as the aws
CLI, shows tables or --json, and says what went wrong in one line."""
import json
import os
import shutil
import stat
import subprocess
import time

import pytest

from conftest import KILN

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")


def cli(server, *args, check=True, env=None):
    e = dict(os.environ, KILN_ENDPOINT=server["url"], KILN_DATA=server["data"], **(env or {}))
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE",
                "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2"):
        if var not in (env or {}):
            e.pop(var, None)
    r = subprocess.run([KILN, *args], capture_output=True, text=True, env=e)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def test_run_ls_stop_start_rm(server):
    imgs = json.loads(cli(server, "images", "--json").stdout)
    assert {"kiln-busybox", "kiln-debian-12"} <= {i["name"] for i in imgs}
    # JSON cells have their types: booleans and numbers are not strings
    busybox = next(i for i in imgs if i["name"] == "kiln-busybox")
    assert busybox["public"] is True and isinstance(busybox["size_gib"], int)
    # --output text: the aws CLI's tab-separated lines, no header
    text = cli(server, "images", "--output", "text").stdout.splitlines()
    assert any(line.split("\t")[:2] == [busybox["id"], "kiln-busybox"] for line in text)
    assert json.loads(cli(server, "images", "--output", "json").stdout) == imgs
    out = json.loads(cli(server, "run", "kiln-busybox", "--name", "cli-1", "--type", "t2.nano",
                         "--zone", "us-east-1c", "--json").stdout)
    assert len(out) == 1 and out[0]["state"] == "running" and out[0]["name"] == "cli-1"
    assert out[0]["zone"] == "us-east-1c" and out[0]["address"].startswith("172.31.32.")
    iid = out[0]["id"]
    table = cli(server, "ls").stdout.splitlines()
    assert table[0].split()[:3] == ["ID", "NAME", "STATE"] and any(iid in line for line in table[1:])
    vols = json.loads(cli(server, "volumes", "--json").stdout)
    assert any(v["attached"] == f"{iid} /dev/xvda" for v in vols)

    assert all(isinstance(v["size_gib"], int) for v in vols)

    # instances by Name tag, as by id
    r = cli(server, "stop", "cli-1", "--wait")
    assert r.stdout == f"{iid}: running -> stopping\n"
    assert [i["state"] for i in json.loads(cli(server, "ls", "--json").stdout) if i["id"] == iid] == ["stopped"]
    cli(server, "start", iid, "--wait")
    assert "kiln-init" in cli(server, "console", "cli-1").stdout
    cli(server, "rm", iid, "--wait")
    assert iid not in cli(server, "ls").stdout
    assert iid in cli(server, "ls", "--all").stdout
    # another region is another world
    assert iid not in cli(server, "ls", "--all", "--region", "eu-west-1").stdout


def test_credentials_and_errors(server):
    r = cli(server, "stop", "i-0123456789abcdef0", check=False)
    assert r.returncode == 1 and r.stderr == (
        "kiln: InvalidInstanceID.NotFound: The instance ID 'i-0123456789abcdef0' does not exist\n")
    r = cli(server, "run", "no-such-image", check=False)
    assert r.returncode == 1 and r.stderr == "kiln: no image named 'no-such-image' (see kiln images)\n"
    # keys from the environment win over the files; a wrong secret is refused by the daemon
    r = cli(server, "ls", check=False, env={"AWS_ACCESS_KEY_ID": "AKIAOTHEROTHEROTHER1",
                                            "AWS_SECRET_ACCESS_KEY": "wrong"})
    assert r.returncode == 1 and r.stderr.startswith("kiln: SignatureDoesNotMatch: ")
    r = cli(server, "ls", "--json", env={"AWS_ACCESS_KEY_ID": "AKIAOTHEROTHEROTHER1",
                                         "AWS_SECRET_ACCESS_KEY": "other-secret-other-secret"})
    assert json.loads(r.stdout) == [] or all(i["state"] for i in json.loads(r.stdout))
    r = cli(server, "ls", "--profile", "nobody", check=False)
    assert r.returncode == 1 and "no keys for profile 'nobody'" in r.stderr
    r = cli(server, "ls", "--endpoint", "http://127.0.0.1:9", check=False)
    assert r.returncode == 1 and "cannot reach http://127.0.0.1:9" in r.stderr
    # the aws CLI's spelling and variables; --endpoint-url and KILN_ENDPOINT come first
    r = cli(server, "ls", "--endpoint-url", "http://127.0.0.1:9", check=False)
    assert r.returncode == 1 and "cannot reach http://127.0.0.1:9" in r.stderr
    for var in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2"):
        e = dict(os.environ, KILN_DATA=server["data"])
        for v in ("KILN_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EC2"):
            e.pop(v, None)
        e[var] = server["url"]
        assert subprocess.run([KILN, "ls"], env=e, capture_output=True, text=True).returncode == 0
        e[var] = "http://127.0.0.1:9"
        r = subprocess.run([KILN, "ls"], env=e, capture_output=True, text=True)
        assert r.returncode == 1 and "cannot reach http://127.0.0.1:9" in r.stderr
    r = cli(server, "ls", "--output", "yaml", check=False)
    assert r.returncode == 1 and r.stderr == "kiln: --output takes table, json or text, not 'yaml'\n"
    r = cli(server, "ls", "--bogus", check=False)
    assert r.returncode == 2 and r.stderr.startswith("kiln: unknown option '--bogus'")


def test_exec_bake_share_copy(server):
    out = json.loads(cli(server, "run", "kiln-busybox", "--type", "t2.nano", "--json").stdout)
    iid = out[0]["id"]
    r = cli(server, "exec", iid, "--", "sh", "-c", "echo from-cli > /root/cli && cat /root/cli")
    assert r.stdout == "from-cli\n"
    assert cli(server, "exec", iid, "--", "false", check=False).returncode == 1
    baked = json.loads(cli(server, "bake", iid, "--name", "cli-baked-1", "--json").stdout)
    assert baked[0]["state"] == "available" and baked[0]["name"] == "cli-baked-1"
    ami = baked[0]["id"]
    assert ami in [i["id"] for i in json.loads(cli(server, "images", "--json").stdout)]
    r = cli(server, "share", ami, "222233334444")
    assert r.stdout == f"{ami}: shared with 222233334444\n"
    other = {"AWS_ACCESS_KEY_ID": "AKIAOTHEROTHEROTHER1", "AWS_SECRET_ACCESS_KEY": "other-secret-other-secret"}
    assert ami in cli(server, "images", env=other).stdout
    # an image by its name, in every command that takes one
    copied = json.loads(cli(server, "copy-image", "cli-baked-1", "--to", "eu-west-1", "--json").stdout)
    assert copied[0]["state"] == "available" and copied[0]["region"] == "eu-west-1"
    assert copied[0]["id"] in cli(server, "images", "--region", "eu-west-1").stdout
    r = cli(server, "share", "no-such-image", "all", check=False)
    assert r.returncode == 1 and r.stderr == "kiln: no image named 'no-such-image' (see kiln images)\n"
    r = cli(server, "share", "ami-0123456789abcdef0", "all", check=False)
    assert r.returncode == 1 and r.stderr.startswith("kiln: InvalidAMIID.NotFound: ")
    r = cli(server, "exec", "i-0123456789abcdef0", "--", "true", check=False)
    assert r.returncode == 1 and "InvalidInstanceID.NotFound" in r.stderr
    cli(server, "rm", iid, "--wait")


def test_names_ambiguous(server):
    out = json.loads(cli(server, "run", "kiln-busybox", "--count", "2", "--name", "twin",
                         "--type", "t2.nano", "--json").stdout)
    ids = sorted(i["id"] for i in out)
    r = cli(server, "exec", "twin", "--", "true", check=False)
    assert r.returncode == 1 and r.stderr == f"kiln: 'twin' names 2 instances: {', '.join(ids)}; give an id\n" \
        or r.stderr == f"kiln: 'twin' names 2 instances: {', '.join(reversed(ids))}; give an id\n"
    r = cli(server, "console", "nobody-has-this-name", check=False)
    assert r.returncode == 1 and r.stderr == "kiln: no instance named 'nobody-has-this-name' (see kiln ls)\n"
    cli(server, "rm", *ids, "--wait")
    # a terminated instance's name is free again: nothing is found by it
    r = cli(server, "start", "twin", check=False)
    assert r.returncode == 1 and "no instance named 'twin'" in r.stderr


def test_help_snapshot_and_follow(server, tmp_path):
    r = cli(server, "run", "--help")
    assert r.stdout.startswith("usage: kiln run IMAGE") and "\nexamples:\n  kiln run " in r.stdout
    # console --follow prints what comes until the instance stops (here it powers itself off)
    ud = tmp_path / "ud.sh"
    ud.write_text("#!/bin/sh\nfor i in 1 2 3; do echo tick-$i; sleep 1; done\npoweroff\n")
    out = json.loads(cli(server, "run", "kiln-busybox", "--type", "t2.nano", "--name", "ticker",
                         "--user-data", str(ud), "--json").stdout)
    iid = out[0]["id"]
    r = subprocess.run([KILN, "console", "ticker", "--follow"], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, KILN_ENDPOINT=server["url"], KILN_DATA=server["data"]))
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("tick-3") == 1 and r.stdout.index("tick-1") < r.stdout.index("tick-3")
    # a snapshot of its root volume, by the volume's Name tag
    vols = json.loads(cli(server, "volumes", "--json").stdout)
    vid = next(v["id"] for v in vols if v["attached"].startswith(iid))
    client_ec2 = __import__("conftest").client(server)
    client_ec2.create_tags(Resources=[vid], Tags=[{"Key": "Name", "Value": "ticker-root"}])
    snap = json.loads(cli(server, "snapshot", "ticker-root", "--description", "cli", "--json").stdout)
    assert snap[0]["state"] == "completed" and snap[0]["volume"] == vid and snap[0]["size_gib"] >= 1
    r = cli(server, "snapshot", "no-such-volume", check=False)
    assert r.returncode == 1 and r.stderr == "kiln: no volume named 'no-such-volume' (see kiln volumes)\n"
    client_ec2.delete_snapshot(SnapshotId=snap[0]["id"])
    cli(server, "rm", iid, "--wait")


def complete(server, *words):
    """COMPREPLY of contrib/kiln.bash-completion for the command line words (the last one being
    completed), with this build's kiln first on PATH."""
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    script = os.path.join(root, "contrib", "kiln.bash-completion")
    line = " ".join(f"'{w}'" for w in words)
    prog = (f"source {script}; COMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _kiln; "
            "printf '%s\\n' \"${COMPREPLY[@]}\"")
    env = dict(os.environ, KILN_ENDPOINT=server["url"], KILN_DATA=server["data"],
               PATH=os.path.dirname(KILN) + ":" + os.environ["PATH"])
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_REGION"):
        env.pop(var, None)
    r = subprocess.run(["bash", "-c", prog], capture_output=True, text=True, env=env)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_bash_completion(server):
    assert {"copy-image", "console"} <= complete(server, "kiln", "co")
    assert {"--to", "--name", "--no-wait"} <= complete(server, "kiln", "copy-image", "--")
    assert "kiln-busybox" in complete(server, "kiln", "run", "kiln-b")
    assert {"us-east-1", "eu-west-1"} <= complete(server, "kiln", "ls", "--region", "")
    regions = json.loads(cli(server, "regions", "--json").stdout)
    assert {"us-east-1", "eu-west-1"} <= {r["region"] for r in regions}
    zones = json.loads(cli(server, "zones", "--json").stdout)
    assert {z["zone"] for z in zones} >= {"us-east-1a", "us-east-1b"}


@pytest.mark.skipif(not shutil.which("ssh"), reason="no ssh client")
def test_key_and_ssh(server, tmp_path):
    debian = os.path.join(os.path.dirname(KILN), "images", "debian-12.tar")
    if not os.path.exists(debian):
        pytest.skip(f"no debian-12 image at {debian}")
    keys = {"KILN_KEYS": str(tmp_path / "keys")}
    out = json.loads(cli(server, "key", "create", "clikey", "--type", "ed25519", "--json", env=keys).stdout)
    assert out[0]["name"] == "clikey" and out[0]["type"] == "ed25519"
    pem = tmp_path / "keys" / "us-east-1" / "clikey.pem"
    assert stat.S_IMODE(os.stat(pem).st_mode) == 0o600
    r = cli(server, "key", "create", "clikey", check=False, env=keys)
    assert r.returncode == 1 and r.stderr == f"kiln: '{pem}' exists already (give --save FILE)\n"
    assert "clikey" in [k["name"] for k in json.loads(cli(server, "key", "ls", "--json", env=keys).stdout)]
    ec2 = __import__("conftest").client(server)
    perm = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    try:
        ec2.authorize_security_group_ingress(GroupName="default", IpPermissions=perm)
    except ec2.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "InvalidPermission.Duplicate", e
    iid = json.loads(cli(server, "run", "kiln-debian-12", "--key", "clikey", "--name", "sshbox",
                         "--json").stdout)[0]["id"]
    try:
        deadline = time.monotonic() + 90
        while True:
            r = cli(server, "ssh", "sshbox", "--", "id", "-un", check=False,
                    env=dict(keys, SSH_ASKPASS="", DISPLAY=""))
            if r.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(1)
        assert r.returncode == 0 and r.stdout == "admin\n", r.stderr
        # the host key is kept by instance, not by address
        found = subprocess.run(["ssh-keygen", "-F", iid, "-f", str(tmp_path / "keys" / "known_hosts")],
                               capture_output=True, text=True)
        assert found.returncode == 0 and "ssh-ed25519" in found.stdout
    finally:
        cli(server, "rm", iid, "--wait")
    cli(server, "key", "rm", "clikey", env=keys)
    r = cli(server, "ssh", iid, check=False, env=keys)
    assert r.returncode == 1 and "has no public address" in r.stderr
