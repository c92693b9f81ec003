"""Real servers for the adapter tests, on 127.0.0.1: PostgreSQL clusters and MLflow servers.

Each runs in its own process group and is stopped by the fixture that started
it; a server that does not come up fails the tests with the end of its log.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

STARTUP_SECONDS = 180
PR_SET_PDEATHSIG = 1


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _die_with_parent() -> None:
    # A test run killed before its fixtures' teardown must not leave servers behind.
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class ServerProcess:
    """A process started in its own session, stopped with its whole group."""

    def __init__(self, command: list[str], log: Path, env: dict[str, str]) -> None:
        self.log = log
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                command,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )

    def kill(self) -> None:
        """SIGKILL the whole group, as a crash would: no clean shutdown."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=20)

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)


class MlflowServer(ServerProcess):
    """``mlflow server`` with one worker, its artifacts served from a local folder."""

    def __init__(
        self,
        folder: Path,
        backend_store_uri: str,
        *,
        basic_auth: tuple[str, str] | None = None,
        port: int | None = None,
    ) -> None:
        """Start the server; ``port`` reuses a port, to restart a server where it was."""
        folder.mkdir(parents=True, exist_ok=True)
        self.folder, self.backend_store_uri = folder, backend_store_uri
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        # No background job runner: the tests need none, and it costs CPU the tests want.
        env = {
            **os.environ,
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        }
        command = [
            sys.executable, "-m", "mlflow", "server",
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--workers", "1",
            "--backend-store-uri", backend_store_uri,
            "--artifacts-destination", str(folder / "artifacts"),
        ]  # fmt: skip
        self.admin = basic_auth
        if basic_auth is not None:
            user, password = basic_auth
            config = folder / "basic_auth.ini"
            config.write_text(
                "[mlflow]\ndefault_permission = READ\n"
                f"database_uri = sqlite:///{folder / 'auth.db'}\n"
                f"admin_username = {user}\nadmin_password = {password}\n"
                "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
            )
            env["MLFLOW_AUTH_CONFIG_PATH"] = str(config)
            env["MLFLOW_FLASK_SERVER_SECRET_KEY"] = "trackstack-tests-only"
            command += ["--app-name", "basic-auth"]
        super().__init__(command, folder / "server.log", env)

    def restarted(self) -> MlflowServer:
        """A new server process on the same port and store (this one must be gone)."""
        return MlflowServer(self.folder, self.backend_store_uri, port=self.port)

    def wait_until_healthy(self) -> MlflowServer:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"mlflow server exited:\n{_tail(self.log)}")
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{self.url}/health", timeout=2) as answer,
            ):
                if answer.status == 200:
                    return self
            time.sleep(0.25)
        self.stop()
        raise RuntimeError(
            f"mlflow server not healthy after {STARTUP_SECONDS} s:\n{_tail(self.log)}"
        )


def _postgres_binary(name: str) -> str:
    found = shutil.which(name) or next(
        (str(p) for p in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))), None
    )
    if found is None:
        raise RuntimeError(
            f"PostgreSQL's {name} is not installed; install the server binaries "
            "(Debian: apt-get install postgresql), as .ci/run does"
        )
    return found


class PostgresCluster:
    """A throw-away cluster with trust auth on 127.0.0.1, run as a non-root user."""

    def __init__(self) -> None:
        self.port = free_port()
        # initdb refuses to run as root: the cluster belongs to the postgres user then.
        self.user = "postgres" if os.geteuid() == 0 else None
        self.folder = Path(tempfile.mkdtemp(prefix="trackstack-pg-"))
        if self.user:
            record = pwd.getpwnam(self.user)
            os.chown(self.folder, record.pw_uid, record.pw_gid)
        self.data = self.folder / "data"
        self._run(_postgres_binary("initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "--no-sync", "-E", "UTF8")  # fmt: skip
        self._run(
            _postgres_binary("pg_ctl"), "-D", str(self.data), "-l", str(self.folder / "pg.log"),
            "-o", f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off",
            "-w", "start",
        )  # fmt: skip

    def _run(self, *command: str) -> None:
        prefix = ["runuser", "-u", self.user, "--"] if self.user else []
        result = subprocess.run([*prefix, *command], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed:\n{result.stdout}\n{result.stderr}")

    def create_database(self, name: str) -> str:
        """A new database, as a SQLAlchemy URI for psycopg 3."""
        self._run(_postgres_binary("createdb"), "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", "postgres", name)  # fmt: skip
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._run(_postgres_binary("pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")
        shutil.rmtree(self.folder, ignore_errors=True)
