"""The broker's settings: one `Settings` from defaults < config file < environment < flags.

Every setting is a `Key` named as in the TOML file (`amqp.port` is `port` in table `[amqp]`), read
from the environment as `AMQPBROKER_AMQP_PORT`, and from a flag where it has one (`--port`). A key's
parser takes a TOML value or text (environment, flags) and raises ValueError saying what is wrong;
`load` turns that into a `ConfigError` naming where the value came from and the key. An unknown key
in the file is an error; environment variables that name no key are not ours and are ignored.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from . import __version__, core
from .protocol import MAX_MESSAGE_SIZE, MAX_MESSAGE_SIZE_CEILING
from .server import Limits

ENV_PREFIX = "AMQPBROKER_"
CONFIG_ENV = "AMQPBROKER_CONFIG"
LOG_LEVELS = ("debug", "info", "warning", "error")


class ConfigError(Exception):
    """A setting that stops the start: where it came from, its key, and what is wrong, in one line."""


# Parsers: a TOML value or a text -> the setting's value.


def _port(value: Any) -> int:
    port = _integer(value, "a port number")
    if not 0 <= port <= 65535:
        raise ValueError(f"port must be between 0 and 65535, not {port}")
    return port


def _integer(value: Any, what: str) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    raise ValueError(f"not {what}: {value!r}")


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"not a string: {value!r}")
    return value


def _path(value: Any) -> str:
    if not _text(value):
        raise ValueError("an empty path")
    return os.path.expanduser(value)


_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def _bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
        return value.strip().lower() in _TRUE
    raise ValueError(f"not true or false: {value!r}")


_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


def _size(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    number = value.strip().upper() if isinstance(value, str) else ""
    digits = number.rstrip("KMGIB")
    unit = number[len(digits):]
    if not digits.isdigit() or unit not in _UNITS:
        raise ValueError(f"not a size: {value!r} (examples: 1048576, 512MB, 2GiB)")
    return int(digits) * _UNITS[unit]


def _message_size(value: Any) -> int:
    size = _size(value)
    if size > MAX_MESSAGE_SIZE_CEILING:
        raise ValueError(f"{value} is more than the largest allowed, 512MiB")
    return size


def _seconds(value: Any) -> float:
    if isinstance(value, bool):
        raise ValueError(f"not a number of seconds: {value!r}")
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"not a number of seconds: {value!r}") from None
    if not seconds > 0:
        raise ValueError(f"must be more than 0 seconds, not {value}")
    return seconds


def _timeout(value: Any) -> int | None:
    """Milliseconds; 0 is None: no timeout."""
    return _integer(value, "a number of milliseconds") or None


def _names(value: Any) -> tuple[str, ...]:
    if isinstance(value, list) and all(isinstance(name, str) for name in value):
        return tuple(value)
    return tuple(name.strip() for name in _text(value).split(",") if name.strip())


def _log_level(value: Any) -> str:
    if value not in LOG_LEVELS:
        raise ValueError(f"not one of {', '.join(LOG_LEVELS)}: {value!r}")
    return value


def default_memory_limit() -> int:
    """40% of physical memory, RabbitMQ's default high watermark."""
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * 0.4)


def default_data_dir() -> str:
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return os.path.join(base, "amqpbroker")


_VALUE = object()
"""A flag that takes a value, as opposed to a switch that sets a fixed one."""


@dataclass(frozen=True)
class Key:
    name: str
    parse: Callable[[Any], Any]
    default: Any
    """The value, or a function of nothing computing it."""
    help: str
    flag: str | None = None
    sets: Any = _VALUE
    """For a switch, the value the flag sets."""
    metavar: str | None = None

    @property
    def env(self) -> str:
        return ENV_PREFIX + self.name.upper().replace(".", "_")

    def default_value(self) -> Any:
        return self.default() if callable(self.default) else self.default


KEYS: tuple[Key, ...] = (
    Key("amqp.host", _text, "", "address the AMQP, AMQPS and HTTP listeners bind (empty: every address, "
        "IPv4 and IPv6)", "--host"),
    Key("amqp.port", _port, 5672, "AMQP port, 0 for any free one", "--port"),
    Key("amqp.enabled", _bool, True, "serve plain AMQP (false: only AMQPS)", "--no-amqp", False),
    Key("http.port", _port, 15672, "management HTTP API port, 0 for any free one", "--http-port"),
    Key("http.enabled", _bool, True, "serve the management HTTP API", "--no-http", False),
    Key("http.tls", _bool, False, "serve the management API over HTTPS with tls.certfile and tls.keyfile",
        "--http-tls", True),
    Key("metrics.port", _port, 15692, "Prometheus metrics port (/metrics), 0 for any free one", "--metrics-port"),
    Key("metrics.enabled", _bool, True, "serve the Prometheus metrics", "--no-metrics", False),
    Key("tls.port", _port, 5671, "AMQPS port (AMQP over TLS, served when tls.certfile is set), 0 for any free one",
        "--tls-port"),
    Key("tls.certfile", _path, None, "the server's certificate chain (PEM); setting it serves AMQPS",
        "--tls-certfile", metavar="FILE"),
    Key("tls.keyfile", _path, None, "the server certificate's private key (PEM)", "--tls-keyfile", metavar="FILE"),
    Key("tls.cafile", _path, None, "CA certificates (PEM) that client certificates are verified against",
        "--tls-cafile", metavar="FILE"),
    Key("tls.verify_peer", _bool, False, "require a client certificate signed by tls.cafile",
        "--tls-verify-peer", True),
    Key("storage.data_dir", _path, default_data_dir,
        "where durable exchanges, queues, bindings and persistent messages live", "--data-dir"),
    Key("storage.in_memory", _bool, False, "keep everything in memory; nothing survives a restart",
        "--in-memory", True),
    Key("limits.memory", _size, default_memory_limit,
        "message bytes held in memory above which publishers are blocked; default: 40% of physical memory",
        "--memory-limit", metavar="SIZE"),
    Key("limits.max_message_size", _message_size, MAX_MESSAGE_SIZE,
        "largest message body accepted, at most 512MiB", "--max-message-size", metavar="SIZE"),
    Key("limits.disk_free", _size, Limits.disk_free_limit,
        "free space on the data directory's disk below which publishers are blocked", "--disk-free-limit",
        metavar="SIZE"),
    Key("limits.handshake_timeout", _seconds, Limits.handshake_timeout,
        "seconds a client has from connecting to connection.open-ok (and for a TLS handshake)",
        "--handshake-timeout", metavar="SECONDS"),
    Key("limits.shutdown_timeout", _seconds, Limits.shutdown_timeout,
        "seconds shutdown waits for the store's last writes", "--shutdown-timeout", metavar="SECONDS"),
    Key("limits.consumer_timeout", _timeout, core.DEFAULT_CONSUMER_TIMEOUT,
        "milliseconds a delivery may stay unacknowledged before its channel is closed; 0 never",
        "--consumer-timeout", metavar="MS"),
    Key("auth.loopback_users", _names, ("guest",),
        "users who may log in only from a loopback address (a list, or comma-separated text)",
        "--loopback-users", metavar="NAMES"),
    Key("definitions.load", _path, None,
        "a definitions file (RabbitMQ's JSON format) imported at every start, as RabbitMQ's load_definitions; "
        "what exists already is kept; a new data directory then gets no guest and no vhost '/'",
        "--load-definitions", metavar="FILE"),
    Key("log.level", _log_level, "info", "one of " + ", ".join(LOG_LEVELS), "--log-level"),
)
_BY_NAME = {key.name: key for key in KEYS}


class Settings(Mapping[str, Any]):
    """Every key's value, by its dotted name."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self._values = dict(values)

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)


def load(argv: list[str] | None = None, environ: Mapping[str, str] | None = None) -> Settings:
    """The settings from flags (`argv`), the environment, the config file they name, and defaults.
    A bad flag exits as argparse does; anything else wrong raises ConfigError."""
    environ = os.environ if environ is None else environ
    flags = vars(_parser().parse_args(argv))
    path = flags.pop("config", None) or environ.get(CONFIG_ENV)
    values = {key.name: key.default_value() for key in KEYS}
    if path:
        values.update(_read_file(path))
    for key in KEYS:
        if key.env in environ:
            values[key.name] = _parse(key, environ[key.env], f"environment {key.env}")
    values.update(flags)
    _check(values)
    return Settings(values)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amqpbroker",
        description="An AMQP 0-9-1 message broker. Settings: flags > AMQPBROKER_* environment > --config file "
        "> defaults; every key is in docs/configuration.md. `amqpbroker ctl --help`: the command-line client "
        "of a running broker.",
    )
    parser.add_argument("--config", metavar="FILE", help=f"a TOML config file (or ${CONFIG_ENV})")
    for key in KEYS:
        if key.flag is None:
            continue
        if key.sets is _VALUE:
            parser.add_argument(key.flag, dest=key.name, type=_flag_type(key), default=argparse.SUPPRESS,
                                metavar=key.metavar or key.name.rsplit(".", 1)[1].upper(), help=f"{key.name}: {key.help}".replace("%", "%%"))
        else:
            parser.add_argument(key.flag, dest=key.name, action="store_const", const=key.sets,
                                default=argparse.SUPPRESS, help=f"{key.name} = {str(key.sets).lower()}")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def _flag_type(key: Key) -> Callable[[str], Any]:
    def parse(text: str) -> Any:
        try:
            return key.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = key.name  # argparse names the type in some messages
    return parse


def _read_file(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as file:
            document = tomllib.load(file)
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not TOML: {exc}") from None
    values = {}
    for name, value in _flatten(document):
        key = _BY_NAME.get(name)
        if key is None:
            raise ConfigError(f"{path}: {name}: unknown key (the keys are in docs/configuration.md)")
        values[name] = _parse(key, value, path)
    return values


def _flatten(table: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for name, value in table.items():
        if isinstance(value, dict):
            yield from _flatten(value, f"{prefix}{name}.")
        else:
            yield prefix + name, value


def _parse(key: Key, value: Any, source: str) -> Any:
    try:
        return key.parse(value)
    except ValueError as exc:
        raise ConfigError(f"{source}: {key.name}: {exc}") from None


def _check(values: dict[str, Any]) -> None:
    """What no key can tell alone: TLS needs a certificate and its key, peer verification a CA."""
    if (values["tls.certfile"] is None) != (values["tls.keyfile"] is None):
        raise ConfigError("tls.certfile and tls.keyfile: each needs the other")
    if values["http.tls"] and values["tls.certfile"] is None:
        raise ConfigError("http.tls: needs tls.certfile and tls.keyfile")
    if values["tls.verify_peer"] and values["tls.cafile"] is None:
        raise ConfigError("tls.verify_peer: needs tls.cafile")
    if not values["amqp.enabled"] and values["tls.certfile"] is None:
        raise ConfigError("amqp.enabled: false needs AMQPS (tls.certfile), or no client could connect")
