"""The one error of the server: it cannot start or reload."""

# No `from __future__ import annotations` here: FastAPI reads the request model
# of /predict from the annotation at run time, and that model is built at run time.


class ServeError(ValueError):
    """The server cannot start or reload: no model, a bad source, a model that does not fit."""
