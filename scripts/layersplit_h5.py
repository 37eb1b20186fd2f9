#!/usr/bin/env python3
"""LayerSplit's HDF5 weights layout from Python: kept for old imports; the code is the `layersplit` package
(python/layersplit/weights.py). New code: `import layersplit` (pip install -e python/).

    import layersplit_h5 as lh
    desc, mask, tensors, attrs = lh.read_weights("weights.h5")
    net = lh.build_model(desc, mask)
    net.load_state_dict(lh.to_state_dict(tensors), strict=False)
    lh.write_weights("out.h5", desc, mask, lh.from_state_dict(net.state_dict()))

Run as a script: `python scripts/layersplit_h5.py FILE.h5` summarises a weights file.
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))

from layersplit.weights import (DEFAULT_ADAPTER_RANK, FORMAT_VERSION, FORMAT_WEIGHTS, STR, Weights,  # noqa: E402,F401
                                build_model, from_state_dict, from_torch, load_weights, parse_unit, read_weights,
                                reference_to_layersplit, to_state_dict, to_torch, write_weights)


def main():
    for path in sys.argv[1:] or ["--help"]:
        if path.startswith("-"):
            print(__doc__)
            return
        w = load_weights(path)
        n = sum(v.size for v in w.tensors.values())
        print(f"{path}: units {', '.join(w.model['units'])}; mask {w.mask}; {len(w.tensors)} tensors, {n} floats")


if __name__ == "__main__":
    main()
