"""scripts/demo.sh (make demo) refuses a port another program answers on, instead of sending the
demo's requests to it."""
import os
import socket
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the demo needs root")


def test_demo_refuses_a_taken_port(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        port = s.getsockname()[1]
        build = os.path.dirname(os.environ.get("KILN_BIN", os.path.join(ROOT, "build", "kiln")))
        kiln = os.path.join(build, "kiln")
        if not os.path.exists(os.path.join(ROOT, "build", "images", "debian-12.tar")):
            pytest.skip("build/images/debian-12.tar is missing (make images)")
        r = subprocess.run(["bash", os.path.join(ROOT, "scripts", "demo.sh")], capture_output=True, text=True,
                           env=dict(os.environ, KILN=kiln, KILN_DEMO_PORT=str(port)), timeout=60)
    assert r.returncode == 1
    assert f"demo: port {port} is taken by another program; set KILN_DEMO_PORT to a free one" in r.stderr
