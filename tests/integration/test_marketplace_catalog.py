"""The Marketplace Catalog API (boto3's 'marketplace-catalog' with endpoint_url): a seller bakes a
busybox image, creates a product and a public hourly offer in one change set, the change set
succeeds and the marketplace's copies exist in two regions with the product code and the owner
alias aws-marketplace; a buyer finds the image, is refused with OptInRequired, subscribes and
launches. The refusals: a malformed change set (ValidationException), an image that fails the
scan (root's authorized_keys left in it), an entity locked by a running change set
(ResourceInUseException), and the VALIDATE intent, which changes nothing."""
import json
import os
import sqlite3
import time

import boto3
import botocore
import pytest
from botocore.config import Config

from conftest import client, error_of, kiln, serving

MARKETPLACE = "679593333241"
SELLER = "222233334444"
BUYER = "555566667777"
SELLER_KEYS = ("AKIASELLERSELLERSELL", "seller-secret-seller-secret")
BUYER_KEYS = ("AKIABUYERBUYERBUYER1", "buyer-secret-buyer-secret-1")
CATALOG = "AWSMarketplace"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("catalog") / "data"
    kiln("init", "--data", data)
    kiln("account", "create", "seller", "--account-id", SELLER, "--access-key", SELLER_KEYS[0],
         "--secret-key", SELLER_KEYS[1], "--data", data)
    kiln("account", "create", "buyer", "--account-id", BUYER, "--access-key", BUYER_KEYS[0],
         "--secret-key", BUYER_KEYS[1], "--data", data)
    yield from serving(data)


def catalog(server, keys=SELLER_KEYS):
    return boto3.client("marketplace-catalog", region_name="us-east-1", endpoint_url=server["url"],
                        aws_access_key_id=keys[0], aws_secret_access_key=keys[1],
                        config=Config(retries={"max_attempts": 1, "mode": "standard"}))


def with_member(cat, operation, **members):
    """Members this botocore's model may not know yet (Intent, OwnershipType): put in the JSON
    body before signing."""
    def add(request, **_):
        body = json.loads(request.body or b"{}")
        body.update(members)
        request.data = json.dumps(body).encode()
        if "Content-Length" in request.headers:
            request.headers.replace_header("Content-Length", str(len(request.data)))
    cat.meta.events.register_first(f"before-sign.marketplace-catalog.{operation}", add)
    return cat


def wait_change_set(cat, csid, timeout=120):
    end = time.time() + timeout
    while time.time() < end:
        d = cat.describe_change_set(Catalog=CATALOG, ChangeSetId=csid)
        if d["Status"] in ("SUCCEEDED", "FAILED", "CANCELLED"):
            return d
        time.sleep(0.3)
    raise AssertionError(f"change set {csid} still {d['Status']}")


def change(ctype, etype, details, ident=None, name=None):
    c = {"ChangeType": ctype, "Entity": {"Type": etype}, "Details": json.dumps(details)}
    if ident:
        c["Entity"]["Identifier"] = ident
    if name:
        c["ChangeName"] = name
    return c


def product_changes(ami, title="Widget Server", regions=("us-east-1", "eu-west-1"),
                    dimensions=(), usage_prices=None):
    """The change set of a product and its public hourly offer; with dimensions, the product's
    AddDimensions comes after AddInstanceTypes and usage_prices {key: price} join the rate
    card."""
    p = "$CreateProduct.Entity.Identifier"
    rates = [{"DimensionKey": "t3.micro", "Price": "0.15"},
             {"DimensionKey": "t3.small", "Price": "0.30"}]
    rates += [{"DimensionKey": k, "Price": v} for k, v in (usage_prices or {}).items()]
    added = [change("AddDimensions", "AmiProduct@1.0", list(dimensions), p)] if dimensions else []
    option = {"Details": {"AmiDeliveryOptionDetails": {
        "AmiSource": {"AmiId": ami, "AccessRoleArn": f"arn:aws:iam::{SELLER}:role/ingest",
                      "UserName": "root", "OperatingSystemName": "OTHERLINUX",
                      "OperatingSystemVersion": "busybox", "ScanningPort": 22},
        "UsageInstructions": "ssh in as root", "RecommendedInstanceType": "t3.micro",
        "SecurityGroups": [{"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22,
                            "IpRanges": ["0.0.0.0/0"]}]}}}
    return [
        change("CreateProduct", "AmiProduct@1.0", {}, name="CreateProduct"),
        change("UpdateInformation", "AmiProduct@1.0",
               {"ProductTitle": title, "ShortDescription": "a widget", "Sku": "WIDGET-1"}, p),
        change("AddRegions", "AmiProduct@1.0", {"Regions": list(regions)}, p),
        change("AddInstanceTypes", "AmiProduct@1.0", {"InstanceTypes": ["t3.micro", "t3.small"]}, p),
        *added,
        change("AddDeliveryOptions", "AmiProduct@1.0",
               {"Version": {"VersionTitle": "1.0", "ReleaseNotes": "first"},
                "DeliveryOptions": [option]}, p),
        change("ReleaseProduct", "AmiProduct@1.0", {}, p),
        change("UpdateVisibility", "AmiProduct@1.0", {"TargetVisibility": "Public"}, p),
        change("CreateOffer", "Offer@1.0", {"ProductId": p}, name="CreateOffer"),
        change("UpdatePricingTerms", "Offer@1.0", {
            "PricingModel": "Usage",
            "Terms": [{"Type": "UsageBasedPricingTerm", "CurrencyCode": "USD", "RateCards": [
                {"RateCard": rates}]}]},
               "$CreateOffer.Entity.Identifier"),
        change("UpdateLegalTerms", "Offer@1.0", {"Terms": [
            {"Type": "LegalTerm", "Documents": [{"Type": "StandardEula", "Version": "2022-07-14"}]}]},
               "$CreateOffer.Entity.Identifier"),
        change("ReleaseOffer", "Offer@1.0", {}, "$CreateOffer.Entity.Identifier"),
    ]


def marketplace_images(server):
    """The marketplace account's images and the codes on them, from the database (what no
    account's DescribeImages shows whole)."""
    db = sqlite3.connect(os.path.join(server["data"], "kiln.db"))
    try:
        return db.execute("SELECT i.id, i.region, (SELECT group_concat(code) FROM product_codes "
                          "WHERE resource = i.id) FROM images i WHERE owner = ? ORDER BY id",
                          (MARKETPLACE,)).fetchall()
    finally:
        db.close()


def wait_running(ec2, iid):
    ec2.get_waiter("instance_running").wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 90})


def bake(ec2, name, key=None):
    """A busybox instance (with a key pair: root's authorized_keys written), stopped and baked."""
    pub = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-busybox"]}])
    args = {"ImageId": pub["Images"][0]["ImageId"], "MinCount": 1, "MaxCount": 1,
            "InstanceType": "t3.micro", "UserData": "#!/bin/sh\necho widget > /etc/widget\n"}
    if key:
        args["KeyName"] = key
    iid = ec2.run_instances(**args)["Instances"][0]["InstanceId"]
    return iid


@pytest.fixture(scope="module")
def images(server):
    ec2 = client(server, key=SELLER_KEYS[0], secret=SELLER_KEYS[1])
    ec2.create_key_pair(KeyName="seller-key", KeyType="ed25519")
    good, bad = bake(ec2, "widget-1.0"), bake(ec2, "widget-bad", key="seller-key")
    for iid in (good, bad):
        wait_running(ec2, iid)
    ec2.stop_instances(InstanceIds=[good, bad])
    ec2.get_waiter("instance_stopped").wait(InstanceIds=[good, bad],
                                            WaiterConfig={"Delay": 1, "MaxAttempts": 90})
    out = {}
    for iid, name in ((good, "widget-1.0"), (bad, "widget-bad")):
        out[name] = ec2.create_image(InstanceId=iid, Name=name)["ImageId"]
    ec2.get_waiter("image_available").wait(ImageIds=list(out.values()),
                                           WaiterConfig={"Delay": 1, "MaxAttempts": 120})
    ec2.terminate_instances(InstanceIds=[good, bad])
    return out


@pytest.fixture(scope="module")
def product(server, images):
    cat = catalog(server)
    started = cat.start_change_set(Catalog=CATALOG, ChangeSet=product_changes(images["widget-1.0"]),
                                   ChangeSetName="widget", ClientRequestToken="widget-token-1")
    csid = started["ChangeSetId"]
    assert started["ChangeSetArn"].endswith("/ChangeSet/" + csid)
    d = wait_change_set(cat, csid)
    assert d["Status"] == "SUCCEEDED", d
    assert all(c["ErrorDetailList"] == [] for c in d["ChangeSet"])
    pid = d["ChangeSet"][0]["Entity"]["Identifier"]
    oid = d["ChangeSet"][7]["Entity"]["Identifier"]
    assert pid.startswith("prod-") and oid.startswith("offer-")
    time.sleep(1.1)  # past the daemon's one-second cache of read answers
    return {"change_set": csid, "id": pid, "offer": oid}


def test_change_set_succeeds_and_is_idempotent(server, product, images):
    cat = catalog(server)
    # The same token answers the same change set.
    again = cat.start_change_set(Catalog=CATALOG, ChangeSet=product_changes(images["widget-1.0"]),
                                 ClientRequestToken="widget-token-1")
    assert again["ChangeSetId"] == product["change_set"]
    listed = cat.list_change_sets(Catalog=CATALOG)["ChangeSetSummaryList"]
    assert [c["ChangeSetId"] for c in listed] == [product["change_set"]]
    assert listed[0]["Status"] == "SUCCEEDED" and listed[0]["ChangeSetName"] == "widget"
    assert set(listed[0]["EntityIdList"]) == {product["id"], product["offer"]}
    # The buyer sees none of the seller's change sets or entities.
    buyer = catalog(server, BUYER_KEYS)
    assert error_of(lambda: buyer.describe_change_set(Catalog=CATALOG, ChangeSetId=product["change_set"])) \
        == ("ResourceNotFoundException", 404)
    assert buyer.list_entities(Catalog=CATALOG, EntityType="AmiProduct")["EntitySummaryList"] == []


def test_entities_describe_and_list(server, product, images):
    cat = catalog(server)
    e = cat.describe_entity(Catalog=CATALOG, EntityId=product["id"])
    assert e["EntityType"] == "AmiProduct@1.0" and e["EntityIdentifier"].startswith(product["id"] + "@")
    d = json.loads(e["Details"])
    assert d["Description"]["ProductTitle"] == "Widget Server"
    assert d["Description"]["Visibility"] == "Public"
    code = d["Description"]["ProductCode"]
    assert len(code) == 25 and code.isalnum()
    assert d["RegionAvailability"]["Regions"] == ["us-east-1", "eu-west-1"]
    assert d["Compatibility"]["AvailableInstanceTypes"] == ["t3.micro", "t3.small"]
    [v] = d["Versions"]
    assert v["VersionTitle"] == "1.0" and v["Sources"][0]["Image"] == images["widget-1.0"]
    assert v["DeliveryOptions"][0]["AmiAlias"] == f"/aws/service/marketplace/{product['id']}/1.0"
    o = json.loads(cat.describe_entity(Catalog=CATALOG, EntityId=product["offer"])["Details"])
    assert o["State"] == "Released" and o["ProductId"] == product["id"]
    listed = cat.list_entities(Catalog=CATALOG, EntityType="AmiProduct")["EntitySummaryList"]
    assert [(x["EntityId"], x["Name"], x["Visibility"]) for x in listed] == \
        [(product["id"], "Widget Server", "Public")]
    assert cat.list_entities(Catalog=CATALOG, EntityType="AmiProduct", FilterList=[
        {"Name": "Visibility", "ValueList": ["Limited"]}])["EntitySummaryList"] == []
    offers = cat.list_entities(Catalog=CATALOG, EntityType="Offer")["EntitySummaryList"]
    assert [x["EntityId"] for x in offers] == [product["offer"]]
    shared = with_member(catalog(server), "ListEntities", OwnershipType="SHARED")
    assert shared.list_entities(Catalog=CATALOG, EntityType="AmiProduct")["EntitySummaryList"] == []
    assert error_of(lambda: cat.describe_entity(Catalog=CATALOG, EntityId="prod-nope")) == \
        ("ResourceNotFoundException", 404)
    # The operator's view of the same product: marketplace.c's products and prices.
    listed = json.loads(kiln("marketplace", "products", "--json", "--data", server["data"]).stdout)
    [p] = listed
    assert p["id"] == product["id"] and p["code"] == code and p["seller"] == SELLER
    assert p["pricing"] == "hourly" and p["instance_types"] == {"t3.micro": "0.15", "t3.small": "0.30"}
    product["code"] = code


def test_copies_in_two_regions_and_the_buyer_launches(server, product):
    code = product.get("code") or json.loads(catalog(server).describe_entity(
        Catalog=CATALOG, EntityId=product["id"])["Details"])["Description"]["ProductCode"]
    codes = [{"ProductCodeId": code, "ProductCodeType": "marketplace"}]
    found = {}
    for region in ("us-east-1", "eu-west-1"):
        ec2 = client(server, region=region, key=BUYER_KEYS[0], secret=BUYER_KEYS[1])
        [im] = ec2.describe_images(Owners=["aws-marketplace"])["Images"]
        assert im["OwnerId"] == MARKETPLACE and im["ImageOwnerAlias"] == "aws-marketplace"
        assert im["ProductCodes"] == codes and im["Public"] is True
        found[region] = (im["ImageId"], im["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"])
    assert found["us-east-1"][0] != found["eu-west-1"][0]
    rows = marketplace_images(server)
    assert sorted((r[1], r[2]) for r in rows) == [("eu-west-1", code), ("us-east-1", code)]
    ec2 = client(server, key=BUYER_KEYS[0], secret=BUYER_KEYS[1])
    ami = found["us-east-1"][0]
    assert error_of(lambda: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1,
                                              InstanceType="t3.micro")) == ("OptInRequired", 401)
    kiln("marketplace", "subscribe", product["id"], "--account", "buyer", "--data", server["data"])
    assert error_of(lambda: ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1,
                                              InstanceType="t2.micro"))[0] == "UnsupportedOperation"
    run = ec2.run_instances(ImageId=ami, MinCount=1, MaxCount=1, InstanceType="t3.micro")
    iid = run["Instances"][0]["InstanceId"]
    assert run["Instances"][0]["ProductCodes"] == codes
    wait_running(ec2, iid)
    ec2.terminate_instances(InstanceIds=[iid])


def test_bad_change_sets_are_refused(server, images):
    cat = catalog(server)
    for bad in ([change("CreateProduct", "SaaSProduct@1.0", {})],
                [change("Explode", "AmiProduct@1.0", {})],
                [{"ChangeType": "CreateProduct", "Entity": {"Type": "AmiProduct@1.0"}, "Details": "{nope"}],
                [change("AddRegions", "AmiProduct@1.0", {"Regions": ["us-east-1"]},
                        "$Nobody.Entity.Identifier")]):
        assert error_of(lambda: cat.start_change_set(Catalog=CATALOG, ChangeSet=bad)) == \
            ("ValidationException", 422)
    assert error_of(lambda: cat.start_change_set(Catalog="Elsewhere", ChangeSet=[
        change("CreateProduct", "AmiProduct@1.0", {})])) == ("ValidationException", 422)
    assert error_of(lambda: cat.start_change_set(Catalog=CATALOG, ChangeSet=[
        change("AddRegions", "AmiProduct@1.0", {"Regions": ["us-east-1"]}, "prod-nope")])) == \
        ("ResourceNotFoundException", 404)
    # Well formed but wrong in its details: the change set fails with the change's error.
    csid = cat.start_change_set(Catalog=CATALOG, ChangeSet=[
        change("CreateProduct", "AmiProduct@1.0", {}, name="P"),
        change("AddInstanceTypes", "AmiProduct@1.0", {"InstanceTypes": ["z9.huge"]},
               "$P.Entity.Identifier")])["ChangeSetId"]
    d = wait_change_set(cat, csid)
    assert d["Status"] == "FAILED" and d["FailureCode"] == "CLIENT_ERROR"
    assert d["ChangeSet"][0]["ErrorDetailList"] == []
    [err] = d["ChangeSet"][1]["ErrorDetailList"]
    assert "z9.huge" in err["ErrorMessage"]


def test_a_failed_scan_fails_the_change_set(server, images):
    cat = catalog(server)
    before = marketplace_images(server)
    csid = cat.start_change_set(Catalog=CATALOG, ChangeSet=product_changes(
        images["widget-bad"], title="Leaky Widget"))["ChangeSetId"]
    d = wait_change_set(cat, csid)
    assert d["Status"] == "FAILED" and d["FailureCode"] == "CLIENT_ERROR", d
    [err] = d["ChangeSet"][4]["ErrorDetailList"]
    assert err["ErrorCode"] == "SCAN_FAILED"
    assert "/root/.ssh/authorized_keys" in err["ErrorMessage"]
    # Nothing of it stays: no entity, no copy.
    titles = [e["Name"] for e in cat.list_entities(Catalog=CATALOG, EntityType="AmiProduct")["EntitySummaryList"]]
    assert "Leaky Widget" not in titles
    assert marketplace_images(server) == before


def test_validate_changes_nothing(server, product, images):
    cat = with_member(catalog(server), "StartChangeSet", Intent="VALIDATE")
    csid = cat.start_change_set(Catalog=CATALOG, ChangeSet=[
        change("UpdateInformation", "AmiProduct@1.0", {"ProductTitle": "Renamed"}, product["id"])])["ChangeSetId"]
    assert wait_change_set(cat, csid)["Status"] == "SUCCEEDED"
    d = json.loads(catalog(server).describe_entity(Catalog=CATALOG, EntityId=product["id"])["Details"])
    assert d["Description"]["ProductTitle"] == "Widget Server"
    # A VALIDATE that finds an error fails as APPLY would.
    csid = cat.start_change_set(Catalog=CATALOG, ChangeSet=[
        change("UpdateVisibility", "AmiProduct@1.0", {"TargetVisibility": "Everyone"}, product["id"])])["ChangeSetId"]
    assert wait_change_set(cat, csid)["Status"] == "FAILED"


def test_an_entity_is_locked_while_its_change_set_runs(server, product, images):
    cat = catalog(server)
    # A second version: its ingestion (scan, copies in two regions) keeps the product locked.
    option = {"Details": {"AmiDeliveryOptionDetails": {"AmiSource": {
        "AmiId": images["widget-1.0"], "UserName": "root", "OperatingSystemName": "OTHERLINUX",
        "OperatingSystemVersion": "busybox", "ScanningPort": 22}}}}
    first = cat.start_change_set(Catalog=CATALOG, ChangeSet=[change(
        "AddDeliveryOptions", "AmiProduct@1.0",
        {"Version": {"VersionTitle": "1.1"}, "DeliveryOptions": [option]}, product["id"])])["ChangeSetId"]
    assert error_of(lambda: cat.start_change_set(Catalog=CATALOG, ChangeSet=[change(
        "UpdateInformation", "AmiProduct@1.0", {"ShortDescription": "busy"}, product["id"])])) == \
        ("ResourceInUseException", 423)
    assert error_of(lambda: cat.cancel_change_set(Catalog=CATALOG, ChangeSetId=product["change_set"])) == \
        ("ResourceInUseException", 423)
    d = wait_change_set(cat, first)
    assert d["Status"] == "SUCCEEDED", d
    versions = json.loads(cat.describe_entity(Catalog=CATALOG, EntityId=product["id"])["Details"])["Versions"]
    assert [v["VersionTitle"] for v in versions] == ["1.0", "1.1"]
    # Unlocked again; restricting the first version hides its images from new buyers.
    old = versions[0]["DeliveryOptions"][0]["Id"]
    csid = cat.start_change_set(Catalog=CATALOG, ChangeSet=[change(
        "RestrictDeliveryOptions", "AmiProduct@1.0", {"DeliveryOptionIds": [old]}, product["id"])])["ChangeSetId"]
    assert wait_change_set(cat, csid)["Status"] == "SUCCEEDED"
    time.sleep(1.1)
    ec2 = client(server, key=BUYER_KEYS[0], secret=BUYER_KEYS[1])
    # The buyer subscribed before: it still sees (and may launch) both versions' images.
    assert len(ec2.describe_images(Owners=["aws-marketplace"])["Images"]) == 2
    seller = client(server, key=SELLER_KEYS[0], secret=SELLER_KEYS[1])
    assert len(seller.describe_images(Owners=["aws-marketplace"])["Images"]) == 2
    # A new buyer (the operator's default account) finds only the current version.
    images = client(server).describe_images(Owners=["aws-marketplace"])["Images"]
    assert len(images) == 1
    # One image per region per version, each with the code.
    rows = [r for r in marketplace_images(server)]
    assert len(rows) == 4 and all(r[2] for r in rows)


def test_a_limited_free_product_is_the_sellers_alone(server, images):
    cat = catalog(server)
    p, o = "$P.Entity.Identifier", "$O.Entity.Identifier"
    source = {"AmiId": images["widget-1.0"], "UserName": "root", "OperatingSystemName": "OTHERLINUX",
              "OperatingSystemVersion": "busybox"}
    csid = cat.start_change_set(Catalog=CATALOG, ChangeSet=[
        change("CreateProduct", "AmiProduct@1.0", {"ProductTitle": "Widget Lite"}, name="P"),
        change("AddRegions", "AmiProduct@1.0", {"Regions": ["us-east-1"]}, p),
        change("AddInstanceTypes", "AmiProduct@1.0", {"InstanceTypes": ["t3.micro"]}, p),
        change("AddDeliveryOptions", "AmiProduct@1.0", {"Version": {"VersionTitle": "lite-1"},
               "DeliveryOptions": [{"Details": {"AmiDeliveryOptionDetails": {"AmiSource": source}}}]}, p),
        change("ReleaseProduct", "AmiProduct@1.0", {}, p),
        change("CreateOffer", "Offer@1.0", {"ProductId": p}, name="O"),
        change("UpdatePricingTerms", "Offer@1.0", {"PricingModel": "Free", "Terms": []}, o),
        change("ReleaseOffer", "Offer@1.0", {}, o)])["ChangeSetId"]
    d = wait_change_set(cat, csid)
    assert d["Status"] == "SUCCEEDED", d
    pid = d["ChangeSet"][0]["Entity"]["Identifier"]
    listed = {x["id"]: x for x in json.loads(kiln("marketplace", "products", "--json", "--data",
                                                  server["data"]).stdout)}
    assert listed[pid]["pricing"] == "free" and listed[pid]["instance_types"] == {"t3.micro": "0.00"}
    time.sleep(1.1)
    seller_sees = client(server, key=SELLER_KEYS[0], secret=SELLER_KEYS[1]).describe_images(
        Owners=["aws-marketplace"], Filters=[{"Name": "name", "Values": [f"{pid}-*"]}])["Images"]
    assert len(seller_sees) == 1 and seller_sees[0]["Public"] is False
    assert client(server, key=BUYER_KEYS[0], secret=BUYER_KEYS[1]).describe_images(
        Owners=["aws-marketplace"], Filters=[{"Name": "name", "Values": [f"{pid}-*"]}])["Images"] == []
    r = kiln("marketplace", "subscribe", pid, "--account", "buyer", "--data", server["data"], check=False)
    assert r.returncode == 1 and "Limited" in r.stderr
    # A region added later gets a copy of every version, with the code.
    before = [r for r in marketplace_images(server) if r[1] == "eu-west-1"]
    csid = cat.start_change_set(Catalog=CATALOG, ChangeSet=[
        change("AddRegions", "AmiProduct@1.0", {"Regions": ["eu-west-1"]}, pid)])["ChangeSetId"]
    assert wait_change_set(cat, csid)["Status"] == "SUCCEEDED"
    after = [r for r in marketplace_images(server) if r[1] == "eu-west-1"]
    [new] = [r for r in after if r not in before]
    code = json.loads(cat.describe_entity(Catalog=CATALOG, EntityId=pid)["Details"])["Description"]["ProductCode"]
    assert new[2] == code


REQUESTS = {"Key": "requests", "Name": "API requests", "Unit": "Requests",
            "Types": ["ExternallyMetered"], "Description": "requests served, per request"}


def pricing(rates):
    return {"PricingModel": "Usage", "Terms": [{"Type": "UsageBasedPricingTerm", "CurrencyCode": "USD",
                                                "RateCards": [{"RateCard": rates}]}]}


def test_usage_dimensions_are_priced_by_the_offer(server, product):
    """AddDimensions' ExternallyMetered dimension, priced by UpdatePricingTerms' rate card,
    becomes the product's metering dimension at that price; rate card keys that are neither
    instance types nor usage dimensions, and dimensions AWS refuses, fail the change set."""
    cat = catalog(server)
    csid = cat.start_change_set(Catalog=CATALOG, ChangeSet=[
        change("AddDimensions", "AmiProduct@1.0", [REQUESTS], product["id"]),
        change("UpdatePricingTerms", "Offer@1.0", pricing([
            {"DimensionKey": "t3.micro", "Price": "0.15"}, {"DimensionKey": "t3.small", "Price": "0.30"},
            {"DimensionKey": "requests", "Price": "0.0025"}]), product["offer"])])["ChangeSetId"]
    d = wait_change_set(cat, csid)
    assert d["Status"] == "SUCCEEDED", d
    details = json.loads(cat.describe_entity(Catalog=CATALOG, EntityId=product["id"])["Details"])
    assert [x for x in details["Dimensions"] if x["Key"] == "requests"] == [REQUESTS]
    [p] = [p for p in json.loads(kiln("marketplace", "products", "--json", "--data", server["data"]).stdout)
           if p["id"] == product["id"]]
    assert p["dimensions"] == {"requests": "0.0025"}
    assert p["instance_types"] == {"t3.micro": "0.15", "t3.small": "0.30"}

    def failed(changes, index=0):
        d = wait_change_set(cat, cat.start_change_set(Catalog=CATALOG, ChangeSet=changes)["ChangeSetId"])
        assert d["Status"] == "FAILED" and d["FailureCode"] == "CLIENT_ERROR", d
        [err] = d["ChangeSet"][index]["ErrorDetailList"]
        return err["ErrorCode"], err["ErrorMessage"]

    code, message = failed([change("UpdatePricingTerms", "Offer@1.0", pricing([
        {"DimensionKey": "t3.micro", "Price": "0.15"}, {"DimensionKey": "bogus", "Price": "1"}]),
        product["offer"])])
    assert code == "INVALID_DIMENSION" and "'bogus'" in message and product["id"] in message
    for bad in (dict(REQUESTS, Key="seats", Name="Seats", Types=["Entitled"]),
                dict(REQUESTS, Key="seats", Name="Seats", Unit="Parsecs"),
                dict(REQUESTS, Key="seats", Name="Seats", Types=["Metered"]),  # not an instance type
                dict(REQUESTS, Key="bad key!", Name="Seats"),
                dict(REQUESTS, Name="Again")):  # its key is the product's already
        code, message = failed([change("AddDimensions", "AmiProduct@1.0", [bad], product["id"])])
        assert code == "INVALID_DIMENSION", message
    # Nothing of the failed change sets stayed: the price is the one the offer set.
    [p] = [p for p in json.loads(kiln("marketplace", "products", "--json", "--data", server["data"]).stdout)
           if p["id"] == product["id"]]
    assert p["dimensions"] == {"requests": "0.0025"}


def test_the_catalog_answers_in_us_east_1_only(server, product):
    elsewhere = boto3.client("marketplace-catalog", region_name="eu-west-1", endpoint_url=server["url"],
                             aws_access_key_id=SELLER_KEYS[0], aws_secret_access_key=SELLER_KEYS[1],
                             config=Config(retries={"max_attempts": 1, "mode": "standard"}))
    with pytest.raises(botocore.exceptions.ClientError) as e:
        elsewhere.describe_entity(Catalog=CATALOG, EntityId=product["id"])
    assert e.value.response["Error"]["Code"] == "InvalidSignatureException"
    assert e.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert "not 'eu-west-1'" in e.value.response["Error"]["Message"]
    assert catalog(server).describe_entity(Catalog=CATALOG, EntityId=product["id"])["EntityType"] == "AmiProduct@1.0"
