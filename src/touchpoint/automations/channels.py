"""The channels: email over SMTP (standard library ``smtplib``) and JSON webhooks over HTTP(S).

Each send answers an :class:`Outcome`: ``sent``, ``retry`` (transient: SMTP 4xx, HTTP 5xx, 408, 429,
timeouts, refused connections; ``retry_after`` when the receiver said how long to wait) or ``dead``
(permanent: SMTP 5xx, HTTP 4xx, a redirect). The sender turns it into the outbox row's next state.

A webhook body is signed: ``X-Touchpoint-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<body>">`` (the scheme Stripe and Svix use, so receivers can reject replays by ``t``), and carries
``Idempotency-Key: <outbox id>``, the same on every retry.

>>> sign(b"k", b'{"a":1}', 1700000000)
't=1700000000,v1=1b6ad1bc9bf48c52ce01939866d5877c6cc4e87ddad27e16673cb8c4964394a3'
>>> retry_after_seconds("120"), retry_after_seconds("soon")
(120.0, None)
"""

from __future__ import annotations

import contextlib
import email.generator
import email.policy
import functools
import hashlib
import hmac
import io
import json
import smtplib
import ssl
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import UTC, datetime
from email.charset import QP, Charset
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import format_datetime, formataddr, getaddresses, parseaddr, parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit

from touchpoint.errors import ConfigError

if TYPE_CHECKING:
    from touchpoint.config import Settings

USER_AGENT = "touchpoint-automations/1"
SIGNATURE_HEADER = "X-Touchpoint-Signature"
TIMEOUT = 10.0
MAX_RETRY_AFTER = 86400.0

#: The channels an automation step sends through (the outbox's ``channel``), with what each sends where;
#: the data-flow map (``touchpoint map``) draws one destination per channel, and a test fails when one is missing.
CHANNELS: dict[str, str] = {
    "email": "an email over SMTP to the profile's address: the rendered subject and text (traits in templates)",
    "webhook": "a signed JSON POST to the step's URL: the rendered body (profile ids and traits in templates)",
}


@dataclass(frozen=True)
class Outcome:
    status: str  # sent | retry | dead
    error: str | None = None
    retry_after: float | None = None


# -- email --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SMTPConfig:
    host: str
    port: int
    tls: str  # smtps | starttls (when offered) | require (STARTTLS or fail)
    username: str | None
    password: str | None
    sender: str

    @classmethod
    def from_settings(cls, settings: Settings) -> SMTPConfig:
        if not settings.smtp_url:
            raise ConfigError(
                "email steps need an SMTP server, and smtp_url is not set",
                hint="set TOUCHPOINT_SMTP_URL (e.g. smtp://127.0.0.1:2525) or smtp_url in touchpoint.toml",
            )
        if not settings.smtp_sender or "@" not in parseaddr(settings.smtp_sender)[1]:
            raise ConfigError(
                f"smtp_sender {settings.smtp_sender!r} is not an email address",
                hint="set TOUCHPOINT_SMTP_SENDER, e.g. 'Shop <news@shop.example>'",
            )
        parts = urlsplit(settings.smtp_url)
        query = parse_qs(parts.query)
        smtps = parts.scheme == "smtps"
        tls = "smtps" if smtps else ("require" if query.get("starttls") == ["require"] else "starttls")
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or (465 if smtps else 25),
            tls=tls,
            username=settings.smtp_username or (unquote(parts.username) if parts.username else None),
            password=settings.smtp_password or (unquote(parts.password) if parts.password else None),
            sender=settings.smtp_sender,
        )

    def domain(self) -> str:
        return parseaddr(self.sender)[1].rsplit("@", 1)[-1] or "touchpoint.local"


def build_email(
    config: SMTPConfig, *, to: str, subject: str, text: str, html: str | None, outbox_id: str, unsubscribe_url: str
) -> Message:
    """The message with its RFC 8058 one-click unsubscribe headers and a Message-ID from the outbox key.

    Built with the standard library's ``compat32`` classes (``MIMEText``): the same MIME as
    ``EmailMessage`` with the default policy, at a tenth of its cost (its header objects parse every address).
    Headers are not folded below SMTP's 998-character line limit: a folded ``List-Unsubscribe`` becomes RFC 2047
    encoded-words, which no mail client reads as a URL; non-ASCII names and subjects are RFC 2047 encoded.
    """
    body = MIMEText(text, "plain", _charset(text), policy=_POLICY)
    msg: Message
    if html is not None:
        msg = MIMEMultipart("alternative", policy=_POLICY)
        msg.attach(body)
        msg.attach(MIMEText(html, "html", _charset(html), policy=_POLICY))
    else:
        msg = body
    msg["From"] = _address(config.sender)
    msg["To"] = _address(to)
    msg["Subject"] = _header(subject.replace("\r", " ").replace("\n", " "))
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Message-ID"] = f"<{outbox_id}@{config.domain()}>"
    msg["List-Unsubscribe"] = f"<{unsubscribe_url}>"
    msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return msg


_POLICY = email.policy.compat32.clone(max_line_length=998)
_ASCII = Charset("utf-8")
_ASCII.body_encoding = None  # type: ignore[assignment]  # 7bit: ASCII text as it is
_UTF8 = Charset("utf-8")
_UTF8.body_encoding = QP  # other text quoted-printable (readable, and no 8BITMIME needed), not base64


def _charset(text: str) -> Any:  # a Charset: MIMEText takes one, though typeshed says str
    short = all(len(line) < 990 for line in text.splitlines())  # 7bit lines stop at 998 octets
    return _ASCII if short and text.isascii() else _UTF8


def _header(value: str) -> str:
    """``value`` as it is when ASCII, else an RFC 2047 encoded word (never folded)."""
    if value.isascii():
        return value
    return Header(value, "utf-8", maxlinelen=998).encode()


def _address(value: str) -> str:
    """An address header: a non-ASCII display name encoded, the address itself as it is."""
    if value.isascii():
        return value.replace("\r", " ").replace("\n", " ")
    name, addr = parseaddr(value)
    return formataddr((name, addr), charset="utf-8")


@dataclass(frozen=True)
class Envelope:
    """A message flattened for SMTP: the envelope's sender and recipients, and the bytes of the message."""

    sender: str
    recipients: tuple[str, ...]
    data: bytes


def envelope(msg: Message) -> Envelope | Message:
    """``msg`` flattened as ``smtplib.SMTP.send_message`` flattens it (envelope addresses from ``From`` and
    ``To``, CRLF line ends, the same generator and policy), once, by the thread that built it: sending the
    bytes with ``sendmail`` costs the sending thread a third of what ``send_message`` does. A message with a
    non-ASCII address, a ``Bcc`` or ``Resent-`` headers is returned as it is, for ``send_message`` (which
    negotiates SMTPUTF8 and drops ``Bcc``)."""
    if "Bcc" in msg or "Resent-Date" in msg:
        return msg
    sender = getaddresses([msg["Sender"] if "Sender" in msg else msg["From"]])[0][1]
    recipients = tuple(a[1] for a in getaddresses([f for f in (msg["To"], msg["Cc"]) if f is not None]))
    if not (sender + "".join(recipients)).isascii():
        return msg
    with io.BytesIO() as out:
        email.generator.BytesGenerator(out).flatten(msg, linesep="\r\n")
        return Envelope(sender, recipients, out.getvalue())


def _smtp_outcome(code: int, text: Any) -> Outcome:
    detail = text.decode(errors="replace") if isinstance(text, bytes) else str(text)
    if 400 <= code < 500:
        return Outcome("retry", f"SMTP {code} {detail}"[:500])
    return Outcome("dead", f"SMTP {code} {detail}"[:500])


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS client context for SMTP, built once per process: loading the system's certificates costs
    tens of milliseconds of CPU, which every connection paid (each delivery run opens its connections), and
    a plain ``smtp://`` connection to a server without STARTTLS needs none. A context is safe to share
    between threads."""
    return ssl.create_default_context()


#: Seconds an SMTP connection a delivery run finished with stays open for the next run (which starts within
#: 0.05 s of a decision during a burst): opening one costs a TCP handshake, EHLO, STARTTLS with its TLS
#: handshake, EHLO again and a login, before the first message. Servers drop idle clients after minutes
#: (Postfix's ``smtpd_timeout``: 300 s); one that dropped it earlier is reconnected at the next message.
KEEP_IDLE = 30.0
_idle: dict[SMTPConfig, list[tuple[float, SMTPSender]]] = {}
_idle_lock = threading.Lock()


def borrow(config: SMTPConfig) -> SMTPSender:
    """A connection to ``config``'s server that an earlier run left open, or a new sender (connecting at its
    first message). Connections idle longer than :data:`KEEP_IDLE` are closed on the way."""
    now = time.monotonic()
    stale: list[SMTPSender] = []
    found: SMTPSender | None = None
    with _idle_lock:
        for key in list(_idle):
            kept = [(t, x) for t, x in _idle[key] if now - t < KEEP_IDLE]
            stale += [x for t, x in _idle[key] if now - t >= KEEP_IDLE]
            if key == config and kept:
                found = kept.pop()[1]
            if kept:
                _idle[key] = kept
            else:
                del _idle[key]
    for sender in stale:
        sender.drop()
    return found or SMTPSender(config)


def give_back(sender: SMTPSender) -> None:
    """Keep ``sender``'s open connection for the next run (:func:`borrow`)."""
    if sender.conn is not None:
        with _idle_lock:
            _idle.setdefault(sender.config, []).append((time.monotonic(), sender))


def close_idle() -> int:
    """Close every connection kept for a next run (QUIT, waiting at most 2 s for each reply); returns how many.
    The server calls it when it stops."""
    with _idle_lock:
        senders = [x for kept in _idle.values() for _, x in kept]
        _idle.clear()
    for sender in senders:
        if sender.conn is not None and sender.conn.sock is not None:
            with contextlib.suppress(OSError):
                sender.conn.sock.settimeout(2.0)
        sender.close()
    return len(senders)


class SMTPSender:
    """One SMTP connection for a batch of messages; reconnects once when the server hung up (also with a 421,
    the reply of a server closing the channel, e.g. after its idle timeout)."""

    def __init__(self, config: SMTPConfig, timeout: float = TIMEOUT) -> None:
        self.config = config
        self.timeout = timeout
        self.conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        c = self.config
        conn: smtplib.SMTP
        if c.tls == "smtps":
            conn = smtplib.SMTP_SSL(c.host, c.port, timeout=self.timeout, context=tls_context())
        else:
            conn = smtplib.SMTP(c.host, c.port, timeout=self.timeout)
            conn.ehlo()
            if conn.has_extn("starttls"):
                conn.starttls(context=tls_context())
                conn.ehlo()
            elif c.tls == "require":
                conn.close()
                raise smtplib.SMTPNotSupportedError("the server does not offer STARTTLS (smtp_url asks for it)")
        if c.username:
            conn.login(c.username, c.password or "")
        return conn

    def send(self, msg: Message | Envelope) -> Outcome:
        for attempt in (1, 2):
            try:
                if self.conn is None:
                    self.conn = self._connect()
                if isinstance(msg, Envelope):
                    refused = self.conn.sendmail(msg.sender, list(msg.recipients), msg.data)
                else:
                    refused = self.conn.send_message(msg)
                if refused:
                    code, text = next(iter(refused.values()))
                    return _smtp_outcome(code, text)
                return Outcome("sent")
            except smtplib.SMTPServerDisconnected as exc:
                self.close()
                if attempt == 2:
                    return Outcome("retry", f"SMTP server disconnected: {exc}")
            except smtplib.SMTPRecipientsRefused as exc:
                code, text = next(iter(exc.recipients.values()))
                return _smtp_outcome(code, text)
            except smtplib.SMTPAuthenticationError as exc:
                self.close()
                return Outcome("retry", f"SMTP login refused ({exc.smtp_code}): check smtp_username/smtp_password")
            except smtplib.SMTPResponseException as exc:
                if exc.smtp_code == 421 and attempt == 1:  # closing the channel: a new connection, once
                    self.drop()
                    continue
                return _smtp_outcome(exc.smtp_code, exc.smtp_error)
            except (smtplib.SMTPException, OSError) as exc:  # refused, timed out, TLS failed
                self.close()
                return Outcome("retry", f"cannot reach the SMTP server {self.config.host}:{self.config.port}: {exc}")
        return Outcome("retry", "SMTP server disconnected")  # pragma: no cover - the loop returns

    def close(self) -> None:
        if self.conn is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self.conn.quit()
            self.conn = None

    def drop(self) -> None:
        """Close the connection without QUIT (a reply the server may never send would wait :data:`TIMEOUT`)."""
        if self.conn is not None:
            with contextlib.suppress(OSError):
                self.conn.close()
            self.conn = None


# -- webhooks -----------------------------------------------------------------------------------------
def sign(key: bytes, body: bytes, at: int) -> str:
    digest = hmac.new(key, f"{at}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={at},v1={digest}"


def retry_after_seconds(value: str | None) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) as seconds from now, capped at a day."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return min(float(text), MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return min(max(0.0, (when - datetime.now(UTC)).total_seconds()), MAX_RETRY_AFTER)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a redirect is answered as the 3xx it is: a webhook URL must be the final one


_opener = urllib.request.build_opener(_NoRedirect)


def post_webhook(
    url: str, body: dict[str, Any], *, key: bytes, idempotency_key: str, timeout: float = TIMEOUT
) -> Outcome:
    data = json.dumps(body, separators=(",", ":"), sort_keys=True, default=str).encode()
    request = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": idempotency_key,
            SIGNATURE_HEADER: sign(key, data, int(time.time())),
        },
    )
    try:
        with _opener.open(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        if status == 429 or status == 408:
            wait = retry_after_seconds(exc.headers.get("Retry-After"))
            return Outcome("retry", f"HTTP {status} from {url}", wait)
        if status >= 500:
            return Outcome("retry", f"HTTP {status} from {url}", retry_after_seconds(exc.headers.get("Retry-After")))
        return Outcome("dead", f"HTTP {status} from {url}: the receiver refused the request")
    except (urllib.error.URLError, OSError) as exc:  # refused, DNS, TLS, timed out
        return Outcome("retry", f"cannot reach {url}: {getattr(exc, 'reason', exc)}")
    if 200 <= status < 300:
        return Outcome("sent")
    return Outcome("dead", f"HTTP {status} from {url}")
