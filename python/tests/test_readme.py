"""python/README.md's first Python block (the five-line tour) runs as written, from the repository's root."""

import os
import re

import pytest

from conftest import ROOT

pytest.importorskip("pandas")


def readme_snippet():
    with open(os.path.join(ROOT, "python", "README.md")) as f:
        return re.search(r"```python\n(.*?)```", f.read(), re.S).group(1)


def test_snippet_is_at_most_five_lines():
    lines = [ln for ln in readme_snippet().splitlines() if ln.strip()]
    assert len(lines) <= 5, lines


def test_snippet_runs(tmp_path, monkeypatch, capsys):
    try:
        import matplotlib  # noqa: F401
        has_plot = True
    except ImportError:
        has_plot = False
    code = readme_snippet()
    if not has_plot:
        code = "\n".join(ln for ln in code.splitlines() if "plot_front" not in ln)
    code = code.replace('"front.pdf"', repr(str(tmp_path / "front.pdf")))
    monkeypatch.chdir(ROOT)
    exec(compile(code, "python/README.md", "exec"), {})
    assert "opencv-digits" in capsys.readouterr().out
    if has_plot:
        with open(tmp_path / "front.pdf", "rb") as f:
            assert f.read(5) == b"%PDF-"


def test_plot_labels_stay_inside(tmp_path):
    pytest.importorskip("matplotlib")
    import layersplit as ls
    from layersplit.plot import labels_inside
    for study in ("zhang-domains", "rebuffi-adapters", "multitask-fashion"):
        fig = ls.plot_front(os.path.join(ROOT, "results", study), tmp_path / f"{study}.pdf")
        assert labels_inside(fig), study
        assert len(fig.axes[0].texts) == len(ls.front(os.path.join(ROOT, "results", study)))
