"""Locust users for the load test (test_load.py): single-row predictions, back to back.

Run by hand against a running server:
    LOAD_ROWS=rows.json uv run locust -f tests/serving/locustfile.py --headless -u 4 -r 4 \
        --run-time 20s --host http://127.0.0.1:8000
where rows.json is a JSON list of request rows.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

from locust import FastHttpUser, constant, task

ROWS = json.loads(Path(os.environ["LOAD_ROWS"]).read_text())


class Predictor(FastHttpUser):
    wait_time = constant(0)  # closed loop: each user sends the next request when the last is answered

    def on_start(self) -> None:
        self.rows = itertools.cycle(ROWS)

    @task
    def predict(self) -> None:
        with self.client.post("/predict", json=next(self.rows), catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"status {response.status_code}: {response.text[:200]}")
            elif '"predictions"' not in response.text:
                response.failure("no predictions in the answer")
