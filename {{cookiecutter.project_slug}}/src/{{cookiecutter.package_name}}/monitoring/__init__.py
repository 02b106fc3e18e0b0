"""`<package> monitor`: a window of the prediction log (and its delayed labels) against training.

`window.py` reads the served rows, `drift.py` compares columns, `quality.py` scores the labelled
rows, `verdict.py` turns them into checks, a report and an exit code, `run.py` wires them.
"""
