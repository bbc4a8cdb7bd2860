"""Two data directories on one host (issue 15): each daemon names its transit links and its
table of the host's filter after its data directory's host id, and a second daemon refuses to
start where it would take another's host id or public addresses. Two daemons side by side each
launch an instance the host reaches; `kiln down` of one leaves the other's instance running and
reachable. Instances' host uid/gid ranges are allocated host-wide: two daemons' instances never
share one, and a daemon killed and restarted keeps its instances' ranges and takes none of the
other's. Probes go only to addresses the host routes to kiln's transit links."""
import os
import sqlite3
import subprocess

import pytest

from conftest import KILN, client, host_fetch, init_pid, kiln, two_data_dirs, until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")

PORT = 7070
IDS = os.environ.get("KILN_IDS_DIR") or "/run/kiln/ids"
ID_FIRST, ID_RANGE = 0x40000000, 65536  # src/runtime/confine.h


def setting(data, name):
    with sqlite3.connect(os.path.join(data, "kiln.db")) as db:
        return db.execute("SELECT value FROM settings WHERE name = ?", (name,)).fetchone()[0]


def host_id(data):
    return setting(data, "host-id")


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


def busybox(ec2):
    ami = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-busybox"]}])
    assert ami["Images"], "the public busybox image is missing (make images)"
    return ami["Images"][0]["ImageId"]


def launch(env, **kw):
    """A running busybox instance of env's daemon: its id."""
    ec2 = client(env)
    iid = ec2.run_instances(ImageId=busybox(ec2), InstanceType="t2.nano", MinCount=1, MaxCount=1,
                            **kw)["Instances"][0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    return iid


def launch_web(env):
    """A busybox instance whose httpd answers its id on PORT from anywhere: (id, public ip)."""
    ec2 = client(env)
    vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    g = ec2.create_security_group(GroupName="web", Description="httpd", VpcId=vpc)["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=g, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": PORT, "ToPort": PORT, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    iid = launch(env, SecurityGroupIds=[g])
    r = subprocess.run([KILN, "runtime", "exec", os.path.join(env["data"], "run"), iid, "--", "/bin/sh", "-c",
                        f"mkdir -p /tmp/www && echo {iid} > /tmp/www/who && httpd -p {PORT} -h /tmp/www"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    pub = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
    return iid, pub


def test_two_daemons_side_by_side(tmp_path):
    a, b, c, d, e, f = (tmp_path / n for n in "abcdef")
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
    kiln("init", "--data", f, "--topology", tmp_path / "ta", "--no-images")
    pa = pb = None
    try:
        pa, ea = start(a)
        for data, why in ((c, "host id"), (d, "overlap")):
            p, line = start(data, check=False)
            assert p.wait(timeout=30) != 0 and "serving" not in line
            err = p.stderr.read()
            assert why in err and str(a) in err, err
        # a default range is a /20 of 198.18.0.0/15 no other data directory uses; with two
        # taken, the third (every candidate checked against every claim)
        pe, _ = start(e)
        pf, _ = start(f)
        stop(pf)
        stop(pe)
        for data, net in ((a, "198.18.0.0/20"), (e, "198.18.16.0/20"), (f, "198.18.32.0/20")):
            assert setting(data, "public-addresses") == net
        kiln("down", "--data", e)
        kiln("down", "--data", f)
        pb, eb = start(b)
        ia, puba = launch_web(ea)
        ib, pubb = launch_web(eb)
        assert puba.startswith("198.1") and pubb.startswith("203.0.113."), (puba, pubb)
        ta, tb = f"kt{ida}-", f"kt{idb}-"
        until(lambda: host_fetch(puba, ta) == ia, "the host to reach a's instance", seconds=20)
        until(lambda: host_fetch(pubb, tb) == ib, "the host to reach b's instance", seconds=20)
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
        for data in (a, b, c, d, e, f):
            kiln("down", "--data", data, check=False)
    assert not any(l.startswith((f"kt{ida}-", f"kt{idb}-")) for l in links())


def id_range(env, iid):
    """(first host id, count) of the instance's user namespace, from its init's uid_map; the
    gid_map says the same."""
    maps = []
    for m in ("uid_map", "gid_map"):
        with open(f"/proc/{init_pid(env, iid)}/{m}") as f:
            maps.append(tuple(map(int, f.read().split())))
    assert maps[0] == maps[1] and len(maps[0]) == 3 and maps[0][0] == 0, maps
    return maps[0][1], maps[0][2]


def slot(first):
    """(run directory, instance) the host-wide slot of a range names, or None."""
    n = (first - ID_FIRST) // ID_RANGE
    try:
        with open(os.path.join(IDS, str(n))) as f:
            run, iid = f.read().split("\n")[:2]
        return run, iid
    except FileNotFoundError:
        return None


def disjoint(*ranges):
    spans = sorted(ranges)
    return all(x[0] + x[1] <= y[0] for x, y in zip(spans, spans[1:]))


def test_host_id_ranges_are_host_wide(tmp_path):
    a, b = two_data_dirs(tmp_path)
    runa, runb = (os.path.realpath(os.path.join(x, "run")) for x in (a, b))
    pa = pb = None
    try:
        pa, ea = start(a)
        pb, eb = start(b)
        ia, ib = launch(ea), launch(eb)
        ra, rb = id_range(ea, ia), id_range(eb, ib)
        assert ra[1] == rb[1] == ID_RANGE and disjoint(ra, rb), (ra, rb)
        assert slot(ra[0]) == (runa, ia) and slot(rb[0]) == (runb, ib)
        # kill -9 of a's daemon: its instance runs on; the restarted daemon keeps its range
        pid_a = init_pid(ea, ia)
        pa.kill()
        pa.wait(timeout=30)
        pa, ea = start(a)
        st = client(ea).describe_instances(InstanceIds=[ia])["Reservations"][0]["Instances"][0]["State"]
        assert st["Name"] == "running" and init_pid(ea, ia) == pid_a
        assert id_range(ea, ia) == ra and id_range(eb, ib) == rb
        assert slot(ra[0]) == (runa, ia) and slot(rb[0]) == (runb, ib)
        # a new instance of a takes a range of its own, none of b's
        ia2 = launch(ea)
        ra2 = id_range(ea, ia2)
        assert disjoint(ra, rb, ra2), (ra, rb, ra2)
        assert slot(ra2[0]) == (runa, ia2)
        # terminate gives its range back
        ec2 = client(ea)
        ec2.terminate_instances(InstanceIds=[ia2])
        ec2.get_waiter("instance_terminated").wait(InstanceIds=[ia2], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        assert slot(ra2[0]) is None
        # kiln down of a gives back a's ranges and leaves b's instance and range alone
        stop(pa)
        pa = None
        kiln("down", "--data", a)
        assert slot(ra[0]) is None
        assert slot(rb[0]) == (runb, ib) and id_range(eb, ib) == rb
        st = client(eb).describe_instances(InstanceIds=[ib])["Reservations"][0]["Instances"][0]["State"]
        assert st["Name"] == "running"
    finally:
        for p in (pa, pb):
            if p:
                p.terminate()
                p.wait(timeout=30)
        for data in (a, b):
            kiln("down", "--data", data, check=False)
    assert slot(rb[0]) is None
