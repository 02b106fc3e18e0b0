"""`monitor`: read the window, compare it with training, judge; each part in its own module."""

from __future__ import annotations

import json

from ..config.settings import Settings
from ..paths import Paths
from ..schema import Contract
from ..served_log import INVALID_INPUT
from .drift import column_drift
from .latency import latency_by_version, slowdowns
from .quality import ONLINE_METRIC, Quality, online_quality
from .verdict import (
    Check,
    contract_check,
    correlation_check,
    drift_check,
    latency_check,
    non_finite_check,
    quality_check,
)
from .window import ServedRow, served_rows, stored_labels, window_records

NUMERIC, CATEGORICAL = ("integer", "number"), ("category", "boolean")  # text and dates are not compared


class MonitorError(ValueError):
    """The monitor cannot judge (exit 2): too few served rows, or no training data to compare with."""


def monitor(settings: Settings, paths: Paths, now: float, hours: float) -> tuple[list[Check], dict]:
    """The checks of the last `hours` before `now`, and what the window held."""
    from ..feedback import label_folder
    from ..schema import load_contract
    from ..served_log import local_folder, shown

    log = local_folder(settings.serving.log, paths)
    logged = window_records(log, now - hours * 3600)
    records = [record for record in logged if record.get("shadow") is not True]  # what clients received
    rows = served_rows(records)
    limits = settings.monitor
    if len(rows) < limits.min_rows:
        raise MonitorError(
            f"{len(rows)} served rows in the last {hours:g} h of {shown(log, paths.root)}: "
            f"fewer than monitor.min_rows ({limits.min_rows}), nothing judged"
        )
    labels = stored_labels(label_folder(settings.serving.log, paths))
    answered = [row for row in rows if row.output is not None]
    contract, reference = load_contract(paths.contract), reference_frame(paths)
    checks = input_drift(settings, contract, reference, answered)
    if settings.data.time_column:
        checks.append(age_check(settings, paths, reference, rows))
    checks.append(prediction_drift(settings, paths, answered))
    checks.append(skew_check(settings, paths, contract, answered))
    refused = sum(record.get("error") == INVALID_INPUT for record in records)
    checks.append(contract_check(refused, len(records), limits))
    checks.append(non_finite_check(len(rows) - len(answered), len(rows), limits))
    for version, previous in slowdowns(latency_by_version(records)):
        checks.append(latency_check(version, previous, limits))
    shadowed = served_rows([record for record in logged if record.get("shadow") is True])
    checks += quality_checks(settings, paths, online_quality(rows + shadowed, labels, settings.task))
    window = {
        "hours": hours,
        "requests": len(records),
        "rows": len(rows),
        "versions": list(dict.fromkeys(row.model_version for row in rows)),
        "shadow_rows": len(shadowed),
        "labelled": sum((row.request_id, row.row) in labels for row in rows),
    }
    return checks, window


def quality_checks(settings: Settings, paths: Paths, qualities: list[Quality]) -> list[Check]:
    """Each version's online quality against its own registered offline metric (else metrics.json's),
    and whether the two rank the versions alike (M2). The shadow's versions count too."""
    from .offline import registered_offline

    name, limits = ONLINE_METRIC[settings.task], settings.monitor
    workspace = offline_metric(paths, name)
    labelled = [q for q in qualities if q.online is not None and q.labelled >= limits.min_labels]
    own, unread = registered_offline(settings, paths, [q.model_version for q in labelled], name)
    checks = [
        quality_check(q, own[q.model_version], settings.task, limits, "registry")
        if q.model_version in own
        else quality_check(q, workspace, settings.task, limits)
        for q in qualities
    ]
    pairs = [
        (q.model_version, own[q.model_version], q.online)
        for q in labelled
        if q.model_version in own and q.online is not None
    ]
    return [*checks, correlation_check(pairs, limits, unread)]


def reference_frame(paths: Paths):
    import pandas as pd

    if not paths.train.exists():
        raise MonitorError(
            f"{paths.train.relative_to(paths.root)} is missing: run the pipeline (dvc repro or dvc pull)"
        )
    return pd.read_csv(paths.train)


def input_drift(settings: Settings, contract: Contract, reference, rows: list[ServedRow]) -> list[Check]:
    """One check per served input the contract types as a number, a category or a boolean."""
    names = (
        [name for name in rows[0].inputs if name in reference.columns and name in contract.columns]
        if rows
        else []
    )
    checks = []
    for name in names:
        kind = contract.columns[name].type
        if kind in NUMERIC or kind in CATEGORICAL:
            served = [row.inputs.get(name) for row in rows]
            drift = column_drift(name, kind in NUMERIC, reference[name].tolist(), served)
            checks.append(drift_check(drift, settings.monitor))
    return checks


def age_check(settings: Settings, paths: Paths, reference, rows: list[ServedRow]) -> Check:
    """The model's age on the served data: the latest served time past the training data's end, in
    the backtest's unit, against its maximum age (reports/staleness.json)."""
    import pandas as pd

    from ..pipeline.backtest import age_between
    from ..staleness import StalenessUnknown, read_report, recommended_max_age, too_old

    column = str(settings.data.time_column)
    served = [row.inputs[column] for row in rows if row.inputs.get(column) is not None]
    try:
        report = read_report(paths.staleness)
        limit = f"<= {recommended_max_age(report):g} {report.get('age_unit', '')}".strip()
    except StalenessUnknown as err:
        return Check("model age", "not judged", str(err), None)
    if not served:
        return Check("model age", "not judged", f"{column} is not among the served inputs", None)
    trained = reference[column]
    dates = not pd.api.types.is_numeric_dtype(trained)
    latest = max(moment(value, dates) for value in served)
    end = max(moment(value, dates) for value in trained.dropna())
    age = age_between(end, latest)
    value = f"{age:g} (served up to {latest}, trained up to {end})"
    return Check("model age", value, limit, not too_old(age, report))


def moment(value: object, dates: bool):
    """A time column's value as the backtest measures age: a timestamp (days), else a number."""
    import pandas as pd

    return pd.Timestamp(str(value)) if dates else float(value)  # type: ignore[arg-type]


def skew_check(settings: Settings, paths: Paths, contract: Contract, rows: list[ServedRow]) -> Check:
    """The latest version's served answers against its own pipeline on the logged inputs: the
    server answers through its compiled fast path, training scores with the pipeline."""
    from .skew import skewed_rows

    name = "training/serving skew"
    if not rows:
        return Check(name, "not judged", "no answered rows", None)
    version = rows[-1].model_version
    model = served_version(settings, paths, contract, version)
    if isinstance(model, str):
        return Check(name, "not judged", model, None)
    mine = [row for row in rows if row.model_version == version][-settings.monitor.skew_rows :]
    skewed = skewed_rows(model, mine)
    rate = skewed / len(mine)
    value = (
        f"{rate:.4f} ({skewed} of {len(mine)} rows of version {version} answered otherwise by its pipeline)"
    )
    return Check(
        name, value, f"<= {settings.monitor.max_skew_rate:g}", rate <= settings.monitor.max_skew_rate
    )


def served_version(settings: Settings, paths: Paths, contract: Contract, version: str):
    """The model that answered as `version`: models/model when it is that one, else the registry's
    version of that number; the reason as text when neither can be loaded."""
    from ..serving.errors import ServeError
    from ..serving.sources import LocalSource, parse_source

    try:
        local = LocalSource(paths.model, paths.root).load(contract)
        if local.version == version:
            return local
        if not version.isdigit():
            return f"version {version} is neither models/model ({local.version}) nor a registered version"
        registered = f"models:/{settings.mlflow.registered_model}/{version}"
        return parse_source(registered, settings, paths).load(contract)
    except (ServeError, ValueError) as err:
        return f"version {version} cannot be loaded: {err}"


def prediction_drift(settings: Settings, paths: Paths, rows: list[ServedRow]) -> Check:
    """The served answers against the model's answers on the test set (reports/predictions.csv)."""
    import pandas as pd

    if not paths.predictions.exists():
        raise MonitorError(f"{paths.predictions.relative_to(paths.root)} is missing: run the pipeline first")
    reference = pd.read_csv(paths.predictions)["predicted"].tolist()
    numeric = settings.task == "regression"
    drift = column_drift("predictions", numeric, reference, [row.output for row in rows])
    return drift_check(drift, settings.monitor, what="prediction drift")


def offline_metric(paths: Paths, name: str) -> float | None:
    """The model's metric on the test set, from metrics.json; None when it has none."""
    try:
        value = json.loads(paths.metrics.read_text())["model"][name]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return float(value) if isinstance(value, int | float) else None
