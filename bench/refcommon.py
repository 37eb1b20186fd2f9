"""Shared pieces of the Python reference benchmarks (pytorch_ref.py, numpy_ref.py).

Everything that must be identical between the engines lives here, so that the
PyTorch and numpy references cannot silently drift apart: the model sizes, the
optimiser hyper-parameters, the command line and the timing protocol.
Standard library only (numpy_ref.py must run without torch and vice versa).
"""

import argparse
import json
import sys
import time

# ---- The multi-task setup (must match LayerSplit's `bench step`) ----------
NUM_TASKS = 4
NUM_CLASSES = 10
MASKS = ("SSSS", "TTSS", "SSTT", "TTTT")

# MLP: 4 units Linear(in->512)+ReLU, first in=784; heads Linear(512->10).
MLP_INPUT = 784
MLP_HIDDEN = 512
MLP_UNITS = 4
MLP_BATCH_PER_TASK = 128

# CNN: 1x28x28 input, stem + 3 basic blocks (32, 64, 128 channels); heads 128->10.
CNN_INPUT_SHAPE = (1, 28, 28)
CNN_BATCH_PER_TASK = 64
CNN_FEATURES = 128

# torch.optim.SGD(lr=0.01, momentum=0.9, weight_decay=5e-4)
LR = 0.01
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-4

# The same fixed batch is reused every step, so the seed only matters for the
# --check loss curve and the gradient check being reproducible.
SEED = 1234

# Defaults of the timing protocol, per model: (warmup, steps).
DEFAULT_WARMUP_STEPS = {"mlp": (3, 20), "cnn": (2, 5)}
REPEATS = 3


def batch_per_task(model):
    return MLP_BATCH_PER_TASK if model == "mlp" else CNN_BATCH_PER_TASK


def parse_args(engine, description, models=("mlp", "cnn"), extra=None):
    """Parse the common command line; fill the per-model step defaults."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--model", choices=models, default="mlp")
    p.add_argument("--mask", default="SSSS",
                   help="one letter per unit, S = shared, T = task-specific")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=None,
                   help="timed steps per repeat (default: 20 mlp, 5 cnn)")
    p.add_argument("--warmup", type=int, default=None,
                   help="untimed warm-up steps (default: 3 mlp, 2 cnn)")
    p.add_argument("--repeats", type=int, default=REPEATS,
                   help="the timed block is run this many times; the best is reported")
    p.add_argument("--check", action="store_true",
                   help="record the loss of every step and print the first and "
                        "last to stderr (proves training works; slightly slower)")
    if extra is not None:
        extra(p)
    args = p.parse_args()
    args.mask = args.mask.upper()
    if len(args.mask) != 4 or set(args.mask) - {"S", "T"}:
        p.error(f"--mask must be 4 letters of S/T, got {args.mask!r}")
    if args.threads < 1 or args.repeats < 1:
        p.error("--threads and --repeats must be >= 1")
    warmup, steps = DEFAULT_WARMUP_STEPS[args.model]
    args.warmup = warmup if args.warmup is None else args.warmup
    args.steps = steps if args.steps is None else args.steps
    if args.steps < 1 or args.warmup < 0:
        p.error("--steps must be >= 1 and --warmup >= 0")
    args.engine = engine
    return args


def time_training(step, steps, warmup, repeats):
    """Best-of-`repeats` seconds per step of `step()`.

    Warm-up is untimed (first-touch allocation, thread-pool start-up, oneDNN
    primitive creation). The minimum over repeats is the least noisy estimate
    of the engine's speed on a shared machine: noise only ever adds time.
    """
    for _ in range(warmup):
        step()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(steps):
            step()
        best = min(best, time.perf_counter() - t0)
    return best / steps


def report(args, seconds_per_step, core, losses=None):
    """Print the one JSON result line on stdout (and the --check losses on stderr)."""
    if losses:
        print(f"[{args.engine} {args.model} {args.mask}] loss first step {losses[0]:.6f}, "
              f"last step {losses[-1]:.6f} ({len(losses)} steps)", file=sys.stderr)
    rows = NUM_TASKS * batch_per_task(args.model)
    print(json.dumps({
        "engine": args.engine,
        "model": args.model,
        "mask": args.mask,
        "threads": args.threads,
        "examples_per_sec": rows / seconds_per_step,
        "seconds_per_step": seconds_per_step,
        "core": core,
    }), flush=True)
