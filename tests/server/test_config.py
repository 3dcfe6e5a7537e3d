"""Settings from defaults < config file < environment < flags, and what stops the start."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from amqpbroker import config

DOCS = Path(__file__).parents[2] / "docs" / "configuration.md"


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "amqpbroker.toml"
    path.write_text(text)
    return str(path)


def test_every_key_is_documented_and_every_documented_key_exists() -> None:
    documented = re.findall(r"^\| `([a-z_]+\.[a-z_]+)` \|", DOCS.read_text(), re.MULTILINE)
    assert sorted(documented) == sorted(key.name for key in config.KEYS)


def test_defaults_are_rabbitmqs() -> None:
    settings = config.load([], {})
    assert (settings["amqp.port"], settings["tls.port"], settings["http.port"]) == (5672, 5671, 15672)
    assert settings["tls.certfile"] is None
    assert settings["auth.loopback_users"] == ("guest",)
    assert settings["amqp.host"] == "", "every address, IPv4 and IPv6"


def test_flag_beats_environment_beats_file_beats_default(tmp_path) -> None:
    path = write(tmp_path, "[amqp]\nport = 1001\nhost = '127.0.0.1'\n[http]\nport = 2001\n[limits]\nmemory = '1MB'\n")
    environ = {"AMQPBROKER_AMQP_PORT": "1002", "AMQPBROKER_HTTP_PORT": "2002"}
    settings = config.load(["--config", path, "--port", "1003"], environ)
    assert settings["amqp.port"] == 1003
    assert settings["http.port"] == 2002
    assert settings["amqp.host"] == "127.0.0.1"
    assert settings["limits.memory"] == 1_000_000
    assert settings["limits.disk_free"] == 50_000_000


def test_the_config_file_may_be_named_by_the_environment(tmp_path) -> None:
    path = write(tmp_path, "[auth]\nloopback_users = ['ops', 'guest']\n[storage]\nin_memory = true\n")
    settings = config.load([], {"AMQPBROKER_CONFIG": path})
    assert settings["auth.loopback_users"] == ("ops", "guest")
    assert settings["storage.in_memory"] is True


def test_switches_from_the_environment_and_flags() -> None:
    assert config.load([], {"AMQPBROKER_HTTP_ENABLED": "no"})["http.enabled"] is False
    assert config.load(["--in-memory"], {"AMQPBROKER_STORAGE_IN_MEMORY": "false"})["storage.in_memory"] is True


def test_environment_variables_naming_no_key_are_not_ours() -> None:
    assert config.load([], {"AMQPBROKER_REQUIRE_TOOLS": "1"})["amqp.port"] == 5672


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[amqp]\nprot = 5672\n", "amqp.prot: unknown key"),
        ("verbose = true\n", "verbose: unknown key"),
        ("[amqp]\nport = 70000\n", "amqp.port: port must be between 0 and 65535, not 70000"),
        ("[amqp]\nport = '5672x'\n", "amqp.port: not a port number: '5672x'"),
        ("[limits]\nmax_message_size = '1GiB'\n", "limits.max_message_size: 1GiB is more than the largest allowed"),
        ("[tls]\nverify_peer = 'sometimes'\n", "tls.verify_peer: not true or false: 'sometimes'"),
        ("[limits]\nhandshake_timeout = 0\n", "limits.handshake_timeout: must be more than 0 seconds, not 0"),
        ("[log]\nlevel = 'loud'\n", "log.level: not one of debug, info, warning, error: 'loud'"),
        ("[amqp\n", "not TOML"),
    ],
)
def test_a_bad_file_names_the_key_and_what_is_wrong(tmp_path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(config.ConfigError) as raised:
        config.load(["--config", path], {})
    assert str(raised.value).startswith(f"{path}: ")
    assert message in str(raised.value)


def test_a_bad_environment_value_names_the_variable_and_the_key() -> None:
    with pytest.raises(config.ConfigError) as raised:
        config.load([], {"AMQPBROKER_LIMITS_MEMORY": "lots"})
    assert str(raised.value) == (
        "environment AMQPBROKER_LIMITS_MEMORY: limits.memory: not a size: 'lots' (examples: 1048576, 512MB, 2GiB)"
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--tls-certfile", "server.pem"], "tls.certfile and tls.keyfile: each needs the other"),
        (["--http-tls"], "http.tls: needs tls.certfile and tls.keyfile"),
        (["--tls-verify-peer"], "tls.verify_peer: needs tls.cafile"),
        (["--no-amqp"], "amqp.enabled: false needs AMQPS (tls.certfile)"),
    ],
)
def test_settings_that_need_others(argv: list[str], message: str) -> None:
    with pytest.raises(config.ConfigError, match=re.escape(message)):
        config.load(argv, {})


def test_the_command_stops_with_one_line_and_status_2(tmp_path) -> None:
    path = write(tmp_path, "[storage]\ndata_dri = '/tmp'\n")
    result = subprocess.run(
        [sys.executable, "-m", "amqpbroker", "--config", path], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"amqpbroker: error: {path}: storage.data_dri: unknown key (the keys are in docs/configuration.md)"
    ]


def test_a_missing_config_file_stops_the_start(tmp_path) -> None:
    with pytest.raises(config.ConfigError, match="No such file or directory"):
        config.load(["--config", str(tmp_path / "absent.toml")], {})


@pytest.mark.parametrize("document", [DOCS, Path(__file__).parents[2] / "README.md"])
def test_the_documented_example_files_load(tmp_path, document: Path) -> None:
    [example] = [block for block in re.findall(r"```toml\n(.*?)```", document.read_text(), re.DOTALL)]
    settings = config.load(["--config", write(tmp_path, example)], {})
    assert settings["tls.certfile"] == "/etc/amqpbroker/server.pem"
    assert settings["http.tls"] is True
