"""The DVC pipeline: one module per stage, run by dvc.yaml as `python -m <package>.pipeline <stage>`.

check -> ingest -> validate -> split -> train -> evaluate. Each stage module has pure functions,
one `run(settings, paths)` that reads and writes the stage's files, and `main()` for dvc.yaml.
"""
