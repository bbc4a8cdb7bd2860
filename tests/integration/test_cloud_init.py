"""cloud-init in the debian-12 image (issue 12), through the API and the metadata service: the
first boot creates admin with the key pair from the metadata; #cloud-config users, write_files,
runcmd and packages (from a Debian repository served by another kiln instance: no traffic leaves
the namespaces kiln made); a #! script runs once per instance, not again after a stop and start;
an image made from a booted instance runs the per-instance configuration again for the new
instance. kiln-init leaves the user data and the key pair to cloud-init in this image
(/etc/kiln/cloud-init)."""
import hashlib
import os
import shutil
import subprocess
import time

import pytest

from conftest import KILN, client, kiln, serving

DEBIAN_TAR = os.environ.get("KILN_DEBIAN_IMAGE") or os.path.join(
    os.path.dirname(KILN), "images", "debian-12.tar")
BUSYBOX_TAR = os.path.join(os.path.dirname(KILN), "images", "busybox.tar")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A daemon whose public images are busybox and the debian-12 tarball; SSH to the default
    group from anywhere (the host), as a test's own security group rule would."""
    if not os.path.exists(DEBIAN_TAR):
        pytest.skip(f"no debian-12 image at {DEBIAN_TAR} (make images)")
    if not shutil.which("ssh"):
        pytest.skip("no ssh client (apt-get install openssh-client)")
    listing = subprocess.run(["tar", "-tf", DEBIAN_TAR], capture_output=True, text=True,
                             check=True).stdout
    assert "./etc/kiln/cloud-init" in listing.split("\n"), (
        f"{DEBIAN_TAR} predates cloud-init: rebuild it (KILN_REBUILD=1 make images)")
    base = tmp_path_factory.mktemp("cinit")
    images = base / "images"
    images.mkdir()
    for tar in (BUSYBOX_TAR, DEBIAN_TAR):
        os.symlink(os.path.abspath(tar), images / os.path.basename(tar))
    data = base / "data"
    kiln("init", "--data", data, "--images", images)
    yield from serving(data)


@pytest.fixture(scope="module")
def ec2(server):
    ec2 = client(server)
    try:  # cloud-init reads everything from the metadata service (issue 12's IMDS work)
        ec2.modify_instance_metadata_options(InstanceId="i-0123456789abcdef0", HttpTokens="optional")
    except ec2.exceptions.ClientError as e:
        if e.response["Error"]["Code"] == "InvalidAction":
            pytest.skip("this kiln has no instance metadata service, which cloud-init reads")
    perm = [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
             "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
    ec2.authorize_security_group_ingress(GroupName="default", IpPermissions=perm)
    return ec2


@pytest.fixture(scope="module")
def debian(ec2):
    return ec2.describe_images(Owners=["amazon"], Filters=[
        {"Name": "name", "Values": ["kiln-debian-12"]}])["Images"][0]["ImageId"]


@pytest.fixture(scope="module")
def key(ec2, tmp_path_factory):
    """The key pair "ci" and its private key file."""
    k = ec2.create_key_pair(KeyName="ci", KeyType="ed25519")
    path = tmp_path_factory.mktemp("key") / "ci"
    path.write_text(k["KeyMaterial"])
    path.chmod(0o600)
    return path


def keygen(path):
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path, (path.parent / (path.name + ".pub")).read_text().strip()


def address(ec2, iid):
    d = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    return d.get("PublicIpAddress") or d["PrivateIpAddress"]


def ssh(key, user, addr, command, timeout=60):
    return subprocess.run(
        ["ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
         "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=error", "-o", "ConnectTimeout=5",
         "-o", "IdentitiesOnly=yes", f"{user}@{addr}", command],
        capture_output=True, text=True, timeout=timeout)


def console(ec2, iid):
    return ec2.get_console_output(InstanceId=iid).get("Output", "")


def launch(ec2, image, user_data=None, key_name="ci", type="t3.micro"):
    args = dict(ImageId=image, InstanceType=type, MinCount=1, MaxCount=1)
    if key_name:
        args["KeyName"] = key_name
    if user_data is not None:
        args["UserData"] = user_data
    iid = ec2.run_instances(**args)["Instances"][0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid],
                                            WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    return iid


def terminate(ec2, *iids):
    ec2.terminate_instances(InstanceIds=list(iids))
    ec2.get_waiter("instance_terminated").wait(InstanceIds=list(iids),
                                               WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def login(ec2, iid, key, user="admin", timeout=120):
    """Waits until `user` logs in with key (cloud-init creates admin and installs the key pair
    a few seconds after sshd answers), then until cloud-init has finished this boot; returns
    the address and `cloud-init status --long`."""
    addr = address(ec2, iid)
    deadline = time.monotonic() + timeout
    while True:
        r = ssh(key, user, addr, "true")
        if r.returncode == 0:
            break
        assert time.monotonic() < deadline, f"{user} cannot log in: {r.stderr}\n{console(ec2, iid)}"
        time.sleep(1)
    r = ssh(key, user, addr, "cloud-init status --wait --long", timeout=timeout)
    assert "status: done" in r.stdout, f"{r.stdout}{r.stderr}\n{console(ec2, iid)}"
    return addr, r.stdout


def test_first_boot_cloud_config(ec2, debian, key, tmp_path):
    """admin with the key pair of the metadata (sudo without a password, root refused); an
    extra user with its own key; write_files; runcmd; the end of cloud-init recorded."""
    extra_key, extra_pub = keygen(tmp_path / "extra")
    user_data = "\n".join([
        "#cloud-config",
        "users:",
        "  - default",
        "  - name: extra",
        "    shell: /bin/bash",
        f"    ssh_authorized_keys: ['{extra_pub}']",
        "write_files:",
        "  - path: /etc/kiln-test/hello",
        "    content: written by cloud-init",
        "    permissions: '0640'",
        "runcmd:",
        "  - [sh, -c, 'echo ran as $(id -un) > /var/tmp/runcmd-ran']",
        ""])
    iid = launch(ec2, debian, user_data)
    try:
        addr, status = login(ec2, iid, key)
        r = ssh(key, "admin", addr, "id -un; sudo -n id -un; stat -c '%U %a' ~/.ssh "
                "~/.ssh/authorized_keys; sudo -n stat -c '%a %s' /etc/kiln-test/hello; "
                "sudo -n cat /etc/kiln-test/hello; echo; cat /var/tmp/runcmd-ran; "
                "sudo -n cat /var/lib/cloud/data/instance-id; sudo -n cloud-init query v1.instance_id; "
                "test -e /var/lib/cloud/instance/boot-finished && echo finished")
        assert r.returncode == 0, r.stderr
        # the host name resolves (/etc/hosts from cloud-init), so sudo does not warn
        assert "unable to resolve host" not in r.stderr, r.stderr
        lines = r.stdout.split("\n")
        assert lines[:10] == ["admin", "root", "admin 700", "admin 600", "640 21",
                              "written by cloud-init", "ran as root", iid, iid, "finished"], r.stdout
        assert "extended_status" not in status or "error" not in status, status
        r = ssh(extra_key, "extra", addr, "id -un")
        assert (r.returncode, r.stdout) == (0, "extra\n"), r.stderr
        # the key pair is admin's only (and extra's key is extra's only)
        assert ssh(key, "extra", addr, "true").returncode == 255
        assert ssh(extra_key, "admin", addr, "true").returncode == 255
        r = ssh(key, "root", addr, "true")
        assert r.returncode == 255 and "Permission denied" in r.stderr, r
        out = console(ec2, iid)
        assert "user data and key pair left to cloud-init" in out, out
        assert "Cloud-init v. 22.4.2 finished" in out, out
        # cloud-init found the Ec2 datasource at kiln's metadata service
        r = ssh(key, "admin", addr, "sudo -n cloud-init query v1.platform")
        assert r.stdout == "ec2\n", r
    finally:
        terminate(ec2, iid)


def test_script_runs_once_per_instance(ec2, debian, key):
    """A #! user data script runs once (by cloud-init's scripts-user, not also by kiln-init), and
    not again after a stop and start."""
    script = "#!/bin/sh\necho \"$(date +%s.%N)\" >> /var/tmp/user-data-runs\n"
    iid = launch(ec2, debian, script)
    try:
        addr, _ = login(ec2, iid, key)
        r = ssh(key, "admin", addr, "wc -l < /var/tmp/user-data-runs")
        assert r.stdout.strip() == "1", r
        assert "user data and key pair left to cloud-init" in console(ec2, iid)
        ec2.stop_instances(InstanceIds=[iid])
        ec2.get_waiter("instance_stopped").wait(InstanceIds=[iid],
                                                WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        ec2.start_instances(InstanceIds=[iid])
        ec2.get_waiter("instance_running").wait(InstanceIds=[iid],
                                                WaiterConfig={"Delay": 1, "MaxAttempts": 90})
        addr, _ = login(ec2, iid, key)
        r = ssh(key, "admin", addr, "wc -l < /var/tmp/user-data-runs; "
                "sudo -n cat /var/lib/cloud/data/previous-instance-id")
        assert r.stdout.split() == ["1", iid], r
    finally:
        terminate(ec2, iid)


def test_image_of_an_instance_runs_per_instance_config_again(ec2, debian, key, tmp_path):
    """An image made from a booted instance keeps /var/lib/cloud; an instance of it is a new
    instance to cloud-init: its own user data runs, its own key pair is installed."""
    first = launch(ec2, debian, "#!/bin/sh\necho first > /var/tmp/made-by\n")
    second = None
    try:
        addr, _ = login(ec2, first, key)
        ec2.stop_instances(InstanceIds=[first])
        ec2.get_waiter("instance_stopped").wait(InstanceIds=[first],
                                                WaiterConfig={"Delay": 1, "MaxAttempts": 60})
        ami = ec2.create_image(InstanceId=first, Name="cinit-baked")["ImageId"]
        ec2.get_waiter("image_available").wait(ImageIds=[ami],
                                               WaiterConfig={"Delay": 1, "MaxAttempts": 120})
        other_priv = tmp_path / "other"
        k = ec2.create_key_pair(KeyName="ci-other", KeyType="ed25519")
        other_priv.write_text(k["KeyMaterial"])
        other_priv.chmod(0o600)
        second = launch(ec2, ami, "#!/bin/sh\necho second > /var/tmp/made-by\n",
                        key_name="ci-other")
        addr, _ = login(ec2, second, other_priv)
        r = ssh(other_priv, "admin", addr, "cat /var/tmp/made-by; "
                "sudo -n cat /var/lib/cloud/data/instance-id /var/lib/cloud/data/previous-instance-id; "
                "sudo -n ls /var/lib/cloud/instances")
        assert r.returncode == 0, r.stderr
        lines = r.stdout.split()
        assert lines[:3] == ["second", second, first], r.stdout
        assert sorted(lines[3:]) == sorted([first, second]), r.stdout
        # the first instance's key stays in admin's authorized_keys (the image carries it), as on
        # EC2; the new key pair is added
        assert ssh(key, "admin", addr, "true").returncode == 0
    finally:
        terminate(ec2, *[i for i in (first, second) if i])


def repository(tmp_path):
    """A flat Debian repository holding `hello`, downloaded by the host's apt: Packages and
    a Release listing it (unsigned: the source line says trusted=yes)."""
    for tool in ("apt-get", "dpkg-scanpackages"):
        if not shutil.which(tool):
            pytest.skip(f"no {tool} on the host (apt-get install dpkg-dev)")
    repo = tmp_path / "repo"
    repo.mkdir()
    r = subprocess.run(["apt-get", "download", "hello"], cwd=repo, capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"apt-get download hello failed (no Debian mirror?): {r.stderr.strip()}")
    packages = subprocess.run(["dpkg-scanpackages", "--multiversion", "."], cwd=repo,
                              capture_output=True, check=True).stdout
    (repo / "Packages").write_bytes(packages)
    digest = hashlib.sha256(packages).hexdigest()
    (repo / "Release").write_text(
        "Origin: kiln-test\nLabel: kiln-test\nSuite: local\nCodename: local\n"
        f"Date: {time.strftime('%a, %d %b %Y %H:%M:%S UTC', time.gmtime())}\n"
        f"SHA256:\n {digest} {len(packages)} Packages\n")
    return repo


def kiln_exec(server, iid, *command, input=None):
    env = dict(os.environ, KILN_ENDPOINT=server["url"], KILN_DATA=str(server["data"]))
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        env.pop(var, None)
    r = subprocess.run([KILN, "exec", iid, "--", *command], input=input, capture_output=True,
                       env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_packages_from_a_repository_in_another_instance(server, ec2, debian, key, tmp_path):
    """packages: with apt's sources replaced by a repository a busybox instance serves on its
    private address (the default group lets its members in): apt never reaches Debian's mirror."""
    repo = repository(tmp_path)
    busybox = ec2.describe_images(Owners=["amazon"], Filters=[
        {"Name": "name", "Values": ["kiln-busybox"]}])["Images"][0]["ImageId"]
    web = launch(ec2, busybox, "#!/bin/sh\nmkdir -p /www\nhttpd -p 80 -h /www\n", key_name=None,
                 type="t2.nano")
    deb = None
    try:
        for f in sorted(os.listdir(repo)):
            kiln_exec(server, web, "sh", "-c", f"mkdir -p /www && cat > /www/{f}", input=(repo / f).read_bytes())
        # its private address: the debian instance reaches it inside the VPC (a public address
        # is for the host and the outside; the router does not loop it back in)
        mirror = ec2.describe_instances(InstanceIds=[web])["Reservations"][0]["Instances"][0]["PrivateIpAddress"]
        user_data = "\n".join([
            "#cloud-config",
            "apt:",
            "  preserve_sources_list: false",
            "  sources_list: |",
            f"    deb [trusted=yes] http://{mirror}/ ./",
            "package_update: true",
            "packages: [hello]",
            ""])
        deb = launch(ec2, debian, user_data)
        addr, status = login(ec2, deb, key, timeout=180)
        r = ssh(key, "admin", addr, "hello; grep -rh '^deb' /etc/apt/sources.list "
                "/etc/apt/sources.list.d 2>/dev/null")
        assert r.returncode == 0, f"{r.stderr}\n{console(ec2, deb)}"
        assert r.stdout.split("\n")[:2] == ["Hello, world!", f"deb [trusted=yes] http://{mirror}/ ./"], r.stdout
    finally:
        terminate(ec2, *[i for i in (web, deb) if i])
