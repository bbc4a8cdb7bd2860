"""The marketplace with two accounts and boto3: a seller's image published as a product (the
operator's `kiln marketplace publish`), found by a buyer with Owners=aws-marketplace and the
product-code filters, refused at launch without a subscription (OptInRequired, 401) or with an
instance type the product does not allow (UnsupportedOperation), launched once subscribed,
product codes carried to instances, volumes, snapshots and derived images, the refusals of
public and cross-account copies, ConfirmProductInstance, and a bill computed from the real
state changes with the test clock: 2.5 hours running, stopped, 10 minutes running again:
4 hours at the price."""
import json
import time

import botocore
import pytest

from conftest import KILN, client, error_of, kiln, serving

MARKETPLACE = "679593333241"
SELLER = "222233334444"
BUYER = "555566667777"
SELLER_KEYS = ("AKIASELLERSELLERSELL", "seller-secret-seller-secret")
BUYER_KEYS = ("AKIABUYERBUYERBUYER1", "buyer-secret-buyer-secret-1")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    data = tmp_path_factory.mktemp("market") / "data"
    kiln("init", "--data", data)
    kiln("account", "create", "seller", "--account-id", SELLER, "--access-key", SELLER_KEYS[0],
         "--secret-key", SELLER_KEYS[1], "--data", data)
    kiln("account", "create", "buyer", "--account-id", BUYER, "--access-key", BUYER_KEYS[0],
         "--secret-key", BUYER_KEYS[1], "--data", data)
    yield from serving(data, "--test-clock")


def seller(server):
    return client(server, key=SELLER_KEYS[0], secret=SELLER_KEYS[1])


def buyer(server):
    return client(server, key=BUYER_KEYS[0], secret=BUYER_KEYS[1])


def market(server, *args, check=True):
    return kiln("marketplace", *args, "--data", server["data"], check=check)


def wait_image(ec2, ami):
    ec2.get_waiter("image_available").wait(ImageIds=[ami], WaiterConfig={"Delay": 1, "MaxAttempts": 120})


def wait(ec2, name, iid):
    ec2.get_waiter(name).wait(InstanceIds=[iid], WaiterConfig={"Delay": 1, "MaxAttempts": 90})


def message_of(call):
    with pytest.raises(botocore.exceptions.ClientError) as e:
        call()
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


@pytest.fixture(scope="module")
def product(server):
    """The seller's own image (a copy of the public busybox image), published hourly at
    0.15 (t3.micro) and 0.30 (t3.small) an hour."""
    ec2 = seller(server)
    pub = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-busybox"]}])
    src = pub["Images"][0]["ImageId"]
    ami = ec2.copy_image(SourceRegion="us-east-1", SourceImageId=src, Name="widget-1.0")["ImageId"]
    wait_image(ec2, ami)
    out = market(server, "publish", ami, "--seller", "seller", "--title", "Widget Server",
                 "--price", "t3.micro=0.15", "--price", "t3.small=0.30", "--json").stdout
    p = json.loads(out)
    assert p["seller"] == SELLER and p["pricing"] == "hourly"
    assert p["instance_types"] == {"t3.micro": "0.15", "t3.small": "0.30"}
    assert len(p["code"]) == 25 and p["code"].isalnum() and p["id"].startswith("prod-")
    # The seller's own image carries no code: the marketplace's copy does.
    assert "ProductCodes" not in ec2.describe_images(ImageIds=[ami])["Images"][0]
    time.sleep(1.1)  # past the daemon's one-second cache of read answers
    return p


def test_buyer_finds_the_product_by_owner_and_code(server, product):
    ec2 = buyer(server)
    imgs = ec2.describe_images(Owners=["aws-marketplace"])["Images"]
    assert [i["ImageId"] for i in imgs] == [product["image"]]
    im = imgs[0]
    assert im["OwnerId"] == MARKETPLACE and im["ImageOwnerAlias"] == "aws-marketplace"
    assert im["Public"] is True
    assert im["ProductCodes"] == [{"ProductCodeId": product["code"], "ProductCodeType": "marketplace"}]
    for filters in ([{"Name": "product-code", "Values": [product["code"]]}],
                    [{"Name": "product-code.type", "Values": ["marketplace"]}]):
        found = ec2.describe_images(Filters=filters)["Images"]
        assert [i["ImageId"] for i in found] == [product["image"]]
    assert ec2.describe_images(Filters=[{"Name": "product-code", "Values": ["nope"]}])["Images"] == []
    assert ec2.describe_images(Owners=[MARKETPLACE])["Images"][0]["ImageId"] == product["image"]
    # The amazon images are still the provider's, without codes.
    amazon = ec2.describe_images(Owners=["amazon"])["Images"]
    assert amazon and all("ProductCodes" not in i for i in amazon)


def test_products_listing_and_bad_publishing(server, product):
    listed = json.loads(market(server, "products", "--json").stdout)
    assert [p["code"] for p in listed] == [product["code"]]
    # The marketplace's image is another product's already; unknown types; a price for BYOL.
    r = market(server, "publish", product["image"], "--seller", "aws-marketplace", "--title", "x",
               check=False)
    assert r.returncode == 1 and "product code" in r.stderr
    r = market(server, "publish", product["image"], "--seller", "seller", "--title", "x",
               "--price", "z9.huge=1", check=False)
    assert r.returncode == 1
    r = market(server, "publish", product["image"], "--seller", "seller", "--title", "x",
               "--price", "t3.micro=0.1234567", check=False)
    assert r.returncode == 1 and "6 decimals" in r.stderr


def test_launch_needs_a_subscription_and_an_allowed_type(server, product):
    ec2 = buyer(server)
    with pytest.raises(botocore.exceptions.ClientError) as e:
        ec2.run_instances(ImageId=product["image"], MinCount=1, MaxCount=1, InstanceType="t3.micro")
    err = e.value.response
    assert err["Error"]["Code"] == "OptInRequired"
    assert err["ResponseMetadata"]["HTTPStatusCode"] == 401
    assert err["Error"]["Message"] == (
        "In order to use this AWS Marketplace product you need to accept terms and subscribe. "
        "To do so please visit https://aws.amazon.com/marketplace/pp?sku=" + product["code"])
    agreement = market(server, "subscribe", product["code"], "--account", "buyer").stdout.strip()
    assert agreement.startswith("agmt-")
    # Subscribing again answers the same agreement.
    assert market(server, "subscribe", product["id"], "--account", "buyer").stdout.strip() == agreement
    subs = json.loads(market(server, "ls", "--account", "buyer", "--json").stdout)
    assert subs == [{"agreement": agreement, "product": product["code"], "title": "Widget Server",
                     "status": "ACTIVE"}]
    code, msg = message_of(lambda: ec2.run_instances(ImageId=product["image"], MinCount=1, MaxCount=1,
                                                     InstanceType="t2.micro"))
    assert code == "UnsupportedOperation" and "sku=" + product["code"] in msg


def test_public_and_foreign_copies_are_refused(server, product):
    ec2 = buyer(server)
    # The marketplace's image cannot be copied by the buyer.
    code, _ = message_of(lambda: ec2.copy_image(SourceRegion="us-east-1", SourceImageId=product["image"],
                                                Name="stolen"))
    assert code == "InvalidParameter"


def test_run_bill_derive_and_unsubscribe(server, product):
    ec2, sell = buyer(server), seller(server)
    run = ec2.run_instances(ImageId=product["image"], MinCount=1, MaxCount=1, InstanceType="t3.micro")
    iid = run["Instances"][0]["InstanceId"]
    codes = [{"ProductCodeId": product["code"], "ProductCodeType": "marketplace"}]
    assert run["Instances"][0]["ProductCodes"] == codes
    wait(ec2, "instance_running", iid)
    inst = ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]
    assert inst["ProductCodes"] == codes
    found = ec2.describe_instances(Filters=[{"Name": "product-code", "Values": [product["code"]]}])
    assert [i["InstanceId"] for r in found["Reservations"] for i in r["Instances"]] == [iid]
    assert ec2.describe_instance_attribute(InstanceId=iid, Attribute="productCodes")["ProductCodes"] == codes
    root = inst["BlockDeviceMappings"][0]["Ebs"]["VolumeId"]
    assert ec2.describe_volume_attribute(VolumeId=root, Attribute="productCodes")["ProductCodes"] == codes

    # The seller confirms the instance carries its product; the buyer is no seller.
    conf = sell.confirm_product_instance(InstanceId=iid, ProductCode=product["code"])
    assert conf["Return"] is True and conf["OwnerId"] == BUYER
    assert ec2.confirm_product_instance(InstanceId=iid, ProductCode=product["code"])["Return"] is False

    # A derived image keeps the code, and so do its snapshot, an image registered from that
    # snapshot and a copy in the account.
    derived = ec2.create_image(InstanceId=iid, Name="my-widget", NoReboot=True)["ImageId"]
    wait_image(ec2, derived)
    dim = ec2.describe_images(ImageIds=[derived])["Images"][0]
    assert dim["ProductCodes"] == codes
    # (Only an image's owner reads its attributes, as in EC2.)
    assert ec2.describe_image_attribute(ImageId=derived, Attribute="productCodes")["ProductCodes"] == codes
    snap = dim["BlockDeviceMappings"][0]["Ebs"]["SnapshotId"]
    assert ec2.describe_snapshot_attribute(SnapshotId=snap, Attribute="productCodes")["ProductCodes"] == codes
    reg = ec2.register_image(Name="my-widget-registered", RootDeviceName="/dev/xvda",
                             BlockDeviceMappings=[{"DeviceName": "/dev/xvda", "Ebs": {"SnapshotId": snap}}])
    assert ec2.describe_images(ImageIds=[reg["ImageId"]])["Images"][0]["ProductCodes"] == codes
    copy = ec2.copy_image(SourceRegion="us-east-1", SourceImageId=derived, Name="my-widget-copy")["ImageId"]
    assert ec2.describe_images(ImageIds=[copy])["Images"][0]["ProductCodes"] == codes
    # Not public, its snapshot not shared, and another account cannot copy it.
    code, msg = message_of(lambda: ec2.modify_image_attribute(
        ImageId=derived, LaunchPermission={"Add": [{"Group": "all"}]}))
    assert (code, msg) == ("InvalidParameter",
                           "Images with an AWS Marketplace product code cannot be made public.")
    code, _ = message_of(lambda: ec2.modify_snapshot_attribute(
        SnapshotId=snap, Attribute="createVolumePermission", OperationType="add", UserIds=[SELLER]))
    assert code == "InvalidParameter"
    ec2.modify_image_attribute(ImageId=derived, LaunchPermission={"Add": [{"UserId": SELLER}]})
    code, _ = message_of(lambda: sell.copy_image(SourceRegion="us-east-1", SourceImageId=derived,
                                                 Name="not-mine"))
    assert code == "InvalidParameter"
    # The seller (not subscribed) cannot launch the shared derived image either.
    assert error_of(lambda: sell.run_instances(ImageId=derived, MinCount=1, MaxCount=1,
                                               InstanceType="t3.micro")) == ("OptInRequired", 401)

    # 2.5 hours running (3 started hours), stopped, 10 minutes running (1): 4 hours.
    kiln("clock", "advance", "2h30m", "--data", server["data"])
    ec2.stop_instances(InstanceIds=[iid])
    wait(ec2, "instance_stopped", iid)
    kiln("clock", "advance", "5h", "--data", server["data"])  # stopped: not billed
    ec2.start_instances(InstanceIds=[iid])
    wait(ec2, "instance_running", iid)

    # Unsubscribed: no new launch, the running instance keeps running (and billed).
    market(server, "unsubscribe", product["code"], "--account", "buyer")
    assert error_of(lambda: ec2.run_instances(ImageId=product["image"], MinCount=1, MaxCount=1,
                                              InstanceType="t3.micro")) == ("OptInRequired", 401)
    assert error_of(lambda: ec2.run_instances(ImageId=derived, MinCount=1, MaxCount=1,
                                              InstanceType="t3.micro")) == ("OptInRequired", 401)
    assert ec2.describe_instances(InstanceIds=[iid])["Reservations"][0]["Instances"][0]["State"]["Name"] == "running"
    subs = json.loads(market(server, "ls", "--account", "buyer", "--json").stdout)
    assert [s["status"] for s in subs] == ["CANCELLED"]

    kiln("clock", "advance", "10m", "--data", server["data"])
    ec2.terminate_instances(InstanceIds=[iid])
    wait(ec2, "instance_terminated", iid)
    kiln("clock", "advance", "3h", "--data", server["data"])  # terminated: not billed

    bill = json.loads(kiln("bill", "--account", "buyer", "--json", "--data", server["data"]).stdout)
    assert bill["total"] == "0.60" and bill["hours"] == 4 and bill["currency"] == "USD"
    assert [(l["instance"], l["hours"], l["price"], l["amount"], l["instance_type"]) for l in bill["lines"]] == [
        (iid, 4, "0.15", "0.60", "t3.micro")]
    report = json.loads(market(server, "report", "--seller", "seller", "--json").stdout)
    assert report["total"] == "0.60" and report["lines"] == bill["lines"]
    assert json.loads(kiln("bill", "--account", "seller", "--json", "--data", server["data"]).stdout)["total"] == "0.00"
    table = kiln("bill", "--account", "buyer", "--data", server["data"]).stdout
    assert "total: 4 instance-hours, USD 0.60" in table


def test_byol_bills_nothing(server, product):
    ec2, sell = buyer(server), seller(server)
    pub = sell.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["kiln-busybox"]}])
    ami = sell.copy_image(SourceRegion="us-east-1", SourceImageId=pub["Images"][0]["ImageId"],
                          Name="widget-byol")["ImageId"]
    wait_image(sell, ami)
    byol = json.loads(market(server, "publish", ami, "--seller", "seller", "--title", "Widget BYOL",
                             "--byol", "--json").stdout)
    assert byol["pricing"] == "byol" and byol["instance_types"] == {}
    market(server, "subscribe", byol["code"], "--account", "buyer")
    iid = ec2.run_instances(ImageId=byol["image"], MinCount=1, MaxCount=1,
                            InstanceType="t2.small")["Instances"][0]["InstanceId"]  # any type
    wait(ec2, "instance_running", iid)
    kiln("clock", "advance", "1h", "--data", server["data"])
    bill = json.loads(kiln("bill", "--account", "buyer", "--json", "--data", server["data"]).stdout)
    line = [l for l in bill["lines"] if l["instance"] == iid]
    assert [(l["product"], l["pricing"], l["hours"], l["amount"]) for l in line] == [
        (byol["code"], "byol", 2, "0.00")]  # 1 hour and some seconds: 2 started hours, free
    assert bill["total"] == "0.60"
    ec2.terminate_instances(InstanceIds=[iid])
    wait(ec2, "instance_terminated", iid)


def test_clock_only_moves_with_the_option(tmp_path):
    data = tmp_path / "data"
    kiln("init", "--data", data)
    try:
        r = kiln("clock", "advance", "1h", "--data", data, check=False)
        assert r.returncode == 1 and "--test-clock" in r.stderr
        r = kiln("clock", "advance", "soon", "--data", data, check=False)
        assert r.returncode == 2
    finally:
        kiln("down", "--data", data)
