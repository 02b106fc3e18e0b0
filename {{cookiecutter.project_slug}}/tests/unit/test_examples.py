"""`examples record`'s pure parts: which rows, which bounds, and the file it writes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from {{ cookiecutter.package_name }}.examples import (
    Example,
    bounds,
    confident_rows,
    recorded_examples,
    round_robin,
    spread_rows,
    with_examples,
)
from {{ cookiecutter.package_name }}.pipeline.stage import StageFailed

pytestmark = pytest.mark.unit


def test_bounds_round_outward_and_stay_in_range() -> None:
    assert bounds(0.5, 0.1, 0.0, 1.0) == (0.4, 0.6)
    assert bounds(0.12345, 0.1, 0.0, 1.0) == (0.023, 0.224)  # never narrower than asked
    assert bounds(0.97, 0.1, 0.0, 1.0) == (0.87, 1.0)
    assert bounds(150.0, 12.5) == (137.5, 162.5)


def test_round_robin_takes_the_first_of_every_group_before_any_second() -> None:
    assert round_robin([[1, 2, 3], [7], [4, 5]], 4) == [1, 7, 4, 2]
    assert round_robin([[1], []], 5) == [1]


def test_confident_rows_cover_every_class_with_rows_predicted_right() -> None:
    classes = ["a", "b", "c"]
    true = np.array(["a", "a", "b", "b", "c", "c", "a"])
    predicted = np.array(["a", "a", "b", "a", "c", "b", "a"])
    proba = np.array(
        [
            [0.6, 0.2, 0.2],
            [0.9, 0.05, 0.05],
            [0.1, 0.8, 0.1],
            [0.5, 0.4, 0.1],
            [0.2, 0.2, 0.6],
            [0.1, 0.5, 0.4],
            [0.7, 0.2, 0.1],
        ]
    )
    picked = confident_rows(proba, classes, true, predicted, 4)
    assert picked == [1, 2, 4, 6]  # a's most confident, then b, c (each right), then a's next
    assert all(true[i] == predicted[i] for i in picked)


def test_spread_rows_follow_the_target_among_rows_predicted_well() -> None:
    true = np.arange(100, dtype=float)
    predicted = true.copy()
    predicted[::2] += 30  # every other row is predicted badly
    picked = spread_rows(predicted, true, 5)
    assert len(set(picked)) == 5
    assert all(i % 2 == 1 for i in picked)
    assert [round(true[i] / 10) for i in picked] == [1, 3, 5, 7, 9]  # 10 %, 30 %, ... of the target


def test_the_written_file_keeps_comments_and_directional_cases_and_reads_back() -> None:
    directional = "directional:\n- {name: d, input: {x: 1}, change: {x: 2}, expect: higher}\n"
    text = "# how to write one\n#   examples: ...\nexamples: []\n" + directional
    examples = [Example("row 3: Yes", {"x": 1.5, "flag": "Yes", "gap": None}, 0.7, 0.9, 0.8, "Yes")]
    written = with_examples(text, examples, "models/model")
    assert written.startswith("# how to write one\n#   examples: ...\n")
    known = yaml.safe_load(written)
    assert known["examples"] == [
        {
            "name": "row 3: Yes",
            "input": {"x": 1.5, "flag": "Yes", "gap": None},
            "class": "Yes",
            "expect": {"min": 0.7, "max": 0.9},
        }
    ]
    assert known["directional"][0]["name"] == "d"
    assert "# measured 0.8" in written


def test_a_known_examples_file_that_is_not_yaml_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "known_examples.yaml"
    assert recorded_examples(path) == []
    path.write_text("examples:\n  - name: a\n    expect: {min: 1} ...\n  broken: [\n")
    with pytest.raises(StageFailed, match=r"known_examples\.yaml is not valid YAML: ") as caught:
        recorded_examples(path)
    assert "\n" not in str(caught.value)
    path.write_text("- just a list\n")
    with pytest.raises(StageFailed, match="must be a mapping"):
        recorded_examples(path)
