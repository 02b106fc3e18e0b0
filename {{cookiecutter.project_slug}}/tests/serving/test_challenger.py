"""A second model beside the served one: in shadow it is scored on every answered request off the
request path and logged, and never changes or fails an answer; in a split it answers a sticky
share of the requests. The canary judges it from the shadow log (`canary --from-log`), and the
monitor reports its online quality without counting its answers as served."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serving_helpers import LOOPBACK_CLIENT

from {{ cookiecutter.package_name }}.config.reading import ConfigError
from {{ cookiecutter.package_name }}.config.serving import ServingSettings
from {{ cookiecutter.package_name }}.config.settings import load_settings
from {{ cookiecutter.package_name }}.deploy.canary import judge, shadow_pairs
from {{ cookiecutter.package_name }}.served_log import newest_records
from {{ cookiecutter.package_name }}.serving.access import Access
from {{ cookiecutter.package_name }}.serving.app import create_app
from {{ cookiecutter.package_name }}.serving.challenger import in_challenger_arm
from {{ cookiecutter.package_name }}.serving.errors import ServeError
from {{ cookiecutter.package_name }}.serving.sources import Served, serve_model

pytestmark = pytest.mark.serving

TRUSTED = "trusted-token-for-the-tests-0123"
AS_TRUSTED = {"Authorization": f"Bearer {TRUSTED}"}


@pytest.fixture(scope="module")
def degraded(shuffled_model, contract) -> Served:
    """A challenger that answers otherwise: trained on shuffled labels."""
    return serve_model(shuffled_model, contract, "test-2")


@pytest.fixture(scope="module")
def twin(model, contract) -> Served:
    """A challenger that answers like the served model: the same pipeline, another version."""
    return serve_model(model, contract, "test-3")


def app_with(contract, settings, served, challenger, folder, **serving):
    """An app serving `served` with `challenger` beside it; trusted requests carry AS_TRUSTED."""
    serving_settings = settings.serving.model_copy(update=serving)
    access = Access(trusted_token=TRUSTED, loopback=True)
    return create_app(served, contract, serving_settings, folder, None, access, challenger)


def shadow_count(client: TestClient, result: str, expected: int) -> bool:
    """Whether the shadow's counter reaches `expected` within a few seconds (it scores in the background)."""
    line = 'shadow_requests_total{result="' + result + '"} ' + str(float(expected))
    deadline = time.monotonic() + 10
    while line not in client.get("/metrics").text:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def records(folder: Path) -> list[dict]:
    return list(reversed(list(newest_records(folder))))


def send(client: TestClient, rows: list[dict], headers: dict | None = None, **extra) -> list[dict]:
    answers = []
    for row in rows:
        answer = client.post("/predict", json={**row, **extra}, headers=headers or {})
        assert answer.status_code == 200, answer.text
        answers.append(answer.json())
    return answers


# --- shadow --------------------------------------------------------------------------------------


def test_the_shadow_is_logged_beside_every_answer_and_answers_nobody(
    contract, settings, served, degraded, rows, tmp_path
):
    app = app_with(contract, settings, served, degraded, tmp_path, shadow="challenger")
    with TestClient(app, client=LOOPBACK_CLIENT) as client:
        answers = send(client, rows, AS_TRUSTED)
        assert shadow_count(client, "scored", len(rows))
        version = client.get("/version").json()
    assert {answer["model_version"] for answer in answers} == {served.version}
    assert version["challenger_version"] == degraded.version
    logged = records(tmp_path)
    served_records = [r for r in logged if not r.get("shadow")]
    shadow_records = [r for r in logged if r.get("shadow")]
    assert [r["request_id"] for r in served_records] == [a["request_id"] for a in answers]
    assert sorted(r["request_id"] for r in shadow_records) == sorted(a["request_id"] for a in answers)
    assert {r["arm"] for r in served_records} == {"champion"}
    assert {(r["model_version"], r["arm"]) for r in shadow_records} == {(degraded.version, "challenger")}
    by_id = {r["request_id"]: r for r in shadow_records}
    for row, answer in zip(rows, answers, strict=True):
        expected, _ = degraded.predict([row])
        assert by_id[answer["request_id"]]["outputs"] == expected


def test_a_shadow_share_scores_exactly_the_requests_whose_id_falls_in_it(
    contract, settings, served, twin, rows, tmp_path
):
    ids = [f"req-{number}" for number in range(120)]
    expected = {request_id for request_id in ids if in_challenger_arm(request_id, 0.25)}
    assert 10 < len(expected) < 50  # about a quarter
    app = app_with(contract, settings, served, twin, tmp_path, shadow="challenger", shadow_share=0.25)
    with TestClient(app, client=LOOPBACK_CLIENT) as client:
        for request_id in ids:
            answer = client.post("/predict", json=rows[0], headers={"X-Request-ID": request_id})
            assert answer.status_code == 200, answer.text
        assert shadow_count(client, "scored", len(expected))
    logged = records(tmp_path)
    assert {r["request_id"] for r in logged if r.get("shadow")} == expected
    assert sum(not r.get("shadow") for r in logged) == len(ids)  # every request is logged as answered


def test_a_failing_or_nan_shadow_never_changes_an_answer(contract, settings, served, rows, tmp_path):
    def broken(batch):
        raise RuntimeError("the challenger broke")

    def nan(batch):
        return [float("nan")] * len(batch), None if served.classes is None else [[float("nan")]] * len(batch)

    for name, fault, reason in (("broken", broken, "prediction_failed"), ("nan", nan, "non_finite_output")):
        challenger = Served(served.pipeline, name, {}, name, fault, served.inputs, served.classes)
        folder = tmp_path / name
        app = app_with(contract, settings, served, challenger, folder, shadow="challenger")
        with TestClient(app, client=LOOPBACK_CLIENT) as client:
            answers = send(client, rows[:5])
            assert shadow_count(client, "failed", 5), name
        assert {answer["model_version"] for answer in answers} == {served.version}
        shadow_records = [r for r in records(folder) if r.get("shadow")]
        assert [r["error"] for r in shadow_records] == [reason] * 5, name


def test_a_slow_shadow_does_not_slow_the_answers(contract, settings, served, rows, tmp_path):
    release = threading.Event()

    def stuck(batch):
        release.wait(30)
        return served.predict(batch)

    challenger = Served(served.pipeline, "stuck", {}, "stuck", stuck, served.inputs, served.classes)
    app = app_with(contract, settings, served, challenger, tmp_path, shadow="challenger")
    try:
        with TestClient(app, client=LOOPBACK_CLIENT) as client:
            started = time.perf_counter()
            send(client, rows)
            elapsed = time.perf_counter() - started
            release.set()
    finally:
        release.set()
    assert elapsed < 10  # the shadow waits up to 30 s per request: answers did not wait for it
    assert len([r for r in records(tmp_path) if r.get("shadow")]) == len(rows)  # all scored at close


def test_a_challenger_needing_inputs_the_requests_lack_is_refused(contract, settings, served, tmp_path):
    wider = Served(
        served.pipeline, "wide", {}, "wide", served.fast, (*served.inputs, "unheard_of"), served.classes
    )
    with pytest.raises(ServeError, match="unheard_of"):
        app_with(contract, settings, served, wider, tmp_path, shadow="challenger")


def test_one_challenger_at_a_time_and_a_declared_split_key():
    base = {"max_body_bytes": 1000, "max_batch_rows": 10}
    with pytest.raises(ValueError, match="one challenger at a time"):
        ServingSettings(**base, shadow="challenger", split={"alias": "challenger"})
    with pytest.raises(ValueError, match="not a context field"):
        ServingSettings(**base, split={"alias": "challenger", "key": "customer"})
    with pytest.raises(ValueError, match="shadow"):
        ServingSettings(**base, shadow="challenger; rm -rf /")


def test_params_refuse_a_bad_challenger_alias_in_one_line(tmp_path):
    params = (Path.cwd() / "params.yaml").read_text().replace('  shadow: ""', '  shadow: "$(id)"')
    (tmp_path / "params.yaml").write_text(params)
    with pytest.raises(ConfigError, match=r"serving\.shadow"):
        load_settings(tmp_path / "params.yaml")


# --- split ---------------------------------------------------------------------------------------


def test_the_split_is_sticky_and_sends_its_share():
    keys = [f"customer-{index}" for index in range(20000)]
    arms = [in_challenger_arm(key, 0.2) for key in keys]
    assert 0.18 < sum(arms) / len(arms) < 0.22
    assert [in_challenger_arm(key, 0.2) for key in keys[:500]] == arms[:500]  # the same key, the same arm
    assert not any(in_challenger_arm(key, 0.0) for key in keys[:500])


def test_a_split_answers_each_caller_always_from_one_arm(
    contract, settings, served, degraded, rows, tmp_path
):
    serving = settings.serving.model_copy(
        update={
            "log": settings.serving.log.model_copy(update={"context": {"customer": "keep"}}),
            "split": settings.serving.split.model_copy(
                update={"alias": "challenger", "share": 0.5, "key": "customer"}
            ),
        }
    )
    access = Access(loopback=True)
    app = create_app(served, contract, serving, tmp_path, None, access, degraded)
    seen: dict[str, set[str]] = {}
    with TestClient(app, client=LOOPBACK_CLIENT) as client:
        for index in range(40):
            customer = f"c{index % 8}"
            for answer in send(client, rows[index % len(rows) : index % len(rows) + 1], customer=customer):
                seen.setdefault(customer, set()).add(answer["model_version"])
    assert all(len(versions) == 1 for versions in seen.values()), seen  # sticky
    assert set().union(*seen.values()) == {served.version, degraded.version}  # both arms answer
    arm_of = {served.version: "champion", degraded.version: "challenger"}
    logged = records(tmp_path)
    assert len(logged) == 40 and not any(r.get("shadow") for r in logged)
    assert all(r["arm"] == arm_of[r["model_version"]] for r in logged)


# --- the canary from the shadow log --------------------------------------------------------------


def shadowed(contract, settings, served, challenger, rows, folder, headers) -> None:
    app = app_with(contract, settings, served, challenger, folder, shadow="challenger")
    with TestClient(app, client=LOOPBACK_CLIENT) as client:
        send(client, rows, headers)


def test_the_canary_from_the_log_passes_a_twin_and_refuses_a_degraded_challenger(
    contract, settings, served, degraded, twin, test_set, tmp_path
):
    many = json.loads(test_set[list(served.inputs)].head(60).to_json(orient="records"))
    verdicts = {}
    for challenger in (twin, degraded):
        folder = tmp_path / challenger.version
        shadowed(contract, settings, served, challenger, many, folder, AS_TRUSTED)
        theirs, ours, champion = shadow_pairs(newest_records(folder), challenger.version, 50)
        assert len(theirs) == len(ours) == 50 and champion == served.version
        verdicts[challenger.version] = judge(theirs, ours, settings.canary, settings.task)
    assert verdicts[twin.version].passed, verdicts[twin.version]
    refused = [check.name for check in verdicts[degraded.version].checks if not check.passed]
    assert refused == ["agreement"], verdicts[degraded.version]


def test_the_canary_from_the_log_uses_trusted_requests_only(contract, settings, served, twin, rows, tmp_path):
    shadowed(contract, settings, served, twin, rows, tmp_path, {})  # anonymous: anyone could send these
    theirs, ours, _ = shadow_pairs(newest_records(tmp_path), twin.version, 10)
    assert theirs == ours == []


def test_serve_with_a_challenger_but_no_way_to_use_it_is_one_line(model_dir, capsys):
    from {{ cookiecutter.package_name }}.cli import main

    code = main(["serve", "--model", str(model_dir), "--challenger", str(model_dir)])
    err = capsys.readouterr().err
    assert code == 1 and err.splitlines() == [
        "error: --challenger: set serving.shadow or serving.split.alias to say how it is used"
    ], err
