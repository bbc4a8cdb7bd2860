"""`kiln exec` goes through the daemon: its socket (DATA/run/exec.sock) takes a request signed with
the caller's keys, as an API request, and the caller's stdio; the daemon checks the account and
the instance, runs the command, passes signals on and answers its status. Without a data
directory named, the same request goes to the API's own listener (HTTP Upgrade) and the daemon
relays the command's stdio: every test runs both ways."""
import os
import signal
import stat
import subprocess
import sys
import time

import pytest

from conftest import KILN, kiln, serving

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")

OTHER = {"AWS_ACCESS_KEY_ID": "AKIAOTHEROTHEROTHER1", "AWS_SECRET_ACCESS_KEY": "other-secret-other-secret"}


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """A daemon of this module's own (the last test stops it), an account "other", and a running
    busybox instance of the default account."""
    data = tmp_path_factory.mktemp("exec") / "data"
    kiln("init", "--data", data)
    kiln("account", "create", "other", "--account-id", "222233334444", "--access-key",
         OTHER["AWS_ACCESS_KEY_ID"], "--secret-key", OTHER["AWS_SECRET_ACCESS_KEY"], "--data", data)
    daemon = serving(data)
    e = next(daemon)
    e["daemon"] = daemon
    r = cli(e, "run", "kiln-busybox", "--type", "t2.nano", "--json")
    import json
    e["iid"] = json.loads(r.stdout)[0]["id"]
    yield e
    next(daemon, None)


@pytest.fixture(params=["socket", "api"])
def via(request, env):
    """The transport of the test's kiln exec: the commands of the test use it (env["via"])."""
    env["via"] = request.param
    yield request.param
    env["via"] = "socket"


def environment(e, env=None):
    """KILN_DATA names the daemon's data directory (its socket) only for the socket."""
    full = dict(os.environ, KILN_ENDPOINT=e["url"], **(env or {}))
    full.pop("KILN_DATA", None)
    if e.get("via", "socket") == "socket":
        full["KILN_DATA"] = e["data"]
    return full


def credentials(e, full):
    """Through the API, as from another machine: the keys of the data directory's credentials
    file, named as the aws CLI names one."""
    if e.get("via", "socket") == "api":
        full.setdefault("AWS_SHARED_CREDENTIALS_FILE", os.path.join(e["data"], "credentials"))


def cli(e, *args, check=True, env=None, **kw):
    full = environment(e, env)
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE",
                "AWS_REGION", "AWS_DEFAULT_REGION"):
        if var not in (env or {}):
            full.pop(var, None)
    credentials(e, full)
    r = subprocess.run([KILN, *args], capture_output=True, text=True, env=full, timeout=60, **kw)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def popen(e, *args):
    full = environment(e)
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        full.pop(var, None)
    credentials(e, full)
    return subprocess.Popen([KILN, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full)


def test_socket_is_roots_only(env):
    st = os.stat(os.path.join(env["data"], "run", "exec.sock"))
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0


def test_only_root_peers(env):
    """Even with the socket opened to everyone, a peer that is not root is refused (SO_PEERCRED)."""
    run = os.path.join(env["data"], "run")
    script = ("import os, socket, sys; os.chdir(sys.argv[1]); os.setgid(65534); os.setuid(65534); "
              "s = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET); s.connect('exec.sock'); "
              "print(s.recv(1000).decode(), end='')")
    mode = stat.S_IMODE(os.stat(run).st_mode)
    os.chmod(run, 0o711)
    os.chmod(os.path.join(run, "exec.sock"), 0o666)
    try:
        r = subprocess.run([sys.executable, "-c", script, run], capture_output=True, text=True, timeout=30)
    finally:
        os.chmod(os.path.join(run, "exec.sock"), 0o600)
        os.chmod(run, mode)
    assert r.stdout == "error AuthFailure: only root on the daemon's host runs commands in instances\n", r.stderr


def test_output_and_exit_status(env, via):
    r = cli(env, "exec", env["iid"], "--", "sh", "-c", "echo out; echo err >&2; hostname; exit 3", check=False)
    assert r.returncode == 3, r.stderr
    assert r.stdout.splitlines()[0] == "out" and r.stderr == "err\n"
    assert r.stdout.splitlines()[1].startswith("ip-172-31-")
    # without "--" too; a command that is not there is 127, as in a shell
    assert cli(env, "exec", env["iid"], "true").returncode == 0
    r = cli(env, "exec", env["iid"], "--", "no-such-command", check=False)
    assert r.returncode == 127 and "no-such-command" in r.stderr


def test_stdin_is_passed(env, via):
    r = cli(env, "exec", env["iid"], "--", "cat", input="data from the caller\n")
    assert r.stdout == "data from the caller\n"
    r = cli(env, "exec", env["iid"], "--", "sh", "-c", "wc -c", input="x" * 300000)
    assert r.stdout.strip() == "300000"


def test_long_commands_and_closed_stdin(env, via):
    args = ["x" * 1000] * 100  # 100 kB of arguments
    r = cli(env, "exec", env["iid"], "--", "sh", "-c", 'echo $#', "sh", *args)
    assert r.stdout == "100\n"
    r = cli(env, "exec", env["iid"], "--", "echo", *(["x" * 1000] * 200), check=False)
    assert r.returncode == 1 and r.stderr.startswith("kiln: the command is too long"), r.stderr
    # a closed stdin is /dev/null for the command
    full = environment(env)
    credentials(env, full)
    r = subprocess.run(f"exec 0<&-; {KILN} exec {env['iid']} -- cat; echo rc=$?", shell=True,
                       capture_output=True, text=True, env=full, timeout=60)
    assert r.stdout == "rc=0\n", r.stderr


def test_another_account_gets_not_found_and_nothing_runs(env, via):
    iid = env["iid"]
    r = cli(env, "exec", iid, "--", "touch", "/root/pwned", check=False, env=OTHER)
    assert r.returncode == 1 and r.stderr == (
        f"kiln: InvalidInstanceID.NotFound: The instance ID '{iid}' does not exist\n"), r.stderr
    # the other account's keys from a profile (options come before the instance id) of the credentials file, as the CLI takes them
    creds = os.path.join(env["data"], "other-credentials")
    with open(creds, "w") as f:
        f.write(f"[other]\naws_access_key_id = {OTHER['AWS_ACCESS_KEY_ID']}\n"
                f"aws_secret_access_key = {OTHER['AWS_SECRET_ACCESS_KEY']}\n")
    r = cli(env, "exec", "--profile", "other", iid, "--", "touch", "/root/pwned", check=False,
            env={"AWS_SHARED_CREDENTIALS_FILE": creds})
    assert r.returncode == 1 and "InvalidInstanceID.NotFound" in r.stderr
    # a wrong secret is refused as the API refuses it
    r = cli(env, "exec", iid, "--", "touch", "/root/pwned", check=False,
            env={"AWS_ACCESS_KEY_ID": OTHER["AWS_ACCESS_KEY_ID"], "AWS_SECRET_ACCESS_KEY": "wrong"})
    assert r.returncode == 1 and r.stderr.startswith("kiln: SignatureDoesNotMatch: ")
    # another region is another world
    r = cli(env, "exec", "--region", "eu-west-1", iid, "--", "touch", "/root/pwned", check=False)
    assert r.returncode == 1 and "InvalidInstanceID.NotFound" in r.stderr
    r = cli(env, "exec", "i-0123456789abcdef0", "--", "true", check=False)
    assert r.returncode == 1 and "InvalidInstanceID.NotFound" in r.stderr
    r = cli(env, "exec", "vol-0123456789abcdef0", "--", "true", check=False)
    assert r.returncode == 1 and r.stderr.startswith("kiln: InvalidInstanceID.Malformed: ")
    assert cli(env, "exec", iid, "--", "test", "-e", "/root/pwned", check=False).returncode == 1


def test_sigint_ends_the_command(env, via):
    iid = env["iid"]
    p = popen(env, "exec", iid, "--", "sh", "-c", "echo started; exec sleep 100")
    assert p.stdout.readline() == "started\n"
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=20) == 128 + signal.SIGINT
    ps = cli(env, "exec", iid, "--", "ps", "-o", "args").stdout
    assert "sleep 100" not in ps
    # SIGTERM too, to a whole pipeline (the command's process group)
    p = popen(env, "exec", iid, "--", "sh", "-c", "sleep 101 | sleep 102 & echo started; wait")
    assert p.stdout.readline() == "started\n"
    time.sleep(0.3)
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=20) == 128 + signal.SIGTERM
    ps = cli(env, "exec", iid, "--", "ps", "-o", "args").stdout
    assert "sleep 101" not in ps and "sleep 102" not in ps


def test_stopped_instance_is_refused(env, via):
    r = cli(env, "run", "kiln-busybox", "--type", "t2.nano", "--json")
    import json
    iid = json.loads(r.stdout)[0]["id"]
    cli(env, "stop", iid, "--wait")
    r = cli(env, "exec", iid, "--", "true", check=False)
    assert r.returncode == 1 and r.stderr.startswith("kiln: IncorrectInstanceState: "), r.stderr
    cli(env, "rm", iid, "--wait")


def test_without_the_daemon_it_fails(env):
    """Last: stops the module's daemon. A command still running gets SIGHUP; then `kiln exec`
    no longer reaches anything, and does not go around the daemon."""
    p = popen(env, "exec", env["iid"], "--", "sh", "-c", "echo started; exec sleep 103")
    assert p.stdout.readline() == "started\n"
    env["via"] = "api"
    q = popen(env, "exec", env["iid"], "--", "sh", "-c", "echo started; exec sleep 104")
    env["via"] = "socket"
    assert q.stdout.readline() == "started\n"
    next(env["daemon"], None)  # stops the daemon (and its instances)
    assert p.wait(timeout=30) == 128 + signal.SIGHUP
    assert q.wait(timeout=30) == 128 + signal.SIGHUP
    sock = os.path.join(env["data"], "run", "exec.sock")
    assert not os.path.exists(sock)
    r = cli(env, "exec", env["iid"], "--", "true", check=False)
    assert r.returncode == 1 and r.stderr == (
        f"kiln: cannot reach the daemon at {sock} (is `kiln serve` running?): No such file or directory\n"), r.stderr
    env["via"] = "api"
    r = cli(env, "exec", env["iid"], "--", "true", check=False)
    env["via"] = "socket"
    assert r.returncode == 1 and r.stderr.startswith(f"kiln: cannot reach {env['url']}"), r.stderr
