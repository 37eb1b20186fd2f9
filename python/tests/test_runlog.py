"""Run logs: the published snapshot, the journal's tail, checksums, torn lines, version 1."""

import csv
import json
import os
import shutil

import h5py
import numpy as np
import pytest

import layersplit as ls
from conftest import RESULTS

pd = pytest.importorskip("pandas")

TASKS = ["fashion", "mnist", "opencv-digits"]


def test_read_run_has_one_row_per_mask_seed_task(study):
    df = ls.read_run(study)
    assert len(df) == 40 * 3
    assert list(df.columns) == ["mask", "seed", "steps", "task", "accuracy", "loss", "params_stored", "params_shared",
                                "params_specific", "params_heads", "state", "steps_trained", "seconds", "message"]
    assert sorted(df["task"].unique()) == TASKS
    assert df.groupby(["mask", "seed"]).size().eq(3).all()
    assert (df["state"] == "done").all()
    assert df["accuracy"].between(0, 1).all()     # fractions


def test_read_run_means_equal_candidates_csv(study):
    df = ls.read_run(study)
    means = df.groupby(["mask", "task"])["accuracy"].mean()
    params = df.groupby("mask")["params_stored"].first()
    with open(os.path.join(study, "candidates.csv")) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 8
    for r in rows:
        for task in TASKS:
            assert means[(r["mask"], task)] == pytest.approx(float(r[f"acc_{task}"]), abs=5e-7)
        assert params[r["mask"]] == int(r["stored_params"])
        assert (df[df["mask"] == r["mask"]]["seed"].nunique()) == int(r["seeds"])


def test_read_trials_and_candidates(study):
    t = ls.read_trials(study)
    assert len(t) == 40
    for task in TASKS:
        assert f"acc_{task}" in t and f"loss_{task}" in t
    assert np.allclose(t[[f"acc_{n}" for n in TASKS]].mean(axis=1), t["mean_accuracy"])
    c = ls.candidates(study)
    ref = pd.read_csv(os.path.join(study, "candidates.csv"))
    merged = c.merge(ref, on="mask", suffixes=("", "_csv"))
    assert len(merged) == 8
    assert np.allclose(merged["mean_acc"], merged["mean_acc_csv"], atol=5e-7)
    assert np.allclose(merged["std_acc"], merged["std_acc_csv"], atol=5e-7)
    assert (merged["stored_params"] == merged["stored_params_csv"]).all()


@pytest.mark.parametrize("name", sorted(d for d in os.listdir(RESULTS) if os.path.isdir(os.path.join(RESULTS, d))))
def test_every_published_study_reads(name):
    log = ls.open_log(os.path.join(RESULTS, name))
    assert len(log) > 0 and log.trials["accuracy"].shape == (len(log), len(log.tasks))
    assert log.torn_bytes == 0 and log.journal_trials == 0


def test_front_from_front_json_and_computed(study, tmp_path):
    fr = ls.front(study)
    with open(os.path.join(study, "front.csv")) as f:
        ref = list(csv.DictReader(f))
    assert list(fr["mask"]) == [r["mask"] for r in ref]
    assert np.allclose(fr["mean_acc"], [float(r["mean_acc"]) for r in ref], atol=5e-7)
    assert np.isnan(fr["ci_low"].iloc[0])
    assert np.allclose(fr["ci_low"].iloc[1:], [float(r["delta_ci_low"]) for r in ref[1:]], atol=5e-7)
    assert list(fr["verdict"].iloc[1:]) == [r["verdict"] for r in ref[1:]]
    # Without front.json: computed from the trials, the same points.
    for f in ("log.h5", "log.journal"):
        shutil.copy(os.path.join(study, f), tmp_path / f)
    computed = ls.front(tmp_path)
    assert list(computed["mask"]) == list(fr["mask"])
    assert np.allclose(computed["mean_acc"], fr["mean_acc"], atol=1e-9)


def test_pareto_indices_keep_ties_and_order():
    assert ls.pareto_indices([3, 1, 2, 2, 5], [0.5, 0.1, 0.4, 0.4, 0.3]) == [1, 2, 3, 0]


# ---- The journal ---------------------------------------------------------------------

def copy_log(study, folder):
    for f in ("log.h5", "log.journal"):
        shutil.copy(os.path.join(study, f), folder / f)
    return folder


def a_trial(mask="AAAA", seed=7, acc=(0.5, 0.25, float("nan"))):
    return {"trial": {"mask": mask, "seed": seed, "steps": 200, "state": "done",
                      "params": {"shared": 100, "specific": 20, "heads": 3},
                      "accuracy": list(acc), "loss": [1.5, 2.5, 3.5],
                      "curve": [{"step": 100, "train_loss": [1.0, 2.0, 3.0], "accuracy": [0.4, 0.2, 0.1]},
                                {"step": 200, "train_loss": [0.5, 1.0, 1.5], "accuracy": list(acc)}],
                      "steps_trained": 200, "seconds": 1.25, "message": ""}}


def test_checksum_is_fnv1a64_of_the_json(study):
    with open(os.path.join(study, "log.journal"), "rb") as f:
        for line in f:
            assert line[:16].decode() == f"{ls.fnv1a64(line[17:-1]):016x}"
    assert ls.fnv1a64(b"") == 0xcbf29ce484222325
    assert ls.fnv1a64(b"a") == 0xaf63dc4c8601ec8c          # the published FNV-1a 64 test vector


def test_journal_tail_is_replayed_and_torn_line_dropped(study, tmp_path):
    folder = copy_log(study, tmp_path)
    with open(folder / "log.journal", "ab") as f:
        f.write(ls.journal_line(a_trial()))
        f.write(ls.journal_line({"run": {"command": "layersplit search x", "machine": "m", "finished": "now",
                                         "wall_seconds": 2.0, "trained": 1}}))
        f.write(ls.journal_line(a_trial(mask="ATAT", seed=8))[:-30])       # killed mid-write: no newline
    runs_before = len(ls.open_log(study).runs)
    log = ls.open_log(folder)
    assert log.journal_trials == 1 and log.torn_bytes > 0
    assert len(log.runs) == runs_before + 1 and log.runs[-1]["trained"] == 1
    t = ls.read_trials(folder)
    assert len(t) == 41 and "ATAT" not in set(t["mask"])
    last = t.iloc[-1]
    assert (last["mask"], last["seed"], last["params_stored"], last["acc_fashion"]) == ("AAAA", 7, 123, 0.5)
    assert np.isnan(last["acc_opencv-digits"]) and np.isnan(last["mean_accuracy"])
    assert len(ls.read_run(folder)) == 41 * 3
    curves = ls.read_curves(folder)
    assert len(curves[curves["trial"] == 40]) == 2 * 3


def test_torn_last_line_with_newline_but_bad_checksum_is_dropped(study, tmp_path):
    folder = copy_log(study, tmp_path)
    line = bytearray(ls.journal_line(a_trial()))
    line[0:1] = b"0" if line[0:1] != b"0" else b"1"
    with open(folder / "log.journal", "ab") as f:
        f.write(bytes(line))
    log = ls.open_log(folder)
    assert len(log) == 40 and log.torn_bytes == len(line)


def test_bad_checksum_before_the_last_line_raises(study, tmp_path):
    folder = copy_log(study, tmp_path)
    bad = ls.journal_line(a_trial()).replace(b'"seed":7', b'"seed":9')       # checksum no longer matches
    with open(folder / "log.journal", "ab") as f:
        f.write(bad)
        f.write(ls.journal_line(a_trial(mask="TTTT", seed=8)))
    with pytest.raises(ls.RunLogError, match="line 4: damaged record"):
        ls.open_log(folder)
    # inside the part the snapshot already holds, too
    with open(os.path.join(study, "log.journal"), "rb") as f:
        lines = f.readlines()
    lines[1] = lines[1].replace(b'"trained":', b'"trained": ')
    (folder / "log.journal").write_bytes(b"".join(lines))
    with pytest.raises(ls.RunLogError, match="line 2"):
        ls.open_log(folder)


def test_journal_of_another_run_is_refused(study, tmp_path):
    folder = copy_log(study, tmp_path)
    text = (folder / "log.journal").read_bytes().split(b"\n")
    header = json.loads(text[0][17:])
    header["header"]["id"] = "another"
    (folder / "log.journal").write_bytes(ls.journal_line(header) + b"\n".join(text[1:]))
    with pytest.raises(ls.RunLogError, match="another run"):
        ls.open_log(folder)


def test_journal_alone_without_snapshot(study, tmp_path):
    with open(os.path.join(study, "log.journal"), "rb") as f:
        header = json.loads(f.readline()[17:])
    header["header"]["task_names"] = TASKS
    (tmp_path / "log.journal").write_bytes(ls.journal_line(header) + ls.journal_line(a_trial()))
    t = ls.read_trials(tmp_path)
    assert list(t["mask"]) == ["AAAA"] and t.attrs["tasks"] == TASKS


def test_version_1_log_is_refused_with_migrate(tmp_path):
    with h5py.File(tmp_path / "log.h5", "w") as f:
        f.attrs["format"] = "layersplit-runlog"
        f.attrs["format_version"] = np.int64(1)
        f.create_group("candidates/TTSS")
    with pytest.raises(ls.RunLogError, match="layersplit migrate"):
        ls.read_run(tmp_path)


def test_newer_version_and_other_files_are_refused(study, tmp_path):
    shutil.copy(os.path.join(study, "log.h5"), tmp_path / "log.h5")
    with h5py.File(tmp_path / "log.h5", "a") as f:
        f.attrs["format_version"] = np.int64(3)
    with pytest.raises(ls.RunLogError, match="newer LayerSplit"):
        ls.open_log(tmp_path)
    with pytest.raises(FileNotFoundError):
        ls.open_log(tmp_path / "nothing")
