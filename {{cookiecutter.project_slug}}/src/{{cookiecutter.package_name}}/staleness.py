"""How old a model may get: the rule that turns a backtest into a maximum age, and the check of
a model's age against it (reports/staleness.json, written by the backtest stage).

Pure and light (no scikit-learn): monitoring reads the report and calls `too_old`.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from .metrics import Better


class StalenessUnknown(ValueError):
    """The report gives no maximum age (no time column, too few periods): age cannot be judged."""


def max_age(scores: list[tuple[float, float]], better: Better, tolerance: float) -> tuple[float, bool]:
    """The largest age up to which every model stays within `tolerance` of the freshest one.

    `scores`: (age, metric value) per model, freshest first. Also returns whether even the
    oldest model stayed within it: then the true limit lies beyond what was tested.
    """
    if not scores:
        raise ValueError("no models to compare")
    fresh = scores[0][1]
    limit = scores[0][0]
    for age, value in scores:
        worse = fresh - value if better == "higher" else value - fresh
        # A model that could not be scored counts as too old: unknown is not within tolerance.
        if math.isnan(worse) or worse > tolerance:
            return limit, False
        limit = age
    return limit, True


def recommended_max_age(report: dict) -> float:
    """The report's maximum age; StalenessUnknown (naming why) when it has none."""
    limit = report.get("max_age")
    if not isinstance(limit, int | float) or isinstance(limit, bool):
        reason = report.get("reason") or "it records no max_age"
        raise StalenessUnknown(f"reports/staleness.json gives no maximum model age: {reason}")
    return float(limit)


def too_old(age: float, report: dict) -> bool:
    """A model `age` time units past its training data's end (the report's `age_unit`) is older
    than the backtest showed it stays good for."""
    return age > recommended_max_age(report)


def read_report(path: Path) -> dict:
    """reports/staleness.json as written by the backtest stage."""
    try:
        report = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise StalenessUnknown(f"{path.name}: not found (run `dvc repro backtest`)") from None
    except (OSError, json.JSONDecodeError) as err:
        raise StalenessUnknown(f"{path.name}: unreadable ({err.__class__.__name__})") from None
    if not isinstance(report, dict):
        raise StalenessUnknown(f"{path.name}: not a JSON object")
    return report


def table_rows(report: dict) -> tuple[list[str], list[list[str]], str]:
    """Quality against model age: a header, a row per model and the closing sentence.
    StalenessUnknown when the report has no maximum age."""
    limit = recommended_max_age(report)
    unit, metric = report["age_unit"], report["metric"]
    rows = [
        [
            f"{model['age']:g}",
            f"{model['trained_from']} to {model['trained_to']}",
            str(model["rows"]),
            f"{model[metric]:.4g}",
            "within tolerance" if model["age"] <= limit else "too old",
        ]
        for model in report["models"]
    ]
    latest = report["latest_window"]
    beyond = (
        " or more (even the oldest model tested stayed within it)" if report["max_age_is_lower_bound"] else ""
    )
    note = (
        f"Scored on the latest window ({latest['from']} to {latest['to']}, {latest['rows']} rows). "
        f"Recommended maximum model age: {limit:g} ({unit}){beyond}; tolerance {report['tolerance']:g} "
        f"of the freshest model's {metric}."
    )
    return [f"model age ({unit})", "trained on", "rows", metric, ""], rows, note


def render_table(report: dict) -> str:
    """Quality against model age as a small GFM table, with the recommended maximum age."""
    if report.get("max_age") is None:
        return f"No maximum model age: {report.get('reason') or 'the report records none'}."
    header, rows, note = table_rows(report)
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(cells) + " |" for cells in lines) + f"\n\n{note}"
