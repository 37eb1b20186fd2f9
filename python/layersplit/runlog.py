"""LayerSplit's run logs (docs/FORMATS.md, `layersplit-runlog` version 2) from Python.

    import layersplit as ls
    trials = ls.read_trials("results/zhang-domains")   # one row per trial: acc_<task> columns (fraction)
    rows = ls.read_run("results/zhang-domains")        # one row per (mask, seed, task)
    fr = ls.front("results/zhang-domains")             # the Pareto front, from front.json

A run folder holds `log.h5`, a columnar snapshot, and `log.journal`, the append-only journal a running search
writes. The snapshot names the journal it was made from (`@journal_id`) and how many of its bytes it holds
(`@journal_bytes`); the records after those bytes are replayed here, so the trials a running search saved
since its last snapshot appear too. Every journal line carries the FNV-1a 64-bit hash of its JSON text: a bad
last line is a write torn by a kill and is dropped; a bad line before it is corruption and raises.

`open_log` needs only numpy and h5py; the DataFrame functions need pandas.
"""

import json
import math
import os
from collections import namedtuple
from dataclasses import dataclass, field

import numpy as np

from .weights import _text  # attribute values as plain Python (one definition for both readers)

FORMAT_RUNLOG = "layersplit-runlog"
RUNLOG_VERSION = 2
JOURNAL_FORMAT = "layersplit-journal"
JOURNAL_VERSION = 1

TRIAL_COLUMNS = ["mask", "seed", "steps", "steps_trained", "state", "params_stored", "params_shared",
                 "params_specific", "params_heads", "seconds", "mean_accuracy", "message"]


class RunLogError(ValueError):
    """A run log that cannot be read: the message names the file and what is wrong."""


@dataclass
class RunLog:
    """A run log, snapshot and journal tail together, as numpy arrays.

    `trials` maps each column of /trials (`mask`, `seed`, `steps`, `steps_trained`, `state`, `params_stored`,
    `params_shared`, `params_specific`, `params_heads`, `seconds`, `mean_accuracy`, `message`: [N]; `accuracy`
    (fraction) and `loss`: [N, T]) to an array, in the order the trials were saved. `curves` holds /curves
    (`trial`, `step`: [M]; `train_loss`, `accuracy`: [M, T]); `runs` one dict per invocation of a search;
    `attrs` the snapshot's root attributes (with the journal's header fields when there is no snapshot)."""
    folder: str
    tasks: list
    trials: dict
    curves: dict
    runs: list
    attrs: dict
    journal_trials: int = 0          # trials replayed from the journal's tail
    torn_bytes: int = 0              # bytes of a torn last journal line that were ignored
    notes: list = field(default_factory=list)

    def __len__(self):
        return len(self.trials["mask"])


# ---- The journal ------------------------------------------------------------------

def fnv1a64(data):
    """The FNV-1a 64-bit hash of `data` (bytes)."""
    h = 0xcbf29ce484222325
    for b in data:
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h


def journal_line(record):
    """One journal line (bytes, newline included) for `record`, a dict such as {"trial": {...}}, written as
    LayerSplit writes it: checksum, space, JSON with sorted keys, newline."""
    text = json.dumps(_nonfinite_to_strings(record), sort_keys=True, separators=(",", ":"),
                      ensure_ascii=False, allow_nan=False).encode()
    return f"{fnv1a64(text):016x} ".encode() + text + b"\n"


def _nonfinite_to_strings(v):
    if isinstance(v, float) and not math.isfinite(v):
        return "NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity")
    if isinstance(v, dict):
        return {k: _nonfinite_to_strings(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_nonfinite_to_strings(x) for x in v]
    return v


def _checksum_ok(line):
    return len(line) > 17 and line[16:17] == b" " and line[:16] == f"{fnv1a64(line[17:]):016x}".encode()


JournalContents = namedtuple("JournalContents", "header records size torn_bytes record_count")


def read_journal(path, offset=0):
    """A journal's JournalContents: `header` (dict), `records` (the dicts of the records that start at byte
    `offset` or later), `size` (bytes of valid records), `torn_bytes` (of a torn last line, ignored) and
    `record_count` (records after the header in the whole file).

    Lines before `offset` are checked, not parsed. Raises RunLogError when a line other than the last is
    damaged, when the first record is not a header, or when the journal is of a newer version."""
    with open(path, "rb") as f:
        data = f.read()
    header, records, start, number, count = None, [], 0, 0, 0
    torn = 0
    while start < len(data):
        number += 1
        end = data.find(b"\n", start)
        if end < 0:                                   # no newline: a torn last record
            torn = len(data) - start
            break
        line = data[start:end]
        skip = header is not None and start < offset
        record = None
        if _checksum_ok(line):
            if skip:
                record = {}
            else:
                try:
                    record = json.loads(line[17:])
                except ValueError:
                    record = None
        if record is None:
            if end + 1 == len(data):                  # the last line: torn by a kill during its write
                torn = len(data) - start
                break
            raise RunLogError(f"{path}: line {number}: damaged record (bad checksum or JSON) before the end of the "
                              "journal; the journal is corrupt: restore it from a copy, or move it away to keep only "
                              "what log.h5 holds")
        if "header" in record:
            if header is not None:
                raise RunLogError(f"{path}: line {number}: a second header record")
            header = record["header"]
        else:
            if header is None:
                raise RunLogError(f"{path}: line 1: the journal does not start with a header record")
            count += 1
            if not skip:
                records.append(record)
        start = end + 1
    if header is None:
        raise RunLogError(f"{path}: no complete header record (the run was killed while it created the journal?)")
    if header.get("format") != JOURNAL_FORMAT:
        raise RunLogError(f"{path}: is a {header.get('format')!r} file, not a LayerSplit journal")
    if int(header.get("format_version", 0)) > JOURNAL_VERSION:
        raise RunLogError(f"{path}: journal version {header['format_version']} was written by a newer LayerSplit "
                          f"(this package reads up to {JOURNAL_VERSION}); update the layersplit package")
    return JournalContents(header, records, start, torn, count)


def _float(v):
    if isinstance(v, str):
        return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}[v]
    return float(v)


# ---- The log ------------------------------------------------------------------------

def _paths(folder):
    folder = os.fspath(folder)
    if folder.endswith(".h5") or folder.endswith(".journal"):
        base = folder.rsplit(".", 1)[0]
        return os.path.dirname(folder) or ".", base + ".h5", base + ".journal"
    return folder, os.path.join(folder, "log.h5"), os.path.join(folder, "log.journal")


def _strings(ds):
    return np.array(ds.asstr()[()], dtype=object) if ds.shape != (0,) else np.array([], dtype=object)


def _empty_trials(tasks):
    t = len(tasks)
    return {"mask": np.array([], dtype=object), "seed": np.array([], dtype=np.uint64),
            "steps": np.array([], dtype=np.int64), "steps_trained": np.array([], dtype=np.int64),
            "state": np.array([], dtype=object), "params_stored": np.array([], dtype=np.int64),
            "params_shared": np.array([], dtype=np.int64), "params_specific": np.array([], dtype=np.int64),
            "params_heads": np.array([], dtype=np.int64), "seconds": np.array([], dtype=np.float64),
            "mean_accuracy": np.array([], dtype=np.float64), "message": np.array([], dtype=object),
            "accuracy": np.zeros((0, t)), "loss": np.zeros((0, t), dtype=np.float32)}


def _read_snapshot(path):
    import h5py
    with h5py.File(path, "r") as f:
        attrs = {k: _text(v) for k, v in f.attrs.items()}
        fmt = attrs.get("format")
        if fmt != FORMAT_RUNLOG:
            raise RunLogError(f"{path}: not a LayerSplit run log (format {fmt!r})")
        version = int(attrs.get("format_version", 0))
        if version == 1:
            raise RunLogError(f"{path}: a version-1 run log (one group per candidate, before run store v2); "
                              f"rewrite it as version 2 with `layersplit migrate {os.path.dirname(path) or '.'}`, "
                              "then read it again")
        if version > RUNLOG_VERSION:
            raise RunLogError(f"{path}: run log version {version} was written by a newer LayerSplit "
                              f"(this package reads up to {RUNLOG_VERSION}); update the layersplit package")
        tasks = list(_strings(f["tasks"])) if "tasks" in f else []
        trials = _empty_trials(tasks)
        if "trials" in f:
            g = f["trials"]
            for name in g:
                ds = g[name]
                trials[name] = _strings(ds) if h5py.check_string_dtype(ds.dtype) else ds[()]
        curves = {}
        if "curves" in f:
            curves = {name: f["curves"][name][()] for name in f["curves"]}
        runs = []
        if "runs" in f:
            g = f["runs"]
            cols = {n: (_strings(g[n]) if h5py.check_string_dtype(g[n].dtype) else g[n][()]) for n in g}
            n = len(next(iter(cols.values()))) if cols else 0
            runs = [{k: _text(v[i]) for k, v in cols.items()} for i in range(n)]
    return tasks, trials, curves, runs, attrs


def _append_trials(log, records):
    """Append the journal's trial records to the log's columns."""
    T = len(log.tasks)
    new = [r["trial"] for r in records if "trial" in r]
    if not new:
        return
    cols = {k: [] for k in TRIAL_COLUMNS}
    acc, loss, curve_rows = [], [], []
    base = len(log)
    for i, t in enumerate(new):
        p = t["params"]
        a = [_float(x) for x in t.get("accuracy", [])]
        lo = [_float(x) for x in t.get("loss", [])]
        a = (a + [math.nan] * T)[:T]
        lo = (lo + [math.nan] * T)[:T]
        finite = [x for x in a if not math.isnan(x)]
        cols["mask"].append(t["mask"])
        cols["seed"].append(int(t["seed"]))
        cols["steps"].append(int(t["steps"]))
        cols["steps_trained"].append(int(t.get("steps_trained", 0)))
        cols["state"].append(t["state"])
        cols["params_shared"].append(int(p["shared"]))
        cols["params_specific"].append(int(p["specific"]))
        cols["params_heads"].append(int(p["heads"]))
        cols["params_stored"].append(int(p["shared"]) + int(p["specific"]) + int(p["heads"]))
        cols["seconds"].append(_float(t.get("seconds", 0)))
        cols["mean_accuracy"].append(sum(finite) / len(finite) if finite and len(finite) == len(a) else math.nan)
        cols["message"].append(t.get("message", ""))
        acc.append(a)
        loss.append(lo)
        for c in t.get("curve", []):
            curve_rows.append((base + i, int(c["step"]),
                               ([_float(x) for x in c.get("train_loss", [])] + [math.nan] * T)[:T],
                               ([_float(x) for x in c.get("accuracy", [])] + [math.nan] * T)[:T]))
    tr = log.trials
    for k, v in cols.items():
        old = tr[k]
        tr[k] = np.concatenate([old, np.array(v, dtype=old.dtype)])
    tr["accuracy"] = np.concatenate([tr["accuracy"].reshape(-1, T), np.array(acc, dtype=np.float64).reshape(-1, T)])
    tr["loss"] = np.concatenate([tr["loss"].reshape(-1, T), np.array(loss, dtype=np.float32).reshape(-1, T)])
    if curve_rows:
        c = log.curves
        add = {"trial": np.array([r[0] for r in curve_rows], dtype=np.int64),
               "step": np.array([r[1] for r in curve_rows], dtype=np.int64),
               "train_loss": np.array([r[2] for r in curve_rows], dtype=np.float32).reshape(-1, T),
               "accuracy": np.array([r[3] for r in curve_rows], dtype=np.float64).reshape(-1, T)}
        for k, v in add.items():
            c[k] = np.concatenate([c[k].reshape((-1,) + v.shape[1:]).astype(v.dtype), v]) if k in c else v
    log.journal_trials += len(new)


def open_log(folder):
    """Read the run log in `folder` (or the `log.h5` path itself): the snapshot, then the journal's records
    after `@journal_bytes`. Returns a `RunLog`. Needs numpy and h5py.

    Raises RunLogError for a version-1 log (run `layersplit migrate FOLDER`), a newer version, a journal
    damaged before its last line, or a journal that belongs to another run."""
    folder, h5, jpath = _paths(folder)
    has_snapshot, has_journal = os.path.exists(h5), os.path.exists(jpath)
    if not (has_snapshot or has_journal):
        raise FileNotFoundError(f"no run log in {folder} (neither {h5} nor {jpath})")
    covered, snapshot_journal = 0, None
    if has_snapshot:
        tasks, trials, curves, runs, attrs = _read_snapshot(h5)
        covered = int(attrs.get("journal_bytes", 0))
        snapshot_journal = attrs.get("journal_id")
    if has_journal:
        header, records, size, torn, count = read_journal(jpath, covered)
        if not has_snapshot:
            tasks = list(header.get("task_names", []))
            trials, curves, runs = _empty_trials(tasks), {}, []
            attrs = {k: v for k, v in header.items() if k != "attributes"}
            attrs.update(header.get("attributes") or {})
    log = RunLog(folder=folder, tasks=tasks, trials=trials, curves=curves, runs=runs, attrs=attrs)
    if has_journal:
        log.torn_bytes = torn
        if has_snapshot and snapshot_journal != header.get("id"):
            if count:
                raise RunLogError(f"{jpath}: belongs to another run than {h5} (journal {header.get('id')}, the "
                                  f"snapshot names {snapshot_journal}); move one of the two away")
            log.notes.append(f"{jpath} is an orphan journal (its creation was interrupted); ignored")
        else:
            if size < covered:
                raise RunLogError(f"{jpath}: holds {size} bytes of records but {h5} was made from {covered}: the "
                                  "journal was truncated or replaced")
            _append_trials(log, records)
            for r in records:
                if "run" in r:
                    log.runs.append(dict(r["run"]))
                elif "search_space" in r:
                    log.attrs["search_space"] = r["search_space"].get("text")
                    log.attrs["search_space_hash"] = r["search_space"].get("hash")
    return log


# ---- DataFrames ---------------------------------------------------------------------

def _pandas():
    try:
        import pandas as pd
    except ImportError as exc:  # pragma: no cover - exercised only without pandas
        raise ImportError("layersplit's DataFrame functions need pandas: pip install pandas "
                          "(or use layersplit.open_log, which needs only numpy and h5py)") from exc
    return pd


def _as_log(folder_or_log):
    return folder_or_log if isinstance(folder_or_log, RunLog) else open_log(folder_or_log)


def read_trials(folder):
    """One row per trial, in the order they were saved: mask, seed, steps, steps_trained, state,
    params_stored, params_shared, params_specific, params_heads, seconds, mean_accuracy (fraction), message,
    then acc_<task> (fraction) and loss_<task> for every task. Includes the journal's newest trials."""
    pd = _pandas()
    log = _as_log(folder)
    t = log.trials
    data = {k: t[k] for k in TRIAL_COLUMNS}
    data["seed"] = data["seed"].astype(np.uint64)
    for i, name in enumerate(log.tasks):
        data[f"acc_{name}"] = t["accuracy"][:, i]
    for i, name in enumerate(log.tasks):
        data[f"loss_{name}"] = t["loss"][:, i]
    df = pd.DataFrame(data)
    for k in ("mask", "state", "message"):
        df[k] = df[k].astype(str)
    df.attrs["tasks"] = list(log.tasks)
    df.attrs["study"] = log.attrs.get("study")
    return df


def read_run(folder):
    """One row per (mask, seed, task), the tidy form for pandas and seaborn: mask, seed, steps, task,
    accuracy (fraction), loss, params_stored, params_shared, params_specific, params_heads, state,
    steps_trained, seconds, message. Includes the journal's newest trials."""
    pd = _pandas()
    log = _as_log(folder)
    t = log.trials
    n, T = len(log), len(log.tasks)
    rep = lambda a: np.repeat(np.asarray(a), T)       # noqa: E731
    df = pd.DataFrame({
        "mask": rep(t["mask"]).astype(str), "seed": rep(t["seed"]).astype(np.uint64), "steps": rep(t["steps"]),
        "task": np.tile(np.array(log.tasks, dtype=object), n).astype(str),
        "accuracy": t["accuracy"].reshape(-1), "loss": t["loss"].reshape(-1),
        "params_stored": rep(t["params_stored"]), "params_shared": rep(t["params_shared"]),
        "params_specific": rep(t["params_specific"]), "params_heads": rep(t["params_heads"]),
        "state": rep(t["state"]).astype(str), "steps_trained": rep(t["steps_trained"]),
        "seconds": rep(t["seconds"]), "message": rep(t["message"]).astype(str),
    })
    df.attrs["tasks"] = list(log.tasks)
    df.attrs["study"] = log.attrs.get("study")
    return df


def read_curves(folder):
    """One row per (trial, evaluation step, task): trial (row of read_trials), mask, seed, step, task,
    train_loss, accuracy (fraction)."""
    pd = _pandas()
    log = _as_log(folder)
    c, T = log.curves, len(log.tasks)
    if not c or len(c.get("trial", [])) == 0:
        return pd.DataFrame(columns=["trial", "mask", "seed", "step", "task", "train_loss", "accuracy"])
    trial = np.asarray(c["trial"], dtype=np.int64)
    return pd.DataFrame({
        "trial": np.repeat(trial, T), "mask": np.repeat(log.trials["mask"][trial], T).astype(str),
        "seed": np.repeat(log.trials["seed"][trial], T), "step": np.repeat(c["step"], T),
        "task": np.tile(np.array(log.tasks, dtype=object), len(trial)).astype(str),
        "train_loss": np.asarray(c["train_loss"]).reshape(-1), "accuracy": np.asarray(c["accuracy"]).reshape(-1),
    })


# ---- The front ------------------------------------------------------------------------

def pareto_indices(params, accuracy):
    """Indices of the Pareto front of (fewer params, higher accuracy), ordered by params ascending: LayerSplit's
    ParetoFront.indices (exact ties all stay on the front)."""
    order = sorted(range(len(params)), key=lambda i: (params[i], -accuracy[i], i))
    front, best, i = [], -math.inf, 0
    while i < len(order):
        j = i
        while j < len(order) and params[order[j]] == params[order[i]]:
            j += 1
        group_best = accuracy[order[i]]
        if group_best > best:
            front += [order[k] for k in range(i, j) if accuracy[order[k]] == group_best]
            best = group_best
        i = j
    return front


def candidates(folder):
    """One row per candidate (mask, steps), the means over its seeds, as in candidates.csv: mask, steps,
    stored_params, shared_params, specific_params, head_params, acc_<task> (fraction), mean_acc (fraction),
    std_acc, seeds, status, seconds; ordered by stored parameters, then mask."""
    pd = _pandas()
    trials = read_trials(folder)
    tasks = trials.attrs["tasks"]
    rows = []
    for (mask, steps), g in trials.groupby(["mask", "steps"], sort=False):
        states = set(g["state"])
        status = "failed" if "failed" in states else "diverged" if "diverged" in states else "done"
        row = {"mask": mask, "steps": int(steps), "stored_params": int(g["params_stored"].iloc[0]),
               "shared_params": int(g["params_shared"].iloc[0]), "specific_params": int(g["params_specific"].iloc[0]),
               "head_params": int(g["params_heads"].iloc[0])}
        for name in tasks:
            row[f"acc_{name}"] = g[f"acc_{name}"].mean()
        row["mean_acc"] = g["mean_accuracy"].mean()
        row["std_acc"] = g["mean_accuracy"].std(ddof=1) if len(g) > 1 else 0.0
        row["seeds"] = len(g)
        row["status"] = status
        row["seconds"] = g["seconds"].sum()
        rows.append(row)
    df = pd.DataFrame(rows)
    if len(df):
        df = df.sort_values(["stored_params", "mask", "steps"], kind="stable").reset_index(drop=True)
    df.attrs["tasks"] = tasks
    return df


def front(folder):
    """The Pareto front (accuracy against stored parameters), one row per front point by stored parameters:
    mask, family, steps, stored_params, shared_params, specific_params, head_params, acc_<task> (fraction),
    mean_acc (fraction), std_acc, seeds, and against the previous front point (paired over seeds): delta,
    delta_std, ci_low, ci_high (fraction), verdict, wins, losses, ties.

    Read from the folder's front.json, the report LayerSplit wrote; when there is none, computed from the
    trials (done candidates only; the paired columns are then left empty)."""
    pd = _pandas()
    folder = os.fspath(folder)
    path = os.path.join(folder, "front.json") if os.path.isdir(folder) else folder
    if os.path.isfile(path) and path.endswith(".json"):
        with open(path) as f:
            report = json.load(f)
        tasks = report.get("tasks") or _tasks_of(folder)
        rows = []
        for p in report["front"]:
            row = {"mask": p["mask"], "family": p.get("family"), "steps": p.get("steps"),
                   "stored_params": p["stored_params"], "shared_params": p.get("shared_params"),
                   "specific_params": p.get("specific_params"), "head_params": p.get("head_params")}
            acc = p.get("task_accuracy", [])
            for i, name in enumerate(tasks or [f"t{i}" for i in range(len(acc))]):
                row[f"acc_{name}"] = acc[i] if i < len(acc) else math.nan
            row["mean_acc"] = p["mean_accuracy"]
            row["std_acc"] = p.get("std_accuracy")
            row["seeds"] = len(p.get("seeds", []))
            v = p.get("vs_previous") or {}
            row.update({"delta": v.get("mean", math.nan), "delta_std": v.get("std", math.nan),
                        "ci_low": v.get("ci_low", math.nan), "ci_high": v.get("ci_high", math.nan),
                        "verdict": v.get("verdict"), "wins": v.get("wins"), "losses": v.get("losses"),
                        "ties": v.get("ties")})
            rows.append(row)
        df = pd.DataFrame(rows)
        df.attrs["tasks"] = tasks
        df.attrs["source"] = path
        return df
    cs = candidates(folder)
    done = cs[cs["status"] == "done"].reset_index(drop=True)
    idx = pareto_indices(list(done["stored_params"]), list(done["mean_acc"]))
    df = done.iloc[idx].drop(columns=["status", "seconds"]).reset_index(drop=True)
    for k in ("delta", "delta_std", "ci_low", "ci_high"):
        df[k] = math.nan
    df["verdict"] = None
    df.attrs["tasks"] = cs.attrs["tasks"]
    df.attrs["source"] = "computed from the trials"
    return df


def _tasks_of(folder):
    try:
        return open_log(folder).tasks
    except (OSError, RunLogError):
        return None
