"""Shared fixtures of the integration suite: the kiln binary, scratch directories, volumes."""
import hashlib
import json
import os
import random
import shutil
import socket
import struct
import subprocess
import tempfile
import time

import pytest

AWS = "/usr/bin/aws"

KILN = os.environ.get("KILN_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "kiln")
CHUNK = 128 * 1024


def kiln(*args, check=True, env=None, **kw):
    """Run the kiln CLI; returns the CompletedProcess (text mode)."""
    full_env = dict(os.environ)
    full_env.pop("KILN_FAULT", None)
    if env:
        full_env.update(env)
    r = subprocess.run([KILN, *map(str, args)], capture_output=True, text=True, env=full_env, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"kiln {' '.join(map(str, args))} failed ({r.returncode}): {r.stderr}")
    return r


def write_volume(path, size, chunks, seed=1):
    """A sparse file of `size` bytes whose listed chunk numbers hold seeded random data."""
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        f.truncate(size)
        for c in chunks:
            f.seek(c * CHUNK)
            f.write(rnd.randbytes(min(CHUNK, size - c * CHUNK)))


def files_equal(a, b):
    return subprocess.run(["cmp", "-s", a, b]).returncode == 0


@pytest.fixture
def tmp(tmp_path):
    return tmp_path


@pytest.fixture
def store(tmp_path):
    d = tmp_path / "store"
    kiln("store", "init", d)
    return d


# ---- Ceph RGW for the store's S3 backend ----

REPO = os.path.join(os.path.dirname(__file__), "..", "..")
S3_BUCKET = "kiln-tests"


def _free_port_pair():
    """A loopback port P with P+1 free too (radosgw on P, the mon on P+1)."""
    import socket
    for _ in range(50):
        p = random.randrange(20000, 30000)
        socks = []
        try:
            for q in (p, p + 1):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", q))
            return p
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free loopback port pair")


@pytest.fixture(scope="module")
def ceph(tmp_path_factory):
    """A one-node Ceph (mon, OSD on a file, radosgw on 127.0.0.1) started once per module (CTest
    runs each module on its own) by scripts/ceph-up.sh, stopped by pid at the end; its S3 keys
    are put into os.environ for the kiln processes while the module runs, and taken out after,
    so that the modules after it (in one pytest run) sign with their own keys. Tests that need it skip with the reason when it cannot start."""
    up = os.path.join(REPO, "scripts", "ceph-up.sh")
    down = os.path.join(REPO, "scripts", "ceph-down.sh")
    d = tmp_path_factory.mktemp("ceph")
    port = _free_port_pair()
    try:
        r = subprocess.run([up, str(d), str(port)], capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        subprocess.run([down, str(d)])
        pytest.skip("Ceph did not start within 15 minutes")
    if r.returncode != 0:
        subprocess.run([down, str(d)])
        why = (r.stderr.strip().splitlines() or ["no output"])[-1]
        pytest.skip(f"Ceph cannot start here: {why}")
    env = dict(line.split("=", 1) for line in (d / "env").read_text().split())
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield {"dir": d, "endpoint": env["KILN_S3_ENDPOINT"], "key": env["AWS_ACCESS_KEY_ID"],
               "secret": env["AWS_SECRET_ACCESS_KEY"]}
    finally:
        subprocess.run([down, str(d)])
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def s3_url(ceph, prefix, **params):
    q = "&".join([f"endpoint={ceph['endpoint']}"] + [f"{k}={v}" for k, v in params.items()])
    return f"s3://{S3_BUCKET}/{prefix}?{q}"


def new_s3_store(ceph, **params):
    """An initialized store under a fresh prefix of the test bucket; returns its URL."""
    url = s3_url(ceph, "t" + os.urandom(6).hex(), **params)
    kiln("store", "init", url)
    return url


def s3_client(ceph):
    import boto3
    from botocore.config import Config
    return boto3.client("s3", endpoint_url=ceph["endpoint"], aws_access_key_id=ceph["key"],
                        aws_secret_access_key=ceph["secret"], region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))


# ---- helpers shared by the fault and crash tests ----

PACK_HEADER = 16
PACK_ENTRY = 56
PACK_TRAILER = 56
THREADS_ENV = {"KILN_THREADS": "2"}


def wait_for(fn, what, timeout=180, step=1.0):
    """fn's first true answer, asked every step seconds; fails after timeout seconds."""
    import time
    end = time.time() + timeout
    while time.time() < end:
        v = fn()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out waiting for {what}")


def need_root():
    if os.geteuid() != 0:
        pytest.skip("needs root")


def snapshot(store, vol, *extra, env=None):
    """Take a snapshot and return its id."""
    return kiln("store", "snapshot", store, vol, *extra, env=env).stdout.strip()


def snapshot_ids(store):
    """Snapshot ids listed by `ls --json`, as a set."""
    return {s["id"] for s in json.loads(kiln("store", "ls", store, "--json").stdout)}


def assert_verify_ok(store):
    r = kiln("store", "verify", store, check=False)
    assert r.returncode == 0 and r.stdout.startswith("ok: ") and r.stderr == "", (
        f"verify failed ({r.returncode}):\n{r.stdout}{r.stderr}")
    return r


def assert_restores(store, snap, vol, out):
    """Restore snap to out and compare it with vol byte for byte."""
    if os.path.exists(out):
        os.unlink(out)
    kiln("store", "restore", store, snap, out)
    assert files_equal(vol, out), f"restore of {snap} differs from {vol}"
    os.unlink(out)


def store_files(store, sub, suffix):
    return {n[:-len(suffix)] for n in os.listdir(os.path.join(store, sub)) if n.endswith(suffix)}


def assert_no_orphans(store):
    """Every pack has its index and every index its pack; no temp files are left."""
    packs, idxs = store_files(store, "packs", ".pack"), store_files(store, "index", ".idx")
    assert packs == idxs, f"packs without index: {packs - idxs}, index without pack: {idxs - packs}"
    for sub in ("packs", "index", "snaps"):
        left = [n for n in os.listdir(os.path.join(store, sub)) if ".tmp." in n]
        assert not left, f"temp files left in {sub}: {left}"


def random_volume(path, size, seed):
    """A volume full of incompressible seeded random data."""
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        left = size
        while left:
            n = min(left, 16 << 20)
            f.write(rnd.randbytes(n))
            left -= n


def chunk_hashes(vol):
    """{volume offset: sha256 hex} of the volume's non-zero chunks, as the manifest has them."""
    out = {}
    with open(vol, "rb") as f:
        off = 0
        while True:
            b = f.read(CHUNK)
            if not b:
                break
            if b.count(0) != len(b):
                out[off] = hashlib.sha256(b).hexdigest()
            off += len(b)
    return out


def read_pack_footer(path):
    """The pack's record list in write order: dicts of hash (hex), off, clen, ulen, flags."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"KILNPACK" and data[-8:] == b"KILNPEND", path
    count, foff = struct.unpack_from("<QQ", data, len(data) - PACK_TRAILER)
    entries = []
    for i in range(count):
        p = foff + i * PACK_ENTRY
        h = data[p:p + 32].hex()
        off, clen, ulen, flags = struct.unpack_from("<QIII", data, p + 32)
        entries.append({"hash": h, "off": off, "clen": clen, "ulen": ulen, "flags": flags})
    return entries


@pytest.fixture(scope="session", autouse=True)
def _no_pools_left(tmp_path_factory):
    """Housekeeping after the session: `kiln init` mounts a data directory's pools (on loop
    devices) and only `kiln down` unmounts them; a test that stopped before its own `kiln down`
    (a daemon that did not start, an assertion first) must not leave them to pile up run after
    run."""
    yield
    base = str(tmp_path_factory.getbasetemp()) + "/"
    with open("/proc/self/mounts") as f:
        left = {m.split("/regions/")[0] for m in (line.split()[1] for line in f)
                if m.startswith(base) and "/regions/" in m}
    for data in sorted(left):
        kiln("down", "--data", data, check=False)


def start_daemon(data, *options, fault=None):
    """`kiln serve` (with options, and KILN_FAULT=fault if given) on a free loopback port over an
    initialized data directory: (the process, {"url", "data"}); the caller stops it."""
    env = dict(os.environ)
    env.pop("KILN_FAULT", None)
    if fault:
        env["KILN_FAULT"] = fault
    proc = subprocess.Popen([KILN, "serve", "--data", str(data), "--listen", "127.0.0.1:0", *options],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    assert "serving" in line, proc.stderr.read()
    return proc, {"url": f"http://127.0.0.1:{int(line.split()[-1])}", "data": str(data)}


def two_data_dirs(tmp_path):
    """Data directories tmp_path/a and tmp_path/b, initialized with public ranges of their own
    (198.51.100.0/24, 203.0.113.0/24): what a test of the two asks does not depend on the ranges
    other data directories on the host hold."""
    a, b = tmp_path / "a", tmp_path / "b"
    for d, net in ((a, "198.51.100.0/24"), (b, "203.0.113.0/24")):
        (tmp_path / f"t{d.name}").write_text(f"us-east-1 a\npublic-addresses {net}\n")
        kiln("init", "--data", d, "--topology", tmp_path / f"t{d.name}")
    return a, b


def serving(data, *options):
    """start_daemon as a generator that yields {"url", "data"} and stops the daemon and its
    instances after."""
    proc, where = start_daemon(data, *options)
    yield where
    proc.terminate()
    rc = proc.wait(timeout=30)
    # Down first, even when the daemon died: its instances and links must not outlive the test.
    down = kiln("down", "--data", data, check=False)
    assert rc == 0, f"kiln serve ended with {rc}: {proc.stderr.read()[-6000:]}"
    assert down.returncode == 0, down.stderr


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """`kiln serve` on a free loopback port over a new data directory (public images included),
    with a second account "other" (222233334444)."""
    data = tmp_path_factory.mktemp("api") / "data"
    kiln("init", "--data", data)
    kiln("account", "create", "other", "--account-id", "222233334444", "--access-key",
         "AKIAOTHEROTHEROTHER1", "--secret-key", "other-secret-other-secret", "--data", data)
    yield from serving(data)


def client(server, region="us-east-1", key=None, secret=None, retries=0, timeout=60):
    import configparser
    import boto3
    from botocore.config import Config
    cred = configparser.ConfigParser()
    cred.read(os.path.join(server["data"], "credentials"))
    return boto3.client(
        "ec2", region_name=region, endpoint_url=server["url"],
        aws_access_key_id=key or cred["default"]["aws_access_key_id"],
        aws_secret_access_key=secret or cred["default"]["aws_secret_access_key"],
        config=Config(retries={"max_attempts": retries + 1, "mode": "standard"}, connect_timeout=timeout,
                      read_timeout=timeout))


def error_of(call):
    import botocore
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    return e.value.response["Error"]["Code"], e.value.response["ResponseMetadata"]["HTTPStatusCode"]


def inside_env():
    """The environment of a client inside an instance: no AWS_ setting or file of the host's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env.update(AWS_CONFIG_FILE="/dev/null", AWS_SHARED_CREDENTIALS_FILE="/dev/null")
    return env


def init_pid(server, iid):
    with open(os.path.join(server["data"], "run", iid, "state")) as f:
        return int(dict(l.strip().split("=", 1) for l in f if "=" in l)["init-pid"])


def in_netns(server, iid, *cmd, env=None):
    """cmd run on the host in the instance's network namespace (nsenter -n)."""
    return subprocess.run(["nsenter", "-t", str(init_pid(server, iid)), "-n", *cmd], capture_output=True,
                          text=True, timeout=60, env=env or inside_env())


def until(fn, what, seconds=15):
    """Poll fn until it is true; fail naming what did not happen within seconds."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if fn():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def route_dev(addr):
    """The host's link for addr: "" when the host does not route it (unreachable)."""
    r = subprocess.run(["ip", "-j", "route", "get", addr], capture_output=True, text=True)
    if r.returncode != 0 or not r.stdout.strip():
        return ""
    return json.loads(r.stdout)[0].get("dev", "")


def routed_to_kiln(addr, prefix="kt"):
    """The host routes addr to a VPC's transit link (of one data directory: its prefix), so a
    probe of it stays on the host."""
    return route_dev(addr).startswith(prefix)


def host_fetch(addr, prefix="kt", timeout=3, port=7070):
    """GET /who from the httpd an instance serves on port, from the host: the answer's body, or
    None. Only when the host routes addr to a transit link whose name starts with prefix."""
    if not addr or not routed_to_kiln(addr, prefix):
        return None
    try:
        with socket.create_connection((addr, port), timeout=timeout) as s:
            s.sendall(b"GET /who HTTP/1.0\r\n\r\n")
            s.settimeout(timeout)
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        return data.decode(errors="replace").split("\r\n\r\n", 1)[-1].strip()
    except OSError:
        return None
