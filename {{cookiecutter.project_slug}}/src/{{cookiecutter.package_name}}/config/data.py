"""params.yaml `data:`: where the data comes from and what its columns mean."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from .reading import Strict, no_repeats


class DataSettings(Strict):
    source: Literal["demo-arrests", "demo-diabetes", "csv"]
    csv_path: str | None = None
    target: str
    positive_class: str | None = None
    sensitive_features: list[str] = Field(default_factory=list)
    use_sensitive_features: bool = False
    time_column: str | None = None
    # Add the feedback partition (data/feedback/labelled.csv, `feedback export`: served rows with
    # their delayed labels) to the raw data.
    include_feedback: bool = False

    @field_validator("positive_class", mode="before")
    @classmethod
    def _class_as_text(cls, value: object) -> object:
        # Labels are compared as text; YAML reads true/false as booleans, 1 as a number.
        if isinstance(value, bool):
            raise ValueError(f'YAML read this as the boolean {value}: quote the class name, e.g. "true"')
        return str(value) if isinstance(value, int) else value

    @field_validator("sensitive_features")
    @classmethod
    def _sensitive_once(cls, value: list[str]) -> list[str]:
        return no_repeats(value)

    @model_validator(mode="after")
    def _consistent(self) -> DataSettings:
        if self.source == "csv" and not self.csv_path:
            raise ValueError("data.csv_path: required when data.source is 'csv'")
        if self.target in self.sensitive_features:
            raise ValueError(f"data.sensitive_features: {self.target!r} is the target (data.target)")
        if self.time_column == self.target:
            raise ValueError(f"data.time_column: {self.target!r} is the target (data.target)")
        return self

    @property
    def banned_features(self) -> list[str]:
        """Columns that must not reach the model."""
        return [] if self.use_sensitive_features else list(self.sensitive_features)
