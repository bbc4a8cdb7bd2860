"""The buyers' marketplace APIs with boto3: the Agreement API (marketplace-agreement:
CreateAgreementRequest, AcceptAgreementRequest, DescribeAgreement, SearchAgreements,
GetAgreementTerms, CancelAgreement) on kiln's subscriptions, and the Metering Service
(meteringmarketplace: MeterUsage from inside a buyer's instance with its metadata credentials,
BatchMeterUsage by the seller), their refusals (duplicate, out of bounds, not entitled, unknown
dimension or product), the usage in `kiln bill` and `kiln marketplace report`, and the product
code in the instance's metadata and identity document.

Debian's botocore (1.29) has no marketplace-agreement model: the test loads the operations kiln
serves from tests/integration/models (taken from botocore 1.43.11's model, documentation
stripped) through AWS_DATA_PATH."""
import json
import os
import sqlite3
import subprocess
import time
from decimal import Decimal

import boto3
import botocore
import pytest
from botocore.config import Config

from conftest import client, error_of, in_netns, kiln, serving

os.environ["AWS_DATA_PATH"] = os.path.join(os.path.dirname(__file__), "models")

SELLER = "222233334444"
BUYER = "555566667777"
OTHER = "888899990000"
SELLER_KEYS = ("AKIASELLERSELLERSELL", "seller-secret-seller-secret")
BUYER_KEYS = ("AKIABUYERBUYERBUYER1", "buyer-secret-buyer-secret-1")
OTHER_KEYS = ("AKIAOTHEROTHEROTHER1", "other-secret-other-secret-1")
HOUR = 3600

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="instances need root")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("agree") / "data"
    kiln("init", "--data", data)
    for name, acct, (k, s) in (("seller", SELLER, SELLER_KEYS), ("buyer", BUYER, BUYER_KEYS),
                               ("other", OTHER, OTHER_KEYS)):
        kiln("account", "create", name, "--account-id", acct, "--access-key", k, "--secret-key", s,
             "--data", data)
    yield from serving(data, "--test-clock")


def svc(server, service, keys, region="us-east-1"):
    return boto3.client(service, region_name=region, endpoint_url=server["url"],
                        aws_access_key_id=keys[0], aws_secret_access_key=keys[1],
                        config=Config(retries={"max_attempts": 1}))


def code_of(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    return e.value.response["Error"]["Code"]


def meter_now(server):
    """The metering clock (the wall clock plus the test clock's offset), in seconds."""
    db = sqlite3.connect(os.path.join(server["data"], "kiln.db"))
    row = db.execute("SELECT value FROM settings WHERE name = 'test-clock-offset-ms'").fetchone()
    db.close()
    return time.time() + (int(row[0]) / 1000 if row else 0)


def advance(server, d):
    kiln("clock", "advance", d, "--data", server["data"])


def bill(server, *args):
    return json.loads(kiln(*args, "--json", "--data", server["data"]).stdout)


@pytest.fixture(scope="module")
def product(server):
    """The seller's copy of busybox, hourly at 0.15 (t3.micro), metered by users (0.01 each)
    and gb (0.002 each)."""
    ec2 = client(server, key=SELLER_KEYS[0], secret=SELLER_KEYS[1])
    src = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-busybox"]}])
    ami = ec2.copy_image(SourceRegion="us-east-1", SourceImageId=src["Images"][0]["ImageId"],
                         Name="meter-1.0")["ImageId"]
    ec2.get_waiter("image_available").wait(ImageIds=[ami], WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    out = kiln("marketplace", "publish", ami, "--seller", "seller", "--title", "Metered Widget",
               "--price", "t3.micro=0.15", "--dimension", "users=0.01", "--dimension", "gb=0.002",
               "--json", "--data", server["data"]).stdout
    p = json.loads(out)
    assert p["dimensions"] == {"gb": "0.002", "users": "0.01"}
    time.sleep(1.1)  # past the daemon's one-second cache of read answers
    return p


def subscribe(server, p, keys=BUYER_KEYS, token=None):
    agr = svc(server, "marketplace-agreement", keys)
    kw = {"clientToken": token} if token else {}
    req = agr.create_agreement_request(intent="NEW", agreementProposalIdentifier="offer-" + p["code"],
                                       requestedTerms=[{"id": "term-" + p["code"]}], **kw)
    return agr.accept_agreement_request(agreementRequestId=req["agreementRequestId"])["agreementId"]


def test_agreements(server, product):
    code = product["code"]
    agr = svc(server, "marketplace-agreement", BUYER_KEYS)
    sell = svc(server, "marketplace-agreement", SELLER_KEYS)
    ec2 = client(server, key=BUYER_KEYS[0], secret=BUYER_KEYS[1])
    assert error_of(lambda: ec2.run_instances(ImageId=product["image"], MinCount=1, MaxCount=1,
                                              InstanceType="t3.micro")) == ("OptInRequired", 401)

    # The request: the product's one offer and its one term; idempotent by client token.
    req = agr.create_agreement_request(intent="NEW", agreementProposalIdentifier="offer-" + code,
                                       requestedTerms=[{"id": "term-" + code}], clientToken="t-1")
    rid = req["agreementRequestId"]
    assert rid.startswith("agreq-") and req["chargeSummary"]["currencyCode"] == "USD"
    again = agr.create_agreement_request(intent="NEW", agreementProposalIdentifier="offer-" + code,
                                         requestedTerms=[{"id": "term-" + code}], clientToken="t-1")
    assert again["agreementRequestId"] == rid
    assert code_of(lambda: agr.create_agreement_request(
        intent="NEW", agreementProposalIdentifier="offer-" + code,
        requestedTerms=[{"id": "term-other"}])) == "ValidationException"
    assert code_of(lambda: agr.create_agreement_request(
        intent="NEW", agreementProposalIdentifier="offer-nope",
        requestedTerms=[{"id": "term-" + code}])) == "ResourceNotFoundException"
    assert code_of(lambda: agr.create_agreement_request(
        intent="AMEND", agreementProposalIdentifier="offer-" + code,
        requestedTerms=[{"id": "term-" + code}])) == "ValidationException"
    # Only the requester accepts its request.
    assert code_of(lambda: sell.accept_agreement_request(agreementRequestId=rid)) == \
        "ResourceNotFoundException"
    aid = agr.accept_agreement_request(agreementRequestId=rid)["agreementId"]
    assert aid.startswith("agmt-")
    assert code_of(lambda: agr.accept_agreement_request(agreementRequestId=rid)) == "ConflictException"

    # Both parties see it; nobody else does.
    d = agr.describe_agreement(agreementId=aid)
    assert (d["agreementId"], d["status"], d["agreementType"]) == (aid, "ACTIVE", "PurchaseAgreement")
    assert (d["acceptor"]["accountId"], d["proposer"]["accountId"]) == (BUYER, SELLER)
    assert d["proposalSummary"]["offerId"] == "offer-" + code
    assert d["proposalSummary"]["resources"] == [{"id": product["id"], "type": "AmiProduct"}]
    assert "endTime" not in d and d["startTime"] == d["acceptanceTime"]
    assert sell.describe_agreement(agreementId=aid)["acceptor"]["accountId"] == BUYER
    other = svc(server, "marketplace-agreement", OTHER_KEYS)
    assert code_of(lambda: other.describe_agreement(agreementId=aid)) == "ResourceNotFoundException"

    def found(c, *filters):
        kw = {"filters": [{"name": n, "values": v} for n, v in filters]} if filters else {}
        r = c.search_agreements(catalog="AWSMarketplace", **kw)
        return [a["agreementId"] for a in r["agreementViewSummaries"]]
    assert found(agr, ("PartyType", ["Acceptor"]), ("AgreementType", ["PurchaseAgreement"])) == [aid]
    assert found(agr, ("PartyType", ["Proposer"])) == []
    assert found(sell, ("PartyType", ["Proposer"]), ("ResourceIdentifier", [product["id"]])) == [aid]
    assert found(sell, ("PartyType", ["Proposer"]), ("AcceptorAccountId", [BUYER]),
                 ("Status", ["ACTIVE"])) == [aid]
    assert found(sell, ("Status", ["CANCELLED"])) == []
    assert found(other) == []
    assert code_of(lambda: found(agr, ("Color", ["red"]))) == "ValidationException"

    terms = agr.get_agreement_terms(agreementId=aid)["acceptedTerms"]
    ub = terms[0]["usageBasedPricingTerm"]
    assert ub["id"] == "term-" + code and ub["currencyCode"] == "USD"
    assert {r["dimensionKey"]: r["price"] for r in ub["rateCards"][0]["rateCard"]} == {
        "t3.micro": "0.15", "users": "0.01", "gb": "0.002"}
    subs = json.loads(kiln("marketplace", "ls", "--account", "buyer", "--json", "--data",
                           server["data"]).stdout)
    assert [(s["agreement"], s["status"]) for s in subs] == [(aid, "ACTIVE")]

    # Cancelled by its acceptor only; a second subscription is a new agreement.
    assert code_of(lambda: sell.cancel_agreement(agreementId=aid)) == "AccessDeniedException"
    agr.cancel_agreement(agreementId=aid)
    d = agr.describe_agreement(agreementId=aid)
    assert d["status"] == "CANCELLED" and "endTime" in d
    assert code_of(lambda: agr.cancel_agreement(agreementId=aid)) == "ConflictException"
    assert found(sell, ("Status", ["CANCELLED"])) == [aid]
    assert error_of(lambda: ec2.run_instances(ImageId=product["image"], MinCount=1, MaxCount=1,
                                              InstanceType="t3.micro")) == ("OptInRequired", 401)
    aid2 = subscribe(server, product)
    assert aid2 != aid
    assert found(agr, ("Status", ["ACTIVE"])) == [aid2]

    # awsJson's envelope and errors on the wire.
    assert code_of(lambda: agr.describe_agreement(agreementId="agmt-nope")) == "ResourceNotFoundException"
    bad = boto3.client("marketplace-agreement", region_name="us-east-1", endpoint_url=server["url"],
                       aws_access_key_id="AKIANOBODYNOBODYNOBO", aws_secret_access_key="x",
                       config=Config(retries={"max_attempts": 1}))
    assert code_of(lambda: bad.describe_agreement(agreementId=aid)) == "UnrecognizedClientException"


def test_batch_meter_usage(server, product):
    code = product["code"]
    met = svc(server, "meteringmarketplace", SELLER_KEYS)
    now = meter_now(server)
    ts = now - 60
    rec = {"Timestamp": ts, "CustomerIdentifier": BUYER, "Dimension": "gb", "Quantity": 100}
    r = met.batch_meter_usage(ProductCode=code, UsageRecords=[
        rec, {"Timestamp": ts, "CustomerIdentifier": OTHER, "Dimension": "gb", "Quantity": 3}])
    assert [x["Status"] for x in r["Results"]] == ["Success", "CustomerNotSubscribed"]
    rid = r["Results"][0]["MeteringRecordId"]
    assert r["UnprocessedRecords"] == []
    # The same record of the hour: the same id; another quantity that hour: DuplicateRecord.
    r = met.batch_meter_usage(ProductCode=code, UsageRecords=[rec, dict(rec, Quantity=101)])
    assert [x["Status"] for x in r["Results"]] == ["Success", "DuplicateRecord"]
    assert r["Results"][0]["MeteringRecordId"] == rid
    # Within the hour (rounded down), still the same record.
    hour_start = ts - ts % HOUR
    r = met.batch_meter_usage(ProductCode=code, UsageRecords=[dict(rec, Timestamp=hour_start)])
    assert r["Results"][0]["MeteringRecordId"] == rid
    # Out of bounds (7 hours ago, or a later hour): the whole batch refused.
    assert code_of(lambda: met.batch_meter_usage(ProductCode=code, UsageRecords=[
        dict(rec, Timestamp=now - 7 * HOUR, Dimension="users"), dict(rec, Dimension="users")])) == \
        "TimestampOutOfBoundsException"
    assert code_of(lambda: met.batch_meter_usage(ProductCode=code, UsageRecords=[
        dict(rec, Timestamp=now + 2 * HOUR)])) == "TimestampOutOfBoundsException"
    assert code_of(lambda: met.batch_meter_usage(ProductCode=code, UsageRecords=[
        dict(rec, Dimension="cpus")])) == "InvalidUsageDimensionException"
    # Only the product's seller reports per customer.
    buyer = svc(server, "meteringmarketplace", BUYER_KEYS)
    assert code_of(lambda: buyer.batch_meter_usage(ProductCode=code, UsageRecords=[rec])) == \
        "InvalidProductCodeException"
    assert code_of(lambda: met.batch_meter_usage(ProductCode="nope", UsageRecords=[rec])) == \
        "InvalidProductCodeException"
    assert code_of(lambda: met.batch_meter_usage(ProductCode=code, UsageRecords=[
        dict(rec, Dimension="users", UsageAllocations=[{"AllocatedUsageQuantity": 1}])])) == \
        "InvalidUsageAllocationsException"
    # MeterUsage with an account's own keys: that account must be subscribed.
    other = svc(server, "meteringmarketplace", OTHER_KEYS)
    assert code_of(lambda: other.meter_usage(ProductCode=code, Timestamp=ts, UsageDimension="users",
                                             UsageQuantity=1)) == "CustomerNotEntitledException"

    lines = [l for l in bill(server, "bill", "--account", "buyer")["lines"] if l.get("dimension")]
    assert [(l["product"], l["instance"], l["dimension"], l["quantity"], l["price"], l["amount"])
            for l in lines] == [(code, "", "gb", 100, "0.002", "0.20")]


INSIDE = r"""
import json, sys
import boto3, botocore
from botocore.config import Config
endpoint, code, ts, region = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
s = boto3.Session(region_name=region)
m = s.client("meteringmarketplace", endpoint_url=endpoint, config=Config(retries={"max_attempts": 1}))
out = {}
def call(name, **kw):
    try:
        out[name] = m.meter_usage(**kw)["MeteringRecordId"]
    except botocore.exceptions.ClientError as e:
        out[name] = e.response["Error"]["Code"]
if region != "us-east-1":
    call("region", ProductCode=code, Timestamp=ts, UsageDimension="users", UsageQuantity=7)
    print(json.dumps(out)); sys.exit(0)
call("first", ProductCode=code, Timestamp=ts, UsageDimension="users", UsageQuantity=7)
call("again", ProductCode=code, Timestamp=ts, UsageDimension="users", UsageQuantity=7)
call("other", ProductCode=code, Timestamp=ts, UsageDimension="users", UsageQuantity=8)
call("old", ProductCode=code, Timestamp=ts - 7 * 3600, UsageDimension="users", UsageQuantity=1)
call("dimension", ProductCode=code, Timestamp=ts, UsageDimension="cpus", UsageQuantity=1)
call("product", ProductCode="nope", Timestamp=ts, UsageDimension="users", UsageQuantity=1)
call("dry", ProductCode=code, Timestamp=ts, UsageDimension="gb", UsageQuantity=1, DryRun=True)
print(json.dumps(out))
"""




def imds_get(server, iid, path):
    script = r"""
import sys, urllib.request
r = urllib.request.urlopen("http://169.254.169.254" + sys.argv[1], timeout=5)
print(r.read().decode(), end="")
"""
    r = in_netns(server, iid, "/usr/bin/python3", "-c", script, path)
    assert r.returncode == 0, r.stderr
    return r.stdout


def meter_inside(server, iid, code, ts, region="us-east-1"):
    port = server["url"].rsplit(":", 1)[1]
    r = in_netns(server, iid, "/usr/bin/python3", "-c", INSIDE, f"http://169.254.169.254:{port}",
                 code, str(ts), region)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@needs_root
def test_metering_from_inside_and_the_bill(server, product):
    code = product["code"]
    ec2 = client(server, key=BUYER_KEYS[0], secret=BUYER_KEYS[1])
    agr = svc(server, "marketplace-agreement", BUYER_KEYS)
    before = bill(server, "bill", "--account", "buyer")
    iid = ec2.run_instances(ImageId=product["image"], MinCount=1, MaxCount=1, InstanceType="t3.micro",
                            IamInstanceProfile={"Name": "metering"})["Instances"][0]["InstanceId"]
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 90})

    # The product code inside: the metadata tree and the identity document.
    assert "product-codes" in imds_get(server, iid, "/latest/meta-data/").split("\n")
    assert imds_get(server, iid, "/latest/meta-data/product-codes") == code
    doc = json.loads(imds_get(server, iid, "/latest/dynamic/instance-identity/document"))
    assert doc["marketplaceProductCodes"] == [code] and doc["instanceId"] == iid

    # MeterUsage with the instance's credentials: the instance is the customer.
    ts = meter_now(server) - 30
    out = meter_inside(server, iid, code, ts)
    first = out["first"]
    assert len(first) == 36 and first.count("-") == 4
    assert out == {"first": first, "again": first, "other": "DuplicateRequestException",
                   "old": "TimestampOutOfBoundsException",
                   "dimension": "InvalidUsageDimensionException",
                   "product": "InvalidProductCodeException", "dry": "DryRunOperation"}
    assert meter_inside(server, iid, code, ts, region="eu-west-1") == {
        "region": "InvalidEndpointRegionException"}

    # Cancelled: no new launch, the running instance keeps running, metered and billed.
    aid = [a["agreementId"] for a in agr.search_agreements(
        filters=[{"name": "Status", "values": ["ACTIVE"]}])["agreementViewSummaries"]][0]
    agr.cancel_agreement(agreementId=aid)
    assert error_of(lambda: ec2.run_instances(ImageId=product["image"], MinCount=1, MaxCount=1,
                                              InstanceType="t3.micro")) == ("OptInRequired", 401)
    advance(server, "1h")
    later = meter_inside(server, iid, code, meter_now(server) - 30)
    assert later["first"] not in (first, None) and len(later["first"]) == 36
    ec2.terminate_instances(InstanceIds=[iid])
    ec2.get_waiter("instance_terminated").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    advance(server, "3h")  # terminated: nothing more

    b = bill(server, "bill", "--account", "buyer")
    mine = [l for l in b["lines"] if l["instance"] == iid]
    hourly = [(l["hours"], l["price"], l["amount"]) for l in mine if not l.get("dimension")]
    usage = [(l["dimension"], l["quantity"], l["price"], l["amount"]) for l in mine if l.get("dimension")]
    assert hourly == [(2, "0.15", "0.30")]  # a little over one hour: two started hours
    assert usage == [("users", 14, "0.01", "0.14")]  # 7 in each of two hours
    # Totals are exact sums of micro-dollars.
    assert Decimal(b["total"]) == Decimal(before["total"]) + Decimal("0.30") + Decimal("0.14")
    report = bill(server, "marketplace", "report", "--seller", "seller")
    assert report["total"] == b["total"] and report["lines"] == b["lines"]
    table = kiln("bill", "--account", "buyer", "--data", server["data"]).stdout
    assert "USAGE" in table and "14 users" in table


def test_console_subscribes_and_cancels(server, product):
    """The console's Marketplace page: the products and the account's agreements, subscribe and
    cancel from the browser (the Agreement API signed by the page)."""
    from test_console import need_browser
    node, chromium, module = need_browser(None)
    agr = svc(server, "marketplace-agreement", BUYER_KEYS)
    for a in agr.search_agreements(filters=[{"name": "Status", "values": ["ACTIVE"]}])["agreementViewSummaries"]:
        agr.cancel_agreement(agreementId=a["agreementId"])
    before = {a["agreementId"] for a in agr.search_agreements()["agreementViewSummaries"]}
    env = dict(os.environ, PLAYWRIGHT=module, CHROMIUM=chromium, KILN_URL=server["url"], AK=BUYER_KEYS[0],
               SK=BUYER_KEYS[1], TITLE="Metered Widget", CODE=product["code"])
    r = subprocess.run([node, os.path.join(os.path.dirname(__file__), "console_marketplace.mjs")],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}"
    new = [a for a in agr.search_agreements()["agreementViewSummaries"] if a["agreementId"] not in before]
    assert [a["status"] for a in new] == ["CANCELLED"]
    assert f"cancelled: {new[0]['agreementId']}" in r.stdout
