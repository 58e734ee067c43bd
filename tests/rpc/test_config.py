"""Configuration precedence: defaults < file < RADTRANSLATE_* environment < flags."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.errors import OptionError
from service.rpc.config import ServerConfig, load_config


def test_precedence(tmp_path: Path) -> None:
    file = tmp_path / "server.toml"
    file.write_text(
        '[server]\nport = 6000\nworkers = 3\nqueue = 7\nmodels_dir = "/m"\n'
        'providers = ["CPUExecutionProvider"]\n'
    )
    env = {"RADTRANSLATE_PORT": "7000", "RADTRANSLATE_QUEUE": "9"}
    config = load_config(config_file=file, environ=env, overrides={"queue": 11, "host": None})
    assert (config.port, config.workers, config.queue, config.models_dir) == (7000, 3, 11, "/m")
    assert config.providers == ("CPUExecutionProvider",)
    assert config.host == ServerConfig().host  # None override = not given


def test_json_file_and_env_config_path(tmp_path: Path) -> None:
    file = tmp_path / "server.json"
    file.write_text('{"grace_s": 5, "log_json": false}')
    config = load_config(environ={"RADTRANSLATE_CONFIG": str(file), "RADTRANSLATE_LOG_JSON": "true"})
    assert config.grace_s == 5.0 and config.log_json is True


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("port = 70000", "port must be an integer within 0..65535"),
        ("workers = 0", "workers must be an integer within 1..256"),
        ("bogus = 1", "option 'bogus' is unknown"),
        ("chunk_bytes = 9000000", "chunk_bytes must be"),
        ("port = [", "not valid TOML"),
    ],
)
def test_invalid_options_name_the_option_and_the_fix(tmp_path: Path, text: str, match: str) -> None:
    file = tmp_path / "bad.toml"
    file.write_text(text + "\n")
    with pytest.raises(OptionError, match=match) as error:
        load_config(config_file=file, environ={})
    assert str(error.value).rstrip().endswith(".")


def test_bad_environment_value() -> None:
    with pytest.raises(OptionError, match=r"workers got 'many'"):
        load_config(environ={"RADTRANSLATE_WORKERS": "many"})
