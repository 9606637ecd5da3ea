"""``touchpoint serve`` in production: refuses default secrets and plain HTTP, and serves HTTPS with HSTS and
Secure cookies when it starts (issue 21, part 7; docs/security.md)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import free_port

from touchpoint.api.security import check_production, production_problems, weak_secret
from touchpoint.config import Settings
from touchpoint.errors import ConfigError

STRONG = "q8Zr-2LpX_v0Tn4wK9sY1mB"


def _settings(tmp_path: Path, **changes: Any) -> Settings:
    return Settings(**{"env": "production", "data_dir": tmp_path / "data", "behind_tls_proxy": True, **changes})


@pytest.mark.parametrize(
    ("changes", "setting", "words"),
    [
        ({"behind_tls_proxy": False}, "tls_certfile", "behind_tls_proxy = true"),
        ({"tls_certfile": "/nonexistent/cert.pem", "tls_keyfile": "/nonexistent/key.pem"}, "tls_keyfile", "readable"),
        ({"public_url": "http://collect.example.com"}, "public_url", "https://"),
        ({"automations_signing_key": "change-me-change-me"}, "automations_signing_key", "long random value"),
        ({"automations_signing_key": "a" * 32}, "automations_signing_key", "long random value"),
        ({"smtp_url": "smtp://mailer@mail.example:587"}, "smtp_password", "TOUCHPOINT_SMTP_PASSWORD"),
        ({"smtp_url": "smtp://mail.example:587", "smtp_password": "password"}, "smtp_password", "long random"),
    ],
)
def test_each_bad_production_setting_is_refused_by_name(
    tmp_path: Path, changes: dict[str, Any], setting: str, words: str
) -> None:
    settings = _settings(tmp_path, **changes)
    assert [p.setting for p in production_problems(settings)][-1:] == [setting]
    with pytest.raises(ConfigError) as refused:
        check_production(settings)
    assert setting in refused.value.message and words in f"{refused.value.message} {refused.value.hint}"
    assert "docs/security.md" in str(refused.value.hint)


def test_the_demo_keys_on_disk_are_default_secrets(tmp_path: Path) -> None:
    keys_file = tmp_path / "data" / "demo" / "keys.json"
    keys_file.parent.mkdir(parents=True)
    keys_file.write_text(json.dumps({"admin_key": "tpk_a_x"}))
    with pytest.raises(ConfigError) as refused:
        check_production(_settings(tmp_path))
    assert "data_dir" in refused.value.message and "keys revoke demo-admin" in str(refused.value.hint)
    keys_file.unlink()
    check_production(_settings(tmp_path))


def test_every_problem_is_named_at_once_and_none_outside_production(tmp_path: Path) -> None:
    bad = {"behind_tls_proxy": False, "public_url": "http://x.example", "automations_signing_key": "secretsecret1234"}
    assert [p.setting for p in production_problems(_settings(tmp_path, **bad))] == [
        "tls_certfile",
        "public_url",
        "automations_signing_key",
    ]
    assert production_problems(_settings(tmp_path, **bad, env="development")) == []
    good = {"automations_signing_key": STRONG, "smtp_url": "smtp://mailer@mail.example:587", "smtp_password": STRONG}
    check_production(_settings(tmp_path, **good))
    assert not weak_secret(STRONG) and weak_secret("Password")


def test_tls_files_go_together(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="tls_certfile and tls_keyfile go together"):
        Settings(data_dir=tmp_path, tls_certfile=tmp_path / "cert.pem")


# -- the real command ------------------------------------------------------------------------------------
def _serve(data: Path, port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TOUCHPOINT_")}
    return subprocess.Popen(
        [sys.executable, "-m", "touchpoint.cli.main", "serve", "--no-jobs", "--port", str(port), "--data", str(data)],
        env={**clean, "TOUCHPOINT_ENV": "production", **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_serve_refuses_to_start_in_production_without_tls(tmp_path: Path) -> None:
    port = free_port()
    process = _serve(tmp_path / "data", port, {"TOUCHPOINT_AUTOMATIONS_SIGNING_KEY": "changeme-changeme"})
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1, err.decode()
    text = " ".join(err.decode().split())
    assert "refuses to start with env = production" in text
    assert "tls_certfile" in text and "behind_tls_proxy" in text and "automations_signing_key" in text
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)


def _self_signed(folder: Path) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[str]:
    cert, key = _self_signed(tmp_path)
    port = free_port()
    env = {"TOUCHPOINT_TLS_CERTFILE": str(cert), "TOUCHPOINT_TLS_KEYFILE": str(key)}
    process = _serve(tmp_path / "data", port, env)
    url = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    try:
        while True:
            assert process.poll() is None, process.stderr.read().decode() if process.stderr else ""
            assert time.monotonic() < deadline, "the server did not start"
            try:
                if httpx.get(f"{url}/healthz", verify=False, timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        process.communicate(timeout=30)  # closes the pipes too


def test_serve_starts_with_tls_and_sends_hsts_and_secure_cookies(tls_server: str) -> None:
    with httpx.Client(base_url=tls_server, verify=False, timeout=10) as client:
        health = client.get("/healthz")
        assert health.headers["strict-transport-security"].startswith("max-age=31536000")
        page = client.get("/signin")
        assert page.status_code == 200
        cookie = page.headers["set-cookie"]
        assert "tp_signin=" in cookie and "Secure" in cookie and "HttpOnly" in cookie
    with pytest.raises(httpx.HTTPError):  # no plain HTTP on the same port
        httpx.get(tls_server.replace("https://", "http://") + "/healthz", timeout=5)
