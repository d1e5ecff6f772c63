"""`newsmon serve`: the nightly ingest and the weekly digest on their cron schedules.

Prefect's ephemeral mode runs flows but cannot schedule them: schedules need a server whose
scheduler creates the runs. So when no `PREFECT_API_URL` is configured, `serve` starts a
local `prefect server start` on 127.0.0.1 with its home (and SQLite database) under the data
folder, waits until `/api/health` answers, serves both deployments against it with
`prefect.serve`, and stops the server when serving ends. With `PREFECT_API_URL` set (a shared
server or Prefect Cloud) it serves against that instead and starts nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from newsmon.config import Settings
from newsmon.errors import UserError
from newsmon.prefect_api import LocalPrefectServer, configured_api_url, using_api

__all__ = [
    "DIGEST_DEPLOYMENT",
    "NIGHTLY_DEPLOYMENT",
    "WRITER_LIMIT",
    "build_deployments",
    "ensure_writer_limit",
    "prefect_home",
    "serve_forever",
]

NIGHTLY_DEPLOYMENT = "nightly"
DIGEST_DEPLOYMENT = "weekly"
# The global concurrency limit held by whatever writes the night's articles.
WRITER_LIMIT = "newsmon-nightly-writer"


def prefect_home(settings: Settings) -> Path:
    """Return the Prefect home folder `serve` uses: `prefect/` beside the database."""
    return settings.database_path.resolve().parent / "prefect"


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
        # Flow runs are child processes of the runner; they find the server through the
        # environment as well as through this process's settings.
        try:
            with using_api(server.api_url):
                ensure_writer_limit()
                _serve(deployments)
        finally:
            echo("Stopping the local Prefect server ...")


def _serve(deployments: list[Any]) -> None:
    from prefect import serve

    try:
        serve(*deployments)
    except KeyboardInterrupt:
        pass
