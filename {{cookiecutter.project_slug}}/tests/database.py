"""A real PostgreSQL for the tests: a fresh cluster in a temporary folder, on 127.0.0.1 only,
started by `initdb` and `pg_ctl` and stopped by the test session. A helper module: no tests here.

PostgreSQL refuses to run as root: as root, the cluster is made and run by the `postgres` user
(Debian's package creates it), in a folder of its own under the system's temporary folder (pytest's
folders are closed to other users).
"""

from __future__ import annotations

import getpass
import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

START_SECONDS = 60


@dataclass(frozen=True)
class Postgres:
    host: str
    port: int
    user: str
    folder: Path  # the cluster's files, the server's log

    def url(self, database: str, driver: str = "psycopg") -> str:
        return f"postgresql+{driver}://{self.user}@{self.host}:{self.port}/{database}"


def binaries() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, else Debian's /usr/lib/postgresql/<version>/bin."""
    found = shutil.which("initdb")
    if found and shutil.which("pg_ctl"):
        return Path(found).resolve().parent
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda path: path.split("/")[4])
    return Path(versions[-1]).parent if versions else None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def as_owner(command: list[str]) -> list[str]:
    """The command as the user who owns the cluster: `postgres` when this process is root."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def start() -> Postgres:
    """A new cluster (trust on 127.0.0.1 only), started and accepting connections."""
    tools = binaries()
    assert tools is not None, "no PostgreSQL here"
    folder = Path(tempfile.mkdtemp(prefix="tests-postgres-"))
    data, sockets = folder / "data", folder / "sockets"
    sockets.mkdir(parents=True)
    user = "postgres" if os.geteuid() == 0 else getpass.getuser()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(sockets, "postgres")
    initdb = [str(tools / "initdb"), "-D", str(data), "-U", user, "--auth=trust", "--no-sync", "-E", "UTF8"]
    subprocess.run(as_owner(initdb), check=True, capture_output=True, timeout=START_SECONDS)
    port = free_port()
    options = f"-p {port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={sockets} -c fsync=off"
    pg_ctl = [str(tools / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(folder / "server.log"), "-w"]
    subprocess.run(as_owner([*pg_ctl, "-t", str(START_SECONDS), "start"]), check=True, capture_output=True)
    return Postgres("127.0.0.1", port, user, folder)


def stop(server: Postgres) -> None:
    tools = binaries()
    assert tools is not None
    command = [str(tools / "pg_ctl"), "-D", str(server.folder / "data"), "-m", "fast", "-w", "stop"]
    subprocess.run(as_owner(command), check=False, capture_output=True, timeout=START_SECONDS)
    shutil.rmtree(server.folder, ignore_errors=True)


def create_database(server: Postgres, name: str) -> str:
    """A new, empty database on the server: its SQLAlchemy URL (psycopg 3)."""
    import psycopg

    with psycopg.connect(
        host=server.host, port=server.port, user=server.user, dbname="postgres", autocommit=True
    ) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    return server.url(name)
