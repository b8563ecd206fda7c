"""What an entry point says when the tracking server refuses it or cannot be reached: one line, no traceback.

A wrong password (HTTP 401), a missing permission (403) and an unreachable server are a user's to fix,
so they end the entry point with exit code 2 and a sentence that names the fix. No message repeats a
password: MLflow's errors carry none, and a tracking URI holding one is refused before anything starts,
since the URI is printed, passed to child processes and saved beside undelivered metrics.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from typing import Callable
from urllib.parse import urlsplit

_UNREACHABLE = re.compile(r"Connection refused|Failed to establish a new connection|Max retries exceeded|"
                          r"Name or service not known|timeout exception|Read timed out")
_ENDPOINT = re.compile(r"endpoint (/\S+) failed|API request to \S+?(/api/\S+)")
HELP = "see docs/server.md"


def http_status(error: BaseException) -> int | None:
    """The HTTP status the server answered with, if the error is an answer (401, 403, 404, ...)."""
    import requests
    from mlflow.exceptions import MlflowException

    if isinstance(error, MlflowException):
        return error.get_http_status_code()
    if isinstance(error, requests.HTTPError) and error.response is not None:
        return error.response.status_code
    return None


def is_permission_denied(error: BaseException) -> bool:
    return http_status(error) == 403


def is_unreachable(error: BaseException) -> bool:
    import requests
    from mlflow.exceptions import MlflowException

    if isinstance(error, (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError)):
        return True
    return isinstance(error, MlflowException) and bool(_UNREACHABLE.search(str(error)))


def tracking_server() -> str:
    import mlflow

    return mlflow.get_tracking_uri()


def explain(error: BaseException) -> str | None:
    """A sentence for a refused login, a refused permission or an unreachable server; None for anything else."""
    status = http_status(error)
    user = os.environ.get("MLFLOW_TRACKING_USERNAME")
    if status == 401:
        who = f"user {user!r}" if user else "no user (MLFLOW_TRACKING_USERNAME is not set)"
        return (f"the tracking server {tracking_server()} refused the login of {who} (HTTP 401): set "
                f"MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD to your account on it; {HELP}.")
    if status == 403:
        return (f"user {user!r} has no permission for this on {tracking_server()} (HTTP 403, refused: "
                f"{_endpoint(error)}). Writing to an experiment needs EDIT on it, moving a model alias EDIT on the "
                f"registered model: ask its owner or an admin; {HELP}.")
    if is_unreachable(error):
        return (f"cannot reach the tracking server {tracking_server()} ({_cause(error)}). Check MLFLOW_TRACKING_URI "
                f"and that the server is running; {HELP}.")
    return None


def is_access_problem(error: BaseException) -> bool:
    """A refused login or permission, or no server: to be reported as such, never as "not found"."""
    return explain(error) is not None


def password_in_tracking_uri() -> str | None:
    """Why MLFLOW_TRACKING_URI must not be used as it is, or None when it holds no password."""
    uri = os.environ.get("MLFLOW_TRACKING_URI", "")
    try:
        password = urlsplit(uri).password
    except ValueError:
        return None
    if not password:
        return None
    where = "PGPASSWORD or ~/.pgpass" if uri.startswith("postgresql") else "MLFLOW_TRACKING_PASSWORD"
    return (f"MLFLOW_TRACKING_URI holds a password, which would be printed and logged with the URI: take it out of "
            f"the URI and put it in {where} (and the user name in MLFLOW_TRACKING_USERNAME); {HELP}.")


def reports_access_errors(main: Callable[..., int]) -> Callable[..., int]:
    """Wrap an entry point's `main`: access problems become `error: <sentence>` and exit code 2."""
    @functools.wraps(main)
    def wrapped(*args, **kwargs) -> int:
        refused = password_in_tracking_uri()
        if refused:
            print(f"error: {refused}", file=sys.stderr)
            return 2
        try:
            return main(*args, **kwargs)
        except Exception as error:
            message = next(filter(None, (explain(e) for e in _chain(error))), None)
            if message is None:
                raise
            print(f"error: {message}", file=sys.stderr)
            return 2
    return wrapped


def _chain(error: BaseException) -> list[BaseException]:
    """The error and those it was raised from or while handling: a failed clean-up can hide the 403 behind it."""
    seen: list[BaseException] = []
    while error is not None and error not in seen:
        seen.append(error)
        error = error.__cause__ or error.__context__
    return seen


def _endpoint(error: BaseException) -> str:
    match = _ENDPOINT.search(str(error))
    return next((g for g in match.groups() if g), "the request") if match else "the request"


def _cause(error: BaseException) -> str:
    text = str(error)
    for reason in ("Connection refused", "Name or service not known", "timed out", "timeout"):
        if reason in text:
            return reason.replace("timeout", "timed out")
    return text.splitlines()[0][:200] if text else type(error).__name__
