"""Batch scoring: a file of rows in (CSV or Parquet, a path or any fsspec URL), predictions out.

The file is read in chunks, so one larger than memory works. Each row is checked by the model's
request contract, the one /predict applies; a row that breaks it goes to the rejects file with
the reason, never dropped in silence. Both files are written under temporary names and moved
into place at the end: a failed run leaves no half-written file where the output belongs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ValidationError

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from .schema import Contract

FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
TEXT_TYPES = ("category", "date", "text")  # read as text: "01" stays "01", "1" is no integer 1
ROW = "row"  # the output's and the rejects' column: the row's position in the input, from 1
REASON = "reason"


class BatchError(ValueError):
    """The input cannot be scored at all (its format, its columns): one line, nothing written."""


@dataclass
class Chunk:
    """One chunk's outcome: the scored rows (as output columns) and the refused ones; the scored
    rows as checked (with their context) and the model's answers, for the log."""

    scored: pd.DataFrame
    rejected: pd.DataFrame
    rows: list[dict]
    predictions: list
    probabilities: list | None


STAGING_FOLDER_PREFIX = "predict-"  # a temporary folder of its own per URL output


def staging_path(url: str) -> Path:
    """Where a file for `url` is written first: beside it when it is a path (so the move is one
    rename), else in a temporary folder of its own (it is uploaded whole)."""
    import tempfile

    if "://" in url and not url.startswith("file://"):
        return Path(tempfile.mkdtemp(prefix=STAGING_FOLDER_PREFIX)) / url.rsplit("/", 1)[-1]
    path = Path(url.removeprefix("file://"))
    return path.with_name(f".{path.name}.partial")


def remove_staged(staging: Path) -> None:
    """Delete the staged file, and the temporary folder `staging_path` made for it."""
    import tempfile

    staging.unlink(missing_ok=True)
    folder = staging.parent
    if folder.name.startswith(STAGING_FOLDER_PREFIX) and folder.parent == Path(tempfile.gettempdir()):
        folder.rmdir()


def rejects_url(output: str) -> str:
    """The rejects' file beside the output: `<name>.rejects.csv`."""
    head, _, name = output.rpartition("/")
    stem = name.rsplit(".", 1)[0]
    return f"{head}/{stem}.rejects.csv" if head else f"{stem}.rejects.csv"


def file_format(url: str) -> str:
    """csv or parquet, from the name's ending; BatchError for any other."""
    name = url.rsplit("/", 1)[-1].lower()
    for ending, kind in FORMATS.items():
        if name.endswith(ending):
            return kind
    raise BatchError(f"{url}: expected a file ending in {', '.join(FORMATS)}")


def read_chunks(handle: Any, kind: str, chunk_rows: int, contract: Contract) -> Iterator[pd.DataFrame]:
    """The file's rows, `chunk_rows` at a time."""
    import pandas as pd

    if kind == "csv":
        text = {name: "string" for name, rule in contract.columns.items() if rule.type in TEXT_TYPES}
        for chunk in pd.read_csv(handle, chunksize=chunk_rows, dtype=text, keep_default_na=True):
            yield values_from_text(chunk, contract)
        return
    import pyarrow.parquet as pq

    for batch in pq.ParquetFile(handle).iter_batches(batch_size=chunk_rows):
        yield batch.to_pandas()


def values_from_text(chunk: pd.DataFrame, contract: Contract) -> pd.DataFrame:
    """A CSV is text: where one value of a column is no number, pandas leaves the whole column as
    text. Each value that reads as a number (or true/false) becomes one; any other stays text,
    for the contract to refuse that row alone."""
    import pandas as pd

    changed = {}
    for name, rule in contract.columns.items():
        if rule.type not in ("integer", "number", "boolean") or name not in chunk.columns:
            continue
        if not pd.api.types.is_string_dtype(chunk[name]):
            continue  # read as numbers (or true/false) already
        column = chunk[name].astype(object)
        if rule.type in ("integer", "number"):
            numbers = pd.to_numeric(column, errors="coerce")
            changed[name] = numbers.astype(object).where(numbers.notna() | column.isna(), column)
        elif rule.type == "boolean":
            changed[name] = column.map(boolean_from_text)
    return chunk.assign(**changed) if changed else chunk


def boolean_from_text(value: object) -> object:
    return {"true": True, "false": False}.get(value.lower(), value) if isinstance(value, str) else value


def missing_inputs(columns: Sequence[str], inputs: Sequence[str]) -> list[str]:
    return [name for name in inputs if name not in columns]


def as_records(frame: pd.DataFrame) -> list[dict]:
    """Rows as plain Python values, a missing value as None (what a JSON request would hold).
    Built column by column: five times faster than DataFrame.to_dict on 100,000 rows."""
    names = [str(name) for name in frame.columns]
    columns = [plain_values(frame[name]) for name in frame.columns]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def plain_values(column: pd.Series) -> list:
    import pandas as pd

    values = column.tolist()
    if not column.hasnans:
        return values
    return [None if value is pd.NA or value is None or value != value else value for value in values]


def checked(records: list[dict], row_model: type[BaseModel]) -> tuple[list[int], list[dict], dict[int, str]]:
    """The positions and values of the rows the contract accepts, and why each other one is refused."""
    kept, values, refused = [], [], {}
    for position, record in enumerate(records):
        try:
            values.append(row_model.model_validate(record).__dict__)
        except ValidationError as err:
            refused[position] = reason(err)
            continue
        kept.append(position)
    return kept, values, refused


def reason(err: ValidationError) -> str:
    """A refused row's reason, one line: each field and what was wrong with it."""
    return "; ".join(f"{'.'.join(str(part) for part in e['loc'])}: {e['msg']}" for e in err.errors())


def scored_frame(
    positions: list[int],
    first_row: int,
    predictions: list,
    probabilities: list | None,
    classes: Sequence[str],
) -> pd.DataFrame:
    """The output's rows: the input row, the prediction, and each class's probability."""
    import pandas as pd

    columns: dict[str, Any] = {ROW: [first_row + p for p in positions], "prediction": predictions}
    if probabilities is not None:
        for index, label in enumerate(classes):
            columns[f"probability_{label}"] = [row[index] for row in probabilities]
    return pd.DataFrame(columns)


def rejected_frame(records: list[dict], refused: dict[int, str], first_row: int) -> pd.DataFrame:
    """The rejects' rows: the input row, the reason, and the row as it was (JSON, missing as null)."""
    import pandas as pd

    rows = [
        {ROW: first_row + p, REASON: why, "values": json.dumps(records[p], default=str)}
        for p, why in refused.items()
    ]
    return pd.DataFrame(rows, columns=[ROW, REASON, "values"])


def finite_rows(predictions: list, probabilities: list | None) -> np.ndarray:
    """Per row: an answer anyone may act on, with no NaN or infinity (in a classifier's
    probabilities, or a regressor's prediction)."""
    import numpy as np

    if probabilities is not None:
        return np.isfinite(np.asarray(probabilities, dtype=float)).all(axis=1)
    return np.isfinite(np.asarray(predictions, dtype=float))


NOT_FINITE = "the model's answer is not a finite number"


@dataclass
class Scored:
    rows: int = 0
    scored: int = 0
    rejected: int = 0


@dataclass(frozen=True)
class LogTo:
    """Where the scored rows go as prediction log records (`serving.log`), and how."""

    write: Callable[[list[dict]], None]
    run_id: str  # request ids are <run_id>-<chunk>-<part>: a label names one of them and a row
    record_rows: int  # rows per record, as a batch request to the server holds at most
    context: tuple[str, ...] = ()  # serving.log.context: logged as the rules say, never given to the model
    trusted: bool = False  # the rows may become training data once labelled (feedback export)


def score_chunk(
    chunk: pd.DataFrame, first_row: int, served: Any, row_model: type[BaseModel], context: Sequence[str] = ()
) -> Chunk:
    """One chunk: the contract's check, the model's answers, the rows refused and why."""
    import numpy as np

    records = as_records(chunk[[*served.inputs, *context]])
    kept, values, refused = checked(records, row_model)
    model_rows = [{k: v for k, v in row.items() if k not in context} for row in values] if context else values
    predictions, probabilities = served.predict(model_rows) if values else ([], None)
    answered = finite_rows(predictions, probabilities) if values else None
    if answered is not None and not answered.all():  # refused, as the server refuses a NaN answer
        refused |= {kept[i]: NOT_FINITE for i in np.flatnonzero(~answered)}
        kept = [position for position, ok in zip(kept, answered, strict=True) if ok]
        values = [row for row, ok in zip(values, answered, strict=True) if ok]
        predictions = [value for value, ok in zip(predictions, answered, strict=True) if ok]
        if probabilities is not None:
            probabilities = [row for row, ok in zip(probabilities, answered, strict=True) if ok]
    classes = served.classes or ()
    return Chunk(
        scored_frame(kept, first_row, predictions, probabilities, classes),
        rejected_frame(records, dict(sorted(refused.items())), first_row),
        values,
        predictions,
        probabilities,
    )


def log_records(chunk: Chunk, number: int, served: Any, log: LogTo, now: float) -> list[dict]:
    """A chunk's scored rows as prediction log records, as the server writes them for a batch
    request, with `"source": "batch"` and no latency (a chunk's time is no request's)."""
    records = []
    classes = served.classes or ()
    for part, start in enumerate(range(0, len(chunk.rows), log.record_rows)):
        stop = start + log.record_rows
        record = {
            "request_id": f"{log.run_id}-{number}-{part}",
            "time": now,
            "model_name": served.name,
            "model_version": served.version,
            "inputs": chunk.rows[start:stop],
            "outputs": chunk.predictions[start:stop],
            "latency_ms": None,
            "trusted": log.trusted,
            "source": "batch",
        }
        if chunk.probabilities is not None:
            record["probabilities"] = [
                dict(zip(classes, p, strict=True)) for p in chunk.probabilities[start:stop]
            ]
        records.append(record)
    return records


def score_file(
    source: Any,
    kind: str,
    served: Any,
    contract: Contract,
    chunk_rows: int,
    output: Writer,
    rejects: Writer,
    progress: Any = None,
    log: LogTo | None = None,
) -> Scored:
    """Score every chunk of the open `source` into the writers (and the log); BatchError when an
    input is missing."""
    import time

    from .serving.requests import request_model

    done = Scored()
    for number, chunk in enumerate(read_chunks(source, kind, chunk_rows, contract)):
        columns = [str(c) for c in chunk.columns]
        missing = missing_inputs(columns, served.inputs)
        if missing:
            raise BatchError(
                f"no column {', '.join(missing)} in the input: the model needs {', '.join(served.inputs)}"
            )
        context = [name for name in (log.context if log else ()) if name in columns]
        if number == 0:
            row_model = request_model(contract, list(served.inputs), context)
        outcome = score_chunk(chunk, done.rows + 1, served, row_model, context)
        output.append(outcome.scored)
        rejects.append(outcome.rejected)
        if log is not None and outcome.rows:
            log.write(log_records(outcome, number, served, log, time.time()))
        done.rows += len(chunk)
        done.scored += len(outcome.scored)
        done.rejected += len(outcome.rejected)
        if progress is not None:
            progress.update(len(chunk))
    return done


class Writer:
    """Appends frames to a CSV or Parquet file under a temporary name; `commit` moves it to `url`
    (a path, or any fsspec URL: uploaded whole), `discard` leaves `url` as it was."""

    def __init__(self, url: str, kind: str, staging: Path) -> None:
        self.url, self.kind, self.staging = url, kind, staging
        self._parquet: Any = None
        self._schema: Any = None
        self._started = False

    def append(self, frame: pd.DataFrame) -> None:
        if self.kind == "csv":
            frame.to_csv(
                self.staging, mode="a" if self._started else "w", header=not self._started, index=False
            )
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(frame, schema=self._schema, preserve_index=False)
            if self._parquet is None:
                self._schema = table.schema
                self._parquet = pq.ParquetWriter(self.staging, self._schema)
            self._parquet.write_table(table)
        self._started = True

    def commit(self, header: pd.DataFrame) -> None:
        """Move the file into place; with no rows appended, a file of `header`'s columns only."""
        if not self._started:
            self.append(header)
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        import fsspec

        fs, path = fsspec.core.url_to_fs(self.url)
        if isinstance(fs, fsspec.implementations.local.LocalFileSystem):
            Path(self.staging).replace(path)
        else:
            fs.put_file(str(self.staging), path)
            remove_staged(self.staging)

    def discard(self) -> None:
        if self._parquet is not None:
            self._parquet.close()
            self._parquet = None
        remove_staged(self.staging)
