"""Settings: built-in defaults, then a TOML file, then the environment.

The file is found from `--config FILE`, else `$NEWSMON_CONFIG`, else `./newsmon.toml`,
else only the built-in defaults apply. Any key can be overridden from the environment as
`NEWSMON_<SECTION>__<KEY>`, e.g. `NEWSMON_STORAGE__DATABASE=/srv/news.duckdb` or
`NEWSMON_FETCH__ALLOW_PRIVATE_ADDRESSES=true`. Values are read as TOML literals when they
parse as one (numbers, booleans, arrays) and as plain strings otherwise.
Secrets (the SMTP password) are never read from the file: see `smtp_password()`.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from parsers.toml_files import read_toml

__all__ = [
    "DEFAULT_FEEDS",
    "ENV_PREFIX",
    "ConfigError",
    "DigestSettings",
    "ExtractSettings",
    "FeedConfig",
    "FetchSettings",
    "RunnerSettings",
    "ScheduleSettings",
    "Settings",
    "SmtpSettings",
    "StorageSettings",
    "ThemeSettings",
    "TrendSettings",
    "find_config_file",
    "load_settings",
    "settings_from_mapping",
    "smtp_password",
]

ENV_PREFIX = "NEWSMON_"


class ConfigError(ValueError):
    """A configuration file or override that newsmon cannot use."""


@dataclass(frozen=True)
class FeedConfig:
    name: str
    url: str


@dataclass(frozen=True)
class StorageSettings:
    database: str = "data/newsmon.duckdb"
    keep_raw_html: bool = True
    # How long a reader or writer waits for the other side to release the file.
    lock_wait_seconds: float = 30.0


@dataclass(frozen=True)
class FetchSettings:
    allow_private_addresses: bool = False
    user_agent: str = "newsmon/0.1 (news monitor for open-source AI; +https://pypi.org/project/newsmon/)"
    concurrency: int = 16
    per_host_concurrency: int = 2
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    page_deadline: float = 60.0
    feed_deadline: float = 60.0
    max_body_bytes: int = 10_000_000
    max_feed_bytes: int = 20_000_000
    max_redirects: int = 5
    retries: int = 3
    backoff_seconds: float = 1.0
    max_retry_after: float = 120.0
    respect_robots: bool = True
    # A feed that has answered 304 for this long gets one unconditional fetch.
    unconditional_after_days: int = 7
    max_entries_per_feed: int = 500


@dataclass(frozen=True)
class ExtractSettings:
    workers: int = 2
    fast: bool = False
    batch_size: int = 100


@dataclass(frozen=True)
class ThemeSettings:
    file: str = ""  # empty: the bundled seeds/themes.toml
    entities_file: str = ""  # empty: the bundled seeds/entities.toml
    tagger: str = "lexical"  # lexical | semantic


@dataclass(frozen=True)
class TrendSettings:
    timezone: str = "UTC"


@dataclass(frozen=True)
class ScheduleSettings:
    timezone: str = "UTC"
    nightly_cron: str = "0 2 * * *"
    digest_cron: str = "0 7 * * 1"


@dataclass(frozen=True)
class DigestSettings:
    recipients: tuple[str, ...] = ()
    sender: str = "newsmon@localhost"
    subject_prefix: str = "[newsmon]"
    stories_per_theme: int = 3


@dataclass(frozen=True)
class SmtpSettings:
    host: str = ""
    port: int = 587
    security: str = "starttls"  # starttls | tls | none
    username: str = ""
    # Name of a Prefect Secret block holding the password; $NEWSMON_SMTP_PASSWORD wins.
    password_block: str = ""
    timeout: float = 30.0


@dataclass(frozen=True)
class RunnerSettings:
    kind: str = "default"  # default | dask
    dask_address: str = ""  # empty: start a local cluster
    dask_workers: int = 2


DEFAULT_FEEDS: tuple[FeedConfig, ...] = (
    FeedConfig(
        "Google News: open source AI",
        "https://news.google.com/rss/search?q=%22open+source+AI%22&hl=en-US&gl=US&ceid=US:en",
    ),
    FeedConfig("Hacker News: Llama", "https://hnrss.org/newest?q=Llama&points=20"),
    FeedConfig("Hacker News: open-source models", "https://hnrss.org/newest?q=%22open+source+model%22"),
    FeedConfig("Hacker News: open weights", "https://hnrss.org/newest?q=%22open+weights%22"),
    FeedConfig("Hugging Face blog", "https://huggingface.co/blog/feed.xml"),
    # ai.meta.com/blog publishes no feed of its own; Google News follows it for us.
    FeedConfig(
        "Meta AI blog (via Google News)",
        "https://news.google.com/rss/search?q=site:ai.meta.com/blog&hl=en-US&gl=US&ceid=US:en",
    ),
    FeedConfig("Meta Newsroom", "https://about.fb.com/news/feed/"),
    FeedConfig("Engineering at Meta: ML applications", "https://engineering.fb.com/category/ml-applications/feed/"),
    FeedConfig("The Verge: AI", "https://www.theverge.com/rss/ai-artificial-intelligence/index.xml"),
    FeedConfig("TechCrunch: AI", "https://techcrunch.com/category/artificial-intelligence/feed/"),
    FeedConfig("Ars Technica: AI", "https://arstechnica.com/ai/feed/"),
    FeedConfig("VentureBeat: AI", "https://venturebeat.com/category/ai/feed/"),
    FeedConfig("Wired: AI", "https://www.wired.com/feed/tag/ai/latest/rss"),
    FeedConfig(
        "MIT Technology Review: AI",
        "https://www.technologyreview.com/topic/artificial-intelligence/feed",
    ),
)


@dataclass(frozen=True)
class Settings:
    storage: StorageSettings = field(default_factory=StorageSettings)
    fetch: FetchSettings = field(default_factory=FetchSettings)
    extract: ExtractSettings = field(default_factory=ExtractSettings)
    themes: ThemeSettings = field(default_factory=ThemeSettings)
    trends: TrendSettings = field(default_factory=TrendSettings)
    schedule: ScheduleSettings = field(default_factory=ScheduleSettings)
    digest: DigestSettings = field(default_factory=DigestSettings)
    smtp: SmtpSettings = field(default_factory=SmtpSettings)
    runner: RunnerSettings = field(default_factory=RunnerSettings)
    feeds: tuple[FeedConfig, ...] = DEFAULT_FEEDS
    source: str = "built-in defaults"  # the file the settings came from, for messages

    @property
    def database_path(self) -> Path:
        return Path(self.storage.database).expanduser()

    def replace(self, **sections: Any) -> Settings:
        """Return a copy with whole sections replaced."""
        return dataclasses.replace(self, **sections)


_SECTIONS: dict[str, type] = {
    "storage": StorageSettings,
    "fetch": FetchSettings,
    "extract": ExtractSettings,
    "themes": ThemeSettings,
    "trends": TrendSettings,
    "schedule": ScheduleSettings,
    "digest": DigestSettings,
    "smtp": SmtpSettings,
    "runner": RunnerSettings,
}


def find_config_file(
    explicit: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """Return the config file to read: explicit, $NEWSMON_CONFIG, ./newsmon.toml, or none."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        return path
    from_env = (os.environ if environ is None else environ).get("NEWSMON_CONFIG")
    if from_env:
        path = Path(from_env)
        if not path.is_file():
            raise ConfigError(f"{path}: config file named by $NEWSMON_CONFIG not found")
        return path
    local = Path("newsmon.toml")
    return local if local.is_file() else None


def load_settings(
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Settings:
    """Build the settings from defaults, the config file and the environment."""
    env = os.environ if environ is None else environ
    path = find_config_file(config_file, env)
    data: dict[str, Any] = {}
    source = "built-in defaults"
    if path is not None:
        source = str(path)
        data = read_toml(path, ConfigError)
    data, from_env = _apply_env_overrides(data, env)
    return settings_from_mapping(data, source=source, env_keys=from_env)


def settings_from_mapping(data: Mapping[str, Any], source: str = "<mapping>",
                          env_keys: Mapping[tuple[str, str], str] | None = None) -> Settings:
    """Validate a parsed config mapping into Settings, naming the source in errors.

    `env_keys` maps (section, key) to the environment variable that set it, so an error in an
    override names the variable rather than the file."""
    sections: dict[str, Any] = {}
    for key, value in data.items():
        if key == "feeds":
            continue
        if key not in _SECTIONS:
            known = ", ".join(sorted([*_SECTIONS, "feeds"]))
            raise ConfigError(f"{source}: unknown section [{key}] (known: {known})")
        if not isinstance(value, Mapping):
            raise ConfigError(f"{source}: [{key}] must be a table")
        sections[key] = _build_section(key, _SECTIONS[key], value, source, env_keys or {})
    feeds = DEFAULT_FEEDS
    if "feeds" in data:
        feeds = _build_feeds(data["feeds"], source)
    return Settings(**sections, feeds=feeds, source=source)


def _build_section(name: str, cls: type, values: Mapping[str, Any], source: str,
                   env_keys: Mapping[tuple[str, str], str]) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)}
    defaults = cls()
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        where = env_keys.get((name, key), source)
        if key not in fields:
            raise ConfigError(
                f"{where}: unknown key '{key}' in [{name}] (known: {', '.join(sorted(fields))})"
            )
        kwargs[key] = _coerce(name, key, getattr(defaults, key), value, where)
    return cls(**kwargs)


def _coerce(section: str, key: str, default: Any, value: Any, source: str) -> Any:
    where = f"{source}: [{section}] {key}"
    if isinstance(default, bool):
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false", "1", "0", "yes", "no"}:
            return value.lower() in {"true", "1", "yes"}
        raise ConfigError(f"{where} must be true or false, not {value!r}")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        raise ConfigError(f"{where} must be a non-negative integer, not {value!r}")
    if isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return float(value)
        raise ConfigError(f"{where} must be a non-negative number, not {value!r}")
    if isinstance(default, tuple):
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return tuple(value)
        raise ConfigError(f"{where} must be a list of strings, not {value!r}")
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string, not {value!r}")
    return value


def _build_feeds(raw: Any, source: str) -> tuple[FeedConfig, ...]:
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: [[feeds]] must be an array of tables")
    feeds: list[FeedConfig] = []
    for index, entry in enumerate(raw, start=1):
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{source}: feed #{index} must be a table with name and url")
        unknown = set(entry) - {"name", "url"}
        if unknown:
            raise ConfigError(f"{source}: feed #{index}: unknown key '{min(unknown)}'")
        url = entry.get("url")
        if not isinstance(url, str) or not _is_http_url(url):
            raise ConfigError(f"{source}: feed #{index}: invalid feed URL {url!r} (need http or https)")
        name = entry.get("name") or urlsplit(url).hostname or url
        if not isinstance(name, str):
            raise ConfigError(f"{source}: feed #{index}: name must be a string")
        feeds.append(FeedConfig(name=name, url=url.strip()))
    return tuple(feeds)


def _is_http_url(url: str) -> bool:
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    return parts.scheme in {"http", "https"} and bool(parts.hostname)


def _apply_env_overrides(
    data: dict[str, Any], environ: Mapping[str, str]
) -> tuple[dict[str, Any], dict[tuple[str, str], str]]:
    merged = {key: (dict(value) if isinstance(value, Mapping) else value) for key, value in data.items()}
    origins: dict[tuple[str, str], str] = {}
    for name, raw in environ.items():
        if not name.startswith(ENV_PREFIX) or "__" not in name:
            continue
        section, _, key = name[len(ENV_PREFIX):].lower().partition("__")
        if section not in _SECTIONS:
            continue  # NEWSMON_CONFIG and friends are not section overrides
        merged.setdefault(section, {})[key] = _parse_env_value(raw)
        origins[(section, key)] = f"${name}"
    return merged, origins


def _parse_env_value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def smtp_password(settings: Settings, environ: Mapping[str, str] | None = None) -> str | None:
    """Return the SMTP password from $NEWSMON_SMTP_PASSWORD or the configured Prefect Secret."""
    env = os.environ if environ is None else environ
    if env.get("NEWSMON_SMTP_PASSWORD"):
        return env["NEWSMON_SMTP_PASSWORD"]
    if settings.smtp.password_block:
        from prefect.blocks.system import Secret

        # Called from sync code, where Prefect's load returns the block, not a coroutine.
        block = cast(Secret, Secret.load(settings.smtp.password_block))
        return str(block.get())
    return None
