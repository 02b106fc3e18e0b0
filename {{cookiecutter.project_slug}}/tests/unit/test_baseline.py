"""When the gate reproduces the base (the pure rule over `dvc status` of a checkout of the base),
and when it warns that a pull request's results were not committed (tests/integration/
test_base_reproduced.py runs both with real git and DVC)."""

from __future__ import annotations

import pytest
import yaml

from {{ cookiecutter.package_name }}.gate.baseline import stale_reason
from {{ cookiecutter.package_name }}.gate.compare import recorded_results

ABSENT_IN_A_CHECKOUT = {
    "ingest": [{"changed outs": {"data/raw/data.csv": "not in cache"}}],
    "train": [
        {"changed deps": {"data/prepared/train.csv": "deleted"}},
        {"changed outs": {"models/model": "not in cache"}},
    ],
}


@pytest.mark.parametrize(
    ("status", "named"),
    [
        ({}, None),
        (ABSENT_IN_A_CHECKOUT, None),  # cached files are never in a fresh checkout
        ({"ingest": ["always changed"]}, None),
        (
            ABSENT_IN_A_CHECKOUT | {"evaluate": [{"changed outs": {"metrics.json": "modified"}}]},
            "metrics.json",
        ),
        ({"train": [{"changed deps": {"src/pkg/train.py": "modified"}}]}, "src/pkg/train.py"),
        (
            {"split": [{"changed deps": {"params.yaml": {"split.seed": "modified"}}}]},
            "params.yaml: split.seed",
        ),
        ({"train": ["changed command"]}, "changed command"),
    ],
)
def test_the_base_is_reproduced_only_when_dvc_status_finds_a_change(status, named):
    reason = stale_reason(status)
    assert (reason is None) if named is None else (reason is not None and named in reason), reason


def test_the_reason_names_a_few_changes_and_counts_the_rest():
    status = {"train": [{"changed deps": {f"src/m{i}.py": "modified" for i in range(5)}}]}
    reason = stale_reason(status)
    assert reason is not None and reason.endswith("give (src/m0.py, src/m1.py, src/m2.py and 2 more)"), reason


def lock(model_md5: str, metrics_md5: str) -> bytes:
    outs = {
        "train": [{"path": "models/model", "md5": model_md5}],
        "evaluate": [{"path": "metrics.json", "md5": metrics_md5}, {"path": "plots/roc.json", "md5": "p"}],
    }
    stages = {name: {"cmd": "x", "outs": entries} for name, entries in outs.items()}
    return yaml.safe_dump({"schema": "2.0", "stages": stages}).encode()


def test_only_the_results_tell_whether_they_were_committed():
    """A model trained again elsewhere differs in its metadata (its md5), not in its metrics."""
    assert recorded_results(lock("aaa.dir", "m1")) == {"metrics.json": "m1"}
    assert recorded_results(lock("aaa.dir", "m1")) == recorded_results(lock("bbb.dir", "m1"))
    assert recorded_results(lock("aaa.dir", "m1")) != recorded_results(lock("aaa.dir", "m2"))
    assert recorded_results(b"") == recorded_results(b"stages: [") == recorded_results(None) == {}
