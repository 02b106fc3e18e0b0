"""Where every stage reads and writes, in one place (a test checks it against dvc.yaml's outs)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Paths:
    """Where every stage reads and writes, relative to the project root (as in dvc.yaml)."""

    root: Path

    @property
    def params(self) -> Path:
        return self.root / "params.yaml"

    @property
    def contract(self) -> Path:
        return self.root / "schema.yaml"

    @property
    def check(self) -> Path:
        """The check stage's mark: written, always the same, when params and inputs fit every stage."""
        return self.root / "data" / "check.json"

    @property
    def runtime_requirements(self) -> Path:
        """uv.lock's runtime packages, pinned (pipeline/runtime.py): a dependency of train."""
        return self.root / "requirements" / "runtime.txt"

    @property
    def raw(self) -> Path:
        return self.root / "data" / "raw" / "data.csv"

    @property
    def feedback(self) -> Path:
        """Served rows with their delayed labels (`feedback export`), kept in git: an input of ingest."""
        return self.root / "data" / "feedback" / "labelled.csv"

    @property
    def train(self) -> Path:
        return self.root / "data" / "prepared" / "train.csv"

    @property
    def test(self) -> Path:
        return self.root / "data" / "prepared" / "test.csv"

    @property
    def model(self) -> Path:
        return self.root / "models" / "model"

    @property
    def known_examples(self) -> Path:
        """Inputs with the answer a sound model must give (tests/model/test_known_examples.py)."""
        return self.root / "tests" / "model" / "known_examples.yaml"

    @property
    def ml_test_score(self) -> Path:
        """Which tests check each id of the ML Test Score and which inject its fault."""
        return self.root / "tests" / "ml_test_score.yaml"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def reports(self) -> Path:
        return self.root / "reports"

    @property
    def validation(self) -> Path:
        return self.reports / "validation.json"

    @property
    def gate(self) -> Path:
        """The gate's verdict on this tree (`report`), which `register` tags the version with."""
        return self.reports / "gate.json"

    @property
    def slices(self) -> Path:
        return self.reports / "slices.json"

    @property
    def predictions(self) -> Path:
        """The test set's per-row predictions, which the gate pairs with the base's (predictions.py)."""
        return self.reports / "predictions.csv"

    @property
    def tuning(self) -> Path:
        """The tune stage's result (best hyperparameters, every trial), which train takes."""
        return self.reports / "tuning.json"

    @property
    def staleness(self) -> Path:
        """Quality against model age, and the recommended maximum age (pipeline/backtest.py)."""
        return self.reports / "staleness.json"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    @property
    def lock(self) -> Path:
        """DVC's record of what each stage last ran on (data hashes included)."""
        return self.root / "dvc.lock"

    def records(self) -> tuple[Path, ...]:
        """The pipeline's git-tracked outputs: a re-run rewrites them; they are not its inputs."""
        return (
            self.check,
            self.runtime_requirements,
            self.validation,
            self.tuning,
            self.lock,
            self.metrics,
            self.slices,
            self.predictions,
            self.staleness,
            self.plots,
        )

    @property
    def prediction_spool(self) -> Path:
        """The prediction log's default folder, and where files wait to be shipped to a URL."""
        return self.root / "logs" / "predictions"
