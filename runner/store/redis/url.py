"""A Redis URL checked before it is used: its database number and port, and the server's
refusal of a database it does not have, as settings errors naming the URL.

redis-py reads ``redis://host/abc`` as database 0 without a word, and a number past
the server's ``databases`` fails at the first command with a driver traceback; both are
a wrong setting, so they are said as one (exit 78, as every bad setting).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from redis.exceptions import ResponseError

from runner.errors import ConfigError

#: Where a Redis URL comes from, for messages.
SETTING = "[runner] redis_url / REDIS_URL or [runner] database"


def split_prefix(url: str, default: str) -> tuple[str, str]:
    """``redis://...?prefix=NAME``: the URL without its ``prefix`` parameter, and the prefix
    (``default`` when it names none)."""
    prefix = default
    base, sep, query = url.partition("?")
    if not sep:
        return url, prefix
    kept = []
    for part in query.split("&"):
        name, _, value = part.partition("=")
        if name == "prefix" and value:
            prefix = value
        elif part:
            kept.append(part)
    return base + ("?" + "&".join(kept) if kept else ""), prefix


def nothing_under(prefix: str) -> str:
    """Why a prefix holds no jobs database, as every message about one says it."""
    return (f"nothing was ever written under prefix {prefix!r}: a mistyped prefix "
            "([runner] redis_prefix, or ?prefix=NAME in the URL), or no worker has run "
            "on it yet (the first worker or producer creates it)")


def redacted(url: str) -> str:
    """``url`` without a password, for messages."""
    scheme, sep, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return url
    return f"{scheme}://{credentials.split(':', 1)[0]}:***@{host}"


def _problem(url: str, text: str) -> ConfigError:
    return ConfigError(f"Redis URL {redacted(url)} ({SETTING}): {text}")


def check_url(url: str) -> None:
    """Refuse a URL whose database or port cannot be meant, before any connection.

    Raises:
        ConfigError: the database (``/N`` or ``?db=N``) is not a number from 0 up,
            or the port is not one from 1 to 65535.
    """
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raw = urlsplit(url).netloc.rpartition("@")[2].rpartition(":")[2]
        raise _problem(url, f"port {raw!r} is not a port number (1-65535)") from None
    if port is not None and not 0 < port < 65536:
        raise _problem(url, f"port {port} is not a port number (1-65535)")
    chosen = parse_qs(parts.query).get("db", [])
    if parts.scheme != "unix":
        path = unquote(parts.path).strip("/")
        chosen = [path, *chosen] if path else chosen
    for value in chosen:
        if not value.isdigit():
            raise _problem(url, f"database {value!r} is not a number (Redis numbers its "
                                "databases from 0: redis://host:6379/0)")


def database_of(url: str) -> int:
    """The database number of a checked URL (0 when it names none)."""
    parts = urlsplit(url)
    chosen = parse_qs(parts.query).get("db") or [unquote(parts.path).strip("/") or "0"]
    return int(chosen[0]) if parts.scheme != "unix" or "db" in parts.query else 0


def connect_checking_database(url: str) -> Callable[[Any], None]:
    """A redis-py ``redis_connect_func``: the usual handshake (AUTH, SELECT, ...), with
    a server's refusal of the database number said as the setting it is."""
    def connect(connection: Any) -> None:
        try:
            connection.on_connect()
        except ResponseError as exc:
            if "DB index" not in str(exc):
                raise
            raise _problem(url, f"database {database_of(url)} does not exist on the server "
                                f"({exc}; the server's 'databases' setting, 16 by default, "
                                "numbers them from 0)") from None
    return connect
