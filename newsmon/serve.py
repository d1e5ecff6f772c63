"""`newsmon serve`: the nightly ingest and the weekly digest on their cron schedules.

Prefect's ephemeral mode runs flows but cannot schedule them: schedules need a server whose
scheduler creates the runs. So when no `PREFECT_API_URL` is configured, `serve` starts a
local `prefect server start` on 127.0.0.1 with its home (and SQLite database) under the data
folder, waits until `/api/health` answers, serves both deployments against it with
`prefect.serve`, and stops the server when serving ends. With `PREFECT_API_URL` set (a shared
server or Prefect Cloud) it serves against that instead and starts nothing.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Self

import httpx

from newsmon.config import Settings
from newsmon.errors import UserError

__all__ = [
    "DIGEST_DEPLOYMENT",
    "NIGHTLY_DEPLOYMENT",
    "WRITER_LIMIT",
    "LocalPrefectServer",
    "ServerError",
    "build_deployments",
    "configured_api_url",
    "ensure_writer_limit",
    "free_port",
    "prefect_home",
    "serve_forever",
]

NIGHTLY_DEPLOYMENT = "nightly"
DIGEST_DEPLOYMENT = "weekly"
# The global concurrency limit held by whatever writes the night's articles.
WRITER_LIMIT = "newsmon-nightly-writer"


class ServerError(UserError):
    """The local Prefect server did not start or answer in time."""


def prefect_home(settings: Settings) -> Path:
    """Return the Prefect home folder `serve` uses: `prefect/` beside the database."""
    return settings.database_path.resolve().parent / "prefect"


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on host right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def configured_api_url() -> str | None:
    """Return the Prefect API URL from the environment or profile, None in ephemeral mode."""
    from prefect.settings import get_current_settings

    url = get_current_settings().api.url
    return str(url) if url else None


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
            [sys.executable, "-m", "prefect", "server", "start", "--host", self.host,
             "--port", str(self.port), "--analytics-off"],
            env=self.environment(), stdout=self._log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own process group, so Ctrl-C in the terminal reaches `serve` first and the
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


def _cron(expression: str, timezone: str, what: str) -> Any:
    from prefect.schedules import Cron

    try:
        return Cron(expression, timezone=timezone)
    except ValueError as exc:
        raise UserError(f"[schedule] {what} {expression!r} with timezone {timezone!r}: {exc}") from None


def build_deployments(settings: Settings, config_path: str | None) -> list[Any]:
    """Build the nightly and weekly digest deployments from `[schedule]` (not yet applied)."""
    from flows.digest import weekly_digest
    from flows.nightly import nightly_ingest

    schedule = settings.schedule
    parameters = {"config_path": config_path}
    nightly = nightly_ingest.to_deployment(
        name=NIGHTLY_DEPLOYMENT,
        schedules=[_cron(schedule.nightly_cron, schedule.timezone, "nightly_cron")],
        parameters=parameters,
        # One run of this deployment at a time; the writer limit covers runs started by hand.
        concurrency_limit=1,
        description="Poll every feed, store the night's new articles, record the run.",
        tags=["newsmon"],
    )
    digest = weekly_digest.to_deployment(
        name=DIGEST_DEPLOYMENT,
        schedules=[_cron(schedule.digest_cron, schedule.timezone, "digest_cron")],
        parameters=parameters,
        concurrency_limit=1,
        description="Compose and send the weekly digest.",
        tags=["newsmon"],
    )
    return [nightly, digest]


def ensure_writer_limit(limit: int = 1) -> None:
    """Create the nightly writer's global concurrency limit on the API unless it exists."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(WRITER_LIMIT)
        except ObjectNotFound:
            client.create_global_concurrency_limit(
                GlobalConcurrencyLimitCreate(name=WRITER_LIMIT, limit=limit))


def serve_forever(settings: Settings, config_path: str | None, *,
                  host: str = "127.0.0.1", port: int = 0,
                  echo: Callable[[str], None] = print) -> None:
    """Serve both deployments until interrupted, starting a local server when none is set."""
    deployments = build_deployments(settings, config_path)
    api_url = configured_api_url()
    if api_url:
        echo(f"Serving against the configured Prefect API {api_url}")
        ensure_writer_limit()
        _serve(deployments)
        return
    server = LocalPrefectServer(prefect_home(settings), host=host, port=port)
    echo(f"Starting a local Prefect server (home {server.home}) ...")
    with server:
        echo(f"Prefect UI: {server.url}")
        from prefect.settings import PREFECT_API_URL, temporary_settings

        # Flow runs are child processes of the runner; they find the server through the
        # environment as well as through this process's settings.
        previous = os.environ.get("PREFECT_API_URL")
        os.environ["PREFECT_API_URL"] = server.api_url
        try:
            with temporary_settings({PREFECT_API_URL: server.api_url}):
                ensure_writer_limit()
                _serve(deployments)
        finally:
            if previous is None:
                os.environ.pop("PREFECT_API_URL", None)
            else:
                os.environ["PREFECT_API_URL"] = previous
            echo("Stopping the local Prefect server ...")


def _serve(deployments: list[Any]) -> None:
    from prefect import serve

    try:
        serve(*deployments)
    except KeyboardInterrupt:
        pass
