"""Every MLflow UI address the tool gives opens on the training view, at the UI that shows the store."""

from __future__ import annotations

import json
import urllib.parse

from mlproject.tracking.ui_address import compare_address, experiment_address, how_to_open, run_address


def _route_query(address: str) -> dict[str, str]:
    route = address.split("#", 1)[1]
    return dict(urllib.parse.parse_qsl(route.split("?", 1)[1]))


def test_every_address_asks_for_the_training_view():
    for address in (experiment_address("sqlite:///mlflow.db", "3"), run_address("sqlite:///mlflow.db", "3", "abc"),
                    compare_address("sqlite:///mlflow.db", "3", ["abc", "def"])):
        # In the query of the `#/` route: the UI's router reads it there, not before the `#`.
        assert _route_query(address)["workflowType"] == "machine_learning"


def test_a_server_is_its_own_ui_and_a_local_store_needs_mlflow_ui_started():
    assert experiment_address("https://mlflow.lab.org/", "7").startswith("https://mlflow.lab.org/#/experiments/7?")
    assert experiment_address("sqlite:////tmp/m.db", "7").startswith("http://127.0.0.1:5000/#/experiments/7?")
    assert how_to_open("https://mlflow.lab.org") == ""
    assert "mlflow ui --backend-store-uri sqlite:////tmp/m.db" in how_to_open("sqlite:////tmp/m.db")


def test_the_comparison_names_its_runs_and_experiment():
    query = _route_query(compare_address("http://127.0.0.1:5000", "2", ["r1", "r2"]))
    assert json.loads(query["runs"]) == ["r1", "r2"]
    assert json.loads(query["experiments"]) == ["2"]
