"""Each served version's own offline metric, as the registry recorded it at `register`
(the version's `metric.<name>` tag, from the metrics.json its model was evaluated with)."""

from __future__ import annotations

from ..config.settings import Settings
from ..paths import Paths


def registered_offline(
    settings: Settings, paths: Paths, versions: list[str], name: str
) -> tuple[dict[str, float], str | None]:
    """version -> its offline `name`, for the registry versions among `versions`; and why the
    registry could not be read, if it could not (the monitor then uses metrics.json alone)."""
    from ..deploy.registry import tag_values, with_absolute_store
    from ..tracking import RegistryError, local_store_present

    numbered = [version for version in versions if version.isdigit()]  # others are no registry version
    if not numbered:
        return {}, None
    settings = with_absolute_store(settings, paths.root)
    try:
        if not local_store_present(settings.mlflow.tracking_uri):
            return {}, "no tracking store here"
        found = tag_values(settings, numbered, f"metric.{name}")
    except RegistryError as err:
        return {}, str(err)
    return {version: value for version, text in found.items() if (value := as_number(text)) is not None}, None


def as_number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
