"""The `validate` stage: the raw data against the contract in schema.yaml, with a report either way."""

from __future__ import annotations

import sys
from pathlib import Path

from ..config.data import DataSettings
from ..config.reading import Sections
from ..data import read_frame
from ..paths import Paths
from ..schema import check_contract, format_failures, load_contract, validate_frame, validation_report
from .stage import StageFailed, relative, run_stage, write_json


class StageSettings(Sections):
    """The sections of params.yaml that validate reads."""

    data: DataSettings


def run(settings: StageSettings, paths: Paths) -> None:
    contract = load_contract(paths.contract)
    check_contract(contract, settings.data.target)
    frame = read_frame(paths.raw)
    failures = validate_frame(frame, contract)
    write_json(paths.validation, validation_report(frame, failures))
    if failures:
        print(format_failures(failures), file=sys.stderr)
        raise StageFailed(
            f"{relative(paths.raw, paths)} breaks the data contract in {len(failures)} check(s); "
            f"details in {relative(paths.validation, paths)}"
        )
    print(f"validate: {len(frame)} rows meet the contract")


def main(root: Path | None = None) -> int:
    return run_stage(lambda paths: run(StageSettings.load(paths.params), paths), root)
