"""The store on S3 (a one-node Ceph RGW on 127.0.0.1, started once per run; skipped with the
reason where it cannot start): dedup, incremental snapshots, byte-identical restores, verify
naming a damaged chunk, copies between a directory and S3 sending only missing chunks, gc,
put-if-absent manifests, concurrent writers, a writer killed mid-snapshot, credentials."""
import json
import os
import signal
import struct
import subprocess
import threading
import time

import pytest

from conftest import (CHUNK, KILN, PACK_HEADER, THREADS_ENV, assert_restores, assert_verify_ok,
                      kiln, new_s3_store, random_volume, s3_client, s3_url, snapshot,
                      snapshot_ids, write_volume)


@pytest.fixture
def s3(ceph):
    return new_s3_store(ceph)


def objects(ceph, url, sub=""):
    """{key below the store's prefix: size} of the store's objects."""
    prefix = url.split("/", 3)[3].split("?")[0] + "/" + sub
    c = s3_client(ceph)
    out = {}
    for page in c.get_paginator("list_objects_v2").paginate(Bucket="kiln-tests", Prefix=prefix):
        for o in page.get("Contents", []):
            out[o["Key"][len(prefix) - len(sub):]] = o["Size"]
    return out


def stats(store):
    return json.loads(kiln("store", "stats", store, "--json").stdout)


def test_layout_dedup_and_incremental(ceph, s3, tmp):
    vol = tmp / "vol.img"
    write_volume(vol, 96 * CHUNK, list(range(0, 96, 2)), seed=3)
    s1 = snapshot(s3, vol)
    keys = objects(ceph, s3)
    assert "KILNSTORE" in keys and f"snaps/{s1}" in keys
    packs = [k for k in keys if k.startswith("packs/") and k.endswith(".pack")]
    assert packs and all(k.replace("packs/", "index/").replace(".pack", ".idx") in keys
                         for k in packs)
    # the same volume again stores nothing new
    s2 = snapshot(s3, vol)
    st = stats(s3)
    by_id = {s["id"]: s for s in st["snapshots"]}
    assert st["total"]["unique_chunks"] == 48
    assert by_id[s2]["stored_bytes"] == by_id[s1]["stored_bytes"]
    # one changed chunk: the child stores one chunk
    with open(vol, "r+b") as f:
        f.seek(10 * CHUNK + 5)
        f.write(b"changed")
    s3id = snapshot(s3, vol, "--parent", s1)
    st = stats(s3)
    by_id = {s["id"]: s for s in st["snapshots"]}
    assert st["total"]["unique_chunks"] == 49
    assert 0 < by_id[s3id]["new_bytes"] <= CHUNK + 1024
    assert_restores(s3, s3id, vol, tmp / "out.img")
    assert_verify_ok(s3)


def test_packs_are_objects_of_a_few_mib(ceph, s3, tmp):
    vol = tmp / "big.img"
    random_volume(vol, 40 << 20, seed=5)
    snap = snapshot(s3, vol, env=THREADS_ENV)
    packs = {k: v for k, v in objects(ceph, s3, "packs/").items()}
    assert len(packs) >= 5, packs
    assert all(v <= 9 << 20 for v in packs.values()), packs
    assert_restores(s3, snap, vol, tmp / "out.img")
    r = assert_verify_ok(s3)
    assert "320 chunks" in r.stdout
    # more adders than uploaders: sealing under a full backlog (a pack once lost its footer)
    other = new_s3_store(ceph)
    snapshot(other, vol, env={"KILN_THREADS": "8"})
    assert_verify_ok(other)


def test_verify_names_the_damaged_chunk(ceph, s3, tmp):
    vol = tmp / "vol.img"
    random_volume(vol, 8 * CHUNK, seed=7)
    snap = snapshot(s3, vol)
    c = s3_client(ceph)
    prefix = s3.split("/", 3)[3].split("?")[0] + "/"
    key = prefix + next(k for k in objects(ceph, s3) if k.endswith(".pack"))
    body = bytearray(c.get_object(Bucket="kiln-tests", Key=key)["Body"].read())
    head8 = bytes(body[PACK_HEADER:PACK_HEADER + 8]).hex()  # the first record names its chunk
    body[PACK_HEADER + 8 + 100] ^= 0xFF
    c.put_object(Bucket="kiln-tests", Key=key, Body=bytes(body))
    r = kiln("store", "verify", s3, check=False)
    assert r.returncode != 0
    assert f"damaged chunk {head8}" in r.stdout + r.stderr, r.stdout + r.stderr
    r = kiln("store", "restore", s3, snap, tmp / "out.img", check=False)
    assert r.returncode == 1 and "damaged" in r.stderr and head8 in r.stderr
    assert not (tmp / "out.img").exists()


def test_copy_between_dir_and_s3_sends_only_missing(ceph, s3, tmp):
    d = tmp / "dir"
    kiln("store", "init", d)
    vol = tmp / "vol.img"
    write_volume(vol, 32 * CHUNK, range(32), seed=11)
    s1 = snapshot(d, vol)
    r = kiln("store", "copy", d, s1, s3)
    assert "sent 32 of 32 chunks" in r.stdout
    with open(vol, "r+b") as f:
        f.seek(3 * CHUNK)
        f.write(b"x" * 10)
    s2 = snapshot(d, vol, "--parent", s1)
    r = kiln("store", "copy", d, s2, s3)
    assert "sent 1 of 32 chunks" in r.stdout
    assert_restores(s3, s2, vol, tmp / "out.img")
    assert_verify_ok(s3)
    # and back, into another directory and another S3 store
    d2 = tmp / "dir2"
    kiln("store", "init", d2)
    r = kiln("store", "copy", s3, s2, d2)
    assert "sent 32 of 32 chunks" in r.stdout
    assert_restores(d2, s2, vol, tmp / "out.img")
    other = new_s3_store(ceph)
    assert "sent 32 of 32" in kiln("store", "copy", s3, s2, other).stdout
    assert "sent 1 of 32" in kiln("store", "copy", s3, s1, other, "--as",
                                  "snap-00000000000000001").stdout
    assert_verify_ok(other)


def rgw_pack_gets(ceph, url):
    """GETs of the store's packs in RGW's own access log (a line a request, written a moment
    after the answer)."""
    prefix = url.split("/", 3)[3].split("?")[0]
    log = ceph["dir"] / "log" / "client.rgw.a.log"
    return sum(1 for line in log.read_text(errors="replace").splitlines()
               if f'"GET /kiln-tests/{prefix}/packs/' in line)


def test_copy_out_of_s3_reads_neighbours_together(ceph, s3, tmp):
    vol = tmp / "vol.img"
    random_volume(vol, 16 << 20, seed=31)  # 128 chunks in two packs
    snap = snapshot(s3, vol)
    other = new_s3_store(ceph)
    before = rgw_pack_gets(ceph, s3)
    r = kiln("store", "copy", s3, snap, other)
    assert "sent 128 of 128 chunks" in r.stdout
    time.sleep(2)
    gets = rgw_pack_gets(ceph, s3) - before
    print(f"\ncopy of 128 chunks out of S3: {gets} GETs of packs")
    assert 0 < gets <= 128 // 8, gets
    assert_restores(other, snap, vol, tmp / "out.img")
    assert_verify_ok(other)
    # A damaged chunk in the source fails the copy, naming it; the destination has no snapshot.
    c = s3_client(ceph)
    prefix = s3.split("/", 3)[3].split("?")[0] + "/"
    key = prefix + next(k for k in objects(ceph, s3) if k.endswith(".pack"))
    body = bytearray(c.get_object(Bucket="kiln-tests", Key=key)["Body"].read())
    head8 = bytes(body[PACK_HEADER:PACK_HEADER + 8]).hex()
    body[PACK_HEADER + 8 + 100] ^= 0xFF
    c.put_object(Bucket="kiln-tests", Key=key, Body=bytes(body))
    third = new_s3_store(ceph)
    r = kiln("store", "copy", s3, snap, third, check=False)
    assert r.returncode == 1, r.stdout + r.stderr
    assert f"cannot copy snapshot '{snap}'" in r.stderr and "damaged" in r.stderr, r.stderr
    assert head8 in r.stderr, r.stderr
    assert snap not in snapshot_ids(third)
    assert_verify_ok(third)


def test_manifests_are_put_if_absent(ceph, s3, tmp):
    vol_a, vol_b = tmp / "a.img", tmp / "b.img"
    write_volume(vol_a, 8 * CHUNK, range(8), seed=1)
    write_volume(vol_b, 8 * CHUNK, range(8), seed=2)
    d = tmp / "dir"
    kiln("store", "init", d)
    sa, sb = snapshot(d, vol_a), snapshot(d, vol_b)
    kiln("store", "copy", d, sa, s3, "--as", "snap-0000000000000000a")
    # the same copy again is no conflict (a resumed copy finds its own manifest) ...
    kiln("store", "copy", d, sa, s3, "--as", "snap-0000000000000000a")
    # ... another snapshot under that id is
    r = kiln("store", "copy", d, sb, s3, "--as", "snap-0000000000000000a", check=False)
    assert r.returncode == 1 and "exists" in r.stderr, r.stderr
    assert_restores(s3, "snap-0000000000000000a", vol_a, tmp / "out.img")


def test_gc_frees_what_no_snapshot_uses(ceph, s3, tmp):
    vol_a, vol_b = tmp / "a.img", tmp / "b.img"
    random_volume(vol_a, 12 << 20, seed=21)
    random_volume(vol_b, 4 << 20, seed=22)
    sa = snapshot(s3, vol_a, env=THREADS_ENV)
    sb = snapshot(s3, vol_b, env=THREADS_ENV)
    before = sum(objects(ceph, s3, "packs/").values())
    kiln("store", "delete", s3, sa)
    r = kiln("store", "gc", s3)
    assert not r.stdout.startswith("removed 0 packs, rewrote 0, freed 0"), r.stdout
    after = sum(objects(ceph, s3, "packs/").values())
    assert after < before - (10 << 20)
    assert stats(s3)["total"]["garbage_bytes"] == 0
    assert snapshot_ids(s3) == {sb}
    assert_restores(s3, sb, vol_b, tmp / "out.img")
    assert_verify_ok(s3)


def test_two_writers_at_once(ceph, s3, tmp):
    vols = [tmp / f"v{i}.img" for i in range(2)]
    for i, v in enumerate(vols):
        random_volume(v, 10 << 20, seed=30 + i)
    ids = [None, None]

    def take(i):
        ids[i] = snapshot(s3, vols[i], env=THREADS_ENV)

    ts = [threading.Thread(target=take, args=(i,)) for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    assert all(ids) and snapshot_ids(s3) == set(ids)
    for i in range(2):
        assert_restores(s3, ids[i], vols[i], tmp / "out.img")
    assert_verify_ok(s3)


def killed_snapshot(store, vol, fault):
    env = dict(os.environ, KILN_FAULT=fault, KILN_THREADS="2")
    r = subprocess.run([KILN, "store", "snapshot", str(store), str(vol)], env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == -signal.SIGKILL, (fault, r.returncode, r.stderr)


@pytest.mark.parametrize("fault", ["pack.sealed:2", "pack.synced:1", "pack.synced:3",
                                   "index.tmp:1", "index.renamed:1", "manifest.tmp",
                                   "manifest.renamed"])
def test_writer_killed_mid_snapshot_leaves_a_sound_store(ceph, tmp, fault):
    store = new_s3_store(ceph)
    vol0, vol1 = tmp / "v0.img", tmp / "v1.img"
    random_volume(vol0, 2 << 20, seed=40)
    random_volume(vol1, 30 << 20, seed=41)
    s0 = snapshot(store, vol0)
    killed_snapshot(store, vol1, fault)
    assert_verify_ok(store)
    new = snapshot_ids(store) - {s0}
    assert len(new) == (1 if fault == "manifest.renamed" else 0), new
    assert_restores(store, s0, vol0, tmp / "out.img")
    # the snapshot taken again deduplicates against what was indexed and restores whole
    s2 = snapshot(store, vol1, env=THREADS_ENV)
    assert_restores(store, s2, vol1, tmp / "out.img")
    # unindexed packs of the dead writer stay through the grace time, then gc clears them
    kiln("store", "gc", store)
    assert_verify_ok(store)
    url0 = store.replace("?", "?gc_grace=0&", 1)
    kiln("store", "gc", url0)
    keys = objects(ceph, store)
    packs = {k[6:-5] for k in keys if k.startswith("packs/")}
    idx = {k[6:-4] for k in keys if k.startswith("index/")}
    assert packs == idx, (packs, idx)
    assert_verify_ok(store)


def test_writer_killed_at_random_times(ceph, tmp):
    store = new_s3_store(ceph)
    vol = tmp / "v.img"
    random_volume(vol, 40 << 20, seed=50)
    for delay in (0.3, 0.8, 1.5):
        p = subprocess.Popen([KILN, "store", "snapshot", store, str(vol)],
                             env=dict(os.environ, KILN_THREADS="2"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(delay)
        p.kill()
        p.communicate()
        assert_verify_ok(store)
    s = snapshot(store, vol, env=THREADS_ENV)
    assert_restores(store, s, vol, tmp / "out.img")


def test_credentials_come_from_the_environment_or_a_file(ceph, s3, tmp):
    vol = tmp / "vol.img"
    write_volume(vol, 4 * CHUNK, range(4), seed=60)
    bare = {k: v for k, v in os.environ.items()
            if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    bare["HOME"] = str(tmp)
    r = subprocess.run([KILN, "store", "ls", s3], env=bare, capture_output=True, text=True)
    assert r.returncode == 1 and "no S3 credentials" in r.stderr, r.stderr
    creds = tmp / "creds"
    creds.write_text(f"[other]\naws_access_key_id = x\naws_secret_access_key = y\n"
                     f"[default]\naws_access_key_id = {ceph['key']}\n"
                     f"aws_secret_access_key = {ceph['secret']}\n")
    r = subprocess.run([KILN, "store", "snapshot", s3, str(vol)],
                       env=dict(bare, AWS_SHARED_CREDENTIALS_FILE=str(creds)),
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # a wrong secret is an authentication error, and keys never go in the URL
    r = kiln("store", "ls", s3, env={"AWS_SECRET_ACCESS_KEY": "wrong" * 8}, check=False)
    assert r.returncode == 1 and "403" in r.stderr, r.stderr
    r = kiln("store", "ls", s3 + "&secret=abc", check=False)
    assert r.returncode == 1 and "never go in the URL" in r.stderr, r.stderr
    r = kiln("store", "init", "s3://kiln-tests/x", check=False,
             env={"AWS_ENDPOINT_URL": "", "AWS_ENDPOINT_URL_S3": ""})
    assert r.returncode == 1 and "no endpoint" in r.stderr, r.stderr


def cache_files(d):
    return [os.path.join(r, f) for r, _, fs in os.walk(d) for f in fs]


def test_chunk_cache_serves_the_second_restore(ceph, s3, tmp):
    vol = tmp / "vol.img"
    random_volume(vol, 4 << 20, seed=70)
    snap = snapshot(s3, vol)
    cache = tmp / "cache"
    cached = s3 + f"&cache={cache}&cache_max=64M"
    assert_restores(cached, snap, vol, tmp / "out.img")
    files = cache_files(cache)
    assert len(files) == 32
    # a damaged entry fails its check, is dropped and fetched again
    with open(files[0], "r+b") as f:
        f.seek(10)
        f.write(b"\0" * 8)
    assert_restores(cached, snap, vol, tmp / "out.img")
    # damage the pack in the object store: only the cache can still restore
    c = s3_client(ceph)
    prefix = s3.split("/", 3)[3].split("?")[0] + "/"
    key = prefix + next(k for k in objects(ceph, s3) if k.endswith(".pack"))
    body = bytearray(c.get_object(Bucket="kiln-tests", Key=key)["Body"].read())
    for off in range(PACK_HEADER + 100, len(body) - 200, 131080):
        body[off] ^= 0xFF
    c.put_object(Bucket="kiln-tests", Key=key, Body=bytes(body))
    assert_restores(cached, snap, vol, tmp / "out.img")
    r = kiln("store", "restore", s3, snap, tmp / "out.img", check=False)
    assert r.returncode == 1 and "damaged" in r.stderr
    # verify judges the store, not the cache
    r = kiln("store", "verify", cached, check=False)
    assert r.returncode == 1 and "damaged chunk" in r.stdout


def test_chunk_cache_is_bounded(ceph, s3, tmp):
    vol = tmp / "vol.img"
    random_volume(vol, 6 << 20, seed=71)
    snap = snapshot(s3, vol)
    cache = tmp / "cache"
    assert_restores(s3 + f"&cache={cache}&cache_max=2M", snap, vol, tmp / "out.img")
    assert 0 < sum(os.path.getsize(f) for f in cache_files(cache)) <= 2 << 20
