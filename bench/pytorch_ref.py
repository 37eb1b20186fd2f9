#!/usr/bin/env python3
"""PyTorch reference of the multi-task MLP and CNN, written the plain way.

"Plain" on purpose: this is the code a researcher would write for hard
parameter sharing, which is what LayerSplit competes against. A task-specific
unit is an nn.ModuleList of T deep copies and the batch is split per task with
x.split(B) and re-joined with torch.cat. Eager mode, default NCHW, default
optimiser implementation; no torch.compile, channels_last or fused kernels.

    python bench/pytorch_ref.py --model cnn --mask SSTT --threads 2
    python bench/pytorch_ref.py --info          # core/config summary as JSON

Prints one JSON line (see refcommon.report). If torch cannot be imported it
says so on stderr and exits with status 3 (compare.py shows "n/a").
"""

import copy
import json
import os
import sys
import tempfile

import refcommon as rc

TORCH_MISSING_EXIT = 3

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as exc:  # keep the message stable: compare.py greps for it
    print(f"PyTorch is unavailable: {exc}", file=sys.stderr)
    sys.exit(TORCH_MISSING_EXIT)


# ---- Models -----------------------------------------------------------------

def mlp_units():
    units, fan_in = [], rc.MLP_INPUT
    for _ in range(rc.MLP_UNITS):
        units.append(nn.Sequential(nn.Linear(fan_in, rc.MLP_HIDDEN), nn.ReLU()))
        fan_in = rc.MLP_HIDDEN
    return units, rc.MLP_HIDDEN


def conv3x3(c_in, c_out, stride=1):
    return nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """ResNet basic block: conv-BN-ReLU-conv-BN + shortcut, then ReLU."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv1 = conv3x3(c_in, c_out, stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = conv3x3(c_out, c_out)
        self.bn2 = nn.BatchNorm2d(c_out)
        if stride == 1 and c_in == c_out:
            self.shortcut = nn.Identity()
        else:
            self.shortcut = nn.Sequential(
                nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


def cnn_units():
    stem = nn.Sequential(conv3x3(1, 32), nn.BatchNorm2d(32), nn.ReLU())
    return [stem, BasicBlock(32, 32, 1), BasicBlock(32, 64, 2),
            BasicBlock(64, 128, 2)], rc.CNN_FEATURES


class MultiTaskNet(nn.Module):
    """Units per the mask, then (CNN) global average pooling, then one head per task.

    forward() returns the loss: sum over tasks of the mean cross-entropy of
    that task's rows. Rows of task t are t*B..(t+1)*B-1.
    """

    def __init__(self, units, features, mask, batch_per_task, pool):
        super().__init__()
        self.mask, self.b, self.pool = mask, batch_per_task, pool
        self.units = nn.ModuleList(
            u if m == "S" else nn.ModuleList(copy.deepcopy(u) for _ in range(rc.NUM_TASKS))
            for u, m in zip(units, mask))
        self.heads = nn.ModuleList(nn.Linear(features, rc.NUM_CLASSES)
                                   for _ in range(rc.NUM_TASKS))

    def forward(self, x, y):
        for unit, m in zip(self.units, self.mask):
            if m == "S":
                x = unit(x)
            else:
                x = torch.cat([copy_t(x_t) for copy_t, x_t in zip(unit, x.split(self.b))])
        if self.pool:
            x = x.mean(dim=(2, 3))
        return sum(F.cross_entropy(head(x_t), y_t)
                   for head, x_t, y_t in zip(self.heads, x.split(self.b), y.split(self.b)))


def build(model, mask):
    """(net, x, y) with the fixed random batch; deterministic for a given seed."""
    torch.manual_seed(rc.SEED)
    b = rc.batch_per_task(model)
    rows = rc.NUM_TASKS * b
    if model == "mlp":
        units, features = mlp_units()
        net = MultiTaskNet(units, features, mask, b, pool=False)
        x = torch.randn(rows, rc.MLP_INPUT)
    else:
        units, features = cnn_units()
        net = MultiTaskNet(units, features, mask, b, pool=True)
        x = torch.randn(rows, *rc.CNN_INPUT_SHAPE)
    y = torch.randint(0, rc.NUM_CLASSES, (rows,))
    net.train()  # BatchNorm uses batch statistics (per task for T units)
    return net, x, y


def make_optimizer(net):
    return torch.optim.SGD(net.parameters(), lr=rc.LR, momentum=rc.MOMENTUM,
                           weight_decay=rc.WEIGHT_DECAY)


# ---- Which kernels are in use -------------------------------------------------

def _capture_fd_stdout(fn):
    """Run fn() and return what native code wrote to fd 1 (MKL/oneDNN verbose
    output bypasses sys.stdout, and stdout must stay one clean JSON line)."""
    sys.stdout.flush()
    saved = os.dup(1)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        os.dup2(tmp.fileno(), 1)
        try:
            fn()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        tmp.seek(0)
        return tmp.read().decode(errors="replace")


def _onednn_log(fn):
    """fn()'s oneDNN verbose log (empty if oneDNN is absent or fails to log)."""
    def logged():
        with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
            fn()
    try:
        return _capture_fd_stdout(logged).splitlines()
    except Exception:
        return []


def onednn_isa():
    """The best ISA oneDNN found on this CPU. (The probe conv needs >1 channel and
    batch >1: PyTorch sends tiny convolutions to its own slow path, not oneDNN.)"""
    for line in _onednn_log(lambda: F.conv2d(torch.randn(2, 8, 8, 8), torch.randn(8, 8, 3, 3))):
        if ",isa:" in line:
            return line.split(",isa:", 1)[1].strip()
    return "?"


def conv_implementations(net, x, y):
    """The oneDNN kernels one training step of `net` actually runs its convs with."""
    impls = set()
    for line in _onednn_log(lambda: net(x, y).backward()):
        f = line.split(",")
        if len(f) > 6 and f[2:4] == ["primitive", "exec"] and f[5] == "convolution":
            impls.add(f[6])
    return sorted(impls)


def config_info():
    show = torch.__config__.show()

    def find(prefix):
        for line in show.splitlines():
            if prefix in line:
                return line.split(prefix, 1)[1].split()[0].removesuffix("-Product")
        return None

    parallel = [l.strip() for l in torch.__config__.parallel_info().splitlines() if l.strip()]
    return {
        "torch": torch.__version__,
        "mkl": find("Math Kernel Library Version ") if torch.backends.mkl.is_available() else None,
        "mkldnn_available": torch.backends.mkldnn.is_available(),
        "onednn": find("MKL-DNN v"),
        "onednn_isa": onednn_isa() if torch.backends.mkldnn.is_available() else None,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "parallel_info": parallel[1:9],  # skip the "ATen/Parallel:" header
    }


def core_summary(info):
    blas = f"MKL {info['mkl']}" if info["mkl"] else "non-MKL BLAS"
    dnn = (f"oneDNN v{info['onednn']} [{info['onednn_isa']}]"
           if info["mkldnn_available"] else "no oneDNN")
    core = f"torch {info['torch']}: sgemm {blas}; conv {dnn}; ATen {info['cpu_capability']}"
    if info.get("conv_kernels"):
        core += f"; conv kernels used: {', '.join(info['conv_kernels'])}"
    return core


# ---- Main -----------------------------------------------------------------------

def main():
    def extra(p):
        p.add_argument("--info", action="store_true",
                       help="print the torch configuration as JSON and exit")

    args = rc.parse_args("pytorch", __doc__.splitlines()[0], extra=extra)
    if args.info:  # before setting threads: report torch's defaults
        print(json.dumps(config_info()))
        return
    # Must precede any parallel work; inter-op parallelism is irrelevant to a
    # single eager training loop and would only add threads competing for 2 cores.
    torch.set_num_interop_threads(1)
    torch.set_num_threads(args.threads)

    net, x, y = build(args.model, args.mask)
    opt = make_optimizer(net)
    losses = []

    def step():
        opt.zero_grad(set_to_none=True)
        loss = net(x, y)
        loss.backward()
        opt.step()
        if args.check:  # only when asked: timing runs measure the step, nothing else
            losses.append(loss.item())

    seconds = rc.time_training(step, args.steps, args.warmup, args.repeats)
    info = config_info()
    if args.model == "cnn":  # after timing: verbose logging is slow
        info["conv_kernels"] = conv_implementations(net, x, y)
    rc.report(args, seconds, core_summary(info), losses)


if __name__ == "__main__":
    main()
