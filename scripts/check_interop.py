#!/usr/bin/env python3
"""PyTorch <-> LayerSplit interoperability check (part of `make bench`).

For each model and mask: build the PyTorch model (seeded) and a fixed batch, write its weights with
scripts/torch_to_h5.py's export, and let both engines
  1. run the batch forward (training mode) and compare the logits      (max abs diff < 1e-4),
  2. take 10 SGD steps (lr 0.01, momentum 0.9, no weight decay, BatchNorm in training mode) and compare the
     loss after them                                                     (relative diff < 1e-3),
  3. read LayerSplit's trained weights back into PyTorch (scripts/h5_to_torch.py) and compare them with
     PyTorch's trained weights (max abs diff < 1e-2: a layout bug shows as O(0.1)).

The models: `mlp` and `cnn` with masks of S and T are bench/pytorch_ref.py's own MultiTaskNet (the code a
researcher would write). bench/pytorch_ref.py has no adapters, so masks with A (and the models `mlpr`, `mix`)
use the layersplit package's build_model (python/layersplit/weights.py) instead, with every adapter and BatchNorm set to random non-zero
values first (a zero adapter would leave the forward unchanged and prove nothing about it); the loss is the
same, the sum over tasks of each task's mean softmax cross-entropy. `mlpr` is the MLP with adapter ranks
4, 8, 16 and 1; `mix` is a small model on 12x12x3 images with 2 tasks of unequal rows (6 and 10) and
classes (3 and 5): a 5x5 stride-2 conv, a conv with max-pooling, two residual blocks (stride 2, projection
shortcut) and a linear unit reading the image (its adapter's V in (c, h, w) order).

    .venv-bench/bin/python scripts/check_interop.py --layersplit .build/release/layersplit

Exit status 0 when every check passes, 1 otherwise, 3 when torch or h5py is missing.
"""

import argparse
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "bench"))

try:
    import h5py
    import numpy as np
    import torch
    import torch.nn.functional as F
except ImportError as exc:
    print(f"check_interop: PyTorch, numpy or h5py is unavailable: {exc}", file=sys.stderr)
    sys.exit(3)

import h5_to_torch  # noqa: E402
import layersplit.weights as lh  # noqa: E402
import torch_to_h5  # noqa: E402

LOGITS_TOL = 1e-4
LOSS_REL_TOL = 1e-3
WEIGHTS_TOL = 1e-2
STEPS, LR, MOMENTUM = 10, 0.01, 0.9
CASES = [("mlp", "SSSS"), ("mlp", "TTSS"), ("cnn", "SSSS"), ("cnn", "STTS"),
         ("mlp", "AAAA"), ("mlpr", "ATAA"), ("cnn", "AASS"), ("cnn", "SAAT"), ("mix", "AAAA"), ("mix", "TASA")]

# Models built with lh.build_model: (description, batch) where batch is bench/pytorch_ref.py's model whose fixed
# batch is used, or the rows per task of a seeded random batch.
BUILT = {
    "mlp": (torch_to_h5.REFERENCE["mlp"], "mlp"),
    "cnn": (torch_to_h5.REFERENCE["cnn"], "cnn"),
    "mlpr": ({"input_shape": [784], "units": ["linear:512:r4", "linear:512", "linear:512:r16", "linear:512:r1"],
              "task_classes": [10] * 4}, "mlp"),
    "mix": ({"input_shape": [12, 12, 3], "units": ["conv:8:k5:s2", "conv:8:pool", "residual:16:s2:b2", "linear:24:r3"],
             "task_classes": [3, 5]}, [6, 10]),
}


def reference_logits(net, x):
    """bench/pytorch_ref.py's MultiTaskNet.forward, returning the logits instead of the loss."""
    for unit, m in zip(net.units, net.mask):
        x = unit(x) if m == "S" else torch.cat([c(xt) for c, xt in zip(unit, x.split(net.b))])
    if net.pool:
        x = x.mean(dim=(2, 3))
    return [head(xt) for head, xt in zip(net.heads, x.split(net.b))]


def reference_case(model, mask):
    """bench/pytorch_ref.py's model: (desc, x, y, rows, net, logits(), loss(), tensors()) with LayerSplit keys."""
    import pytorch_ref
    torch.manual_seed(0)
    net, x, y = pytorch_ref.build(model, mask)          # seeded weights, fixed batch, training mode
    desc = torch_to_h5.REFERENCE[model]
    rows = [net.b] * len(desc["task_classes"])
    return (desc, x, y, rows, net, lambda: reference_logits(net, x), lambda: net(x, y),
            lambda: lh.reference_to_layersplit(net.state_dict(), desc, mask))


def randomise(net, gen):
    """Every adapter and BatchNorm to random non-zero values (build_model's U and 1x1 adapters start at zero)."""
    with torch.no_grad():
        for name, p in net.named_parameters():
            if name.endswith(".adapter.U"):                      # [out, r]: U V x of the size of W x
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5 / p.shape[1] ** 0.5)
            elif name.endswith(".adapter.V"):                    # [r, in]
                p.copy_(torch.randn(p.shape, generator=gen) / p.shape[1] ** 0.5)
            elif "adapter" in name:                              # 1x1 convolutions [out, in, 1, 1]
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5 / p.shape[1] ** 0.5)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(1 + 0.2 * torch.rand(m.running_var.shape, generator=gen))


def built_case(model, mask):
    """lh.build_model's model with random adapters: the same tuple as reference_case."""
    desc, batch = BUILT[model]
    tasks = len(desc["task_classes"])
    if isinstance(batch, str):
        import pytorch_ref
        _, x, y = pytorch_ref.build(batch, "S" * len(torch_to_h5.REFERENCE[batch]["units"]))
        rows = [len(x) // tasks] * tasks
    else:
        gen = torch.Generator().manual_seed(1234)
        rows = batch
        shape = desc["input_shape"]
        x = torch.randn(sum(rows), *([shape[2], shape[0], shape[1]] if len(shape) == 3 else shape), generator=gen)
        y = torch.cat([torch.randint(0, c, (r,), generator=gen) for c, r in zip(desc["task_classes"], rows)])
    torch.manual_seed(0)
    net = lh.build_model(desc, mask)
    randomise(net, torch.Generator().manual_seed(0))
    net.train()

    def loss():
        return sum(F.cross_entropy(z, yt) for z, yt in zip(net(x, rows), y.split(rows)))
    return desc, x, y, rows, net, lambda: net(x, rows), loss, lambda: lh.from_state_dict(net.state_dict())


def check(case, layersplit, folder):
    model, mask = case
    use_reference = model in ("mlp", "cnn") and "A" not in mask
    desc, x, y, rows, net, logits_of, loss_of, tensors_of = (reference_case if use_reference else built_case)(model, mask)
    tag = f"{model}-{mask}"
    weights, batch, out, trained = (os.path.join(folder, f"{tag}-{n}.h5") for n in ("weights", "batch", "out", "trained"))
    exported = torch_to_h5.export(net.state_dict(), desc, mask, weights)
    with h5py.File(batch, "w") as f:                      # LayerSplit's layout: NHWC images
        xs = x.numpy()
        f["x"] = np.ascontiguousarray(xs.transpose(0, 2, 3, 1) if xs.ndim == 4 else xs).astype(np.float32)
        f["y"] = y.numpy().astype(np.int64)
        f["rows_per_task"] = np.array(rows, dtype=np.int64)
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    r = subprocess.run([layersplit, "bench", "interop", "--weights", weights, "--batch", batch, "--out", out,
                        "--weights-out", trained, "--steps", str(STEPS), "--lr", str(LR), "--momentum", str(MOMENTUM)],
                       capture_output=True, text=True, env=env)
    if r.returncode != 0:
        return {"case": tag, "ok": False, "error": r.stderr.strip() or r.stdout.strip()}

    # PyTorch: the same sequence (the logits forward updates BatchNorm's running statistics, as LayerSplit's does).
    logits = [t.detach().numpy() for t in logits_of()]
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM, weight_decay=0)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        loss = loss_of()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    with torch.no_grad():
        final = loss_of().item()

    with h5py.File(out, "r") as f:
        ls_logits = [f[f"logits/t{t}"][()] for t in range(len(rows))]
        ls_losses = f["losses"][()]
        ls_final = float(f["final_loss"][()])
    logits_diff = max(float(np.abs(a - b).max()) for a, b in zip(logits, ls_logits))
    loss_rel = abs(final - ls_final) / abs(final)
    step_rel = max(abs(a - b) / abs(a) for a, b in zip(losses, ls_losses))

    # LayerSplit's trained weights, read back into PyTorch, against PyTorch's trained weights. The keys PyTorch
    # wrote must be exactly the ones LayerSplit writes (LayerSplit ignores extra keys when it reads).
    _, _, written, _ = lh.read_weights(trained)
    if set(written) != set(exported):
        only_ls, only_torch = sorted(set(written) - set(exported)), sorted(set(exported) - set(written))
        return {"case": tag, "ok": False, "error": f"keys differ: only LayerSplit {only_ls[:4]}, only PyTorch {only_torch[:4]}"}
    back, _, _ = h5_to_torch.load(trained)
    mine = lh.from_state_dict(back.state_dict())
    theirs = tensors_of()
    assert set(mine) == set(theirs), (set(mine) ^ set(theirs))
    weights_diff = max(float(np.abs(mine[k] - theirs[k]).max()) for k in mine)

    ok = logits_diff < LOGITS_TOL and loss_rel < LOSS_REL_TOL and weights_diff < WEIGHTS_TOL
    return {"case": tag, "ok": ok, "logits": logits_diff, "loss_rel": loss_rel, "step_rel": step_rel,
            "weights": weights_diff, "final_torch": final, "final_layersplit": ls_final}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--layersplit", default=os.path.join(ROOT, ".build", "release", "layersplit"))
    p.add_argument("--cases", nargs="*", default=[f"{m}-{k}" for m, k in CASES],
                   help="model-mask pairs, e.g. mlp-SSSS cnn-STTS cnn-SAAT mix-AAAA (models: mlp, cnn, mlpr, mix)")
    a = p.parse_args()
    torch.set_num_threads(1)
    failed = False
    print(f"| case | logits max abs diff (< {LOGITS_TOL:g}) | loss after {STEPS} SGD steps: torch / LayerSplit "
          f"| rel diff (< {LOSS_REL_TOL:g}) | max rel diff of the {STEPS} step losses "
          f"| trained weights max abs diff (< {WEIGHTS_TOL:g}) | |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as folder:
        for c in a.cases:
            model, mask = c.split("-")
            r = check((model, mask.upper()), a.layersplit, folder)
            failed |= not r["ok"]
            if "error" in r:
                print(f"| {r['case']} | error: {r['error']} | | | | | FAIL |")
                continue
            print(f"| {r['case']} | {r['logits']:.2e} | {r['final_torch']:.6f} / {r['final_layersplit']:.6f} "
                  f"| {r['loss_rel']:.2e} | {r['step_rel']:.2e} | {r['weights']:.2e} | {'ok' if r['ok'] else 'FAIL'} |",
                  flush=True)
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
