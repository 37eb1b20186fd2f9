"""The Pareto front as a paper-ready figure (matplotlib, optional).

    import layersplit as ls
    ls.plot_front("results/zhang-domains", "front.pdf")

Accuracy in % against stored parameters: every finished candidate as a grey dot, the front's points joined
and labelled with their masks, and, when the folder's front.json has them, each front point's paired 95%
interval against the previous front point as an error bar (the bar crosses the previous point's level when
the step is within noise).
"""

import math
import os

from .runlog import candidates, front


def _matplotlib():
    try:
        import matplotlib
        import matplotlib.ticker
        import matplotlib.transforms
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("plot_front needs matplotlib: pip install matplotlib") from exc
    return matplotlib, Figure


def plot_front(folder, path="front.pdf", ax=None, title=None, others=True, width=3.4, height=2.5):
    """Draw the Pareto front of the run in `folder` and save it to `path` (PDF, or any format matplotlib knows
    by the suffix; None: do not save). Returns the matplotlib Figure.

    `ax`: draw into this Axes instead of a new figure (then `path` is saved from its figure). `others`: show
    the candidates off the front too. `width`, `height`: inches (3.4 fits one column of a two-column paper).
    Accuracy is plotted in %; every machine-readable output of the package stays a fraction."""
    matplotlib, Figure = _matplotlib()
    fr = front(folder)
    try:
        cs = candidates(folder) if others else None
    except (OSError, ValueError):
        cs = None
    rc = {"font.size": 7, "axes.labelsize": 7, "xtick.labelsize": 6, "ytick.labelsize": 6, "legend.fontsize": 6,
          "pdf.fonttype": 42, "ps.fonttype": 42, "axes.spines.top": False, "axes.spines.right": False}
    with matplotlib.rc_context(rc):
        if ax is None:
            fig = Figure(figsize=(width, height), constrained_layout=True)
            ax = fig.add_subplot()
        else:
            fig = ax.figure
        xs = [float(v) for v in fr["stored_params"]]
        ys = [100 * float(v) for v in fr["mean_acc"]]
        allx, ally = list(xs), list(ys)
        if cs is not None and len(cs):
            done = cs[cs["status"] == "done"]
            ox, oy = [float(v) for v in done["stored_params"]], [100 * float(v) for v in done["mean_acc"]]
            ax.scatter(ox, oy, s=6, color="0.75", linewidths=0, label="candidates", zorder=1)
            allx += ox
            ally += oy
        ax.plot(xs, ys, "-", color="C0", lw=1, zorder=2)
        ax.scatter(xs, ys, s=14, color="C0", zorder=3, label="Pareto front")
        lows, highs = [], []
        for k in range(len(fr)):
            lo, hi, mean = (fr[c].iloc[k] if c in fr else math.nan for c in ("ci_low", "ci_high", "delta"))
            if k == 0 or any(v is None or not math.isfinite(float(v)) for v in (lo, hi, mean)):
                continue
            # the interval of the step from the previous point, drawn around this point
            lows.append(ys[k] + 100 * (float(lo) - float(mean)))
            highs.append(ys[k] + 100 * (float(hi) - float(mean)))
            ax.errorbar([xs[k]], [ys[k]], yerr=[[ys[k] - lows[-1]], [highs[-1] - ys[k]]], fmt="none",
                        ecolor="C0", elinewidth=0.8, capsize=2, zorder=2,
                        label="paired 95% interval vs previous" if len(lows) == 1 else None)
        ally += lows + highs
        # limits with room for the labels
        if allx and max(allx) / max(min(allx), 1) > 8:
            ax.set_xscale("log")
            lx = [math.log10(v) for v in allx]
            pad = 0.08 * (max(lx) - min(lx) or 1)
            ax.set_xlim(10 ** (min(lx) - pad), 10 ** (max(lx) + pad))
        elif allx:
            pad = 0.08 * (max(allx) - min(allx) or max(allx) or 1)
            ax.set_xlim(min(allx) - pad, max(allx) + pad)
        if ally:
            span = max(ally) - min(ally) or 1
            ax.set_ylim(min(ally) - 0.12 * span, max(ally) + 0.22 * span)
        ax.set_xlabel("stored parameters")
        ax.set_ylabel("mean accuracy (%)")
        if title is not None:
            ax.set_title(title)
        ax.grid(True, lw=0.3, color="0.9")
        ax.legend(loc="lower right", frameon=False)
        ax.xaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(_count))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        # Labels up and to the left of their points: no candidate lies there (it would dominate the point).
        labels = [ax.annotate(str(m), (x, y), xytext=(-2, 2), textcoords="offset points", ha="right", va="bottom",
                              fontsize=5.5, family="monospace", zorder=4)
                  for x, y, m in zip(xs, ys, fr["mask"])]
        _place_labels(fig, ax, labels)
        if path is not None:
            fig.savefig(os.fspath(path), bbox_inches="tight")
    return fig


def _count(x, _pos=None):
    """100000 -> 100k, 1200000 -> 1.2M."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale:
            return f"{x / scale:g}{suffix}"
    return f"{x:g}"


def _place_labels(fig, ax, labels):
    """Move labels up past the ones placed before them, then into the axes (in points)."""
    import matplotlib
    fig.draw_without_rendering()
    pts = fig.dpi / 72.0
    box = ax.get_window_extent()
    placed = []
    for t in labels:
        for _ in range(len(labels)):
            bb = t.get_window_extent()
            hit = [p for p in placed if bb.overlaps(p)]
            if not hit:
                break
            x, y = t.get_position()
            t.set_position((x, y + (max(p.y1 for p in hit) - bb.y0 + 1) / pts))
        bb = t.get_window_extent()
        dx = (box.x0 - bb.x0 + 1) if bb.x0 < box.x0 else (box.x1 - bb.x1 - 1) if bb.x1 > box.x1 else 0
        dy = (box.y0 - bb.y0 + 1) if bb.y0 < box.y0 else (box.y1 - bb.y1 - 1) if bb.y1 > box.y1 else 0
        if dx or dy:
            x, y = t.get_position()
            t.set_position((x + dx / pts, y + dy / pts))
        placed.append(matplotlib.transforms.Bbox(t.get_window_extent().get_points()))


def labels_inside(fig):
    """Whether every annotation of every Axes of `fig` lies inside its Axes (for tests)."""
    fig.draw_without_rendering()
    for ax in fig.axes:
        box = ax.get_window_extent()
        for t in ax.texts:
            bb = t.get_window_extent()
            if bb.x0 < box.x0 - 0.5 or bb.x1 > box.x1 + 0.5 or bb.y0 < box.y0 - 0.5 or bb.y1 > box.y1 + 0.5:
                return False
    return True
