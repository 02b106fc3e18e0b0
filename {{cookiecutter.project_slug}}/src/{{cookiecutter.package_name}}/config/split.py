"""params.yaml `split:`: how much of the data is held out for the test set."""

from __future__ import annotations

from pydantic import Field

from .reading import Strict


class SplitSettings(Strict):
    test_size: float = Field(gt=0, lt=1)
    seed: int
