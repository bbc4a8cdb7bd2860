"""Escapes tried for real from inside instances (issue 9). Instances of two accounts run the
static probe (tests/probe/escape.c, built beside kiln as kiln-escape-probe) and each test tries
one escape: kernel knobs, file handles, devices, mounts, modules, ptrace, spoofed packets,
another account's instance, host listeners, a detached volume's node, a fork bomb and an
oversized allocation. Each must fail, the host must be unaffected, and the instances must go on
doing their normal work. Every attempt is non-destructive (values written back unchanged,
devices only read, mounts undone). A failure message names the escape that worked."""
import concurrent.futures
import json
import os
import shutil
import socket
import subprocess
import tarfile
import threading
import time
import uuid

import pytest

from conftest import KILN, client

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")

BIN_DIR = os.path.dirname(os.path.abspath(KILN))
PROBE = os.path.join(BIN_DIR, "kiln-escape-probe")
HOST_INIT = os.path.join(BIN_DIR, "kiln-init")
IMAGES = os.path.join(BIN_DIR, "images")
OTHER = dict(key="AKIAOTHEROTHEROTHER1", secret="other-secret-other-secret")
ZONE = "us-east-1a"
INSIDE = "/tmp/kiln-escape-probe"  # where the probe goes in every instance
LISTEN_PORT = 7411
LISTEN_LOG = "/tmp/kiln-escape-listen.log"
USER_DATA_MARK = "kiln-isolation-user-data-ran"


# ---- helpers ----

class Box:
    """One instance: who owns it, where it is, how to run things in it."""

    def __init__(self, server, ec2, account, image, iid, ip):
        self.server, self.ec2, self.account, self.image, self.iid, self.ip = server, ec2, account, image, iid, ip
        self.pub = None  # its public address, once running

    def __repr__(self):
        return f"{self.image} instance {self.iid} ({self.ip}, public {self.pub}) of account {self.account}"

    def run(self, *cmd, stdin=None, timeout=120):
        r = subprocess.run([KILN, "runtime", "exec", os.path.join(self.server["data"], "run"), self.iid, "--",
                            *map(str, cmd)], capture_output=True, stdin=stdin or subprocess.DEVNULL,
                           timeout=timeout)
        r.stdout = r.stdout.decode(errors="replace")
        r.stderr = r.stderr.decode(errors="replace")
        return r

    def sh(self, script, check=True, **kw):
        r = self.run("/bin/sh", "-c", script, **kw)
        if check:
            assert r.returncode == 0, f"in {self}: {script!r} failed ({r.returncode}): {r.stdout}{r.stderr}"
        return r

    def probe(self, *args, timeout=120):
        r = self.run(INSIDE, *args, timeout=timeout)
        return r.returncode, r.stdout + r.stderr

    def copy_probe(self):
        """Through `kiln runtime exec`, which gives the command the caller's stdin."""
        part = INSIDE + ".part"
        with open(PROBE, "rb") as f:
            r = self.run("/bin/sh", "-c", f"cat > {part} && chmod 755 {part} && mv {part} {INSIDE}", stdin=f)
        assert r.returncode == 0, f"cannot copy the probe into {self}: {r.stdout}{r.stderr}"

    def console(self):
        with open(os.path.join(self.server["data"], "run", self.iid, "console.log"), errors="replace") as f:
            return f.read()

    def attached(self):
        """The runtime's record of attached volumes: {device name: loop device}."""
        try:
            with open(os.path.join(self.server["data"], "run", self.iid, "attached")) as f:
                return dict(line.strip().split("=", 1) for line in f if "=" in line)
        except FileNotFoundError:
            return {}

    def alive(self):
        r = self.run("echo", "alive", timeout=60)
        return r.returncode == 0 and r.stdout == "alive\n"


def verdict(box, what, rc, out):
    """The probe's exit code: 0 blocked, 1 the escape worked, 2 it could not try."""
    if rc == 1:
        return f"ESCAPE from the {box}: {what} succeeded.\nprobe output:\n{out}"
    return f"the {box} could not try {what} (probe exit {rc}):\n{out}"


def assert_blocked(box, what, *args, timeout=120):
    rc, out = box.probe(*args, timeout=timeout)
    assert rc == 0, verdict(box, what, rc, out)
    return out


def poll(what, check, timeout=30, every=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(every)


def instance_state(ec2, iid):
    return ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"]


def volume(ec2, vid):
    return ec2.describe_volumes(VolumeIds=[vid])["Volumes"][0]


def volume_attached(ec2, vid):
    att = volume(ec2, vid)["Attachments"]
    return att and att[0]["State"] == "attached"


def attach(ec2, vid, box, device):
    ec2.attach_volume(VolumeId=vid, InstanceId=box.iid, Device=device)
    poll(f"{vid} attached to {box.iid}", lambda: volume_attached(ec2, vid))
    poll(f"{device} in {box.iid}", lambda: box.run("test", "-b", device).returncode == 0)


def detach(ec2, vid, box, device):
    ec2.detach_volume(VolumeId=vid)
    poll(f"{vid} available again", lambda: volume(ec2, vid)["State"] == "available")
    poll(f"{device} gone from {box.iid}", lambda: box.run("test", "-e", device).returncode != 0)


def new_volume(ec2):
    vid = ec2.create_volume(AvailabilityZone=ZONE, Size=1)["VolumeId"]
    poll(f"{vid} available", lambda: volume(ec2, vid)["State"] == "available")
    return vid


def dev_of(st_dev):
    return f"{os.major(st_dev)}:{os.minor(st_dev)}"


def ident(path):
    st = os.stat(path)
    return f"{os.major(st.st_dev)}:{os.minor(st.st_dev)}:{st.st_ino}"


def host_block_devices(server):
    """Block devices of the host to try from inside, {name: "MAJOR:MINOR"}: the disk under /
    and the loop device of this daemon's pool, which holds every account's volumes."""
    devs = {}
    root = dev_of(os.stat("/").st_dev)
    if os.path.exists(f"/sys/dev/block/{root}"):
        devs["hostdisk"] = root
    data = os.path.realpath(server["data"]) + "/"
    with open("/proc/self/mountinfo") as f:
        pools = [line.split()[2] for line in f if line.split()[4].startswith(data)]
    loops = [d for d in pools if d.startswith("7:")] or \
        [f"7:{n}" for n in range(8) if os.path.exists(f"/sys/dev/block/7:{n}")][:1]
    if loops:
        devs["pooldisk"] = loops[0]
    assert devs, "the host has no block device to try"
    return devs


def listen_log(box):
    return box.sh(f"cat {LISTEN_LOG}").stdout


def start_listener(box, seconds=300):
    box.sh(f"{INSIDE} listen {LISTEN_PORT} {seconds} > {LISTEN_LOG} 2>&1 < /dev/null &")
    poll(f"the listener in {box.iid}", lambda: "listening" in listen_log(box), timeout=10)


def host_tasks():
    n = 0
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                n += len(os.listdir(f"/proc/{p}/task"))
            except OSError:
                pass
    return n


# ---- the instances ----

def image_id(ec2, name):
    images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": [name]}])["Images"]
    return images[0]["ImageId"] if images else None


@pytest.fixture(scope="module")
def world(server):
    """Instances of two accounts in one zone: the attacker's (account 222233334444, "other")
    busybox and debian-12 instances and a second busybox of its own, and a victim busybox of
    the main account. All carry the probe."""
    assert os.path.exists(PROBE), f"no probe at {PROBE} (build the kiln-escape-probe target)"
    main, other = client(server), client(server, **OTHER)
    busybox = image_id(main, "kiln-busybox")
    debian = image_id(main, "kiln-debian-12")
    assert busybox, "the public busybox image is missing (make images)"
    plan = {
        "att": (other, "222233334444", "busybox", busybox, "t2.nano", None),
        "att2": (other, "222233334444", "busybox", busybox, "t2.nano", None),
        "vic": (main, None, "busybox", busybox, "t2.nano", None),
    }
    if debian:
        plan["deb"] = (other, "222233334444", "debian-12", debian, "t2.micro",
                       f"#!/bin/sh\necho {USER_DATA_MARK} > /root/user-data-ran\necho {USER_DATA_MARK}\n")

    # Every port of the victim open to the world, so that only the VPCs' separation keeps the
    # attacker out; and SSH into the attacker's debian-12 from the host.
    vpc = main.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
    open_all = main.create_security_group(GroupName="open", Description="all in", VpcId=vpc)["GroupId"]
    main.authorize_security_group_ingress(GroupId=open_all, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    other.authorize_security_group_ingress(GroupName="default", IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])

    def launch(name):
        ec2, account, image, ami, itype, ud = plan[name]
        kw = dict(ImageId=ami, InstanceType=itype, MinCount=1, MaxCount=1, Placement={"AvailabilityZone": ZONE})
        if name == "vic":
            kw["SecurityGroupIds"] = [open_all]
        if ud:
            kw["UserData"] = ud
        c = client(server, **(OTHER if ec2 is other else {}))
        r = c.run_instances(**kw)
        inst = r["Instances"][0]
        box = Box(server, ec2, account or r["OwnerId"], image, inst["InstanceId"], inst["PrivateIpAddress"])
        poll(f"{box} running", lambda: instance_state(c, box.iid) == "running", timeout=120, every=0.1)
        box.pub = c.describe_instances(InstanceIds=[box.iid])["Reservations"][0]["Instances"][0]["PublicIpAddress"]
        poll(f"{box} answering", box.alive, timeout=60)
        box.copy_probe()
        return name, box

    with concurrent.futures.ThreadPoolExecutor(len(plan)) as pool:
        boxes = dict(pool.map(launch, plan))
    w = dict(boxes, main=main, other=other, server=server, volumes=[])
    w.setdefault("deb", None)
    yield w
    for ec2, vid in w["volumes"]:
        try:
            if volume(ec2, vid)["Attachments"]:
                ec2.detach_volume(VolumeId=vid, Force=True)
        except Exception:
            pass
    gone = []
    for ec2 in (main, other):
        ids = [b.iid for b in boxes.values() if b.ec2 is ec2] + [i for e, i in w.get("extra", []) if e is ec2]
        if ids:
            ec2.terminate_instances(InstanceIds=ids)
            gone += [(ec2, i) for i in ids]
    for ec2, iid in gone:  # before the daemon stops
        poll(f"{iid} terminated", lambda: instance_state(ec2, iid) == "terminated", timeout=60, every=0.1)
    for ec2, vid in w["volumes"]:
        try:
            poll(f"{vid} detached", lambda: volume(ec2, vid)["State"] == "available", timeout=30)
            ec2.delete_volume(VolumeId=vid)
        except Exception:
            pass


@pytest.fixture(params=["busybox", "debian-12"])
def box(request, world):
    """The attacker's instance of each image (debian-12 when the image was built)."""
    b = world["att"] if request.param == "busybox" else world["deb"]
    if b is None:
        pytest.skip("no debian-12 image (make images)")
    return b


@pytest.fixture(scope="module")
def host_target(tmp_path_factory):
    """A host process with a name of its own, for ptrace and kill."""
    d = tmp_path_factory.mktemp("target")
    exe = d / "kiln-esc-target"
    shutil.copy("/bin/sleep", exe)
    p = subprocess.Popen([str(exe), "600"])
    yield p
    p.kill()
    p.wait()


# ---- what confines the processes ----

def test_capabilities_are_dockers_default_set(box):
    assert_blocked(box, "keeping capabilities beyond Docker's default set", "caps")


def test_root_inside_is_not_root_outside(box):
    assert_blocked(box, "running as the host's root (no user namespace)", "userns")


def test_a_seccomp_filter_is_loaded(box):
    assert_blocked(box, "running without a seccomp filter", "seccomp")


# ---- the kernel's global knobs ----

@pytest.mark.parametrize("name", ["kernel/core_pattern", "vm/swappiness"])
def test_proc_sys_is_read_only(box, name):
    path = f"/proc/sys/{name}"
    before = open(path).read()
    rc, out = box.probe("sysctl", name)
    assert open(path).read() == before, f"the host's {path} changed while the {box} wrote it back:\n{out}"
    assert rc == 0, verdict(box, f"writing the host's {path}", rc, out)


def test_sysrq_trigger_is_not_writable(box):
    if not os.path.exists("/proc/sysrq-trigger"):
        pytest.skip("this kernel has no /proc/sysrq-trigger (CONFIG_MAGIC_SYSRQ): nothing to try")
    assert_blocked(box, "opening /proc/sysrq-trigger for writing", "sysrq")


def test_host_information_in_proc_is_masked(box):
    assert_blocked(box, "reading /proc/kcore, /proc/keys, /proc/timer_list and the like", "masked")


def test_sys_is_read_only(box):
    assert_blocked(box, "opening /sys files (uevent_helper and others) for writing", "sys-write")


# ---- host files ----

def test_open_by_handle_at_on_every_mount_point(box):
    assert_blocked(box, "open_by_handle_at (shocker) on a mount point", "handles")


def test_init_is_not_a_host_file(box):
    assert_blocked(box, "reaching the host's kiln-init through /proc/1/exe", "init-exe", ident(HOST_INIT), HOST_INIT)


def test_root_is_not_the_hosts(box):
    assert_blocked(box, "reaching the host's root directory through /proc/1/root", "init-root", ident("/"))


def test_no_host_descriptor_inside(box):
    assert_blocked(box, "finding a descriptor of a host file or directory in a process inside", "fds")


# ---- devices ----

def test_mknod_of_host_block_devices(box):
    devs = host_block_devices(box.server)
    names = ", ".join(f"{n} {d}" for n, d in devs.items())
    assert_blocked(box, f"mknod and read of the host's block devices ({names})", "mknod", *devs.values())


@pytest.fixture(scope="module")
def crafted(world, tmp_path_factory):
    """An instance of an image the attacker made itself, whose root filesystem holds block
    device nodes of the host's disk and of a loop device: written to a volume from inside an
    instance, snapshotted, registered and launched, as any account can."""
    att, other = world["att"], world["other"]
    if not shutil.which("mkfs.ext4") or not shutil.which("debugfs"):
        pytest.skip("needs mkfs.ext4 and debugfs (e2fsprogs)")
    d = tmp_path_factory.mktemp("crafted")
    root = d / "root"
    root.mkdir()
    with tarfile.open(os.path.join(IMAGES, "busybox.tar")) as t:
        t.extractall(root)
    img = d / "root.ext4"
    with open(img, "wb") as f:
        f.truncate(32 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-d", str(root), str(img)], check=True, capture_output=True)
    nodes = host_block_devices(world["server"])
    cmds = d / "debugfs.cmds"
    cmds.write_text("".join(f"mknod {name} b {dev.replace(':', ' ')}\nsif {name} mode 060600\n"
                            for name, dev in nodes.items()))
    subprocess.run(["debugfs", "-w", "-f", str(cmds), str(img)], check=True, capture_output=True)
    listing = subprocess.run(["debugfs", "-R", "ls -l /", str(img)], capture_output=True, text=True).stdout
    assert all(f" {name}" in listing for name in nodes), f"debugfs did not make the nodes:\n{listing}"
    vid = new_volume(other)
    world["volumes"].append((other, vid))
    attach(other, vid, att, "/dev/xvdh")
    with open(img, "rb") as f:
        r = att.run("/bin/sh", "-c", "dd of=/dev/xvdh bs=1M conv=fsync 2>&1", stdin=f)
    assert r.returncode == 0, f"cannot write the crafted filesystem: {r.stdout}{r.stderr}"
    detach(other, vid, att, "/dev/xvdh")
    sid = other.create_snapshot(VolumeId=vid, Description="crafted root")["SnapshotId"]
    poll(f"{sid} completed",
         lambda: other.describe_snapshots(SnapshotIds=[sid])["Snapshots"][0]["State"] == "completed",
         timeout=60, every=0.1)
    ami = other.register_image(Name=f"escape-nodes-{uuid.uuid4().hex[:8]}", RootDeviceName="/dev/xvda",
                               BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": sid}}],
                               Architecture="x86_64", VirtualizationType="hvm")["ImageId"]
    inst = other.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1,
                               Placement={"AvailabilityZone": ZONE})["Instances"][0]
    b = Box(world["server"], other, "222233334444", "crafted", inst["InstanceId"], inst["PrivateIpAddress"])
    world.setdefault("extra", []).append((other, b.iid))
    poll(f"{b} running", lambda: instance_state(other, b.iid) == "running", timeout=60, every=0.1)
    poll(f"{b} answering", b.alive, timeout=60)
    b.copy_probe()
    b.nodes = nodes
    return b


def test_block_device_nodes_baked_into_an_image(crafted):
    nodes = " ".join(f"/{n} ({d})" for n, d in crafted.nodes.items())
    assert_blocked(crafted, f"opening block device nodes baked into the image: {nodes}", "blkdevs")


def test_node_of_a_detached_volume_cannot_be_reopened(world):
    """A hard link of /dev/xvdf made before DetachVolume must not open anything afterwards, not
    even when that loop device now serves another account's volume."""
    att, vic, main, other = world["att"], world["vic"], world["main"], world["other"]
    mine, theirs = new_volume(other), new_volume(main)
    world["volumes"] += [(other, mine), (main, theirs)]
    attach(other, mine, att, "/dev/xvdf")
    loop = att.attached().get("xvdf", "?")
    att.sh("rm -f /dev/keep && ln /dev/xvdf /dev/keep", check=False)
    detach(other, mine, att, "/dev/xvdf")
    # the next volume attached on this host, another account's, likely gets the same loop device
    attach(main, theirs, vic, "/dev/xvdg")
    marker = f"victim-data-{uuid.uuid4().hex[:12]}"
    vic.sh(f"echo {marker} | dd of=/dev/xvdg bs=512 conv=sync,fsync 2>/dev/null")
    theirs_loop = vic.attached().get("xvdg", "?")
    try:
        rc, out = att.probe("read", "/dev/keep")
    finally:
        att.sh("rm -f /dev/keep", check=False)
        detach(main, theirs, vic, "/dev/xvdg")
    what = (f"opening /dev/keep, a hard link of the detached volume's node /dev/xvdf ({loop}), after "
            f"DetachVolume (the other account's volume went to {theirs_loop})")
    if marker in out:
        what += ": it read the other account's volume"
    assert rc == 0, verdict(att, what, rc, out)


def test_descriptor_held_across_detach_reads_no_other_volume(world):
    """A descriptor opened on /dev/xvdf before DetachVolume must never read the volume that
    its loop device serves next."""
    att, vic, main, other = world["att"], world["vic"], world["main"], world["other"]
    mine, theirs = new_volume(other), new_volume(main)
    world["volumes"] += [(other, mine), (main, theirs)]
    attach(other, mine, att, "/dev/xvdf")
    loop = att.attached().get("xvdf", "?")
    att.sh(f"rm -f /tmp/.held* && ({INSIDE} hold /dev/xvdf /tmp/.held-go /tmp/.held 60 </dev/null >/dev/null 2>&1 &)")
    poll("the descriptor held", lambda: att.run("test", "-e", "/tmp/.held.ready").returncode == 0, timeout=10)
    detach(other, mine, att, "/dev/xvdf")
    attach(main, theirs, vic, "/dev/xvdg")
    marker = f"victim-data-{uuid.uuid4().hex[:12]}"
    vic.sh(f"echo {marker} | dd of=/dev/xvdg bs=512 conv=sync,fsync 2>/dev/null")
    theirs_loop = vic.attached().get("xvdg", "?")
    att.sh("touch /tmp/.held-go")
    out = poll("the held read", lambda: (lambda s: s if ("ok " in s or "blocked " in s) else None)(
        att.sh("cat /tmp/.held", check=False).stdout), timeout=10)
    detach(main, theirs, vic, "/dev/xvdg")
    assert marker not in out, (
        f"ESCAPE from the {att}: a descriptor held on /dev/xvdf ({loop}) across DetachVolume read the other "
        f"account's volume now on {theirs_loop}:\n{out}")


# ---- mounts ----

@pytest.mark.parametrize("kind", ["tmpfs", "proc", "bind", "remount", "cgroup", "hostdev"])
def test_mount_is_refused(box, kind):
    args = [dev_of(os.stat("/").st_dev)] if kind == "hostdev" else []
    what = {"tmpfs": "mounting a tmpfs", "proc": "mounting proc elsewhere", "bind": "bind-mounting /",
            "remount": "remounting / read-write with suid and devices",
            "cgroup": "mounting a cgroup v1 hierarchy (release_agent)",
            "hostdev": f"mounting the host's root filesystem by its device {args and args[0]}"}[kind]
    assert_blocked(box, what, f"mount-{kind}", *args)


# ---- kernel calls only the host may make ----

@pytest.mark.parametrize("call", ["init_module", "finit_module", "kexec_load", "reboot", "keyctl", "add_key",
                                  "bpf", "perf_event_open", "unshare"])
def test_host_kernel_calls_are_refused_with_eperm(box, call):
    assert_blocked(box, f"{call} (anything but EPERM means the kernel looked at it)", call)


# ---- processes outside ----

def test_host_process_is_out_of_reach(box, host_target):
    pid = host_target.pid
    rc, out = box.probe("ptrace", pid, "kiln-esc-target")
    with open(f"/proc/{pid}/stat") as f:
        state = f.read().rsplit(")", 1)[1].split()[0]
    assert host_target.poll() is None and state not in ("T", "t"), (
        f"the host's process {pid} was disturbed by the {box} (state {state}):\n{out}")
    assert rc == 0, verdict(box, f"kill(0) or ptrace of the host's process {pid}", rc, out)


# ---- the network ----

@pytest.fixture(scope="module")
def listeners(world):
    """The probe listening on UDP and TCP in the attacker's second instance (its own account:
    it must reach it) and in the victim's (another account: it must not)."""
    for b in (world["att2"], world["vic"]):
        start_listener(b)
    return world


@pytest.mark.parametrize("kind", ["spoof-raw", "spoof-packet"])
def test_spoofed_source_never_arrives(listeners, kind):
    att, att2, vic = listeners["att"], listeners["att2"], listeners["vic"]
    tag = uuid.uuid4().hex[:12]
    control, spoofed = f"control-{tag}", f"spoofed-{tag}"
    att.probe("send-udp", att2.ip, LISTEN_PORT, control)
    poll(f"the control datagram from {att.iid} in {att2.iid}", lambda: control in listen_log(att2), timeout=5)
    rc, out = att.probe(kind, att2.ip, LISTEN_PORT, vic.pub, spoofed)
    assert rc in (0, 1), f"the {att} could not try {kind} (probe exit {rc}):\n{out}"
    att.probe("send-udp", att2.ip, LISTEN_PORT, f"after-{tag}")  # the same path, sent after
    poll("the datagram sent after", lambda: f"after-{tag}" in listen_log(att2), timeout=5)
    time.sleep(0.2)
    got = [line for line in listen_log(att2).splitlines() if spoofed in line]
    how = "a raw IPv4 socket" if kind == "spoof-raw" else "a packet socket with a made-up MAC"
    assert not got, (f"ESCAPE from the {att}: a datagram sent through {how} with the source address of "
                     f"another account's instance ({vic.pub}) reached {att2.iid}: {got}\nprobe:\n{out}")


def test_other_accounts_instance_is_unreachable(listeners):
    att, vic, deb = listeners["att"], listeners["vic"], listeners["deb"]
    tag = f"cross-{uuid.uuid4().hex[:12]}"
    results = []
    for b in filter(None, (att, deb)):
        # its public address: its private one may well be the attacker's own (every default
        # VPC is 172.31.0.0/16), and names nothing of the victim's in the attacker's VPC
        b.probe("send-udp", vic.pub, LISTEN_PORT, tag)
        results.append((b, *b.probe("connect", LISTEN_PORT, 1500, vic.pub)))
    time.sleep(0.3)
    seen = [line for line in listen_log(vic).splitlines()
            if tag in line or any(line.startswith(f"tcp {b.pub} ") for b, _, _ in results)]
    for b, rc, out in results:
        assert rc == 0, verdict(b, f"a TCP connection to the other account's instance {vic.pub}:{LISTEN_PORT}",
                                rc, out)
    assert not seen, f"ESCAPE: the other account's instance {vic.iid} received from 222233334444's instances: {seen}"


class HostListener:
    """TCP and UDP on one port of every host address; remembers who came."""

    def __init__(self):
        for _ in range(20):
            self.tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.tcp.bind(("0.0.0.0", 0))
            self.port = self.tcp.getsockname()[1]
            self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                self.udp.bind(("0.0.0.0", self.port))
                break
            except OSError:
                self.tcp.close()
                self.udp.close()
        self.tcp.listen(16)
        self.seen = []
        self.stop = False
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        import select
        while not self.stop:
            r, _, _ = select.select([self.tcp, self.udp], [], [], 0.1)
            for s in r:
                if s is self.tcp:
                    c, peer = self.tcp.accept()
                    self.seen.append(("tcp", peer[0]))
                    c.close()
                else:
                    data, peer = self.udp.recvfrom(512)
                    self.seen.append(("udp", peer[0], data.decode(errors="replace")))

    def close(self):
        self.stop = True
        self.thread.join()
        self.tcp.close()
        self.udp.close()


def host_addresses_for(box):
    """Every IPv4 address of the host (but loopback, which is the instance's own inside) that a
    packet from box would be delivered to locally: never one the host would route elsewhere."""
    out = subprocess.run(["ip", "-j", "-4", "addr", "show"], capture_output=True, text=True, check=True).stdout
    addrs = list(dict.fromkeys(a["local"] for link in json.loads(out) for a in link.get("addr_info", [])
                               if not a["local"].startswith("127.")))
    # box's packets reach the host from its public address, on its VPC's transit link
    transit = json.loads(subprocess.run(["ip", "-j", "route", "get", box.pub], capture_output=True, text=True,
                                        check=True).stdout)[0]["dev"]
    safe, skipped = [], []
    for a in addrs:
        r = subprocess.run(["ip", "-j", "route", "get", a, "from", box.pub, "iif", transit], capture_output=True,
                           text=True)
        route = json.loads(r.stdout)[0] if r.returncode == 0 and r.stdout.strip() else {}
        (safe if route.get("type") == "local" else skipped).append(a)
    return safe, skipped


def test_host_listeners_are_unreachable(world):
    hl = HostListener()
    try:
        results = []
        tag = f"host-{uuid.uuid4().hex[:12]}"
        for b in filter(None, (world["att"], world["deb"])):
            addrs, skipped = host_addresses_for(b)
            assert addrs, f"no host address is local for packets from {b} (skipped: {skipped})"
            for a in addrs:
                b.probe("send-udp", a, hl.port, tag)
            results.append((b, addrs, *b.probe("connect", hl.port, 1500, *addrs)))
        time.sleep(0.3)
    finally:
        hl.close()
    for b, addrs, rc, out in results:
        assert rc == 0, verdict(b, f"a TCP connection to a host listener (port {hl.port} on {' '.join(addrs)})",
                                rc, out)
    assert not hl.seen, f"ESCAPE: a host listener on port {hl.port} received from instances: {hl.seen}"


# ---- instance-type limits ----

def test_fork_bomb_ends_inside_the_instance(world):
    att, vic = world["att"], world["vic"]
    pid_max = int(open("/proc/sys/kernel/pid_max").read())
    cap = min(100000, (pid_max - host_tasks()) // 3)  # never enough to starve the host
    rc, out = att.probe("forkbomb", cap, timeout=300)
    assert subprocess.run(["true"]).returncode == 0
    assert vic.alive(), f"the other account's {vic} stopped answering after a fork bomb in {att}:\n{out}"
    assert att.alive(), f"the {att} stopped answering after its fork bomb:\n{out}"
    assert rc == 0, verdict(att, f"a fork bomb in a t2.nano (no pids limit below {cap} processes)", rc, out)


def test_oversized_allocation_ends_inside_the_instance(world):
    att, vic = world["att"], world["vic"]
    rc, out = att.probe("alloc", 2048, timeout=300)
    assert vic.alive(), f"the other account's {vic} stopped answering after a 2 GiB allocation in {att}:\n{out}"
    assert att.alive(), f"the {att} stopped answering after its 2 GiB allocation:\n{out}"
    assert rc == 0, verdict(att, "touching 2 GiB in a t2.nano (512 MiB)", rc, out)


# ---- and everything still works ----

def test_instances_still_do_their_normal_work(world):
    for name in ("att", "att2", "vic"):
        assert world[name].alive(), f"the {world[name]} no longer runs a command after the escape attempts"
    deb = world["deb"]
    if deb is None:
        pytest.skip("no debian-12 image (make images)")
    assert deb.alive(), f"the {deb} no longer runs a command after the escape attempts"
    with socket.create_connection((deb.pub, 22), timeout=10) as s:
        s.settimeout(10)
        banner = s.recv(64)
    assert banner.startswith(b"SSH-2.0-"), f"sshd of the {deb} does not answer from the host: {banner!r}"
    assert USER_DATA_MARK in deb.console(), f"the user data of the {deb} did not run:\n{deb.console()}"
    assert deb.sh("cat /root/user-data-ran").stdout.strip() == USER_DATA_MARK
    r = deb.sh("dpkg -l | grep -c '^ii'")
    assert int(r.stdout) > 50, r.stdout
    # no package lists (and no mirror to fetch them from in a test): apt resolves from dpkg's status
    r = deb.sh("apt-get -s install --reinstall debianutils && apt-get check", check=False)
    assert r.returncode == 0, f"apt-get does not work in the {deb}: {r.stdout}{r.stderr}"
    r = deb.sh("su -s /bin/sh -c 'id -un' _apt", check=False)  # apt's sandbox user
    assert r.stdout.strip() == "_apt", f"apt's sandbox user cannot run in the {deb}: {r.stdout}{r.stderr}"
