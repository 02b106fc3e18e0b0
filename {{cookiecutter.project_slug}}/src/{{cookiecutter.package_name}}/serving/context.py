"""Context fields: what a request may carry beside the model's inputs, and how each is logged.

`serving.log.context` names each field and its rule: keep (in clear), hash (a keyed
pseudonym: the same value gives the same text, so the log can still be sliced by it, but
without the key nobody can tell which value it was, even for a field of two values) or drop
(accepted, never written). The model never sees these fields.
"""

# No `from __future__ import annotations` here: FastAPI reads the request model
# of /predict from the annotation at run time, and that model is built at run time.
import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence

from ..config.serving import LOG_KEY_ENV, ContextRule
from .errors import ServeError

PSEUDONYM_PREFIX = "hmac-sha256:"


def check_context(rules: Mapping[str, ContextRule], inputs: Sequence[str], key: str | None) -> None:
    """Refuse a context field that is a model input, and hashing without a key (None: nothing is logged)."""
    both = [name for name in rules if name in inputs]
    if both:
        raise ServeError(
            f"serving.log.context: {', '.join(both)} is an input of the model, not context "
            "(context fields never reach the model)"
        )
    hashed = [name for name, rule in rules.items() if rule == "hash"]
    if hashed and key == "":
        raise ServeError(
            f"serving.log.context: {', '.join(hashed)} is hashed: set {LOG_KEY_ENV} "
            "(e.g. `openssl rand -hex 32`), or drop the field"
        )


def pseudonym(key: bytes, value: object) -> str:
    """The same value and key give the same text; without the key it cannot be matched to a value."""
    digest = hmac.new(key, json.dumps(value, sort_keys=True).encode(), hashlib.sha256).hexdigest()
    return PSEUDONYM_PREFIX + digest


def logged_context(row: Mapping[str, object], rules: Mapping[str, ContextRule], key: bytes) -> dict:
    """One row's context as the log stores it: kept, hashed, or left out; a field not sent is null."""
    logged: dict[str, object] = {}
    for name, rule in rules.items():
        value = row.get(name)
        if rule == "keep":
            logged[name] = value
        elif rule == "hash":
            logged[name] = None if value is None else pseudonym(key, value)
    return logged
