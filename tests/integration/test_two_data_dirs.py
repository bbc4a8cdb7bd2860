"""Two data directories on one host (issue 15): each daemon names its transit links and its
table of the host's filter after its data directory's host id, and a second daemon refuses to
start where it would take another's host id or public addresses. Two daemons side by side each
launch an instance the host reaches; `kiln down` of one leaves the other's instance running and
reachable. Probes go only to addresses the host routes to kiln's transit links."""
import json
import os
import socket
import sqlite3
import subprocess
import time

import pytest

from conftest import KILN, client, kiln

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")

PORT = 7070


def host_id(data):
    with sqlite3.connect(os.path.join(data, "kiln.db")) as db:
        return db.execute("SELECT value FROM settings WHERE name = 'host-id'").fetchone()[0]


def start(data, check=True):
    proc = subprocess.Popen([KILN, "serve", "--data", str(data), "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not check:
        return proc, line
    assert "serving" in line, proc.stderr.read()
    return proc, {"url": f"http://127.0.0.1:{int(line.split()[-1])}", "data": str(data)}


def stop(proc):
    proc.terminate()
    assert proc.wait(timeout=30) == 0, proc.stderr.read()[-4000:]


def links():
    return set(os.listdir("/sys/class/net"))


def route_dev(addr):
    r = subprocess.run(["ip", "-j", "route", "get", addr], capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.strip():
        return ""
    return json.loads(r.stdout)[0].get("dev", "")


def host_fetch(addr, prefix, timeout=3):
    """GET /who from addr's httpd, only when the host routes addr to a transit link of prefix."""
    if not addr or not route_dev(addr).startswith(prefix):
        return None
    try:
        with socket.create_connection((addr, PORT), timeout=timeout) as s:
            s.sendall(b"GET /who HTTP/1.0\r\n\r\n")
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        return data.decode(errors="replace").split("\r\n\r\n", 1)[-1].strip()
    except OSError:
        return None


def until(fn, what, seconds=20):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if fn():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def launch_web(env):
    """A busybox instance whose httpd answers its id on PORT from anywhere: (id, public ip)."""
    ec2 = client(env)
    ami = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-busybox"]}])
    assert ami["Images"], "the public busybox image is missing (make images)"
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    g = ec2.create_security_group(GroupName="web", Description="httpd", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=g, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": PORT, "ToPort": PORT, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    iid = ec2.run_instances(ImageId=ami["Images"][0]["ImageId"], InstanceType="t2.nano", MinCount=1,
                            MaxCount=1, SecurityGroupIds=[g])["Instances"][0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    r = subprocess.run([KILN, "runtime", "exec", os.path.join(env["data"], "run"), iid, "--", "/bin/sh", "-c",
                        f"mkdir -p /tmp/www && echo {iid} > /tmp/www/who && httpd -p {PORT} -h /tmp/www"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    pub = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
    return iid, pub


def test_two_daemons_side_by_side(tmp_path):
    a, b, c, d, e = (tmp_path / n for n in "abcde")
    (tmp_path / "ta").write_text("us-east-1 a\n")
    (tmp_path / "tb").write_text("us-east-1 a\npublic-addresses 203.0.113.0/24\n")
    kiln("init", "--data", a, "--topology", tmp_path / "ta")
    kiln("init", "--data", b, "--topology", tmp_path / "tb")
    ida, idb = host_id(a), host_id(b)
    assert ida != idb and len(ida) == 4
    # a copy of a's host id, and a's public range: refused at start while a serves
    (tmp_path / "tc").write_text(f"us-east-1 a\nhost-id {ida}\npublic-addresses 192.0.2.0/24\n")
    kiln("init", "--data", c, "--topology", tmp_path / "tc", "--no-images")
    (tmp_path / "td").write_text("us-east-1 a\npublic-addresses 198.18.0.0/15\n")
    kiln("init", "--data", d, "--topology", tmp_path / "td", "--no-images")
    kiln("init", "--data", e, "--topology", tmp_path / "ta", "--no-images")
    pa = pb = None
    try:
        pa, ea = start(a)
        for data, why in ((c, "host id"), (d, "overlap")):
            p, line = start(data, check=False)
            assert p.wait(timeout=30) != 0 and "serving" not in line
            err = p.stderr.read()
            assert why in err and str(a) in err, err
        # a default range is a /20 of 198.18.0.0/15 no other data directory uses
        pe, _ = start(e)
        stop(pe)
        kiln("down", "--data", e)
        with sqlite3.connect(os.path.join(a, "kiln.db")) as db:
            assert db.execute("SELECT value FROM settings WHERE name = 'public-addresses'").fetchone()[0] == \
                "198.18.0.0/20"
        with sqlite3.connect(os.path.join(e, "kiln.db")) as db:
            assert db.execute("SELECT value FROM settings WHERE name = 'public-addresses'").fetchone()[0] == \
                "198.18.16.0/20"
        pb, eb = start(b)
        ia, puba = launch_web(ea)
        ib, pubb = launch_web(eb)
        assert puba.startswith("198.1") and pubb.startswith("203.0.113."), (puba, pubb)
        ta, tb = f"kt{ida}-", f"kt{idb}-"
        until(lambda: host_fetch(puba, ta) == ia, "the host to reach a's instance")
        until(lambda: host_fetch(pubb, tb) == ib, "the host to reach b's instance")
        # a goes down: b's instance, links, table and route stay and answer
        stop(pa)
        pa = None
        kiln("down", "--data", a)
        assert not any(l.startswith(ta) for l in links())
        assert any(l.startswith(tb) for l in links())
        assert host_fetch(puba, ta) is None
        assert host_fetch(pubb, tb) == ib
        st = client(eb).describe_instances(InstanceIds=[ib])["Reservations"][0]["Instances"][0]["State"]
        assert st["Name"] == "running"
        # a's range is free now: d (overlapping a's) starts
        pd, _ = start(d)
        stop(pd)
        kiln("down", "--data", d)
        assert host_fetch(pubb, tb) == ib
    finally:
        for p in (pa, pb):
            if p:
                p.terminate()
                p.wait(timeout=30)
        for data in (a, b, c, d, e):
            kiln("down", "--data", data, check=False)
    assert not any(l.startswith((f"kt{ida}-", f"kt{idb}-")) for l in links())
