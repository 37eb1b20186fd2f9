"""to_torch computes LayerSplit's logits (to 1e-5) for S, T and A units of linear, conv and residual kinds,
in training mode (`layersplit bench interop`) and in inference mode (`layersplit predict`). Skipped without torch."""

import subprocess

import h5py
import numpy as np
import pytest

import layersplit as ls

torch = pytest.importorskip("torch")

TOL = 1e-5
# 12x12x3 images, 2 tasks of unequal rows and classes: a 5x5 stride-2 conv, a conv with max-pooling, two
# residual blocks (stride 2, projection shortcut), a linear unit reading the image (adapter rank 3).
MIX = {"input_shape": [12, 12, 3], "units": ["conv:8:k5:s2", "conv:8:pool", "residual:16:s2:b2", "linear:24:r3"],
       "task_classes": [3, 5]}
MLP = {"input_shape": [20], "units": ["linear:16:r4", "linear:12", "linear:8"], "task_classes": [4, 3, 2]}
CASES = [(MIX, "SSSS"), (MIX, "TTTT"), (MIX, "AAAA"), (MIX, "TASA"), (MIX, "ATST"), (MLP, "TAS"), (MLP, "ATA")]


def randomised(desc, mask):
    """build_model's module with every parameter, adapter and BatchNorm statistic random and non-zero."""
    gen = torch.Generator().manual_seed(7)
    torch.manual_seed(0)
    net = ls.build_model(desc, mask)
    with torch.no_grad():
        for name, p in net.named_parameters():
            if "adapter" in name:
                p.copy_(torch.randn(p.shape, generator=gen) * 0.5 / p.shape[1] ** 0.5)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(1 + 0.2 * torch.randn(m.weight.shape, generator=gen))
                m.bias.copy_(0.1 * torch.randn(m.bias.shape, generator=gen))
                m.running_mean.copy_(0.1 * torch.randn(m.running_mean.shape, generator=gen))
                m.running_var.copy_(1 + 0.2 * torch.rand(m.running_var.shape, generator=gen))
    return net


def batch(desc, rows):
    gen = torch.Generator().manual_seed(1234)
    s = desc["input_shape"]
    x = torch.randn(sum(rows), *([s[2], s[0], s[1]] if len(s) == 3 else s), generator=gen)
    y = torch.cat([torch.randint(0, c, (r,), generator=gen) for c, r in zip(desc["task_classes"], rows)])
    return x, y


def nhwc(x):
    a = x.numpy()
    return np.ascontiguousarray(a.transpose(0, 2, 3, 1) if a.ndim == 4 else a).astype(np.float32)


@pytest.mark.parametrize("desc,mask", CASES, ids=[f"{'mix' if d is MIX else 'mlp'}-{m}" for d, m in CASES])
def test_to_torch_logits_equal_layersplit(desc, mask, layersplit_bin, tmp_path):
    rows = [6, 10] if len(desc["task_classes"]) == 2 else [5, 4, 7]
    x, y = batch(desc, rows)
    weights = ls.from_torch(randomised(desc, mask).state_dict(), desc, tmp_path / "w.h5", mask=mask)
    with h5py.File(weights, "a") as f:                         # identity input normalisation for `predict`
        f.attrs["input_scale"] = np.ones(len(rows))
        f.attrs["input_shift"] = np.zeros(len(rows))

    # Training mode: the batch's rows task after task, BatchNorm on each task's rows.
    with h5py.File(tmp_path / "batch.h5", "w") as f:
        f["x"], f["y"], f["rows_per_task"] = nhwc(x), y.numpy().astype(np.int64), np.array(rows, dtype=np.int64)
    subprocess.run([layersplit_bin, "bench", "interop", "--weights", str(weights), "--batch", str(tmp_path / "batch.h5"),
                    "--out", str(tmp_path / "out.h5"), "--steps", "1"], check=True, capture_output=True)
    net = ls.to_torch(weights, train=True)
    assert net.mask == mask
    with torch.no_grad():
        mine = [t.numpy() for t in net(x, rows)]
    with h5py.File(tmp_path / "out.h5") as f:
        theirs = [f[f"logits/t{t}"][()] for t in range(len(rows))]
    for t in range(len(rows)):
        assert np.abs(mine[t] - theirs[t]).max() < TOL, (t, np.abs(mine[t] - theirs[t]).max())

    # Inference mode: every row through one task's path, BatchNorm with its running statistics.
    net = ls.to_torch(weights)
    assert not net.training and net.input_scale == [1.0] * len(rows) and net.input_shift == [0.0] * len(rows)
    with h5py.File(tmp_path / "x.h5", "w") as f:
        f["x"] = nhwc(x)
    for t in range(len(rows)):
        subprocess.run([layersplit_bin, "predict", str(weights), "--task", str(t), str(tmp_path / "x.h5"),
                        "-o", str(tmp_path / f"s{t}.h5")], check=True, capture_output=True)
        with h5py.File(tmp_path / f"s{t}.h5") as f:
            theirs = f["scores"][()]
        with torch.no_grad():
            mine = net(x, task=t).numpy()
        assert mine.shape == theirs.shape
        assert np.abs(mine - theirs).max() < TOL, (t, np.abs(mine - theirs).max())


def test_from_torch_to_torch_round_trip(tmp_path):
    net = randomised(MIX, "TASA")
    path = ls.from_torch(net.state_dict(), net, tmp_path / "w.h5")     # the module gives the model and mask
    back = ls.to_torch(path)
    assert back.mask == "TASA" and back.desc == MIX
    sd, sb = net.state_dict(), back.state_dict()
    for k, v in sd.items():
        if not k.endswith("num_batches_tracked"):
            assert torch.equal(v, sb[k]), k
    x, _ = batch(MIX, [6, 10])
    net.eval()
    with torch.no_grad():
        for a, b in zip(net(x, [6, 10]), back(x, [6, 10])):
            assert torch.equal(a, b)
        assert torch.equal(back(x, task=1)[10:], back(x, [0, 16])[1][10:])
    with pytest.raises(ValueError, match="either rows_per_task"):
        back(x)
