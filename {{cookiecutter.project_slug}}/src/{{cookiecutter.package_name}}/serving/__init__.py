"""The model server (FastAPI + uvicorn, `<package> serve`).

Requests are checked against the same data contract that training validates
with (`schema.yaml`; `requests.py`), every prediction is logged (`log.py`),
metrics are exposed (`metrics.py`), and the model is swapped without a restart
when its registry alias moves (`reload.py`).

A *model source* (`sources.py`) is either a local MLflow model directory
(`models/model`) or a registry URI, `models:/<name>@<alias>` (or
`models:/<name>/<version>`).

Access (`access.py`): the admin endpoint (`POST /admin/reload`) and the detail of
`/version` need the bearer token in `SERVE_ADMIN_TOKEN`; without one, only a
server on a loopback address answers them, and only to loopback clients (a server
on any other address refuses to start without it). Each logged prediction records
whether its request carried the admin token or `SERVE_TRUSTED_TOKEN`: the canary
replays trusted rows only, so anonymous callers cannot steer it.

Slow clients are cut off (`middleware.py`, `server.py`): a request's head and its
body must each arrive within `serving.body_timeout_seconds` (params.yaml): a
stalled body gets 408, a stalled head is closed. Idle kept-alive connections close
after KEEP_ALIVE_SECONDS, and connections plus requests in progress are bounded by
MAX_CONCURRENCY (503 beyond). Tokens shorter than MIN_TOKEN_LENGTH are refused.

The hot path avoids pandas and scikit-learn's per-call checks (`fast_path.py`).
At every load the compiled path is compared with the pipeline itself on rows
drawn from the contract; if they differ, the server uses the pipeline.
"""
