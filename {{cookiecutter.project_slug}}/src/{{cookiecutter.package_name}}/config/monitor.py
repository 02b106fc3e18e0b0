"""params.yaml `monitor:`: what `monitor` reads of the prediction log, and when it alerts."""

from __future__ import annotations

from pydantic import Field

from .reading import Strict


class MonitorSettings(Strict):
    window_hours: float = Field(default=24, gt=0)  # the log's records of the last this many hours
    min_rows: int = Field(default=200, gt=0)  # fewer served rows in the window: nothing judged (exit 2)
    # An input (or the predictions) has drifted when both say so: the population stability index
    # is over max_psi (a shift large enough to matter) and the KS or chi-square test's p-value is
    # under alpha (a shift larger than sampling noise).
    max_psi: float = Field(default=0.2, gt=0)
    alpha: float = Field(default=0.01, gt=0, lt=1)
    max_invalid_rate: float = Field(default=0.01, ge=0, le=1)  # /predict requests the contract refused (422)
    # Skew: served rows of models/model's version recomputed by the training pipeline itself.
    skew_rows: int = Field(default=1000, gt=0)  # the latest this many are recomputed
    max_skew_rate: float = Field(default=0, ge=0, le=1)  # rows whose served answer differs
    max_non_finite_rate: float = Field(default=0, ge=0, le=1)  # answers that were NaN or infinite
    # Online quality (rows with delayed labels) against the offline test metric of metrics.json:
    # accuracy for a classifier, mean absolute error for a regression.
    min_labels: int = Field(default=50, gt=0)  # labelled rows a version needs to be judged
    max_quality_drop: float = Field(default=0.05, ge=0)  # accuracy lost, or relative MAE gained
    # Latency: each version's p99 request time against the version served before it (same window).
    min_latency_requests: int = Field(default=100, gt=0)  # answered requests each needs to be compared
    max_slowdown: float = Field(default=1.5, gt=1)  # p99 this many times the previous version's: alert
    # Offline against online (M2): the rank correlation, over the versions with min_labels labels, of
    # each one's registered offline metric and its online one. Below min_correlation: the offline
    # test no longer tells which model serves better.
    min_correlated_versions: int = Field(default=3, ge=2)
    min_correlation: float = Field(default=0.0, ge=-1, le=1)
    # Where the monitor workflow fetches the log from (`fetch-log`): a folder or fsspec URL laid out
    # as logs/ is (predictions/, where the servers ship: serving.log.uri = <log_uri>/predictions,
    # and labels/). "": the monitor reads the log on this machine only.
    log_uri: str = Field(default="", max_length=1024)
    # On an alert, the monitor workflow retrains (`make retrain`) and opens a pull request.
    retrain: bool = False
