"""LayerSplit from Python: run logs into pandas, Pareto fronts, weights files to and from PyTorch.

    import layersplit as ls
    df = ls.read_run("results/zhang-domains")      # one row per (mask, seed, task); accuracy is a fraction
    ls.plot_front("results/zhang-domains", "front.pdf")
    net = ls.to_torch("trained.h5")                # a torch.nn.Module computing LayerSplit's logits

numpy and h5py are required; pandas (DataFrames), matplotlib (plot_front) and torch (to_torch, from_torch)
are imported only when used. The file formats are LayerSplit's docs/FORMATS.md.
"""

from .runlog import (RunLog, RunLogError, candidates, fnv1a64, front, journal_line, open_log, pareto_indices,
                     read_curves, read_journal, read_run, read_trials)
from .weights import (Weights, build_model, from_state_dict, from_torch, load_weights, read_weights, to_state_dict,
                      to_torch, write_weights)
from .plot import plot_front

__version__ = "0.1.0"

__all__ = ["read_run", "read_trials", "read_curves", "candidates", "front", "open_log", "RunLog", "RunLogError",
           "load_weights", "Weights", "to_torch", "from_torch", "plot_front", "read_weights", "write_weights",
           "build_model", "to_state_dict", "from_state_dict", "read_journal", "journal_line", "fnv1a64",
           "pareto_indices"]
