"""POST /explain: one row step by step, for admins only; a bad row is refused as /predict refuses it."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from serving_helpers import LOOPBACK_CLIENT

pytestmark = pytest.mark.serving


def test_explain_answers_a_loopback_admin_and_refuses_a_bad_row(client, rows) -> None:
    answer = client.post("/explain", json=rows[0])
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["model"] == "test-1" and body["steps"][0]["values"] == rows[0]
    assert body["contributions"]["max_gap"] <= 1e-6
    refused = client.post("/explain", json={**rows[0], "no_such_column": 1})
    assert refused.status_code == 422
    assert refused.json()["error"] == "invalid input: no_such_column"


def test_explain_is_refused_to_a_client_that_is_not_an_admin(app_for, served, rows) -> None:
    with TestClient(app_for(served), client=("203.0.113.9", 50000)) as stranger:
        assert stranger.post("/explain", json=rows[0]).status_code == 403
    assert LOOPBACK_CLIENT[0] == "127.0.0.1"
