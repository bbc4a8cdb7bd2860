"""The web console (issue 16): its files as the daemon serves them (headers, caching, the routes
it owns), and the whole flow of a person in Debian's Chromium, driven by playwright-core from npm
(console_flow.mjs): sign in, launch busybox, see it running, follow its console output, stop it,
create an image, copy it to eu-west-1 and watch the copy reach 100%, launch the copy there,
terminate both. Screenshots of every page land in the test's tmp dir; with KILN_CONSOLE_DOCS=1
the guide's are copied to docs/console/."""
import configparser
import http.client
import os
import shutil
import subprocess
import time
import urllib.parse

import pytest

from conftest import KILN, client

HERE = os.path.dirname(os.path.abspath(__file__))
DOCS = os.path.join(HERE, "..", "..", "docs", "console")
DOC_SHOTS = ("console-output.png", "images-copy.png", "phone-instances.png")  # the guide's


def get(server, path, method="GET", headers=None, body=None):
    u = urllib.parse.urlparse(server["url"])
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request(method, path, body=body, headers=headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r, data


def test_files_headers_and_routes(server):
    r, page = get(server, "/console/")
    assert r.status == 200 and r.getheader("Content-Type") == "text/html; charset=utf-8"
    csp = r.getheader("Content-Security-Policy")
    assert "default-src 'none'" in csp and "script-src 'self'" in csp and "connect-src 'self'" in csp
    assert r.getheader("X-Content-Type-Options") == "nosniff"
    assert r.getheader("Cache-Control") == "no-cache"
    etag = r.getheader("ETag")
    assert etag.startswith('"') and b'src="app.js"' in page and b"http" not in page.split(b"<body>")[0]

    r, body = get(server, "/console/", headers={"If-None-Match": etag})
    assert r.status == 304 and body == b"" and r.getheader("ETag") == etag
    r, js = get(server, "/console/app.js")
    assert r.status == 200 and r.getheader("Content-Type") == "text/javascript; charset=utf-8"
    assert r.getheader("ETag") != etag
    assert get(server, "/console/console.css")[0].getheader("Content-Type") == "text/css; charset=utf-8"
    assert get(server, "/console/icon.svg")[0].getheader("Content-Type") == "image/svg+xml"
    r, _ = get(server, "/console", method="GET")
    assert r.status == 301 and r.getheader("Location") == "/console/"
    assert get(server, "/console/nope.js")[0].status == 404
    assert get(server, "/console/../etc/passwd")[0].status == 404
    r, _ = get(server, "/console/", method="POST", body="Action=DescribeRegions")
    assert r.status == 405 and r.getheader("Allow") == "GET, HEAD"
    r, body = get(server, "/console/app.js", method="HEAD")
    assert r.status == 200 and body == b""
    # The API beside it is unchanged, and a path merely starting with the word is the API's.
    assert client(server).describe_regions()["Regions"]
    r, body = get(server, "/consoles")
    assert r.status == 401 and b"<Code>MissingAuthenticationToken</Code>" in body


def need_browser(tmp_root):
    """Chromium's binary and playwright-core (installed with npm into the build tree)."""
    chromium = shutil.which("chromium")
    if not chromium:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        pytest.skip("node and npm are not installed (apt-get install nodejs npm)")
    where = os.path.join(os.path.dirname(os.path.abspath(KILN)), "console-test")
    module = os.path.join(where, "node_modules", "playwright-core")
    if not os.path.isdir(module):
        os.makedirs(where, exist_ok=True)
        r = subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", where,
                            "playwright-core@1"], capture_output=True, text=True, timeout=300)
        if r.returncode != 0 or not os.path.isdir(module):
            pytest.skip(f"npm could not install playwright-core: {r.stderr[-500:]}")
    return node, chromium, module


def test_the_flow_in_chromium(server, tmp_path):
    node, chromium, module = need_browser(tmp_path)
    cred = configparser.ConfigParser()
    cred.read(os.path.join(server["data"], "credentials"))
    shots = tmp_path / "screenshots"
    shots.mkdir()
    env = dict(os.environ, PLAYWRIGHT=module, CHROMIUM=chromium, KILN_URL=server["url"], SHOTS=str(shots),
               AK=cred["default"]["aws_access_key_id"], SK=cred["default"]["aws_secret_access_key"])
    t0 = time.monotonic()
    r = subprocess.run([node, os.path.join(HERE, "console_flow.mjs")], capture_output=True, text=True,
                       env=env, timeout=900)
    took = time.monotonic() - t0
    print(r.stdout, f"\nflow: {took:.0f} s; screenshots in {shots}")
    assert r.returncode == 0, f"{r.stdout}\n{r.stderr}\n(screenshots in {shots})"

    # What the page did is what the API says.
    import json
    ids = json.loads(r.stdout.strip().splitlines()[-1])
    us, eu = client(server), client(server, region="eu-west-1")
    assert us.describe_images(ImageIds=[ids["ami"]])["Images"][0]["State"] == "available"
    assert eu.describe_images(ImageIds=[ids["copied"]])["Images"][0]["Name"] == "web-image-eu"
    for ec2 in (us, eu):
        states = [i["State"]["Name"] for res in ec2.describe_instances()["Reservations"] for i in res["Instances"]]
        assert states and all(s == "terminated" for s in states), states
    shared = us.describe_image_attribute(ImageId=ids["ami"], Attribute="launchPermission")
    assert [p.get("UserId") for p in shared["LaunchPermissions"]] == ["222233334444"]

    names = sorted(p.name for p in shots.iterdir())
    for want in ("signin.png", "images.png", "instances.png", "console-output.png", "images-copy.png",
                 "instances-eu-west-1.png", "phone-instances.png"):
        assert want in names, names
    if os.environ.get("KILN_CONSOLE_DOCS") == "1":
        os.makedirs(DOCS, exist_ok=True)
        for n in DOC_SHOTS:
            shutil.copy(shots / n, os.path.join(DOCS, n))
