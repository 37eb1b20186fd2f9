#!/usr/bin/env python3
"""Read LayerSplit weights (docs/FORMATS.md) into PyTorch.

    python scripts/h5_to_torch.py weights.h5 state_dict.pt     # the module's state_dict, torch.save()d
    python scripts/h5_to_torch.py weights.h5                   # just check that it loads, and summarise

From Python: `layersplit.to_torch("weights.h5")` (python/), or `net, desc, mask = h5_to_torch.load("weights.h5")`, gives a torch.nn.Module equal to LayerSplit's
model (NCHW inputs; `net(x, rows_per_task)` returns one logits tensor per task).
"""

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))
from layersplit.weights import to_torch  # noqa: E402


def load(path):
    """(module, model description, mask) with every tensor of the file loaded; the module in training mode
    (layersplit.to_torch(path) gives it in eval mode)."""
    net = to_torch(path, train=True)
    return net, net.desc, net.mask


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("weights")
    p.add_argument("out", nargs="?")
    a = p.parse_args()
    net, desc, mask = load(a.weights)
    n = sum(t.numel() for t in net.state_dict().values())
    print(f"{a.weights}: units {', '.join(desc['units'])}; mask {mask}; {n} values loaded")
    if a.out:
        torch.save(net.state_dict(), a.out)
        print(f"wrote {a.out}")


if __name__ == "__main__":
    main()
