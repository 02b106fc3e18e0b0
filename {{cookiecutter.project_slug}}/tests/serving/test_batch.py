"""Batch scoring (`predict --input --output`): chunks give the answers one call gives, every row
the contract refuses is in the rejects file with its reason, and an input that cannot be scored
is one line that changes no file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from serving_helpers import answering_nan

from {{ cookiecutter.package_name }}.batch import NOT_FINITE, LogTo, Writer, score_file, staging_path
from {{ cookiecutter.package_name }}.cli import main
from {{ cookiecutter.package_name }}.monitoring.window import served_rows
from {{ cookiecutter.package_name }}.served_log import newest_records
from {{ cookiecutter.package_name }}.serving.log import DirectLog

pytestmark = pytest.mark.serving

CHUNK = 1000  # the smallest chunk the command takes: 2,500 rows are three chunks


@pytest.fixture(scope="module")
def inputs(served, test_set) -> pd.DataFrame:
    """2,500 real rows of the model's inputs (the test set, repeated)."""
    frame = test_set[list(served.inputs)]
    repeats = -(-2500 // len(frame))
    return pd.concat([frame] * repeats, ignore_index=True).head(2500)


def predict(*args: str) -> int:
    """The command, leaving the project's own prediction log alone (the log is tested below)."""
    return main(["--root", str(Path.cwd()), "predict", "--no-log", *args])


def records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


def test_a_file_in_chunks_gets_the_answers_of_one_call(served, model_dir, inputs, tmp_path, capsys):
    source = tmp_path / "rows.csv"
    inputs.to_csv(source, index=False)
    output = tmp_path / "scored.parquet"
    assert (
        predict(
            "--input", str(source), "--output", str(output), "--model", str(model_dir), "--chunk-rows", "1000"
        )
        == 0
    )
    said = capsys.readouterr().out
    assert "2500 row(s)" in said and "2500 scored" in said and "0 refused" in said, said
    scored = pd.read_parquet(output)
    assert scored["row"].tolist() == list(range(1, 2501))
    predictions, probabilities = served.predict(records(inputs))
    assert (
        scored["prediction"].tolist() == pytest.approx(predictions) if served.classes is None else predictions
    )
    if served.classes is not None:
        columns = [f"probability_{label}" for label in served.classes]
        assert np.allclose(scored[columns].to_numpy(), np.array(probabilities))
    assert pd.read_csv(tmp_path / "scored.rejects.csv").empty
    assert not list(tmp_path.glob(".*partial"))


def test_rows_the_contract_refuses_are_in_the_rejects_file_with_their_reason(
    served, model_dir, contract, inputs, tmp_path
):
    broken = inputs.head(1500).astype(object)
    column = served.inputs[0]
    rule = contract.columns[column]
    wrong = "not-a-value" if rule.type in ("category", "integer", "number", "boolean") else 10**6
    broken.loc[[7, 1203], column] = wrong  # row 8 in chunk one, row 1204 in chunk two
    broken = broken.assign(unasked="kept out of the model")  # an extra column is no reason to refuse
    broken.to_csv(tmp_path / "rows.csv", index=False)
    output, rejects = tmp_path / "scored.csv", tmp_path / "refused.csv"
    code = predict(
        "--input",
        str(tmp_path / "rows.csv"),
        "--output",
        str(output),
        "--rejects",
        str(rejects),
        "--model",
        str(model_dir),
        "--chunk-rows",
        "1000",
    )
    assert code == 0
    refused = pd.read_csv(rejects)
    assert refused["row"].tolist() == [8, 1204]
    assert all(reason.startswith(f"{column}:") for reason in refused["reason"]), refused["reason"].tolist()
    assert json.loads(refused["values"][0])[column] == wrong
    scored = pd.read_csv(output)
    assert len(scored) == 1498 and 8 not in set(scored["row"]) and 1204 not in set(scored["row"])


def test_a_model_answering_nan_has_its_rows_refused_not_scored(served, contract, inputs, tmp_path):
    broken = answering_nan(served)
    source = tmp_path / "rows.csv"
    inputs.head(50).to_csv(source, index=False)
    output = Writer(str(tmp_path / "out.csv"), "csv", tmp_path / "out.partial")
    rejects = Writer(str(tmp_path / "rejects.csv"), "csv", tmp_path / "rejects.partial")
    with source.open("rb") as rows:
        done = score_file(rows, "csv", broken, contract, CHUNK, output, rejects)
    assert (done.rows, done.scored, done.rejected) == (50, 0, 50)
    rejects.commit(pd.DataFrame())
    assert set(pd.read_csv(tmp_path / "rejects.csv")["reason"]) == {NOT_FINITE}


def test_a_url_output_is_uploaded_whole_and_leaves_nothing_staged():
    """An fsspec URL (here fsspec's in-memory store, as s3:// would be): the file is staged in a
    temporary folder of its own, uploaded on commit, and the folder is gone after a commit or a
    discard."""
    import fsspec

    frame = pd.DataFrame({"row": [1, 2], "prediction": [0, 1]})
    url = "memory://scores/out.csv"
    kept = Writer(url, "csv", staging_path(url))
    kept.append(frame)
    kept.commit(frame.head(0))
    with fsspec.open(url, "r") as uploaded:
        assert pd.read_csv(uploaded).equals(frame)
    assert not kept.staging.parent.exists()
    dropped = Writer("memory://scores/dropped.csv", "csv", staging_path("memory://scores/dropped.csv"))
    dropped.append(frame)
    dropped.discard()
    assert not dropped.staging.parent.exists()
    assert not fsspec.filesystem("memory").exists("/scores/dropped.csv")


def test_an_input_that_cannot_be_scored_is_one_line_and_changes_no_file(
    served, model_dir, inputs, tmp_path, capsys
):
    output = tmp_path / "scored.csv"
    output.write_text("the last good scores\n")
    without = tmp_path / "without.csv"
    inputs.drop(columns=[served.inputs[-1]]).head(10).to_csv(without, index=False)
    garbled = tmp_path / "garbled.parquet"
    garbled.write_bytes(b"not parquet at all")
    cases = {
        "a missing input": (without, f"no column {served.inputs[-1]} in the input"),
        "no such file": (tmp_path / "absent.csv", "absent.csv"),
        "not parquet": (garbled, "garbled.parquet"),
        "an unknown format": (tmp_path / "rows.xlsx", "expected a file ending in .csv, .parquet, .pq"),
    }
    for case, (source, said) in cases.items():
        assert predict("--input", str(source), "--output", str(output), "--model", str(model_dir)) == 1, case
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and said in err and "Traceback" not in err, (case, err)
        assert output.read_text() == "the last good scores\n", case
        assert not (tmp_path / "scored.rejects.csv").exists() and not list(tmp_path.glob(".*partial")), case


def test_the_scored_rows_are_logged_as_served_rows_are(served, contract, settings, inputs, tmp_path):
    """The log holds each scored row once, in records of at most serving.max_batch_rows rows, as the
    monitor reads served requests; refused rows are not answers, and batch rows have no latency."""
    frame = inputs.head(1200).astype(object)
    frame.loc[5, served.inputs[0]] = (
        "not-a-value" if contract.columns[served.inputs[0]].type != "text" else 10**6
    )
    source = tmp_path / "rows.csv"
    frame.to_csv(source, index=False)
    folder = tmp_path / "logs"
    writer = DirectLog(folder, settings.serving.log)
    log = LogTo(writer.write, "batch-test", record_rows=500, trusted=True)
    output = Writer(str(tmp_path / "out.csv"), "csv", tmp_path / "out.partial")
    rejects = Writer(str(tmp_path / "rejects.csv"), "csv", tmp_path / "rejects.partial")
    with source.open("rb") as rows:
        done = score_file(rows, "csv", served, contract, CHUNK, output, rejects, log=log)
    writer.close()
    records = sorted(newest_records(folder), key=lambda record: record["request_id"])
    assert [record["request_id"] for record in records] == [
        "batch-test-0-0",
        "batch-test-0-1",
        "batch-test-1-0",
    ]
    assert [len(record["inputs"]) for record in records] == [500, 499, 200]
    assert all(record["source"] == "batch" and record["trusted"] is True for record in records)
    assert all(
        record["model_version"] == served.version and record["latency_ms"] is None for record in records
    )
    logged = served_rows(records)
    assert len(logged) == done.scored == 1199
    expected, _ = served.predict(records[2]["inputs"])
    assert records[2]["outputs"] == expected
