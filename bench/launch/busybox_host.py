"""What the small launch benchmarks share: a busybox image imported into a pool of their own,
on a host that `kiln host up` prepared, and its teardown."""
import contextlib
import os
import shutil
import subprocess

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))


def sh(*args):
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True).stdout


def busybox_root(work):
    """The busybox image's root directory, built once under work."""
    root = os.path.join(work, "root")
    if not os.path.isdir(root):
        sh(os.path.join(REPO, "images", "busybox", "build.sh"), root)
    return root


@contextlib.contextmanager
def busybox_pool(kiln, work, tag, bridge):
    """(run directory, pool) with busybox.img in the pool; everything goes at the end."""
    run, pool = os.path.join(work, f"{tag}-run"), os.path.join(work, f"{tag}-pool")
    sh(kiln, "host", "up")
    sh(kiln, "pool", "open", pool, "--size", "4G")
    try:
        sh(kiln, "image", "import", busybox_root(work), "--pool", pool, "--name", "busybox.img", "--size", "256M")
        yield run, pool
    finally:
        subprocess.run([kiln, "host", "down", "--run", run, "--pool", pool], capture_output=True)
        subprocess.run(["ip", "link", "del", bridge], capture_output=True)


def fresh(work):
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
