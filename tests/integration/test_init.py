"""kiln-init as PID 1 of a busybox root in fresh pid/mount/uts/net/ipc namespaces, as the runtime
runs it: metadata, user data once per instance, host keys, rc.d, reaping, what children inherit,
and stopping on SIGTERM (SIGKILL after the timeout). Every mount lives in the instance's private
mount namespace and goes with it."""
import gzip
import os
import shutil
import signal
import subprocess
import tarfile
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
KILN = os.environ.get("KILN_BIN") or os.path.join(REPO, "build", "kiln")
INIT = os.environ.get("KILN_INIT_BIN") or os.path.join(os.path.dirname(KILN), "kiln-init")
DEBIAN_TAR = os.environ.get("KILN_DEBIAN_IMAGE") or os.path.join(
    os.path.dirname(KILN), "images", "debian-12.tar")

# What the runtime has done before it execs kiln-init, done here with the host's tools.
BOOT_SH = r"""
set -eu
R=$1
mount -t proc proc "$R/proc"
mount -t tmpfs -o mode=0755 tmpfs "$R/run"
mount -t tmpfs -o mode=0755 tmpfs "$R/dev"
for n in null zero full random urandom; do
	touch "$R/dev/$n"
	mount --bind "/dev/$n" "$R/dev/$n"
done
mkdir -p "$R/run/kiln"
cp "$2" "$R/run/kiln/init"
if [ -n "$3" ]; then cp "$3" "$R/run/kiln/user-data"; fi
if [ -n "$4" ]; then cp "$4" "$R/run/kiln/openssh-key"; fi
ip link set lo up 2>/dev/null || true
hostname "$KILN_HOSTNAME"
exec chroot "$R" /run/kiln/init
"""

ENV = {
    "KILN_IMAGE_ID": "ami-0123456789abcdef0",
    "KILN_REGION": "us-east-1",
    "KILN_ZONE": "us-east-1b",
    "KILN_INSTANCE_TYPE": "t3.micro",
    "KILN_LOCAL_IPV4": "172.31.16.5",
    "KILN_HOSTNAME": "ip-172-31-16-5.ec2.internal",
    "KILN_MAC": "",
}
ID_A = "i-0aaaaaaaaaaaaaaa1"
ID_B = "i-0bbbbbbbbbbbbbbb2"


@pytest.fixture(autouse=True)
def need_root_and_tools():
    if os.geteuid() != 0:
        pytest.skip("needs root")
    for tool in ("unshare", "chroot"):
        if not shutil.which(tool, path="/usr/sbin:/usr/bin:/sbin:/bin"):
            pytest.skip(f"needs {tool}")
    if not os.path.exists(INIT):
        pytest.skip(f"no kiln-init at {INIT}")


class Instance:
    """One boot of a root directory; the console is a file, as the runtime's is."""

    def __init__(self, root, console, instance_id, user_data=None, key=None, stop_timeout=1,
                 env=None, ignore=()):
        self.console_path = console
        full = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "KILN_INSTANCE_ID": instance_id,
                "KILN_STOP_TIMEOUT": str(stop_timeout), **ENV, **(env or {})}
        with open(console, "wb") as out:
            self.proc = subprocess.Popen(
                ["unshare", "--pid", "--fork", "--mount-proc", "--mount", "--uts", "--net",
                 "--ipc", "/bin/sh", "-c", BOOT_SH, "boot", str(root), INIT,
                 str(user_data or ""), str(key or "")],
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, env=full,
                preexec_fn=lambda: [signal.signal(s, signal.SIG_IGN) for s in ignore])
        self._pid1 = None

    @property
    def pid1(self):
        """The host pid of the instance's PID 1 (unshare's only child)."""
        deadline = time.monotonic() + 10
        while self._pid1 is None:
            try:
                with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
                    kids = f.read().split()
            except FileNotFoundError:
                kids = []
            if kids:
                self._pid1 = int(kids[0])
            elif self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no PID 1 appeared:\n{self.console()}")
            else:
                time.sleep(0.01)
        return self._pid1

    def console(self):
        with open(self.console_path, errors="replace") as f:
            return f.read()

    def wait_for(self, text, timeout=20):
        deadline = time.monotonic() + timeout
        while text not in self.console():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} on the console:\n{self.console()}")
            time.sleep(0.02)

    def path(self, p):
        """A path as PID 1 sees it (its root and mounts)."""
        return f"/proc/{self.pid1}/root{p}"

    def processes(self):
        """{host pid: (state, command name)} of every process in the instance but PID 1."""
        out, todo = {}, [self.pid1]
        while todo:
            pid = todo.pop()
            try:
                with open(f"/proc/{pid}/task/{pid}/children") as f:
                    kids = [int(k) for k in f.read().split()]
                for k in kids:
                    with open(f"/proc/{k}/stat") as f:
                        stat = f.read()
                    out[k] = (stat[stat.rindex(")") + 2], stat[stat.index("(") + 1:stat.rindex(")")])
                todo += kids
            except (FileNotFoundError, ProcessLookupError):
                continue
        return out

    def stop(self, sig=signal.SIGTERM, timeout=30):
        """Signal PID 1 and wait for the instance to end; returns (exit code, seconds)."""
        pid = self.pid1
        t0 = time.monotonic()
        os.kill(pid, sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"PID 1 did not exit on {sig!r}:\n{self.console()}")
        return rc, time.monotonic() - t0

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.kill(self.pid1, signal.SIGKILL)  # ends the whole pid namespace
            except (ProcessLookupError, AssertionError):
                self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def boot(tmp_path):
    """boot(root, instance_id, ...) -> a running Instance; whatever is left is killed after."""
    booted = []

    def start(root, instance_id, **kw):
        inst = Instance(root, tmp_path / f"console-{len(booted)}.txt", instance_id, **kw)
        booted.append(inst)
        return inst

    yield start
    for inst in booted:
        inst.kill()
    with open("/proc/self/mountinfo") as f:
        assert str(tmp_path) not in f.read(), "a mount of the test is left behind"


@pytest.fixture
def root(tmp_path):
    if not os.path.exists("/bin/busybox"):
        pytest.skip("needs busybox-static")
    r = tmp_path / "root"
    subprocess.run([os.path.join(REPO, "images", "busybox", "build.sh"), str(r)], check=True,
                   capture_output=True)
    return r


def write(path, text, mode=0o644):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def fake_host_keys(root):
    for p in ("etc/ssh/ssh_host_rsa_key", "etc/ssh/ssh_host_rsa_key.pub",
              "etc/ssh/ssh_host_ed25519_key", "etc/dropbear/dropbear_rsa_host_key"):
        write(root / p, "baked into the image\n", 0o600)
    write(root / "etc/ssh/sshd_config", "# kept\n")


def host_keys(root):
    return sorted(str(p.relative_to(root)) for d in ("etc/ssh", "etc/dropbear")
                  for p in (root / d).glob("*key*"))


def test_image_layout(root):
    """The busybox image: relative applet links, the files kiln-init and users expect."""
    assert (root / "bin/busybox").is_file() and not (root / "bin/busybox").is_symlink()
    for link, target in (("bin/sh", "busybox"), ("sbin/ifconfig", "../bin/busybox"),
                         ("usr/bin/awk", "../../bin/busybox")):
        assert os.readlink(root / link) == target
    for p in root.rglob("*"):
        if p.is_symlink():
            assert not os.readlink(p).startswith("/"), f"absolute link {p}"
    assert "ID=busybox-kiln" in (root / "etc/os-release").read_text().splitlines()
    assert (root / "etc/passwd").read_text().startswith("root:x:0:0:")
    assert oct((root / "tmp").stat().st_mode & 0o7777) == "0o1777"
    for d in ("etc/kiln/rc.d", "var/lib", "root", "dev", "proc", "sys", "run"):
        assert (root / d).is_dir(), d


def test_user_data_once_per_instance(root, boot, tmp_path):
    fake_host_keys(root)
    ud = tmp_path / "user-data"
    write(ud, '#!/bin/sh\necho "user-data says hi"\necho ran >> /root/ud-runs\n')
    write(root / "etc/kiln/rc.d/20-second", "#!/bin/sh\necho rc.d second\n", 0o755)
    write(root / "etc/kiln/rc.d/10-first", "#!/bin/sh\necho rc.d first\nexit 4\n", 0o755)
    write(root / "etc/kiln/rc.d/30-not-executable", "#!/bin/sh\necho must not run\n", 0o644)
    write(root / "etc/kiln/rc.d/.hidden", "#!/bin/sh\necho must not run\n", 0o755)

    first = boot(root, ID_A, user_data=ud)
    first.wait_for("kiln-init: ready")
    meta = {p: open(first.path(f"/run/kiln/meta/{p}")).read() for p in (
        "instance-id", "ami-id", "placement/region", "placement/availability-zone",
        "instance-type", "local-ipv4", "hostname", "local-hostname", "mac")}
    assert meta == {"instance-id": ID_A, "ami-id": ENV["KILN_IMAGE_ID"],
                    "placement/region": "us-east-1", "placement/availability-zone": "us-east-1b",
                    "instance-type": "t3.micro", "local-ipv4": "172.31.16.5",
                    "hostname": ENV["KILN_HOSTNAME"], "local-hostname": ENV["KILN_HOSTNAME"],
                    "mac": ""}
    env_lines = open(first.path("/run/kiln/meta.env")).read().splitlines()
    assert f"KILN_INSTANCE_ID={ID_A}" in env_lines and "KILN_ZONE=us-east-1b" in env_lines
    assert first.stop()[0] == 0
    c1 = first.console()
    assert c1.splitlines()[0] == f"kiln-init: booting {ID_A} ({ENV['KILN_IMAGE_ID']}) in us-east-1b"
    assert "kiln-init: user-data exited with status 0" in c1
    assert c1.index("rc.d first") < c1.index("kiln-init: rc.d/10-first exited with status 4") \
        < c1.index("rc.d second") < c1.index("kiln-init: ready")
    assert "must not run" not in c1
    # the image's host keys went, nothing else in /etc/ssh did
    assert host_keys(root) == []
    assert (root / "etc/ssh/sshd_config").exists()
    assert (root / "var/lib/kiln/instance-id").read_text().strip() == ID_A

    # the same instance again (a stop and start): no user data, keys untouched
    fake_host_keys(root)
    again = boot(root, ID_A, user_data=ud)
    again.wait_for("kiln-init: ready")
    assert again.stop()[0] == 0
    assert "user-data" not in again.console()
    assert len(host_keys(root)) == 4

    # a new instance from the same volume (an image baked from the first one): all again
    other = boot(root, ID_B, user_data=ud)
    other.wait_for("kiln-init: ready")
    assert other.stop()[0] == 0
    assert other.console().count("user-data says hi") == 1
    assert host_keys(root) == []
    assert (root / "root/ud-runs").read_text() == "ran\nran\n"
    assert (root / "var/lib/kiln/instance-id").read_text().strip() == ID_B
    assert (c1 + again.console()).count("user-data says hi") == 1


def test_children_start_clean_and_orphans_are_reaped(root, boot, tmp_path):
    ud = tmp_path / "user-data"
    write(ud, "\n".join([
        "echo \"env: $(env | cut -d= -f1 | sort | tr '\\n' ' ')\"",
        "grep -E '^Sig(Blk|Ign)' /proc/self/status",
        "echo \"stdin: $(readlink /proc/self/fd/0)\"",
        "echo \"fds: $(ls /proc/self/fd | tr '\\n' ' ')\"",
        "for i in 1 2 3; do (sleep 0.1 &) ; done",  # orphans, reparented to PID 1
        "sleep 0.6",
        "echo \"zombies: $(cat /proc/[0-9]*/stat | awk '$3 == \"Z\"' | wc -l)\"",
    ]) + "\n")
    # whatever kiln-init inherits (an environment, ignored signals) is not the services' business
    inst = boot(root, ID_A, user_data=ud, env={"LEAKED_FROM_RUNTIME": "1"},
                ignore=(signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE))
    inst.wait_for("kiln-init: ready")
    time.sleep(0.3)
    assert all(state != "Z" for state, _ in inst.processes().values())
    assert inst.stop()[0] == 0
    lines = inst.console().splitlines()
    env = next(l for l in lines if l.startswith("env: ")).split()[1:]
    assert set(env) - {"PWD", "SHLVL", "_"} == {"PATH", "HOME", "KILN_INSTANCE_ID",
                                                 "KILN_STOP_TIMEOUT", *ENV}
    assert "SigBlk:\t0000000000000000" in lines and "SigIgn:\t0000000000000000" in lines
    assert "stdin: /dev/null" in lines
    # 0, 1, 2 and the one ls opens to read the directory: nothing from kiln-init or the runtime
    assert next(l for l in lines if l.startswith("fds: ")).split()[1:] == ["0", "1", "2", "3"]
    assert "zombies: 0" in lines
    assert "kiln-init: user-data exited with status 0" in lines


def test_stop_kills_what_ignores_sigterm_after_the_timeout(root, boot):
    write(root / "etc/kiln/rc.d/50-services", "\n".join([
        "#!/bin/sh",
        "sleep 1000 &",                               # a polite service
        "(trap '' TERM; exec sleep 1001) &",          # one that ignores SIGTERM
        "echo services started",
    ]) + "\n", 0o755)
    inst = boot(root, ID_A, stop_timeout=1)
    inst.wait_for("kiln-init: ready")
    deadline = time.monotonic() + 10  # the subshell may not have exec'd sleep yet
    while sorted(n for _, n in inst.processes().values()) != ["sleep", "sleep"]:
        assert time.monotonic() < deadline, inst.processes()
        time.sleep(0.02)
    rc, took = inst.stop()
    assert rc == 0
    console = inst.console()
    assert "kiln-init: shutting down" in console
    assert "kiln-init: still running after 1 s: killing" in console
    assert took >= 0.9  # it did give the stubborn one its grace period first


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGPWR])
def test_stop_signals(root, boot, sig):
    write(root / "etc/kiln/rc.d/50-service", "#!/bin/sh\nsleep 1000 &\n", 0o755)
    inst = boot(root, ID_A, stop_timeout=30)
    inst.wait_for("kiln-init: ready")
    rc, took = inst.stop(sig, timeout=25)
    assert rc == 0
    assert "kiln-init: shutting down" in inst.console()
    assert "killing" not in inst.console()  # the service went on SIGTERM, well before 30 s


def test_user_data_only_cloud_init_understands_is_skipped(root, boot, tmp_path):
    """kiln-init runs #! scripts and shell; cloud-init's other formats would only fail in
    /bin/sh: skipped with a line naming them (init/user_data.h)."""
    ud = tmp_path / "user-data"
    cases = [
        (b"#cloud-config\nruncmd: [[touch, /root/ran]]\n", "#cloud-config"),
        (gzip.compress(b"#!/bin/sh\ntouch /root/ran\n"), "gzip-compressed"),
        (b'Content-Type: multipart/mixed; boundary="B"\nMIME-Version: 1.0\n\n--B\n'
         b"Content-Type: text/x-shellscript\n\n#!/bin/sh\ntouch /root/ran\n--B--\n",
         "a MIME message"),
        (b"#include\nhttps://example.com/setup.sh\n", "#include"),
    ]
    ids = [ID_A, ID_B]  # a new instance each boot, so that the user data has its chance
    for i, (data, name) in enumerate(cases):
        ud.write_bytes(data)
        inst = boot(root, ids[i % 2], user_data=ud)
        inst.wait_for("kiln-init: ready")
        assert inst.stop()[0] == 0
        console = inst.console()
        assert f"kiln-init: user-data is {name}, which kiln-init does not interpret: skipped" \
            in console
        assert "user-data exited" not in console
        assert not (root / "root/ran").exists()

    # a #cloud-boothook is a shell script, to cloud-init as here
    ud.write_bytes(b"#cloud-boothook\ntouch /root/ran\n")
    inst = boot(root, ids[len(cases) % 2], user_data=ud)
    inst.wait_for("kiln-init: ready")
    assert inst.stop()[0] == 0
    assert "kiln-init: user-data exited with status 0" in inst.console()
    assert (root / "root/ran").exists()


def test_failing_or_shell_less_user_data_is_not_fatal(root, boot, tmp_path):
    os.unlink(root / "bin/sh")
    ud = tmp_path / "user-data"
    write(ud, "echo needs a shell\n")
    inst = boot(root, ID_A, user_data=ud)
    inst.wait_for("kiln-init: ready")
    assert inst.stop()[0] == 0
    console = inst.console()
    assert "kiln-init: cannot run '/bin/sh': No such file or directory" in console
    assert "kiln-init: user-data exited with status 127" in console

    # a #! script runs its own interpreter, no /bin/sh needed; a killed one is reported too
    write(ud, "#!/bin/busybox ash\necho interpreter ran\nkill -KILL $$\n")
    inst = boot(root, ID_B, user_data=ud)
    inst.wait_for("kiln-init: ready")
    assert inst.stop()[0] == 0
    console = inst.console()
    assert "interpreter ran" in console
    assert "kiln-init: user-data exited with status 137 (killed by signal 9)" in console


def test_key_pair_is_installed_on_first_boot(root, boot, tmp_path):
    key = tmp_path / "key.pub"
    line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake kiln"
    write(key, line + "\n")
    write(root / "root/.ssh/authorized_keys", "ssh-rsa AAAAkept", 0o600)  # no final newline
    inst = boot(root, ID_A, key=key)
    inst.wait_for("kiln-init: ready")
    assert open(inst.path("/run/kiln/meta/public-keys/0/openssh-key")).read() == line
    assert inst.stop()[0] == 0
    inst = boot(root, ID_A, key=key)
    inst.wait_for("kiln-init: ready")
    assert inst.stop()[0] == 0
    assert (root / "root/.ssh/authorized_keys").read_text() == f"ssh-rsa AAAAkept\n{line}\n"


def test_key_pair_goes_to_the_login_user_the_image_names(root, boot, tmp_path):
    """/etc/kiln/login-user names who logs in: the key lands in that user's home, owned by it,
    ~/.ssh 0700 and authorized_keys 0600; a name /etc/passwd lacks falls back to root."""
    key = tmp_path / "key.pub"
    line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake kiln"
    write(key, line + "\n")
    passwd = (root / "etc/passwd").read_text()
    write(root / "etc/passwd", passwd + "kilnuser:x:1000:1001:Kiln:/home/kilnuser:/bin/sh\n")
    (root / "home/kilnuser").mkdir(parents=True)
    write(root / "etc/kiln/login-user", "kilnuser\n")
    inst = boot(root, ID_A, key=key)
    inst.wait_for("kiln-init: ready")
    assert inst.stop()[0] == 0
    ssh_dir = root / "home/kilnuser/.ssh"
    auth = ssh_dir / "authorized_keys"
    assert auth.read_text() == line + "\n"
    for p, mode in ((ssh_dir, 0o700), (auth, 0o600)):
        st = os.stat(p)
        assert (st.st_uid, st.st_gid, st.st_mode & 0o777) == (1000, 1001, mode), p
    assert not (root / "root/.ssh/authorized_keys").exists()

    write(root / "etc/kiln/login-user", "nobody-here\n")
    inst = boot(root, ID_B, key=key)
    inst.wait_for("kiln-init: ready")
    assert inst.stop()[0] == 0
    assert "login user 'nobody-here' of /etc/kiln/login-user is not in /etc/passwd" in inst.console()
    assert (root / "root/.ssh/authorized_keys").read_text() == line + "\n"


def test_not_pid_1_refuses():
    r = subprocess.run([INIT], capture_output=True, text=True, timeout=10)
    assert r.returncode == 1 and "must run as PID 1" in r.stdout


def test_image_with_cloud_init_leaves_it_user_data_and_key(root, boot, tmp_path):
    """An image declaring /etc/kiln/cloud-init (debian-12): kiln-init runs neither the user data
    nor installs the key pair (cloud-init does both from the metadata service), but still makes
    fresh host keys on a new instance's first boot, records it, and runs rc.d."""
    key = tmp_path / "key.pub"
    line = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeFakeFakeFakeFakeFakeFakeFakeFakeFakeFake kiln"
    write(key, line + "\n")
    ud = tmp_path / "ud"
    write(ud, "#!/bin/sh\necho ran >> /var/tmp/ud-runs\n")
    write(root / "etc/kiln/cloud-init", "# cloud-init configures this image\n")
    write(root / "etc/kiln/rc.d/50-rc", "#!/bin/sh\necho rc-ran >> /var/tmp/rc-runs\n", 0o755)
    fake_host_keys(root)
    inst = boot(root, ID_A, user_data=ud, key=key)
    inst.wait_for("kiln-init: ready")
    assert inst.stop()[0] == 0
    out = inst.console()
    assert "user data and key pair left to cloud-init (/etc/kiln/cloud-init)" in out, out
    assert not (root / "var/tmp/ud-runs").exists()
    assert not (root / "root/.ssh/authorized_keys").exists()
    assert (root / "var/tmp/rc-runs").read_text() == "rc-ran\n"
    assert (root / "var/lib/kiln/instance-id").read_text() == ID_A + "\n"
    assert host_keys(root) == []  # the baked keys are gone (busybox has no ssh-keygen)
    # the same instance again: no first-boot message
    inst = boot(root, ID_A, user_data=ud, key=key)
    inst.wait_for("kiln-init: ready")
    assert inst.stop()[0] == 0
    assert "left to cloud-init" not in inst.console()


def test_debian_12_boots_sshd(boot, tmp_path):
    """The debian-12 image, when built (images/debian-12/build.sh build/images/debian-12.tar):
    fresh host keys, sshd listening, cloud-init's stages run from rc.d in the background. With no
    metadata service here, cloud-init reads a NoCloud seed the test writes (its datasource_list
    replaced): it creates admin (sudo without a password) with the seed's key, runs the user data
    once, and root is refused. test_cloud_init.py does the same through the metadata service."""
    if not os.path.exists(DEBIAN_TAR):
        pytest.skip(f"no debian-12 image at {DEBIAN_TAR}")
    root = tmp_path / "debian"
    root.mkdir()
    subprocess.run(["tar", "-C", str(root), "-xf", DEBIAN_TAR], check=True)
    assert host_keys(root) == []
    assert (root / "etc/kiln/cloud-init").exists(), (
        f"{DEBIAN_TAR} predates cloud-init: rebuild it (KILN_REBUILD=1 make images)")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "id")],
                   check=True)
    pub = (tmp_path / "id.pub").read_text().strip()
    write(root / "etc/cloud/cloud.cfg.d/99_zz_test.cfg", "datasource_list: [NoCloud, None]\n")
    seed = root / "var/lib/cloud/seed/nocloud"
    write(seed / "meta-data", f"instance-id: {ID_A}\nlocal-hostname: debian-test\n"
          f"public-keys:\n  - {pub}\n")
    write(seed / "user-data", "#!/bin/sh\necho ran >> /var/tmp/ud-runs\n")
    inst = boot(root, ID_A)
    inst.wait_for("kiln-init: ready")
    deadline = time.monotonic() + 10
    while "00000000:0016 00000000:0000 0A" not in open(f"/proc/{inst.pid1}/net/tcp").read():
        assert time.monotonic() < deadline, f"sshd is not listening:\n{inst.console()}"
        time.sleep(0.05)
    # sshd starts on fresh Ed25519 and ECDSA keys; the slow RSA key follows in the background
    assert "etc/ssh/ssh_host_ed25519_key" in host_keys(root)
    while len([k for k in host_keys(root) if k.endswith("_key")]) < 3:
        assert time.monotonic() < deadline + 20, f"host keys never completed: {host_keys(root)}"
        time.sleep(0.05)
    inst.wait_for("Cloud-init v. 22.4.2 finished", timeout=120)
    # (/var/lib/cloud/instance is an absolute link, meant for inside)
    assert (root / "var/lib/cloud/instances" / ID_A / "boot-finished").exists()
    assert (root / "var/tmp/ud-runs").read_text() == "ran\n"
    if shutil.which("ssh") and shutil.which("nsenter"):
        def login(who, command):
            return subprocess.run(
                ["nsenter", "-t", str(inst.pid1), "-n", "ssh", "-i", str(tmp_path / "id"),
                 "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                 "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=error",
                 f"{who}@127.0.0.1", command],
                capture_output=True, text=True, timeout=30)
        r = login("admin", "cat /run/kiln/meta/instance-id; echo; sudo -n id -un")
        assert (r.returncode, r.stdout) == (0, f"{ID_A}\nroot\n"), r.stderr
        r = login("root", "true")
        assert r.returncode == 255 and "Permission denied" in r.stderr, r
    assert inst.stop()[0] == 0
    assert "sshd exited" not in inst.console()
    # the next boot of the same instance runs the user data no more
    inst = boot(root, ID_A)
    inst.wait_for("Cloud-init v. 22.4.2 finished", timeout=120)
    assert inst.stop()[0] == 0
    assert (root / "var/tmp/ud-runs").read_text() == "ran\n"
