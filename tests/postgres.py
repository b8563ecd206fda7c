"""A throwaway PostgreSQL cluster for tests: its own folder, a free loopback port, password logins only.

PostgreSQL refuses to run as root, so under root (CI) the cluster belongs to `nobody`. The binaries are
Debian's (`apt-get install postgresql`, which .ci/run does where they are missing), found on PATH or in
/usr/lib/postgresql/<version>/bin.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from tests.helpers import free_port

SUPERUSER = "postgres"


def postgres_bin() -> Path | None:
    """The folder of initdb and pg_ctl, or None when PostgreSQL is not installed."""
    on_path = shutil.which("pg_ctl")
    if on_path:  # Debian links a few of them into /usr/bin or /usr/local/bin: the folder with all of them
        return Path(on_path).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


@dataclass
class Cluster:
    bin: Path
    data: Path
    port: int
    superuser_password: str

    def _run(self, *args: str) -> None:
        _as_owner([str(self.bin / args[0]), *args[1:]], self.data.parent)

    def start(self) -> None:
        # Listen on loopback only; the socket goes in the cluster's folder, not /var/run/postgresql.
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.data.parent / "log"),
                  "-o", f"-p {self.port} -k {self.data.parent} -c listen_addresses=127.0.0.1")

    def stop(self) -> None:
        self._run("pg_ctl", "stop", "-w", "-t", "60", "-m", "fast", "-D", str(self.data))


@contextmanager
def postgres_cluster(password: str) -> Iterator[Cluster]:
    """A running cluster whose superuser `postgres` logs in with `password` over TCP; removed at the end."""
    binaries = postgres_bin()
    if binaries is None:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (see .ci/run)")
    # Not under pytest's folder: its parents are private to root, and the cluster's owner must reach it.
    folder = Path(tempfile.mkdtemp(prefix="text2sign-pg-"))
    _give_to_owner(folder)
    cluster = Cluster(binaries, folder / "data", free_port(), password)
    try:
        (folder / "pwfile").write_text(password + "\n")
        _give_to_owner(folder / "pwfile")
        _as_owner([str(binaries / "initdb"), "-D", str(cluster.data), "-U", SUPERUSER, "--pwfile", str(folder / "pwfile"),
                   "--auth", "scram-sha-256", "--encoding", "UTF8", "--no-sync"], folder)
        (folder / "pwfile").unlink()
        cluster.start()
        try:
            yield cluster
        finally:
            cluster.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _owner() -> pwd.struct_passwd | None:
    return pwd.getpwnam("nobody") if os.geteuid() == 0 else None


def _give_to_owner(path: Path) -> None:
    owner = _owner()
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)


def _as_owner(command: list[str], cwd: Path) -> None:
    owner = _owner()
    as_user = {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []} if owner else {}
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=120, **as_user)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:2])} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
