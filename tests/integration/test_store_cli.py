"""The `kiln store` command as an operator uses it: round trips, listings, clear errors; on a
directory and on S3 (Ceph RGW, skipped with the reason where it cannot start)."""
import json

import pytest

from conftest import CHUNK, files_equal, kiln, new_s3_store, write_volume


@pytest.fixture(params=["dir", "s3"])
def store(request, tmp_path):
    if request.param == "s3":
        return new_s3_store(request.getfixturevalue("ceph"))
    d = tmp_path / "store"
    kiln("store", "init", d)
    return d


def test_snapshot_restore_round_trip(store, tmp):
    vol = tmp / "vol.img"
    write_volume(vol, 64 * CHUNK + 4096, [0, 3, 4, 63, 64])
    snap = kiln("store", "snapshot", store, vol).stdout.strip()
    assert snap.startswith("snap-") and len(snap) == 22
    out = tmp / "out.img"
    kiln("store", "restore", store, snap, out)
    assert files_equal(vol, out)
    # holes stay holes: the restored file allocates about what the volume does
    assert out.stat().st_blocks <= vol.stat().st_blocks + 64


def test_incremental_stores_only_changes(store, tmp):
    vol = tmp / "vol.img"
    write_volume(vol, 32 * CHUNK, range(32), seed=1)
    s1 = kiln("store", "snapshot", store, vol).stdout.strip()
    write_volume_chunk = open(vol, "r+b")
    write_volume_chunk.seek(7 * CHUNK + 100)
    write_volume_chunk.write(b"changed")
    write_volume_chunk.close()
    s2 = kiln("store", "snapshot", store, vol, "--parent", s1).stdout.strip()
    st = json.loads(kiln("store", "stats", store, "--json").stdout)
    by_id = {s["id"]: s for s in st["snapshots"]}
    assert by_id[s2]["parent"] == s1
    assert st["total"]["unique_chunks"] == 33
    assert 0 < by_id[s2]["new_bytes"] <= CHUNK + 1024
    ls = json.loads(kiln("store", "ls", store, "--json").stdout)
    assert [s["id"] for s in ls] == [s1, s2]


def test_errors_are_one_clear_line(store, tmp):
    cases = [
        (["store", "snapshot", store, tmp / "missing.img"], "cannot open volume"),
        (["store", "snapshot", tmp, tmp / "missing.img"], "is not a kiln store"),
        (["store", "restore", store, "snap-00000000000000000", tmp / "o"], "not found"),
        (["store", "restore", store, "bogus", tmp / "o"], "invalid snapshot id"),
        (["store", "delete", store, "snap-00000000000000000"], "not found"),
    ]
    for args, words in cases:
        r = kiln(*args, check=False)
        assert r.returncode == 1, (args, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("kiln: ") and words in lines[0], r.stderr
    assert not (tmp / "o").exists()
    r = kiln("store", "snapshot", store, check=False)
    assert r.returncode == 2 and "usage:" in r.stderr
