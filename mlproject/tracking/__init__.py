"""The MLflow plumbing the entry points share: runs and experiments, the tracker, descriptions, UI addresses.

`tracker.py` implements `text2sign.training.reporting.Tracker` against one MLflow run; `experiment.py` picks
the experiment and starts runs; `runs.py` reads a finished run back; `descriptions.py` writes run and model
descriptions; `ui_address.py` the UI links an entry point prints; `server_errors.py` turns the tracking
server's refusals into messages; `undelivered.py` (`python -m mlproject.tracking.undelivered`) uploads what
a run could not deliver while the server was away.
"""
