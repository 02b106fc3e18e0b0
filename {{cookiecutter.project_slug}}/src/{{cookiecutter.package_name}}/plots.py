"""`make plots`: the DVC plots (dvc.yaml `plots:`) as SVG files that open without a network.

`dvc plots show` writes an HTML page that loads Vega from a CDN, blank offline. Here DVC fills
its templates with the data (`dvc plots show --json`: Vega-Lite specs with the rows inline)
and vl-convert, which bundles Vega, draws each spec as SVG. A spec that would fetch anything
(data by URL, an image) is refused, so a file that renders here renders anywhere.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

OUTPUT = "dvc_plots"  # DVC's own output folder for plots (git-ignored)
# A reference that a viewer would follow: href/src attributes and CSS url(), to a URL.
_REMOTE = re.compile(r"""(?:href|src)\s*=\s*["']\s*(?:https?:)?//|url\(\s*["']?\s*(?:https?:)?//""", re.I)


class PlotError(ValueError):
    """A plot that cannot be drawn offline, or DVC could not give the plots."""


def specs(shown: dict) -> Iterator[tuple[str, dict]]:
    """(file name, Vega-Lite spec) for each plot in `dvc plots show --json` output."""
    for name, entries in (shown.get("data") or {}).items():
        for index, entry in enumerate(entries):
            if entry.get("type") != "vega":
                continue  # an image plot is a file already
            # plots/roc.json -> roc.svg; only safe characters in a file name from dvc.yaml.
            stem = name.removeprefix("plots/").rsplit(".", 1)[0]
            stem = re.sub(r"[^A-Za-z0-9_-]+", "_", stem).strip("_") or "plot"
            yield (stem if index == 0 else f"{stem}-{index}") + ".svg", entry["content"]


def checked_spec(name: str, spec: dict) -> dict:
    """The spec, when it draws inline data and fetches nothing; else PlotError naming why."""
    fetched = sorted(_fetched(spec))
    if fetched:
        raise PlotError(f"{name}: would fetch {fetched[0]!r} over the network")
    values = (spec.get("data") or {}).get("values")
    if not isinstance(values, list) or not values:
        raise PlotError(f"{name}: no data to draw (DVC found no rows)")
    return spec


def _fetched(node: object, key: str = "") -> Iterator[str]:
    """Every `url` a Vega-Lite spec names (data by URL, images): a viewer offline has none."""
    if isinstance(node, dict):
        for child_key, child in node.items():
            yield from _fetched(child, str(child_key))
    elif isinstance(node, list):
        for child in node:
            yield from _fetched(child, key)
    elif key == "url" and isinstance(node, str):
        yield node


def checked_svg(name: str, svg: str) -> str:
    """The SVG, when it refers to nothing remote (namespace declarations are names, not links)."""
    found = _REMOTE.search(svg)
    if found:
        raise PlotError(f"{name}: the drawing refers to a remote file ({found.group(0)!r})")
    return svg


def draw(name: str, spec: dict) -> str:
    import vl_convert

    return checked_svg(name, vl_convert.vegalite_to_svg(checked_spec(name, spec)))


def dvc_plots(root: Path, base: str | None) -> dict:
    """DVC's filled-in plot specs: of the workspace, or of `base` and the workspace overlaid."""
    command = ["diff", base] if base else ["show"]
    result = subprocess.run(
        [sys.executable, "-m", "dvc", "plots", *command, "--json"], cwd=root, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise PlotError(f"dvc plots {command[0]} failed: {' '.join(result.stderr.split())[:500]}")
    return json.loads(result.stdout)


def write_plots(root: Path, output: Path, base: str | None = None) -> list[Path]:
    """Draw every DVC plot into `output` as SVG; the files written."""
    output.mkdir(parents=True, exist_ok=True)
    written = []
    for name, spec in specs(dvc_plots(root, base)):
        path = output / name
        path.write_text(draw(name, spec), encoding="utf-8")
        written.append(path)
    if not written:
        raise PlotError("dvc.yaml defines no plots with data: run the pipeline first (make repro)")
    return written
