"""Model reloads without a restart: on `POST /admin/reload`, and by polling the source."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from ..config.serving import ServingSettings
from ..schema import Contract
from .errors import ServeError
from .metrics import ServerMetrics
from .sources import ModelSource, Served

logger = logging.getLogger(__name__)


class State:
    """What the app serves now; swapped as a whole by a reload."""

    def __init__(
        self,
        served: Served,
        source: ModelSource | None,
        challenger: Served | None = None,
        challenger_source: ModelSource | None = None,
    ) -> None:
        self.served = served
        self.source = source
        self.challenger = challenger  # scored in shadow, or answering a split's share
        self.challenger_source = challenger_source
        self.refused_challenger = ""  # fingerprint of a challenger refused for its inputs
        self.loaded_at = now()
        self.refused = ""  # fingerprint of a model refused for its inputs: not loaded again
        self.reload_lock = asyncio.Lock()


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def fits(new: Served, current: Served) -> bool:
    """A model may replace the served one only if it takes the same inputs and is of the same kind."""
    return new.inputs == current.inputs and (new.classes is None) == (current.classes is None)


class Reloader:
    def __init__(self, state: State, contract: Contract, metrics: ServerMetrics) -> None:
        self.state, self.contract, self.metrics = state, contract, metrics

    async def reload_challenger(self) -> bool:
        """Load the challenger's source again if it changed (its alias moved); keep the current
        challenger when the new one cannot be scored on the served model's requests."""
        from .challenger import check_challenger

        state, source = self.state, self.state.challenger_source
        if source is None:
            return False
        async with state.reload_lock:
            current = state.challenger  # None until the alias exists
            fingerprint = await asyncio.to_thread(source.fingerprint)
            if fingerprint in (current.fingerprint if current else "", state.refused_challenger):
                return False
            try:
                new = await asyncio.to_thread(source.load, self.contract)
            except Exception as err:  # a failed download, a half-written model: tried again next time
                raise ServeError(f"challenger from {source} not loaded: {err}") from err
            try:
                check_challenger(new, state.served)
            except ServeError:
                state.refused_challenger = fingerprint  # not loaded again until it changes
                raise
            state.challenger = new
            logger.warning("challenger %s (was %s)", new.version, current.version if current else "none")
            return True

    async def reload(self) -> bool:
        """Load the source again if it changed; swap only a model that takes the same inputs."""
        state = self.state
        if state.source is None:
            raise ServeError("this server was started without a model source to reload from")
        async with state.reload_lock:
            current = state.served
            try:
                new = await self._changed(state.source, current)
            except Exception as err:
                self.metrics.reloads.labels("failed").inc()
                if isinstance(err, ServeError):
                    raise
                # A half-written directory, an unreadable file, a failed download: keep the current model.
                raise ServeError(f"could not load the model from {state.source}: {err}") from err
            if new is None:
                return False
            state.served = new  # one assignment: each request uses the model it started with
            state.loaded_at = now()
            self.metrics.show(new)
            self.metrics.reloads.labels("swapped").inc()
            logger.warning("serving model %s (was %s)", new.version, current.version)
            return True

    async def _changed(self, source: ModelSource, current: Served) -> Served | None:
        """The model the source holds now, if it is another one; ServeError if it does not fit."""
        fingerprint = await asyncio.to_thread(source.fingerprint)
        if fingerprint == current.fingerprint:
            return None
        if fingerprint == self.state.refused:
            raise ServeError(f"{source}: that model was refused before: restart to serve it")
        new = await asyncio.to_thread(source.load, self.contract)
        if not fits(new, current):
            self.state.refused = fingerprint
            raise ServeError(
                f"model {new.version} takes other inputs than {current.version} "
                f"({', '.join(new.inputs)}): restart the server to serve it"
            )
        return new

    async def poll(self, serving: ServingSettings) -> None:
        while True:
            await asyncio.sleep(serving.reload_seconds)
            for reload in (self.reload, self.reload_challenger):
                try:
                    await reload()
                except ServeError as err:  # keep serving the current model
                    logger.warning("model reload failed: %s", err)
