from __future__ import annotations

from pathlib import Path

import pytest

from newsmon.config import DEFAULT_FEEDS, ConfigError, load_settings


def test_defaults_without_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(environ={})
    assert settings.storage.database == "data/newsmon.duckdb"
    assert settings.fetch.allow_private_addresses is False
    assert settings.feeds == DEFAULT_FEEDS
    assert any("huggingface.co/blog/feed.xml" in f.url for f in settings.feeds)


def test_file_then_environment(tmp_path: Path) -> None:
    config = tmp_path / "newsmon.toml"
    config.write_text(
        '[storage]\ndatabase = "x.duckdb"\n[fetch]\nallow_private_addresses = true\n'
        '[[feeds]]\nname = "HF"\nurl = "https://huggingface.co/blog/feed.xml"\n'
    )
    settings = load_settings(config, environ={"NEWSMON_STORAGE__DATABASE": "/tmp/y.duckdb",
                                              "NEWSMON_FETCH__CONCURRENCY": "4"})
    assert settings.storage.database == "/tmp/y.duckdb"
    assert settings.fetch.allow_private_addresses is True
    assert settings.fetch.concurrency == 4
    assert [f.name for f in settings.feeds] == ["HF"]


def test_env_names_config_file(tmp_path: Path) -> None:
    config = tmp_path / "other.toml"
    config.write_text('[storage]\ndatabase = "z.duckdb"\n')
    settings = load_settings(environ={"NEWSMON_CONFIG": str(config)})
    assert settings.storage.database == "z.duckdb"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[storage\n", "not valid TOML"),
        ("[fetch]\nspeed = 3\n", "unknown key 'speed' in [fetch]"),
        ("[nope]\na = 1\n", "unknown section [nope]"),
        ('[[feeds]]\nname = "x"\nurl = "ftp://example.com/feed"\n', "invalid feed URL"),
        ("[fetch]\nconcurrency = \"many\"\n", "[fetch] concurrency must be a non-negative integer"),
    ],
)
def test_bad_config_names_file_and_problem(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(config, environ={})
    assert message in str(info.value)
    assert str(config) in str(info.value)


def test_documented_default_file_matches_built_in_defaults() -> None:
    from newsmon.config import Settings
    from newsmon.paths import PROJECT_ROOT

    documented = load_settings(PROJECT_ROOT / "newsmon.toml", environ={})
    assert documented.replace(source="x") == Settings().replace(source="x")


def test_bad_environment_override_names_the_variable(tmp_path: Path) -> None:
    config = tmp_path / "ok.toml"
    config.write_text("[fetch]\nretries = 2\n")
    with pytest.raises(ConfigError) as info:
        load_settings(config, environ={"NEWSMON_FETCH__CONCURRENCY": "lots"})
    assert str(info.value).startswith("$NEWSMON_FETCH__CONCURRENCY: [fetch] concurrency")
