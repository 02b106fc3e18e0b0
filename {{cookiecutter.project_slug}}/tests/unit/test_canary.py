"""The canary's pure part: recorded replies -> agreement, error rate, p99 and a verdict; the rows to replay.

Each check is shown to catch its fault: a challenger that disagrees, fails or is slow is refused;
and rows that anonymous callers put in the prediction log are never replayed.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import time
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from {{ cookiecutter.package_name }} import served_log
from {{ cookiecutter.package_name }}.config.canary import CanarySettings
from {{ cookiecutter.package_name }}.deploy import canary
from {{ cookiecutter.package_name }}.deploy.canary import (
    CanaryError,
    Reply,
    agreement,
    error_rate,
    holdout_rows,
    judge,
    only,
    pick_rows,
    recent_rows,
    reply_from,
    with_figures,
)
from {{ cookiecutter.package_name }}.deploy.figures import Figures
from {{ cookiecutter.package_name }}.paths import Paths
from {{ cookiecutter.package_name }}.served_log import file_name
from {{ cookiecutter.package_name }}.serving.access import Access
from {{ cookiecutter.package_name }}.serving.app import create_app
from {{ cookiecutter.package_name }}.serving.sources import Served, serve_model

pytestmark = pytest.mark.unit

LIMITS = CanarySettings(sample_size=10, min_agreement=0.9, tolerance=0.1, max_error_rate=0.1, max_p99_ms=50)


def label(value: str, yes: float, ms: float = 1.0) -> Reply:
    return Reply(True, ms, value, {"Yes": yes, "No": round(1 - yes, 6)})


def number(value: float, ms: float = 1.0) -> Reply:
    return Reply(True, ms, value)


FAILED = Reply(False, 1.0)


def test_a_server_answer_becomes_a_reply():
    body = {"model_version": "3", "predictions": ["Yes"], "probabilities": [{"Yes": 0.8, "No": 0.2}]}
    assert reply_from(200, body, 2.5) == Reply(True, 2.5, "Yes", {"Yes": 0.8, "No": 0.2})
    assert reply_from(200, {"predictions": [41.5]}, 1.0) == Reply(True, 1.0, 41.5)
    for status, broken in ((422, {"error": "invalid input: age"}), (200, {}), (200, {"predictions": [1, 2]})):
        assert reply_from(status, broken, 1.0) == Reply(False, 1.0)
    assert not reply_from(500, None, 1.0).ok


def test_classifiers_agree_on_label_and_close_probabilities():
    champion = [label("Yes", 0.80), label("Yes", 0.70), label("No", 0.30), label("Yes", 0.9)]
    assert agreement(champion, champion, "classification", 0.1) == 1.0
    close = [label("Yes", 0.85), label("Yes", 0.65), label("No", 0.35), label("Yes", 0.95)]
    assert agreement(close, champion, "classification", 0.1) == 1.0
    # Same labels, but probabilities flattened: what a model trained on shuffled labels does.
    flat = [label("Yes", 0.55), label("Yes", 0.55), label("No", 0.45), label("Yes", 0.55)]
    assert agreement(flat, champion, "classification", 0.1) == 0.0
    other_label = [label("No", 0.75), *close[1:]]
    assert agreement(other_label, champion, "classification", 0.1) == 0.75


def test_three_classes_agree_only_when_every_class_probability_is_close():
    champion = [Reply(True, 1.0, "left", {"stayed": 0.2, "downgraded": 0.3, "left": 0.5})]
    close = [Reply(True, 1.0, "left", {"stayed": 0.25, "downgraded": 0.25, "left": 0.5})]
    assert agreement(close, champion, "classification", 0.1) == 1.0
    # The same label and the same probability for it, but the other two classes swapped.
    swapped = [Reply(True, 1.0, "left", {"stayed": 0.3, "downgraded": 0.2, "left": 0.5})]
    assert agreement(swapped, champion, "classification", 0.05) == 0.0
    other = [Reply(True, 1.0, "downgraded", {"stayed": 0.2, "downgraded": 0.3, "left": 0.5})]
    assert agreement(other, champion, "classification", 0.1) == 0.0


def test_agreement_counts_only_rows_both_answered():
    champion = [label("Yes", 0.8), label("Yes", 0.7), FAILED, label("No", 0.3)]
    challenger = [label("Yes", 0.8), FAILED, label("Yes", 0.5), label("Yes", 0.6)]
    assert agreement(challenger, champion, "classification", 0.1) == 0.5
    assert agreement([FAILED, FAILED], [label("Yes", 0.8), FAILED], "classification", 0.1) == 0.0
    with pytest.raises(ValueError):
        agreement([FAILED], [FAILED, FAILED], "classification", 0.1)


def test_regressors_agree_within_a_share_of_the_champions_spread():
    champion = [number(float(value)) for value in range(0, 101)]  # spread (p5..p95) = 90
    shifted = [number(reply.prediction + 8.0) for reply in champion]  # type: ignore[operator]
    assert agreement(shifted, champion, "regression", 0.1) == 1.0  # 8 <= 0.1 * 90
    far = [number(reply.prediction + 10.0) for reply in champion]  # type: ignore[operator]
    assert agreement(far, champion, "regression", 0.1) == 0.0
    constant = [number(5.0)] * 3  # no spread: only (nearly) equal predictions agree
    assert agreement(constant, constant, "regression", 0.1) == 1.0
    assert agreement([number(5.1)] * 3, constant, "regression", 0.1) == 0.0


def test_error_rate():
    assert error_rate([FAILED, number(1.0), number(2.0), number(3.0)]) == 0.25
    assert error_rate([]) == 1.0


def good_pair(rows: int = 20) -> tuple[list[Reply], list[Reply]]:
    champion = [label("Yes", 0.6 + i / 100) for i in range(rows)]
    return list(champion), champion


def test_a_challenger_that_answers_like_the_champion_passes():
    challenger, champion = good_pair()
    verdict = judge(challenger, champion, LIMITS, "classification")
    assert verdict.passed and not verdict.first_deploy
    assert [check.name for check in verdict.checks] == ["agreement", "error_rate", "p99_ms"]
    assert verdict.rows == 20
    assert verdict.champion_error_rate == 0.0


def test_a_challenger_that_disagrees_is_refused():
    _, champion = good_pair()
    flipped = [label("No", 0.4) for _ in champion]
    verdict = judge(flipped, champion, LIMITS, "classification")
    assert not verdict.passed
    assert [check.name for check in verdict.checks if not check.passed] == ["agreement"]


def test_a_challenger_that_fails_requests_is_refused():
    challenger, champion = good_pair()
    challenger[:3] = [FAILED] * 3  # 15% > 10%
    verdict = judge(challenger, champion, LIMITS, "classification")
    assert [check.name for check in verdict.checks if not check.passed] == ["error_rate"]


def test_a_slow_challenger_is_refused():
    challenger, champion = good_pair()
    challenger[-1] = label(challenger[-1].prediction, 0.79, ms=500.0)  # type: ignore[arg-type]
    verdict = judge(challenger, champion, LIMITS, "classification")
    assert [check.name for check in verdict.checks if not check.passed] == ["p99_ms"]
    assert verdict.checks[-1].value == 500.0


def test_first_deploy_is_judged_on_errors_and_latency_only():
    challenger, _ = good_pair()
    verdict = judge(challenger, None, LIMITS, "classification")
    assert verdict.passed and verdict.first_deploy
    assert verdict.checks[0].value is None and "first deploy" in verdict.checks[0].limit
    assert not judge([FAILED] * 5, None, LIMITS, "classification").passed
    with pytest.raises(ValueError):
        judge([], None, LIMITS, "classification")


TWIN = Figures(p50_ms=2.0, p99_ms=6.0, requests_per_s=400.0, peak_rss_mb=180.0, fit_seconds=12.0)
COSTS = CanarySettings(
    max_slowdown=1.5, max_memory_growth=1.5, max_training_slowdown=3.0, min_training_seconds=5.0
)


def costed(challenger: Figures, champion: Figures | None) -> canary.CanaryVerdict:
    replies, theirs = good_pair()
    return with_figures(judge(replies, theirs, COSTS, "classification"), challenger, champion, COSTS)


def refused(verdict: canary.CanaryVerdict) -> list[str]:
    return [check.name for check in verdict.checks if not check.passed]


def test_a_challenger_that_costs_what_the_champion_costs_passes():
    verdict = costed(TWIN, TWIN)
    assert verdict.passed and verdict.figures == TWIN and verdict.champion_figures == TWIN
    costs = {check.name: check.value for check in verdict.checks[-3:]}
    assert costs == {"slowdown": 1.0, "memory": 1.0, "train_time": 1.0}


def test_a_challenger_twice_as_slow_per_request_is_refused_on_slowdown():
    slower = dataclasses.replace(TWIN, p50_ms=4.0)  # still far under max_p99_ms
    verdict = costed(slower, TWIN)
    assert refused(verdict) == ["slowdown"] and not verdict.passed


def test_a_challenger_whose_server_needs_twice_the_memory_is_refused():
    assert refused(costed(dataclasses.replace(TWIN, peak_rss_mb=360.0), TWIN)) == ["memory"]


def test_a_challenger_that_trains_four_times_as_long_is_refused_and_quick_fits_are_not_judged():
    assert refused(costed(dataclasses.replace(TWIN, fit_seconds=48.0), TWIN)) == ["train_time"]
    quick = dataclasses.replace(TWIN, fit_seconds=0.1)
    assert costed(dataclasses.replace(TWIN, fit_seconds=2.0), quick).passed  # 20x, but both under 5 s


def test_cost_checks_are_not_applicable_without_a_champion_or_a_figure():
    first = costed(TWIN, None)
    assert first.passed and [check.value for check in first.checks[-3:]] == [None, None, None]
    assert all("first deploy" in check.limit for check in first.checks[-3:])
    unmeasured = costed(dataclasses.replace(TWIN, peak_rss_mb=None, fit_seconds=None), TWIN)
    assert unmeasured.passed
    assert {c.name: c.limit for c in unmeasured.checks if c.value is None} == {
        "memory": "n/a: not measured for both",
        "train_time": "n/a: not measured for both",
    }


def test_the_printed_verdict_shows_each_version_figures():
    run = canary.CanaryRun(costed(dataclasses.replace(TWIN, peak_rss_mb=360.0), TWIN), "3", "2", "x")
    printed = canary.format_run(run)
    assert "  memory" in printed and "2.00" in printed and "FAIL" in printed
    shown = "challenger figures: p50 2.0 ms, p99 6.0 ms, 400 requests/s, peak RSS 360 MB, fit 12.00 s"
    assert shown in printed
    assert "champion figures: p50 2.0 ms" in printed
    assert run.as_dict()["figures"]["peak_rss_mb"] == 360.0


def write_log(folder: Path, records: list[dict], tail: str = "", pid: int = 1, age: float = 0) -> None:
    """One process's log file in `folder`, last written `age` seconds ago."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / file_name(time.time() - age, "host", pid, 1)
    path.write_text("".join(json.dumps(record) + "\n" for record in records) + tail)
    os.utime(path, (time.time() - age, time.time() - age))


def test_recent_rows_are_the_latest_trusted_rows_of_the_prediction_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    log = tmp_path / "predictions"
    records = []
    untrusted = [{"trusted": False}, {}, {"trusted": "yes"}]  # anonymous, unmarked (older), a mark not true
    for i in range(50):
        records.append({"inputs": [{"n": 2 * i}, {"n": 2 * i + 1}], "outputs": [0, 0], "trusted": True})
        records += [{"inputs": [{"n": -1}], "outputs": [1], **mark} for mark in untrusted]
    # Two processes' files: the older one holds the first 30 requests.
    write_log(log, records[:120], pid=1, age=60)
    being_written = '{"trusted": true, "inputs": [{"n": "half-writ'
    write_log(log, records[120:], tail=being_written, pid=2)
    not_a_log_file = log / "notes.jsonl"
    not_a_log_file.write_text(json.dumps({"inputs": [{"n": -3}], "trusted": True}) + "\n")
    expected = [{"n": n} for n in range(90, 100)]
    assert recent_rows(log, 10) == expected
    monkeypatch.setattr(served_log, "READ_BLOCK", 64)  # many blocks: lines cut at block edges are joined
    assert recent_rows(log, 10) == expected
    assert recent_rows(log, 1000) == [{"n": n} for n in range(100)]
    assert recent_rows(tmp_path / "none", 10) == []


def test_holdout_rows_drop_the_target_and_carry_missing_values_as_null(tmp_path: Path):
    test = tmp_path / "test.csv"
    frame = pd.DataFrame({"age": [30, None, 41], "colour": ["White", "Black", None], "y": [1, 0, 1]})
    frame.to_csv(test, index=False)
    rows = holdout_rows(test, "y", 10, seed=0)
    assert len(rows) == 3
    assert all("y" not in row for row in rows)
    assert {row["age"] for row in rows} == {30.0, None, 41.0}
    assert len(holdout_rows(test, "y", 2, seed=0)) == 2
    assert holdout_rows(test, "y", 2, seed=0) == holdout_rows(test, "y", 2, seed=0)  # seeded


def test_rows_come_from_the_log_when_it_has_enough_else_the_test_set(tmp_path: Path, settings):
    paths = Paths(tmp_path)
    size = settings.canary.sample_size
    with pytest.raises(CanaryError, match="no rows to replay"):
        pick_rows(settings, paths)
    target = settings.data.target
    paths.test.parent.mkdir(parents=True)
    pd.DataFrame({"x": range(size + 5), target: 0}).to_csv(paths.test, index=False)
    log = tmp_path / "logs" / "predictions"
    write_log(log, [{"inputs": [{"x": -1}] * (size - 1), "trusted": True}, {"inputs": [{"x": -2}] * size}])
    rows, origin = pick_rows(settings, paths)
    assert origin == "data/prepared/test.csv" and len(rows) == size and target not in rows[0]
    write_log(log, [{"inputs": [{"x": -1}] * size, "trusted": True}, {"inputs": [{"x": -2}] * size}])
    rows, origin = pick_rows(settings, paths)
    assert origin == "logs/predictions" and rows == [{"x": -1}] * size


def test_only_the_model_inputs_are_sent():
    rows = [{"a": 1, "b": 2, "extra": 3}, {"a": 4}]
    assert only(rows, ["a", "b"]) == [{"a": 1, "b": 2}, {"a": 4, "b": None}]


# --- the prediction log cannot be used to steer the canary ------------------------------------------

TRUSTED = Access(admin_token="adm1n-t0ken", trusted_token="tru5ted-t0ken")


def replies(served: Served, rows: list[dict]) -> list[Reply]:
    """What the server would answer to each row alone (in-process; the latency does not matter here)."""
    predictions, probabilities = served.predict(only(rows, served.inputs))
    if probabilities is None:
        return [Reply(True, 1.0, prediction) for prediction in predictions]
    classes = served.classes or ()
    pairs = zip(predictions, probabilities, strict=True)
    return [Reply(True, 1.0, label, dict(zip(classes, shares, strict=True))) for label, shares in pairs]


def verdict(challenger: Served, champion: Served, rows: list[dict], settings) -> canary.CanaryVerdict:
    return judge(replies(challenger, rows), replies(champion, rows), settings.canary, settings.task)


def chosen_rows(challenger: Served, champion: Served, rows: list[dict], settings) -> list[dict]:
    """What an attacker sends: `canary.sample_size` rows on which the bad challenger agrees."""
    size, task, tolerance = settings.canary.sample_size, settings.task, settings.canary.tolerance
    ours, theirs = replies(challenger, rows), replies(champion, rows)
    if task == "classification":
        answers = zip(rows, ours, theirs, strict=True)
        agree = [row for row, a, b in answers if agreement([a], [b], task, tolerance) == 1.0]
        return (agree * size)[:size]
    # A regressor agrees within a share of the champion's spread: widen it with a few extreme rows,
    # and fill the rest with the row on which the two are closest.
    by_answer = sorted(range(len(rows)), key=lambda i: theirs[i].prediction)
    closest = min(range(len(rows)), key=lambda i: abs(ours[i].prediction - theirs[i].prediction))
    edge = math.ceil(size * 0.05) + 1
    return [rows[by_answer[0]]] * edge + [rows[by_answer[-1]]] * edge + [rows[closest]] * (size - 2 * edge)


@pytest.fixture(scope="module")
def pair(model, shuffled_model, contract) -> tuple[Served, Served]:
    """A challenger that should be refused (trained on shuffled labels), and the champion."""
    return serve_model(shuffled_model, contract, "2"), serve_model(model, contract, "1")


@pytest.fixture
def project(tmp_path: Path, test_set: pd.DataFrame, contract, pair, settings):
    """A project folder with its test set, and the champion's server logging to logs/predictions/."""
    paths = Paths(tmp_path)
    paths.test.parent.mkdir(parents=True)
    test_set.to_csv(paths.test, index=False)
    log = tmp_path / "logs" / "predictions"
    _, champion = pair
    app = create_app(champion, contract, settings.serving, log, access=TRUSTED)
    return paths, app


def two_faced(champion: Served, bad: Served, known: list[dict]) -> Served:
    """A bad challenger that answers as the champion on the rows its author knows, and as `bad`
    on every other: the rows on which it agrees exist whatever the data."""
    keys = {json.dumps(row, sort_keys=True) for row in known}

    def predict(rows: list[dict]) -> tuple[list, list | None]:
        (good, good_p), (worse, worse_p) = champion.predict(rows), bad.predict(rows)
        use = [json.dumps(row, sort_keys=True) in keys for row in rows]
        labels = [g if u else w for g, w, u in zip(good, worse, use, strict=True)]
        if good_p is None or worse_p is None:
            return labels, None
        return labels, [g if u else w for g, w, u in zip(good_p, worse_p, use, strict=True)]

    return dataclasses.replace(bad, fast=predict)


def test_anonymous_rows_in_the_log_cannot_make_a_bad_challenger_pass(project, pair, settings, test_set):
    paths, app = project
    shuffled, champion = pair
    held_out = json.loads(test_set[list(champion.inputs)].to_json(orient="records"))
    challenger = two_faced(champion, shuffled, held_out[:5])
    chosen = chosen_rows(challenger, champion, held_out, settings)
    steered = verdict(challenger, champion, chosen, settings)
    assert steered.passed, "the chosen rows would steer the canary"
    with TestClient(app) as client:  # the attack: any caller's requests are logged
        sent = only(chosen, champion.inputs)
        for start in range(0, len(sent), 50):
            assert client.post("/predict", json={"rows": sent[start : start + 50]}).status_code == 200
    assert len(recent_rows(paths.root / "logs" / "predictions", 10 * len(chosen))) == 0
    rows, origin = pick_rows(settings, paths)
    assert origin == "data/prepared/test.csv"
    size, seed = settings.canary.sample_size, settings.split.seed
    assert rows == holdout_rows(paths.test, settings.data.target, size, seed)
    refused = verdict(challenger, champion, rows, settings)
    assert not refused.passed
    assert [check.name for check in refused.checks if not check.passed] == ["agreement"]
    chosen_agree, replayed_agree = steered.checks[0].value, refused.checks[0].value
    print(f"\nagreement: {chosen_agree:.2f} on the chosen rows, {replayed_agree:.2f} on the rows replayed")


def test_rows_from_a_trusted_source_are_replayed_and_newer_anonymous_ones_not(project, settings, test_set):
    paths, app = project
    size = settings.canary.sample_size
    inputs = list(app.state.serve.served.inputs)
    held_out = json.loads(test_set[inputs].to_json(orient="records"))
    traffic = (held_out * math.ceil(size / len(held_out)))[:size]  # a small test set is sent more than once
    with TestClient(app) as client:
        # The trusted source's token, then the admin's: both are trusted.
        for token, half in (("tru5ted-t0ken", traffic[: size // 2]), ("adm1n-t0ken", traffic[size // 2 :])):
            headers = {"Authorization": f"Bearer {token}"}
            assert client.post("/predict", json={"rows": half}, headers=headers).status_code == 200
        assert client.post("/predict", json={"rows": traffic[::-1]}).status_code == 200  # anonymous
    rows, origin = pick_rows(settings, paths)
    assert origin == "logs/predictions"
    assert rows == traffic
