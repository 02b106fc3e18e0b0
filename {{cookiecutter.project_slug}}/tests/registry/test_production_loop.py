"""The production loop end to end, with real processes: a registered champion served by `serve`
with a degraded challenger in shadow, traffic in which one input shifts, the true labels of
the first requests sent back through POST /feedback, and `monitor`, which must raise exactly
the alerts these faults call for and no other."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pandas as pd
import pytest
from registry_helpers import Project, serve, tracking

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.data import write_frame
from {{ cookiecutter.package_name }}.deploy.registry import CHALLENGER
from {{ cookiecutter.package_name }}.deploy.servers import request
from {{ cookiecutter.package_name }}.monitoring.drift import column_drift
from {{ cookiecutter.package_name }}.monitoring.quality import ONLINE_METRIC, metric
from {{ cookiecutter.package_name }}.pipeline.train import fit
from {{ cookiecutter.package_name }}.served_log import newest_records

pytestmark = pytest.mark.registry

BATCH = 10  # rows per request
LABELLED = 100  # rows whose true labels come back (the monitor needs min_labels: 50)
SHIFTED = 150  # rows after them with one input moved to a single value the contract allows
LOGGED_WITHIN = 30.0  # seconds for the server's log writer to flush a request (and its shadow)


def degraded(settings, train_set: pd.DataFrame):
    """A model trained on wrong targets (classes rotated, numbers mirrored): what a broken label
    join upstream produces, and what an offline metric computed before the break does not show."""
    target = settings.data.target
    frame = train_set.copy()
    if settings.task == "classification":
        classes = sorted(frame[target].astype(str).unique())
        rotate = {label: classes[(i + 1) % len(classes)] for i, label in enumerate(classes)}
        frame[target] = frame[target].astype(str).map(rotate).astype(train_set[target].dtype)
    else:
        frame[target] = 2 * frame[target].mean() - frame[target]
    return fit(frame, settings)


def shifted(rows: list[dict], contract, inputs: list[str]) -> tuple[list[dict], str]:
    """Every row with one input at the largest value (or last category) the contract allows, as when
    an upstream system changes its units or its defaults."""
    for name in inputs:
        rule = contract.columns[name]
        if rule.type in ("integer", "number") and rule.max is not None:
            value = rule.max if rule.type == "number" else int(rule.max)
            return [{**row, name: value} for row in rows], name
        if rule.type == "category" and rule.values:
            return [{**row, name: rule.values[-1]} for row in rows], name
    pytest.fail("no input with a bounded number or a category to shift")


def prepared(project: Project, model, train_set: pd.DataFrame, test_set: pd.DataFrame) -> None:
    """What the pipeline leaves for the monitor (the training data and the model's held-out
    answers; `project.train` writes its test metric), and shadow mode on for the challenger."""
    paths = project.paths
    write_frame(train_set, paths.train)
    paths.reports.mkdir(exist_ok=True)
    answers = model.predict(test_set[list(model.feature_names_in_)])
    pd.DataFrame({"predicted": answers}).to_csv(paths.predictions, index=False)
    params = paths.params
    params.write_text(params.read_text().replace("  shadow: ''", "  shadow: challenger"))


def sent(url: str, rows: list[dict]) -> list[str]:
    """POST the rows, BATCH per request; the request ids the server answered with."""
    ids = []
    for start in range(0, len(rows), BATCH):
        status, body = request(url, "POST", "/predict", {"rows": rows[start : start + BATCH]})
        assert status == 200, body
        ids.append(str(body["request_id"]))  # type: ignore[index]
    return ids


def until_logged(folder: Path, ids: list[str], within: float = LOGGED_WITHIN) -> None:
    """Until every request id has its answered record and its shadow record in the log."""
    deadline, wanted = time.monotonic() + within, set(ids)
    while True:
        seen = [(r.get("request_id"), r.get("shadow") is True) for r in newest_records(folder)]
        if all((i, False) in seen and (i, True) in seen for i in wanted):
            return
        if time.monotonic() > deadline:
            pytest.fail(f"not all {len(wanted)} requests were logged with their shadow in {within:g} s")
        time.sleep(0.2)


def monitored(project: Project) -> dict:
    report = project.root / "monitor.json"
    with tracking(project.uri, project.commit):
        code = main(["--root", str(project.root), "monitor", "--json", str(report)])
    assert code in (0, 1), "the monitor could not judge"
    return json.loads(report.read_text())


def test_monitor_raises_exactly_the_alerts_of_the_injected_faults_on_live_traffic(
    new_project, model, train_set, test_set, contract, settings
):
    project = new_project()
    inputs = list(model.feature_names_in_)
    target = settings.data.target
    # Traffic like the training data (held-out rows of a time split are later, and drift by design).
    traffic = train_set.sample(n=LABELLED + SHIFTED, random_state=3)
    labelled = traffic.head(LABELLED)
    truth = labelled[target].tolist()
    name = ONLINE_METRIC[settings.task]
    offline = metric(list(zip(model.predict(labelled[inputs]).tolist(), truth, strict=True)), settings.task)
    assert offline is not None
    prepared(project, model, train_set, test_set)

    # Both versions registered with the champion's offline metric: the challenger's break is not in it.
    project.train(model, train_set, metrics={"model": {name: offline}})
    assert project.cli("register")[0] == 0
    champion = str(project.alias(CHALLENGER))
    project.canaried(champion)
    assert project.cli("promote")[0] == 0
    project.train(degraded(settings, train_set), train_set, metrics={"model": {name: offline}})
    assert project.cli("register")[0] == 0
    challenger = str(project.alias(CHALLENGER))
    assert challenger != champion

    rows = json.loads(traffic[inputs].to_json(orient="records"))
    moved, column = shifted(rows[LABELLED:], contract, inputs)
    folder = project.root / "logs" / "predictions"
    server = serve(project)
    try:
        assert request(server.url, "GET", "/version")[1]["challenger_version"] == challenger  # type: ignore[index]
        ids = sent(server.url, rows[:LABELLED])
        ids_moved = sent(server.url, moved)
        until_logged(folder, ids + ids_moved)
        labels = [
            {"request_id": i, "row": row, "label": truth[k * BATCH + row]}
            for k, i in enumerate(ids)
            for row in range(BATCH)
        ]
        status, body = request(server.url, "POST", "/feedback", {"labels": labels})
        assert (status, body) == (200, {"accepted": LABELLED}), body
    finally:
        server.stop()

    verdict = monitored(project)
    expected = {f"drift: {column}", f"online {name}: version {challenger}"}
    # Moving an input moves the answers too, where the model leans on it: the monitor's own drift
    # test decides whether the served answers moved past its bounds.
    served = model.predict(pd.DataFrame(rows[:LABELLED] + moved)[inputs]).tolist()
    reference = pd.read_csv(project.paths.predictions)["predicted"].tolist()
    answers = column_drift("predictions", settings.task == "regression", reference, served)
    if answers.drifted(project.settings.monitor.max_psi, project.settings.monitor.alpha):
        expected.add("prediction drift: predictions")
    alerts = {check["name"] for check in verdict["checks"] if check["passed"] is False}
    assert alerts == expected, verdict
    judged = {check["name"]: check for check in verdict["checks"]}
    assert judged[f"online {name}: version {champion}"]["passed"] is True  # labels that agree with it
    assert judged["training/serving skew"]["passed"] is True  # the champion, recomputed by its pipeline
    assert verdict["window"]["shadow_rows"] == LABELLED + SHIFTED
