#!/usr/bin/python3
"""One timed launch sample for bench/launch (stdlib only). Prints one JSON object on stdout.

usage:
  sample.py kiln    --kiln BIN --pool DIR --base FILE --run-dir DIR --address IP/P --gateway IP
                    --bridge NAME --user-data FILE [--ssh] [--type T]
  sample.py nspawn  --root DIR | --base FILE --pool DIR --mnt DIR   --user-data FILE
                    [--ssh --ssh-script FILE --bridge NAME --address IP/P]
  sample.py cpmount --base FILE --scratch FILE --mnt DIR --user-data FILE
  sample.py keygen  --root DIR

Times are milliseconds from t0 (just before the first command of the launch):
  t_prep   the volume exists (kiln pool clone / cp --reflink / cp --sparse)
  t_ready  kiln runtime run returned / the volume is mounted (nspawn on a volume, cp + mount)
  t_netup  nspawn --ssh only: the container's script printed KB-NET-UP (its network is up)
  t_line   the user-data line KILN-UD-FIRST-LINE is complete in the console log / on stdout
  t_ssh    a TCP connection to ADDRESS:22 received the "SSH-2.0" banner
  t_stop   (untimed part) how long the stop took: kiln runtime stop / nspawn ending
Every sample also checks its own cleanup and the count of user-data lines; anything wrong is
listed in "problems" (and "ok" is false), with the commands and their output.
"""
import argparse
import errno
import glob
import json
import os
import secrets
import select
import shutil
import signal
import socket
import subprocess
import sys
import time

LINE = b"KILN-UD-FIRST-LINE"
POLL_S = 0.001           # console-log poll interval (the file is polled; pipes and sockets wake us)
PROBE_EVERY_MS = 3.0     # one SSH connection attempt every 3 ms at most
TIMEOUT_MS = 30000


def now_ms():
    return time.perf_counter_ns() / 1e6


def count_lines(buf):
    return sum(1 for l in buf.split(b"\n") if l.rstrip(b"\r") == LINE)


def has_line(buf):
    return (b"\n" + LINE + b"\n") in (b"\n" + buf)


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def show(cmd, r):
    return "`%s` -> rc %d, stdout %r, stderr %r" % (
        " ".join(cmd), r.returncode, r.stdout.decode(errors="replace")[-400:],
        r.stderr.decode(errors="replace")[-400:])


def loops_of(path):
    """Loop devices whose backing file is path (or 'path (deleted)')."""
    out = []
    for bf in glob.glob("/sys/block/loop*/loop/backing_file"):
        try:
            b = open(bf).read().strip()
        except OSError:
            continue
        if b == path or b == path + " (deleted)":
            out.append("/dev/%s -> %s" % (bf.split("/")[3], b))
    return out


def mounts_matching(*needles):
    out = []
    try:
        for l in open("/proc/self/mountinfo"):
            if any(n in l for n in needles):
                out.append(l.strip())
    except OSError:
        pass
    return out


class Prober:
    """Connects to addr:22 through dev only (SO_BINDTODEVICE: no packet can take another route),
    one attempt in flight at a time, until the SSH banner arrives."""

    def __init__(self, addr, dev):
        self.addr, self.dev = addr, dev.encode()
        self.sock = None
        self.state = None
        self.next_try = 0.0
        self.started = 0.0
        self.buf = b""
        self.done_at = None
        self.attempts = 0
        self.errors = {}
        self.banner = ""

    def _fail(self, t, what):
        self.errors[what] = self.errors.get(what, 0) + 1
        if self.sock:
            self.sock.close()
        self.sock, self.state, self.buf = None, None, b""
        self.next_try = t + PROBE_EVERY_MS

    def waitable(self):
        if self.sock is None:
            return [], []
        return ([self.sock], []) if self.state == "connected" else ([], [self.sock])

    def step(self, t):
        if self.done_at is not None:
            return
        if self.sock is None:
            if t < self.next_try:
                return
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM | socket.SOCK_NONBLOCK)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, self.dev)
            self.attempts += 1
            self.started = t
            e = s.connect_ex((self.addr, 22))
            self.sock = s
            if e == 0:
                self.state = "connected"
            elif e == errno.EINPROGRESS:
                self.state = "connecting"
            else:
                self._fail(t, errno.errorcode.get(e, str(e)))
                return
        if self.state == "connecting":
            _, w, _ = select.select([], [self.sock], [], 0)
            if w:
                e = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if e:
                    self._fail(t, errno.errorcode.get(e, str(e)))
                    return
                self.state = "connected"
            elif t - self.started > 1000:
                self._fail(t, "connect-timeout")
                return
        if self.state == "connected":
            r, _, _ = select.select([self.sock], [], [], 0)
            if r:
                try:
                    d = self.sock.recv(256)
                except OSError as ex:
                    self._fail(t, errno.errorcode.get(ex.errno, str(ex.errno)))
                    return
                if not d:
                    self._fail(t, "closed-before-banner")
                    return
                self.buf += d
                if b"\n" in self.buf:
                    if self.buf.startswith(b"SSH-2.0"):
                        self.done_at = t
                        self.banner = self.buf.split(b"\n")[0].decode(errors="replace").strip()
                        self.sock.close()
                        self.sock = None
                    else:
                        self._fail(t, "not-ssh")
            elif t - self.started > 5000:
                self._fail(t, "banner-timeout")

    def close(self):
        if self.sock:
            self.sock.close()
            self.sock = None


def result(tool, **kw):
    d = {"tool": tool, "t_prep": None, "t_ready": None, "t_netup": None, "t_line": None,
         "t_ssh": None, "t_stop": None, "lines": None, "ok": False, "problems": []}
    d.update(kw)
    return d


# ------------------------------------------------------------------------------------------ kiln
def kiln_cgroups(iid):
    own = set()
    for l in open("/proc/self/cgroup"):
        p = l.strip().split(":", 2)[2]
        own.add("" if p == "/" else p)
    out = []
    for top in glob.glob("/sys/fs/cgroup/*"):
        for o in own:
            d = "%s%s/kiln/%s" % (top, o, iid)
            if os.path.isdir(d):
                out.append(d)
    return out


def kiln_procs(iid):
    out = []
    for c in glob.glob("/proc/[0-9]*/cmdline"):
        try:
            s = open(c, "rb").read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if iid in s and "sample.py" not in s:
            out.append("%s: %s" % (c.split("/")[2], s.strip()))
    return out


def sample_kiln(a):
    iid = "i-" + secrets.token_hex(9)[:17]
    name = "bench-%s.img" % iid
    vol = os.path.join(a.pool, name)
    con = os.path.join(a.run_dir, iid, "console.log")
    ip = a.address.split("/")[0]
    R = result("kiln", id=iid, address=ip)
    P = R["problems"]
    K = a.kiln

    # a fresh address per sample; forget any neighbour entry for it all the same (untimed)
    subprocess.run(["ip", "neigh", "flush", "to", ip], stderr=subprocess.DEVNULL)
    # ------------------------------------------------------------------ timed
    t0 = now_ms()
    clone = [K, "pool", "clone", a.pool, a.base, name]
    r = run(clone)
    R["t_prep"] = now_ms() - t0
    if r.returncode != 0:
        P.append("clone failed: " + show(clone, r))
        return R
    runcmd = [K, "runtime", "run", a.run_dir, "--id", iid, "--volume", vol, "--address", a.address,
              "--gateway", a.gateway, "--bridge", a.bridge, "--type", a.type, "--user-data", a.user_data]
    proc = subprocess.Popen(runcmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    probe = Prober(ip, a.bridge) if a.ssh else None
    buf = b""
    fd = None
    rc = None
    try:
        while True:
            t = now_ms()
            if rc is None:
                rc = proc.poll()
                if rc is not None:
                    R["t_ready"] = t - t0
                    out, err = proc.communicate()
                    if rc != 0 or out.decode().strip() != iid:
                        P.append("run failed: `%s` -> rc %d, stdout %r, stderr %r" % (
                            " ".join(runcmd), rc, out.decode(errors="replace"), err.decode(errors="replace")))
                        break
            if R["t_line"] is None:
                if fd is None:
                    try:
                        fd = os.open(con, os.O_RDONLY | os.O_CLOEXEC)
                    except FileNotFoundError:
                        pass
                if fd is not None:
                    while True:
                        d = os.read(fd, 65536)
                        if not d:
                            break
                        buf += d
                    if has_line(buf):
                        R["t_line"] = now_ms() - t0
            # the probe starts only once `kiln runtime run` returned: the network is up then
            if probe and rc == 0:
                probe.step(now_ms())
                if probe.done_at is not None and R["t_ssh"] is None:
                    R["t_ssh"] = probe.done_at - t0
            if rc is not None and R["t_line"] is not None and (not probe or R["t_ssh"] is not None):
                break
            if t - t0 > TIMEOUT_MS:
                P.append("timeout after %d ms: run rc=%s, line=%s, ssh=%s" % (
                    TIMEOUT_MS, rc, R["t_line"], R["t_ssh"]))
                if rc is None:
                    proc.kill()
                    proc.wait()
                break
            rl, wl = probe.waitable() if probe and rc == 0 else ([], [])
            select.select(rl, wl, [], POLL_S)
    finally:
        if probe:
            probe.close()
            R["ssh_attempts"] = probe.attempts
            R["ssh_errors"] = probe.errors
            R["ssh_banner"] = probe.banner
    # ------------------------------------------------------------------ untimed: checks, cleanup
    if rc == 0:
        # let the user data finish ("kiln-init: ready" follows it) before counting its lines
        deadline = now_ms() + 10000
        while b"kiln-init: ready" not in buf and now_ms() < deadline:
            time.sleep(0.005)
            if fd is None:
                try:
                    fd = os.open(con, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue
            while True:
                d = os.read(fd, 65536)
                if not d:
                    break
                buf += d
        if b"kiln-init: ready" not in buf:
            P.append("console never said 'kiln-init: ready' within 10 s")
        status_cmd = [K, "runtime", "status", a.run_dir, iid]
        st = run(status_cmd)
        if st.stdout.decode().strip() != "running":
            P.append("before stop: " + show(status_cmd, st))
        stop = [K, "runtime", "stop", a.run_dir, iid]
        ts = now_ms()
        r = run(stop)
        R["t_stop"] = now_ms() - ts
        if r.returncode != 0:
            P.append("stop failed: " + show(stop, r))
            r2 = run(stop + ["--force"])
            P.append("forced stop: " + show(stop + ["--force"], r2))
        st = run(status_cmd)
        if st.stdout.decode().strip() != "stopped":
            P.append("after stop: " + show(status_cmd, st))
        left = loops_of(vol)
        if left:
            P.append("right after `kiln runtime stop` returned, loop devices still hold the volume: %s" % left)
            for _ in range(40):
                time.sleep(0.05)
                if not loops_of(vol):
                    break
            P.append("2 s later: %s" % (loops_of(vol) or "released"))
        for what, items in (("mounts in the host namespace", mounts_matching(vol, os.path.join(a.run_dir, iid))),
                            ("cgroups", kiln_cgroups(iid)),
                            ("processes", kiln_procs(iid))):
            if items:
                P.append("left after stop: %s: %s" % (what, items))
        # The host end of the veth goes when the kernel tears the instance's network namespace
        # down, which it does asynchronously after the last process ended: allow it 5 s.
        veth = "/sys/class/net/kv" + iid[2:14]
        tv = now_ms()
        while os.path.exists(veth) and now_ms() - tv < 5000:
            time.sleep(0.002)
        R["veth_gone_ms"] = round(now_ms() - tv, 1)
        if os.path.exists(veth):
            P.append("host veth %s still exists 5 s after `kiln runtime stop` returned" % os.path.basename(veth))
    if fd is not None:
        os.close(fd)
    try:
        full = open(con, "rb").read()
    except OSError as ex:
        full = buf
        if rc == 0:
            P.append("cannot read the console log after stop: %s" % ex)
    R["lines"] = count_lines(full)
    if rc == 0 and R["lines"] != 1:
        P.append("user-data line appears %d times in the console log: %r" % (R["lines"], full.decode(errors="replace")[-1500:]))
    try:
        shim_log = open(os.path.join(a.run_dir, iid, "shim.log"), "rb").read().decode(errors="replace")
    except OSError:
        shim_log = ""
    if shim_log.strip():
        R["shim_log"] = shim_log[-1000:]
    rm = [K, "runtime", "rm", a.run_dir, iid]
    r = run(rm)
    if r.returncode != 0:
        P.append("rm failed: " + show(rm, r))
    if os.path.exists(os.path.join(a.run_dir, iid)):
        P.append("instance directory left after `kiln runtime rm`: %s" % os.listdir(os.path.join(a.run_dir, iid)))
    prm = [K, "pool", "rm", a.pool, name]
    r = run(prm)
    if r.returncode != 0:
        P.append("pool rm failed: " + show(prm, r))
    if os.path.exists(vol):
        P.append("volume left after `kiln pool rm`: %s" % vol)
    R["ok"] = not P and R["t_line"] is not None and (not a.ssh or R["t_ssh"] is not None)
    return R


# ---------------------------------------------------------------------------------------- nspawn
def read_pipe(fd, buf):
    try:
        d = os.read(fd, 65536)
    except BlockingIOError:
        return buf, False
    if not d:
        return buf, True
    return buf + d, False


def sample_nspawn(a):
    R = result("nspawn", mode="volume" if a.base else "dir")
    P = R["problems"]
    tag = secrets.token_hex(4)
    machine = "kbl-" + tag
    img = mnt = None
    mounted = False
    if a.ssh:
        subprocess.run(["ip", "neigh", "flush", "to", a.address.split("/")[0]], stderr=subprocess.DEVNULL)
    t0 = now_ms()
    if a.base:
        img = os.path.join(a.pool, "nsp-%s.img" % tag)
        mnt = a.mnt
        cp = ["cp", "--reflink=always", a.base, img]
        r = run(cp)
        R["t_prep"] = now_ms() - t0
        if r.returncode != 0:
            P.append("clone failed: " + show(cp, r))
            return R
        mount = ["mount", "-o", "loop,noatime", img, mnt]
        r = run(mount)
        R["t_ready"] = now_ms() - t0
        if r.returncode != 0:
            P.append("mount failed: " + show(mount, r))
            os.unlink(img)
            return R
        mounted = True
        root = mnt
    else:
        root = a.root
    cmd = ["systemd-nspawn", "--quiet", "--register=no", "--keep-unit", "--pipe", "--machine=" + machine,
           "-D", root, "--bind-ro=%s:/kiln-ud" % a.user_data]
    ip = None
    if a.ssh:
        ip = a.address.split("/")[0]
        cmd += ["--as-pid2", "--network-bridge=" + a.bridge, "--bind-ro=%s:/kiln-ssh" % a.ssh_script,
                "--setenv=KB_ADDR=" + a.address, "/kiln-ssh"]
    else:
        cmd += ["/kiln-ud"]
    errf = open(a.stderr_log, "ab") if a.stderr_log else subprocess.DEVNULL
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errf, stdin=subprocess.DEVNULL)
    os.set_blocking(proc.stdout.fileno(), False)
    probe = None
    buf = b""
    eof = False
    try:
        while True:
            t = now_ms()
            if not eof:
                buf, eof = read_pipe(proc.stdout.fileno(), buf)
            if R["t_line"] is None and has_line(buf):
                R["t_line"] = now_ms() - t0
            if a.ssh and probe is None and (b"\nKB-NET-UP\n" in b"\n" + buf):
                R["t_netup"] = now_ms() - t0
                probe = Prober(ip, a.bridge)
            if probe:
                probe.step(now_ms())
                if probe.done_at is not None and R["t_ssh"] is None:
                    R["t_ssh"] = probe.done_at - t0
            if R["t_line"] is not None and (not a.ssh or R["t_ssh"] is not None):
                break
            if eof and proc.poll() is not None:
                P.append("nspawn ended (rc %d) before the line%s; stdout %r" % (
                    proc.returncode, " and the banner" if a.ssh else "", buf.decode(errors="replace")))
                break
            if t - t0 > TIMEOUT_MS:
                P.append("timeout after %d ms" % TIMEOUT_MS)
                break
            rl, wl = probe.waitable() if probe else ([], [])
            select.select(rl + ([] if eof else [proc.stdout]), wl, [], POLL_S)
    finally:
        if probe:
            probe.close()
            R["ssh_attempts"] = probe.attempts
            R["ssh_errors"] = probe.errors
            R["ssh_banner"] = probe.banner
    ts = now_ms()
    if a.ssh and proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        rest, _ = proc.communicate(timeout=20)
        buf += rest or b""
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        P.append("nspawn did not end within 20 s")
    R["t_stop"] = now_ms() - ts
    if not a.ssh and proc.returncode != 0:
        P.append("nspawn exited with %d" % proc.returncode)
    if a.stderr_log:
        errf.close()
    R["lines"] = count_lines(buf)
    if R["lines"] != 1:
        P.append("user-data line appears %d times on stdout" % R["lines"])
    if mounted:
        r = run(["umount", mnt])
        if r.returncode != 0:
            P.append("umount failed: " + show(["umount", mnt], r))
        for _ in range(100):
            if not loops_of(img):
                break
            time.sleep(0.02)
        if loops_of(img):
            P.append("loop devices left: %s" % loops_of(img))
        os.unlink(img)
    R["ok"] = not P
    return R


# --------------------------------------------------------------------------------------- cpmount
def sample_cpmount(a):
    R = result("cp+mount")
    P = R["problems"]
    mnt = a.mnt
    t0 = now_ms()
    cp = ["cp", "--sparse=always", a.base, a.scratch]
    r = run(cp)
    R["t_prep"] = now_ms() - t0
    if r.returncode != 0:
        P.append("cp failed: " + show(cp, r))
        return R
    mount = ["mount", "-o", "loop,noatime", a.scratch, mnt]
    r = run(mount)
    if r.returncode != 0:
        P.append("mount failed: " + show(mount, r))
        os.unlink(a.scratch)
        return R
    R["t_ready"] = now_ms() - t0
    shutil.copyfile(a.user_data, os.path.join(mnt, "kiln-ud"))
    os.chmod(os.path.join(mnt, "kiln-ud"), 0o755)
    proc = subprocess.Popen(["chroot", mnt, "/kiln-ud"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    os.set_blocking(proc.stdout.fileno(), False)
    buf = b""
    eof = False
    while True:
        buf, eof = read_pipe(proc.stdout.fileno(), buf)
        if has_line(buf):
            R["t_line"] = now_ms() - t0
            break
        if eof:
            P.append("chroot script ended without the line: %r" % buf)
            break
        if now_ms() - t0 > TIMEOUT_MS:
            P.append("timeout")
            break
        select.select([proc.stdout], [], [], POLL_S)
    rest, _ = proc.communicate()
    buf += rest or b""
    R["lines"] = count_lines(buf)
    if R["lines"] != 1:
        P.append("user-data line appears %d times" % R["lines"])
    r = run(["umount", mnt])
    if r.returncode != 0:
        P.append("umount failed: " + show(["umount", mnt], r))
    for _ in range(100):
        if not loops_of(a.scratch):
            break
        time.sleep(0.02)
    if loops_of(a.scratch):
        P.append("loop devices left: %s" % loops_of(a.scratch))
    os.unlink(a.scratch)
    R["ok"] = not P
    return R


# ---------------------------------------------------------------------------------------- keygen
def sample_keygen(a):
    """What kiln-init does before the user data on a Debian first boot: ssh-keygen -A with no keys."""
    R = result("keygen")
    for f in glob.glob(os.path.join(a.root, "etc/ssh/ssh_host_*_key*")):
        os.unlink(f)
    # -A: RSA 3072, ECDSA 256 and Ed25519, as kiln-init runs it; then Ed25519 alone, for scale
    for key, cmd in (("t_line", ["ssh-keygen", "-A"]),
                     ("t_ed25519", ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", "/etc/ssh/kbl-ed25519"])):
        t0 = now_ms()
        r = subprocess.run(["chroot", a.root] + cmd, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
        R[key] = now_ms() - t0
        if r.returncode != 0:
            R["problems"].append("%s failed: %r" % (" ".join(cmd), r.stderr))
    for f in glob.glob(os.path.join(a.root, "etc/ssh/ssh_host_*_key*")) + glob.glob(os.path.join(a.root, "etc/ssh/kbl-ed25519*")):
        os.unlink(f)
    R["ok"] = not R["problems"]
    return R


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("kind", choices=["kiln", "nspawn", "cpmount", "keygen"])
    ap.add_argument("--kiln")
    ap.add_argument("--pool")
    ap.add_argument("--base")
    ap.add_argument("--root")
    ap.add_argument("--mnt")
    ap.add_argument("--scratch")
    ap.add_argument("--run-dir")
    ap.add_argument("--address")
    ap.add_argument("--gateway")
    ap.add_argument("--bridge")
    ap.add_argument("--type", default="t3.micro")
    ap.add_argument("--user-data")
    ap.add_argument("--ssh", action="store_true")
    ap.add_argument("--ssh-script")
    ap.add_argument("--stderr-log")
    ap.add_argument("--label", action="append", default=[], help="KEY=VALUE copied into the output")
    a = ap.parse_args()
    fn = {"kiln": sample_kiln, "nspawn": sample_nspawn, "cpmount": sample_cpmount, "keygen": sample_keygen}[a.kind]
    try:
        R = fn(a)
    except Exception as ex:  # a crash of the harness is recorded, not hidden
        R = result(a.kind, problems=["harness exception: %r" % ex])
    for kv in a.label:
        k, _, v = kv.partition("=")
        R[k] = v
    for k in ("t_prep", "t_ready", "t_netup", "t_line", "t_ssh", "t_stop", "t_ed25519"):
        if R.get(k) is not None:
            R[k] = round(R[k], 3)
    sys.stdout.write(json.dumps(R, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
