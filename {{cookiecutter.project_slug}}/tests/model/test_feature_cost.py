"""No input costs too much (ML Test Score D3): each one's preprocessing time per row, its share
of the model's predict time and the memory of its encoding, against features.budget in params.

Timings vary by machine: the shipped budget is generous, and the fault tests inject costs far
beyond a budget they set, so they fail on any machine (a sleep is a lower bound on time)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder

from {{ cookiecutter.package_name }}.artifacts import MODEL_FILE, TRUSTED_TYPES
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config.features import FeatureBudget
from {{ cookiecutter.package_name }}.feature_cost import cost_table, feature_costs, over_budget

pytestmark = pytest.mark.model

ROWS = 200


def slow(frame: pd.DataFrame) -> np.ndarray:
    time.sleep(0.02)  # 100 µs per row over ROWS rows
    return frame.to_numpy(dtype=float)


def injected(transformer, column: str, frame: pd.DataFrame) -> Pipeline:
    """A small fitted model whose `column` goes through `transformer`, the rest as they are."""
    rest = [name for name in frame.columns if name != column]
    preprocessor = ColumnTransformer([("injected", transformer, [column]), ("rest", "passthrough", rest)])
    return Pipeline([("features", preprocessor), ("model", LinearRegression())]).fit(
        frame, np.arange(len(frame))
    )


def toy_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({"cheap": rng.normal(size=ROWS), "costly": rng.normal(size=ROWS)})


def test_each_input_costs_within_the_budget(model, test_set, settings) -> None:
    costs = feature_costs(model, test_set, settings.features.repeats)
    print(cost_table(costs, settings.features.budget))
    assert sorted(cost.feature for cost in costs) == sorted(model.feature_names_in_)
    assert all(cost.encoded_bytes_per_row > 0 and cost.predict_share >= 0 for cost in costs), costs
    assert over_budget(costs, settings.features.budget) == []


def test_a_slow_transform_is_over_the_budget() -> None:
    frame = toy_frame()
    model = injected(FunctionTransformer(slow), "costly", frame)
    budget = FeatureBudget(max_transform_us_per_row=50, max_encoded_bytes_per_row=1_000)
    problems = over_budget(feature_costs(model, frame, repeats=1), budget)
    assert len(problems) == 1 and problems[0].startswith("costly: transform"), problems


def test_a_huge_one_hot_is_over_the_budget() -> None:
    frame = toy_frame().assign(costly=[f"id-{row}" for row in range(ROWS)])  # one category per row
    model = injected(OneHotEncoder(handle_unknown="ignore", sparse_output=False), "costly", frame)
    budget = FeatureBudget(max_transform_us_per_row=1_000_000, max_encoded_bytes_per_row=800)
    problems = over_budget(feature_costs(model, frame, repeats=1), budget)
    assert problems == [
        "costly: encoding 1,600 bytes per row (200 columns), "
        "over features.budget.max_encoded_bytes_per_row 800"
    ]


def test_the_command_reports_the_costs_and_fails_over_the_budget(
    model, test_set, root, tmp_path, capsys
) -> None:
    import skops.io

    params = (root / "params.yaml").read_text(encoding="utf-8").replace("  repeats: 7", "  repeats: 1")
    Path(tmp_path / "params.yaml").write_text(params, encoding="utf-8")
    assert main(["--root", str(tmp_path), "features", "cost"]) == 1  # nothing to measure yet
    assert "not found: run the pipeline" in capsys.readouterr().err
    (tmp_path / "models" / "model").mkdir(parents=True)
    skops.io.dump(model, tmp_path / "models" / "model" / MODEL_FILE)
    assert set(skops.io.get_untrusted_types(file=tmp_path / "models" / "model" / MODEL_FILE)) <= set(
        TRUSTED_TYPES
    )
    (tmp_path / "data" / "prepared").mkdir(parents=True)
    test_set.to_csv(tmp_path / "data" / "prepared" / "test.csv", index=False)
    assert main(["--root", str(tmp_path), "features", "cost"]) == 0
    shown = capsys.readouterr()
    assert all(f"| {name} |" in shown.out for name in model.feature_names_in_), shown.out
    tight = params.replace("max_encoded_bytes_per_row: 2000", "max_encoded_bytes_per_row: 0.5")
    assert tight != params
    Path(tmp_path / "params.yaml").write_text(tight, encoding="utf-8")
    assert main(["--root", str(tmp_path), "features", "cost"]) == 1
    assert "over budget: " in capsys.readouterr().err
