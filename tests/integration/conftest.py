"""Shared fixtures of the integration suite: the kiln binary, scratch directories, volumes."""
import os
import random
import shutil
import subprocess
import tempfile

import pytest

KILN = os.environ.get("KILN_BIN") or os.path.join(
    os.path.dirname(__file__), "..", "..", "build", "kiln")
CHUNK = 128 * 1024


def kiln(*args, check=True, env=None, **kw):
    """Run the kiln CLI; returns the CompletedProcess (text mode)."""
    full_env = dict(os.environ)
    full_env.pop("KILN_FAULT", None)
    if env:
        full_env.update(env)
    r = subprocess.run([KILN, *map(str, args)], capture_output=True, text=True, env=full_env, **kw)
    if check and r.returncode != 0:
        raise AssertionError(f"kiln {' '.join(map(str, args))} failed ({r.returncode}): {r.stderr}")
    return r


def write_volume(path, size, chunks, seed=1):
    """A sparse file of `size` bytes whose listed chunk numbers hold seeded random data."""
    rnd = random.Random(seed)
    with open(path, "wb") as f:
        f.truncate(size)
        for c in chunks:
            f.seek(c * CHUNK)
            f.write(rnd.randbytes(min(CHUNK, size - c * CHUNK)))


def files_equal(a, b):
    return subprocess.run(["cmp", "-s", a, b]).returncode == 0


@pytest.fixture
def tmp(tmp_path):
    return tmp_path


@pytest.fixture
def store(tmp_path):
    d = tmp_path / "store"
    kiln("store", "init", d)
    return d
