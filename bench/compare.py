#!/usr/bin/env python3
"""Run LayerSplit, PyTorch and numpy on the same multi-task models; print a Markdown report.

    python3 bench/compare.py --layersplit .build/release/layersplit
    python3 bench/compare.py --layersplit BIN --models mlp --threads 1 --quick   # smoke test
    python3 bench/compare.py --layersplit BIN --out results/bench.md --raw results/bench.jsonl

For each model x thread count x mask it runs, one after the other (never
concurrently: the machine has 2 cores and any overlap would corrupt every
number), `layersplit bench step`, bench/pytorch_ref.py and (MLP only)
bench/numpy_ref.py, each in its own process, plus one `layersplit bench peak`
per thread count for the %-of-peak column. The report (cores in use, the
table, the targets with PASS/FAIL) goes to stdout and to --out; progress goes
to stderr.

Standard library only: it runs under the system python3 as well as the venv.
The reference scripts run under --python (default: the repo's .venv-bench).
"""

import argparse
import json
import os
import resource
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_VENV_PYTHON = os.path.join(REPO, ".venv-bench", "bin", "python")

ALL_MASKS = ("SSSS", "TTSS", "SSTT", "TTTT")
# (warmup, steps) per model: the timing protocol's defaults, and --quick's.
PROTOCOL = {"mlp": (3, 20), "cnn": (2, 5)}
QUICK_PROTOCOL = {"mlp": (1, 3), "cnn": (1, 1)}

# OpenBLAS reads these at load time; this machine may set them, and with them
# OpenBLAS picks a smaller kernel / blocking that halves sgemm speed. Neither
# LayerSplit nor numpy should be measured in that state.
STRIPPED_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")

TORCH_MISSING_EXIT = 3  # pytorch_ref.py's exit status when `import torch` fails

# Targets (LayerSplit vs the references).
MLP_VS_TORCH, MLP_VS_NUMPY, CNN_VS_TORCH = 1.5, 1.1, 1.0
MLP_PEAK_FRACTION = 0.80
MLP_MAX_MASK_COST = 0.15


# ---- Running the engines ---------------------------------------------------------

def busy_cpu_seconds():
    """CPU-seconds all processes have spent busy since boot (None if not Linux)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:8]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields) - idle) / os.sysconf("SC_CLK_TCK")


def children_cpu_seconds():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


class Runner:
    """Runs one benchmark process at a time with the cleaned environment.

    Other people's compiles and benchmarks share this 2-core machine, and even
    a little foreign load wrecks multi-threaded timings (OpenMP/OpenBLAS
    threads spin-wait for a core that is busy elsewhere). So before each run
    it waits (up to `wait_quiet` seconds) for the machine to go idle, and
    during the run it measures the CPU time used by processes other than the
    child: results with more than FOREIGN_CPU_LIMIT are flagged in the report.
    """

    FOREIGN_CPU_LIMIT = 0.05  # CPUs' worth of time (fraction of one core)

    def __init__(self, timeout, wait_quiet):
        self.env = {k: v for k, v in os.environ.items() if k not in STRIPPED_ENV}
        self.timeout = timeout
        self.wait_quiet = wait_quiet
        self.failures = 0

    def _wait_for_quiet(self):
        if busy_cpu_seconds() is None or self.wait_quiet <= 0:
            return
        deadline, warned = time.monotonic() + self.wait_quiet, False
        while True:
            b0 = busy_cpu_seconds()
            time.sleep(2.0)
            if (busy_cpu_seconds() - b0) / 2.0 < self.FOREIGN_CPU_LIMIT:
                return
            if time.monotonic() > deadline:
                print("    (machine still busy; running anyway)", file=sys.stderr, flush=True)
                return
            if not warned:
                print("    (waiting for other processes to finish...)", file=sys.stderr, flush=True)
                warned = True

    def run(self, label, cmd, expect=None, timed=False):
        """The child's JSON result (last JSON line on stdout), or None.

        Returns (result, error). `expect` holds fields the result must echo
        back (model/mask/threads), catching a binary that ignores an option.
        For `timed` runs the result gets "foreign_cpus": the average number of
        CPUs other processes kept busy during the run (None if unknown).
        """
        if timed:
            self._wait_for_quiet()
        print(f"  {label}: {' '.join(cmd)}", file=sys.stderr, flush=True)
        t0, busy0, child0 = time.monotonic(), busy_cpu_seconds(), children_cpu_seconds()
        try:
            proc = subprocess.run(cmd, env=self.env, capture_output=True, text=True,
                                  timeout=self.timeout)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return self._fail(label, f"{type(exc).__name__}: {exc}")
        wall, busy1 = time.monotonic() - t0, busy_cpu_seconds()
        foreign = None
        if busy0 is not None and busy1 is not None:
            own = children_cpu_seconds() - child0
            foreign = max(0.0, (busy1 - busy0 - own) / wall)
        if proc.returncode != 0:
            tail = (proc.stderr.strip().splitlines() or ["(no stderr)"])[-1]
            err = f"exit status {proc.returncode}: {tail}"
            if proc.returncode == TORCH_MISSING_EXIT and "PyTorch is unavailable" in proc.stderr:
                return None, err  # expected; reported once, not as a failure
            return self._fail(label, err)
        lines = [l for l in proc.stdout.splitlines() if l.lstrip().startswith("{")]
        try:
            result = json.loads(lines[-1])
        except (IndexError, ValueError):
            return self._fail(label, f"no JSON line in stdout: {proc.stdout.strip()[-200:]!r}")
        for key, want in (expect or {}).items():
            if result.get(key) != want:
                return self._fail(label, f"asked {key}={want!r}, result says {result.get(key)!r}")
        if "examples_per_sec" in result:
            summary = f"{result['examples_per_sec']:,.1f} ex/s, "
        elif "peak_gflops" in result:
            summary = f"{result['peak_gflops']:.1f} GFLOP/s, "
        else:
            summary = ""
        note = ""
        if timed:
            result["foreign_cpus"] = foreign
            if foreign is not None and foreign > self.FOREIGN_CPU_LIMIT:
                note = f" -- other processes used {foreign:.2f} CPUs meanwhile: NOISY"
        print(f"    -> {summary}{wall:.1f} s{note}", file=sys.stderr, flush=True)
        return result, None

    def _fail(self, label, err):
        self.failures += 1
        print(f"    -> FAILED: {err}", file=sys.stderr, flush=True)
        return None, err


def probe_torch(runner, python):
    """(info dict, None) from `pytorch_ref.py --info`, or (None, why PyTorch is unusable)."""
    info, err = runner.run("pytorch config", [python, os.path.join(HERE, "pytorch_ref.py"),
                                              "--info"])
    if info is None and "PyTorch is unavailable: " in err:
        err = err.split("PyTorch is unavailable: ", 1)[1]  # just the ImportError
    return (info, None) if info is not None else (None, err)


def probe_numpy(runner, python):
    cmd = [python, "-c", "import numpy, threadpoolctl, json; "
                         "print(json.dumps({'numpy': numpy.__version__}))"]
    info, err = runner.run("numpy availability", cmd)
    return (info, None) if info is not None else (None, err)


# ---- Formatting ----------------------------------------------------------------------

NA = "n/a"       # engine unavailable or the run failed
NOT_APPLICABLE = "—"  # e.g. numpy on the CNN


NOISY_MARK = " †"


def noisy(result):
    f = (result or {}).get("foreign_cpus")
    return f is not None and f > Runner.FOREIGN_CPU_LIMIT


def fmt_rate(v):
    return f"{v:,.0f}" if v >= 1000 else f"{v:.1f}"


def ratio(a, b):
    return a / b if a is not None and b is not None and b > 0 else None


def fmt(v, spec, missing=NA):
    return missing if v is None else format(v, spec)


def cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


# ---- The report --------------------------------------------------------------------------

def exs(results, engine, model, threads, mask):
    r = results.get((engine, model, threads, mask))
    return r["examples_per_sec"] if r else None


def percent_of_peak(results, peaks, model, threads, mask):
    r, peak = results.get(("layersplit", model, threads, mask)), peaks.get(threads)
    if not r or not peak or not r.get("step_gflop") or not r.get("seconds_per_step"):
        return None
    return r["step_gflop"] / r["seconds_per_step"] / peak["peak_gflops"]


def mask_cost(results, model, threads, mask):
    """Fraction of LayerSplit's all-shared throughput lost by this mask."""
    base = exs(results, "layersplit", model, threads, "SSSS")
    this = exs(results, "layersplit", model, threads, mask)
    return None if base is None or this is None else 1.0 - this / base


def table(results, peaks, models, threads_list, masks):
    head = ["model", "threads", "mask", "LayerSplit ex/s", "PyTorch ex/s", "numpy ex/s",
            "LS/PyTorch", "LS/numpy", "LS % of sgemm peak", "LS cost vs SSSS"]
    rows = [head, ["---"] * 3 + ["---:"] * (len(head) - 3)]
    for model in models:
        for threads in threads_list:
            for mask in masks:
                ls = exs(results, "layersplit", model, threads, mask)
                pt = exs(results, "pytorch", model, threads, mask)
                npy = exs(results, "numpy", model, threads, mask)
                numpy_missing = NA if model == "mlp" else NOT_APPLICABLE
                cost = mask_cost(results, model, threads, mask)
                def rate(engine, value, missing=NA):
                    if value is None:
                        return missing
                    return fmt_rate(value) + (NOISY_MARK if noisy(
                        results.get((engine, model, threads, mask))) else "")

                rows.append([
                    model, str(threads), mask,
                    rate("layersplit", ls), rate("pytorch", pt), rate("numpy", npy, numpy_missing),
                    fmt(ratio(ls, pt), ".2f"),
                    numpy_missing if ratio(ls, npy) is None else f"{ratio(ls, npy):.2f}",
                    fmt(percent_of_peak(results, peaks, model, threads, mask), ".0%"),
                    "baseline" if mask == "SSSS" else fmt(cost, ".1%"),
                ])
    text = "\n".join("| " + " | ".join(r) + " |" for r in rows)
    flagged = [r for r in list(results.values()) + list(peaks.values()) if noisy(r)]
    if flagged:
        text += (f"\n\n{NOISY_MARK} other processes kept more than "
                 f"{Runner.FOREIGN_CPU_LIMIT:.0%} of a CPU busy during this run "
                 f"({len(flagged)} run(s){', including the sgemm peak' if any(noisy(p) for p in peaks.values()) else ''}): "
                 f"noisy, rerun when the machine is idle.")
    return text


def target_line(name, cells, ok, describe):
    """PASS/FAIL over the measured cells; a target with unmeasured cells can't PASS.

    cells: list of (where, value-or-None). ok(value) -> bool.
    """
    measured = [(w, v) for w, v in cells if v is not None]
    missing = [w for w, v in cells if v is None]
    if not cells or not measured:
        return f"- **n/a** {name}: not measured"
    failed = [(w, v) for w, v in measured if not ok(v)]
    worst_where, worst = min(measured, key=lambda wv: (ok(wv[1]), describe.key(wv[1])))
    status = "FAIL" if failed else ("INCOMPLETE" if missing else "PASS")
    line = f"- **{status}** {name}: worst {describe(worst)} ({worst_where})"
    if failed:
        line += f"; failing: {', '.join(f'{w} {describe(v)}' for w, v in failed)}"
    if missing:
        line += f"; not measured: {', '.join(missing)}"
    return line


class Describe:
    """How to print a target's value, and which value is the worst (lowest key)."""

    def __init__(self, show, key=lambda v: v):
        self.show, self.key = show, key

    def __call__(self, v):
        return self.show(v)


def targets(results, peaks):
    """The targets are stated for every mask at 1 and 2 threads: cells this run
    did not measure (--models/--threads/--masks subsets) are listed as such,
    so a partial run can never report PASS."""
    where = lambda t, m: f"{m} @{t}t"
    times = Describe(lambda v: f"{v:.2f}x")
    grid = [(t, m) for t in (1, 2) for m in ALL_MASKS]

    def vs(model, other):
        return [(where(t, m), ratio(exs(results, "layersplit", model, t, m),
                                    exs(results, other, model, t, m))) for t, m in grid]

    return "\n".join([
        target_line(f"MLP LayerSplit >= {MLP_VS_TORCH}x PyTorch at every mask and thread count",
                    vs("mlp", "pytorch"), lambda v: v >= MLP_VS_TORCH, times),
        target_line(f"MLP LayerSplit >= {MLP_VS_NUMPY}x numpy at every mask and thread count",
                    vs("mlp", "numpy"), lambda v: v >= MLP_VS_NUMPY, times),
        target_line(f"MLP all-shared (SSSS) at 1 thread >= {MLP_PEAK_FRACTION:.0%} of sgemm peak",
                    [(where(1, "SSSS"), percent_of_peak(results, peaks, "mlp", 1, "SSSS"))],
                    lambda v: v >= MLP_PEAK_FRACTION, Describe(lambda v: f"{v:.0%}")),
        target_line(f"MLP at 2 threads, each task-specific mask costs <= {MLP_MAX_MASK_COST:.0%} "
                    f"vs SSSS (LayerSplit)",
                    [(where(2, m), mask_cost(results, "mlp", 2, m)) for m in ALL_MASKS[1:]],
                    lambda v: v <= MLP_MAX_MASK_COST,
                    Describe(lambda v: f"{v:.1%}", key=lambda v: -v)),
        target_line(f"CNN LayerSplit >= {CNN_VS_TORCH}x PyTorch at every mask and thread count",
                    vs("cnn", "pytorch"), lambda v: v >= CNN_VS_TORCH, times),
    ])


def engine_cores(results, engine):
    """The "core" an engine reported; per model if it differs between models
    (PyTorch's CNN core also lists the oneDNN conv kernels)."""
    by_model = {}
    for (e, model, *_), r in results.items():
        if e == engine and r.get("core"):
            by_model.setdefault(model, {})[r["core"]] = None  # ordered set
    cores = {m: "; ".join(c) for m, c in by_model.items()}
    if not cores:
        return "no successful run"
    if len(set(cores.values())) == 1:
        return next(iter(cores.values()))
    return "".join(f"\n  - {m}: {c}" for m, c in cores.items())


def cores_section(results, peaks, torch_info, torch_err, numpy_err, env_removed, loads, python):
    out = [f"- Machine: {cpu_model()}, {os.cpu_count()} CPUs; load average (1 min) "
           f"{loads[0]:.2f} at start, {loads[1]:.2f} at end"]
    removed = ", ".join(f"{k}={v}" for k, v in env_removed.items()) or "none were set"
    out.append(f"- Removed from the children's environment: {removed}")
    ls_core = engine_cores(results, "layersplit")
    peak_cores = "; ".join(dict.fromkeys(p["core"] for p in peaks.values() if p.get("core")))
    if peak_cores and peak_cores != ls_core:
        ls_core += f" (`bench peak`: {peak_cores})"
    out.append(f"- LayerSplit: {ls_core}")
    if peaks:
        out.append("- LayerSplit sgemm peak (`bench peak`): " + ", ".join(
            f"{t} thread{'s' if t > 1 else ''} {p['peak_gflops']:.1f} GFLOP/s"
            f"{NOISY_MARK if noisy(p) else ''}"
            for t, p in sorted(peaks.items())))
    else:
        out.append(f"- LayerSplit sgemm peak: not measured (`bench peak` failed): "
                   f"% of peak is {NA}")
    if numpy_err:
        out.append(f"- numpy: unavailable under {python} ({numpy_err}): numpy columns are {NA}")
    else:
        out.append(f"- numpy: {engine_cores(results, 'numpy')}")
    if torch_info is None:
        out.append(f"- **PyTorch is unavailable** under {python} ({torch_err}); "
                   f"the PyTorch columns are {NA}")
    else:
        out.append(f"- PyTorch: {engine_cores(results, 'pytorch')}")
        out.append(f"- torch.backends.mkldnn.is_available(): {torch_info.get('mkldnn_available')}")
        out.append(f"- torch.__config__.parallel_info() at torch's default thread counts "
                   f"(each run sets its own): {'; '.join(torch_info.get('parallel_info', []))}")
    return "\n".join(out)


# ---- Main -----------------------------------------------------------------------------------

def csv_arg(kind, allowed=None):
    def parse(text):
        items = [s.strip() for s in text.split(",") if s.strip()]
        if kind is int:
            items = [int(s) for s in items]
        elif allowed:
            items = [s.upper() if s.upper() in allowed else s.lower() for s in items]
            bad = [s for s in items if s not in allowed]
            if bad:
                raise argparse.ArgumentTypeError(f"unknown {bad}; choose from {','.join(allowed)}")
        if not items:
            raise argparse.ArgumentTypeError("empty list")
        return items
    return parse


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layersplit", required=True, help="path to the layersplit binary")
    p.add_argument("--models", type=csv_arg(str, ("mlp", "cnn")), default=["mlp", "cnn"])
    p.add_argument("--threads", type=csv_arg(int), default=[1, 2])
    p.add_argument("--masks", type=csv_arg(str, ALL_MASKS), default=list(ALL_MASKS))
    p.add_argument("--quick", action="store_true",
                   help="few steps and one repeat: a smoke test, not a measurement")
    p.add_argument("--python", default=None,
                   help="interpreter for the reference scripts "
                        "(default: .venv-bench/bin/python if present, else this one)")
    p.add_argument("--out", help="also write the report (Markdown) to this file")
    p.add_argument("--raw", help="also write every engine's JSON result to this file (JSON lines)")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds per child process (default 3600, 600 with --quick)")
    p.add_argument("--wait-quiet", type=float, default=None, metavar="SECONDS",
                   help="before each timed run, wait up to this long for other processes "
                        "to stop using the CPUs (default 300, 0 with --quick: don't wait)")
    args = p.parse_args()

    layersplit = os.path.abspath(args.layersplit)
    if not (os.path.isfile(layersplit) and os.access(layersplit, os.X_OK)):
        p.error(f"--layersplit {args.layersplit}: not an executable file")
    python = args.python or (DEFAULT_VENV_PYTHON if os.path.exists(DEFAULT_VENV_PYTHON)
                             else sys.executable)
    protocol = QUICK_PROTOCOL if args.quick else PROTOCOL
    wait_quiet = args.wait_quiet if args.wait_quiet is not None else (0 if args.quick else 300)
    runner = Runner(args.timeout or (600 if args.quick else 3600), wait_quiet)
    env_removed = {k: os.environ[k] for k in STRIPPED_ENV if k in os.environ}
    load_start = os.getloadavg()[0]
    if load_start > 0.5:
        print(f"WARNING: load average is {load_start:.2f}: something else is running"
              + (f"; each run first waits up to {wait_quiet:.0f} s for the machine to go idle"
                 if wait_quiet > 0 else ": the numbers will be noisy"), file=sys.stderr)

    print("Probing the engines", file=sys.stderr)
    torch_info, torch_err = probe_torch(runner, python)
    _, numpy_err = probe_numpy(runner, python)
    if torch_info is None:
        print(f"PyTorch is unavailable under {python}: {torch_err}", file=sys.stderr)

    peaks, results = {}, {}
    for threads in args.threads:
        peak, _ = runner.run(f"layersplit peak {threads}t",
                             [layersplit, "bench", "peak", "--threads", str(threads), "--json"],
                             expect={"threads": threads}, timed=True)
        if peak is not None and peak.get("peak_gflops"):
            peaks[threads] = peak

    for model in args.models:
        warmup, steps = protocol[model]
        common = ["--model", model, "--steps", str(steps), "--warmup", str(warmup)]
        for threads in args.threads:
            for mask in args.masks:
                cell = common + ["--mask", mask, "--threads", str(threads)]
                expect = {"model": model, "mask": mask, "threads": threads}
                print(f"{model} {mask} {threads} thread(s)", file=sys.stderr, flush=True)
                jobs = [("layersplit", [layersplit, "bench", "step"] + cell + ["--json"])]
                if torch_info is not None:
                    jobs.append(("pytorch", [python, os.path.join(HERE, "pytorch_ref.py")] + cell
                                 + (["--repeats", "1"] if args.quick else [])))
                if model == "mlp" and numpy_err is None:
                    jobs.append(("numpy", [python, os.path.join(HERE, "numpy_ref.py")] + cell
                                 + (["--repeats", "1"] if args.quick else [])))
                for engine, cmd in jobs:  # strictly sequential
                    result, _ = runner.run(engine, cmd, expect, timed=True)
                    if result is not None:
                        results[(engine, model, threads, mask)] = result

    loads = (load_start, os.getloadavg()[0])
    title = "LayerSplit vs PyTorch vs numpy" + (" (--quick: smoke test, not a measurement)"
                                                if args.quick else "")
    report = "\n\n".join([
        f"## {title}",
        f"{time.strftime('%Y-%m-%d %H:%M:%S')}; protocol (warmup, steps): "
        + ", ".join(f"{m} {protocol[m]}" for m in args.models)
        + "; throughput = rows per step (4 tasks x batch) / seconds per step",
        cores_section(results, peaks, torch_info, torch_err, numpy_err, env_removed, loads,
                      python),
        table(results, peaks, args.models, args.threads, args.masks),
        "### Targets\n\n" + targets(results, peaks),
    ]) + "\n"
    print(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(report)
    if args.raw:
        with open(args.raw, "w") as f:
            for r in list(peaks.values()) + list(results.values()):
                f.write(json.dumps(r) + "\n")
    if runner.failures:
        print(f"{runner.failures} benchmark process(es) failed; see above", file=sys.stderr)
    return 1 if runner.failures else 0


if __name__ == "__main__":
    sys.exit(main())
