#!/usr/bin/env python3
"""numpy reference of the multi-task MLP: hand-written forward, backward and SGD.

This is the "what you get with plain BLAS calls from Python" baseline: every
matmul is one `@`/np.matmul on float32 arrays (so one OpenBLAS sgemm), with the
same structure LayerSplit and PyTorch run: a shared unit is one GEMM over all
T*B rows, a task-specific unit is T GEMMs over B rows each.

    python bench/numpy_ref.py --mask TTSS --threads 2
    python bench/numpy_ref.py --check --steps 50 --warmup 0 --repeats 1   # loss must fall

Prints one JSON line (see refcommon.report). Does not import torch.
"""

import numpy as np

import refcommon as rc


class DenseUnit:
    """Linear(+ReLU) with `copies` independent weight sets.

    Weights are stored stacked as (copies, in, out) so that forward is `x @ W`
    without a transpose and the SGD update is one vectorised pass over all
    copies. A shared unit has copies=1 and sees all rows; a task-specific one
    has copies=T and copy k sees rows k*B..(k+1)*B-1. The heads are the same
    thing with copies=T and no ReLU.

    Activations and gradients go into buffers allocated once: the step is then
    pure BLAS + a few elementwise passes, like a reasonably written C loop.
    """

    def __init__(self, rng, n_in, n_out, copies, rows, relu, input_grad, dtype):
        # nn.Linear's default init: U(-1/sqrt(in), 1/sqrt(in)) for W and b.
        # Task-specific copies start identical (PyTorch side: deepcopy).
        bound = 1.0 / np.sqrt(n_in)
        w = rng.uniform(-bound, bound, size=(n_in, n_out)).astype(dtype)
        b = rng.uniform(-bound, bound, size=(n_out,)).astype(dtype)
        self.params = [np.repeat(w[None], copies, axis=0), np.repeat(b[None], copies, axis=0)]
        self.grads = [np.zeros_like(p) for p in self.params]
        self.copies, self.rows, self.relu = copies, rows, relu
        self.r = rows // copies  # rows per copy
        self.out = np.empty((rows, n_out), dtype)
        # The first unit skips dL/dx (nobody consumes it; autograd skips it too).
        self.dx = np.empty((rows, n_in), dtype) if input_grad else None

    def _slices(self):
        return [slice(k * self.r, (k + 1) * self.r) for k in range(self.copies)]

    def forward(self, x):
        w, b = self.params
        self.x = x  # kept for dW = x^T dz
        for k, s in enumerate(self._slices()):
            np.matmul(x[s], w[k], out=self.out[s])
        # Bias per copy, broadcast over that copy's rows, in one pass.
        out3 = self.out.reshape(self.copies, self.r, -1)
        out3 += b[:, None, :]
        if self.relu:
            np.maximum(self.out, 0, out=self.out)
        return self.out

    def backward(self, dout):
        """dout: dL/d(output), overwritten in place with dL/d(pre-activation)."""
        w, _ = self.params
        gw, gb = self.grads
        if self.relu:
            # relu(z) > 0 exactly where z > 0, so the output doubles as the mask.
            np.multiply(dout, self.out > 0, out=dout)
        np.sum(dout.reshape(self.copies, self.r, -1), axis=1, out=gb)
        for k, s in enumerate(self._slices()):
            np.matmul(self.x[s].T, dout[s], out=gw[k])
            if self.dx is not None:
                np.matmul(dout[s], w[k].T, out=self.dx[s])
        return self.dx


class NumpyMLP:
    """The multi-task MLP for one sharing mask. Loss: sum over tasks of mean CE."""

    def __init__(self, mask, seed=rc.SEED, dtype=np.float32, n_in=rc.MLP_INPUT,
                 hidden=rc.MLP_HIDDEN, batch_per_task=rc.MLP_BATCH_PER_TASK,
                 tasks=rc.NUM_TASKS, classes=rc.NUM_CLASSES):
        # The size arguments exist only so check_numpy_grads.py can run a
        # finite-difference check on a tiny float64 copy of the same code.
        rng = np.random.default_rng(seed)
        rows = tasks * batch_per_task
        self.batch_per_task, self.tasks = batch_per_task, tasks
        self.units = []
        fan_in = n_in
        for i, m in enumerate(mask):
            self.units.append(DenseUnit(rng, fan_in, hidden, tasks if m == "T" else 1, rows,
                                        relu=True, input_grad=(i > 0), dtype=dtype))
            fan_in = hidden
        self.heads = DenseUnit(rng, hidden, classes, tasks, rows, relu=False,
                               input_grad=True, dtype=dtype)
        self.layers = self.units + [self.heads]
        self.velocity = [np.zeros_like(p) for l in self.layers for p in l.params]

    def params(self):
        return [p for l in self.layers for p in l.params]

    def grads(self):
        return [g for l in self.layers for g in l.grads]

    def forward_backward(self, x, y):
        """Loss of the batch; fills every layer's .grads."""
        h = x
        for layer in self.layers:
            h = layer.forward(h)
        # Softmax cross-entropy. Each task's loss is a mean over its B rows and
        # the total is their sum, so every row's gradient is scaled by 1/B.
        logits = h
        z = logits - logits.max(axis=1, keepdims=True)
        e = np.exp(z)
        sum_e = e.sum(axis=1, keepdims=True)
        rows = np.arange(len(y))
        loss = float((np.log(sum_e[:, 0]) - z[rows, y]).sum()) / self.batch_per_task
        dlogits = e / sum_e
        dlogits[rows, y] -= 1
        dlogits *= 1.0 / self.batch_per_task
        d = dlogits.astype(logits.dtype, copy=False)
        for layer in reversed(self.layers):
            d = layer.backward(d)
        return loss

    def sgd_step(self, lr=rc.LR, momentum=rc.MOMENTUM, weight_decay=rc.WEIGHT_DECAY):
        """torch.optim.SGD semantics: g += wd*p; v = mu*v + g; p -= lr*v.

        (PyTorch starts v at g on the first step; with v initialised to 0 the
        formula gives the same thing.)
        """
        for p, g, v in zip(self.params(), self.grads(), self.velocity):
            g += weight_decay * p
            v *= momentum
            v += g
            p -= lr * v


def make_batch(seed=rc.SEED, rows=rc.NUM_TASKS * rc.MLP_BATCH_PER_TASK, n_in=rc.MLP_INPUT,
               dtype=np.float32):
    rng = np.random.default_rng(seed + 1)
    x = rng.standard_normal((rows, n_in)).astype(dtype)
    y = rng.integers(0, rc.NUM_CLASSES, size=rows)
    return x, y


def openblas_core():
    """Which BLAS numpy is using, and which kernel OpenBLAS picked for this CPU."""
    from threadpoolctl import threadpool_info
    for info in threadpool_info():
        if info.get("user_api") == "blas":
            return (f"{info.get('internal_api')} {info.get('version')} "
                    f"{info.get('architecture', '?')} ({info.get('threading_layer', '?')})")
    return "unknown BLAS"


def main():
    args = rc.parse_args("numpy", __doc__.splitlines()[0], models=("mlp",))
    from threadpoolctl import threadpool_limits

    # Limits every BLAS/OpenMP pool numpy loaded (only OpenBLAS here).
    with threadpool_limits(limits=args.threads):
        model = NumpyMLP(args.mask)
        x, y = make_batch()
        losses = []

        def step():
            loss = model.forward_backward(x, y)
            model.sgd_step()
            if args.check:
                losses.append(loss)

        seconds = rc.time_training(step, args.steps, args.warmup, args.repeats)
        rc.report(args, seconds, openblas_core(), losses)


if __name__ == "__main__":
    main()
