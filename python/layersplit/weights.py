"""LayerSplit's weights files (docs/FORMATS.md, `layersplit-weights`) from Python: h5py, numpy and PyTorch.

    import layersplit as ls
    w = ls.load_weights("weights.h5")            # w.tensors {key: float32 array}, w.model, w.mask, w.attrs
    net = ls.to_torch("weights.h5")              # a torch.nn.Module equal to LayerSplit's model (eval mode)
    logits = net(x_nchw, rows_per_task)          # one logits tensor per task (rows task after task)
    logits_t1 = net(x_nchw, task=1)              # every row through task 1's path
    ls.from_torch(net.state_dict(), net, "out.h5")   # back to a weights file

Lower level (kept for scripts/layersplit_h5.py's users): read_weights, write_weights, build_model,
to_state_dict, from_state_dict, reference_to_layersplit, parse_unit.

A weights file holds one float32 dataset per tensor under /weights, named by LayerSplit's key
(`u01/fc.weight`, `u02/t1/conv.weight`, `head/t0/bias`), already in PyTorch's layouts (conv [out, in, kh, kw];
a linear unit reading an image takes its input flattened in (c, h, w) order, as nn.Flatten does on NCHW).
Root attributes: format, format_version, model (JSON: input_shape [H, W, C] or [features], units, task_classes),
mask, layout ("pytorch").

build_model covers every mask letter and unit LayerSplit has: S (one shared unit), T (one copy per task) and A
(adapter: the shared unit plus, per task, a parallel adapter added before the nonlinearity, see
Sources/LayerSplitEngine/Model/AdapterUnit.swift):
  - linear:W[:rR]   y = ReLU(W x + b + U_t (V_t x)), U_t [W, R], V_t [R, in] (R: the rank, default 8;
                    `u02/fc.*` shared, `u02/t1/adapter.U`, `u02/t1/adapter.V`; V's columns in (c, h, w) order
                    when the unit reads an image, like fc.weight's);
  - conv:C[:kK]...  y = pool(ReLU(BN_t(conv(x) + A_t x))), A_t a 1x1 convolution with the conv's stride (odd K
                    only; `u03/conv.weight` shared, `u03/t1/adapter.weight` [C, in, 1, 1], `u03/t1/bn.*`);
  - residual:C...   in each block, a 1x1 adapter beside conv1 (its stride) and conv2, and every BatchNorm per task
                    (`u04/block0.conv1.weight`, `block0.conv2.weight`, `block0.shortcut.conv.weight` shared;
                    `u04/t1/block0.adapter1.weight`, `t1/block0.adapter2.weight`, `t1/block0.bn1.*`,
                    `t1/block0.bn2.*`, `t1/block0.shortcut.bn.*`).
Its state_dict keys are the LayerSplit keys with `/` read as `.` under `units.` and `heads.`
(`u02/t1/adapter.U` <-> `units.u02.t1.adapter.U`, `head/t0/weight` <-> `heads.t0.weight`). A fresh model's
adapters start as LayerSplit's do: U = 0 and V ~ N(0, 1/in) for a linear unit, 1x1 convolutions at zero.
"""

import datetime
import json
import os
import re
from collections import OrderedDict
from dataclasses import dataclass, field

import h5py
import numpy as np

FORMAT_WEIGHTS = "layersplit-weights"
FORMAT_VERSION = 1
STR = h5py.string_dtype("utf-8")


# ---- The file -------------------------------------------------------------------

def write_weights(path, desc, mask, tensors, attrs=None):
    """Write `tensors` ({LayerSplit key: array in PyTorch layout}) with the model description `desc`
    ({"input_shape", "units", "task_classes"}) and `mask` ("TTSS")."""
    with h5py.File(path, "w") as f:
        f.attrs.create("format", FORMAT_WEIGHTS, dtype=STR)
        f.attrs["format_version"] = np.int64(FORMAT_VERSION)
        f.attrs.create("created", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), dtype=STR)
        f.attrs.create("model", json.dumps(desc, sort_keys=True), dtype=STR)
        f.attrs.create("mask", mask, dtype=STR)
        f.attrs.create("layout", "pytorch", dtype=STR)
        for k, v in sorted((attrs or {}).items()):
            f.attrs.create(k, str(v), dtype=STR)
        g = f.create_group("weights")
        for key, value in sorted(tensors.items()):
            a = np.ascontiguousarray(np.asarray(value, dtype=np.float32))
            opts = dict(compression="gzip", compression_opts=4, shuffle=True) if a.nbytes >= 4096 else {}
            g.create_dataset(key, data=a, **opts)


def read_weights(path):
    """(desc, mask, {key: float32 array}, {attribute: str}) of a weights file or checkpoint."""
    with h5py.File(path, "r") as f:
        attrs = {k: _text(v) for k, v in f.attrs.items()}
        fmt = attrs.get("format")
        if fmt not in ("layersplit-weights", "layersplit-checkpoint"):
            raise ValueError(f"{path}: not a LayerSplit weights file (format {fmt!r})")
        version = int(attrs.get("format_version", 1))
        if version > FORMAT_VERSION:
            raise ValueError(f"{path}: weights format_version {version} was written by a newer LayerSplit "
                             f"(this package reads up to {FORMAT_VERSION}); update the layersplit package")
        if attrs.get("layout", "pytorch") != "pytorch":
            raise ValueError(f"{path}: /@layout {attrs['layout']!r} is unknown")
        desc = json.loads(attrs["model"])
        tensors = {}
        f["weights"].visititems(lambda name, obj: tensors.__setitem__(name, obj[()])
                                if isinstance(obj, h5py.Dataset) else None)
        return desc, attrs["mask"], tensors, attrs


@dataclass
class Weights:
    """What a weights file (or checkpoint) holds: `tensors` {LayerSplit key: float32 array in PyTorch layout},
    `model` (the description: input_shape, units, task_classes), `mask` ("TTSS") and every root attribute."""
    tensors: dict
    model: dict
    mask: str
    attrs: dict = field(default_factory=dict)

    @property
    def tasks(self):
        """Number of tasks (heads)."""
        return len(self.model["task_classes"])

    def state_dict(self, numpy=False):
        """The tensors as build_model's / to_torch's state_dict (torch tensors; numpy arrays with `numpy`)."""
        return to_state_dict(self.tensors, numpy=numpy)


def load_weights(path):
    """Read a weights file or checkpoint: a `Weights` (arrays, model description, mask, attributes).
    Needs only numpy and h5py."""
    desc, mask, tensors, attrs = read_weights(path)
    return Weights(tensors=tensors, model=desc, mask=mask, attrs=attrs)


def _text(v):
    if isinstance(v, bytes):
        return v.decode()
    if isinstance(v, np.ndarray):
        return v.tolist()
    if isinstance(v, np.generic):
        return v.item()
    return v


# ---- Keys -------------------------------------------------------------------------

def to_state_dict(tensors, numpy=False):
    """LayerSplit keys → the state_dict keys of build_model's module (`u01/t1/fc.weight` → `units.u01.t1.fc.weight`);
    torch tensors, or float32 numpy arrays with `numpy` (no torch needed)."""
    if not numpy:
        import torch
    out = OrderedDict()
    for key, v in tensors.items():
        parts = key.split("/")
        prefix = "heads" if parts[0] == "head" else "units." + parts[0]
        rest = parts[1:]
        a = np.array(v, dtype=np.float32)
        out[".".join([prefix] + rest)] = a if numpy else torch.from_numpy(a)
    return out


def from_state_dict(state_dict):
    """build_model's state_dict (torch tensors or numpy arrays) → {LayerSplit key: float32 numpy array}
    (num_batches_tracked is dropped)."""
    out = {}
    for name, t in state_dict.items():
        if name.endswith("num_batches_tracked"):
            continue
        parts = name.split(".")
        if parts[0] == "heads":                       # heads.t0.weight
            key = f"head/{parts[1]}/" + ".".join(parts[2:])
        else:                                         # units.u01[.t1].fc.weight
            unit, rest = parts[1], parts[2:]
            if rest and re.fullmatch(r"t\d+", rest[0]):
                unit, rest = f"{unit}/{rest[0]}", rest[1:]
            key = unit + "/" + ".".join(rest)
        out[key] = (t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t)).astype(np.float32)
    return out


def reference_to_layersplit(state_dict, desc, mask):
    """A state_dict of bench/pytorch_ref.py's MultiTaskNet → {LayerSplit key: numpy array}.

    Its naming: units.<u>[.<t>].<...> (ModuleList index u, copy t for task-specific units), heads.<t>.*;
    a linear unit is Sequential(Linear, ReLU) (0.weight), a conv unit Sequential(Conv2d, BatchNorm2d, ReLU)
    (0.*, 1.*), a residual unit one BasicBlock (conv1, bn1, conv2, bn2, shortcut.0 conv, shortcut.1 BN).
    It has no adapter units: for a mask with A, use build_model's state_dict and from_state_dict.
    """
    if "A" in mask:
        raise ValueError(f"mask {mask}: bench/pytorch_ref.py has no adapter units (A); use build_model and from_state_dict")
    out = {}
    for name, t in state_dict.items():
        if name.endswith("num_batches_tracked"):
            continue
        parts = name.split(".")
        if parts[0] == "heads":
            out[f"head/t{parts[1]}/" + ".".join(parts[2:])] = t.detach().cpu().numpy()
            continue
        u = int(parts[1])
        rest = parts[2:]
        unit = f"u{u + 1:02d}"
        if mask[u] == "T":
            unit, rest = f"{unit}/t{rest[0]}", rest[1:]
        kind = parse_unit(desc["units"][u])["kind"]
        if kind == "linear":
            layer = {"0": "fc"}[rest[0]]
            rest = [layer] + rest[1:]
        elif kind == "conv":
            layer = {"0": "conv", "1": "bn"}[rest[0]]
            rest = [layer] + rest[1:]
        else:
            if rest[0] == "shortcut":
                rest = ["shortcut", {"0": "conv", "1": "bn"}[rest[1]]] + rest[2:]
            rest = ["block0"] + rest
        out[unit + "/" + ".".join(rest)] = t.detach().cpu().numpy()
    return out


# ---- The model --------------------------------------------------------------------

DEFAULT_ADAPTER_RANK = 8   # UnitSpec.defaultAdapterRank


def parse_unit(text):
    """`linear:512[:r4]`, `conv:32[:k3][:s2][:pool]`, `residual:64[:s2][:b2]` → dict (`rank`: a linear unit's
    adapter rank, used only in the adapter state)."""
    parts = text.split(":")
    u = {"kind": parts[0], "size": int(parts[1]), "kernel": 3, "stride": 1, "blocks": 1, "pool": False,
         "rank": DEFAULT_ADAPTER_RANK}
    if u["kind"] not in ("linear", "conv", "residual"):
        raise ValueError(f"unit {text!r}: unknown kind {u['kind']!r}")
    for opt in parts[2:]:
        if opt == "pool":
            u["pool"] = True
        elif opt[:1] in ("k", "s", "b", "r"):
            if opt[0] == "r" and u["kind"] != "linear":
                raise ValueError(f"unit {text!r}: the adapter rank rN is for linear units")
            u[{"k": "kernel", "s": "stride", "b": "blocks", "r": "rank"}[opt[0]]] = int(opt[1:])
        else:
            raise ValueError(f"unit {text!r}: unknown option {opt!r} (use kN, sN, bN, rN or pool)")
    return u


def build_model(desc, mask):
    """The PyTorch module LayerSplit's MultiTaskModel computes (NCHW), with state_dict keys that map 1:1 onto
    LayerSplit's keys (see to_state_dict). `net(x, rows_per_task)` takes the rows task after task and returns
    one logits tensor per task; BatchNorm in training mode normalises a T or A unit's rows per task."""
    import torch
    import torch.nn as nn
    import torch.nn.functional as F

    tasks = len(desc["task_classes"])
    if len(mask) != len(desc["units"]) or set(mask) - set("STA"):
        raise ValueError(f"mask {mask!r}: one letter S, T or A per unit ({len(desc['units'])} units)")

    class Part(nn.Module):
        """A named container (task t's adapter parts, a block's shortcut)."""
        def __init__(self, **children):
            super().__init__()
            for name, m in children.items():
                self.add_module(name, m)

    def per_task(make):
        return {f"t{t}": make() for t in range(tasks)}

    def task_forward(f, x, rows_per_task, *more):
        """cat over tasks of f(t, x_t, more_t...), each tensor split by rows (tasks without rows are skipped)."""
        pieces = zip(x.split(rows_per_task), *(m.split(rows_per_task) for m in more))
        return torch.cat([f(t, *p) for t, p in enumerate(pieces) if rows_per_task[t] > 0])

    class LinearUnit(nn.Module):
        def __init__(self, fan_in, width):
            super().__init__()
            self.fc = nn.Linear(fan_in, width)

        def forward(self, x):
            return F.relu(self.fc(x.flatten(1)))

    class LowRankAdapter(nn.Module):
        """y = U (V x), U [out, r] (zero at the start), V [r, in] ~ N(0, 1/in) (LowRankAdapter.swift)."""
        def __init__(self, fan_in, width, rank):
            super().__init__()
            self.U = nn.Parameter(torch.zeros(width, rank))
            self.V = nn.Parameter(torch.randn(rank, fan_in) * (1.0 / fan_in) ** 0.5)

        def forward(self, x):
            return (x @ self.V.t()) @ self.U.t()

    class LinearAdapterUnit(nn.Module):
        """y = ReLU(W x + b + U_t (V_t x)) on task t's rows; fc shared, t<t>.adapter per task."""
        def __init__(self, fan_in, width, rank):
            super().__init__()
            self.fc = nn.Linear(fan_in, width)
            for name, m in per_task(lambda: Part(adapter=LowRankAdapter(fan_in, width, rank))).items():
                self.add_module(name, m)

        def forward(self, x, rows_per_task):
            x = x.flatten(1)
            z = self.fc(x)
            return F.relu(z + task_forward(lambda t, xt: getattr(self, f"t{t}").adapter(xt), x, rows_per_task))

    def pointwise(c_in, c_out, stride):
        """A parallel adapter: a 1x1 convolution with the stride of the k x k one it sits beside (zero)."""
        a = nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False)
        nn.init.zeros_(a.weight)
        return a

    class ConvUnit(nn.Module):
        def __init__(self, c_in, u):
            super().__init__()
            self.conv = nn.Conv2d(c_in, u["size"], u["kernel"], stride=u["stride"], padding=u["kernel"] // 2, bias=False)
            self.bn = nn.BatchNorm2d(u["size"])
            self.pool = u["pool"]

        def forward(self, x):
            x = F.relu(self.bn(self.conv(x)))
            return F.max_pool2d(x, 2, 2) if self.pool else x

    class ConvAdapterUnit(nn.Module):
        """y = pool(ReLU(BN_t(conv(x) + A_t x))) on task t's rows; conv shared, t<t>.adapter and t<t>.bn per task."""
        def __init__(self, c_in, u):
            super().__init__()
            if u["kernel"] % 2 != 1:
                raise ValueError(f"a conv unit with kernel {u['kernel']} cannot be an adapter unit (A): odd kernels only")
            self.conv = nn.Conv2d(c_in, u["size"], u["kernel"], stride=u["stride"], padding=u["kernel"] // 2, bias=False)
            for name, m in per_task(lambda: Part(adapter=pointwise(c_in, u["size"], u["stride"]),
                                                 bn=nn.BatchNorm2d(u["size"]))).items():
                self.add_module(name, m)
            self.pool = u["pool"]

        def forward(self, x, rows_per_task):
            def one(t, xt, ct):
                part = getattr(self, f"t{t}")
                return F.relu(part.bn(ct + part.adapter(xt)))
            x = task_forward(one, x, rows_per_task, self.conv(x))
            return F.max_pool2d(x, 2, 2) if self.pool else x

    class Block(nn.Module):
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
            self.bn1 = nn.BatchNorm2d(c_out)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
            self.bn2 = nn.BatchNorm2d(c_out)
            self.shortcut = None
            if stride != 1 or c_in != c_out:
                self.shortcut = nn.Sequential(OrderedDict(
                    conv=nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), bn=nn.BatchNorm2d(c_out)))

        def forward(self, x):
            h = F.relu(self.bn1(self.conv1(x)))
            r = self.bn2(self.conv2(h))
            return F.relu(r + (self.shortcut(x) if self.shortcut is not None else x))

    class ResidualUnit(nn.Module):
        def __init__(self, c_in, u):
            super().__init__()
            for b in range(u["blocks"]):
                self.add_module(f"block{b}", Block(c_in if b == 0 else u["size"], u["size"], u["stride"] if b == 0 else 1))

        def forward(self, x):
            for block in self.children():
                x = block(x)
            return x

    class SharedBlock(nn.Module):
        """The shared part of a block in the adapter state: its convolutions."""
        def __init__(self, c_in, c_out, stride):
            super().__init__()
            self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
            self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
            self.shortcut = None
            if stride != 1 or c_in != c_out:
                self.shortcut = Part(conv=nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False))

    def task_block(c_in, c_out, stride):
        """Task t's part of a block in the adapter state: adapters beside conv1 and conv2, every BatchNorm."""
        parts = dict(adapter1=pointwise(c_in, c_out, stride), bn1=nn.BatchNorm2d(c_out),
                     adapter2=pointwise(c_out, c_out, 1), bn2=nn.BatchNorm2d(c_out))
        if stride != 1 or c_in != c_out:
            parts["shortcut"] = Part(bn=nn.BatchNorm2d(c_out))
        return Part(**parts)

    class ResidualAdapterUnit(nn.Module):
        """Per block and task t: h = ReLU(BN1_t(conv1(x) + A1_t x)), r = BN2_t(conv2(h) + A2_t h),
        y = ReLU(r + (x or BN_sc,t(conv_sc(x)))); convolutions shared (block<b>.*), the rest t<t>.block<b>.*."""
        def __init__(self, c_in, u):
            super().__init__()
            shapes = [(c_in if b == 0 else u["size"], u["size"], u["stride"] if b == 0 else 1) for b in range(u["blocks"])]
            for b, shape in enumerate(shapes):
                self.add_module(f"block{b}", SharedBlock(*shape))
            for t in range(tasks):
                self.add_module(f"t{t}", Part(**{f"block{b}": task_block(*shape) for b, shape in enumerate(shapes)}))

        def forward(self, x, rows_per_task):
            for b in range(sum(1 for n, _ in self.named_children() if n.startswith("block"))):
                shared = getattr(self, f"block{b}")
                parts = [getattr(getattr(self, f"t{t}"), f"block{b}") for t in range(tasks)]
                h = task_forward(lambda t, xt, ct: F.relu(parts[t].bn1(ct + parts[t].adapter1(xt))),
                                 x, rows_per_task, shared.conv1(x))
                r = task_forward(lambda t, ht, ct: parts[t].bn2(ct + parts[t].adapter2(ht)),
                                 h, rows_per_task, shared.conv2(h))
                if shared.shortcut is not None:
                    sc = task_forward(lambda t, st: parts[t].shortcut.bn(st), shared.shortcut.conv(x), rows_per_task)
                else:
                    sc = x
                x = F.relu(r + sc)
            return x

    class LayerSplitNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.mask = mask
            self.desc = desc
            shape = list(desc["input_shape"])                  # [features] or [H, W, C]
            units = OrderedDict()
            for i, (text, m) in enumerate(zip(desc["units"], mask)):
                u = parse_unit(text)
                if u["kind"] == "linear":
                    fan_in = int(np.prod(shape))
                    make = lambda fan_in=fan_in, w=u["size"]: LinearUnit(fan_in, w)
                    adapter = lambda fan_in=fan_in, u=u: LinearAdapterUnit(fan_in, u["size"], u["rank"])
                    shape = [u["size"]]
                else:
                    if len(shape) != 3:
                        raise ValueError(f"unit {text!r} needs an image input [H, W, C], got {shape}")
                    conv = u["kind"] == "conv"
                    plain, adapted = (ConvUnit, ConvAdapterUnit) if conv else (ResidualUnit, ResidualAdapterUnit)
                    make = lambda c_in=shape[2], u=u, cls=plain: cls(c_in, u)
                    adapter = lambda c_in=shape[2], u=u, cls=adapted: cls(c_in, u)
                    h, w = shape[0], shape[1]
                    k, s = (u["kernel"], u["stride"]) if conv else (3, u["stride"])
                    h, w = (h + 2 * (k // 2) - k) // s + 1, (w + 2 * (k // 2) - k) // s + 1
                    if u.get("pool"):
                        h, w = h // 2, w // 2
                    shape = [h, w, u["size"]]
                if m == "S":
                    units[f"u{i + 1:02d}"] = make()
                elif m == "T":
                    units[f"u{i + 1:02d}"] = nn.ModuleDict(OrderedDict((f"t{t}", make()) for t in range(tasks)))
                else:
                    units[f"u{i + 1:02d}"] = adapter()
            self.units = nn.ModuleDict(units)
            self.pool = len(shape) == 3
            features = shape[2] if self.pool else int(np.prod(shape))
            self.heads = nn.ModuleDict(OrderedDict((f"t{t}", nn.Linear(features, c))
                                                   for t, c in enumerate(desc["task_classes"])))

        def forward(self, x, rows_per_task=None, task=None):
            """x: [N, C, H, W] or [N, features]. With rows_per_task (rows task after task): one logits tensor per
            task. With task=t instead: every row through task t's path, task t's logits [N, classes]."""
            if (rows_per_task is None) == (task is None):
                raise ValueError("give either rows_per_task (rows task after task) or task (every row one task's)")
            if task is not None:
                if not 0 <= task < tasks:
                    raise ValueError(f"task {task}: the model has tasks 0..{tasks - 1}")
                return self.forward(x, [len(x) if t == task else 0 for t in range(tasks)])[task]
            rows_per_task = [int(r) for r in rows_per_task]
            if len(rows_per_task) != tasks or sum(rows_per_task) != len(x):
                raise ValueError(f"rows_per_task {rows_per_task}: one count per task ({tasks}) adding up to the {len(x)} rows")
            for (name, unit), m in zip(self.units.items(), self.mask):
                if m == "S":
                    x = unit(x)
                elif m == "T":
                    x = task_forward(lambda t, xt: unit[f"t{t}"](xt), x, rows_per_task)
                else:
                    x = unit(x, rows_per_task)
            if self.pool:
                x = x.mean(dim=(2, 3))
            return [self.heads[f"t{t}"](xt) for t, xt in enumerate(x.split(rows_per_task))]

    return LayerSplitNet()


# ---- PyTorch in one call --------------------------------------------------------------

def to_torch(path, train=False):
    """The torch.nn.Module of a weights file, every tensor loaded: it computes LayerSplit's logits
    (`net(x, rows_per_task)` or `net(x, task=t)`; x is NCHW for images). In eval mode (BatchNorm uses the
    stored running statistics, as LayerSplit's evaluation does) unless `train`. The module has `.desc` (the
    model description), `.mask`, and `.input_scale`, `.input_shift` (per task; None when the file has none):
    a model a search trained (`layersplit export`, `train -o`) expects task t's raw inputs normalised as
    x * input_scale[t] + input_shift[t], as `layersplit predict` does; the module does not apply them."""
    w = load_weights(path)
    net = build_model(w.model, w.mask)
    missing, unexpected = net.load_state_dict(w.state_dict(), strict=False)
    missing = [k for k in missing if not k.endswith("num_batches_tracked")]
    if missing or unexpected:
        raise ValueError(f"{path}: tensors do not fit the model {w.model['units']} with mask {w.mask}: "
                         f"missing {missing[:5]}, unexpected {unexpected[:5]}")
    for name in ("input_scale", "input_shift"):
        v = w.attrs.get(name)
        setattr(net, name, [float(x) for x in np.atleast_1d(v)] if v is not None else None)
    return net.train(train)


def from_torch(state_dict, model, path="weights.h5", mask=None, attrs=None):
    """Write a PyTorch state_dict as a LayerSplit weights file at `path` and return `path`.

    `model` is the module the state_dict came from (build_model's or to_torch's; its description and mask are
    used) or a model description {"input_shape", "units", "task_classes"} (then give `mask`, default all
    shared). `state_dict` may also be the module itself. Keys are build_model's (`units.u01.fc.weight`) or
    bench/pytorch_ref.py's reference naming (`units.0.0.weight`, masks of S and T only)."""
    if hasattr(state_dict, "state_dict"):
        state_dict = state_dict.state_dict()
    if hasattr(model, "desc") and hasattr(model, "mask"):
        desc, mask = model.desc, mask or model.mask
    elif isinstance(model, (dict, str)):
        desc = json.loads(model) if isinstance(model, str) else model
        mask = mask or "S" * len(desc["units"])
    else:
        raise TypeError("model: the module built by layersplit (build_model, to_torch) or a model description dict")
    mask = mask.upper()
    if len(mask) != len(desc["units"]) or set(mask) - set("STA"):
        raise ValueError(f"mask {mask!r}: one letter S, T or A per unit ({len(desc['units'])} units)")
    if any(k.startswith("units.u") or k.startswith("heads.t") for k in state_dict):
        tensors = from_state_dict(state_dict)
    else:
        tensors = reference_to_layersplit(state_dict, desc, mask)
    write_weights(os.fspath(path), desc, mask, tensors, dict({"tool_version": "layersplit (Python)"}, **(attrs or {})))
    return path
