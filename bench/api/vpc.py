"""bench/api/vpc.py: what VPCs and security groups cost.

1. RunInstances of N_LAUNCH busybox instances to all running: in a new VPC (its own network
   namespace, made by the first launch) with a security group of its own, against the same in
   the account's default VPC with its default group. Runs interleave the two.
2. AuthorizeSecurityGroupIngress to the rule taking effect, with N_GROUP instances in the group:
   from the call to the first TCP connection from the host to one member's public address that
   the rule lets through (probed every millisecond), and RevokeSecurityGroupIngress to the port
   closed again. No peer enforces security groups (moto and LocalStack record the rules only), so
   the target (100 ms at p99) is the yardstick.

Run as root, after make build images: python3 bench/api/vpc.py (KILN= another build). Environment:
RUNS=5, N_LAUNCH=20, N_GROUP=100, TRIES=30, BENCH_DIR=/var/tmp/kiln-bench-vpc, NO_REPORT=1."""
import configparser
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from bench import KILN, ROOT, RESULTS_MD, client, wait_port  # noqa: E402
from results import splice  # noqa: E402

BENCH = os.environ.get("BENCH_DIR", "/var/tmp/kiln-bench-vpc")
RUNS = int(os.environ.get("RUNS", "5"))
N_LAUNCH = int(os.environ.get("N_LAUNCH", "20"))
N_GROUP = int(os.environ.get("N_GROUP", "100"))
TRIES = int(os.environ.get("TRIES", "30"))
PORT = 8792
HEADING = "## VPCs and security groups (bench/api/vpc.py)"
HTTPD = 7171


def running(ec2, ids, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        states = [i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
                  for i in r["Instances"]]
        if states.count("running") == len(ids):
            return
        if "terminated" in states or "stopped" in states:
            raise SystemExit(f"bench/api/vpc: an instance ended: {states}")
        time.sleep(0.05)
    raise SystemExit("bench/api/vpc: instances did not all run")


def terminate(ec2, ids):
    for n in range(0, len(ids), 100):
        ec2.terminate_instances(InstanceIds=ids[n:n + 100])
    deadline = time.time() + 300
    while time.time() < deadline:
        states = [i["State"]["Name"] for r in ec2.describe_instances(InstanceIds=ids)["Reservations"]
                  for i in r["Instances"]]
        if all(s == "terminated" for s in states):
            return
        time.sleep(0.2)


def launch(ec2, ami, n, **kw):
    t0 = time.perf_counter()
    ids = [i["InstanceId"] for i in ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=n,
                                                      MaxCount=n, **kw)["Instances"]]
    running(ec2, ids)
    return time.perf_counter() - t0, ids


def opens(addr, port):
    s = socket.socket()
    s.settimeout(0.05)
    try:
        s.connect((addr, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def until(check, limit=5.0):
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < limit:
        if check():
            return time.perf_counter() - t0
        time.sleep(0.001)
    raise SystemExit("bench/api/vpc: the rule never took effect")


def pct(v, p):
    v = sorted(v)
    return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]


def main():
    if os.geteuid() != 0:
        raise SystemExit("bench/api/vpc: run as root (kiln launches real instances)")
    shutil.rmtree(BENCH, ignore_errors=True)
    os.makedirs(BENCH)
    data = os.path.join(BENCH, "data")
    topo = os.path.join(BENCH, "topology")
    with open(topo, "w") as f:  # room for N_GROUP running instances (EC2's default is 32 vCPUs)
        f.write(f"us-east-1 a b c\nquota running-vcpus {max(64, 2 * N_GROUP)}\n")
    subprocess.run([KILN, "init", "--data", data, "--topology", topo], check=True, stdout=subprocess.DEVNULL)
    cred = configparser.ConfigParser()
    cred.read(os.path.join(data, "credentials"))
    key, secret = cred["default"]["aws_access_key_id"], cred["default"]["aws_secret_access_key"]
    url = f"http://127.0.0.1:{PORT}"
    srv = subprocess.Popen([KILN, "serve", "--data", data, "--listen", f"127.0.0.1:{PORT}", "--log-level", "warning"],
                           stdout=subprocess.DEVNULL, stderr=open(os.path.join(BENCH, "kiln.log"), "w"))
    try:
        wait_port(url, srv)
        ec2 = client(url, key, secret)
        ami = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-busybox"]}])
        ami = ami["Images"][0]["ImageId"]
        launch_s = {"default VPC, default group": [], "new VPC, own group": []}
        for run in range(RUNS):
            t, ids = launch(ec2, ami, N_LAUNCH)
            launch_s["default VPC, default group"].append(t)
            terminate(ec2, ids)
            vpc = ec2.create_vpc(CidrBlock="10.%d.0.0/16" % run)["Vpc"]["VpcId"]
            sn = ec2.create_subnet(VpcId=vpc, CidrBlock="10.%d.1.0/24" % run)["Subnet"]["SubnetId"]
            sg = ec2.create_security_group(GroupName="bench", Description="bench", VpcId=vpc)["GroupId"]
            t, ids = launch(ec2, ami, N_LAUNCH, SubnetId=sn, SecurityGroupIds=[sg])
            launch_s["new VPC, own group"].append(t)
            terminate(ec2, ids)
            # EC2's limit is 5 VPCs per region: this one goes again
            ec2.delete_security_group(GroupId=sg)
            ec2.delete_subnet(SubnetId=sn)
            ec2.delete_vpc(VpcId=vpc)
            print(f"bench/api/vpc: run {run + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in launch_s.items()),
                  flush=True)

        vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
        sg = ec2.create_security_group(GroupName="many", Description="bench", VpcId=vpc)["GroupId"]
        ids = []
        for n in range(0, N_GROUP, 20):
            ids += launch(ec2, ami, min(20, N_GROUP - n), SecurityGroupIds=[sg])[1]
        first = ec2.describe_instances(InstanceIds=ids[:1])["Reservations"][0]["Instances"][0]
        subprocess.run([KILN, "runtime", "exec", os.path.join(data, "run"), ids[0], "--", "/bin/sh", "-c",
                        f"mkdir -p /tmp/w && httpd -p {HTTPD} -h /tmp/w"], check=True)
        pub = first["PublicIpAddress"]
        perm = [{"IpProtocol": "tcp", "FromPort": HTTPD, "ToPort": HTTPD, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}]
        assert not opens(pub, HTTPD)
        auth, revoke = [], []
        for _ in range(TRIES):
            t0 = time.perf_counter()
            ec2.authorize_security_group_ingress(GroupId=sg, IpPermissions=perm)
            auth.append(time.perf_counter() - t0 + until(lambda: opens(pub, HTTPD)))
            t0 = time.perf_counter()
            ec2.revoke_security_group_ingress(GroupId=sg, IpPermissions=perm)
            revoke.append(time.perf_counter() - t0 + until(lambda: not opens(pub, HTTPD)))
        terminate(ec2, ids)
        report(launch_s, auth, revoke)
    finally:
        srv.send_signal(signal.SIGTERM)
        try:
            srv.wait(timeout=120)
        except subprocess.TimeoutExpired:
            srv.kill()
        subprocess.run([KILN, "down", "--data", data], stdout=subprocess.DEVNULL)


def report(launch_s, auth, revoke):
    base = statistics.median(launch_s["default VPC, default group"])
    rows = [f"| {k} | {statistics.median(v):.2f} | {statistics.median(v) / base:.2f}x |" for k, v in launch_s.items()]
    load = open("/proc/loadavg").read().split()[0]
    text = "\n".join([
        HEADING,
        "",
        f"RunInstances of {N_LAUNCH} busybox instances to all running, median of {RUNS} interleaved runs "
        f"(load average {load} at the end):",
        "",
        "| where | seconds | vs default VPC |",
        "|---|---:|---:|",
        *rows,
        "",
        f"A rule taking effect with {N_GROUP} instances in the group ({TRIES} tries; from the API call to the "
        "host's first TCP connection through it, and to the port closed again):",
        "",
        "| change | p50 ms | p99 ms | max ms |",
        "|---|---:|---:|---:|",
        f"| AuthorizeSecurityGroupIngress | {pct(auth, 50) * 1000:.1f} | {pct(auth, 99) * 1000:.1f} | "
        f"{max(auth) * 1000:.1f} |",
        f"| RevokeSecurityGroupIngress | {pct(revoke, 50) * 1000:.1f} | {pct(revoke, 99) * 1000:.1f} | "
        f"{max(revoke) * 1000:.1f} |",
        "",
        "Peers: moto and LocalStack record security group rules and enforce none, so there is nothing of "
        "theirs to time; the target is 100 ms at p99.",
    ])
    print(text)
    if not os.environ.get("NO_REPORT"):
        splice(RESULTS_MD, HEADING, text + "\n\n")


if __name__ == "__main__":
    main()
