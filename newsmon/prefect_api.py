"""The Prefect API that newsmon's flows report to: a configured one, or one started here.

Two kinds of local API run as subprocesses on a loopback port:

- `LocalPrefectServer`: a full `prefect server start`, scheduler included, with its own home
  beside the database. `newsmon serve` needs it, because schedules need a scheduler.
- `EphemeralPrefectAPI`: the API alone, which is what Prefect's ephemeral mode runs for a
  single command. `flow_api()` starts it for `newsmon run`, `demo` and `backfill` when no
  `PREFECT_API_URL` is configured. Prefect would start the same subprocess itself, but it
  imports its whole server application (FastAPI, the ORM models: about 70 MB) into the
  calling process to do so, and the nightly run would carry that all night for nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

import httpx

from newsmon.errors import UserError

__all__ = [
    "EphemeralPrefectAPI",
    "LocalPrefectServer",
    "ServerError",
    "configured_api_url",
    "flow_api",
    "free_port",
    "using_api",
]

# The URL of the ephemeral API this process started, which is not a configured server.
_own_ephemeral_url: str | None = None


class ServerError(UserError):
    """The local Prefect server did not start or answer in time."""


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on host right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def configured_api_url() -> str | None:
    """Return the configured Prefect API URL; None in ephemeral mode, ours included."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    if not url or str(url) == _own_ephemeral_url:
        return None
    return str(url)


@dataclass
class LocalPrefectServer:
    """A `prefect server start` subprocess on a loopback port, with its own Prefect home."""

    home: Path
    host: str = "127.0.0.1"
    port: int = 0  # 0: pick a free port at start
    startup_timeout: float = 90.0
    _process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        """The UI's address."""
        return f"http://{self.host}:{self.port}"

    @property
    def api_url(self) -> str:
        """The API's address, as PREFECT_API_URL wants it."""
        return f"{self.url}/api"

    @property
    def database(self) -> Path:
        """The server's SQLite database file."""
        return self.home / "prefect.db"

    @property
    def log_file(self) -> Path:
        """Where the server's own output goes."""
        return self.home / "server.log"

    def command(self) -> list[str]:
        """Return the server's command line."""
        return [sys.executable, "-m", "prefect", "server", "start", "--host", self.host,
                "--port", str(self.port), "--analytics-off"]

    def environment(self) -> dict[str, str]:
        """Return the server process's environment: our home, our database, no API URL."""
        env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        env.update({
            "PREFECT_HOME": str(self.home),
            "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{self.database}",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_API_HOST": self.host,
            "PREFECT_SERVER_API_PORT": str(self.port),
        })
        env.pop("PREFECT_API_DATABASE_CONNECTION_URL", None)
        return env

    def start(self) -> None:
        """Start the server process (returns at once; see `wait_healthy`)."""
        if self._process is not None:
            raise ServerError("the local Prefect server is already started")
        self.home.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port(self.host)
        self._log = self.log_file.open("ab")
        self._process = subprocess.Popen(
            self.command(), env=self.environment(), stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own process group, so Ctrl-C in the terminal reaches newsmon first and the
            # server is stopped in order rather than killed mid-write.
            start_new_session=True,
        )

    def wait_healthy(self, timeout: float | None = None) -> None:
        """Wait until the API answers its health check, or raise ServerError."""
        if self._process is None:
            raise ServerError("the local Prefect server was not started")
        deadline = time.monotonic() + (self.startup_timeout if timeout is None else timeout)
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self._process.poll() is not None:
                    raise ServerError(f"the local Prefect server exited with code "
                                      f"{self._process.returncode}; see {self.log_file}")
                try:
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.25)
        raise ServerError(f"the local Prefect server did not answer on {self.url} within "
                          f"{self.startup_timeout:.0f} s; see {self.log_file}")

    def stop(self, timeout: float = 20.0) -> int | None:
        """Stop the server (SIGTERM, then SIGKILL after `timeout`); return its exit code."""
        process, self._process = self._process, None
        code: int | None = None
        if process is not None:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)
            code = process.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        return code

    @property
    def running(self) -> bool:
        """Tell whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> Self:
        self.start()
        try:
            self.wait_healthy()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


@dataclass
class EphemeralPrefectAPI(LocalPrefectServer):
    """Prefect's ephemeral API, started as Prefect starts it: same command, home and database."""

    @property
    def log_file(self) -> Path:
        """Where the API's own output goes: the Prefect home."""
        return self.home / "newsmon-ephemeral-api.log"

    def command(self) -> list[str]:
        """Return the command Prefect's own ephemeral mode runs (SubprocessASGIServer)."""
        import prefect

        return [sys.executable, "-m", "uvicorn", "--app-dir", str(Path(prefect.__file__).parent.parent),
                "--factory", "prefect.server.api.server:create_app", "--host", self.host,
                "--port", str(self.port), "--log-level", "error", "--lifespan", "on"]

    def environment(self) -> dict[str, str]:
        """Return the environment Prefect gives its ephemeral API, without telemetry."""
        from prefect.settings import get_current_settings

        env = dict(os.environ)
        env.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        env.update(get_current_settings().to_environment_variables(exclude_unset=True))
        env.update({"PREFECT_UI_ENABLED": "0", "PREFECT__SERVER_EPHEMERAL": "1",
                    "PREFECT__SERVER_FINAL": "1"})
        env.pop("PREFECT_API_URL", None)
        return env


@contextmanager
def using_api(url: str) -> Iterator[None]:
    """Point this process's Prefect client, and any flow-run subprocess, at `url`."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    previous = os.environ.get("PREFECT_API_URL")
    os.environ["PREFECT_API_URL"] = url
    try:
        with temporary_settings({PREFECT_API_URL: url}):
            yield
    finally:
        if previous is None:
            os.environ.pop("PREFECT_API_URL", None)
        else:
            os.environ["PREFECT_API_URL"] = previous


@contextmanager
def flow_api() -> Iterator[None]:
    """Give the flows run inside the block a Prefect API: the configured one, else an ephemeral one."""
    global _own_ephemeral_url
    from prefect.settings import get_current_settings

    settings = get_current_settings()
    if configured_api_url() is not None or _own_ephemeral_url is not None:
        yield
        return
    if not settings.server.ephemeral.enabled:
        raise ServerError("no Prefect API: set PREFECT_API_URL, or allow Prefect's ephemeral mode")
    api = EphemeralPrefectAPI(Path(settings.home).expanduser(),
                              startup_timeout=float(settings.server.ephemeral.startup_timeout_seconds))
    with api, using_api(api.api_url):
        _own_ephemeral_url = api.api_url
        try:
            yield
        finally:
            _drain_prefect_workers()
            _own_ephemeral_url = None


def _drain_prefect_workers() -> None:
    """Send the logs and events still queued, before the API they go to stops."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        with contextlib.suppress(RuntimeError):  # a worker that never started
            worker.drain_all(timeout=10)
