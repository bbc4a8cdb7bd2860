"""kiln init and kiln account: the data directory, its topology and accounts."""
import configparser
import os
import sqlite3

from conftest import client, kiln, serving


def test_init_writes_topology_accounts_and_cli_files(tmp_path):
    data = tmp_path / "data"
    kiln("init", "--data", data, "--no-images")
    db = sqlite3.connect(data / "kiln.db")
    zones = db.execute("SELECT z.name, z.zone_id, z.subnet, z.bridge FROM zones z JOIN regions r "
                       "ON r.name = z.region ORDER BY r.position, z.name").fetchall()
    assert [z[0] for z in zones] == ["us-east-1a", "us-east-1b", "us-east-1c", "eu-west-1a", "eu-west-1b"]
    assert zones[0][1:] == ("use1-az1", "172.31.0.0/20", "kb-use1a")
    assert zones[2][1:] == ("use1-az3", "172.31.32.0/20", "kb-use1c")
    # each region numbers its zones' /20s from 172.31.0.0/20, as EC2's default VPCs are
    assert zones[3][1:] == ("euw1-az1", "172.31.0.0/20", "kb-euw1a")
    assert zones[4][1:] == ("euw1-az2", "172.31.16.0/20", "kb-euw1b")
    assert (data / "regions" / "us-east-1" / "store" / "KILNSTORE").exists()
    assert (data / "regions" / "eu-west-1" / "store" / "KILNSTORE").exists()
    cred = configparser.ConfigParser()
    cred.read(data / "credentials")
    key = cred["default"]["aws_access_key_id"]
    assert key.startswith("AKIA") and len(key) == 20
    assert len(cred["default"]["aws_secret_access_key"]) == 40
    assert os.stat(data / "credentials").st_mode & 0o077 == 0
    conf = configparser.ConfigParser()
    conf.read(data / "config")
    assert conf["default"]["region"] == "us-east-1"
    ls = kiln("account", "ls", "--data", data).stdout
    assert "provider" in ls and "amazon" in ls and key in ls
    r = kiln("init", "--data", data, check=False)
    assert r.returncode == 1 and "initialized already" in r.stderr


def test_accounts_with_known_keys_and_clear_conflicts(tmp_path):
    data = tmp_path / "data"
    kiln("init", "--data", data, "--no-images")
    out = kiln("account", "create", "ci", "--account-id", "123456789012", "--access-key",
               "AKIAEXAMPLEEXAMPLE12", "--secret-key", "ci-secret-ci-secret-ci", "--data", data).stdout
    assert "123456789012" in out and "AKIAEXAMPLEEXAMPLE12" in out
    for args, words in [
        (["ci"], "exists already"),
        (["other", "--account-id", "123456789012"], "exists already"),
        (["bad", "--account-id", "12345"], "12 digits"),
        (["half", "--access-key", "AKIAEXAMPLEEXAMPLE99"], "go together"),
        (["dup", "--access-key", "AKIAEXAMPLEEXAMPLE12", "--secret-key", "another-secret-12345"],
         "exists already"),
    ]:
        r = kiln("account", "create", *args, "--data", data, check=False)
        assert r.returncode == 1 and words in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1


def test_weak_keys_are_accepted_with_a_warning(tmp_path):
    """The keys test suites written for LocalStack and moto sign with work, with a warning."""
    data = tmp_path / "data"
    kiln("init", "--data", data, "--no-images")
    for name, key, secret in (("localstack", "test", "test"), ("moto", "FOOBARKEY", "FOOBARSECRET"),
                              ("dashes", "my_key-1", "s3cr3t/+=")):
        r = kiln("account", "create", name, "--access-key", key, "--secret-key", secret, "--data", data)
        assert "warning" in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr
    r = kiln("account", "create", "strong", "--access-key", "AKIAQQQQQQQQQQQQQQQQ", "--secret-key",
             "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "--data", data)
    assert r.stderr == ""
    for key in ("has space", "x" * 129, "dot.ted"):
        r = kiln("account", "create", "bad", "--access-key", key, "--secret-key", "test", "--data", data,
                 check=False)
        assert r.returncode == 1 and "invalid access key" in r.stderr, (key, r.stderr)
    r = kiln("account", "create", "bad", "--access-key", "ok", "--secret-key", "x" * 41, "--data", data,
             check=False)
    assert r.returncode == 1 and "invalid secret key" in r.stderr
    server = serving(data)
    env = next(server)
    try:
        for key, secret in (("test", "test"), ("FOOBARKEY", "FOOBARSECRET")):
            zones = client(env, key=key, secret=secret).describe_availability_zones()
            assert len(zones["AvailabilityZones"]) == 3
    finally:
        next(server, None)


def test_topology_file_and_its_errors(tmp_path):
    topo = tmp_path / "topo"
    topo.write_text("# two regions\nap-southeast-2 a b\nus-west-2 a\n")
    kiln("init", "--data", tmp_path / "d1", "--topology", topo, "--no-images")
    db = sqlite3.connect(tmp_path / "d1" / "kiln.db")
    assert db.execute("SELECT name FROM regions ORDER BY position").fetchall() == [
        ("ap-southeast-2",), ("us-west-2",)]
    assert db.execute("SELECT zone_id FROM zones WHERE name='us-west-2a'").fetchone() == ("usw2-az1",)
    # 16 zones fit a region's default VPC, in every region
    sixteen = " ".join("abcdefghijklmnop")
    topo.write_text(f"us-east-1 {sixteen}\neu-west-1 {sixteen}\n")
    kiln("init", "--data", tmp_path / "d3", "--topology", topo, "--no-images")
    db = sqlite3.connect(tmp_path / "d3" / "kiln.db")
    assert sorted(db.execute("SELECT region, subnet FROM zones WHERE name LIKE '%p'").fetchall()) == [
        ("eu-west-1", "172.31.240.0/20"), ("us-east-1", "172.31.240.0/20")]
    topo.write_text(f"us-east-1 {sixteen} q\n")
    r = kiln("init", "--data", tmp_path / "d4", "--topology", topo, "--no-images", check=False)
    assert r.returncode == 1 and "more than 16 zones" in r.stderr
    topo.write_text("us-east-1 a\nus-east-1 b\n")
    r = kiln("init", "--data", tmp_path / "d2", "--topology", topo, "--no-images", check=False)
    assert r.returncode == 1 and "twice" in r.stderr
    assert not (tmp_path / "d2" / "kiln.db").exists()
    r = kiln("account", "ls", "--data", tmp_path / "nothing", check=False)
    assert r.returncode == 1 and "kiln init" in r.stderr


def test_a_data_directory_of_host_wide_zone_subnets_is_migrated(tmp_path):
    """Schema 12 numbered zones' /20s across all regions (subnet UNIQUE): opening such a
    database keeps its zones and their subnets, and drops only that UNIQUE."""
    data = tmp_path / "data"
    kiln("init", "--data", data, "--no-images")
    db = sqlite3.connect(data / "kiln.db")
    (version,) = db.execute("PRAGMA user_version").fetchone()
    # back to schema 12's zones, as an older kiln left them: eu-west-1 after us-east-1's /20s
    db.executescript(
        "CREATE TABLE old (name TEXT PRIMARY KEY, region TEXT NOT NULL REFERENCES regions(name),"
        " zone_id TEXT NOT NULL UNIQUE, subnet TEXT NOT NULL UNIQUE, bridge TEXT NOT NULL UNIQUE);"
        "INSERT INTO old SELECT name, region, zone_id, CASE name WHEN 'eu-west-1a' THEN "
        "'172.31.48.0/20' WHEN 'eu-west-1b' THEN '172.31.64.0/20' ELSE subnet END, bridge FROM zones;"
        "DROP TABLE zones; ALTER TABLE old RENAME TO zones; "
        # and without what later schemas added
        "ALTER TABLE instances DROP COLUMN http_tokens; ALTER TABLE instances DROP COLUMN http_endpoint; "
        "ALTER TABLE instances DROP COLUMN http_hop_limit; ALTER TABLE instances DROP COLUMN metadata_tags; "
        "ALTER TABLE instances DROP COLUMN iam_profile; ALTER TABLE instances DROP COLUMN iam_profile_id; "
        "DROP TABLE session_keys; "
        "DROP TABLE catalog_version_images; DROP TABLE catalog_entities; "
        "DROP TABLE catalog_change_sets; "
        "PRAGMA user_version = 12;")
    before = db.execute("SELECT * FROM zones ORDER BY name").fetchall()
    db.close()
    kiln("account", "create", "later", "--data", data)  # opens the database: migrates it
    db = sqlite3.connect(data / "kiln.db")
    assert db.execute("PRAGMA user_version").fetchone() == (version,)
    assert db.execute("SELECT * FROM zones ORDER BY name").fetchall() == before
    assert db.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE 'catalog_%' AND "
                      "type = 'table'").fetchone() == (3,)
    assert "172.31.48.0/20" in [z[3] for z in before]
    schema = db.execute("SELECT sql FROM sqlite_master WHERE name = 'zones'").fetchone()[0]
    assert "subnet TEXT NOT NULL," in schema and "UNIQUE (region, subnet)" in schema
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    # a subnet repeats across regions now, not in one
    db.execute("INSERT INTO zones VALUES ('eu-west-1c', 'eu-west-1', 'euw1-az3', '172.31.0.0/20', "
               "'kb-euw1c')")
    try:
        db.execute("INSERT INTO zones VALUES ('eu-west-1d', 'eu-west-1', 'euw1-az4', "
                   "'172.31.0.0/20', 'kb-euw1d')")
        assert False, "a subnet twice in a region"
    except sqlite3.IntegrityError:
        pass
