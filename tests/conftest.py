"""Fixtures shared by the whole suite: paths, a real DuckDB file, Prefect's test harness."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from newsmon.paths import SAMPLE_DIR

SAMPLE = SAMPLE_DIR


@pytest.fixture()
def db_path(tmp_path: Path) -> Path:
    """A fresh DuckDB file path inside the test's temporary folder."""
    return tmp_path / "newsmon.duckdb"


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """Run flows against Prefect's throwaway test server, once per session."""
    import os

    from prefect.testing.utilities import prefect_test_harness

    # No telemetry lookups from a machine without internet.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    with prefect_test_harness(server_startup_timeout=180):
        yield
