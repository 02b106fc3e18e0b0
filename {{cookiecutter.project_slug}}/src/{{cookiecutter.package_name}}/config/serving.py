"""params.yaml `serving:`: the model server's limits, and the names of its token variables."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from .reading import Strict

# The model server's bearer tokens (environment variables): admin calls and /version's detail;
# a trusted traffic source, whose logged rows the canary may replay.
ADMIN_TOKEN_ENV = "SERVE_ADMIN_TOKEN"
TRUSTED_TOKEN_ENV = "SERVE_TRUSTED_TOKEN"
# The key of the prediction log's pseudonyms (HMAC-SHA256): context fields marked `hash`.
LOG_KEY_ENV = "SERVE_LOG_KEY"

ContextRule = Literal["keep", "hash", "drop"]
ALIAS = r"^([A-Za-z][A-Za-z0-9_-]{0,63})?$"  # a registry alias, or "" for none
FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


class LogSettings(Strict):
    """`serving.log`: the prediction log, one JSON-lines file per server process, rotated."""

    # Where closed files go: a folder of the project (the open file is written there too), or an
    # fsspec URL (s3://bucket/prefix, gs://..., file:///...): the open file is written to
    # logs/predictions/ and shipped there when it closes.
    uri: str = Field(default="logs/predictions", min_length=1, max_length=1024)
    max_file_bytes: int = Field(default=50_000_000, gt=0)  # a file is closed past this size...
    max_file_seconds: float = Field(default=3600, gt=0)  # ...or this age, then a new one opened
    retention_days: float = Field(default=30, gt=0)  # closed files older than this are deleted
    queue_records: int = Field(default=10_000, gt=0)  # waiting to be written; beyond, dropped and counted
    # Fields a request may carry beside the model's inputs, never given to the model, logged for
    # slicing: keep (in clear), hash (HMAC with SERVE_LOG_KEY) or drop (accepted, not written).
    context: dict[str, ContextRule] = Field(default_factory=dict)

    @field_validator("context")
    @classmethod
    def _field_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name in value:
            if not FIELD_NAME.match(name):
                raise ValueError(f"{name!r}: a context field is a name of letters, digits and _")
        return value

    @model_validator(mode="after")
    def _retention_outlives_a_file(self) -> LogSettings:
        if self.retention_days * 86400 <= self.max_file_seconds:
            raise ValueError("retention_days: must outlast a file's life (max_file_seconds)")
        return self

    @property
    def hashed(self) -> list[str]:
        return [name for name, rule in self.context.items() if rule == "hash"]


class SplitSettings(Strict):
    """`serving.split`: A/B traffic, a share of the requests answered by another registry alias."""

    alias: str = Field(default="", pattern=ALIAS)  # "": no split
    share: float = Field(default=0.1, gt=0, lt=1)  # of the requests, answered by the alias's version
    # A context field whose value keeps a caller on one arm (sticky); "": each request drawn anew.
    key: str = Field(default="", max_length=64)  # checked against serving.log.context


class ServingSettings(Strict):
    max_body_bytes: int = Field(gt=0)  # larger request bodies get 413
    max_batch_rows: int = Field(gt=0)  # rows in one /predict request
    alias: str = "champion"  # `serve` without --model serves models:/<registered_model>@<alias> if it exists
    reload_seconds: float = Field(default=30, ge=0)  # how often to look for a new model (0: never)
    # Server processes on the one address (the kernel spreads connections among them); each
    # follows the model source on its own, within reload_seconds.
    workers: int = Field(default=1, ge=1, le=64)
    p99_ms: float = Field(default=50, gt=0)  # the load test's bound on single-row latency (99th percentile)
    min_rps: float = Field(default=200, gt=0)  # the load test's floor on single-row requests per second
    # A request's head, then its body, must arrive within this (408, or the connection is closed).
    body_timeout_seconds: float = Field(default=10, gt=0)
    log: LogSettings = LogSettings()
    # A registry alias (e.g. challenger) scored beside every answered request, off the request
    # path, and logged as a shadow record; it answers nobody. "": no shadow.
    shadow: str = Field(default="", pattern=ALIAS)
    # The share of answered requests scored in shadow, chosen by request id (the log grows by
    # this much of a second record per request, and the challenger's scoring by this much CPU).
    shadow_share: float = Field(default=1.0, gt=0, le=1)
    split: SplitSettings = SplitSettings()

    @model_validator(mode="after")
    def _one_challenger(self) -> ServingSettings:
        if self.shadow and self.split.alias:
            raise ValueError('shadow and split.alias: one challenger at a time (set one to "")')
        key = self.split.key
        if key and key not in self.log.context:
            raise ValueError(f"split.key: {key!r} is not a context field (serving.log.context)")
        return self

    @property
    def challenger(self) -> str:
        """The alias of the second model, in shadow or split mode; "" when there is none."""
        return self.shadow or self.split.alias
