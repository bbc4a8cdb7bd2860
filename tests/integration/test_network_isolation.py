"""Accounts are separate networks (issue 9): busybox instances of two accounts, launched through
the API, tried from inside. An account's instances reach each other in a zone and across zones;
another account's instances, the host's own services and other senders' addresses are out of
reach; the host reaches every instance, also after a restart of the daemon. Every probe is
bounded in time and goes only to this test's instances and to the host's own addresses, and only
once the instance range is routed to kiln's bridges."""
import ctypes
import json
import os
import re
import socket
import subprocess
import threading
import time

import pytest

from conftest import KILN, client, kiln

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


# ---- helpers ----

def nft(cmd):
    """`nft cmd` through libnftables (the nft CLI is not installed on these machines)."""
    lib = ctypes.CDLL("libnftables.so.1")
    lib.nft_ctx_new.restype = ctypes.c_void_p
    lib.nft_ctx_get_output_buffer.restype = ctypes.c_char_p
    for f in ("nft_ctx_buffer_output", "nft_ctx_get_output_buffer", "nft_ctx_free"):
        getattr(lib, f).argtypes = [ctypes.c_void_p]
    lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    ctx = lib.nft_ctx_new(0)
    try:
        lib.nft_ctx_buffer_output(ctx)
        rc = lib.nft_run_cmd_from_buffer(ctx, cmd.encode())
        return lib.nft_ctx_get_output_buffer(ctx).decode() if rc == 0 else None
    finally:
        lib.nft_ctx_free(ctx)


class Box:
    """One instance: its account, address, host-side port and how to run things in it."""

    def __init__(self, env, ec2, account, iid):
        self.env, self.ec2, self.account, self.iid = env, ec2, account, iid
        d = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
        self.ip, self.zone = d["PrivateIpAddress"], d["Placement"]["AvailabilityZone"]
        self.port = "kv" + iid[2:14]

    def __repr__(self):
        return f"{self.iid} ({self.ip}, {self.zone}, account {self.account})"

    def sh(self, script, timeout=60):
        return subprocess.run([KILN, "runtime", "exec", os.path.join(self.env["data"], "run"), self.iid, "--",
                               "/bin/sh", "-c", script], capture_output=True, text=True, timeout=timeout)

    def bridge(self):
        return os.path.basename(os.readlink(f"/sys/class/net/{self.port}/master"))

    def mac(self):
        return self.sh("cat /sys/class/net/eth0/address").stdout.strip()

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

    def reaches(self, other):
        """Does other's httpd answer a GET from inside, naming other?"""
        r = self.sh(f"printf 'GET /who HTTP/1.0\\r\\n\\r\\n' | timeout 5 nc -w 2 {other.ip} {PORT}")
        return r.returncode == 0 and other.iid in r.stdout

    def connects_from(self, src, addr, port=PORT):
        """A TCP connection made in the instance's namespace, from src (an address it has)."""
        r = self.in_netns("python3", "-c", CONNECT, addr, port, src or "")
        return r.stdout.startswith("open")


def routed_to_kiln(addr):
    """The host routes addr to one of kiln's bridges (so a probe of it stays on the host)."""
    r = json.loads(subprocess.run(["ip", "-j", "route", "get", addr], capture_output=True, text=True,
                                  check=True).stdout)[0]
    return r.get("dev", "").startswith("kb-")


def host_fetch(addr):
    assert routed_to_kiln(addr), f"{addr} is not routed to a kiln bridge"
    try:
        with socket.create_connection((addr, PORT), timeout=3) as s:
            s.sendall(b"GET /who HTTP/1.0\r\n\r\n")
            s.settimeout(3)
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        return data.decode(errors="replace").split("\r\n\r\n", 1)[-1].strip()
    except OSError:
        return None


def until(fn, what, seconds=15):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if fn():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def port_element(box, mac=None):
    """The anti-spoofing element of box's port, or None."""
    out = nft("list set bridge kiln ports") or ""
    want = f'"{box.port}" . {mac or box.mac()} . {box.ip}'
    return want if want in out else None


def host_route(addr):
    out = subprocess.run(["ip", "-j", "route", "show", f"{addr}/32"], capture_output=True, text=True,
                         check=True).stdout
    return json.loads(out) if out.strip() else []


def start_daemon(data):
    proc = subprocess.Popen([KILN, "serve", "--data", str(data), "--listen", "127.0.0.1:0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert "serving" in line, proc.stderr.read()
    return proc, f"http://127.0.0.1:{int(line.split()[-1])}"


# ---- the world: two accounts, four instances ----

@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A daemon of our own (the tests restart it) with accounts "default" and 222233334444:
    a1 and a2 of the default account in us-east-1a, a3 of it in us-east-1b, b1 of the other
    account in us-east-1a; busybox httpd in each."""
    data = tmp_path_factory.mktemp("netiso") / "data"
    kiln("init", "--data", data)
    kiln("account", "create", "other", "--account-id", "222233334444", "--access-key", OTHER["key"],
         "--secret-key", OTHER["secret"], "--data", data)
    env = {"data": str(data)}
    env["proc"], env["url"] = start_daemon(data)
    try:
        mine, other = client(env), client(env, **OTHER)
        ami = mine.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-busybox"]}])
        assert ami["Images"], "the public busybox image is missing (make images)"
        ami = ami["Images"][0]["ImageId"]
        plan = {"a1": (mine, "us-east-1a"), "a2": (mine, "us-east-1a"), "a3": (mine, "us-east-1b"),
                "b1": (other, "us-east-1a")}
        ids = {}
        for name, (ec2, zone) in plan.items():
            ids[name] = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1,
                                          Placement={"AvailabilityZone": zone})["Instances"][0]["InstanceId"]
        for name, (ec2, _) in plan.items():
            ec2.get_waiter("instance_running").wait(InstanceIds=[ids[name]],
                                                    WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        boxes = {name: Box(env, ec2, "default" if ec2 is mine else "222233334444", ids[name])
                 for name, (ec2, _) in plan.items()}
        for b in boxes.values():
            b.serve()
        for b in boxes.values():
            until(lambda: host_fetch(b.ip) == b.iid, f"the host to reach {b}")
        env.update(boxes)
        yield env
    finally:
        env["proc"].terminate()
        env["proc"].wait(timeout=30)
        kiln("down", "--data", data, check=False)


# ---- the tests ----

def test_each_account_has_a_bridge_per_zone(world):
    a1, a2, a3, b1 = (world[n] for n in ("a1", "a2", "a3", "b1"))
    shape = re.compile(r"kb-(\d+)-(\d+)$")
    ba1, ba2, ba3, bb1 = (shape.match(b.bridge()) for b in (a1, a2, a3, b1))
    assert all((ba1, ba2, ba3, bb1)), [b.bridge() for b in (a1, a2, a3, b1)]
    assert a1.bridge() == a2.bridge()
    assert ba3.group(1) == ba1.group(1) and ba3.group(2) != ba1.group(2)  # same account, other zone
    assert bb1.group(1) != ba1.group(1) and bb1.group(2) == ba1.group(2)  # other account, same zone
    # addresses stay unique in a zone across accounts; the host has a route to each
    assert len({a1.ip, a2.ip, b1.ip}) == 3
    for b in (a1, a2, a3, b1):
        assert [r["dev"] for r in host_route(b.ip)] == [b.bridge()], host_route(b.ip)


def test_host_reaches_every_instance(world):
    for n in ("a1", "a2", "a3", "b1"):
        assert host_fetch(world[n].ip) == world[n].iid


def test_same_account_reaches_in_its_zone_and_across_zones(world):
    a1, a2, a3 = world["a1"], world["a2"], world["a3"]
    assert a1.reaches(a2), f"{a1} cannot reach {a2} (same account, same zone)"
    assert a1.reaches(a3), f"{a1} cannot reach {a3} (same account, other zone)"
    assert a3.reaches(a1), f"{a3} cannot reach {a1}"


def test_other_account_is_unreachable(world):
    a1, a3, b1 = world["a1"], world["a3"], world["b1"]
    for src, dst in ((a1, b1), (b1, a1), (b1, a3)):
        assert not src.reaches(dst), f"{src} reached {dst} of another account"
    # Through the host rather than the bridge: b1's address with a1's gateway as next hop.
    gw_mac = open(f"/sys/class/net/{a1.bridge()}/address").read().strip()
    r = a1.in_netns("ip", "neigh", "replace", b1.ip, "lladdr", gw_mac, "dev", "eth0", "nud", "permanent")
    assert r.returncode == 0, r.stderr
    try:
        assert not a1.connects_from(None, b1.ip), f"{a1} reached {b1} through the host"
    finally:
        a1.in_netns("ip", "neigh", "del", b1.ip, "dev", "eth0")
    assert a1.reaches(world["a2"])  # and the instance is fine


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
    """Every IPv4 address of the host that the host itself delivers locally, but loopback (which
    is the instance's own inside): the gateways on kiln's bridges included."""
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
        addrs = host_addresses()
        assert "172.31.0.1" in addrs and "172.31.16.1" in addrs, addrs  # the gateways
        with socket.create_connection(("127.0.0.1", hl.port), timeout=3):
            pass  # the listener works
        reached = [(b, a) for b in (world["a1"], world["b1"]) for a in addrs if b.connects(a, hl.port)]
        time.sleep(0.2)
    finally:
        hl.close()
    assert not reached, f"instances reached a host listener: {reached}"
    assert [p for p in hl.seen if p != "127.0.0.1"] == [], hl.seen


def test_instances_send_only_from_their_own_address_and_mac(world):
    a1, a2, b1 = world["a1"], world["a2"], world["b1"]
    mac = a1.mac()
    for n in ("a1", "a2", "a3", "b1"):
        assert port_element(world[n]), f"no anti-spoofing element for {world[n]}"
    assert a1.connects_from(a1.ip, a2.ip)  # the check works: its own address gets through
    # Another account's address on a1's interface (the host's root does it: instances cannot).
    r = a1.in_netns("ip", "addr", "add", f"{b1.ip}/32", "dev", "eth0")
    assert r.returncode == 0, r.stderr
    try:
        assert not a1.connects_from(b1.ip, a2.ip), f"{a1} sent as {b1.ip}"
    finally:
        a1.in_netns("ip", "addr", "del", f"{b1.ip}/32", "dev", "eth0")
    # Its own address from a MAC not its own.
    r = a1.in_netns("ip", "link", "set", "dev", "eth0", "address", "02:00:00:00:00:99")
    assert r.returncode == 0, r.stderr
    try:
        assert not a1.connects_from(a1.ip, a2.ip), f"{a1} sent from a made-up MAC"
    finally:
        a1.in_netns("ip", "link", "set", "dev", "eth0", "address", mac)
    until(lambda: a1.connects_from(a1.ip, a2.ip), f"{a1} to reach {a2} again")


def test_daemon_restart_keeps_instances_reachable_and_filtered(world):
    a1, a3, b1 = world["a1"], world["a3"], world["b1"]
    elements = {n: port_element(world[n]) for n in ("a1", "a2", "a3", "b1")}
    world["proc"].terminate()
    assert world["proc"].wait(timeout=30) == 0
    world["proc"], world["url"] = start_daemon(world["data"])
    assert {n: port_element(world[n]) for n in elements} == elements
    for n in ("a1", "a2", "a3", "b1"):
        assert host_fetch(world[n].ip) == world[n].iid
    assert a1.reaches(a3)
    assert not a1.reaches(b1)
    assert client(world).describe_instances(InstanceIds=[a1.iid])["Reservations"]


def test_stop_takes_route_and_element_away_and_start_brings_them_back(world):
    a2 = world["a2"]
    ec2 = client(world)
    element = port_element(a2)
    mac = element.split(" . ")[1]
    ec2.stop_instances(InstanceIds=[a2.iid])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[a2.iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert host_route(a2.ip) == []
    assert port_element(a2, mac) is None
    assert not os.path.exists(f"/sys/class/net/{a2.port}")
    ec2.start_instances(InstanceIds=[a2.iid])
    ec2.get_waiter("instance_running").wait(InstanceIds=[a2.iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    assert port_element(a2) == element  # the same MAC: derived from the port, like an ENI's
    a2.serve()
    until(lambda: host_fetch(a2.ip) == a2.iid, f"the host to reach {a2} again")
    assert world["a1"].reaches(a2)
