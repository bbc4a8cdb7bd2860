"""Per-account request rate limits (kiln serve --rate-limit, --rate-limit-mutating): an account
that empties its bucket gets EC2's 503 RequestLimitExceeded, which boto3 and the aws CLI retry
as throttling, while another account is still served; mutating actions have their own bucket."""
import subprocess

import pytest

from conftest import KILN, client, error_of, kiln, need_root, serving

OTHER = ("AKIAOTHEROTHEROTHER1", "other-secret-other-secret")


@pytest.fixture(scope="module")
def limited(tmp_path_factory):
    need_root()
    data = tmp_path_factory.mktemp("rate") / "data"
    kiln("init", "--data", data)
    kiln("account", "create", "other", "--account-id", "222233334444", "--access-key", OTHER[0],
         "--secret-key", OTHER[1], "--data", data)
    # Slow refills, so that a burst empties a bucket whatever the machine's speed.
    yield from serving(data, "--rate-limit", "0.1:5", "--rate-limit-mutating", "0.1:3")


@pytest.fixture(scope="module")
def frozen(tmp_path_factory):
    """A bucket that does not refill within a test: three requests, then one in 1,000 s."""
    need_root()
    data = tmp_path_factory.mktemp("frozen") / "data"
    kiln("init", "--data", data)
    yield from serving(data, "--rate-limit", "0.001:3")


def drain(call, tries=30):
    """Call until refused; the refusal's (code, status) and how many calls passed before."""
    import botocore
    for n in range(tries):
        try:
            call()
        except botocore.exceptions.ClientError as e:
            return (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"],
                    e.response["Error"]["Message"]), n
    raise AssertionError(f"{tries} calls in a row were all served")


def test_one_account_throttled_the_other_served(limited):
    busy, other = client(limited), client(limited, key=OTHER[0], secret=OTHER[1])
    refused, passed = drain(busy.describe_regions)
    assert refused == ("RequestLimitExceeded", 503, "Request limit exceeded.")
    assert 5 <= passed <= 6  # the bucket's five, and one refilled at most
    assert error_of(busy.describe_regions) == ("RequestLimitExceeded", 503)
    # Another account has buckets of its own.
    assert other.describe_regions()["Regions"]
    assert other.describe_images(Owners=["amazon"])["Images"]
    # Mutating actions are counted apart: the busy account may still change things, until
    # that bucket is empty too.
    busy.delete_key_pair(KeyName="none-such")
    refused, passed = drain(lambda: busy.delete_key_pair(KeyName="none-such"))
    assert refused[:2] == ("RequestLimitExceeded", 503) and passed <= 3


def test_clients_retry_throttling_and_get_through(limited):
    """botocore's standard retry mode treats RequestLimitExceeded as throttling: with retries
    the same burst is served, only slower."""
    patient = client(limited, key=OTHER[0], secret=OTHER[1], retries=8)
    for _ in range(4):
        assert patient.describe_availability_zones()["AvailabilityZones"]


def test_the_aws_cli_tells_it_and_retries_it(limited, frozen):
    import configparser
    import os

    def aws(server, attempts):
        cred = configparser.ConfigParser()
        cred.read(os.path.join(server["data"], "credentials"))
        env = dict(os.environ, AWS_ACCESS_KEY_ID=cred["default"]["aws_access_key_id"],
                   AWS_SECRET_ACCESS_KEY=cred["default"]["aws_secret_access_key"],
                   AWS_DEFAULT_REGION="us-east-1", AWS_RETRY_MODE="standard",
                   AWS_MAX_ATTEMPTS=str(attempts))
        return subprocess.run(["/usr/bin/aws", "--endpoint-url", server["url"], "ec2",
                               "describe-regions"], env=env, capture_output=True, text=True)

    # Without retries, on a bucket that stays empty (one that refills every 10 s can hold a
    # whole token again by the time the aws CLI, a Python program, has started): told.
    drain(client(frozen).describe_regions)
    once = aws(frozen, 1)
    assert once.returncode != 0 and "RequestLimitExceeded" in once.stderr, once.stderr
    # With retries, on a bucket that refills every 10 s: served, after its backoff.
    drain(client(limited).describe_regions)
    patient = aws(limited, 10)
    assert patient.returncode == 0, patient.stderr


def test_bad_limits_are_refused(tmp_path):
    r = subprocess.run([KILN, "serve", "--data", str(tmp_path), "--rate-limit", "fast"],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "bad rate limit 'fast'" in r.stderr
