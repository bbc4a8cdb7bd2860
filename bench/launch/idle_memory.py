#!/usr/bin/python3
"""Idle memory per instance: N busybox instances are started and left idle for a few seconds,
then the proportional set size (PSS, shared pages divided among their users) of everything each
one costs the host is added up: for kiln its supervisor (kiln-shim) and every process of the
instance; for systemd-nspawn the nspawn process and every process below it. kiln's memory
cgroup usage (page cache and kernel memory of the instance included) is reported beside it.

usage (root): bench/launch/idle_memory.py [--kiln build/kiln] [--before OLD_KILN] [-n 5]
Writes the section `## Idle memory (bench/launch/idle_memory.py)` of bench/RESULTS.md."""
import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import results  # noqa: E402
from busybox_host import REPO, busybox_pool, busybox_root, fresh, sh  # noqa: E402

WORK = "/var/tmp/kiln-bench-idle"
HEADING = "## Idle memory (bench/launch/idle_memory.py)"
BRIDGE = "kb-ibench-0"


def pss_kib(pid):
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("Pss:"))
    except (OSError, StopIteration):
        return 0


def descendants(pid):
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            with open(f"/proc/{p}/task/{p}/children") as f:
                todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def kiln_idle(kiln, n, tag):
    with busybox_pool(kiln, WORK, tag, BRIDGE) as (run, pool):
        ids = []
        try:
            for i in range(n):
                sh(kiln, "pool", "clone", pool, f"{pool}/busybox.img", f"v{i}.img")
                ids.append(sh(kiln, "runtime", "run", run, "--volume", f"{pool}/v{i}.img", "--address",
                              f"172.31.240.{100 + i}/24", "--gateway", "172.31.240.1", "--bridge", BRIDGE,
                              "--type", "t2.micro", "--zone", "us-east-1a").strip())
            time.sleep(3)
            per = []
            for iid in ids:
                shim = int(sh("pgrep", "-f", f"__shim .*{iid}").split()[0])
                per.append((pss_kib(shim), sum(pss_kib(p) for p in descendants(shim) if p != shim),
                            cgroup_usage_kib(shim, iid)))
            return per
        finally:
            for iid in ids:
                subprocess.run([kiln, "runtime", "stop", run, iid, "--force"], capture_output=True)
                subprocess.run([kiln, "runtime", "rm", run, iid], capture_output=True)


def cgroup_usage_kib(shim, iid):
    with open(f"/proc/{shim}/cgroup") as f:
        own = next(l.split(":")[2].strip() for l in f if l.split(":")[1] == "memory")
    for path in (f"/sys/fs/cgroup/memory{own}/kiln/{iid}/memory.usage_in_bytes",
                 f"/sys/fs/cgroup/unified{own}/kiln/{iid}/memory.current"):
        if os.path.exists(path):
            return int(open(path).read()) // 1024
    return None


def nspawn_idle(n):
    # nspawn locks its directory: one copy of the (3 MiB) root each.
    for i in range(n):
        sh("cp", "-a", busybox_root(WORK), f"{WORK}/root{i}")
    procs = [subprocess.Popen(["systemd-nspawn", "--register=no", "--keep-unit", "-q", "--private-network",
                               f"--machine=kiln-idle-{i}", "-D", f"{WORK}/root{i}", "/bin/sh", "-c", "sleep 600"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(n)]
    try:
        time.sleep(3)
        return [(pss_kib(p.pid), sum(pss_kib(c) for c in descendants(p.pid) if c != p.pid), None) for p in procs]
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()


def row(name, per):
    sup = statistics.median(x[0] for x in per) / 1024
    ins = statistics.median(x[1] for x in per) / 1024
    cg = [x[2] for x in per if x[2] is not None]
    return (f"| {name} | {sup:.2f} | {ins:.2f} | {sup + ins:.2f} | "
            f"{statistics.median(cg) / 1024:.2f} |" if cg else f"| {name} | {sup:.2f} | {ins:.2f} | {sup + ins:.2f} | – |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--kiln", default=os.path.join(REPO, "build", "kiln"))
    ap.add_argument("--before", help="a kiln binary of an older commit, measured the same way")
    ap.add_argument("-n", type=int, default=5)
    a = ap.parse_args()
    fresh(WORK)
    load0 = open("/proc/loadavg").read().strip()
    rows = [row("kiln (`kiln runtime run`)", kiln_idle(a.kiln, a.n, "now"))]
    if a.before:
        rows.append(row(f"kiln before the isolation (`{a.before}`)", kiln_idle(a.before, a.n, "before")))
    if shutil.which("systemd-nspawn"):
        rows.append(row("systemd-nspawn -D dir, `sh -c 'sleep 600'`", nspawn_idle(a.n)))
    load1 = open("/proc/loadavg").read().strip()
    shutil.rmtree(WORK, ignore_errors=True)
    text = (f"{HEADING}\n\nGenerated by `bench/launch/idle_memory.py` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
            f"do not edit by hand. {a.n} busybox instances of each kind started and left idle for 3 s; medians per "
            f"instance, in MiB. PSS divides shared pages among their users (so libraries shared by all supervisors "
            f"count once in total). `kiln runtime run` gives each instance its own sealed memfd of kiln-init "
            f"(0.8 MiB); under `kiln serve` one memfd is shared by every instance the daemon starts. "
            f"`/proc/loadavg` before: {load0}; after: {load1}.\n\n"
            "| launch | supervisor PSS | instance processes PSS | total PSS | memory cgroup usage |\n"
            "|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n")
    results.splice(os.path.join(REPO, "bench", "RESULTS.md"), HEADING, text)
    print(text)


if __name__ == "__main__":
    main()
