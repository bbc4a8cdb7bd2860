"""Isolation at the API: per-account quotas with EC2's error codes, RegisterImage only from the
caller's own snapshots, data files no one else can read, and an HTTP front door that slow
clients cannot starve."""
import os
import re
import socket
import subprocess
import threading
import time

import pytest

from conftest import KILN, client, error_of, kiln, serving
from test_api_instances import busybox, wait
from test_api_volumes import swait, vwait

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")

# Every account has these in each region.
TOPOLOGY = """us-east-1 a b
eu-west-1 a
quota running-vcpus 3   # a t3.micro (2 vCPUs) and a t2.nano (1)
quota volumes 3
quota volume-gib 20
quota snapshots 2
quota images 2
"""
ACCOUNTS = {  # name: (id, access key, secret)
    "other": ("222233334444", "AKIAOTHEROTHEROTHER1", "other-secret-other-secret"),
    "share": ("333344445555", "AKIASHARESHARESHARE1", "share-secret-share-secret"),
    "vol": ("444455556666", "AKIAVOLUMEVOLUMEVOL1", "volume-secret-volume-secret"),
    "snap": ("555566667777", "AKIASNAPSHOTSNAPSHO1", "snapshot-secret-snapshot-secret"),
    "img": ("666677778888", "AKIAIMAGEIMAGEIMAGE1", "image-secret-image-secret"),
}
BUSYBOX = os.path.join(os.path.dirname(KILN), "images", "busybox.tar")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A daemon over a data directory whose topology sets tiny quotas, with busybox only."""
    if not os.path.exists(BUSYBOX):
        pytest.skip(f"no {BUSYBOX} (make images)")
    top = tmp_path_factory.mktemp("quotas")
    (top / "images").mkdir()
    (top / "images" / "busybox.tar").symlink_to(BUSYBOX)
    (top / "topology").write_text(TOPOLOGY)
    data = top / "data"
    kiln("init", "--data", data, "--topology", top / "topology", "--images", top / "images")
    for name, (aid, key, secret) in ACCOUNTS.items():
        kiln("account", "create", name, "--account-id", aid, "--access-key", key, "--secret-key", secret,
             "--data", data)
    yield from serving(data)


def as_account(server, name, region="us-east-1"):
    _, key, secret = ACCOUNTS[name]
    return client(server, region, key=key, secret=secret)


def run(ec2, itype="t2.nano", count=1, **kw):
    r = ec2.run_instances(ImageId=busybox(ec2), InstanceType=itype, MinCount=1, MaxCount=count, **kw)
    ids = [i["InstanceId"] for i in r["Instances"]]
    for iid in ids:
        wait(ec2, "instance_running", iid)
    return ids


def refused(call, code):
    """The call fails with code and HTTP 400; its message."""
    import botocore
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    err = e.value.response
    assert (err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]) == (code, 400), err["Error"]
    return err["Error"]["Message"]


def terminate(ec2, ids):
    ec2.terminate_instances(InstanceIds=ids)
    for iid in ids:
        wait(ec2, "instance_terminated", iid)


def volume(ec2, size=1, zone="us-east-1a"):
    vid = ec2.create_volume(AvailabilityZone=zone, Size=size)["VolumeId"]
    vwait(ec2, "volume_available", vid)
    return vid


def snapshot(ec2, vid):
    sid = ec2.create_snapshot(VolumeId=vid)["SnapshotId"]
    swait(ec2, sid)
    return sid


def register(ec2, name, sid):
    return ec2.register_image(Name=name, RootDeviceName="/dev/xvda",
                              BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": sid}}])["ImageId"]


def test_running_vcpus_per_account_and_region(server):
    ec2 = client(server)  # the default account
    big = run(ec2, "t3.micro")[0]
    # MinCount 1, MaxCount 3: EC2 launches as many as the quota leaves room for (one vCPU)
    small = run(ec2, "t2.nano", count=3)
    assert len(small) == 1
    msg = refused(lambda: run(ec2, "t2.nano"), "VcpuLimitExceeded")
    assert "running-vcpus" in msg and "3" in msg
    assert len(ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["pending", "running"]}])[
        "Reservations"]) == 2, "the refused launch left an instance behind"
    # per region and per account
    eu = client(server, "eu-west-1")
    terminate(eu, run(eu))
    other = as_account(server, "other")
    terminate(other, run(other))

    # a stopped instance frees its vCPUs; starting it again needs them back
    ec2.stop_instances(InstanceIds=[big])
    wait(ec2, "instance_stopped", big)
    small += run(ec2, "t2.nano")
    refused(lambda: ec2.start_instances(InstanceIds=[big]), "VcpuLimitExceeded")
    assert ec2.describe_instances(InstanceIds=[big])["Reservations"][0]["Instances"][0]["State"]["Name"] == "stopped"
    terminate(ec2, small)
    ec2.start_instances(InstanceIds=[big])
    wait(ec2, "instance_running", big)
    terminate(ec2, [big])


def test_volumes_count_and_size(server):
    ec2 = as_account(server, "vol")
    a, b = volume(ec2, 8), volume(ec2, 8)
    msg = refused(lambda: ec2.create_volume(AvailabilityZone="us-east-1a", Size=8), "VolumeLimitExceeded")
    assert "volume-gib" in msg
    c = volume(ec2, 4)  # 20 GiB: the size quota, exactly
    msg = refused(lambda: ec2.create_volume(AvailabilityZone="us-east-1b", Size=1), "VolumeLimitExceeded")
    assert "'volumes'" in msg
    # a launch makes a root volume: refused the same way, and leaves nothing behind
    refused(lambda: run(ec2), "VolumeLimitExceeded")
    assert ec2.describe_instances()["Reservations"] == []
    assert len(ec2.describe_volumes()["Volumes"]) == 3
    # per region
    volume(as_account(server, "vol", "eu-west-1"), 20, zone="eu-west-1a")
    ec2.delete_volume(VolumeId=c)
    vwait(ec2, "volume_deleted", c)
    terminate(ec2, run(ec2))
    for vid in (a, b):
        ec2.delete_volume(VolumeId=vid)


def test_snapshots_by_create_copy_and_create_image(server):
    ec2 = as_account(server, "snap")
    vid = volume(ec2)
    first, _ = snapshot(ec2, vid), snapshot(ec2, vid)
    msg = refused(lambda: ec2.create_snapshot(VolumeId=vid), "SnapshotLimitExceeded")
    assert "'snapshots'" in msg
    refused(lambda: ec2.copy_snapshot(SourceRegion="us-east-1", SourceSnapshotId=first), "SnapshotLimitExceeded")
    iid = run(ec2)[0]
    refused(lambda: ec2.create_image(InstanceId=iid, Name="over-quota", NoReboot=True), "SnapshotLimitExceeded")
    assert ec2.describe_images(Owners=["self"])["Images"] == []
    assert len(ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]) == 2
    # per region: eu-west-1 has room
    eu = as_account(server, "snap", "eu-west-1")
    eu_snap = eu.copy_snapshot(SourceRegion="us-east-1", SourceSnapshotId=first)["SnapshotId"]
    swait(eu, eu_snap)
    ec2.delete_snapshot(SnapshotId=first)
    snapshot(ec2, vid)
    terminate(ec2, [iid])


def test_images_by_register_copy_and_create_image(server):
    ec2 = as_account(server, "img")
    sid = snapshot(ec2, volume(ec2))
    amis = [register(ec2, "img-1", sid), register(ec2, "img-2", sid)]
    msg = refused(lambda: register(ec2, "img-3", sid), "ResourceLimitExceeded")
    assert "'images'" in msg
    eu_busybox = busybox(as_account(server, "img", "eu-west-1"))
    refused(lambda: ec2.copy_image(SourceRegion="eu-west-1", SourceImageId=eu_busybox, Name="copied"),
            "ResourceLimitExceeded")
    iid = run(ec2)[0]
    refused(lambda: ec2.create_image(InstanceId=iid, Name="baked", NoReboot=True), "ResourceLimitExceeded")
    # the refused CopyImage and CreateImage took no snapshot either
    assert [s["SnapshotId"] for s in ec2.describe_snapshots(OwnerIds=["self"])["Snapshots"]] == [sid]
    assert sorted(i["ImageId"] for i in ec2.describe_images(Owners=["self"])["Images"]) == sorted(amis)
    ec2.deregister_image(ImageId=amis.pop())
    amis.append(register(ec2, "img-3", sid))
    terminate(ec2, [iid])
    for ami in amis:
        ec2.deregister_image(ImageId=ami)


def test_register_image_only_from_own_snapshots(server):
    owner, grantee = as_account(server, "other"), as_account(server, "share")
    sid = snapshot(owner, volume(owner))
    owner.modify_snapshot_attribute(SnapshotId=sid, Attribute="createVolumePermission", OperationType="add",
                                    UserIds=[ACCOUNTS["share"][0]])
    assert sid in [s["SnapshotId"] for s in grantee.describe_snapshots(RestorableByUserIds=["self"])["Snapshots"]]
    msg = refused(lambda: register(grantee, "borrowed", sid), "OperationNotPermitted")
    assert sid in msg and "CopySnapshot" in msg
    # a data volume mapping from it is refused the same way
    own = snapshot(grantee, volume(grantee))
    refused(lambda: grantee.register_image(Name="borrowed-data", RootDeviceName="/dev/xvda", BlockDeviceMappings=[
        {"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": own}},
        {"DeviceName": "/dev/sdb", "Ebs": {"SnapshotId": sid}}]), "OperationNotPermitted")
    # public is not the caller's either
    owner.modify_snapshot_attribute(SnapshotId=sid, CreateVolumePermission={"Add": [{"Group": "all"}]})
    refused(lambda: register(grantee, "borrowed", sid), "OperationNotPermitted")
    # a volume from a shared snapshot is still fine, and a copy is the grantee's own
    vid = grantee.create_volume(AvailabilityZone="us-east-1a", SnapshotId=sid)["VolumeId"]
    vwait(grantee, "volume_available", vid)
    copy = grantee.copy_snapshot(SourceRegion="us-east-1", SourceSnapshotId=sid)["SnapshotId"]
    swait(grantee, copy)
    ami = register(grantee, "copied-first", copy)
    assert grantee.describe_images(ImageIds=[ami])["Images"][0]["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"] == copy
    # nothing of the grantee pins the owner's snapshot
    owner.delete_snapshot(SnapshotId=sid)
    grantee.deregister_image(ImageId=ami)
    grantee.delete_volume(VolumeId=vid)


def first_creates(trace):
    """{file name: mode} of the first open(O_CREAT) or mkdir of each path in an strace log."""
    seen = {}
    for line in trace.splitlines():
        m = re.search(r'openat\([^,]+, "([^"]+)", [^)]*O_CREAT[^)]*, (0[0-7]+)\)', line) or \
            re.search(r'mkdir\("([^"]+)", (0[0-7]+)\)', line)
        if m:
            seen.setdefault(os.path.basename(m.group(1)), int(m.group(2), 8))
    return seen


def traced(tmp_path, *args):
    """kiln args under strace with umask 0 (what kiln asks for is what the files get)."""
    log = tmp_path / "trace"
    subprocess.run(["strace", "-f", "-qq", "-e", "trace=openat,mkdir", "-o", str(log), KILN, *map(str, args)],
                   check=True, capture_output=True, preexec_fn=lambda: os.umask(0))
    return first_creates(log.read_text())


def test_credentials_and_database_are_private_from_the_start(server, tmp_path):
    if subprocess.run(["which", "strace"], capture_output=True).returncode:
        pytest.skip("needs strace")
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o755)  # made by someone else, open to all
    created = traced(tmp_path, "init", "--data", data, "--no-images")
    secret = [n for n in created if n.startswith(("credentials", "kiln.db"))]
    assert {"kiln.db", "kiln.db-wal", "kiln.db-shm"} <= set(secret)
    assert any(n.startswith("credentials.tmp.") for n in secret)
    for name in secret:
        assert created[name] & 0o077 == 0, f"{name} created with mode {oct(created[name])}"
    for name in ("credentials", "kiln.db", "."):
        mode = os.stat(data / name).st_mode & 0o777
        assert mode == (0o700 if name == "." else 0o600), f"{name}: {oct(mode)}"
    created = traced(tmp_path, "account", "create", "late", "--data", data)
    assert all(created[n] & 0o077 == 0 for n in created if n.startswith("kiln.db")), created
    assert os.stat(data / "kiln.db").st_mode & 0o077 == 0
    # the running daemon's database and its WAL files
    files = [f for f in os.listdir(server["data"]) if f.startswith("kiln.db")]
    assert "kiln.db-wal" in files
    for f in files:
        assert os.stat(os.path.join(server["data"], f)).st_mode & 0o077 == 0, f


def test_sixteen_concurrent_clients_from_one_address(server):
    """bench/api's load: 16 clients at once from 127.0.0.1 stay within the per-client limit."""
    errors, start = [], threading.Barrier(16)

    def call():
        ec2 = client(server)
        try:
            start.wait()
            for _ in range(5):
                ec2.describe_regions()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


@pytest.fixture
def small_server(tmp_path):
    """A daemon with small connection limits and a 3 s timeout."""
    data = tmp_path / "data"
    kiln("init", "--data", data, "--no-images")
    yield from serving(data, "--max-connections", "24", "--max-connections-per-ip", "6", "--timeout", "3")


def connect_from(address, port):
    s = socket.socket()
    s.bind((address, 0))
    s.connect(("127.0.0.1", port))
    return s


def is_open(s):
    s.setblocking(False)
    try:
        return s.recv(1) != b""
    except BlockingIOError:
        return True
    except OSError:
        return False


def test_a_slow_client_does_not_starve_others(small_server):
    port = int(small_server["url"].rsplit(":", 1)[1])
    # one client (127.0.0.2) opens more connections than the server has in all and sends nothing,
    # or only the start of a request
    slow = [connect_from("127.0.0.2", port) for _ in range(40)]
    for s in slow[::2]:
        try:
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\n")
        except OSError:
            pass  # one the server closed at once
    time.sleep(0.5)
    held = [s for s in slow if is_open(s)]
    assert 0 < len(held) <= 6, f"one address holds {len(held)} connections"
    # meanwhile another client is served at once, not only once the slow one's connections time
    # out (a full server leaves new connections waiting in the listen queue until then)
    assert client(small_server, timeout=1).describe_regions()["Regions"]
    # idle connections are closed after the timeout
    time.sleep(4)
    assert [s for s in held if is_open(s)] == []

    # a body dribbled a byte at a time is cut timeout seconds after its request line
    s = connect_from("127.0.0.2", port)
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
              b"Content-Length: 1000\r\n\r\n")
    t0 = time.monotonic()
    while is_open(s) and time.monotonic() - t0 < 12:
        try:
            s.send(b"A")
        except OSError:
            break
        time.sleep(0.5)
    assert time.monotonic() - t0 < 6, "a dribbled body kept its connection"
    for s in slow:
        s.close()
