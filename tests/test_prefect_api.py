"""The Prefect API a command's flows report to: the configured one, else an ephemeral one of ours."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import httpx
import pytest

from newsmon.paths import PROJECT_ROOT

# Runs a flow inside flow_api() in a fresh process, then reports what the process saw.
_PROBE = textwrap.dedent("""
    import json, sys
    from prefect import flow
    from newsmon.prefect_api import configured_api_url, flow_api
    from prefect.settings import get_current_settings

    @flow
    def answer() -> int:
        return 42

    with flow_api():
        url = str(get_current_settings().api.url)
        result = answer()
        configured = configured_api_url()
    print(json.dumps({
        "result": result,
        "url": url,
        "configured_inside": configured,
        "server_modules_loaded": "prefect.server.api.server" in sys.modules,
        "url_after": get_current_settings().api.url and str(get_current_settings().api.url),
    }))
""")


def _probe(tmp_path: Path, **env: str) -> dict[str, object]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    environment.update({"PREFECT_HOME": str(tmp_path / "prefect-home"),
                        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120", **env})
    done = subprocess.run([sys.executable, "-c", _PROBE], check=False, cwd=PROJECT_ROOT, env=environment,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
def test_ephemeral_api_runs_flows_without_loading_prefects_server_here(tmp_path: Path) -> None:
    seen = _probe(tmp_path)
    assert seen["result"] == 42
    url = str(seen["url"])
    assert url.startswith("http://127.0.0.1:") and url.endswith("/api")
    # Ours is ephemeral, not a configured server: the writer lock must not lean on its leases.
    assert seen["configured_inside"] is None
    # The point of starting it ourselves: Prefect's own ephemeral mode imports its server here.
    assert seen["server_modules_loaded"] is False
    # Afterwards the process points nowhere again, and the API is gone.
    assert seen["url_after"] is None
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/health", timeout=2)
    # Its database is Prefect's usual one in the Prefect home, where the run was recorded.
    assert (tmp_path / "prefect-home" / "prefect.db").is_file()


def test_a_configured_api_is_used_as_it_is(tmp_path: Path) -> None:
    # Nothing listens there and nothing is started: the flow run fails to reach it, which
    # shows that flow_api() left the configured URL alone.
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    environment.update({"PREFECT_HOME": str(tmp_path / "prefect-home"),
                        "PREFECT_API_URL": "http://127.0.0.1:9/api"})
    script = ("from newsmon.prefect_api import configured_api_url, flow_api\n"
              "with flow_api():\n    print(configured_api_url())\n")
    done = subprocess.run([sys.executable, "-c", script], check=False, cwd=PROJECT_ROOT, env=environment,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "http://127.0.0.1:9/api"
