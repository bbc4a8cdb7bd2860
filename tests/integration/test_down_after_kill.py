"""`kiln down --data DIR` after the daemon died without its own shutdown (kill -9), with instances
running and one still booting (issue 15): nothing of that data directory is left on the host (no
mount, loop device, transit link, nftables table, VPC namespace pin, instance cgroup, instance
process or host id slot; pools found in the mount table, also one that the database does not
name), and a second data directory's instance runs on untouched. A daemon restarted instead
takes a boot under way at the kill as its own launch."""
import json
import os
import sqlite3
import subprocess
import threading
import time

import pytest

from conftest import client, kiln, start_daemon, two_data_dirs, until

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")

IDS = os.environ.get("KILN_IDS_DIR") or "/run/kiln/ids"


def busybox(ec2):
    return ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-busybox"]}])[
        "Images"][0]["ImageId"]


def state_of(ec2, iid):
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]


def run_state(data, iid):
    """The runtime's state of the instance (its shim's state file), "" before it has one."""
    try:
        with open(os.path.join(data, "run", iid, "state")) as f:
            return dict(line.strip().split("=", 1) for line in f if "=" in line).get("state", "")
    except FileNotFoundError:
        return ""


def host_id(data):
    with sqlite3.connect(os.path.join(data, "kiln.db")) as db:
        return db.execute("SELECT value FROM settings WHERE name = 'host-id'").fetchone()[0]


def left_of(data, hid, iids):
    """Everything of the data directory still on the host, by kind."""
    data = os.path.realpath(data)
    with open("/proc/mounts") as m:
        mounts = [line.split()[1] for line in m if line.split()[1].startswith(data + "/")]
    loops = json.loads(subprocess.run(["losetup", "-J", "-l"], capture_output=True, text=True).stdout or
                       '{"loopdevices": []}')["loopdevices"]
    backing = [d["name"] for d in loops if (d.get("back-file") or "").startswith(data + "/")]
    links = [n for n in os.listdir("/sys/class/net") if n.startswith("kt" + hid[:4])]
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout.split()
    cgroups = []
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        cgroups += [os.path.join(root, d) for d in dirs if d in iids]
        if root.count("/") > 6:
            dirs[:] = []
    procs = []
    for p in os.listdir("/proc"):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                if data.encode() + b"/" in f.read():
                    procs.append(p)
        except OSError:
            pass
    slots = []
    for s in os.listdir(IDS) if os.path.isdir(IDS) else []:
        try:
            with open(os.path.join(IDS, s)) as f:
                if f.read().startswith(data + "/"):
                    slots.append(s)
        except OSError:
            pass
    return {"mounts": mounts, "loops": backing, "links": links,
            "tables": [t for t in tables if t == f"kiln_{hid[:4]}"], "cgroups": cgroups,
            "processes": procs, "slots": slots}


def test_down_after_kill_9_leaves_nothing(tmp_path):
    a, b = two_data_dirs(tmp_path)
    pa = pb = None
    try:
        pb, eb = start_daemon(b)
        ecb = client(eb)
        ib = ecb.run_instances(ImageId=busybox(ecb), InstanceType="t2.nano", MinCount=1,
                               MaxCount=1)["Instances"][0]["InstanceId"]
        # every boot of a's daemon stays 'starting' for 4 s at the end of its boot
        pa, ea = start_daemon(a, fault="shim.booted@4000")
        eca = client(ea)
        ami = busybox(eca)
        iids = [i["InstanceId"] for i in eca.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=2,
                                                            MaxCount=2)["Instances"]]
        until(lambda: all(state_of(eca, i) == "running" for i in iids), "a's instances to run", 60)
        booting = eca.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1,
                                    MaxCount=1)["Instances"][0]["InstanceId"]
        until(lambda: run_state(a, booting) == "starting", "the third boot to be under way", 30)
        # and a CreateImage in flight when the daemon dies
        def create_image():
            try:
                eca.create_image(InstanceId=iids[0], Name="in-flight")
            except Exception:
                pass  # the daemon may die before it answers
        threading.Thread(target=create_image, daemon=True).start()
        time.sleep(0.5)
        pa.kill()
        pa.wait(timeout=30)
        pa = None
        iids.append(booting)
        hid = host_id(a)
        # a zone's pool that no row of the database names (a region's first use cut short)
        stray = a / "regions" / "us-west-2" / "pools" / "us-west-2a"
        os.makedirs(stray)
        kiln("pool", "open", stray, "--size", "1G")
        mounts = left_of(a, hid, iids)["mounts"]
        assert str(os.path.realpath(stray)) in mounts and len(mounts) > 2, mounts
        down = kiln("down", "--data", a, check=False)
        assert down.returncode == 0, down.stderr
        left = left_of(a, hid, iids)
        assert not any(left.values()), left
        # b's instance runs on
        until(lambda: state_of(ecb, ib) == "running", "b's instance to run", 60)
        assert run_state(b, ib) == "running"
    finally:
        for p in (pa, pb):
            if p:
                p.kill()
                p.wait()
        for data in (a, b):
            kiln("down", "--data", data, check=False)


def shims_of(iid):
    n = 0
    for p in os.listdir("/proc"):
        try:
            with open(f"/proc/{p}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        n += b"__shim" in cmd and any(c.endswith(b"/" + iid.encode()) for c in cmd)
    return n


def test_a_boot_under_way_at_kill_9_is_the_restarted_daemons_launch(tmp_path):
    data = tmp_path / "data"
    (tmp_path / "topo").write_text("us-east-1 a\n")
    kiln("init", "--data", data, "--topology", tmp_path / "topo")
    proc = None
    try:
        proc, env = start_daemon(data, fault="shim.booted@3000")
        ec2 = client(env)
        iid = ec2.run_instances(ImageId=busybox(ec2), InstanceType="t2.nano", MinCount=1,
                                MaxCount=1)["Instances"][0]["InstanceId"]
        until(lambda: run_state(data, iid) == "starting", "the boot to be under way", 30)
        proc.kill()
        proc.wait(timeout=30)
        # the restarted daemon's launch job finds the boot under way and takes it as its own
        proc, env = start_daemon(data)
        ec2 = client(env)
        until(lambda: state_of(ec2, iid) == "running", "the instance to run", 60)
        assert run_state(data, iid) == "running" and shims_of(iid) == 1
        ec2.terminate_instances(InstanceIds=[iid])
        until(lambda: state_of(ec2, iid) == "terminated", "the termination", 60)
        assert shims_of(iid) == 0
    finally:
        if proc:
            proc.kill()
            proc.wait()
        kiln("down", "--data", data, check=False)
