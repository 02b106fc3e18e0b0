"""The `tune` stage: search train.model's hyperparameters with Optuna, by cross-validation on the
training set only, and write the result to reports/tuning.json (train takes it when train.use_tuned).

Reproducible: a seeded TPE sampler, seeded folds, one trial at a time, and tune.n_trials trials,
whatever the machine's speed; tune.timeout_seconds fails the stage instead of cutting the search
short. Trial 0 is train.model as given, so the best is never worse than it on the folds. Each
run starts a fresh study (a previous one of the same name is deleted) in tune.storage.
"""

from __future__ import annotations

import contextlib
import os
import re
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ..config.tune import Range, TuneSettings
from ..data import features_and_target, read_frame
from ..metrics import BETTER, metric_names
from ..paths import Paths
from ..tuning import tuned_model
from .scoring import score
from .stage import StageFailed, relative, run_stage, write_json
from .train import StageSettings as TrainStageSettings
from .train import fit

DIGITS = 6  # values rounded as in metrics.json: the report's bytes are the same on every platform
DEFAULT_METRIC = {"classification": "roc_auc", "regression": "rmse"}


class StageSettings(TrainStageSettings):
    """The sections of params.yaml that tune reads: train's (it fits the same pipeline) and tune."""

    tune: TuneSettings = TuneSettings()


class TuningTimeout(StageFailed):
    """The search ran past tune.timeout_seconds."""


def objective_metric(task: str, tune: TuneSettings) -> str:
    name = tune.metric or DEFAULT_METRIC[task]
    allowed = metric_names(task)
    if name not in allowed:
        raise ValueError(f"tune.metric: {name!r} is not a {task} metric; allowed: {', '.join(allowed)}")
    return name


def search_space(settings: StageSettings) -> dict[str, Range]:
    kind = settings.train.model.kind
    space = settings.tune.search.of(kind)
    if not space:
        raise ValueError(f"tune.search.{kind}: no hyperparameter to search for train.model.kind {kind}")
    return space


def folds(train: pd.DataFrame, settings: StageSettings) -> list[tuple[np.ndarray, np.ndarray]]:
    """Seeded cross-validation folds of the training set (stratified by class for classifiers)."""
    from sklearn.model_selection import KFold, StratifiedKFold

    n_folds, seed = settings.tune.cv_folds, settings.tune.seed
    target = train[settings.data.target]
    if settings.task == "classification":
        smallest = int(target.value_counts().min())
        if smallest < n_folds:
            raise ValueError(
                f"tune.cv_folds: {n_folds} folds need {n_folds} rows of each class; "
                f"the training set's smallest class has {smallest}"
            )
        splitter: KFold | StratifiedKFold = StratifiedKFold(n_folds, shuffle=True, random_state=seed)
    else:
        splitter = KFold(n_folds, shuffle=True, random_state=seed)
    return list(splitter.split(train, target))


def suggest(trial, name: str, bounds: Range) -> int | float:
    if bounds.integer:
        return int(trial.suggest_int(name, int(bounds.low), int(bounds.high), log=bounds.log))
    return float(trial.suggest_float(name, float(bounds.low), float(bounds.high), log=bounds.log))


def with_params(settings: StageSettings, params: Mapping[str, object]) -> StageSettings:
    """The settings with these hyperparameters over train.model's."""
    model = tuned_model(
        settings.train.model, {"model": settings.train.model.kind, "best": {"params": dict(params)}}
    )
    return settings.model_copy(update={"train": settings.train.model_copy(update={"model": model})})


def cross_validated(train: pd.DataFrame, settings: StageSettings, metric: str, check_time: Callable) -> float:
    """The metric's mean over the folds, for train.model as these settings give it."""
    values = []
    for fit_rows, held_out in folds(train, settings):
        check_time()
        model = fit(train.iloc[fit_rows], settings)
        features, target = features_and_target(train.iloc[held_out], settings.data.target)
        inputs = features[list(model.feature_names_in_)]
        values.append(score(model, inputs, target, settings.task, settings.data.positive_class)[metric])
    return float(np.mean(values))


def open_study(name: str, storage: str | None, direction: Literal["maximize", "minimize"], seed: int):
    """A fresh study: any previous one of this name in the storage is deleted first."""
    import optuna

    with storage_errors(storage):
        rdb = rdb_storage(storage) if storage is not None else None
        if rdb is not None:
            with contextlib.suppress(KeyError):  # no such study yet
                optuna.delete_study(study_name=name, storage=rdb)
        return optuna.create_study(
            study_name=name, storage=rdb, direction=direction, sampler=optuna.samplers.TPESampler(seed=seed)
        )


CONNECT_SECONDS = 10  # a database that does not answer fails the stage after this, not never


def rdb_storage(url: str):
    """Optuna's storage for the SQLAlchemy URL, bounded in the time it waits to connect."""
    import optuna

    waits = {"connect_args": {"connect_timeout": CONNECT_SECONDS}} if url.startswith("postgresql") else {}
    return optuna.storages.RDBStorage(url, engine_kwargs=waits)


@contextlib.contextmanager
def storage_errors(url: str | None) -> Iterator[None]:
    """A storage that cannot be used (no driver, no database, a bad URL): one line naming
    tune.storage, its password hidden."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        yield
    except (ImportError, SQLAlchemyError) as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0]
        if isinstance(err, ImportError):
            reason = f"its driver is not installed ({reason}): add it, e.g. `uv add 'psycopg[binary]'`"
        raise StageFailed(f"tune.storage {hidden(url or '')}: {reason}") from None


def hidden(url: str) -> str:
    """A database URL with its password masked."""
    return re.sub(r"(://[^:/@]*):[^@/]*@", r"\1:***@", url)


def worker_shares(n_trials: int, workers: int) -> list[int]:
    """How many trials each worker runs: n_trials in all, as even as whole numbers allow."""
    return [n_trials // workers + (1 if index < n_trials % workers else 0) for index in range(workers)]


def tune(
    train: pd.DataFrame,
    settings: StageSettings,
    storage: str | None = None,
    progress: bool = False,
    clock: Callable[[], float] = time.monotonic,
) -> dict:
    """The pure search: the training set and settings in, the report out (storage None: in memory).
    With tune.workers above 1, that many processes (this one too) search the one study in storage."""
    import optuna

    features_and_target(train, settings.data.target)  # a missing target: one line, before any trial
    metric = objective_metric(settings.task, settings.tune)
    space = search_space(settings)
    direction: Literal["maximize", "minimize"] = "maximize" if BETTER[metric] == "higher" else "minimize"
    workers = settings.tune.workers
    if workers > 1 and storage is None:
        raise ValueError("tune.workers: more than 1 worker needs tune.storage, the study they share")
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # the progress bar and one line say enough
    study = open_study(settings.tune.study, storage, direction, settings.tune.seed)
    given = settings.train.model.model_dump()
    study.enqueue_trial({name: given[name] for name in space if given.get(name) is not None})
    shares = worker_shares(settings.tune.n_trials, workers)
    helpers = Helpers(train, settings, storage, shares[1:]) if workers > 1 else None
    try:
        search(study, train, settings, shares[0], clock, progress)
    except BaseException:
        if helpers is not None:
            helpers.stop()
        raise
    if helpers is not None:
        helpers.wait()
    return report(study, settings, metric, direction)


def search(study, train: pd.DataFrame, settings: StageSettings, trials: int, clock, progress: bool) -> None:
    """Run `trials` trials of the study here (one worker's share)."""
    from threadpoolctl import threadpool_limits

    metric, space = objective_metric(settings.task, settings.tune), search_space(settings)
    limit, started = settings.tune.timeout_seconds, clock()

    def check_time() -> None:
        spent = clock() - started
        if spent > limit:
            raise TuningTimeout(
                f"tune: stopped after {spent:.0f} s, past tune.timeout_seconds ({limit:g}), with "
                f"{len(study.trials) - 1} of {settings.tune.n_trials} trials done: raise the timeout "
                "or lower tune.n_trials (a search is never cut short: its result would depend on speed)"
            )

    def objective(trial) -> float:
        trial.set_user_attr("worker", os.getpid())
        params = {name: suggest(trial, name, bounds) for name, bounds in space.items()}
        return cross_validated(train, with_params(settings, params), metric, check_time)

    # One thread per fit: gradient boosting's OpenMP threads on a busy machine made a trial 20
    # times slower, and the results are the same either way.
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")  # Optuna's notes on an enqueued value outside a range
        study.optimize(objective, n_trials=trials, show_progress_bar=progress, catch=())


class Helpers:
    """The other workers: processes that each load the study and run their share of trials."""

    def __init__(self, train: pd.DataFrame, settings: StageSettings, storage: str | None, shares: list[int]):
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # no forked copy of this process's threads
        self.errors = context.Queue()
        self.processes = [
            context.Process(
                target=work, args=(train, settings, storage, share, index, self.errors), daemon=True
            )
            for index, share in enumerate(shares, start=1)
        ]
        for process in self.processes:
            process.start()

    def wait(self) -> None:
        """Until every helper is done; StageFailed with the first one's reason when one failed."""
        for process in self.processes:
            process.join()
        failed = [process.exitcode for process in self.processes if process.exitcode != 0]
        if failed:
            said = self.errors.get(timeout=5) if not self.errors.empty() else f"exit code {failed[0]}"
            raise StageFailed(f"tune: a worker failed: {said}")

    def stop(self) -> None:
        for process in self.processes:
            process.terminate()
            process.join()


def work(train: pd.DataFrame, settings: StageSettings, storage: str, trials: int, index: int, errors) -> None:
    """A helper process: its share of the study's trials, with a sampler seeded of its own."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        with storage_errors(storage):
            sampler = optuna.samplers.TPESampler(seed=settings.tune.seed + index)
            study = optuna.load_study(
                study_name=settings.tune.study, storage=rdb_storage(storage), sampler=sampler
            )
        search(study, train, settings, trials, time.monotonic, progress=False)
    except Exception as err:  # the reason goes to the stage's one line
        errors.put((str(err).strip().splitlines() or [type(err).__name__])[0])
        raise SystemExit(1) from None


def report(study, settings: StageSettings, metric: str, direction: str) -> dict:
    trials = [
        {"trial": trial.number, "value": round(float(trial.value), DIGITS), "params": trial.params}
        for trial in study.trials
    ]
    best = study.best_trial
    return {
        "tuned": True,
        "model": settings.train.model.kind,
        "metric": metric,
        "direction": direction,
        "cv_folds": settings.tune.cv_folds,
        "n_trials": settings.tune.n_trials,
        "seed": settings.tune.seed,
        "default": trials[0],  # train.model as given
        "best": {"trial": best.number, "value": round(float(best.value), DIGITS), "params": best.params},
        "trials": trials,
    }


def storage_url(settings: StageSettings, root: Path) -> str:
    """tune.storage, a relative sqlite path made relative to the project root (its folder made)."""
    from ..tracking import absolute_uri, sqlite_file

    url = absolute_uri(settings.tune.storage, root)
    database = sqlite_file(url)
    if database is not None:
        database.parent.mkdir(parents=True, exist_ok=True)
    return url


# Written when train.use_tuned is false: always the same bytes, so editing tune.* then re-runs
# nothing after this stage, and a first run does not pay for a search it would not use.
NOT_TUNED = {"tuned": False, "reason": "train.use_tuned is false: train fits train.model as given"}


def run(settings: StageSettings, paths: Paths) -> None:
    where = relative(paths.tuning, paths)
    if not settings.train.use_tuned:
        write_json(paths.tuning, NOT_TUNED)
        print(f"tune: skipped, train.use_tuned is false -> {where}")
        return
    train = read_frame(paths.train)
    started = time.monotonic()
    result = tune(train, settings, storage=storage_url(settings, paths.root), progress=True)
    write_json(paths.tuning, result)
    best, default = result["best"], result["default"]
    print(
        f"tune: {result['n_trials']} trials of {result['model']} in {time.monotonic() - started:.1f} s, "
        f"{result['metric']} {default['value']} (train.model) -> {best['value']} (trial {best['trial']}) "
        f"-> {where}"
    )


def main(root: Path | None = None) -> int:
    return run_stage(lambda paths: run(StageSettings.load(paths.params), paths), root)
