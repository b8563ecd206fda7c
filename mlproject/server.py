"""The team's tracking server: MLflow on PostgreSQL, artifacts served through it, users and permissions.

    export TEXT2SIGN_DB_PASSWORD=...        # the password of the server's own PostgreSQL role
    export MLFLOW_AUTH_ADMIN_USERNAME=admin MLFLOW_AUTH_ADMIN_PASSWORD=...   # the first MLflow admin
    python -m mlproject.server --host 10.0.0.5 --port 5000 --artifacts-destination /srv/text2sign/artifacts

It creates the PostgreSQL role and its two databases (runs and registry in `--db-name`, users and
permissions in `<db-name>_auth`) when they are missing, writes the auth settings (no secret in them) to
`--state-dir` with a key for the UI's CSRF tokens (made once, readable by its owner only), and then becomes `mlflow server --app-name basic-auth --serve-artifacts`. docs/server.md
says how a lab runs it. Exit code 2 for a usage error (a missing password, a database that refuses us).

No password is ever on a command line (where `ps` shows it) or in a file: the database password reaches
`mlflow server` as PGPASSWORD, which libpq reads when the connection URI has none, and the admin's as
MLflow's own MLFLOW_AUTH_ADMIN_PASSWORD, used once, to create the admin.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass
from pathlib import Path

DB_PASSWORD_ENV = "TEXT2SIGN_DB_PASSWORD"
DB_ADMIN_PASSWORD_ENV = "TEXT2SIGN_DB_ADMIN_PASSWORD"
PERMISSIONS = ("READ", "EDIT", "MANAGE", "NO_PERMISSIONS")


class SetupError(RuntimeError):
    """The server cannot be set up as asked; the message says what to fix."""


@dataclass(frozen=True)
class Database:
    host: str
    port: int
    name: str
    user: str

    @property
    def auth_name(self) -> str:
        return f"{self.name}_auth"

    def uri(self, name: str) -> str:
        """A SQLAlchemy URI without a password: libpq takes it from PGPASSWORD. The driver is named because
        SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, which MLflow does not install."""
        return f"postgresql+psycopg2://{self.user}@{self.host}:{self.port}/{name}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mlproject.server", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on: 127.0.0.1 behind a reverse proxy on the same machine (default), "
                             "the machine's lab address, or 0.0.0.0 for all")
    parser.add_argument("--port", default="5000")
    parser.add_argument("--artifacts-destination", default="./text2sign-artifacts",
                        help="where the server keeps artifacts: a folder, or an object store URI (s3://bucket/prefix, "
                             "gs://..., wasbs://...)")
    parser.add_argument("--state-dir", default="./text2sign-server", help="for the auth settings file")
    parser.add_argument("--db-host", default="127.0.0.1", help="PostgreSQL host, or the folder of its Unix socket")
    parser.add_argument("--db-port", default="5432")
    parser.add_argument("--db-name", default="text2sign")
    parser.add_argument("--db-user", default="text2sign", help="the server's own role, created if missing")
    parser.add_argument("--db-admin-user", default="postgres",
                        help=f"a role that may create roles and databases, used only when something is missing "
                             f"(its password in ${DB_ADMIN_PASSWORD_ENV}, or none for peer/trust login)")
    parser.add_argument("--default-permission", default="READ", choices=PERMISSIONS,
                        help="what every user may do with experiments and models they did not create")
    parser.add_argument("--allowed-hosts", default="",
                        help="the names clients reach the server by (e.g. mlflow.lab.example.org), for MLflow's "
                             "DNS-rebinding protection; default: MLflow's (localhost and private addresses)")
    parser.add_argument("--workers", default="4")
    return parser.parse_args(argv)


def _connect(database: Database, name: str, user: str, password: str | None):
    import psycopg2

    return psycopg2.connect(host=database.host, port=database.port, dbname=name, user=user, password=password,
                            connect_timeout=10)


def _reachable_as_owner(database: Database, password: str) -> bool:
    """Whether the role logs in to both databases already (then nothing needs an administrator)."""
    import psycopg2

    try:
        for name in (database.name, database.auth_name):
            _connect(database, name, database.user, password).close()
    except psycopg2.OperationalError:
        return False
    return True


def ensure_database(database: Database, password: str, admin_user: str, admin_password: str | None) -> list[str]:
    """Create the role and the databases that are missing; returns what was created.

    An existing role is never given a new password: a wrong TEXT2SIGN_DB_PASSWORD is reported instead.
    """
    if _reachable_as_owner(database, password):
        return []
    import psycopg2
    from psycopg2 import sql

    try:
        admin = _connect(database, "postgres", admin_user, admin_password)
    except psycopg2.OperationalError as error:
        raise SetupError(
            f"cannot log in to PostgreSQL at {database.host}:{database.port} as role {database.user!r} with "
            f"${DB_PASSWORD_ENV}, nor as {admin_user!r} to create what is missing ({_first_line(error)}). Check "
            f"the password, or give an administrator role with --db-admin-user and ${DB_ADMIN_PASSWORD_ENV}."
        ) from None
    created = []
    admin.autocommit = True  # CREATE DATABASE refuses to run inside a transaction
    try:
        with admin.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (database.user,))
            if cursor.fetchone() is None:
                cursor.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(database.user)),
                               (password,))
                created.append(f"role {database.user}")
            for name in (database.name, database.auth_name):
                cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
                if cursor.fetchone() is None:
                    cursor.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(name), sql.Identifier(database.user)))
                    created.append(f"database {name}")
    except psycopg2.Error as error:
        raise SetupError(f"PostgreSQL refused to create the role or databases as {admin_user!r} "
                         f"({_first_line(error)}); that role needs CREATEROLE and CREATEDB.") from None
    finally:
        admin.close()
    if not _reachable_as_owner(database, password):
        raise SetupError(f"role {database.user!r} exists but does not log in with ${DB_PASSWORD_ENV}: the password "
                         f"is wrong, or pg_hba.conf refuses password logins from this machine.")
    return created


def write_auth_config(state_dir: Path, database: Database, default_permission: str) -> Path:
    """MLflow's basic-auth settings. The admin comes from MLFLOW_AUTH_ADMIN_*, so the file holds no secret.

    A training run logs at every step, and checking a password is a deliberately slow hash: MLflow's cache of
    checked logins (off by default) keeps a server with several runs at once responsive. The price: a changed
    or deleted password still works for up to a minute on the server's other workers.
    """
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / "basic_auth.ini"
    path.write_text(
        "[mlflow]\n"
        f"default_permission = {default_permission}\n"
        f"database_uri = {database.uri(database.auth_name)}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
        "auth_cache_ttl_seconds = 60\n"
    )
    return path


def csrf_secret(state_dir: Path) -> str:
    """The key that signs the UI's CSRF tokens: the same for every worker and across restarts, so it is kept
    in a file only its owner reads, made once. MLFLOW_FLASK_SERVER_SECRET_KEY, when set, wins."""
    path = state_dir / "flask_secret_key"
    if not path.exists():
        import secrets

        state_dir.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            handle.write(secrets.token_hex(32))
    return path.read_text().strip()


def server_command(args: argparse.Namespace, database: Database) -> list[str]:
    command = [
        sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth",
        "--backend-store-uri", database.uri(database.name),
        "--serve-artifacts", "--artifacts-destination", _destination(args.artifacts_destination),
        "--host", args.host, "--port", args.port, "--workers", args.workers,
    ]
    if args.allowed_hosts:
        command += ["--allowed-hosts", args.allowed_hosts]
    return command


def _destination(text: str) -> str:
    """A folder as an absolute path (the server may be started from anywhere); an object store URI as is."""
    return text if "://" in text else str(Path(text).expanduser().resolve())


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    password = os.environ.get(DB_PASSWORD_ENV, "")
    if not password:
        print(f"error: set ${DB_PASSWORD_ENV} to the password of PostgreSQL role {args.db_user!r} (it is created "
              "with it when missing).", file=sys.stderr)
        return 2
    try:
        database = Database(args.db_host, int(args.db_port), args.db_name, args.db_user)
        created = ensure_database(database, password, args.db_admin_user, os.environ.get(DB_ADMIN_PASSWORD_ENV) or None)
    except ValueError:
        print(f"error: db-port: got {args.db_port!r}, expected a port number.", file=sys.stderr)
        return 2
    except SetupError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    if created:
        print(f"created {', '.join(created)}", flush=True)
    env = {k: v for k, v in os.environ.items() if k not in (DB_PASSWORD_ENV, DB_ADMIN_PASSWORD_ENV)}
    env["PGPASSWORD"] = password
    env.setdefault("MLFLOW_FLASK_SERVER_SECRET_KEY", csrf_secret(Path(args.state_dir)))
    env["MLFLOW_AUTH_CONFIG_PATH"] = str(write_auth_config(Path(args.state_dir), database, args.default_permission))
    command = server_command(args, database)
    print(f"starting: {' '.join(command[1:])}", flush=True)
    # Replace this process: signals (a service manager's stop, a test's kill) reach the server itself.
    os.execve(command[0], command, env)


if __name__ == "__main__":
    sys.exit(main())
