"""Shared fixtures: the repository's folders and the LayerSplit binary (tests that need it skip without it)."""

import os
import shutil

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
RESULTS = os.path.join(ROOT, "results")


def find_layersplit():
    """$LAYERSPLIT, else this checkout's release build, else /work/main's, else `layersplit` on PATH."""
    for path in (os.environ.get("LAYERSPLIT"), os.path.join(ROOT, ".build", "release", "layersplit"),
                 "/work/main/.build/release/layersplit", shutil.which("layersplit")):
        if path and os.access(path, os.X_OK):
            return path
    return None


@pytest.fixture(scope="session")
def layersplit_bin():
    path = find_layersplit()
    if path is None:
        pytest.skip("no layersplit binary (build with `swift build -c release`, or set LAYERSPLIT)")
    return path


@pytest.fixture
def study():
    return os.path.join(RESULTS, "zhang-domains")
