"""Instances through the EC2 API: RunInstances really boots the public busybox image, the
waiters see real state changes, and stop/start/terminate act on the real instance."""
import os
import subprocess

import pytest

from conftest import KILN, client, error_of

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")


def busybox(ec2):
    images = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-busybox"]}])
    assert images["Images"], "the public busybox image is missing (make images)"
    return images["Images"][0]["ImageId"]


def inside(server, iid, *cmd):
    return subprocess.run([KILN, "runtime", "exec", os.path.join(server["data"], "run"), iid, "--", *cmd],
                          capture_output=True, text=True)


def console(server, iid):
    with open(os.path.join(server["data"], "run", iid, "console.log")) as f:
        return f.read()


def wait(ec2, name, iid):
    ec2.get_waiter(name).wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 60})


def test_run_stop_start_terminate(server):
    ec2 = client(server)
    ami = busybox(ec2)
    ud = "#!/bin/sh\necho user-data-says-hello > /root/hello\necho user-data-ran\n"
    r = ec2.run_instances(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1,
                          UserData=ud, Placement={"AvailabilityZone": "us-east-1b"})
    inst = r["Instances"][0]
    iid = inst["InstanceId"]
    assert inst["State"]["Name"] == "pending" and inst["Placement"]["AvailabilityZone"] == "us-east-1b"
    assert inst["PrivateIpAddress"].startswith("172.31.16.")  # us-east-1b's /20
    wait(ec2, "instance_running", iid)
    d = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert d["State"] == {"Code": 16, "Name": "running"}
    assert d["PrivateDnsName"] == "ip-" + d["PrivateIpAddress"].replace(".", "-") + ".ec2.internal"
    # it is a real system: its metadata, its hostname, the user data's file
    assert inside(server, iid, "cat", "/run/kiln/meta/instance-id").stdout == iid
    assert inside(server, iid, "hostname").stdout.strip() == d["PrivateDnsName"]
    for _ in range(100):
        if "user-data-ran" in console(server, iid):
            break
        subprocess.run(["sleep", "0.05"])
    assert inside(server, iid, "cat", "/root/hello").stdout == "user-data-says-hello\n"
    inside(server, iid, "sh", "-c", "echo kept > /root/kept && sync")

    s = ec2.stop_instances(InstanceIds=[iid])["StoppingInstances"][0]
    assert (s["PreviousState"]["Name"], s["CurrentState"]["Name"]) == ("running", "stopping")
    wait(ec2, "instance_stopped", iid)
    assert inside(server, iid, "true").returncode != 0  # nothing runs any more
    ec2.start_instances(InstanceIds=[iid])
    wait(ec2, "instance_running", iid)
    assert inside(server, iid, "cat", "/root/kept").stdout == "kept\n"
    assert console(server, iid).count("user-data-ran") == 1  # once per instance, not per boot

    out = ec2.get_console_output(InstanceId=iid)["Output"]  # botocore decodes the base64
    assert "kiln-init: booting " + iid in out and out.count("user-data-ran") == 1
    inside(server, iid, "sh", "-c", "echo gone-after-reboot > /run/marker")
    assert ec2.reboot_instances(InstanceIds=[iid])["ResponseMetadata"]["HTTPStatusCode"] == 200
    for _ in range(200):  # the tmpfs /run is new after the reboot; files on the volume stay
        if inside(server, iid, "cat", "/run/marker").returncode != 0 and \
                inside(server, iid, "cat", "/root/kept").stdout == "kept\n":
            break
        subprocess.run(["sleep", "0.05"])
    else:
        raise AssertionError("the instance did not come back from its reboot")
    wait(ec2, "instance_running", iid)
    filt = ec2.describe_instances(Filters=[{"Name": "instance-state-name", "Values": ["running"]},
                                          {"Name": "availability-zone", "Values": ["us-east-1b"]}])
    assert iid in [i["InstanceId"] for res in filt["Reservations"] for i in res["Instances"]]

    t = ec2.terminate_instances(InstanceIds=[iid])["TerminatingInstances"][0]
    assert t["CurrentState"]["Name"] == "shutting-down"
    wait(ec2, "instance_terminated", iid)
    assert error_of(lambda: ec2.start_instances(InstanceIds=[iid])) == ("IncorrectInstanceState", 400)
    # terminated instances stay visible, and their volume is gone
    d = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert d["State"]["Name"] == "terminated"
    pools = os.path.join(server["data"], "regions", "us-east-1", "pools", "us-east-1b")
    assert not [f for f in os.listdir(pools) if f.startswith("vol-")]


def test_instance_errors_and_isolation(server):
    ec2 = client(server)
    ami = busybox(ec2)
    assert error_of(lambda: ec2.run_instances(ImageId="ami-00000000000000000", MinCount=1, MaxCount=1)) == (
        "InvalidAMIID.NotFound", 400)
    assert error_of(lambda: ec2.run_instances(ImageId="bad", MinCount=1, MaxCount=1)) == (
        "InvalidAMIID.Malformed", 400)
    assert error_of(lambda: ec2.run_instances(ImageId=ami, InstanceType="z9.huge", MinCount=1, MaxCount=1)) == (
        "InvalidParameterValue", 400)
    assert error_of(lambda: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1,
                                              Placement={"AvailabilityZone": "eu-west-1a"})) == (
        "InvalidParameterValue", 400)
    assert error_of(lambda: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, DryRun=True)) == (
        "DryRunOperation", 412)
    assert error_of(lambda: ec2.describe_instances(InstanceIds=["i-00000000000000000"])) == (
        "InvalidInstanceID.NotFound", 400)
    assert error_of(lambda: ec2.stop_instances(InstanceIds=["nope"])) == ("InvalidInstanceID.Malformed", 400)
    iid = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1)["Instances"][0]["InstanceId"]
    other = client(server, key="AKIAOTHEROTHEROTHER1", secret="other-secret-other-secret")
    assert other.describe_instances()["Reservations"] == []
    assert error_of(lambda: other.terminate_instances(InstanceIds=[iid])) == ("InvalidInstanceID.NotFound", 400)
    ec2.terminate_instances(InstanceIds=[iid])
    wait(ec2, "instance_terminated", iid)
    assert error_of(lambda: ec2.stop_instances(InstanceIds=[iid])) == ("IncorrectInstanceState", 400)
    assert error_of(lambda: ec2.reboot_instances(InstanceIds=[iid])) == ("IncorrectInstanceState", 400)
    assert error_of(lambda: ec2.get_console_output(InstanceId="i-00000000000000000")) == (
        "InvalidInstanceID.NotFound", 400)


def test_concurrent_launches_get_distinct_addresses(server):
    import concurrent.futures
    ec2 = client(server)
    ami = busybox(ec2)

    def launch(_):
        return client(server).run_instances(ImageId=ami, MinCount=1, MaxCount=2,
                                            Placement={"AvailabilityZone": "us-east-1c"})["Instances"]

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        launched = [i for batch in pool.map(launch, range(6)) for i in batch]
    ids = [i["InstanceId"] for i in launched]
    ips = [i["PrivateIpAddress"] for i in launched]
    assert len(ids) == 12 and len(set(ips)) == 12
    for iid in ids:
        wait(ec2, "instance_running", iid)
    ec2.terminate_instances(InstanceIds=ids)
    for iid in ids:
        wait(ec2, "instance_terminated", iid)


def test_status_modify_and_client_token(server):
    ec2 = client(server)
    ami = busybox(ec2)
    args = dict(ImageId=ami, InstanceType="t2.nano", MinCount=1, MaxCount=1, ClientToken="kiln-token-1")
    first = ec2.run_instances(**args)["Instances"][0]["InstanceId"]
    again = ec2.run_instances(**args)["Instances"][0]["InstanceId"]
    assert again == first  # the same token launches nothing new
    assert error_of(lambda: ec2.run_instances(**dict(args, InstanceType="t2.micro")))[0] == (
        "IdempotentParameterMismatch")
    ec2.get_waiter("instance_status_ok").wait(InstanceIds=[first], WaiterConfig={"Delay": 1, "MaxAttempts": 60})
    st = ec2.describe_instance_status(InstanceIds=[first])["InstanceStatuses"][0]
    assert st["InstanceState"]["Name"] == "running"
    assert st["InstanceStatus"]["Status"] == "ok" and st["SystemStatus"]["Status"] == "ok"
    assert st["InstanceStatus"]["Details"] == [{"Name": "reachability", "Status": "passed"}]

    assert error_of(lambda: ec2.modify_instance_attribute(InstanceId=first, InstanceType={"Value": "t3.small"}))[0] == (
        "IncorrectInstanceState")
    ec2.stop_instances(InstanceIds=[first])
    wait(ec2, "instance_stopped", first)
    assert ec2.describe_instance_status(InstanceIds=[first])["InstanceStatuses"] == []
    st = ec2.describe_instance_status(InstanceIds=[first], IncludeAllInstances=True)["InstanceStatuses"][0]
    assert st["InstanceStatus"]["Status"] == "not-applicable"
    ec2.modify_instance_attribute(InstanceId=first, InstanceType={"Value": "t3.small"})
    ec2.modify_instance_attribute(InstanceId=first, Attribute="userData", Value="IyEvYmluL3NoCg==")
    assert error_of(lambda: ec2.modify_instance_attribute(InstanceId=first, InstanceType={"Value": "t9.huge"}))[0] == (
        "InvalidInstanceAttributeValue")
    assert error_of(lambda: ec2.modify_instance_attribute(InstanceId=first, SourceDestCheck={"Value": False}))[0] == (
        "InvalidParameterValue")
    ec2.start_instances(InstanceIds=[first])
    wait(ec2, "instance_running", first)
    d = ec2.describe_instances(InstanceIds=[first])["Reservations"][0]["Instances"][0]
    assert d["InstanceType"] == "t3.small"
    # the new type is the running instance's: 2 vCPUs of quota
    assert inside(server, first, "cat", "/run/kiln/meta/instance-type").stdout == "t3.small"
    ec2.terminate_instances(InstanceIds=[first])
    wait(ec2, "instance_terminated", first)
