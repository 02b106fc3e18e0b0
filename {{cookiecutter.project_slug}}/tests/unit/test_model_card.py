"""The model card's pure builder: every section, escaping of hostile values, and its own check."""

from __future__ import annotations

import re

import numpy as np
import pytest

from {{ cookiecutter.package_name }}.deploy.model_card import (
    TOO_SMALL,
    CardError,
    check_card,
    escaped,
    render_card,
)
from {{ cookiecutter.package_name }}.gate.noise import metric_intervals, scorers
from {{ cookiecutter.package_name }}.pipeline import evaluate
from {{ cookiecutter.package_name }}.predictions import Rows

pytestmark = pytest.mark.unit

MD5 = "0123456789abcdef0123456789abcdef"
TAGS = {
    "data_md5": MD5,
    "git_commit": "a" * 40,
    "canary": "passed",
    "canary_champion": "3",
    "promoted_without_canary": "hotfix for incident 42",
    "promoted_without_canary_by": "alice",
}


def facts(**changes) -> dict:
    """Facts as register gathers them (deploy/cards.py), for a classifier with one slice."""
    found = {
        "intended_use": "Ranks cases for review by a person.",
        "limitations": ["Trained on one city's records."],
        "params": {"data.source": "demo-arrests", "data.target": "released", "train.seed": 42},
        "metrics": {"roc_auc": 0.716392, "log_loss": 0.426399},
        "baseline": {"roc_auc": 0.5, "log_loss": 0.463422},
        "test_rows": 1488,
        "intervals": {"roc_auc": [0.69, 0.74], "log_loss": [0.41, 0.44]},
        "interval_note": "bootstrap, 1000 resamples of the 1488 test rows",
        "slices": {
            "colour": {
                "groups": {
                    "Black": {"recall": 0.69, "count": 396},
                    "Other": {"count": 12, TOO_SMALL: 1},
                },
                "fairness": {"demographic_parity_difference": {"value": 0.14, "low": 0.09, "high": 0.2}},
            }
        },
        "gate": {"verdict": "pass", "base": "deploy-base", "findings": [], "policy": {"changed": []}},
    }
    return found | changes


def test_every_section_is_there_with_its_facts() -> None:
    card = render_card("arrests", "7", facts(), TAGS)
    for heading in ("Intended use", "Data", "Params", "Metrics (test set)", "Slices and fairness"):
        assert f"\n## {heading}\n" in card, heading
    for heading in ("Known limits", "Verdicts"):
        assert f"\n## {heading}\n" in card, heading
    assert card.startswith("<!-- mlgate model card -->\n# Model card: arrests version 7\n")
    assert f"- Data md5 (data/raw/data.csv): `{MD5}`" in card
    assert "- Gate: **pass** against deploy\\-base" in card
    assert "- Canary: **passed** against version 3" in card
    assert "**forced** without the canary's pass, by alice: hotfix for incident 42" in card
    assert "| roc\\_auc | 0.7164 | \\[0.69, 0.74\\] | 0.5 |" in card
    assert "| colour | demographic\\_parity\\_difference | 0.14 | \\[0.09, 0.2\\] |" in card
    assert "colour = Other: too few test rows to judge" in card
    assert "Ranks cases for review by a person\\." in card
    assert "| train\\.seed | 42 |" in card
    check_card(card)


def test_who_approved_a_policy_change_is_named() -> None:
    gate = {"verdict": "pass", "policy": {"changed": ["gate.slice_tolerance"], "applied": "pull request"}}
    gate["policy"]["approved_by"] = "bob"
    card = render_card("m", "1", facts(gate=gate), TAGS)
    assert "policy change: gate\\.slice\\_tolerance, applied, approved by bob" in card


def test_hostile_values_from_files_stay_inert_text() -> None:
    hostile = "<script>alert(1)</script> [click](https://evil.example) ![x](y) @team\n# Approved | ok"
    slices = {hostile: {"groups": {"<img src=x onerror=alert(1)>": {"count": 40, "recall": 0.5}}}}
    tags = TAGS | {"promoted_without_canary_by": "@admins", "git_commit": "`rm -rf` <b>"}
    card = render_card("m", "1", facts(intended_use=hostile, limitations=[hostile], slices=slices), tags)
    assert "<script" not in card and "<img" not in card and "<b>" not in card
    assert "](" not in card, "no link or image can be formed"
    assert "@" not in card, "nobody is mentioned (notified)"
    assert "| git commit | \\`rm \\-rf\\` &lt;b&gt; |" in card, "no code span: only a hash is code"
    headings = [line for line in card.splitlines() if line.startswith("#")]
    assert all(line.startswith(("# Model card", "## ")) for line in headings), headings
    check_card(card)


def test_missing_intervals_are_said_so() -> None:
    card = render_card("m", "1", facts(intervals={}, interval_note="reports/predictions.csv not found"), TAGS)
    assert "No intervals: reports/predictions\\.csv not found\\." in card
    assert "| roc\\_auc | 0.7164 | no interval | 0.5 |" in card


def test_no_gate_record_and_no_canary_yet_are_said_so() -> None:
    gate = {"missing": "no readable reports/gate.json"}
    card = render_card("m", "1", facts(gate=gate), {"data_md5": MD5})
    assert "- Gate: **not judged** (no readable reports/gate\\.json)" in card
    assert "- Canary: **not run**" in card
    check_card(card)


@pytest.mark.parametrize(
    ("dropped", "said"),
    [(r"^- Data md5 .*$", "no data hash"), (r"^- Gate: .*$", "no gate verdict")],
)
def test_check_catches_a_card_without_its_data_hash_or_gate_verdict(dropped: str, said: str) -> None:
    card = render_card("m", "1", facts(), TAGS)
    broken = re.sub(dropped, "", card, flags=re.MULTILINE)
    assert broken != card
    with pytest.raises(CardError, match=said):
        check_card(broken)


def test_a_version_without_a_data_hash_makes_a_card_the_check_refuses() -> None:
    card = render_card("m", "1", facts(), TAGS | {"data_md5": "unknown"})
    with pytest.raises(CardError, match="no data hash"):
        check_card(card)


def test_escaped_is_one_line_and_capped() -> None:
    assert escaped("a\nb", 10) == "a b"
    assert len(escaped("x" * 500, 50)) == 50


def test_the_too_small_mark_is_the_evaluate_stage_s() -> None:
    assert TOO_SMALL == evaluate.TOO_SMALL


def test_metric_intervals_bracket_the_metric_on_all_rows() -> None:
    rng = np.random.default_rng(0)
    truth = rng.choice(["No", "Yes"], size=400)
    score = np.clip((truth == "Yes") * 0.3 + rng.uniform(0, 0.7, size=400), 0, 1)
    predicted = np.where(score > 0.5, "Yes", "No")
    rows = Rows(np.arange(400).astype(str), truth, predicted, ("Yes",), score[:, None])
    intervals = metric_intervals(rows, ["roc_auc", "not_a_metric"], rounds=300, seed=1)
    assert set(intervals) == {"roc_auc"}
    whole = float(scorers(rows)["roc_auc"](np.ones((1, 400)))[0])
    assert intervals["roc_auc"].low < whole < intervals["roc_auc"].high
    assert intervals["roc_auc"].width < 0.2
    assert metric_intervals(rows, ["roc_auc"], rounds=300, seed=1) == intervals, "seeded: reproducible"
