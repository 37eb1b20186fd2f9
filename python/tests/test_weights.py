"""Weights files without torch: a file from `layersplit pretrain`, read, written back, read again."""

import subprocess

import h5py
import numpy as np
import pytest

import layersplit as ls


@pytest.fixture
def pretrained(layersplit_bin, tmp_path):
    path = tmp_path / "w.h5"
    subprocess.run([layersplit_bin, "pretrain", "--units", "linear:16,linear:8", "--tasks", "2", "--steps", "3",
                    "--quiet", "-o", str(path)], check=True, capture_output=True)
    return path


def test_load_weights_of_pretrain(pretrained):
    w = ls.load_weights(pretrained)
    assert w.mask == "SS" and w.model["units"] == ["linear:16", "linear:8"] and w.tasks == 2
    assert set(w.tensors) == {"u01/fc.weight", "u01/fc.bias", "u02/fc.weight", "u02/fc.bias",
                              "head/t0/weight", "head/t0/bias", "head/t1/weight", "head/t1/bias"}
    assert w.tensors["u01/fc.weight"].shape == (16, 64) and w.tensors["u01/fc.weight"].dtype == np.float32
    assert w.attrs["format"] == "layersplit-weights"


def test_from_torch_round_trip_without_torch(pretrained, tmp_path, layersplit_bin):
    w = ls.load_weights(pretrained)
    sd = w.state_dict(numpy=True)                       # build_model's keys, numpy arrays
    assert "units.u01.fc.weight" in sd and "heads.t1.bias" in sd
    out = ls.from_torch(sd, w.model, tmp_path / "back.h5")
    back = ls.load_weights(out)
    assert back.mask == "SS" and back.model == w.model and set(back.tensors) == set(w.tensors)
    for k, v in w.tensors.items():
        np.testing.assert_array_equal(back.tensors[k], v)
    # LayerSplit reads it back
    r = subprocess.run([layersplit_bin, "inspect", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # and a task-specific copy written from Python is what `train --init` would read
    sd["units.u01.t1.fc.weight"] = sd["units.u01.fc.weight"] * 2
    ls.from_torch(sd, w.model, tmp_path / "t.h5")
    assert "u01/t1/fc.weight" in ls.load_weights(tmp_path / "t.h5").tensors


def test_refusals(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f.attrs["format"] = "something-else"
    with pytest.raises(ValueError, match="not a LayerSplit weights file"):
        ls.load_weights(tmp_path / "x.h5")
    desc = {"input_shape": [4], "units": ["linear:3"], "task_classes": [2]}
    with pytest.raises(ValueError, match="one letter"):
        ls.from_torch({}, desc, tmp_path / "y.h5", mask="SX")
