"""kill -9 at every step of a snapshot and of gc: the store stays sound, what was committed
restores byte-identical, what was not leaves nothing a later gc cannot clear."""
import json
import os
import random
import re
import shutil
import signal
import subprocess
import time

import pytest

from conftest import (CHUNK, KILN, THREADS_ENV, assert_no_orphans, assert_restores,
                      assert_verify_ok, kiln, random_volume, snapshot, snapshot_ids,
                      store_files)


def make_volume(path, size_chunks, parts, zero_chunks=()):
    """parts: (first chunk, count, seed) runs of random chunks; zero_chunks are written
    with zeros (allocated, but all zero); the rest are holes."""
    with open(path, "wb") as f:
        f.truncate(size_chunks * CHUNK)
        for first, count, seed in parts:
            f.seek(first * CHUNK)
            f.write(random.Random(seed).randbytes(count * CHUNK))
        for c in zero_chunks:
            f.seek(c * CHUNK)
            f.write(bytes(CHUNK))


def killed_run(*args, fault):
    env = dict(THREADS_ENV, KILN_FAULT=fault)
    r = kiln(*args, env=env, check=False)
    assert r.returncode == -signal.SIGKILL, (
        f"expected a SIGKILL at {fault}, got {r.returncode}: {r.stderr}")
    return r


def check_sound(store, expect, out):
    """The store verifies, lists exactly the snapshots of expect ({id: volume}), and each
    restores byte-identical."""
    assert_verify_ok(store)
    assert snapshot_ids(store) == set(expect)
    for sid, vol in expect.items():
        assert_restores(store, sid, vol, out)


def gc_and_check(store, expect, out):
    kiln("store", "gc", store)
    check_sound(store, expect, out)
    assert_no_orphans(store)
    st = json.loads(kiln("store", "stats", store, "--json").stdout)
    assert st["total"]["garbage_bytes"] == 0, st["total"]


# ---- kills at named points during a snapshot ----

# S0: 48 random chunks and a hole (8 MiB). S1: the first 24 chunks of S0 unchanged, 24 changed,
# 540 new (so its 564 new chunks fill one 64 MiB pack and start a second), holes and one
# chunk of written zeros: 589 chunks read.
S1_READS = 24 + 24 + 540 + 1
S1_NEW = 24 + 540
PACK1_RECORDS = (64 * 1024 * 1024 - 16) // CHUNK  # 511


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    d = tmp_path_factory.mktemp("crash-base")
    vol0, vol1 = d / "vol0.img", d / "vol1.img"
    make_volume(vol0, 64, [(0, 48, 10)])
    make_volume(vol1, 620, [(0, 24, 10), (24, 24, 11), (60, 540, 12)], zero_chunks=[605])
    store = d / "store"
    kiln("store", "init", store)
    s0 = snapshot(store, vol0, env=THREADS_ENV)
    return {"store": store, "vol0": vol0, "vol1": vol1, "s0": s0}


def test_crash_volume_layout(base, tmp):
    """The fault cases below rely on this shape: two packs, these counts."""
    store = tmp / "store"
    shutil.copytree(base["store"], store)
    s1 = snapshot(store, base["vol1"], env=THREADS_ENV)
    st = json.loads(kiln("store", "stats", store, "--json").stdout)
    assert st["total"]["unique_chunks"] == 48 + S1_NEW
    assert len(store_files(store, "packs", ".pack")) == 3
    assert_restores(store, s1, base["vol1"], tmp / "out.img")


SNAPSHOT_FAULTS = [
    "snapshot.read:1", "snapshot.read:200", f"snapshot.read:{S1_READS}",
    "pack.append:1", "pack.append:100", f"pack.append:{PACK1_RECORDS}",
    f"pack.append:{PACK1_RECORDS + 1}", f"pack.append:{S1_NEW}",
    "pack.sealed:1", "pack.synced:1", "pack.sealed:2", "pack.synced:2",
    "index.tmp:1", "index.renamed:1", "index.tmp:2", "index.renamed:2",
    "snapshot.commit", "manifest.tmp", "manifest.renamed",
]


@pytest.mark.parametrize("fault", SNAPSHOT_FAULTS)
def test_snapshot_killed_at(base, tmp, fault):
    store = tmp / "store"
    shutil.copytree(base["store"], store)
    s0, vol0, vol1 = base["s0"], base["vol0"], base["vol1"]
    out = tmp / "out.img"
    killed_run("store", "snapshot", store, vol1, fault=fault)

    committed = fault.startswith("manifest.renamed")
    new = snapshot_ids(store) - {s0}
    assert len(new) == (1 if committed else 0), (fault, new)
    expect = {s0: vol0, **{n: vol1 for n in new}}
    check_sound(store, expect, out)

    # the store takes the snapshot again (deduplicating against whatever was indexed) ...
    s2 = snapshot(store, vol1, env=THREADS_ENV)
    expect[s2] = vol1
    check_sound(store, expect, out)
    # ... and gc clears what the dead writer left without touching what is used
    gc_and_check(store, expect, out)


# ---- kills at random times during a snapshot of a large volume ----

BIG = 200 << 20


@pytest.fixture(scope="module")
def big(base, tmp_path_factory):
    d = tmp_path_factory.mktemp("crash-big")
    vol = d / "big.img"
    random_volume(vol, BIG, seed=99)
    times = []
    for i in range(2):
        store = d / f"timing{i}"
        shutil.copytree(base["store"], store)
        t = time.monotonic()
        snapshot(store, vol, env=THREADS_ENV)
        times.append(time.monotonic() - t)
        shutil.rmtree(store)
    return {"vol": vol, "runtime": min(times)}


@pytest.mark.parametrize("fraction", [0.05, 0.25, 0.5, 0.75, 0.9, 1.0])
def test_snapshot_killed_at_random_time(base, big, tmp, fraction):
    store = tmp / "store"
    shutil.copytree(base["store"], store)
    s0, vol0 = base["s0"], base["vol0"]
    out = tmp / "out.img"
    env = dict(os.environ, **THREADS_ENV)
    env.pop("KILN_FAULT", None)
    delay = big["runtime"] * fraction * random.uniform(0.8, 1.0)
    p = subprocess.Popen([KILN, "store", "snapshot", str(store), str(big["vol"])], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    p.send_signal(signal.SIGKILL)
    stdout, stderr = p.communicate(timeout=60)
    if fraction <= 0.5:
        assert p.returncode == -signal.SIGKILL, (
            f"snapshot of {big['runtime']:.2f}s finished before a kill at {delay:.2f}s")
    else:
        assert p.returncode in (0, -signal.SIGKILL), stderr

    new = snapshot_ids(store) - {s0}
    if p.returncode == 0:
        assert new == {stdout.strip()}
    assert len(new) <= 1
    expect = {s0: vol0, **{n: big["vol"] for n in new}}
    check_sound(store, expect, out)
    gc_and_check(store, expect, out)


# ---- kills during gc ----

def build_gc_store(tmp, scenario):
    """B stays; the deleted snapshots leave a pack with nothing live ("dead"), a pack
    4/20 live ("partial", gc rewrites it), or one of each ("both")."""
    store = tmp / "store"
    kiln("store", "init", store)
    vol_b = tmp / "b.img"
    dead = scenario in ("dead", "both")
    partial = scenario in ("partial", "both")
    if dead:
        make_volume(tmp / "a.img", 24, [(0, 16, 20)])
        sa = snapshot(store, tmp / "a.img")
    if partial:
        make_volume(tmp / "c.img", 24, [(0, 20, 30)])
        sc = snapshot(store, tmp / "c.img")
    # B: 16 chunks of its own; with "partial", also the first 4 chunks of C
    make_volume(vol_b, 24, [(0, 4, 30)] if partial else [], [])
    with open(vol_b, "r+b") as f:
        f.seek(4 * CHUNK)
        f.write(random.Random(21).randbytes(16 * CHUNK))
    sb = snapshot(store, vol_b)
    if dead:
        kiln("store", "delete", store, sa)
    if partial:
        kiln("store", "delete", store, sc)
    return store, sb, vol_b


@pytest.mark.parametrize("scenario,removed,rewritten",
                         [("dead", 1, 0), ("partial", 0, 1), ("both", 1, 1)])
def test_gc_scenarios_have_work(tmp, scenario, removed, rewritten):
    store, sb, vol_b = build_gc_store(tmp, scenario)
    r = kiln("store", "gc", store)
    m = re.match(r"removed (\d+) packs, rewrote (\d+), freed (\d+) bytes", r.stdout)
    assert m and (int(m[1]), int(m[2])) == (removed, rewritten), r.stdout
    assert int(m[3]) > 0
    gc_and_check(store, {sb: vol_b}, tmp / "out.img")
    r = kiln("store", "gc", store)
    assert r.stdout.startswith("removed 0 packs, rewrote 0, freed 0 bytes"), r.stdout


GC_FAULTS = [
    ("dead", "gc.marked"), ("dead", "gc.index.unlinked"), ("dead", "gc.pack.unlinked"),
    ("partial", "gc.marked"), ("partial", "gc.repacked"), ("partial", "gc.index.unlinked"),
    ("partial", "gc.pack.unlinked"),
    ("both", "gc.index.unlinked:2"), ("both", "gc.pack.unlinked:2"), ("both", "gc.repacked"),
]


@pytest.mark.parametrize("scenario,fault", GC_FAULTS)
def test_gc_killed_at(tmp, scenario, fault):
    store, sb, vol_b = build_gc_store(tmp, scenario)
    out = tmp / "out.img"
    killed_run("store", "gc", store, fault=fault)
    check_sound(store, {sb: vol_b}, out)
    gc_and_check(store, {sb: vol_b}, out)
    r = kiln("store", "gc", store)
    assert r.stdout.startswith("removed 0 packs, rewrote 0, freed 0 bytes"), r.stdout
    check_sound(store, {sb: vol_b}, out)
