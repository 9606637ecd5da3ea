"""What ``touchpoint serve`` demands in production, and the headers it sends there (docs/security.md).

With ``env = "production"`` the server refuses to start (:func:`check_production`, a
:class:`~touchpoint.errors.ConfigError` naming each setting and its fix) when

* TLS is not in front: neither ``tls_certfile`` + ``tls_keyfile`` (the server speaks HTTPS itself) nor
  ``behind_tls_proxy = true`` (a reverse proxy terminates TLS), or a certificate file cannot be read, or
  ``public_url`` is plain ``http://``;
* a secret is a placeholder or missing: ``automations_signing_key`` or ``smtp_password`` set to a
  well-known or low-variety value, an SMTP user without a password, or the demo's API keys (saved in plain
  text by ``touchpoint demo`` in ``<data_dir>/demo/keys.json``) still on disk.

Secrets touchpoint makes itself (``privacy.key``, ``automations.key``, API keys, session tokens) are random
per installation and have no default to refuse. In production every cookie is ``Secure`` and every answer
carries ``Strict-Transport-Security`` (:class:`StrictTransport`).

>>> from touchpoint.config import Settings
>>> [p.setting for p in production_problems(Settings(env="production", data_dir="/nonexistent"))]
['tls_certfile']
>>> production_problems(Settings(env="production", behind_tls_proxy=True, data_dir="/nonexistent"))
[]
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from touchpoint.config import Settings
from touchpoint.errors import ConfigError

HSTS = "max-age=31536000; includeSubDomains"
DEMO_KEYS = Path("demo") / "keys.json"  # where `touchpoint demo` saves its keys (touchpoint.demo.run)
#: Values seen in examples and templates: a secret equal to one (ignoring case) is a default, not a secret.
PLACEHOLDERS = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "changethis",
        "secret",
        "password",
        "default",
        "example",
        "test",
        "admin",
        "touchpoint",
        "0123456789abcdef",
        "please-change-me",
        "replace-me",
        "your-secret-here",
        "your-signing-key",
    }
)
#: Words no random secret contains, but placeholders and human-chosen ones do ("my-secret-key-2024").
PLACEHOLDER_WORDS = ("changeme", "replaceme", "yoursecret", "placeholder", "example", "secret", "password", "xxxx")
MIN_DISTINCT = 8  # a secret of fewer distinct characters ("aaaaaaaaaaaaaaaa", "1234123412341234") is guessable
_REPEATED = re.compile(r"^(.{1,8})\1+$")


@dataclass(frozen=True)
class Problem:
    """One reason not to serve in production: the setting, what is wrong, and how to fix it."""

    setting: str
    message: str
    fix: str

    def __str__(self) -> str:
        return f"{self.setting}: {self.message} (fix: {self.fix})"


def weak_secret(value: str) -> bool:
    """Whether ``value`` is a placeholder or has too little variety to be a secret.

    >>> weak_secret("change-me"), weak_secret("aaaaaaaaaaaaaaaaaaaa"), weak_secret("q8Zr-2LpX_v0Tn4wK9s")
    (True, True, False)
    >>> weak_secret("Change_Me-Change_Me"), weak_secret("abcdefgh" * 3), weak_secret("MySecretKey-2026!")
    (True, True, True)
    """
    text = value.strip()
    plain = re.sub(r"[^a-z0-9]", "", text.lower())
    return (
        text.lower() in PLACEHOLDERS
        or plain in PLACEHOLDERS
        or any(word in plain for word in PLACEHOLDER_WORDS)
        or bool(_REPEATED.match(plain))
        or len(set(text)) < MIN_DISTINCT
    )


def _tls_problems(settings: Settings) -> list[Problem]:
    problems = []
    if settings.tls_certfile is None and not settings.behind_tls_proxy:
        problems.append(
            Problem(
                "tls_certfile",
                "production needs TLS in front of the server, and none is configured",
                "set tls_certfile and tls_keyfile (TOUCHPOINT_TLS_CERTFILE, TOUCHPOINT_TLS_KEYFILE) to serve HTTPS, "
                "or behind_tls_proxy = true (TOUCHPOINT_BEHIND_TLS_PROXY=true) when a reverse proxy terminates TLS",
            )
        )
    for name in ("tls_certfile", "tls_keyfile"):
        path: Path | None = getattr(settings, name)
        if path is not None and not (path.expanduser().is_file() and os.access(path.expanduser(), os.R_OK)):
            problems.append(Problem(name, f"{str(path)!r} is not a readable file", f"point {name} at the PEM file"))
    if settings.public_url and settings.public_url.startswith("http://"):
        problems.append(
            Problem(
                "public_url",
                f"{settings.public_url!r} is plain HTTP: browsers would send events unencrypted",
                "use the https:// address clients reach the server at",
            )
        )
    return problems


def _secret_problems(settings: Settings) -> list[Problem]:
    problems = []
    for name in ("automations_signing_key", "smtp_password"):
        value = getattr(settings, name)
        if value is not None and weak_secret(value):
            problems.append(
                Problem(
                    name,
                    "is a placeholder or too simple to be a secret",
                    f"set {name} to a long random value (e.g. `python3 -c 'import secrets; "
                    "print(secrets.token_urlsafe(32))'`), or unset it"
                    + (" (a random key is then kept in <data_dir>/automations.key)" if name.startswith("auto") else ""),
                )
            )
    if settings.smtp_url:
        parts = urlsplit(settings.smtp_url)
        user = settings.smtp_username or parts.username
        password = settings.smtp_password or parts.password
        if user and not password:
            problems.append(
                Problem(
                    "smtp_password",
                    f"the SMTP user {user!r} has no password",
                    "set smtp_password (TOUCHPOINT_SMTP_PASSWORD), or remove the user name",
                )
            )
        elif parts.password and weak_secret(parts.password):
            problems.append(
                Problem("smtp_url", "the password in it is a placeholder", "set the real one in smtp_password")
            )
    demo_keys = settings.data_dir.expanduser() / DEMO_KEYS
    if demo_keys.exists():
        problems.append(
            Problem(
                "data_dir",
                f"the demo's API keys are saved in plain text in {demo_keys}",
                "revoke them (`touchpoint keys list`; `touchpoint keys revoke demo-admin`, `demo-read`; "
                "`touchpoint sources revoke` the demo's source) and delete the file; "
                "production data is not a place for `touchpoint demo`",
            )
        )
    return problems


def production_problems(settings: Settings) -> list[Problem]:
    """Every reason the server must not start in production (none outside production)."""
    if settings.env != "production":
        return []
    return _tls_problems(settings) + _secret_problems(settings)


def check_production(settings: Settings) -> None:
    """Raise a :class:`~touchpoint.errors.ConfigError` naming every problem of :func:`production_problems`."""
    problems = production_problems(settings)
    if problems:
        listed = "; ".join(f"{p.setting}: {p.message}" for p in problems)
        raise ConfigError(
            f"touchpoint serve refuses to start with env = production: {listed}",
            hint=" | ".join(f"{p.setting}: {p.fix}" for p in problems) + " (docs/security.md)",
        )


def server_options(settings: Settings) -> dict[str, Any]:
    """uvicorn's TLS and proxy options from the settings."""
    options: dict[str, Any] = {"proxy_headers": True, "forwarded_allow_ips": settings.forwarded_allow_ips}
    if settings.tls_certfile is not None and settings.tls_keyfile is not None:
        options["ssl_certfile"] = str(settings.tls_certfile.expanduser())
        options["ssl_keyfile"] = str(settings.tls_keyfile.expanduser())
    return options


class StrictTransport:
    """ASGI middleware: ``Strict-Transport-Security`` on every answer (installed in production only)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_hsts(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), (b"strict-transport-security", HSTS.encode())]
            await send(message)

        await self.app(scope, receive, send_with_hsts)


def install(app: Any, settings: Settings) -> None:
    if settings.env == "production":
        app.add_middleware(StrictTransport)
