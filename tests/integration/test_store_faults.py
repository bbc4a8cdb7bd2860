"""What `kiln store` does with bad input, a full disk, damaged packs and concurrent writers:
one clear error, and a store that is left exactly as it was (or still sound)."""
import os
import random
import subprocess

import pytest

from conftest import (CHUNK, KILN, THREADS_ENV, assert_no_orphans, assert_restores,
                      assert_verify_ok, chunk_hashes, files_equal, kiln, need_root,
                      random_volume, read_pack_footer, snapshot, snapshot_ids, store_files,
                      write_volume)


def store_state(store):
    """Every file of the store with its size, to show a failed command changed nothing."""
    state = {}
    for sub in ("packs", "index", "snaps"):
        for name in os.listdir(os.path.join(store, sub)):
            state[f"{sub}/{name}"] = os.path.getsize(os.path.join(store, sub, name))
    return state


def assert_one_error(r, *words):
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kiln: "), r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])
    assert r.stdout == ""
    return lines[0]


@pytest.fixture
def populated(store, tmp):
    """A store with one snapshot S0 of a 16-chunk volume."""
    vol = tmp / "vol0.img"
    write_volume(vol, 16 * CHUNK, range(12), seed=5)
    s0 = snapshot(store, vol)
    return store, vol, s0


# ---- bad input ----

def test_missing_volume_changes_nothing(populated, tmp):
    store, vol, s0 = populated
    before = store_state(store)
    r = kiln("store", "snapshot", store, tmp / "nope.img", check=False)
    assert_one_error(r, "cannot open volume", "nope.img", "No such file or directory")
    assert store_state(store) == before
    assert snapshot_ids(store) == {s0}


def test_directory_as_volume_is_refused(populated, tmp):
    store, vol, s0 = populated
    (tmp / "adir").mkdir()
    before = store_state(store)
    r = kiln("store", "snapshot", store, tmp / "adir", check=False)
    assert_one_error(r, "adir", "is not a file or block device")
    assert store_state(store) == before
    assert snapshot_ids(store) == {s0}


def test_fifo_as_volume_is_refused_promptly(populated, tmp):
    """A FIFO is no volume: kiln must say so instead of waiting forever for a writer."""
    store, vol, s0 = populated
    fifo = tmp / "pipe"
    os.mkfifo(fifo)
    before = store_state(store)
    try:
        r = kiln("store", "snapshot", store, fifo, check=False, timeout=5)
    except subprocess.TimeoutExpired:
        pytest.fail("kiln store snapshot with a FIFO as volume hung (no writer on the FIFO)")
    assert_one_error(r, "pipe", "is not a file or block device")
    assert store_state(store) == before


def test_unknown_parent_is_refused(populated, tmp):
    store, vol, s0 = populated
    before = store_state(store)
    missing = "snap-" + "0" * 17
    r = kiln("store", "snapshot", store, vol, "--parent", missing, check=False)
    assert_one_error(r, missing, "not found")
    r = kiln("store", "snapshot", store, vol, "--parent", "snap-bogus", check=False)
    assert_one_error(r, "snap-bogus", "invalid snapshot id")
    assert store_state(store) == before
    assert snapshot_ids(store) == {s0}


@pytest.mark.parametrize("contents", ["empty", "files"])
def test_directory_that_is_not_a_store(tmp, contents):
    d = tmp / "notastore"
    d.mkdir()
    if contents == "files":
        (d / "packs").mkdir()
        (d / "data.txt").write_text("not kiln\n")
    vol = tmp / "v.img"
    write_volume(vol, 4 * CHUNK, [0])
    before = sorted(os.listdir(d))
    for args in (["snapshot", d, vol], ["restore", d, "snap-" + "0" * 17, tmp / "out"],
                 ["delete", d, "snap-" + "0" * 17], ["ls", d], ["gc", d], ["verify", d],
                 ["stats", d]):
        r = kiln("store", *args, check=False)
        assert_one_error(r, "is not a kiln store")
        assert sorted(os.listdir(d)) == before, args  # no lock file, nothing created
    assert not (tmp / "out").exists()


def test_shadow_of_another_size_is_refused(populated, tmp):
    store, vol, s0 = populated
    before = store_state(store)
    for size in (vol.stat().st_size + CHUNK, vol.stat().st_size - 4096):
        shadow = tmp / "shadow.img"
        with open(shadow, "wb") as f:
            f.truncate(size)
        r = kiln("store", "snapshot", store, vol, "--parent", s0, "--shadow", shadow, check=False)
        assert_one_error(r, "shadow", str(size), str(vol.stat().st_size))
        shadow.unlink()
    assert store_state(store) == before
    assert snapshot_ids(store) == {s0}


@pytest.fixture
def small_fs(tmp):
    """A 6 MiB tmpfs, unmounted at the end."""
    need_root()
    mnt = tmp / "small"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=6m", "tmpfs", str(mnt)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {r.stderr.strip()}")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=True)


def test_full_disk_leaves_the_store_unchanged(small_fs, tmp):
    store = small_fs / "store"
    kiln("store", "init", store)
    vol0 = tmp / "vol0.img"
    write_volume(vol0, 16 * CHUNK, range(8), seed=7)  # 1 MiB
    s0 = snapshot(store, vol0)
    before = store_state(store)
    free_before = os.statvfs(small_fs).f_bavail

    big = tmp / "big.img"
    random_volume(big, 40 << 20, seed=8)
    r = kiln("store", "snapshot", store, big, env=THREADS_ENV, check=False)
    assert_one_error(r, "No space left on device")

    assert snapshot_ids(store) == {s0}
    assert_verify_ok(store)
    assert_restores(store, s0, vol0, tmp / "out.img")
    assert_no_orphans(store)
    assert store_state(store) == before
    # the partial pack's space came back: a snapshot that fits still fits
    assert os.statvfs(small_fs).f_bavail == free_before
    vol1 = tmp / "vol1.img"
    write_volume(vol1, 16 * CHUNK, range(8), seed=9)
    s1 = snapshot(store, vol1)
    assert snapshot_ids(store) == {s0, s1}
    assert_verify_ok(store)
    assert_restores(store, s1, vol1, tmp / "out.img")


# ---- damaged packs ----

def compressible_volume(path, nchunks, seed):
    """Chunks of random bytes from a 16-letter alphabet: unique, and zstd halves them."""
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        for _ in range(nchunks):
            f.write(bytes(rnd.choices(b"abcdefghijklmnop", k=CHUNK)))


@pytest.mark.parametrize("record", ["raw", "zstd"])
def test_damaged_record_is_named_and_blocks_only_its_snapshots(store, tmp, record):
    # A: 8 chunks; its pack's first record is the chunk to damage.
    vol_a = tmp / "a.img"
    if record == "raw":
        write_volume(vol_a, 8 * CHUNK, range(8), seed=41)
    else:
        compressible_volume(vol_a, 8, seed=41)
    sa = snapshot(store, vol_a)
    (pack_a,) = store_files(store, "packs", ".pack")
    first = next(e for e in read_pack_footer(store / "packs" / f"{pack_a}.pack") if e["off"] == 16)
    victim = first["hash"]
    assert first["clen"] > 100
    assert first["flags"] == (0 if record == "raw" else 1), first  # stored as is / zstd
    a_hashes = chunk_hashes(vol_a)
    (victim_off_a,) = [o for o, h in a_hashes.items() if h == victim]
    data = open(vol_a, "rb").read()[victim_off_a:victim_off_a + CHUNK]

    # B shares the victim (at another offset) and one other chunk of A; C shares nothing.
    vol_b = tmp / "b.img"
    write_volume(vol_b, 12 * CHUNK, [0, 1, 2], seed=42)
    other_off_a = next(o for o in a_hashes if o != victim_off_a)
    with open(vol_b, "r+b") as f:
        f.seek(5 * CHUNK)
        f.write(data)
        f.seek(9 * CHUNK)
        f.write(open(vol_a, "rb").read()[other_off_a:other_off_a + CHUNK])
    sb = snapshot(store, vol_b)
    vol_c = tmp / "c.img"
    write_volume(vol_c, 6 * CHUNK, [0, 2, 5], seed=43)
    sc = snapshot(store, vol_c)
    assert victim in chunk_hashes(vol_b).values() and victim not in chunk_hashes(vol_c).values()
    assert_verify_ok(store)

    with open(store / "packs" / f"{pack_a}.pack", "r+b") as f:
        f.seek(16 + 100)
        b = f.read(1)
        f.seek(16 + 100)
        f.write(bytes([b[0] ^ 0x01]))

    r = kiln("store", "verify", store, check=False)
    assert r.returncode == 1, r.stdout
    lines = r.stdout.strip().splitlines()
    damaged = [l for l in lines if l.startswith("damaged chunk ")]
    assert len(damaged) == 1, lines
    assert damaged[0].startswith(f"damaged chunk {victim} in pack {pack_a} at offset 16: "), damaged
    uses = sorted(l for l in lines if " uses damaged chunk " in l)
    assert uses == sorted([
        f"snapshot {sa} uses damaged chunk {victim} at volume offset {victim_off_a}",
        f"snapshot {sb} uses damaged chunk {victim} at volume offset {5 * CHUNK}",
    ]), lines
    assert len(lines) == 3, lines  # nothing else is reported
    assert r.stderr.strip().splitlines() == [f"kiln: store '{store}' has 3 problems"], r.stderr

    # restoring A fails with one line, leaves no file and no temp file behind
    outdir = tmp / "out"
    outdir.mkdir()
    r = kiln("store", "restore", store, sa, outdir / "a.img", check=False)
    assert_one_error(r, sa, victim, "damaged")
    assert os.listdir(outdir) == []
    # restoring B over an existing file fails and keeps the file as it was
    keep = outdir / "b.img"
    keep.write_bytes(b"precious data\n")
    r = kiln("store", "restore", store, sb, keep, check=False)
    assert_one_error(r, sb, victim, "damaged")
    assert keep.read_bytes() == b"precious data\n"
    assert os.listdir(outdir) == ["b.img"]
    # C does not use the damaged chunk
    kiln("store", "restore", store, sc, outdir / "c.img")
    assert files_equal(vol_c, outdir / "c.img")


# ---- concurrent writers ----

def test_two_snapshots_at_once(store, tmp):
    v1, v2 = tmp / "v1.img", tmp / "v2.img"
    random_volume(v1, 48 << 20, seed=51)
    random_volume(v2, 48 << 20, seed=52)
    # the middle 24 MiB of both is the same, at different volume offsets
    common = tmp / "common.img"
    random_volume(common, 24 << 20, seed=53)
    blob = common.read_bytes()
    with open(v1, "r+b") as f:
        f.seek(8 << 20)
        f.write(blob)
    with open(v2, "r+b") as f:
        f.seek(16 << 20)
        f.write(blob)
    env = dict(os.environ, **THREADS_ENV)
    env.pop("KILN_FAULT", None)
    procs = [subprocess.Popen([KILN, "store", "snapshot", str(store), str(v)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for v in (v1, v2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    s1, s2 = (o.strip() for o, _ in outs)
    assert s1 != s2 and snapshot_ids(store) == {s1, s2}
    assert_verify_ok(store)
    assert_restores(store, s1, v1, tmp / "out.img")
    assert_restores(store, s2, v2, tmp / "out.img")
    # whatever both stored twice, gc sorts out: delete one, collect, the other is whole
    kiln("store", "gc", store)
    assert_verify_ok(store)
    kiln("store", "delete", store, s1)
    kiln("store", "gc", store)
    assert_verify_ok(store)
    assert_no_orphans(store)
    assert snapshot_ids(store) == {s2}
    assert_restores(store, s2, v2, tmp / "out.img")
