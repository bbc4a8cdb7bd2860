"""The marketplace's whole loop (issue 13) with two accounts, the aws CLI and boto3: the seller
bakes an image and publishes it with a public hourly offer through the Catalog API from the aws
CLI; the change set succeeds and the marketplace's copies exist in two regions; the buyer finds
the image, is refused with OptInRequired, subscribes through the Agreement API, launches, runs
2.5 hours (test clock), stops, runs 10 minutes more, makes an image of the instance and launches
that (billed to the same product), terminates: the bill is the product's hours at the offer's
price, plus the usage the buyer metered on the product's Catalog usage dimension at the offer's
price per unit, and the seller's report says the same; a run over the month's end (test clock)
bills one hour in each month, and the report has a row per month; once the agreement is
cancelled no new launch goes through."""
import calendar
import datetime
import json
import os
import subprocess
import time

import boto3
import pytest
from botocore.config import Config

from conftest import client, error_of, kiln, serving
from test_marketplace_catalog import (BUYER, BUYER_KEYS, CATALOG, MARKETPLACE, REQUESTS, SELLER,
                                      SELLER_KEYS, product_changes)
from test_marketplace_agreement import meter_now

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")

# The Agreement API's model is newer than Debian's botocore: the trimmed copy the agreement
# tests use (tests/integration/models, from botocore 1.43.11).
os.environ["AWS_DATA_PATH"] = os.path.join(os.path.dirname(__file__), "models")
AWS = "/usr/bin/aws"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("loop") / "data"
    kiln("init", "--data", data)
    for name, acct, (k, s) in (("seller", SELLER, SELLER_KEYS), ("buyer", BUYER, BUYER_KEYS)):
        kiln("account", "create", name, "--account-id", acct, "--access-key", k, "--secret-key", s,
             "--data", data)
    yield from serving(data, "--test-clock")


def aws(server, keys, *args):
    env = dict(os.environ, AWS_ACCESS_KEY_ID=keys[0], AWS_SECRET_ACCESS_KEY=keys[1],
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE="/dev/null",
               AWS_SHARED_CREDENTIALS_FILE="/dev/null", AWS_PAGER="")
    env.pop("AWS_DATA_PATH", None)
    r = subprocess.run([AWS, "--endpoint-url", server["url"], "--output", "json", *args],
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout) if r.stdout.strip() else {}


def wait(ec2, waiter, **kw):
    ec2.get_waiter(waiter).wait(**kw, WaiterConfig={"Delay": 1, "MaxAttempts": 120})


def launch(ec2, image):
    """A t3.micro of image, once it runs."""
    iid = ec2.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                            InstanceType="t3.micro")["Instances"][0]["InstanceId"]
    wait(ec2, "instance_running", InstanceIds=[iid])
    return iid


def test_sell_buy_bill_and_cancel(server, tmp_path):
    sell = client(server, key=SELLER_KEYS[0], secret=SELLER_KEYS[1])
    buy = client(server, key=BUYER_KEYS[0], secret=BUYER_KEYS[1])

    # The seller bakes a busybox image.
    pub = sell.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-busybox"]}])
    iid = sell.run_instances(ImageId=pub["Images"][0]["ImageId"], MinCount=1, MaxCount=1,
                             InstanceType="t3.micro",
                             UserData="#!/bin/sh\necho widget > /etc/widget\n")["Instances"][0]["InstanceId"]
    wait(sell, "instance_running", InstanceIds=[iid])
    sell.stop_instances(InstanceIds=[iid])
    wait(sell, "instance_stopped", InstanceIds=[iid])
    ami = sell.create_image(InstanceId=iid, Name="widget-1.0")["ImageId"]
    wait(sell, "image_available", ImageIds=[ami])
    sell.terminate_instances(InstanceIds=[iid])

    # ... and publishes it with the aws CLI: a product and a public hourly offer.
    changes = tmp_path / "changes.json"
    changes.write_text(json.dumps(product_changes(ami, dimensions=[REQUESTS],
                                                  usage_prices={"requests": "0.0025"})))
    started = aws(server, SELLER_KEYS, "marketplace-catalog", "start-change-set", "--catalog", CATALOG,
                  "--change-set", f"file://{changes}")
    csid = started["ChangeSetId"]
    for _ in range(240):
        d = aws(server, SELLER_KEYS, "marketplace-catalog", "describe-change-set", "--catalog", CATALOG,
                "--change-set-id", csid)
        if d["Status"] not in ("PREPARING", "APPLYING"):
            break
        time.sleep(0.5)
    assert d["Status"] == "SUCCEEDED", d
    product = d["ChangeSet"][0]["Entity"]["Identifier"]
    time.sleep(1.1)  # past the daemon's one-second cache of read answers

    # The buyer finds it in both regions, owned by the marketplace, with its product code.
    found = {}
    for region in ("us-east-1", "eu-west-1"):
        ec2 = client(server, region=region, key=BUYER_KEYS[0], secret=BUYER_KEYS[1])
        [im] = ec2.describe_images(Owners=["aws-marketplace"])["Images"]
        assert im["OwnerId"] == MARKETPLACE and len(im["ProductCodes"]) == 1
        found[region] = im
    code = found["us-east-1"]["ProductCodes"][0]["ProductCodeId"]
    assert found["eu-west-1"]["ProductCodes"][0]["ProductCodeId"] == code
    image = found["us-east-1"]["ImageId"]
    assert error_of(lambda: buy.run_instances(ImageId=image, MinCount=1, MaxCount=1,
                                              InstanceType="t3.micro")) == ("OptInRequired", 401)

    # Subscribing: the Agreement API (boto3).
    agr = boto3.client("marketplace-agreement", region_name="us-east-1", endpoint_url=server["url"],
                       aws_access_key_id=BUYER_KEYS[0], aws_secret_access_key=BUYER_KEYS[1],
                       config=Config(retries={"max_attempts": 1}))
    req = agr.create_agreement_request(intent="NEW", agreementProposalIdentifier=product,
                                       requestedTerms=[{"id": "term-" + code}])
    agreement = agr.accept_agreement_request(agreementRequestId=req["agreementRequestId"])["agreementId"]
    assert agr.describe_agreement(agreementId=agreement)["status"] == "ACTIVE"
    month = datetime.datetime.fromtimestamp(meter_now(server), datetime.timezone.utc).strftime("%Y-%m")

    # Usage of the Catalog's dimension, metered with the buyer's keys: 200 requests at 0.0025.
    met = boto3.client("meteringmarketplace", region_name="us-east-1", endpoint_url=server["url"],
                       aws_access_key_id=BUYER_KEYS[0], aws_secret_access_key=BUYER_KEYS[1],
                       config=Config(retries={"max_attempts": 1}))
    met.meter_usage(ProductCode=code, Timestamp=int(meter_now(server)) - 60,
                    UsageDimension="requests", UsageQuantity=200)

    # 2.5 hours running (3 started hours), stopped, 10 minutes running again (1): 4 hours.
    iid = launch(buy, image)
    kiln("clock", "advance", "2h30m", "--data", server["data"])
    buy.stop_instances(InstanceIds=[iid])
    wait(buy, "instance_stopped", InstanceIds=[iid])
    kiln("clock", "advance", "5h", "--data", server["data"])  # stopped: not billed
    buy.start_instances(InstanceIds=[iid])
    wait(buy, "instance_running", InstanceIds=[iid])
    # The buyer's own image of it is still the product's: its instance is billed too (1 hour).
    derived = buy.create_image(InstanceId=iid, Name="my-widget", NoReboot=True)["ImageId"]
    wait(buy, "image_available", ImageIds=[derived])
    assert buy.describe_images(ImageIds=[derived])["Images"][0]["ProductCodes"][0]["ProductCodeId"] == code
    iid2 = launch(buy, derived)
    kiln("clock", "advance", "10m", "--data", server["data"])
    buy.terminate_instances(InstanceIds=[iid, iid2])
    wait(buy, "instance_terminated", InstanceIds=[iid, iid2])
    kiln("clock", "advance", "3h", "--data", server["data"])  # terminated: not billed

    bill = json.loads(kiln("bill", "--account", "buyer", "--json", "--data", server["data"]).stdout)
    lines = sorted((l["month"], l["instance"], l["product"], l["hours"], l["price"], l["amount"])
                   for l in bill["lines"] if l.get("instance"))
    assert lines == sorted([(month, iid, code, 4, "0.15", "0.60"),
                            (month, iid2, code, 1, "0.15", "0.15")]), bill
    usage = [(l["month"], l["dimension"], l["quantity"], l["price"], l["amount"])
             for l in bill["lines"] if l.get("dimension")]
    assert usage == [(month, "requests", 200, "0.0025", "0.50")], bill
    assert bill["total"] == "1.25" and bill["currency"] == "USD"
    report = json.loads(kiln("marketplace", "report", "--seller", "seller", "--json", "--data",
                             server["data"]).stdout)
    assert report["total"] == "1.25" and report["lines"] == bill["lines"], report

    # A run over the month's end: from 30 minutes before it to 30 minutes after, a little over
    # an hour of running: two started hours, the first in this month, the second in the next.
    now = meter_now(server)
    year, mon = map(int, month.split("-"))
    boundary = calendar.timegm((year + mon // 12, mon % 12 + 1, 1, 0, 0, 0))
    kiln("clock", "advance", f"{int(boundary - now) - 30 * 60}s", "--data", server["data"])
    iid3 = launch(buy, image)
    kiln("clock", "advance", "1h", "--data", server["data"])
    buy.terminate_instances(InstanceIds=[iid3])
    wait(buy, "instance_terminated", InstanceIds=[iid3])
    following = f"{year + mon // 12:04d}-{mon % 12 + 1:02d}"
    bill = json.loads(kiln("bill", "--account", "buyer", "--json", "--data", server["data"]).stdout)
    assert sorted((l["month"], l["hours"], l["amount"]) for l in bill["lines"]
                  if l["instance"] == iid3) == [(month, 1, "0.15"), (following, 1, "0.15")], bill
    assert bill["total"] == "1.55"
    only = json.loads(kiln("bill", "--account", "buyer", "--month", following, "--json", "--data",
                           server["data"]).stdout)
    assert [(l["instance"], l["hours"]) for l in only["lines"]] == [(iid3, 1)] and only["total"] == "0.15"
    report = json.loads(kiln("marketplace", "report", "--seller", "seller", "--json", "--data",
                             server["data"]).stdout)
    assert [(m["month"], m["product"], m["subscribers"], m["hours"], m["usage"], m["revenue"])
            for m in report["months"]] == [(month, code, 1, 6, 200, "1.40"),
                                           (following, code, 1, 1, 0, "0.15")], report
    assert report["total"] == "1.55"
    table = kiln("marketplace", "report", "--seller", "seller", "--data", server["data"]).stdout
    assert "SUBSCRIBERS" in table and following in table
    assert kiln("bill", "--account", "buyer", "--month", "2026-13", "--data", server["data"],
                check=False).returncode != 0

    # Cancelled: no new launch, of the product's image or of the buyer's own.
    agr.cancel_agreement(agreementId=agreement)
    for ami in (image, derived):
        assert error_of(lambda: buy.run_instances(ImageId=ami, MinCount=1, MaxCount=1,
                                                  InstanceType="t3.micro")) == ("OptInRequired", 401)
