"""bench/api: requests per second and latency of DescribeImages and DescribeInstances with 1,000
images and 1,000 instances, kiln against moto's server loaded with the same records through the
same API calls, measured by the same C load generator (build/kiln-loadgen) in the same run.

Run as root: bench/api/run.sh (it builds, picks the Python that has moto, and calls this)."""
import configparser
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time

import boto3
from botocore.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from results import f_x, ratio, splice, verdict  # noqa: E402

KILN = os.environ.get("KILN", os.path.join(ROOT, "build", "kiln"))
LOADGEN = os.path.join(os.path.dirname(KILN), "kiln-loadgen")
BENCH = os.environ.get("BENCH_DIR", "/var/tmp/kiln-bench-api")
RUNS = int(os.environ.get("RUNS", "3"))
SECONDS = float(os.environ.get("SECONDS_PER_RUN", "5"))
N_IMAGES = int(os.environ.get("N_IMAGES", "1000"))
N_INSTANCES = int(os.environ.get("N_INSTANCES", "1000"))
KILN_PORT, MOTO_PORT = 8790, 8791
RESULTS_MD = os.environ.get("RESULTS_MD", os.path.join(ROOT, "bench", "RESULTS.md"))
ZONES = ["us-east-1a", "us-east-1b", "us-east-1c"]


def client(url, key, secret):
    return boto3.client("ec2", region_name="us-east-1", endpoint_url=url, aws_access_key_id=key,
                        aws_secret_access_key=secret, config=Config(retries={"max_attempts": 1}))


def wait_port(url, proc):
    import urllib.request
    for _ in range(300):
        if proc.poll() is not None:
            raise SystemExit(f"bench/api: the server at {url} died")
        try:
            urllib.request.urlopen(url, timeout=1)
            return
        except Exception as e:  # any HTTP answer (even an error) means it listens
            if hasattr(e, "code"):
                return
        time.sleep(0.1)
    raise SystemExit(f"bench/api: nothing answers at {url}")


def load(ec2, real):
    """The same records in both: N_INSTANCES instances (stopped, launched 20 at a time) and
    N_IMAGES images registered from one snapshot of a volume."""
    base = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    t0 = time.time()
    for n in range(0, N_INSTANCES, 20):
        count = min(20, N_INSTANCES - n)
        r = ec2.run_instances(ImageId=base, InstanceType="t2.nano", MinCount=count, MaxCount=count,
                              Placement={"AvailabilityZone": ZONES[(n // 20) % len(ZONES)]})
        ids = [i["InstanceId"] for i in r["Instances"]]
        if real:  # kiln really boots them: stop each batch so no more than 20 run at once
            ec2.get_waiter("instance_running").wait(InstanceIds=ids, WaiterConfig={"Delay": 0.2, "MaxAttempts": 600})
            ec2.stop_instances(InstanceIds=ids)
            ec2.get_waiter("instance_stopped").wait(InstanceIds=ids, WaiterConfig={"Delay": 0.2, "MaxAttempts": 600})
        else:
            ec2.stop_instances(InstanceIds=ids)
    t_instances = time.time() - t0
    vol = ec2.create_volume(AvailabilityZone="us-east-1a", Size=1)["VolumeId"]
    ec2.get_waiter("volume_available").wait(VolumeIds=[vol], WaiterConfig={"Delay": 0.2})
    snap = ec2.create_snapshot(VolumeId=vol)["SnapshotId"]
    ec2.get_waiter("snapshot_completed").wait(SnapshotIds=[snap], WaiterConfig={"Delay": 0.2})
    t0 = time.time()
    for i in range(N_IMAGES):
        ec2.register_image(Name=f"bench-{i:04d}", RootDeviceName="/dev/xvda", Architecture="x86_64",
                           VirtualizationType="hvm",
                           BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}])
    return t_instances, time.time() - t0


def counts(ec2):
    images = len(ec2.describe_images(Owners=["self"])["Images"])
    instances = sum(len(r["Instances"]) for r in ec2.describe_instances()["Reservations"])
    return images, instances


def measure(url, key, secret, action, clients, params):
    r = subprocess.run([LOADGEN, "-e", url, "-k", key, "-s", secret, "-a", action, "-c", str(clients),
                        "-t", str(SECONDS), *params], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"bench/api: loadgen failed against {url}: {r.stdout}{r.stderr}")
    return json.loads(r.stdout)


def main():
    if os.geteuid() != 0:
        raise SystemExit("bench/api: run as root (kiln launches real instances)")
    shutil.rmtree(BENCH, ignore_errors=True)
    os.makedirs(BENCH)
    data = os.path.join(BENCH, "data")
    subprocess.run([KILN, "init", "--data", data], check=True, stdout=subprocess.DEVNULL)
    cred = configparser.ConfigParser()
    cred.read(os.path.join(data, "credentials"))
    key, secret = cred["default"]["aws_access_key_id"], cred["default"]["aws_secret_access_key"]
    kiln_url, moto_url = f"http://127.0.0.1:{KILN_PORT}", f"http://127.0.0.1:{MOTO_PORT}"
    kiln = subprocess.Popen([KILN, "serve", "--data", data, "--listen", f"127.0.0.1:{KILN_PORT}"],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(BENCH, "kiln.log"), "w"))
    moto = subprocess.Popen([sys.executable, "-m", "moto.server", "-p", str(MOTO_PORT)],
                            stdout=subprocess.DEVNULL, stderr=open(os.path.join(BENCH, "moto.log"), "w"))
    try:
        wait_port(kiln_url, kiln)
        wait_port(moto_url, moto)
        servers = {"kiln": (kiln_url, key, secret), "moto": (moto_url, "AKIDMOTOBENCH", "moto-secret")}
        loaded = {}
        for name, (url, k, s) in servers.items():
            ec2 = client(url, k, s)
            t_inst, t_img = load(ec2, name == "kiln")
            loaded[name] = {"instances_s": t_inst, "images_s": t_img, "counts": counts(ec2)}
            print(f"bench/api: {name} loaded {loaded[name]['counts']} in {t_inst:.0f} s + {t_img:.0f} s", flush=True)
        cases = [("DescribeImages", ["Owner.1=self"]), ("DescribeInstances", []),
                 ("DescribeImages", ["Owner.1=self", "MaxResults=100"]), ("DescribeInstances", ["MaxResults=100"])]
        samples = {}
        for run in range(RUNS):
            for action, params in cases:
                for clients in (1, 16):
                    for name, (url, k, s) in servers.items():
                        m = measure(url, k, s, action, clients, params)
                        samples.setdefault((name, action + page_of(params), clients), []).append(m)
                        print(f"bench/api: run {run + 1} {name} {action} x{clients}: {m['rps']:.1f}/s "
                              f"p99 {m['p99_ms']:.1f} ms", flush=True)
        report(samples, loaded, cases)
    finally:
        for p in (kiln, moto):
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=60)
            except subprocess.TimeoutExpired:
                p.kill()
        subprocess.run([KILN, "down", "--data", data], stdout=subprocess.DEVNULL)


def page_of(params):
    return " (pages of 100)" if any(p.startswith("MaxResults") for p in params) else ""


def report(samples, loaded, cases):
    med = lambda name, action, clients, key: statistics.median(  # noqa: E731
        m[key] for m in samples[(name, action, clients)])
    lines = ["## API: DescribeImages and DescribeInstances, kiln vs moto (bench/api)\n", "\n",
             f"{N_IMAGES} images (registered from one snapshot, `Owner=self`) and {N_INSTANCES} instances "
             "(stopped; kiln really launched and stopped each) in us-east-1, loaded into both servers through "
             "the same API calls; each number is the median of "
             f"{RUNS} runs of {SECONDS:g} s of the same C load generator (`build/kiln-loadgen`: libcurl, "
             "keep-alive, SigV4 signing per request) on this 2-core machine, server and clients sharing it. "
             f"moto {loaded_version()} (its server, `python -m moto.server`).\n", "\n",
             "| action | clients | kiln req/s | moto req/s | kiln/moto | kiln p50 | kiln p99 | moto p99 | bytes/answer (kiln, moto) |\n",
             "|---|---|---|---|---|---|---|---|---|\n"]
    ok = []
    for action, params in cases:
        action = action + page_of(params)
        for clients in (1, 16):
            k_rps, m_rps = med("kiln", action, clients, "rps"), med("moto", action, clients, "rps")
            k_p99 = med("kiln", action, clients, "p99_ms")
            if not page_of(params):
                ok.append((ratio(k_rps, m_rps) or 0) >= 20 and k_p99 <= 10)
            lines.append(f"| {action} | {clients} | {k_rps:.1f} | {m_rps:.2f} | {f_x(ratio(k_rps, m_rps))} | "
                         f"{med('kiln', action, clients, 'p50_ms'):.2f} ms | {k_p99:.2f} ms | "
                         f"{med('moto', action, clients, 'p99_ms'):.1f} ms | "
                         f"{int(med('kiln', action, clients, 'bytes_per_response'))}, "
                         f"{int(med('moto', action, clients, 'bytes_per_response'))} |\n")
    lines += ["\n", f"Target (at least 20x moto's throughput and p99 at most 10 ms, every row of the whole "
              f"lists): {verdict(all(ok))}. The rows in pages of 100 (`MaxResults=100`, the first page) are "
              "for comparison.\n",
              "\n", f"Loading took kiln {loaded['kiln']['instances_s']:.0f} s for the instances (real boots and "
              f"stops) and {loaded['kiln']['images_s']:.1f} s for the images; moto "
              f"{loaded['moto']['instances_s']:.1f} s and {loaded['moto']['images_s']:.1f} s.\n", "\n"]
    text = "".join(lines)
    if os.environ.get("NO_REPORT") == "1":
        print(text)
    else:
        splice(RESULTS_MD, lines[0].rstrip(), text)
        print(text)


def loaded_version():
    import moto
    return moto.__version__


if __name__ == "__main__":
    main()
