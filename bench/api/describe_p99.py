#!/usr/bin/python3
"""bench/api/describe_p99.py: kiln alone, the whole-list rows of bench/api (DescribeImages
Owner=self over 1,000 images, DescribeInstances over 1,000 instances, from 1 and 16 clients of
build/kiln-loadgen), loaded and measured as bench/api/bench.py does, without moto (whose load
takes most of that bench's time). Optionally a second kiln binary (--before) serves the same data
directory in the same run, interleaved.

usage (root, under the instances lock): /usr/bin/python3 bench/api/describe_p99.py [--before BIN]
Writes the section `## API: whole lists, kiln alone (bench/api/describe_p99.py)` of
bench/RESULTS.md (NO_REPORT=1: print only). Environment as bench/api: RUNS, SECONDS_PER_RUN,
N_IMAGES, N_INSTANCES, BENCH_DIR."""
import argparse
import configparser
import os
import signal
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402
from results import splice  # noqa: E402

HEADING = "## API: whole lists, kiln alone (bench/api/describe_p99.py)"


def serve(kiln, data, log):
    p = subprocess.Popen([kiln, "serve", "--data", data, "--listen", f"127.0.0.1:{bench.KILN_PORT}"],
                         stdout=subprocess.DEVNULL, stderr=open(log, "a"))
    bench.wait_port(f"http://127.0.0.1:{bench.KILN_PORT}", p)
    return p


def stop(p):
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=120)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", help="another kiln binary measured on the same records")
    ap.add_argument("--before-label", help="its name in the table (default: its path)")
    a = ap.parse_args()
    import shutil
    shutil.rmtree(bench.BENCH, ignore_errors=True)
    os.makedirs(bench.BENCH)
    topo = os.path.join(bench.BENCH, "topology")
    with open(topo, "w") as f:
        f.write("us-east-1 a b c\neu-west-1 a b\n")
    log = os.path.join(bench.BENCH, "kiln.log")
    url = f"http://127.0.0.1:{bench.KILN_PORT}"
    binaries = {"kiln": bench.KILN}
    if a.before:
        binaries["before"] = a.before
    # Each binary serves a data directory it made and loaded itself: an older kiln refuses a
    # database a newer one has migrated. The records are the same calls, so the same lists.
    setups = {}
    for name, binary in binaries.items():
        data = os.path.join(bench.BENCH, "data-" + name)
        subprocess.run([binary, "init", "--data", data, "--topology", topo], check=True, stdout=subprocess.DEVNULL)
        cred = configparser.ConfigParser()
        cred.read(os.path.join(data, "credentials"))
        key, secret = cred["default"]["aws_access_key_id"], cred["default"]["aws_secret_access_key"]
        p = serve(binary, data, log)
        try:
            t_inst, t_img = bench.load(bench.client(url, key, secret), True)
            counts = bench.counts(bench.client(url, key, secret))
            print(f"describe_p99: {name} loaded {counts} in {t_inst:.0f} s + {t_img:.0f} s", flush=True)
        finally:
            stop(p)
        setups[name] = (data, key, secret)
    cases = [("DescribeImages", ["Owner.1=self"]), ("DescribeInstances", [])]
    samples = {}
    for run in range(bench.RUNS):
        for name, binary in binaries.items():
            data, key, secret = setups[name]
            p = serve(binary, data, log)
            try:
                for action, params in cases:
                    for clients in (1, 16):
                        m = bench.measure(url, key, secret, action, clients, params)
                        samples.setdefault((name, action, clients), []).append(m)
                        print(f"describe_p99: run {run + 1} {name} {action} x{clients}: {m['rps']:.1f}/s "
                              f"p50 {m['p50_ms']:.2f} ms p99 {m['p99_ms']:.2f} ms", flush=True)
            finally:
                stop(p)
    for name, binary in binaries.items():
        subprocess.run([binary, "down", "--data", setups[name][0]], stdout=subprocess.DEVNULL)
    med = lambda k, f: statistics.median(m[f] for m in samples[k])  # noqa: E731
    rows = []
    for name in binaries:
        for action, _ in cases:
            for clients in (1, 16):
                k = (name, action, clients)
                rows.append(f"| {name if name == 'kiln' else (a.before_label or a.before)} | {action} | {clients} | {med(k, 'rps'):.1f} | "
                            f"{med(k, 'p50_ms'):.2f} ms | {med(k, 'p99_ms'):.2f} ms | "
                            f"{' / '.join('%.1f' % m['p99_ms'] for m in samples[k])} |")
    git = subprocess.run(["git", "-C", bench.ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    text = (f"{HEADING}\n\nGenerated on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} (git {git}); do not edit "
            f"by hand. {counts[0]} images and {counts[1]} instances loaded as bench/api does; medians of {bench.RUNS} runs "
            f"of {bench.SECONDS:.0f} s of `build/kiln-loadgen` per row, on this 2-core machine shared with other work "
            f"(server and clients on it too; `/proc/loadavg` after: {open('/proc/loadavg').read().strip()}). Before this "
            "change bench/api measured p99 12.64 ms (DescribeImages) and 17.52 ms (DescribeInstances) with 16 clients.\n\n"
            "| server | action | clients | req/s | p50 | p99 | p99 of each run |\n|---|---|---|---|---|---|---|\n"
            + "\n".join(rows) + "\n\n")
    print(text)
    if not os.environ.get("NO_REPORT"):
        splice(os.path.join(bench.ROOT, "bench", "RESULTS.md"), HEADING, text)


if __name__ == "__main__":
    main()
