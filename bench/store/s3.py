#!/usr/bin/python3
"""The store on S3 (Ceph RGW on the same 2 cores) against the store in a directory and against
the raw PUT/GET rate of RGW measured in the same run (the physical limit here).

Usage (as root, under the bench lock): flock /tmp/kiln-instances.lock bench/store/s3.py [RUNS]
Starts a one-node Ceph with scripts/ceph-up.sh under /var/tmp/kiln-s3-bench, stops it by pid at
the end, and writes the section "Block store on S3" of bench/RESULTS.md (between its markers).
Inputs: run.sh's own vol0 and vol1 (BENCH_DIR, default /var/tmp/kiln-bench; built by
`INPUTS_ONLY=1 bench/store/run.sh` when missing): vol0, a 2 GiB ext4 volume (Debian minbase,
/usr trees, 200 MiB random, 100 MiB zeros), vol1, vol0 with about 1% changed through the
filesystem. Each run's S3 stores are removed after it (the OSD is a 10 GiB file)."""
import concurrent.futures as cf
import datetime
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", ".."))
KILN = os.environ.get("KILN_BIN") or os.path.join(REPO, "build", "kiln")
WORK = "/var/tmp/kiln-s3-bench"
BENCH = os.environ.get("BENCH_DIR", "/var/tmp/kiln-bench")
MiB = 1 << 20
BEGIN, END = "<!-- s3 bench begin -->", "<!-- s3 bench end -->"


def run(*args, env=None):
    t = time.monotonic()
    subprocess.run([str(a) for a in args], check=True, env=env, stdout=subprocess.DEVNULL)
    return time.monotonic() - t


def out(*args, env=None):
    return subprocess.run([str(a) for a in args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def make_inputs():
    """run.sh's vol0 and vol1 (in its XFS pool, mounted by run.sh itself and built there when
    missing); True when this run mounted the pool (and so unmounts it at the end)."""
    vol0, vol1 = f"{BENCH}/pool/vol0.img", f"{BENCH}/pool/vol1.img"
    mounted = False
    if not (os.path.exists(vol0) and os.path.exists(vol1)):
        subprocess.run([f"{HERE}/run.sh"], check=True,
                       env=dict(os.environ, INPUTS_ONLY="1", NO_REPORT="1", KEEP_MOUNTED="1"))
        mounted = True
    return vol0, vol1, mounted


def data_bytes(path):
    """Bytes of the volume that are not holes (what a snapshot reads)."""
    return os.stat(path).st_blocks * 512


def s3_remove(env, prefix):
    """Every object of the bench bucket under prefix (a run's stores)."""
    import boto3
    from botocore.config import Config
    c = boto3.client("s3", endpoint_url=env["KILN_S3_ENDPOINT"],
                     aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
                     config=Config(s3={"addressing_style": "path"}))
    for page in c.get_paginator("list_objects_v2").paginate(Bucket="kiln-bench", Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            c.delete_objects(Bucket="kiln-bench", Delete={"Objects": keys})


def free_port():
    for _ in range(50):
        p = random.randrange(20000, 30000)
        try:
            for q in (p, p + 1):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", q))
            return p
        except OSError:
            continue
    raise RuntimeError("no free port")


def raw_rates(env, nobj=48, size=8 * MiB, threads=8):
    """boto3 with `threads` workers: PUT and GET of 8 MiB objects, ranged GETs of 128 KiB."""
    import boto3
    from botocore.config import Config
    c = boto3.client("s3", endpoint_url=env["KILN_S3_ENDPOINT"],
                     aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
                     config=Config(s3={"addressing_style": "path"},
                                   max_pool_connections=32))
    try:
        c.create_bucket(Bucket="raw-bench")
    except c.exceptions.BucketAlreadyOwnedByYou:
        pass
    body = random.Random(1).randbytes(size)
    keys = [f"o{i}" for i in range(nobj)]
    with cf.ThreadPoolExecutor(threads) as ex:
        t = time.monotonic()
        list(ex.map(lambda k: c.put_object(Bucket="raw-bench", Key=k, Body=body), keys))
        put = nobj * size / (time.monotonic() - t) / 1e6
        t = time.monotonic()
        list(ex.map(lambda k: c.get_object(Bucket="raw-bench", Key=k)["Body"].read(), keys))
        get = nobj * size / (time.monotonic() - t) / 1e6
    rng = random.Random(2)
    ranges = [(rng.choice(keys), rng.randrange(0, size // (128 << 10)) * (128 << 10))
              for _ in range(1024)]
    with cf.ThreadPoolExecutor(16) as ex:
        t = time.monotonic()
        list(ex.map(lambda r: c.get_object(Bucket="raw-bench", Key=r[0],
                                           Range=f"bytes={r[1]}-{r[1] + (128 << 10) - 1}")
                    ["Body"].read(), ranges))
        rget = 1024 * (128 << 10) / (time.monotonic() - t) / 1e6
    for k in keys:
        c.delete_object(Bucket="raw-bench", Key=k)
    return {"put": put, "get": get, "range_get": rget}


def kiln_run(env, vol0, vol1, url_base, n):
    """Seconds for each step on a directory store and an S3 store."""
    res = {}
    size0 = os.path.getsize(vol0)
    for backend in ("dir", "s3"):
        if backend == "dir":
            store = f"{WORK}/dir{n}"
            shutil.rmtree(store, ignore_errors=True)
        else:
            store = f"s3://kiln-bench/run{n}/a?{url_base}"
        run(KILN, "store", "init", store, env=env)
        t = time.monotonic()
        s0 = out(KILN, "store", "snapshot", store, vol0, env=env)
        res[f"{backend} full"] = time.monotonic() - t
        t = time.monotonic()
        s1 = out(KILN, "store", "snapshot", store, vol1, "--parent", s0, env=env)
        res[f"{backend} incr"] = time.monotonic() - t
        rest = f"{WORK}/restore.img"
        for label, url in [("restore", store)] + (
                [("restore cache cold", store + f"&cache={WORK}/cache{n}"),
                 ("restore cache warm", store + f"&cache={WORK}/cache{n}")]
                if backend == "s3" else []):
            if os.path.exists(rest):
                os.unlink(rest)
            res[f"{backend} {label}"] = run(KILN, "store", "restore", url, s1, rest, env=env)
            subprocess.run(["cmp", rest, vol1], check=True)
        os.unlink(rest)
        shutil.rmtree(f"{WORK}/cache{n}", ignore_errors=True)
        if backend == "dir":
            dir_store, d0, d1 = store, s0, s1
        else:
            # Another region's store in the same object store: CopyImage between two regions
            # on S3 moves the chunks the destination lacks, read and written as stored.
            other = f"s3://kiln-bench/run{n}/b?{url_base}"
            run(KILN, "store", "init", other, env=env)
            res["copy s3->s3 full"] = run(KILN, "store", "copy", store, s0, other, env=env)
            res["copy s3->s3 incr"] = run(KILN, "store", "copy", store, s1, other, env=env)
            dst = f"s3://kiln-bench/run{n}/c?{url_base}"
            run(KILN, "store", "init", dst, env=env)
            res["copy dir->s3 full"] = run(KILN, "store", "copy", dir_store, d0, dst, env=env)
            res["copy dir->s3 incr"] = run(KILN, "store", "copy", dir_store, d1, dst, env=env)
            d2 = f"{WORK}/dircopy{n}"
            shutil.rmtree(d2, ignore_errors=True)
            run(KILN, "store", "init", d2)
            res["copy s3->dir full"] = run(KILN, "store", "copy", dst, d0, d2, env=env)
            shutil.rmtree(d2, ignore_errors=True)
            s3_remove(env, f"run{n}/")
    shutil.rmtree(f"{WORK}/dir{n}", ignore_errors=True)
    res["size0"] = size0
    return res


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    os.makedirs(WORK, exist_ok=True)
    vol0, vol1, mounted = make_inputs()
    data0 = data_bytes(vol0)
    ceph = f"{WORK}/ceph"
    port = free_port()
    t = time.monotonic()
    subprocess.run([f"{REPO}/scripts/ceph-up.sh", ceph, str(port)], check=True)
    up = time.monotonic() - t
    try:
        env = dict(os.environ)
        for line in open(f"{ceph}/env").read().split():
            k, v = line.split("=", 1)
            env[k] = v
        url_base = f"endpoint={env['KILN_S3_ENDPOINT']}"
        raws, kilns = [], []
        for n in range(runs):
            raws.append(raw_rates(env))
            kilns.append(kiln_run(env, vol0, vol1, url_base, n))
    finally:
        subprocess.run([f"{REPO}/scripts/ceph-down.sh", ceph, "--purge"])
        if mounted:
            subprocess.run(["umount", f"{BENCH}/pool"])
    with open(f"{WORK}/results.json", "w") as f:  # kept whatever the report does
        json.dump({"raws": raws, "kilns": kilns, "up": up, "data0": data0}, f)
    report(raws, kilns, up, runs, data0)


def med(xs):
    return statistics.median(xs)


def report(raws, kilns, up, runs, data0):
    lines = [BEGIN, "## Block store on S3 (bench/store/s3.py)", "",
             f"Generated by `bench/store/s3.py` on "
             f"{datetime.datetime.utcnow():%Y-%m-%d %H:%M} UTC; do not edit by hand. Medians of "
             f"{runs} runs. Ceph RGW 16.2 (one mon, one OSD on a bluestore file, radosgw on "
             f"127.0.0.1; started in {up:.0f} s) on the same 2 cores as kiln. Inputs: "
             f"bench/store/run.sh's own: vol0, a 2 GiB ext4 volume (Debian minbase, /usr trees, "
             f"200 MiB random, 100 MiB zeros; {data0 / MiB:.0f} MiB not holes), vol1, vol0 "
             f"with about 1% changed through the filesystem. MB/s are of vol0's "
             f"{data0 / MiB:.0f} MiB. Restores and copies out of S3 read neighbouring records of a "
             f"pack with one ranged GET (up to 4 MiB).",
             "", "### Raw RGW (boto3, the physical limit here)", "",
             "| PUT 8 MiB x8 MB/s | GET 8 MiB x8 MB/s | ranged GET 128 KiB x16 MB/s |",
             "|---|---|---|",
             f"| {med([r['put'] for r in raws]):.0f} | {med([r['get'] for r in raws]):.0f} | "
             f"{med([r['range_get'] for r in raws]):.0f} |", "",
             "### kiln store, directory vs S3", "",
             "| step | directory s (MB/s) | S3 s (MB/s) | S3 / directory |", "|---|---|---|---|"]
    mb = data0 / 1e6
    for step in ("full", "incr", "restore"):
        d = med([k[f"dir {step}"] for k in kilns])
        s = med([k[f"s3 {step}"] for k in kilns])
        rate = lambda x: f"{x:.2f} ({mb / x:.0f})" if step != "incr" else f"{x:.2f}"
        lines.append(f"| {step} | {rate(d)} | {rate(s)} | {s / d:.1f}x |")
    lines += ["", "| S3 step | s (MB/s) |", "|---|---|"]
    for step in ("s3 restore cache cold", "s3 restore cache warm", "copy s3->s3 full",
                 "copy s3->s3 incr", "copy dir->s3 full", "copy dir->s3 incr",
                 "copy s3->dir full"):
        x = med([k[step] for k in kilns])
        lines.append(f"| {step} | {x:.2f}" + (f" ({mb / x:.0f})" if "incr" not in step else "")
                     + " |")
    lines += ["", "Samples (s): " + "; ".join(
        f"{k}: " + "/".join(f"{run[k]:.2f}" for run in kilns)
        for k in kilns[0] if k != "size0"), END]
    text = "\n".join(lines) + "\n"
    print(text)
    path = os.path.join(REPO, "bench", "RESULTS.md")
    cur = open(path).read()
    if BEGIN in cur and END in cur:
        cur = cur[:cur.index(BEGIN)] + text + cur[cur.index(END) + len(END) + 1:]
    else:
        cur = cur.rstrip("\n") + "\n\n" + text
    open(path, "w").write(cur)


if __name__ == "__main__":
    main()
