"""`python -m <package>.pipeline <stage>`: how dvc.yaml runs each stage.

Only this file and the stage's own module (with what it imports) are the stage's code, so
dvc.yaml can name exactly the files whose change must re-run the stage.
"""

from __future__ import annotations

import importlib
import sys

# In dvc.yaml's order.
STAGES = ("check", "ingest", "validate", "split", "tune", "train", "evaluate", "backtest")


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in STAGES:
        print(f"usage: python -m {__package__} <stage>; stages: {', '.join(STAGES)}", file=sys.stderr)
        return 2
    return importlib.import_module(f"{__package__}.{argv[0]}").main()


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
