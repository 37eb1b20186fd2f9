#!/usr/bin/env python3
"""The main job's unit of work in plain PyTorch: one candidate trained briefly on small batches, then one test evaluation.

Mirrors `layersplit bench trials` (Sources/LayerSplitCLI/BenchTrials.swift) case for case:

* mlp: 784 -> 4 x [Linear(->512) + ReLU] -> 3 heads Linear(512, 10); Adam (lr 1e-3, betas 0.9/0.999,
  eps 1e-8, no weight decay), constant rate; 189 steps of 3 tasks x 64 rows; test set 3787 + 3787 + 3786 = 11,360.
* cnn: 1x28x28 -> conv3x3(1->16, no bias)+BN+ReLU -> basic block 16 -> basic block 32 /2 -> basic block 64 /2
  -> global average pool -> 3 heads Linear(64, 10); SGD lr 0.05, momentum 0.9, weight decay 5e-4 on weights
  only (as the engine: not on biases or BatchNorm), cosine from 0.05 to 0 over the run; 200 steps of 3 tasks x
  32 rows; test set 3 x 1000.

A mask letter per unit: S one shared copy over all rows; T one deep copy per task over its rows (x.split /
torch.cat); A the shared unit plus a per-task adapter added before the normalisation and ReLU (linear: rank-8
U_t V_t x with U_t = 0, V_t ~ N(0, 1/in); conv and residual: a 1x1 convolution beside each 3x3 one, zero
initialised, and every BatchNorm of the unit per task), as the engine's adapter units. Init as the engine: He
normal weights N(0, 2/fan_in), zero biases, BN weight 1 / bias 0.

Data: 2,000 training examples per task of N(0, 1) inputs with uniform labels (fixed seed), drawn per task from
its own reshuffled stream and copied into one batch tensor per step (as the engine's Batcher); evaluation in
fixed batches of 256 rows per task, `model.eval()` under `torch.no_grad()`.

A candidate's time runs from building the model to the end of its evaluation (data generation excluded, as in
the engine). One untimed warm-up candidate of 5 steps runs first (oneDNN primitive creation, thread start-up).
Prints one JSON line per case: {"engine", "protocol", "mask", "threads", "steps", "seconds_per_candidate",
"candidates_per_hour", "accuracy", "core"}. Exit 3 if torch cannot be imported.
"""

import argparse
import copy
import json
import math
import sys
import time

try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as exc:
    print(f"PyTorch is unavailable: {exc}", file=sys.stderr)
    sys.exit(3)

TASKS = 3
CLASSES = 10
TRAIN_PER_TASK = 2000
PROTOCOLS = {
    "mlp": dict(steps=189, batch=64, test=(3787, 3787, 3786), shape=(784,)),
    "cnn": dict(steps=200, batch=32, test=(1000, 1000, 1000), shape=(1, 28, 28)),
}
ADAPTER_RANK = 8
EVAL_BATCH = 256


def he_(w):
    fan_in = w[0].numel()
    with torch.no_grad():
        w.normal_(0, math.sqrt(2 / fan_in))


def linear(i, o):
    l = nn.Linear(i, o)
    he_(l.weight)
    nn.init.zeros_(l.bias)
    return l


def conv(i, o, k, stride=1):
    c = nn.Conv2d(i, o, k, stride=stride, padding=k // 2, bias=False)
    he_(c.weight)
    return c


def zero_conv1x1(i, o, stride):
    c = nn.Conv2d(i, o, 1, stride=stride, bias=False)
    nn.init.zeros_(c.weight)
    return c


# Rows per task of the batch going through the network (set by loss_and_correct): training batches have
# `batch` rows per task, evaluation batches 256 (fewer in the last).
SEGMENTS = []


def split(x, _b=None):
    return x.split(SEGMENTS)


# ---- Units in the three states -------------------------------------------------

class LinearUnit(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.fc = linear(i, o)

    def forward(self, x):
        return F.relu(self.fc(x))


class LinearAdapterUnit(nn.Module):
    """ReLU(W x + b + U_t V_t x): W shared over all rows, the rank-r adapter per task."""

    def __init__(self, shared, b):
        super().__init__()
        self.fc, self.b = shared.fc, b
        o, i = self.fc.weight.shape
        self.V = nn.ParameterList(nn.Parameter(torch.randn(ADAPTER_RANK, i) / math.sqrt(i)) for _ in range(TASKS))
        self.U = nn.ParameterList(nn.Parameter(torch.zeros(o, ADAPTER_RANK)) for _ in range(TASKS))

    def forward(self, x):
        z = self.fc(x)
        z = torch.cat([z_t + (x_t @ V.t()) @ U.t()
                       for z_t, x_t, U, V in zip(split(z, self.b), split(x, self.b), self.U, self.V)])
        return F.relu(z)


class ConvUnit(nn.Module):
    def __init__(self, i, o):
        super().__init__()
        self.conv, self.bn = conv(i, o, 3), nn.BatchNorm2d(o)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class ConvAdapterUnit(nn.Module):
    """ReLU(BN_t(conv(x) + A_t x)): conv shared, the 1x1 adapter and the BatchNorm per task."""

    def __init__(self, shared, b):
        super().__init__()
        self.conv, self.b = shared.conv, b
        i, o = self.conv.in_channels, self.conv.out_channels
        self.adapters = nn.ModuleList(zero_conv1x1(i, o, 1) for _ in range(TASKS))
        self.bns = nn.ModuleList(copy.deepcopy(shared.bn) for _ in range(TASKS))

    def forward(self, x):
        z = self.conv(x)
        return F.relu(torch.cat([bn(z_t + a(x_t)) for z_t, x_t, a, bn in
                                 zip(split(z, self.b), split(x, self.b), self.adapters, self.bns)]))


class BasicBlock(nn.Module):
    """ResNet basic block: conv-BN-ReLU-conv-BN + shortcut (1x1 conv + BN when the shape changes), then ReLU."""

    def __init__(self, i, o, stride):
        super().__init__()
        self.conv1, self.bn1 = conv(i, o, 3, stride), nn.BatchNorm2d(o)
        self.conv2, self.bn2 = conv(o, o, 3), nn.BatchNorm2d(o)
        self.stride = stride
        if stride != 1 or i != o:
            self.sc_conv, self.sc_bn = conv(i, o, 1, stride), nn.BatchNorm2d(o)
        else:
            self.sc_conv = self.sc_bn = None

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        r = self.bn2(self.conv2(h))
        sc = x if self.sc_conv is None else self.sc_bn(self.sc_conv(x))
        return F.relu(r + sc)


class ResidualAdapterBlock(nn.Module):
    """The block with its convolutions shared, a 1x1 adapter beside each 3x3 conv and every BN per task."""

    def __init__(self, block, b):
        super().__init__()
        self.blk, self.b = block, b
        i, o, s = block.conv1.in_channels, block.conv1.out_channels, block.stride
        self.a1 = nn.ModuleList(zero_conv1x1(i, o, s) for _ in range(TASKS))
        self.a2 = nn.ModuleList(zero_conv1x1(o, o, 1) for _ in range(TASKS))
        self.bn1 = nn.ModuleList(copy.deepcopy(block.bn1) for _ in range(TASKS))
        self.bn2 = nn.ModuleList(copy.deepcopy(block.bn2) for _ in range(TASKS))
        self.sc_bn = (nn.ModuleList(copy.deepcopy(block.sc_bn) for _ in range(TASKS))
                      if block.sc_bn is not None else None)

    def forward(self, x):
        b, blk = self.b, self.blk
        xs = split(x, b)
        c1 = split(blk.conv1(x), b)
        h = torch.cat([F.relu(bn(c + a(x_t))) for c, x_t, a, bn in zip(c1, xs, self.a1, self.bn1)])
        hs = split(h, b)
        c2 = split(blk.conv2(h), b)
        r = [bn(c + a(h_t)) for c, h_t, a, bn in zip(c2, hs, self.a2, self.bn2)]
        if blk.sc_conv is None:
            sc = xs
        else:
            sc = [bn(s) for s, bn in zip(split(blk.sc_conv(x), b), self.sc_bn)]
        return F.relu(torch.cat([r_t + s_t for r_t, s_t in zip(r, sc)]))


class Specific(nn.Module):
    """One deep copy of the unit per task, each over its own rows."""

    def __init__(self, unit, b):
        super().__init__()
        self.copies, self.b = nn.ModuleList(copy.deepcopy(unit) for _ in range(TASKS)), b

    def forward(self, x):
        return torch.cat([c(x_t) for c, x_t in zip(self.copies, split(x))])


class Net(nn.Module):
    def __init__(self, protocol, mask, b):
        super().__init__()
        self.b, self.pool = b, protocol == "cnn"
        if protocol == "mlp":
            units = [LinearUnit(784 if u == 0 else 512, 512) for u in range(4)]
            features = 512
        else:
            units = [ConvUnit(1, 16), BasicBlock(16, 16, 1), BasicBlock(16, 32, 2), BasicBlock(32, 64, 2)]
            features = 64
        heads = [linear(features, CLASSES) for _ in range(TASKS)]
        built = []
        for unit, m in zip(units, mask):
            if m == "S":
                built.append(unit)
            elif m == "T":
                built.append(Specific(unit, b))
            elif isinstance(unit, LinearUnit):
                built.append(LinearAdapterUnit(unit, b))
            elif isinstance(unit, ConvUnit):
                built.append(ConvAdapterUnit(unit, b))
            else:
                built.append(ResidualAdapterBlock(unit, b))
        self.units = nn.ModuleList(built)
        self.heads = nn.ModuleList(heads)

    def features(self, x):
        for u in self.units:
            x = u(x)
        return x.mean(dim=(2, 3)) if self.pool else x


def loss_and_correct(net, x, y, segments):
    """Sum over tasks of each task's mean cross-entropy; correct predictions per task."""
    SEGMENTS[:] = segments
    f = net.features(x)
    total, correct = 0, []
    for head, f_t, y_t in zip(net.heads, f.split(segments), y.split(segments)):
        logits = head(f_t)
        total = total + F.cross_entropy(logits, y_t)
        correct.append((logits.argmax(1) == y_t).sum())
    return total, correct


# ---- Data and the candidate ------------------------------------------------------

def make_data(protocol):
    p = PROTOCOLS[protocol]
    g = torch.Generator().manual_seed(7)

    def make(n):
        return torch.randn(n, *p["shape"], generator=g), torch.randint(0, CLASSES, (n,), generator=g)

    train = [make(TRAIN_PER_TASK) for _ in range(TASKS)]
    test = [make(n) for n in p["test"]]
    return train, test


class Batcher:
    """One reshuffled stream per task; each batch is `b` rows of every task, copied into one tensor."""

    def __init__(self, train, b, seed):
        self.train, self.b = train, b
        self.g = torch.Generator().manual_seed(seed)
        self.orders = [None] * len(train)
        self.cursor = [len(x) for x, _ in train]
        shape = train[0][0].shape[1:]
        self.x = torch.empty(b * len(train), *shape)
        self.y = torch.empty(b * len(train), dtype=torch.long)

    def next(self):
        for t, (x, y) in enumerate(self.train):
            idx, have = [], 0
            while have < self.b:
                if self.cursor[t] == len(x):
                    self.orders[t] = torch.randperm(len(x), generator=self.g)
                    self.cursor[t] = 0
                k = min(self.b - have, len(x) - self.cursor[t])
                have += k
                idx.append(self.orders[t][self.cursor[t]:self.cursor[t] + k])
                self.cursor[t] += k
            idx = torch.cat(idx)
            torch.index_select(x, 0, idx, out=self.x[t * self.b:(t + 1) * self.b])
            torch.index_select(y, 0, idx, out=self.y[t * self.b:(t + 1) * self.b])
        return self.x, self.y


def eval_batches(test):
    longest = max(len(x) for x, _ in test)
    out = []
    for start in range(0, longest, EVAL_BATCH):
        xs = [x[start:start + EVAL_BATCH] for x, _ in test]
        ys = [y[start:start + EVAL_BATCH] for _, y in test]
        out.append((torch.cat(xs), torch.cat(ys), [len(v) for v in ys]))
    return out


def candidate(protocol, mask, data, steps):
    """Seconds from building the model to the end of its evaluation, and the mean test accuracy."""
    p = PROTOCOLS[protocol]
    train, test = data
    evals = eval_batches(test)
    t0 = time.perf_counter()
    torch.manual_seed(0)
    b = p["batch"]
    net = Net(protocol, mask, b)
    if protocol == "mlp":
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0)
        sched = None
    else:
        decay = [q for q in net.parameters() if q.dim() > 1]
        rest = [q for q in net.parameters() if q.dim() <= 1]
        opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4}, {"params": rest, "weight_decay": 0}],
                              lr=0.05, momentum=0.9)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    batcher = Batcher(train, b, seed=1)
    net.train()
    segments = [b] * TASKS
    for _ in range(steps):
        x, y = batcher.next()
        opt.zero_grad(set_to_none=True)
        loss, _ = loss_and_correct(net, x, y, segments)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
    net.eval()
    correct = [0] * TASKS
    with torch.no_grad():
        for x, y, segs in evals:
            _, c = loss_and_correct(net, x, y, segs)
            for t in range(TASKS):
                correct[t] += int(c[t])
    seconds = time.perf_counter() - t0
    acc = sum(c / len(test[t][1]) for t, c in enumerate(correct)) / TASKS
    return seconds, acc


def core():
    show = torch.__config__.show()
    mkl = "MKL" if torch.backends.mkl.is_available() else "non-MKL BLAS"
    return f"torch {torch.__version__}: sgemm {mkl}; ATen {torch.backends.cpu.get_cpu_capability()}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--protocols", default="mlp,cnn")
    ap.add_argument("--masks", default="SSSS,TTSS,SSTT,TTTT,AAAA")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=None, help="override the protocol's steps (smoke tests)")
    ap.add_argument("--repeats", type=int, default=1, help="candidates timed per case; the fastest is reported")
    ap.add_argument("--no-warmup", action="store_true")
    args = ap.parse_args()
    torch.set_num_interop_threads(1)
    torch.set_num_threads(args.threads)
    for protocol in args.protocols.split(","):
        data = make_data(protocol)
        steps = args.steps or PROTOCOLS[protocol]["steps"]
        masks = args.masks.upper().split(",")
        if not args.no_warmup:
            candidate(protocol, masks[0], data, 5)
        for mask in masks:
            best, acc = float("inf"), 0.0
            for _ in range(args.repeats):
                s, acc = candidate(protocol, mask, data, steps)
                best = min(best, s)
            print(json.dumps({"engine": "pytorch", "protocol": protocol, "mask": mask, "threads": args.threads,
                              "steps": steps, "seconds_per_candidate": best, "candidates_per_hour": 3600 / best,
                              "accuracy": acc, "core": core()}), flush=True)


if __name__ == "__main__":
    main()
