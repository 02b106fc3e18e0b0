"""Who may do what: the admin and trusted tokens, and the loopback rules without them; the log's key."""

# No `from __future__ import annotations` here: FastAPI reads the request model
# of /predict from the annotation at run time, and that model is built at run time.
import hmac
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass

from ..config.serving import ADMIN_TOKEN_ENV, LOG_KEY_ENV, TRUSTED_TOKEN_ENV
from .errors import ServeError

MIN_TOKEN_LENGTH = 16  # a shorter token could be guessed


def is_loopback(host: str | None) -> bool:
    """127.0.0.0/8, ::1 or `localhost`; any other name or address is not (it may resolve anywhere)."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def bearer_matches(authorization: str | None, token: str) -> bool:
    """`Authorization: Bearer <token>`, compared in constant time; never true for an empty token."""
    scheme, _, given = (authorization or "").partition(" ")
    if not token or scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(token_bytes(given.strip()), token_bytes(token))


def token_bytes(text: str) -> bytes:
    return text.encode(errors="surrogateescape")  # any header or environment text, byte for byte


@dataclass(frozen=True)
class Access:
    """The secrets the server knows (tokens, the log's key) and whether it listens on loopback only."""

    admin_token: str = ""
    trusted_token: str = ""
    loopback: bool = False  # bound to a loopback address: without an admin token, loopback clients are admins
    log_key: str = ""  # the key of the prediction log's pseudonyms (context fields marked `hash`)

    @classmethod
    def from_env(cls, host: str | None, env: Mapping[str, str] = os.environ) -> "Access":
        names = (ADMIN_TOKEN_ENV, TRUSTED_TOKEN_ENV, LOG_KEY_ENV)
        admin, trusted, log_key = (env.get(name, "").strip() for name in names)
        return cls(admin, trusted, is_loopback(host), log_key)

    def is_admin(self, authorization: str | None, client: str | None) -> bool:
        if self.admin_token:
            return bearer_matches(authorization, self.admin_token)
        return self.loopback and is_loopback(client)

    def is_trusted(self, authorization: str | None) -> bool:
        """A request from a trusted source (trusted or admin token): the canary may replay its rows."""
        return any(bearer_matches(authorization, token) for token in (self.trusted_token, self.admin_token))


def check_access(host: str, access: Access) -> None:
    """Refuse a guessable token, and an admin token missing where anyone could call the server."""
    secrets = (
        (ADMIN_TOKEN_ENV, access.admin_token),
        (TRUSTED_TOKEN_ENV, access.trusted_token),
        (LOG_KEY_ENV, access.log_key),
    )
    for name, token in secrets:
        if token and len(token) < MIN_TOKEN_LENGTH:
            raise ServeError(
                f"{name} has {len(token)} characters: use at least {MIN_TOKEN_LENGTH} "
                "(e.g. `openssl rand -hex 32`)"
            )
    if not access.admin_token and not is_loopback(host):
        raise ServeError(
            f"serving on {host} (not a loopback address) needs an admin token: "
            f"set {ADMIN_TOKEN_ENV}, or serve on 127.0.0.1"
        )
