#!/usr/bin/env python3
"""Write a PyTorch state_dict of a reference model into LayerSplit's weights layout (docs/FORMATS.md).

    python scripts/torch_to_h5.py --model cnn --mask SSSS out.h5                  # the freshly built reference
    python scripts/torch_to_h5.py --model mlp --mask TTSS --state-dict sd.pt out.h5

The reference models are bench/pytorch_ref.py's MultiTaskNet (MLP: 784 -> 4 x Linear 512; CNN: stem conv 32 +
basic blocks 32, 64/2, 128/2 on 1x28x28). A state_dict of the layersplit package's build_model (keys
`units.u01...`) is accepted too; it is the one to use for a mask with adapter units (A), which the reference
lacks (without --state-dict such a mask writes build_model's fresh model: adapters at their zero start).
"""

import argparse
import os
import sys

import torch

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
import layersplit.weights as lh  # noqa: E402

REFERENCE = {
    "mlp": {"input_shape": [784], "units": ["linear:512"] * 4, "task_classes": [10] * 4},
    "cnn": {"input_shape": [28, 28, 1], "units": ["conv:32", "residual:32", "residual:64:s2", "residual:128:s2"],
            "task_classes": [10] * 4},
}


def export(state_dict, desc, mask, out, attrs=None):
    """Write `state_dict` (reference naming or build_model naming) to `out`; returns the tensors written."""
    lh.from_torch(state_dict, desc, out, mask=mask, attrs=dict({"tool_version": "torch_to_h5.py"}, **(attrs or {})))
    return lh.read_weights(out)[2]


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out")
    p.add_argument("--model", choices=sorted(REFERENCE), default="mlp")
    p.add_argument("--mask", default="SSSS")
    p.add_argument("--state-dict", help="a torch.save()d state_dict (default: a freshly built reference model)")
    a = p.parse_args()
    desc = REFERENCE[a.model]
    mask = a.mask.upper()
    if a.state_dict:
        sd = torch.load(a.state_dict, map_location="cpu")
    elif "A" in mask:                                 # the reference has no adapters: LayerSplit's fresh model
        sd = lh.build_model(desc, mask).state_dict()
    else:
        import pytorch_ref
        net, _, _ = pytorch_ref.build(a.model, mask)
        sd = net.state_dict()
    tensors = export(sd, desc, mask, a.out, {"source": a.state_dict or f"bench/pytorch_ref.py {a.model}"})
    print(f"wrote {a.out}: {len(tensors)} tensors, {sum(v.size for v in tensors.values())} floats, mask {mask}")


if __name__ == "__main__":
    main()
