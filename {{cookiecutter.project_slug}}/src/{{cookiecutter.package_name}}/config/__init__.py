"""Settings: `params.yaml` -> typed, validated settings, one module per section.

`reading` is the one reader of the file; `<section>.py` types the section of that name;
`settings` is the whole file with its cross-section rules (the check stage, the CLI). A
pipeline stage reads only its own sections (its `StageSettings`), so that dvc.yaml can name
only their modules as its code: a setting added for the gate re-runs no stage.
"""
