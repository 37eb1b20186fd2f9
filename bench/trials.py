#!/usr/bin/env python3
"""Candidates per hour, LayerSplit against PyTorch on CPU, for the main job's two small-batch protocols.

    python3 bench/trials.py --layersplit .build/release/layersplit --out bench/trials-results.md
    python3 bench/trials.py --layersplit BIN --protocols mlp --threads 2 --steps 20   # smoke test

For each protocol and thread count it runs `layersplit bench trials --json` (every mask) and then
bench/trials_pytorch.py (every mask), one after the other, never side by side (2-core machine), with
OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from the children's environment. It prints a Markdown table:
seconds per candidate and candidates per hour for both, the ratio, each candidate's FLOP floor (counted GEMM
FLOPs / measured sgemm peak), the cost of each mask over all-shared, and the targets with PASS/FAIL. The CPU
model, the OpenBLAS core, the date and the load average are printed first: timings on a busy machine are
noisy, and only ratios from one sitting mean anything.

Standard library only; PyTorch runs under --python (default: the repo's .venv-bench).
"""

import argparse
import datetime
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
STRIPPED_ENV = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
MASKS = "SSSS,TTSS,SSTT,TTTT,AAAA"

# Targets (issue "Trials per hour"): LayerSplit / PyTorch candidates per hour at every mask on both protocols,
# and the cost of a task-specific mask over all-shared on the small-batch protocol.
VS_TORCH = {1: 1.2, 2: 1.5}
MAX_MASK_COST = 0.25


def env():
    e = dict(os.environ)
    for k in STRIPPED_ENV:
        e.pop(k, None)
    return e


def run_json(cmd):
    print("+ " + " ".join(cmd), file=sys.stderr, flush=True)
    p = subprocess.run(cmd, env=env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        print(p.stderr, file=sys.stderr)
        return None, p.returncode
    return [json.loads(l) for l in p.stdout.splitlines() if l.startswith("{")], 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--layersplit", default=os.path.join(REPO, ".build", "release", "layersplit"))
    ap.add_argument("--python", default=os.path.join(REPO, ".venv-bench", "bin", "python"))
    ap.add_argument("--protocols", default="mlp,cnn")
    ap.add_argument("--masks", default=MASKS)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--steps", type=int, default=None, help="override the protocols' steps (smoke test)")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--out", default=None, help="also write the report here")
    ap.add_argument("--raw", default=None, help="append every JSON line here")
    args = ap.parse_args()

    load = os.getloadavg()[0]
    rows, failed, torch_missing = {}, False, False
    raw = []
    for protocol in args.protocols.split(","):
        for threads in [int(t) for t in args.threads.split(",")]:
            extra = ["--steps", str(args.steps)] if args.steps else []
            extra += ["--repeats", str(args.repeats)]
            ls, rc = run_json([args.layersplit, "bench", "trials", "--json", "--protocols", protocol, "--masks", args.masks,
                               "--threads", str(threads)] + extra)
            failed |= rc != 0
            pt, rc = run_json([args.python, os.path.join(HERE, "trials_pytorch.py"), "--protocols", protocol,
                               "--masks", args.masks, "--threads", str(threads)] + extra)
            if rc == 3:
                torch_missing = True
            else:
                failed |= rc != 0
            for r in (ls or []) + (pt or []):
                raw.append(r)
                rows.setdefault((protocol, threads, r["mask"]), {})[r["engine"]] = r

    first_ls = next((r for r in raw if r["engine"] == "layersplit"), {})
    first_pt = next((r for r in raw if r["engine"] == "pytorch"), {})
    out = ["# Candidates per hour: LayerSplit vs PyTorch (CPU), small-batch protocols", ""]
    out.append(f"- date: {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}")
    out.append(f"- CPU: {first_ls.get('cpu', '?')}; OpenBLAS core: {first_ls.get('core', '?')}")
    out.append(f"- PyTorch: {first_pt.get('core', 'PyTorch is unavailable' if torch_missing else '?')}")
    out.append(f"- load average at the start: {load:.2f}" + (" (**the machine was not idle: timings are noisy**)" if load > 0.5 else ""))
    out.append("- protocols: mlp = 784-512x4, 3 tasks x 64 rows, Adam, 189 steps, one evaluation of 11,360 test examples;"
               " cnn = conv16 + residual 16/32/64, 3 tasks x 32 rows, SGD momentum + cosine, 200 steps, one evaluation of 3,000")
    out.append("")
    out.append("| protocol | threads | mask | LS s/cand | PT s/cand | LS cand/h | PT cand/h | LS/PT | FLOP floor s | LS cost vs SSSS | PT cost vs SSSS |")
    out.append("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    verdicts = []
    for (protocol, threads, mask), r in rows.items():
        ls, pt = r.get("layersplit"), r.get("pytorch")
        base = rows.get((protocol, threads, "SSSS"), {})

        def cost(engine, cur):
            b = base.get(engine)
            if not b or not cur:
                return "—"
            if mask == "SSSS":
                return "baseline"
            return f"{cur['seconds_per_candidate'] / b['seconds_per_candidate'] - 1:+.0%}"

        ratio = ls["candidates_per_hour"] / pt["candidates_per_hour"] if ls and pt else None
        f = lambda x, k, fmt: format(x[k], fmt) if x else "n/a"
        out.append(f"| {protocol} | {threads} | {mask} | {f(ls, 'seconds_per_candidate', '.2f')} | "
                   f"{f(pt, 'seconds_per_candidate', '.2f')} | {f(ls, 'candidates_per_hour', ',.0f')} | "
                   f"{f(pt, 'candidates_per_hour', ',.0f')} | {format(ratio, '.2f') if ratio else 'n/a'} | "
                   f"{f(ls, 'flop_floor_seconds', '.2f')} | {cost('layersplit', ls)} | {cost('pytorch', pt)} |")
        if ratio is not None:
            want = VS_TORCH.get(threads, VS_TORCH[2])
            verdicts.append((f"{protocol} {threads}t {mask}: LS/PT {ratio:.2f} >= {want}", ratio >= want))
        if ls and base.get("layersplit") and "T" in mask:
            c = ls["seconds_per_candidate"] / base["layersplit"]["seconds_per_candidate"] - 1
            verdicts.append((f"{protocol} {threads}t {mask}: cost over SSSS {c:+.0%} <= +{MAX_MASK_COST:.0%}", c <= MAX_MASK_COST))
    out.append("")
    out.append("## Targets")
    out.append("")
    for text, ok in verdicts:
        out.append(f"- {'PASS' if ok else 'FAIL'} {text}")
    if torch_missing:
        out.append("- PyTorch is unavailable: the ratios are n/a")
    report = "\n".join(out) + "\n"
    print(report)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(report)
    if args.raw:
        with open(args.raw, "a") as fh:
            for r in raw:
                fh.write(json.dumps(r) + "\n")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
