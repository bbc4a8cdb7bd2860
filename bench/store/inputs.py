#!/usr/bin/python3
"""Deterministic input helpers for bench/store/run.sh (stdlib only).

Subcommands:
  random FILE SIZE_MIB SEED       write SIZE_MIB of seeded pseudo-random bytes
  mutate-vol1 MOUNTPOINT SEED     ~1% filesystem-level change inside a mounted ext4 image
  scatter FILE PERCENT SEED       overwrite PERCENT of the 4 KiB blocks of FILE in place
  analyze OUT.json OLD:NEW ...    sizes, changed blocks by content and by FIEMAP, per pair
  fingerprint FILE...             one line per file: size, mtime_ns, hash of the FIEMAP extent list
"""
import array
import fcntl
import hashlib
import json
import os
import random
import struct
import sys

MiB = 1 << 20
BLK = 4096


def write_random(path, size_mib, seed):
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        for _ in range(size_mib):
            f.write(rnd.randbytes(MiB))
        f.flush()
        os.fsync(f.fileno())


# --------------------------------------------------------------------------- vol1
WORDS = ("package install configure depends version library binary source "
         "kernel module daemon socket buffer memory thread process signal "
         "request response header payload archive compress checksum verify "
         "snapshot restore volume block extent inode journal commit").split()


def text_bytes(rnd, n):
    out = []
    size = 0
    while size < n:
        line = " ".join(rnd.choice(WORDS) for _ in range(rnd.randint(4, 14)))
        line = "%08x %s\n" % (rnd.getrandbits(32), line)
        out.append(line)
        size += len(line)
    return "".join(out).encode()[:n]


def mutate_vol1(mnt, seed):
    rnd = random.Random(seed)
    data = os.path.join(mnt, "data")
    report = {}

    # 1. the directory to delete: a seeded pick among data/doc/* directories
    docs = os.path.join(data, "doc")
    subdirs = sorted(d for d in os.listdir(docs)
                     if os.path.isdir(os.path.join(docs, d)) and not os.path.islink(os.path.join(docs, d)))
    victim = os.path.join(docs, rnd.choice(subdirs))
    report["deleted_dir"] = os.path.relpath(victim, mnt)

    # 2. candidate files for 4 KiB patches (regular files >= 8 KiB, not the big data files,
    #    not inside the victim directory), in sorted walk order so the pick is deterministic
    skip = {os.path.join(data, "random.bin"), os.path.join(data, "zeros.bin")}
    cands = []
    for root, dirs, files in os.walk(mnt):
        dirs.sort()
        if root == victim or root.startswith(victim + os.sep) or "lost+found" in root:
            dirs[:] = []
            continue
        for name in sorted(files):
            p = os.path.join(root, name)
            if p in skip or os.path.islink(p):
                continue
            st = os.lstat(p)
            if (st.st_mode & 0o170000) == 0o100000 and st.st_size >= 2 * BLK:
                cands.append((p, st.st_size))
    picks = rnd.sample(cands, 300)
    patched = 0
    for p, size in picks:
        blk = rnd.randrange(size // BLK)
        fd = os.open(p, os.O_WRONLY)
        try:
            os.pwrite(fd, rnd.randbytes(BLK), blk * BLK)
        finally:
            os.close(fd)
        patched += BLK
    report["patched_files"] = len(picks)
    report["patched_bytes"] = patched

    # 3. ~12 MiB of new "package" files: 48 x 256 KiB, 3/4 text (compressible), 1/4 random
    newdir = os.path.join(data, "newpkg")
    os.makedirs(newdir, exist_ok=True)
    added = 0
    for i in range(48):
        body = text_bytes(rnd, 192 * 1024) + rnd.randbytes(64 * 1024)
        with open(os.path.join(newdir, "pkg-%02d.bin" % i), "wb") as f:
            f.write(body)
        added += len(body)
    report["added_bytes"] = added

    # 4. rewrite 6 MiB inside the random file, in place
    rpath = os.path.join(data, "random.bin")
    rsize = os.path.getsize(rpath)
    off = rnd.randrange((rsize - 6 * MiB) // BLK) * BLK
    fd = os.open(rpath, os.O_WRONLY)
    try:
        for k in range(6):
            os.pwrite(fd, rnd.randbytes(MiB), off + k * MiB)
    finally:
        os.close(fd)
    report["random_rewrite"] = {"offset": off, "bytes": 6 * MiB}

    # 5. append to a log
    log = None
    for cand in ("var/log/dpkg.log", "var/log/apt/history.log", "var/log/alternatives.log"):
        if os.path.isfile(os.path.join(mnt, cand)):
            log = os.path.join(mnt, cand)
            break
    if log is None:
        log = os.path.join(mnt, "var/log/kiln-bench.log")
    before = os.path.getsize(log) if os.path.exists(log) else 0
    lines = []
    for i in range(800):
        lines.append("2026-11-27 10:%02d:%02d status installed pkg%04d:amd64 %d.%d-%d\n" % (
            (i // 60) % 60, i % 60, rnd.randrange(10000), rnd.randrange(10), rnd.randrange(100),
            rnd.randrange(10)))
    with open(log, "a") as f:
        f.write("".join(lines))
    report["log"] = {"path": os.path.relpath(log, mnt),
                     "appended": os.path.getsize(log) - before}

    # 6. delete the directory
    for root, dirs, files in os.walk(victim, topdown=False):
        for name in files:
            os.unlink(os.path.join(root, name))
        for name in dirs:
            p = os.path.join(root, name)
            if os.path.islink(p):
                os.unlink(p)
            else:
                os.rmdir(p)
    os.rmdir(victim)
    os.sync()
    json.dump(report, sys.stdout, indent=1)
    print()


def scatter(path, percent, seed):
    rnd = random.Random(seed)
    size = os.path.getsize(path)
    nblk = size // BLK
    k = round(nblk * percent / 100.0)
    blocks = rnd.sample(range(nblk), k)
    fd = os.open(path, os.O_WRONLY)
    try:
        for b in blocks:
            os.pwrite(fd, rnd.randbytes(BLK), b * BLK)
        os.fsync(fd)
    finally:
        os.close(fd)
    print("overwrote %d of %d 4 KiB blocks (%.2f%%) in %s" % (k, nblk, 100.0 * k / nblk, path))


# --------------------------------------------------------------------------- FIEMAP
FS_IOC_FIEMAP = 0xC020660B
FIEMAP_FLAG_SYNC = 0x1
FIEMAP_EXTENT_LAST = 0x1
HDR = struct.Struct("=QQIIII")
EXT = struct.Struct("=QQQQQIIII")


def fiemap(path):
    """List of (logical, physical, length, flags) for the whole file."""
    out = []
    count = 2048
    start = 0
    with open(path, "rb") as f:
        while True:
            buf = bytearray(HDR.size + count * EXT.size)
            HDR.pack_into(buf, 0, start, (1 << 64) - 1 - start, FIEMAP_FLAG_SYNC, 0, count, 0)
            fcntl.ioctl(f.fileno(), FS_IOC_FIEMAP, buf, True)
            mapped = HDR.unpack_from(buf, 0)[3]
            if mapped == 0:
                break
            last = False
            for i in range(mapped):
                lo, ph, ln, _, _, fl, _, _, _ = EXT.unpack_from(buf, HDR.size + i * EXT.size)
                out.append((lo, ph, ln, fl))
                if fl & FIEMAP_EXTENT_LAST:
                    last = True
            if last:
                break
            lo, ph, ln, fl = out[-1]
            start = lo + ln
    return out


def block_map(path, nblk):
    """Physical 4 KiB block number for every logical block; -1 for holes."""
    m = array.array("q", [-1]) * nblk
    for lo, ph, ln, _ in fiemap(path):
        b0 = lo // BLK
        p0 = ph // BLK
        for i in range(min(ln // BLK, nblk - b0)):
            m[b0 + i] = p0 + i
    return m


def data_bytes(path):
    """Bytes in data extents according to SEEK_DATA/SEEK_HOLE."""
    total = 0
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        off = 0
        while off < size:
            try:
                d = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break
            h = os.lseek(fd, d, os.SEEK_HOLE)
            total += h - d
            off = h
    finally:
        os.close(fd)
    return total


def content_diff(a, b, nblk):
    """Set of 4 KiB block numbers whose content differs."""
    diff = []
    step = 256 * BLK
    with open(a, "rb") as fa, open(b, "rb") as fb:
        base = 0
        while base < nblk:
            ca = fa.read(step)
            cb = fb.read(step)
            if ca != cb:
                n = max(len(ca), len(cb)) // BLK
                for i in range(n):
                    if ca[i * BLK:(i + 1) * BLK] != cb[i * BLK:(i + 1) * BLK]:
                        diff.append(base + i)
            base += step // BLK
    return diff


def analyze(out_path, pairs):
    res = {"volumes": {}, "pairs": []}
    seen = set()
    for pair in pairs:
        for p in pair.split(":"):
            if p in seen:
                continue
            seen.add(p)
            st = os.stat(p)
            res["volumes"][os.path.basename(p)] = {
                "size": st.st_size, "allocated": st.st_blocks * 512,
                "data_extent_bytes": data_bytes(p), "extents": len(fiemap(p))}
    for pair in pairs:
        old, new = pair.split(":")
        size = os.path.getsize(new)
        nblk = size // BLK
        cd = content_diff(old, new, nblk)
        mo = block_map(old, nblk)
        mn = block_map(new, nblk)
        fd = [i for i in range(nblk) if mo[i] != mn[i]]
        cds, fds = set(cd), set(fd)
        by = {}
        for cs in (4096, 65536, 131072, 524288, 4194304):
            per = cs // BLK
            by[str(cs)] = len({b // per for b in cd}) * cs
        res["pairs"].append({
            "old": os.path.basename(old), "new": os.path.basename(new),
            "blocks": nblk,
            "content_changed_blocks": len(cd),
            "fiemap_changed_blocks": len(fd),
            "content_changed_not_in_fiemap": len(cds - fds),
            "fiemap_changed_same_content": len(fds - cds),
            "changed_bytes_by_chunk_size": by,
        })
    with open(out_path, "w") as f:
        json.dump(res, f, indent=1)
    for name, v in res["volumes"].items():
        print("%-8s size %6.0f MiB  allocated %7.1f MiB  data extents %7.1f MiB  extents %d" % (
            name, v["size"] / MiB, v["allocated"] / MiB, v["data_extent_bytes"] / MiB, v["extents"]))
    for p in res["pairs"]:
        print("%s -> %s: %d of %d 4 KiB blocks changed (%.2f%%, %.1f MiB); FIEMAP differs on %d "
              "(changed but FIEMAP-equal: %d, FIEMAP-different but equal: %d); 128 KiB chunks: %.1f MiB" % (
                  p["old"], p["new"], p["content_changed_blocks"], p["blocks"],
                  100.0 * p["content_changed_blocks"] / p["blocks"], p["content_changed_blocks"] * BLK / MiB,
                  p["fiemap_changed_blocks"], p["content_changed_not_in_fiemap"],
                  p["fiemap_changed_same_content"], p["changed_bytes_by_chunk_size"]["131072"] / MiB))


def fingerprint(paths):
    for p in paths:
        st = os.stat(p)
        h = hashlib.sha256(repr(fiemap(p)).encode()).hexdigest()[:16]
        print("%s size=%d mtime_ns=%d fiemap=%s" % (p, st.st_size, st.st_mtime_ns, h))


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    cmd = argv[1]
    if cmd == "random":
        write_random(argv[2], int(argv[3]), int(argv[4]))
    elif cmd == "mutate-vol1":
        mutate_vol1(argv[2], int(argv[3]))
    elif cmd == "scatter":
        scatter(argv[2], float(argv[3]), int(argv[4]))
    elif cmd == "analyze":
        analyze(argv[2], argv[3:])
    elif cmd == "fingerprint":
        fingerprint(argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
