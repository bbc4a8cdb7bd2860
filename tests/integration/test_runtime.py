"""Real instances through `kiln runtime`: busybox booted from an ext4 root volume in a
loop-backed XFS pool, with namespaces, cgroups and a veth into a zone bridge. Needs root."""
import os
import re
import subprocess
import time

import pytest

from conftest import KILN, kiln

ROOT = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(ROOT))
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")

# Two test zones inside the VPC range, far from the ranges the control plane hands out.
ZONES = {
    "a": {"bridge": "kb-test-a", "gateway": "172.31.240.1", "prefix": "172.31.240."},
    "b": {"bridge": "kb-test-b", "gateway": "172.31.241.1", "prefix": "172.31.241."},
}


@pytest.fixture(scope="module")
def host(tmp_path_factory):
    """A pool with the busybox base volume, a run directory, and the host set up for instances."""
    base = tmp_path_factory.mktemp("runtime")
    env = {"pool": str(base / "pool"), "run": str(base / "run"), "base": str(base)}
    kiln("host", "up")
    kiln("pool", "open", env["pool"], "--size", "4G")
    root = base / "busybox-root"
    subprocess.run([os.path.join(REPO, "images", "busybox", "build.sh"), str(root)], check=True,
                   capture_output=True)
    kiln("image", "import", root, "--pool", env["pool"], "--name", "busybox.img", "--size", "256M")
    yield env
    kiln("host", "down", "--run", env["run"], "--pool", env["pool"], check=False)


class Instance:
    def __init__(self, host, name, zone="a", host_nr=10, itype="t2.micro", user_data=None,
                 volume=None):
        self.host = host
        z = ZONES[zone]
        self.address = f"{z['prefix']}{host_nr}"
        self.volume = volume or os.path.join(host["pool"], f"{name}.img")
        if not volume:
            kiln("pool", "clone", host["pool"], os.path.join(host["pool"], "busybox.img"),
                 f"{name}.img")
        args = ["runtime", "run", host["run"], "--volume", self.volume, "--address",
                self.address + "/24", "--gateway", z["gateway"], "--bridge", z["bridge"],
                "--type", itype, "--zone", f"us-east-1{zone}"]
        if user_data is not None:
            ud = os.path.join(host["base"], f"{name}.user-data")
            with open(ud, "w") as f:
                f.write(user_data)
            args += ["--user-data", ud]
        self.run_result = kiln(*args, check=False)
        self.id = self.run_result.stdout.strip()

    def sh(self, script, check=True):
        r = kiln("runtime", "exec", self.host["run"], self.id, "--", "/bin/sh", "-c", script,
                 check=False)
        if check:
            assert r.returncode == 0, (script, r.returncode, r.stdout, r.stderr)
        return r

    def console(self):
        return kiln("runtime", "console", self.host["run"], self.id).stdout

    def status(self):
        return kiln("runtime", "status", self.host["run"], self.id).stdout.strip()

    def wait_console(self, text, timeout=20):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.console():
                return
            time.sleep(0.05)
        raise AssertionError(f"{text!r} never appeared on the console:\n{self.console()}")

    def stop(self):
        kiln("runtime", "stop", self.host["run"], self.id, "--timeout", "3")

    def remove(self):
        kiln("runtime", "stop", self.host["run"], self.id, "--force", check=False)
        kiln("runtime", "rm", self.host["run"], self.id)


def test_boot_exec_stop_start_keeps_files_and_user_data_runs_once(host):
    inst = Instance(host, "persist", user_data="#!/bin/sh\necho user-data-ran-$(hostname)\n")
    assert inst.run_result.returncode == 0, inst.run_result.stderr
    assert inst.status() == "running"
    inst.wait_console("user-data-ran-ip-172-31-240-10")
    inst.wait_console("kiln-init: ready")
    assert inst.sh("cat /run/kiln/meta/instance-id").stdout == inst.id
    assert inst.sh("hostname").stdout.strip() == "ip-172-31-240-10.ec2.internal"
    assert "eth0" in inst.sh("cat /proc/net/dev").stdout
    inst.sh("echo persisted-data > /root/file && sync")
    inst.stop()
    assert inst.status() == "stopped"
    kiln("runtime", "start", host["run"], inst.id)
    inst.wait_console("kiln-init: ready")
    assert inst.sh("cat /root/file").stdout == "persisted-data\n"
    assert inst.console().count("user-data-ran-") == 1
    # PID 1 is kiln-init, and the instance sees only its own processes
    assert inst.sh("cat /proc/1/comm").stdout.strip() in ("init", "kiln-init")
    inst.remove()


def test_memory_hog_is_oom_killed_and_the_instance_lives_on(host):
    inst = Instance(host, "oom", itype="t2.nano", host_nr=11)
    assert inst.run_result.returncode == 0, inst.run_result.stderr
    inst.wait_console("kiln-init: ready")
    r = inst.sh("dd if=/dev/zero of=/dev/null bs=900M count=1", check=False)
    assert r.returncode == 137, (r.returncode, r.stderr)  # SIGKILL from the OOM killer
    assert inst.status() == "running"
    assert inst.sh("echo alive").stdout == "alive\n"
    inst.remove()


def test_zones_reach_each_other_but_are_isolated(host):
    a = Instance(host, "iso-a", zone="a", host_nr=20)
    b = Instance(host, "iso-b", zone="b", host_nr=20)
    for i in (a, b):
        assert i.run_result.returncode == 0, i.run_result.stderr
        i.wait_console("kiln-init: ready")
    # by private address, across zones (host routes between the bridges)
    assert a.sh(f"ping -c 1 -W 3 {b.address}", check=False).returncode == 0
    assert b.sh(f"ping -c 1 -W 3 {a.address}", check=False).returncode == 0
    # processes, files and mounts of one are invisible to the other
    b.sh("(sleep 4711 >/dev/null 2>&1 &) ; echo secret > /root/only-b")
    assert "4711" in b.sh("ps").stdout
    assert "4711" not in a.sh("ps").stdout
    assert a.sh("cat /root/only-b", check=False).returncode != 0
    assert "iso-b" not in a.sh("cat /proc/mounts").stdout
    a.remove()
    b.remove()


def leftovers(volume, instance_id):
    """Everything an instance might leak: mounts, loop devices, links, cgroups, processes."""
    found = []
    with open("/proc/mounts") as f:
        found += [l for l in f if instance_id in l or "rootfs" in l and "kiln" in l]
    loops = subprocess.run(["losetup", "-a"], capture_output=True, text=True).stdout
    found += [l for l in loops.splitlines() if os.path.basename(volume) in l]
    links = os.listdir("/sys/class/net")
    found += [l for l in links if l.startswith("kv" + instance_id[2:14])]
    for root, dirs, _ in os.walk("/sys/fs/cgroup"):
        found += [os.path.join(root, d) for d in dirs if d == instance_id]
        if root.count("/") > 6:
            dirs[:] = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmd = open(f"/proc/{pid}/cmdline", "rb").read().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if instance_id in cmd:
            found.append(cmd)
    return found


def test_terminate_leaves_nothing(host):
    inst = Instance(host, "leak", host_nr=30)
    assert inst.run_result.returncode == 0, inst.run_result.stderr
    inst.wait_console("kiln-init: ready")
    assert leftovers(inst.volume, inst.id)  # the check sees a running instance
    inst.remove()
    time.sleep(0.2)
    assert leftovers(inst.volume, inst.id) == []


def test_root_volume_that_is_not_ext4_fails_cleanly(host):
    bad = os.path.join(host["pool"], "garbage.img")
    with open(bad, "wb") as f:
        f.write(os.urandom(4 << 20))
    inst = Instance(host, "garbage", host_nr=40, volume=bad)
    assert inst.run_result.returncode == 1
    assert "not a usable ext4 filesystem" in inst.run_result.stderr
    assert len(inst.run_result.stderr.strip().splitlines()) == 1
    ids = re.findall(r"i-[0-9a-f]{17}", inst.run_result.stderr)
    iid = ids[0]
    assert kiln("runtime", "status", host["run"], iid).stdout.strip() == "failed"
    assert leftovers(bad, iid) == []
    kiln("runtime", "rm", host["run"], iid)


def test_image_without_init_fails_cleanly(host):
    kiln("pool", "create", host["pool"], "empty.img", "64M")
    inst = Instance(host, "empty", host_nr=41, volume=os.path.join(host["pool"], "empty.img"))
    assert inst.run_result.returncode == 1
    assert "no usable init" in inst.run_result.stderr
    iid = re.findall(r"i-[0-9a-f]{17}", inst.run_result.stderr)[0]
    assert leftovers(os.path.join(host["pool"], "empty.img"), iid) == []
    kiln("runtime", "rm", host["run"], iid)


def test_full_pool_fails_writes_not_the_host(host, tmp_path):
    small = str(tmp_path / "small-pool")
    kiln("pool", "open", small, "--size", "300M")
    try:
        kiln("pool", "clone", small, os.path.join(host["pool"], "busybox.img"), "full.img")
        kiln("pool", "grow", small, "full.img", "1G")
        other = Instance(host, "bystander", host_nr=50)
        inst = Instance(host, "full", host_nr=51, volume=os.path.join(small, "full.img"))
        assert inst.run_result.returncode == 0, inst.run_result.stderr
        inst.wait_console("kiln-init: ready")
        r = inst.sh("dd if=/dev/urandom of=/root/big bs=1M count=600 conv=fsync", check=False)
        assert r.returncode != 0  # the pool is full: the write fails inside the instance
        assert other.sh("echo fine").stdout == "fine\n"
        kiln("runtime", "stop", host["run"], inst.id, "--force")
        assert leftovers(inst.volume, inst.id) == []
        kiln("runtime", "rm", host["run"], inst.id)
        other.remove()
    finally:
        kiln("pool", "unmount", small, check=False)


def test_frozen_clone_of_a_busy_instance_is_consistent(host):
    inst = Instance(host, "busy", host_nr=60)
    assert inst.run_result.returncode == 0, inst.run_result.stderr
    inst.wait_console("kiln-init: ready")
    # a writer that never stops: files appear and grow while the clones are taken
    inst.sh("(i=0; while :; do i=$((i+1)); echo $i >> /root/log; "
            "dd if=/dev/urandom of=/root/f$((i%50)) bs=64k count=4 2>/dev/null; done) "
            ">/dev/null 2>&1 &")
    time.sleep(0.3)
    for n in range(3):
        clone = os.path.join(host["pool"], f"busy-clone-{n}.img")
        kiln("runtime", "clone-root", host["run"], inst.id, clone)
        fsck = subprocess.run(["e2fsck", "-fn", clone], capture_output=True, text=True)
        assert fsck.returncode == 0, fsck.stdout + fsck.stderr
        os.unlink(clone)
        time.sleep(0.1)
    # thawed: the writer goes on
    before = int(inst.sh("wc -l < /root/log").stdout)
    time.sleep(0.3)
    assert int(inst.sh("wc -l < /root/log").stdout) > before
    inst.remove()
