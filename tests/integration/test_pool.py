"""Volume pools: a loop-backed XFS pool on the ext4 root, constant-time clones, growth, and the
reflink shadow that makes incremental snapshots read only what changed. Needs root."""
import json
import os
import subprocess

import pytest

from conftest import files_equal, kiln

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="pools need root")


@pytest.fixture
def pool(tmp_path):
    d = tmp_path / "pool"
    out = kiln("pool", "open", d, "--size", "2G").stdout
    assert "reflink clones" in out and "loop-mounted XFS" in out
    yield d
    kiln("pool", "unmount", d, check=False)


def allocated(path):
    return os.stat(path).st_blocks * 512


def pool_used(d):
    st = os.statvfs(d)
    return (st.f_blocks - st.f_bfree) * st.f_frsize


def test_reopen_after_unmount_keeps_volumes(pool, tmp_path):
    kiln("pool", "create", pool, "v.img", "64M")
    kiln("pool", "unmount", pool)
    assert not os.path.exists(pool / "v.img")
    kiln("pool", "open", pool)
    assert os.path.getsize(pool / "v.img") == 64 << 20


def test_clone_shares_blocks_and_is_independent(pool, tmp_path):
    src = tmp_path / "files"
    src.mkdir()
    (src / "data.bin").write_bytes(os.urandom(48 << 20))
    kiln("pool", "create", pool, "base.img", "256M", "--from", src)
    before = pool_used(pool)
    kiln("pool", "clone", pool, pool / "base.img", "clone.img")
    assert pool_used(pool) - before < (2 << 20)  # a reflink, not a 48 MiB copy
    assert files_equal(pool / "base.img", pool / "clone.img")
    with open(pool / "clone.img", "r+b") as f:
        f.seek(100 << 20)
        f.write(b"x" * 4096)
    assert not files_equal(pool / "base.img", pool / "clone.img")
    kiln("pool", "rm", pool, "clone.img")
    assert not os.path.exists(pool / "clone.img")


def test_grow_grows_the_filesystem(pool):
    kiln("pool", "create", pool, "g.img", "64M")
    kiln("pool", "grow", pool, "g.img", "200M")
    assert os.path.getsize(pool / "g.img") == 200 << 20
    out = subprocess.run(["dumpe2fs", "-h", str(pool / "g.img")], capture_output=True, text=True).stdout
    blocks = int(next(l for l in out.splitlines() if l.startswith("Block count:")).split()[-1])
    bsize = int(next(l for l in out.splitlines() if l.startswith("Block size:")).split()[-1])
    assert blocks * bsize == 200 << 20


def test_shadow_gives_the_same_snapshot_as_a_scan(pool, tmp_path):
    store = tmp_path / "store"
    kiln("store", "init", store)
    kiln("pool", "create", pool, "v.img", "128M")
    with open(pool / "v.img", "r+b") as f:
        for i in range(64):
            f.seek(i * (1 << 20) + 8192)
            f.write(os.urandom(8192))
    s0 = kiln("store", "snapshot", store, pool / "v.img").stdout.strip()
    kiln("pool", "shadow", pool, "v.img")
    with open(pool / "v.img", "r+b") as f:
        for off in (3 << 20, 77 << 20, (100 << 20) + 5):
            f.seek(off)
            f.write(os.urandom(4096))
    shadowed = kiln("store", "snapshot", store, pool / "v.img", "--parent", s0, "--shadow",
                    pool / "v.img.shadow").stdout.strip()
    scanned = kiln("store", "snapshot", store, pool / "v.img", "--parent", s0).stdout.strip()
    out = tmp_path / "out.img"
    for snap in (shadowed, scanned):
        kiln("store", "restore", store, snap, out)
        assert files_equal(pool / "v.img", out)
    st = json.loads(kiln("store", "stats", store, "--json").stdout)
    by_id = {s["id"]: s for s in st["snapshots"]}
    assert by_id[shadowed]["chunks"] == by_id[scanned]["chunks"]
    kiln("pool", "rm", pool, "v.img")
    assert not os.path.exists(pool / "v.img.shadow")
