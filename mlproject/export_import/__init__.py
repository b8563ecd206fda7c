"""A study that travels: its runs exported into a folder a git repository can hold, and imported into any store.

The folder is written in the layout of the maintained `mlflow-export-import` tool (its `export-all`: one folder
per experiment with `experiment.json` and `runs/<id>/run.json`, `logged_models/`, and `models/<name>/model.json`),
so that either tool reads it. `layout.py` is that format, `exporting.py` writes it from a tracking store,
`importing.py` brings a store up to what a folder records.
"""
