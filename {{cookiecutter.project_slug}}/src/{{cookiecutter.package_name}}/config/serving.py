"""params.yaml `serving:`: the model server's limits, and the names of its token variables."""

from __future__ import annotations

from pydantic import Field

from .reading import Strict

# The model server's bearer tokens (environment variables): admin calls and /version's detail;
# a trusted traffic source, whose logged rows the canary may replay.
ADMIN_TOKEN_ENV = "SERVE_ADMIN_TOKEN"
TRUSTED_TOKEN_ENV = "SERVE_TRUSTED_TOKEN"


class ServingSettings(Strict):
    max_body_bytes: int = Field(gt=0)  # larger request bodies get 413
    max_batch_rows: int = Field(gt=0)  # rows in one /predict request
    alias: str = "champion"  # `serve` without --model serves models:/<registered_model>@<alias> if it exists
    reload_seconds: float = Field(default=30, ge=0)  # how often to look for a new model (0: never)
    p99_ms: float = Field(default=50, gt=0)  # the load test's bound on single-row latency (99th percentile)
    min_rps: float = Field(default=200, gt=0)  # the load test's floor on single-row requests per second
    # A request's head, then its body, must arrive within this (408, or the connection is closed).
    body_timeout_seconds: float = Field(default=10, gt=0)
