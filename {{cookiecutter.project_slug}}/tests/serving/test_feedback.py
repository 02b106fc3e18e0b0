"""Delayed labels: POST /feedback (admin) and `feedback import FILE` append to the labels store;
unknown ids, rows a request did not have, duplicates and labels of the wrong kind are refused
(the whole batch, each named, counted)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from serving_helpers import LOOPBACK_CLIENT

from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.config.serving import LogSettings
from {{ cookiecutter.package_name }}.feedback import (
    LABELS_PREFIX,
    Served,
    label_problem,
    labels_beside,
    parse_items,
    read_items,
)
from {{ cookiecutter.package_name }}.served_log import file_name, labels_url, log_files, newest_records
from {{ cookiecutter.package_name }}.serving.access import Access

pytestmark = pytest.mark.serving

ADMIN = {"Authorization": "Bearer adm1n-t0ken-0123456789"}


def a_label(served) -> object:
    """A label the model could have answered: one of its classes, or a number."""
    return served.classes[-1] if served.classes is not None else 1.5


def wrong_label(served) -> object:
    return "no such class" if served.classes is not None else "1.5"


def stored(store: Path) -> list[dict]:
    return list(reversed(list(newest_records(store, LABELS_PREFIX))))


@pytest.fixture
def logged(app_for, served, rows, tmp_path):
    """A server that has answered two requests (one row, then three), and its folders."""
    log = tmp_path / "logs" / "predictions"
    access = Access(admin_token=ADMIN["Authorization"].split()[1], loopback=True)
    client = TestClient(app_for(served, log, access=access), client=LOOPBACK_CLIENT)
    with client:
        client.post("/predict", json=rows[0], headers={"X-Request-ID": "one"})
        client.post("/predict", json={"rows": rows[1:4]}, headers={"X-Request-ID": "three"})
        yield client, log, labels_beside(log)


def post(client: TestClient, labels: list, headers: dict = ADMIN):
    return client.post("/feedback", json={"labels": labels}, headers=headers)


def wait_for(client: TestClient, request_id: str, log: Path) -> None:
    """The log is written in the background: wait until the request is in it."""
    import time

    deadline = time.monotonic() + 10
    while not any(record.get("request_id") == request_id for record in newest_records(log)):
        assert time.monotonic() < deadline, f"{request_id} never reached the log"
        time.sleep(0.05)


def test_labels_of_served_rows_are_stored_and_counted(logged, served):
    client, log, store = logged
    wait_for(client, "three", log)
    label = a_label(served)
    sent = [{"request_id": "one", "label": label}] + [
        {"request_id": "three", "row": row, "label": label} for row in range(3)
    ]
    answer = post(client, sent)
    assert answer.status_code == 200 and answer.json() == {"accepted": 4}
    assert [(r["request_id"], r["row"], r["label"], r["source"]) for r in stored(store)] == [
        ("one", 0, label, "api"),
        *[("three", row, label, "api") for row in range(3)],
    ]
    assert 'feedback_labels_total{result="accepted"} 4.0' in client.get("/metrics").text


def test_each_bad_label_is_named_and_counted_and_nothing_is_stored(logged, served):
    client, log, store = logged
    wait_for(client, "three", log)
    assert post(client, [{"request_id": "three", "row": 2, "label": a_label(served)}]).status_code == 200
    before = stored(store)
    batch = [
        {"request_id": "one", "label": a_label(served)},  # good, but the batch is refused
        {"request_id": "never-served", "label": a_label(served)},
        {"request_id": "one", "row": 1, "label": a_label(served)},  # "one" had a single row
        {"request_id": "three", "row": 2, "label": a_label(served)},  # labelled above
        {"request_id": "three", "row": 0, "label": wrong_label(served)},
        {"request_id": "three", "row": 1, "label": True},  # a boolean is no class and no number
        {"request_id": "three", "row": 0, "label": a_label(served), "extra": 1},
        {"request_id": "one", "label": a_label(served)},  # twice in this batch
    ]
    answer = post(client, batch)
    assert answer.status_code == 422
    reasons = [(item["index"], item["reason"]) for item in answer.json()["detail"]]
    assert reasons == [
        (1, "unknown_request"),
        (2, "unknown_row"),
        (3, "duplicate"),
        (4, "wrong_label"),
        (5, "wrong_label"),
        (6, "malformed"),
        (7, "duplicate"),
    ]
    assert answer.json()["error"].startswith(
        "7 label(s) refused, nothing stored: #2: request_id 'never-served'"
    )
    assert stored(store) == before
    metrics = client.get("/metrics").text
    for reason, count in (("unknown_request", 1), ("unknown_row", 1), ("duplicate", 2), ("wrong_label", 2)):
        assert "feedback_labels_total{" + f'result="{reason}"' + "} " + f"{count:.1f}" in metrics, reason


def test_feedback_needs_the_admin_and_a_log(logged, app_for, served, rows):
    client, _, _ = logged
    label = [{"request_id": "one", "label": a_label(served)}]
    assert post(client, label, headers={}).status_code == 401
    assert post(client, label, headers={"Authorization": "Bearer wrong-token-0123456789"}).status_code == 401
    for body in (b"{not json", b'{"labels": 3}', b'{"labels": []}', b"[]"):
        answer = client.post("/feedback", content=body, headers=ADMIN)
        assert answer.status_code == 422 and answer.json()["detail"][0]["reason"] == "malformed", body
    with TestClient(app_for(served), client=LOOPBACK_CLIENT) as unlogged:  # serve --no-log
        assert post(unlogged, label, headers={}).status_code == 503
    with TestClient(app_for(served)) as stranger:  # no admin token, not a loopback client
        assert post(stranger, label, headers={}).status_code == 403


def test_a_labels_file_is_imported_all_or_nothing(logged, served, tmp_path, capsys, monkeypatch):
    client, log, store = logged
    wait_for(client, "three", log)
    project = log.parent.parent
    (project / "params.yaml").write_text((Path.cwd() / "params.yaml").read_text())
    bad = tmp_path / "bad.csv"
    bad.write_text(f"request_id,label,row\none,{a_label(served)},\nnever-served,{a_label(served)},0\n")
    assert main(["--root", str(project), "feedback", "import", str(bad)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1 label(s) refused, nothing stored: #2: request_id 'never-served'" in err
    assert log_files(store, LABELS_PREFIX) == []
    good = tmp_path / "labels.jsonl"
    lines = [{"request_id": "three", "row": row, "label": a_label(served)} for row in (0, 2)]
    good.write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert main(["--root", str(project), "feedback", "import", str(good)]) == 0
    assert "feedback: 2 label(s) stored in logs/labels" in capsys.readouterr().out
    assert [(r["row"], r["source"]) for r in stored(store)] == [
        (0, "import:labels.jsonl"),
        (2, "import:labels.jsonl"),
    ]
    assert main(["--root", str(project), "feedback", "import", str(good)]) == 1  # again: duplicates
    assert "already labelled" in capsys.readouterr().err
    assert len(stored(store)) == 2


def test_label_kinds_and_file_formats(served, tmp_path):
    classifier, regression = Served(1, ("No", "Yes")), Served(1, None)
    assert label_problem("Yes", classifier) is None
    assert "one of the model's classes: No, Yes" in str(label_problem("Maybe", classifier))
    assert label_problem(True, classifier) is not None
    assert label_problem(2.5, regression) is None and label_problem(3, regression) is None
    for wrong in ("2.5", float("nan"), float("inf"), False):
        assert "finite number" in str(label_problem(wrong, regression)), wrong
    assert label_problem(1, Served(1, ("0", "1"))) is None  # classes are text; 1 is class "1"
    csv_file = tmp_path / "labels.csv"
    csv_file.write_text("request_id,label,row\nr1,2.5,\nr2,Yes,3\n")
    labels, problems = parse_items(read_items(csv_file))
    assert problems == [] and [(x.request_id, x.row, x.label) for x in labels] == [
        ("r1", 0, 2.5),
        ("r2", 3, "Yes"),
    ]
    for name, text, message in (
        ("a.txt", "x", "expected a .csv or .jsonl file"),
        ("b.csv", "id,label\n", "the header must name request_id and label"),
        ("c.jsonl", '{"request_id": "r"}\n{oops\n', "line 2 is not JSON"),
    ):
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=message):
            read_items(tmp_path / name)
    assert "row: expected" in parse_items([{"request_id": "r", "label": 1, "row": -1}])[1][0].message


# --- a shipped log: labels go to <store>/labels beside <store>/predictions ------------------------


def test_labels_are_shipped_beside_a_shipped_log():
    assert labels_url("s3://bucket/ml/predictions") == "s3://bucket/ml/labels"
    assert labels_url("file:///srv/store/predictions/") == "file:///srv/store/labels"
    assert labels_url("s3://bucket") == "s3://bucket/labels"  # never another bucket


def test_imported_labels_ship_and_wait_when_the_store_fails(logged, served, tmp_path, capsys):
    client, log, store = logged
    wait_for(client, "three", log)
    project, shipped = log.parent.parent, tmp_path / "store"
    params = (Path.cwd() / "params.yaml").read_text()
    assert params.count("    uri: logs/predictions") == 1
    params = params.replace("    uri: logs/predictions", f"    uri: file://{shipped}/predictions")
    (project / "params.yaml").write_text(params)
    shipped.mkdir()
    (shipped / "labels").write_text("a file where the folder should be: shipping fails")
    batches = [[{"request_id": "three", "row": row, "label": a_label(served)}] for row in (0, 1)]
    files = [tmp_path / f"batch{n}.jsonl" for n in (0, 1)]
    for path, batch in zip(files, batches, strict=True):
        path.write_text("".join(json.dumps(line) + "\n" for line in batch))

    assert main(["--root", str(project), "feedback", "import", str(files[0])]) == 0
    out = capsys.readouterr().out
    assert f"1 label(s) stored in logs/labels, NOT shipped to file://{shipped}/labels" in out, out
    assert len(stored(store)) == 1, "kept here"

    (shipped / "labels").unlink()
    assert main(["--root", str(project), "feedback", "import", str(files[1])]) == 0
    assert f"shipped to file://{shipped}/labels" in capsys.readouterr().out
    assert [r["row"] for r in stored(shipped / "labels")] == [0, 1], "the first batch caught up"


def test_posted_labels_ship_beside_a_shipped_log(app_for, served, rows, tmp_path):
    log, shipped = tmp_path / "logs" / "predictions", tmp_path / "store"
    access = Access(admin_token=ADMIN["Authorization"].split()[1], loopback=True)
    serving = {"log": LogSettings(uri=f"file://{shipped}/predictions")}
    with TestClient(app_for(served, log, access=access, **serving), client=LOOPBACK_CLIENT) as client:
        client.post("/predict", json=rows[0], headers={"X-Request-ID": "one"})
        wait_for(client, "one", log)
        answer = post(client, [{"request_id": "one", "label": a_label(served)}])
        assert answer.status_code == 200, answer.text
    assert [r["request_id"] for r in stored(shipped / "labels")] == ["one"]


def test_a_label_for_a_request_whose_file_has_shipped_is_checked_at_the_store(served, tmp_path, capsys):
    """Labels come days later: the request's file left this machine long ago."""
    project, shipped = tmp_path / "project", tmp_path / "store"
    project.mkdir()
    params = (Path.cwd() / "params.yaml").read_text()
    (project / "params.yaml").write_text(
        params.replace("    uri: logs/predictions", f"    uri: file://{shipped}/predictions")
    )
    classes = served.classes or ()
    record = {
        "request_id": "last-week",
        "inputs": [{}],
        "probabilities": [dict.fromkeys(classes, 0.5)] if classes else None,
    }
    old = shipped / "predictions" / file_name(time.time() - 7 * 86400, "elsewhere", 7, 1)
    old.parent.mkdir(parents=True)
    old.write_text(json.dumps(record) + "\n")
    labels = tmp_path / "labels.jsonl"
    expired = project / "logs" / "shipped" / file_name(time.time() - 40 * 86400, "elsewhere", 8, 1)
    expired.parent.mkdir(parents=True)
    expired.write_text("{}\n")  # a copy of a file the store no longer holds

    labels.write_text(json.dumps({"request_id": "never-served", "label": a_label(served)}) + "\n")
    assert main(["--root", str(project), "feedback", "import", str(labels)]) == 1
    assert "request_id 'never-served'" in capsys.readouterr().err, "an unknown id is still refused"

    labels.write_text(json.dumps({"request_id": "last-week", "label": a_label(served)}) + "\n")
    assert main(["--root", str(project), "feedback", "import", str(labels)]) == 0, capsys.readouterr().err
    assert [r["request_id"] for r in stored(shipped / "labels")] == ["last-week"]
    assert (project / "logs" / "shipped" / old.name).read_bytes() == old.read_bytes(), "copied once, kept"
    assert not expired.exists(), "gone from the store: gone here"
