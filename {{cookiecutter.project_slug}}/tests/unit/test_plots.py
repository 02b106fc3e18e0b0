"""`make plots`: the DVC plots of the session's model drawn as SVG files that need no network."""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.pipeline.evaluate import Evaluation
from {{ cookiecutter.package_name }}.pipeline.stage import write_json
from {{ cookiecutter.package_name }}.plots import PlotError, checked_spec, checked_svg, specs, write_plots

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
LINE = {"mark": "line", "encoding": {"x": {"field": "x", "type": "quantitative"}}}


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory, evaluation: Evaluation) -> dict[str, str]:
    """The evaluate stage's plot files for the session's model, in a scratch DVC repository with
    this project's dvc.yaml and plot templates, drawn by `write_plots`: {file name: SVG}."""
    from dvc.repo import Repo

    scratch = tmp_path_factory.mktemp("plots")
    Repo.init(str(scratch), no_scm=True).close()
    shutil.copy(ROOT / "dvc.yaml", scratch / "dvc.yaml")
    shutil.copytree(ROOT / ".dvc" / "plots", scratch / ".dvc" / "plots")
    (scratch / "plots").mkdir()
    for name, content in evaluation.plots.items():
        if name.endswith(".csv"):
            content.to_csv(scratch / "plots" / name, index=False)
        else:
            write_json(scratch / "plots" / name, content)
    written = write_plots(scratch, scratch / "dvc_plots")
    return {path.name: path.read_text(encoding="utf-8") for path in written}


def test_every_dvc_plot_is_drawn_with_its_data_and_no_remote_reference(drawn: dict[str, str]) -> None:
    plotted = {name.removesuffix(".json").removesuffix(".csv") for name in _plot_files()}
    assert set(drawn) == {f"{name}.svg" for name in plotted}
    for name, svg in drawn.items():
        assert svg.startswith("<svg") and "role-mark" in svg, f"{name}: marks drawn"
        assert not re.search(r"(?:href|src)=[\"'](?:https?:)?//", svg), f"{name}: a remote reference"
    # The data marks follow the axes: a line's points (L) or a scatter's symbols (<path).
    curve = drawn["roc.svg" if "roc.svg" in drawn else "residuals.svg"].split("role-mark", 1)[1]
    assert curve.count("L") + curve.count("<path") >= 20, "the curve's points are drawn"


def _plot_files() -> list[str]:
    import yaml

    plots = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["plots"]
    return [Path(next(iter(entry))).name for entry in plots]


def test_a_spec_that_fetches_its_data_or_has_none_is_refused() -> None:
    rows = {"values": [{"x": 1}]}
    assert checked_spec("ok", {**LINE, "data": rows})
    with pytest.raises(PlotError, match=re.escape("would fetch 'https://cdn.example/data.json'")):
        checked_spec("remote", {**LINE, "data": {"url": "https://cdn.example/data.json"}})
    with pytest.raises(PlotError, match="would fetch"):
        layer = {"layer": [{"mark": "image", "data": {"url": "//cdn.example/x.png"}}]}
        checked_spec("nested", {**LINE, "data": rows, **layer})
    with pytest.raises(PlotError, match="no data to draw"):
        checked_spec("empty", {**LINE, "data": {"values": []}})


def test_an_svg_that_refers_to_a_remote_file_is_refused() -> None:
    namespaced = '<svg xmlns="http://www.w3.org/2000/svg"><path d="M0,0L1,1"/></svg>'
    assert checked_svg("ok", namespaced) == namespaced, "a namespace is a name, not a link"
    for remote in (
        '<image href="https://cdn.example/a.png"/>',
        "<style>@font-face{src:url(//x.example/f)}</style>",
    ):
        with pytest.raises(PlotError, match="remote file"):
            checked_svg("bad", namespaced.replace("<path", remote + "<path"))


def test_specs_name_files_safely_and_skip_images() -> None:
    shown = {
        "data": {
            "plots/roc.json": [{"type": "vega", "content": {"a": 1}}],
            "../../etc/x y.csv": [{"type": "vega", "content": {"b": 2}}, {"type": "vega", "content": {}}],
            "plots/picture.png": [{"type": "image", "url": "plots/picture.png"}],
        }
    }
    assert [name for name, _ in specs(shown)] == ["roc.svg", "etc_x_y.svg", "etc_x_y-1.svg"]


def test_the_command_refuses_a_base_that_is_not_a_ref(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(ROOT), "plots", "--base", "main;rm -rf /"]) == 1
    assert "is not a ref" in capsys.readouterr().err


def test_without_plot_data_the_command_says_to_run_the_pipeline(
    scratch_repository: Callable[[dict[str, str]], Path],
) -> None:
    scratch = scratch_repository({"dvc.yaml": "plots:\n  - plots/roc.json\n"})
    with pytest.raises(PlotError, match="run the pipeline first"):
        write_plots(scratch, scratch / "dvc_plots")
