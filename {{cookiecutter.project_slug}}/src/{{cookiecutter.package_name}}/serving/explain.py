"""One row, step by step: what each step of the model pipeline makes of it, and why the model answers
as it does (`{{ cookiecutter.package_name }} explain`, POST /explain).

The steps are the pipeline's own: each preprocessing step's output, the encoded features by name,
the estimator's raw score (logit, margin, probability or value), then the probabilities and the
label by the decision rule (decision.py). Per-feature contributions to the raw score are exact for
linear models (coefficient x encoded value, plus the intercept) and SHAP values for tree models
(TreeExplainer, exact for trees), summed back to the input columns. Either way base + contributions
must give the raw score the estimator computes itself: `additivity_gaps` checks it, and an
explanation that fails it is refused rather than shown.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

# Base + contributions against the estimator's own raw score, relative to max(1, |score|).
TOLERANCE = {"linear": 1e-9, "shap": 1e-6}


class ExplainError(ValueError):
    """A row or a model that cannot be explained: one line that says why."""


@dataclass(frozen=True)
class Step:
    """One step's output for the row, by feature name."""

    name: str
    values: dict[str, Any]


@dataclass(frozen=True)
class Explanation:
    inputs: dict[str, Any]
    steps: tuple[Step, ...]
    method: str  # "linear" (exact) or "shap" (TreeExplainer)
    score: str  # what the raw score is: "logit", "log-odds", "probability", "value"
    raw: dict[str, float]  # the estimator's raw score, per output (a class, or "value")
    base: dict[str, float]  # intercept or SHAP expected value, per output
    by_feature: dict[str, dict[str, float]]  # encoded feature -> output -> contribution
    columns: dict[str, str]  # encoded feature -> the input column it comes from
    prediction: Any
    probabilities: dict[str, float] | None = None
    decision: str | None = None
    model: str = ""
    tolerance: float = field(default=1e-9)

    @property
    def outputs(self) -> list[str]:
        return list(self.raw)

    def by_input(self) -> dict[str, dict[str, float]]:
        """Contributions summed back to the input columns, in the inputs' order."""
        grouped: dict[str, dict[str, float]] = {name: dict.fromkeys(self.raw, 0.0) for name in self.inputs}
        for feature, parts in self.by_feature.items():
            column = grouped.setdefault(self.columns[feature], dict.fromkeys(self.raw, 0.0))
            for output, value in parts.items():
                column[output] += value
        return grouped

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "inputs": self.inputs,
            "steps": [{"name": step.name, "values": step.values} for step in self.steps],
            "score": {"kind": self.score, "raw": self.raw, "base": self.base},
            "contributions": {
                "method": self.method,
                "by_input": self.by_input(),
                "by_feature": self.by_feature,
                "feature_columns": self.columns,
                "max_gap": max(additivity_gaps(self).values(), default=0.0),
            },
            "probabilities": self.probabilities,
            "prediction": self.prediction,
            "decision": self.decision,
        }


def additivity_gaps(explanation: Explanation) -> dict[str, float]:
    """Per output: |base + sum of contributions - raw score|, relative to max(1, |raw score|)."""
    gaps = {}
    for output, raw in explanation.raw.items():
        total = explanation.base[output] + math.fsum(
            parts[output] for parts in explanation.by_feature.values()
        )
        gaps[output] = abs(total - raw) / max(1.0, abs(raw))
    return gaps


def check_additive(explanation: Explanation) -> None:
    """Refuse contributions that do not add up to the model's own raw score."""
    wrong = {out: gap for out, gap in additivity_gaps(explanation).items() if gap > explanation.tolerance}
    if wrong:
        listed = ", ".join(f"{out}: off by {gap:.3g}" for out, gap in wrong.items())
        raise ExplainError(
            f"the contributions do not add up to the model's {explanation.score} ({listed}; "
            f"tolerance {explanation.tolerance:g}): the explanation is wrong, not shown"
        )


def parse_row(text: str, source: str = "the row") -> dict[str, Any]:
    """One JSON object, column -> value."""
    try:
        row = json.loads(text)
    except json.JSONDecodeError as err:
        where = f"line {err.lineno} column {err.colno}"
        raise ExplainError(f"{source} is not JSON ({err.msg} at {where})") from None
    if not isinstance(row, dict):
        raise ExplainError(f"{source} must be one JSON object (column: value), not {type(row).__name__}")
    return row


def validate_row(row: dict[str, Any], contract: Any, inputs: list[str]) -> dict[str, Any]:
    """The row checked by the request model of /predict (serving/requests.py): types, bounds, columns."""
    from pydantic import ValidationError

    from .requests import request_model

    try:
        checked = request_model(contract, inputs).model_validate(row)
    except ValidationError as err:
        problems = []
        for error in err.errors():
            where = ".".join(str(part) for part in error.get("loc", ())) or "row"
            problems.append(f"{where}: {error.get('msg', 'invalid')}")
        allowed = ", ".join(inputs)
        raise ExplainError(f"invalid input: {'; '.join(problems)} (the model's columns: {allowed})") from None
    return dict(checked.__dict__)


def explain(pipeline: Any, row: dict[str, Any], model: str = "") -> Explanation:
    """The explanation of one validated row (column -> value; None for a missing value)."""
    from sklearn.base import is_classifier

    inputs = [str(name) for name in pipeline.feature_names_in_]
    frame = _frame(inputs, row)
    preprocessing, last = pipeline[:-1], pipeline[-1]
    estimator = _unwrapped(last)
    steps = [Step("input", {name: _plain(row.get(name)) for name in inputs})]
    steps += _preprocessing_steps(preprocessing, frame)
    encoded = np.asarray(preprocessing.transform(frame), dtype=float)
    names = _feature_names(preprocessing, encoded.shape[1])
    if not np.allclose(list(steps[-1].values.values()), encoded[0], rtol=0, atol=1e-12, equal_nan=True):
        raise ExplainError("the steps shown do not give the features the model sees: cannot explain")
    score, raw = raw_score(estimator, encoded)
    method, base, parts = contributions(estimator, encoded, list(raw))
    of = f"{score} of {next(iter(raw))}" if len(raw) == 1 else f"{score} per class"
    of = "the predicted value" if score == "value" else of
    steps.append(Step(f"model: {type(estimator).__name__}, {of}", dict(raw)))
    probabilities = None
    if is_classifier(pipeline):
        proba = pipeline.predict_proba(frame)[0]
        probabilities = {str(label): float(p) for label, p in zip(pipeline.classes_, proba, strict=True)}
        steps.append(Step("probabilities", dict(probabilities)))
    prediction = _plain(pipeline.predict(frame)[0])
    explanation = Explanation(
        inputs={name: _plain(row.get(name)) for name in inputs},
        steps=tuple(steps),
        method=method,
        score=score,
        raw=raw,
        base=base,
        by_feature={name: dict(zip(raw, parts[:, index], strict=True)) for index, name in enumerate(names)},
        columns=feature_columns(preprocessing, names, inputs),
        prediction=prediction,
        probabilities=probabilities,
        decision=decision_text(last, probabilities, prediction),
        model=model,
        tolerance=TOLERANCE[method],
    )
    check_additive(explanation)
    return explanation


def raw_score(estimator: Any, encoded: np.ndarray) -> tuple[str, dict[str, float]]:
    """The estimator's own raw score for the row: what the contributions must add up to."""
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return "value", {"value": float(np.ravel(estimator.predict(encoded))[0])}
    labels = [str(label) for label in classes]
    if not hasattr(estimator, "decision_function"):  # a forest: its score is the averaged probability
        return "probability", dict(zip(labels, map(float, estimator.predict_proba(encoded)[0]), strict=True))
    decision = np.asarray(estimator.decision_function(encoded), dtype=float)
    kind = "logit" if hasattr(estimator, "coef_") else "log-odds"
    if decision.ndim == 1:  # two classes: one score, for the second class
        return kind, {labels[1]: float(decision[0])}
    return kind, dict(zip(labels, map(float, decision[0]), strict=True))


def contributions(
    estimator: Any, encoded: np.ndarray, outputs: list[str]
) -> tuple[str, dict[str, float], np.ndarray]:
    """The method, the base per output, and each encoded feature's contribution (outputs x features)."""
    if hasattr(estimator, "coef_"):
        base, parts = linear_contributions(estimator, encoded[0])
        return "linear", dict(zip(outputs, base, strict=True)), parts
    base, parts = tree_contributions(estimator, encoded)
    if len(base) != len(outputs):
        raise ExplainError(
            f"SHAP gives {len(base)} outputs for {type(estimator).__name__}, its score has {len(outputs)}"
        )
    return "shap", dict(zip(outputs, base, strict=True)), parts


def linear_contributions(estimator: Any, values: np.ndarray) -> tuple[list[float], np.ndarray]:
    """Exact: the intercept per output, and coefficient x encoded value (outputs x features)."""
    coef = np.atleast_2d(np.asarray(estimator.coef_, dtype=float))
    intercept = np.atleast_1d(np.asarray(estimator.intercept_, dtype=float))
    return [float(value) for value in intercept], coef * np.asarray(values, dtype=float)


def tree_contributions(estimator: Any, encoded: np.ndarray) -> tuple[list[float], np.ndarray]:
    """SHAP values from TreeExplainer (exact for trees): the expected value per output, and the
    contributions (outputs x features). shap is heavy to import: only here."""
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # shap's plotting colours warn about matplotlib at import
            import shap
    except ImportError:
        raise ExplainError("contributions of tree models need shap: `uv sync` installs it") from None
    try:
        explainer = shap.TreeExplainer(estimator)
        values = explainer.shap_values(encoded, check_additivity=False)  # checked here, on the raw score
    except Exception as err:  # shap refuses a model it does not cover: say which
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ExplainError(f"SHAP cannot explain {type(estimator).__name__}: {first}") from None
    base = [float(value) for value in np.atleast_1d(explainer.expected_value)]
    if isinstance(values, list):  # older shap: one (rows x features) array per output
        parts = np.stack([np.asarray(value)[0] for value in values])
    else:
        array = np.asarray(values)
        parts = array[0].T if array.ndim == 3 else array[0][np.newaxis, :]  # rows x features [x outputs]
    return base, np.asarray(parts, dtype=float)


def feature_columns(preprocessing: Any, names: list[str], inputs: list[str]) -> dict[str, str]:
    """The input column each encoded feature comes from: itself, or the column a one-hot name starts with."""
    from sklearn.compose import ColumnTransformer

    groups: list[tuple[list[str], list[str]]] = []  # (encoded names, input columns) per transformer
    transformer = preprocessing[-1] if len(preprocessing) else None
    if isinstance(transformer, ColumnTransformer):
        for name, _, columns in transformer.transformers_:
            where = transformer.output_indices_.get(name, slice(0, 0))
            groups.append((names[where], [str(column) for column in np.atleast_1d(columns)]))
    else:
        groups.append((names, inputs))
    mapping = {}
    for encoded, columns in groups:
        for name in encoded:
            matches = [c for c in columns if name == c or name.startswith(f"{c}_")]
            mapping[name] = max(matches, key=len) if matches else name
    return mapping


def decision_text(last: Any, probabilities: dict[str, float] | None, prediction: Any) -> str | None:
    """How the label follows from the probabilities (decision.py), with the numbers that decided it."""
    if probabilities is None:
        return None
    priors = getattr(last, "priors_", None)
    if priors is None:
        return f"most likely class: {prediction}"
    ratios = ", ".join(
        f"{label} {p / prior:.3g}" for (label, p), prior in zip(probabilities.items(), priors, strict=True)
    )
    why = f"the class whose probability most exceeds its training share (p/share: {ratios})"
    return f"balanced: {why} -> {prediction}"


def _unwrapped(last: Any) -> Any:
    """The fitted estimator inside the decision rule (decision.BalancedDecision), if any."""
    inner = getattr(last, "estimator_", None)
    return inner if inner is not None and hasattr(last, "priors_") else last


def _preprocessing_steps(preprocessing: Any, frame: Any) -> list[Step]:
    """Each preprocessing step's output; inside a ColumnTransformer, each of its pipelines' steps."""
    from sklearn.compose import ColumnTransformer

    steps: list[Step] = []
    current = frame
    for name, step in preprocessing.steps:
        if isinstance(step, ColumnTransformer):
            steps += _column_steps(name, step, current)
        output = step.transform(current)
        names = _feature_names_of(step, np.asarray(output).shape[1])
        steps.append(Step(name, dict(zip(names, map(_plain, np.asarray(output)[0]), strict=True))))
        current = output
    return steps


def _column_steps(prefix: str, transformer: Any, frame: Any) -> list[Step]:
    steps = []
    for name, part, columns in transformer.transformers_:
        if part == "drop" or len(np.atleast_1d(columns)) == 0:
            continue
        names = [str(column) for column in np.atleast_1d(columns)]
        current = frame[names]
        for sub, step in getattr(part, "steps", []):
            current = step.transform(current)
            names = _feature_names_of(step, np.asarray(current).shape[1], names)
            values = dict(zip(names, map(_plain, np.asarray(current)[0]), strict=True))
            steps.append(Step(f"{prefix}/{name}/{sub}", values))
    return steps


def _feature_names(preprocessing: Any, count: int) -> list[str]:
    return _feature_names_of(preprocessing, count)


def _feature_names_of(step: Any, count: int, given: list[str] | None = None) -> list[str]:
    try:
        names = [str(name) for name in step.get_feature_names_out(given)]
    except (AttributeError, ValueError, TypeError):
        names = []
    return names if len(names) == count else [f"x{index}" for index in range(count)]


def _frame(inputs: list[str], row: dict[str, Any]):
    from .fast_path import rows_frame as frame

    return frame(inputs, [{name: row.get(name) for name in inputs}])


def _plain(value: Any) -> Any:
    """A JSON-ready value: numpy scalars as Python's, NaN as None (missing)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def render_text(explanation: Explanation, top: int = 10) -> str:
    """The explanation for a person: each step, the score and the largest contributions."""
    lines = [f"model: {explanation.model}" if explanation.model else "model"]
    for number, step in enumerate(explanation.steps, start=1):
        lines.append(f"{number}. {step.name}")
        lines += [f"     {name} = {_shown(value)}" for name, value in step.values.items()]
    outputs = explanation.outputs
    method = "exact (coefficient x value)" if explanation.method == "linear" else "SHAP (TreeExplainer)"
    lines.append(f"contributions to the {explanation.score}, by input column, {method}:")
    header = ["column", *outputs]
    table: list[list[Any]] = [["base", *(explanation.base[out] for out in outputs)]]
    grouped = explanation.by_input()
    ranked = sorted(grouped, key=lambda column: -max(abs(value) for value in grouped[column].values()))
    table += [[column, *(grouped[column][out] for out in outputs)] for column in ranked[:top]]
    if len(ranked) > top:
        rest = ranked[top:]
        table.append([f"({len(rest)} more)", *(sum(grouped[c][out] for c in rest) for out in outputs)])
    table.append([f"= {explanation.score}", *(explanation.raw[out] for out in outputs)])
    width = max(len(str(row[0])) for row in [header, *table])
    lines.append("  " + header[0].ljust(width) + "".join(f"{out:>14}" for out in outputs))
    for row in table:
        lines.append("  " + str(row[0]).ljust(width) + "".join(f"{value:>+14.6g}" for value in row[1:]))
    gap = max(additivity_gaps(explanation).values(), default=0.0)
    lines.append(f"  (base + contributions = the model's {explanation.score}: checked, gap {gap:.2g})")
    if explanation.decision:
        lines.append(f"label: {explanation.decision}")
    lines.append(f"prediction: {_shown(explanation.prediction)}")
    return "\n".join(lines)


def _shown(value: Any) -> str:
    if value is None:
        return "(missing)"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
