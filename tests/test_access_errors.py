"""A refused login, a refused permission and a missing server are one sentence and exit code 2, never a
traceback, and never carry a password."""

from __future__ import annotations

import pytest
import requests
from mlflow.tracking import MlflowClient
from mlflow.utils.rest_utils import verify_rest_response

from mlproject import train
from mlproject.tracking.server_errors import explain, reports_access_errors
from tests.helpers import free_port


def answer(status: int, body: str) -> requests.Response:
    """The response an MLflow auth server gives, as MLflow's client receives it."""
    response = requests.Response()
    response.status_code = status
    response._content = body.encode()
    return response


def refused(status: int, body: str) -> Exception:
    with pytest.raises(Exception) as caught:
        verify_rest_response(answer(status, body), "/api/2.0/mlflow/runs/create")
    return caught.value


def test_a_refused_login_names_the_user_and_the_variables_to_set(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    message = explain(refused(401, "You are not authenticated. Please see ..."))
    assert "refused the login of user 'alice' (HTTP 401)" in message and "MLFLOW_TRACKING_PASSWORD" in message


def test_a_refused_permission_names_the_request_and_who_grants_it(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bob")
    message = explain(refused(403, "Permission denied"))
    assert "user 'bob' has no permission" in message and "/api/2.0/mlflow/runs/create" in message
    assert "ask its owner or an admin" in message


def test_a_missing_server_says_so_after_a_short_wait(monkeypatch):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    uri = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(Exception) as caught:
        MlflowClient(uri).search_experiments()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    assert explain(caught.value).startswith(f"cannot reach the tracking server {uri} (Connection refused)")


def test_other_errors_are_not_dressed_up_as_access_problems():
    assert explain(refused(400, "{\"error_code\": \"INVALID_PARAMETER_VALUE\", \"message\": \"bad\"}")) is None
    assert explain(ValueError("a bug")) is None

    @reports_access_errors
    def main() -> int:
        raise ValueError("a bug")

    with pytest.raises(ValueError):  # a bug keeps its traceback
        main()


def test_an_access_error_ends_the_entry_point_with_exit_2_and_one_line(monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "bob")

    @reports_access_errors
    def main() -> int:
        try:
            verify_rest_response(answer(403, "Permission denied"), "/api/2.0/mlflow/runs/create")
        finally:
            raise RuntimeError("a clean-up that failed as well")  # the 403 is still what is reported

    assert main() == 2
    err = capsys.readouterr().err
    assert err.startswith("error: user 'bob' has no permission") and err.count("\n") == 1


def test_a_password_in_the_tracking_uri_is_refused_before_anything_starts(in_tmp, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://alice:s3cret-pass@mlflow.lab.example.org")
    assert train.main(["--scale", "tiny"]) == 2
    err = capsys.readouterr().err
    assert "MLFLOW_TRACKING_URI holds a password" in err and "MLFLOW_TRACKING_PASSWORD" in err
    assert "s3cret-pass" not in err and not (in_tmp / "mlflow.db").exists()


def test_the_command_that_resumes_a_stopped_run_carries_no_login(monkeypatch):
    # Tag `resume_with` is built from the entry point's arguments, never from the environment.
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "s3cret-pass")
    args = train.build_parser().parse_args(["--scale", "tiny", "--overrides", "train.lr=1e-4"])
    for command in train.resume_commands(args, "0" * 32):
        assert "resume" in command and "s3cret-pass" not in command and "alice" not in command
