"""Setting up the team server asks for what it needs, keeps secrets off disk and command lines, and says what
to fix when PostgreSQL cannot be reached (the server itself runs in tests/test_team_server.py)."""

from __future__ import annotations

import argparse
import stat

import pytest

from mlproject import server
from tests.helpers import free_port


def test_without_the_database_password_it_stops_with_exit_2_and_names_the_variable(monkeypatch, capsys):
    monkeypatch.delenv(server.DB_PASSWORD_ENV, raising=False)
    assert server.main(["--db-port", str(free_port())]) == 2
    assert "set $TEXT2SIGN_DB_PASSWORD" in capsys.readouterr().err


def test_a_database_it_cannot_log_in_to_is_a_plain_error_naming_both_roles(monkeypatch, capsys):
    monkeypatch.setenv(server.DB_PASSWORD_ENV, "db-pass-123")
    assert server.main(["--db-port", str(free_port()), "--state-dir", "unused"]) == 2
    err = capsys.readouterr().err
    assert "cannot log in to PostgreSQL at 127.0.0.1:" in err and "'text2sign'" in err and "'postgres'" in err
    assert "db-pass-123" not in err


def test_the_auth_settings_hold_no_secret_and_the_csrf_key_is_private_and_kept(tmp_path):
    database = server.Database("127.0.0.1", 5432, "text2sign", "text2sign")
    ini = server.write_auth_config(tmp_path, database, "READ").read_text()
    assert "database_uri = postgresql+psycopg2://text2sign@127.0.0.1:5432/text2sign_auth" in ini
    assert "password" not in ini and "default_permission = READ" in ini
    key = server.csrf_secret(tmp_path)
    assert stat.S_IMODE((tmp_path / "flask_secret_key").stat().st_mode) == 0o600
    assert server.csrf_secret(tmp_path) == key and len(key) == 64  # the same after a restart


def test_the_server_command_carries_no_password_and_absolute_artifact_folders(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = server.parse_args(["--host", "10.0.0.5", "--artifacts-destination", "artifacts",
                              "--allowed-hosts", "mlflow.lab.example.org"])
    command = server.server_command(args, server.Database("db.lab", 5432, "text2sign", "text2sign"))
    assert command[command.index("--artifacts-destination") + 1] == str(tmp_path / "artifacts")
    assert command[command.index("--host") + 1] == "10.0.0.5" and "--serve-artifacts" in command
    assert "postgresql+psycopg2://text2sign@db.lab:5432/text2sign" in command and "basic-auth" in command
    bucket = argparse.Namespace(**{**vars(args), "artifacts_destination": "s3://lab-bucket/text2sign"})
    assert "s3://lab-bucket/text2sign" in server.server_command(bucket, server.Database("h", 1, "n", "u"))


@pytest.mark.parametrize("permission", ["WRITE", "read"])
def test_an_unknown_default_permission_is_refused(permission):
    with pytest.raises(SystemExit) as stopped:
        server.parse_args(["--default-permission", permission])
    assert stopped.value.code == 2
