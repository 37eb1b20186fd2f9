#!/usr/bin/env python3
"""One-off proof that numpy_ref.py's hand-written backward and SGD are right.

1. Finite differences: a tiny float64 instance of the same NumpyMLP code, every
   mask, central differences on random entries of every parameter array.
   Needs numpy only.
2. Against PyTorch autograd (if torch is installed): the full-size float32 model
   of every mask, with the numpy weights copied into pytorch_ref's
   MultiTaskNet; compares the loss, every gradient, and the parameters after
   two torch.optim.SGD steps (the second step exercises the momentum buffer).

    python bench/check_numpy_grads.py       # exit status 0 = all checks passed
"""

import sys

import numpy as np

import refcommon as rc
from numpy_ref import NumpyMLP, make_batch


def rel_err(a, b):
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-12))


def finite_difference_check(mask, probes=6, eps=1e-5, tol=1e-6):
    tiny = dict(n_in=7, hidden=6, batch_per_task=5, dtype=np.float64)
    model = NumpyMLP(mask, seed=7, **tiny)
    x, y = make_batch(seed=7, rows=rc.NUM_TASKS * tiny["batch_per_task"], n_in=tiny["n_in"],
                      dtype=np.float64)
    model.forward_backward(x, y)
    grads = [g.copy() for g in model.grads()]  # later forward passes overwrite .grads
    rng = np.random.default_rng(0)
    worst = 0.0
    for p, g in zip(model.params(), grads):
        for _ in range(probes):
            i = tuple(rng.integers(0, n) for n in p.shape)
            saved = p[i]
            p[i] = saved + eps
            up = model.forward_backward(x, y)
            p[i] = saved - eps
            down = model.forward_backward(x, y)
            p[i] = saved
            numeric = (up - down) / (2 * eps)
            worst = max(worst, abs(numeric - g[i]) / max(abs(numeric), abs(g[i]), 1e-3))
    ok = worst < tol
    print(f"finite differences  {mask}: worst relative error {worst:.2e}  {'ok' if ok else 'FAIL'}")
    return ok


def torch_check(mask, torch, pytorch_ref, tol=1e-4):
    model = NumpyMLP(mask)
    x, y = make_batch()
    net, _, _ = pytorch_ref.build("mlp", mask)

    # Pair every numpy (copy k of a stacked array) with its torch parameter.
    # numpy stores W as (in, out), torch as (out, in).
    pairs = []
    for layer, unit in zip(model.layers, list(net.units) + [net.heads]):
        copies = list(unit) if isinstance(unit, torch.nn.ModuleList) else [unit]
        linears = [c if isinstance(c, torch.nn.Linear) else c[0] for c in copies]
        assert len(linears) == layer.copies, (mask, len(linears), layer.copies)
        for k, lin in enumerate(linears):
            pairs.append((layer, 0, k, lin.weight, True))
            pairs.append((layer, 1, k, lin.bias, False))
    assert len(pairs) == len(list(net.parameters())), "every torch parameter is paired"

    def as_torch(layer, which, k, transpose, source):
        a = source[which][k]
        return torch.from_numpy(np.ascontiguousarray(a.T if transpose else a))

    with torch.no_grad():
        for layer, which, k, tp, tr in pairs:
            tp.copy_(as_torch(layer, which, k, tr, layer.params))
    tx, ty = torch.from_numpy(x), torch.from_numpy(y)
    opt = pytorch_ref.make_optimizer(net)

    worst_loss = worst_grad = 0.0
    for step in range(2):
        np_loss = model.forward_backward(x, y)
        opt.zero_grad()
        t_loss = net(tx, ty)
        t_loss.backward()
        worst_loss = max(worst_loss, abs(np_loss - t_loss.item()) / abs(t_loss.item()))
        for layer, which, k, tp, tr in pairs:
            worst_grad = max(worst_grad, rel_err(as_torch(layer, which, k, tr, layer.grads).numpy(),
                                                 tp.grad.numpy()))
        model.sgd_step()
        opt.step()
    worst_param = max(rel_err(as_torch(layer, which, k, tr, layer.params).numpy(),
                              tp.detach().numpy())
                      for layer, which, k, tp, tr in pairs)
    ok = max(worst_loss, worst_grad, worst_param) < tol
    print(f"vs PyTorch autograd {mask}: loss {worst_loss:.1e}, grads {worst_grad:.1e}, "
          f"params after 2 SGD steps {worst_param:.1e} (max relative errors)  "
          f"{'ok' if ok else 'FAIL'}")
    return ok


def main():
    ok = all([finite_difference_check(m) for m in rc.MASKS])
    try:
        import torch
    except ImportError as exc:
        print(f"PyTorch is unavailable ({exc}): skipped the comparison with autograd")
    else:
        import pytorch_ref
        torch.set_num_threads(1)  # determinism of the comparison, not speed
        ok = all([torch_check(m, torch, pytorch_ref) for m in rc.MASKS]) and ok
    print("ALL CHECKS PASSED" if ok else "SOME CHECKS FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
