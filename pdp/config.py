"""The settings of `pdp serve`: one table of options, read from flags and PDP_* variables.

`SERVE_OPTIONS` is the only list of what `pdp serve` can be told. It builds the argparse
flags (`add_serve_options`), resolves each value (flag, else environment variable, else
default: `settings_from_args`) and renders the README's configuration table
(`markdown_table`, printed by `python -m pdp.config`), so the help, the README and the code
cannot drift apart; `tests/e2e/test_config_table.py` compares the README with `--help`.
The risk options become a `pdp.risk.settings.RiskSettings`.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import textwrap
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from pdp.errors import StartupError
from pdp.gateway.config import GatewayConfig, GatewayConfigError, load_gateway_config
from pdp.risk.assessor import check_settings
from pdp.risk.settings import FailureMode, RecordPolicy, RiskSettings

DEFAULT_LISTEN: Final = "127.0.0.1:50051"
_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"", "0", "false", "no", "off"})


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything one `pdp serve` (supervisor and workers alike) runs with."""

    policies: Path
    listen: str = DEFAULT_LISTEN
    http_listen: str = ""  # the forward-auth endpoint's HOST:PORT; "" = off
    workers: int = 1
    grace_s: float = 10.0
    max_concurrent_rpcs: int = 1000
    max_message_bytes: int = 1_048_576
    tls_cert: Path | None = None
    tls_key: Path | None = None
    client_ca: Path | None = None
    reload_interval_s: float = 2.0  # 0: reload on SIGHUP only
    metrics_port: int = 9090  # 0: no /metrics
    audit_log: str = ""  # "" off, "-" stdout, else a file appended to
    audit_truncate_ip: bool = False
    log_format: str = "json"
    risk: RiskSettings = field(default_factory=RiskSettings)
    gateway_config: Path | None = None  # Envoy ext_authz mapping (checked when parsed)

    def gateway(self) -> GatewayConfig:
        """The Envoy ext_authz mapping: the --gateway-config file, else the defaults."""
        if self.gateway_config is None:
            return GatewayConfig()
        return load_gateway_config(self.gateway_config)

    @property
    def host(self) -> str:
        """The host part of `listen` (IPv6 brackets removed): /metrics binds there too."""
        return self.listen.rpartition(":")[0].strip("[]")


# -- value parsers: each raises argparse.ArgumentTypeError naming what it expected -------------


def listen_address(value: str) -> str:
    """HOST:PORT with a port in 0..65535."""
    host, sep, port = value.rpartition(":")
    if not (sep and host and port.isdigit() and int(port) <= 65535):
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {value!r}")
    return value


def _workers(value: str) -> int:
    if value == "auto":
        return len(os.sched_getaffinity(0))
    return _bounded_int(1, 1024)(value)


def _bounded_int(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            number = low - 1
        if not low <= number <= high:
            raise argparse.ArgumentTypeError(f"expected an integer {low}..{high}, got {value!r}")
        return number

    return parse


def _seconds(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if not 0 <= number <= 86_400:
        raise argparse.ArgumentTypeError(f"expected seconds 0..86400, got {value!r}")
    return number


def _positive_ms(value: str) -> float:
    number = _seconds(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"expected milliseconds > 0, got {value!r}")
    return number


def _choice(*choices: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        if value not in choices:
            raise argparse.ArgumentTypeError(f"expected one of {', '.join(choices)}, got {value!r}")
        return value

    return parse


def _flag(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a CIDR range, got {value!r}") from None
    return value.strip()


def _cidrs(value: str) -> list[str]:
    return [_cidr(part) for part in value.split(",") if part.strip()]


def _text(value: str) -> str:
    return value


# -- the table -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Option:
    """One `pdp serve` option: its flag, variable, default and meaning, as README shows them."""

    flag: str
    env: str
    metavar: str  # "" for a switch (a flag without a value)
    parse: Callable[[str], Any]
    default: str  # as text, parsed like a value; "" = no value
    shown_default: str  # the README / --help spelling of the default
    meaning: str
    repeat: bool = False  # the flag may be given again; the variable is comma-separated
    parse_env: Callable[[str], Any] | None = None  # when the variable differs from the flag

    @property
    def dest(self) -> str:
        """The argparse attribute name."""
        return self.flag.removeprefix("--").replace("-", "_")

    @property
    def invocation(self) -> str:
        """`--flag METAVAR` as --help prints it."""
        return f"{self.flag} {self.metavar}" if self.metavar else self.flag

    @property
    def help(self) -> str:
        """The --help text: the meaning, then where the default comes from."""
        return f"{self.meaning} [env: {self.env}; default: {self.shown_default}]"


def _opt(  # noqa: PLR0917 - a table row reads best positionally
    flag: str, metavar: str, parse: Callable[[str], Any], default: str, shown: str,
         meaning: str, **extra: Any) -> Option:  # fmt: skip
    env = "PDP_" + flag.removeprefix("--").replace("-", "_").upper()
    return Option(flag, extra.pop("env", env), metavar, parse, default, shown, meaning, **extra)


SERVE_OPTIONS: Final[tuple[Option, ...]] = (
    _opt("--policies", "PATH", Path, "", "(required)",
         "policy file or folder; watched, reloaded when it changes"),
    _opt("--listen", "HOST:PORT", listen_address, DEFAULT_LISTEN, DEFAULT_LISTEN,
         "gRPC address; port 0 picks a free port (printed)"),
    _opt("--http-listen", "HOST:PORT", listen_address, "", "(off)",
         "HTTP forward-auth endpoint /authz for NGINX, Traefik, Caddy (see Any gateway); "
         "TLS as --tls-cert"),
    _opt("--workers", "N", _workers, "1", "1",
         "worker processes sharing the port (SO_REUSEPORT), auto = one per core"),
    _opt("--grace", "SECONDS", _seconds, "10", "10",
         "on SIGTERM or SIGINT, how long calls in flight get to finish"),
    _opt("--max-concurrent-rpcs", "N", _bounded_int(1, 1_000_000), "1000", "1000",
         "decision calls (Evaluate and Check) in progress per worker; more are refused at once "
         "(RESOURCE_EXHAUSTED, or a 503 denial for Check)"),
    _opt("--max-message-bytes", "N", _bounded_int(1024, 1 << 30), "1048576", "1048576",
         "largest request message pdp decides (larger ones are refused like calls over the "
         "limit)"),
    _opt("--tls-cert", "PATH", Path, "", "(plaintext)",
         "server certificate chain (PEM); with --tls-key, serve TLS"),
    _opt("--tls-key", "PATH", Path, "", "(none)", "private key of --tls-cert (PEM)"),
    _opt("--client-ca", "PATH", Path, "", "(none)",
         "CA bundle (PEM): callers must present a certificate it signed (mutual TLS)"),
    _opt("--reload-interval", "SECONDS", _seconds, "2", "2",
         "how often the policy path is checked for changes; 0 = on SIGHUP only"),
    _opt("--metrics-port", "PORT", _bounded_int(0, 65535), "9090", "9090",
         "Prometheus /metrics on the host of --listen; 0 = off"),
    _opt("--audit-log", "PATH", _text, "", "(off)",
         "append one JSON line per decision to PATH, or to stdout with -"),
    _opt("--audit-truncate-ip", "", _flag, "false", "false",
         "audit IPv4 addresses as their /24 and IPv6 as their /48"),
    _opt("--log-format", "FORMAT", _choice("json", "console"), "json", "json",
         "log records on stderr: json lines, or console for a person"),
    _opt("--gateway-config", "PATH", Path, "", "(built-in defaults)",
         "YAML mapping Envoy ext_authz CheckRequests to sign-ins (see Envoy and Istio)"),
    _opt("--redis-url", "URL", _text, "", "(in-process store)",
         "risk history in Redis: redis:// or rediss:// (TLS), user and password allowed"),
    _opt("--redis-mode", "MODE", _choice("standalone", "sentinel", "cluster"), "standalone",
         "standalone", "standalone, sentinel or cluster"),
    _opt("--redis-sentinel-service", "NAME", _text, "mymaster", "mymaster",
         "the monitored master's name in sentinel mode"),
    _opt("--redis-timeout-ms", "MS", _positive_ms, "5", "5",
         "how long Redis gets to answer a risk store call; past it, decide without pdp's risk"),
    _opt("--risk-failure-mode", "MODE", _choice("open", "closed"), "open", "open",
         "risk store unavailable: open = upstream risk only, closed = risk high"),
    _opt("--geoip-db", "PATH", _text, "", "(none)",
         "MaxMind-format City or Country database for geo-IP"),
    _opt("--trusted-range", "CIDR", _cidr, "", "(none)",
         "VPN or proxy egress range not judged by travel; repeatable, env comma-separated",
         repeat=True, env="PDP_TRUSTED_RANGES", parse_env=_cidrs),
    _opt("--record-sign-ins", "WHICH", _choice("evaluated", "allowed"), "evaluated",
         "evaluated", "sign-ins written to the risk history: evaluated or allowed"),
    _opt("--force-record", "", _flag, "false", "false",
         "record sign-ins even when no policy reads sign-in risk"),
    _opt("--risk-memory-mb", "MB", _bounded_int(1, 1 << 20), "128", "128",
         "memory budget of the in-process risk store, per worker; least recently used users"
         " go first"),
)  # fmt: skip


class HelpFormatter(argparse.HelpFormatter):
    """argparse's help layout, without breaking lines inside hyphenated words."""

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def add_serve_options(parser: argparse.ArgumentParser) -> None:
    """Add every option of SERVE_OPTIONS to `parser`; values are resolved later."""
    for option in SERVE_OPTIONS:
        if not option.metavar:
            parser.add_argument(option.flag, action="store_const", const=True, help=option.help)
        elif option.repeat:
            parser.add_argument(
                option.flag, action="append", type=option.parse, metavar=option.metavar,
                help=option.help,
            )  # fmt: skip
        else:
            parser.add_argument(
                option.flag, type=option.parse, metavar=option.metavar, help=option.help
            )


def resolve(
    args: argparse.Namespace, environ: Mapping[str, str], error: Callable[[str], Any]
) -> dict[str, Any]:
    """Each option's value: the flag's, else the variable's, else the default (None if none).

    A variable that does not parse is reported through `error` (argparse's: exit 2).
    """
    values: dict[str, Any] = {}
    for option in SERVE_OPTIONS:
        value = getattr(args, option.dest, None)
        if value is None and option.env in environ:
            parse = option.parse_env or option.parse
            try:
                value = parse(environ[option.env])
            except (argparse.ArgumentTypeError, ValueError) as exc:
                error(f"{option.env}: {exc}")
        if value is None and option.default:
            value = option.parse(option.default)
        values[option.dest] = value
    return values


def settings_from_args(
    args: argparse.Namespace, environ: Mapping[str, str], error: Callable[[str], Any]
) -> Settings:
    """The Settings for parsed `pdp serve` arguments, with PDP_* variables as defaults."""
    v = resolve(args, environ, error)
    if v["policies"] is None:
        error("--policies (or PDP_POLICIES) is required")
    if (v["tls_cert"] is None) != (v["tls_key"] is None):
        error("--tls-cert and --tls-key go together")
    if v["client_ca"] is not None and v["tls_cert"] is None:
        error("--client-ca needs --tls-cert and --tls-key")
    if v["gateway_config"] is not None:
        try:
            load_gateway_config(v["gateway_config"])  # refuse a bad file before serving
        except GatewayConfigError as exc:  # a file the server cannot use: exit 1, one line
            raise StartupError(f"--gateway-config {exc}") from None
        except OSError as exc:
            path = v["gateway_config"]
            raise StartupError(f"--gateway-config {path}: {exc.strerror or exc}") from None
    risk = RiskSettings(
        redis_url=v["redis_url"] or "",
        redis_mode=v["redis_mode"],
        sentinel_service=v["redis_sentinel_service"],
        redis_timeout_ms=v["redis_timeout_ms"],
        failure_mode=FailureMode(v["risk_failure_mode"]),
        geoip_db=v["geoip_db"] or "",
        trusted_ranges=tuple(v["trusted_range"] or ()),
        record=RecordPolicy(v["record_sign_ins"]),
        force_record=bool(v["force_record"]),
        memory_budget_mb=v["risk_memory_mb"],
    )
    try:
        check_settings(risk)  # a bad --redis-url is a bad command line: refused before start
    except ValueError as exc:
        error(str(exc))
    return Settings(
        policies=v["policies"],
        listen=v["listen"],
        http_listen=v["http_listen"] or "",
        workers=v["workers"],
        grace_s=v["grace"],
        max_concurrent_rpcs=v["max_concurrent_rpcs"],
        max_message_bytes=v["max_message_bytes"],
        tls_cert=v["tls_cert"],
        tls_key=v["tls_key"],
        client_ca=v["client_ca"],
        reload_interval_s=v["reload_interval"],
        metrics_port=v["metrics_port"],
        audit_log=v["audit_log"] or "",
        audit_truncate_ip=bool(v["audit_truncate_ip"]),
        log_format=v["log_format"],
        risk=risk,
        gateway_config=v["gateway_config"],
    )


def markdown_table(options: Sequence[Option] = SERVE_OPTIONS) -> str:
    """The README configuration table (flag, environment, default, meaning)."""
    rows = ["| flag | environment | default | meaning |", "|---|---|---|---|"]
    rows += [f"| `{o.invocation}` | `{o.env}` | {o.shown_default} | {o.meaning} |" for o in options]
    return "\n".join(rows)


if __name__ == "__main__":  # `python -m pdp.config` prints the README table
    from pdp.console import run_command

    def _print_table() -> int:
        print(markdown_table())
        return 0

    raise SystemExit(run_command(_print_table))
