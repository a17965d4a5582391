"""Mail over SMTP (aiosmtplib): `SMTP_URL` is `smtp://[user:password@]host[:port]`, or
`smtps://` for TLS from the first byte; plain `smtp://` upgrades with STARTTLS when the
server offers it."""

from __future__ import annotations

from email.message import EmailMessage
from urllib.parse import unquote, urlsplit

import aiosmtplib

from domain.notifications import Message


class SmtpMailer:
    def __init__(self, url: str, sender: str, timeout_seconds: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("SMTP_URL must look like smtp://host:port or smtps://host:port")
        self._tls = parts.scheme == "smtps"
        self._host = parts.hostname
        self._port = parts.port or (465 if self._tls else 25)
        self._username = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self._sender = sender
        self._timeout = timeout_seconds

    async def send(self, message: Message) -> None:
        if message.to is None:
            raise ValueError("a mail needs a recipient")
        mail = EmailMessage()
        mail["From"] = self._sender
        mail["To"] = message.to
        mail["Subject"] = message.subject
        mail.set_content(message.body)
        await aiosmtplib.send(
            mail,
            hostname=self._host,
            port=self._port,
            username=self._username,
            password=self._password,
            use_tls=self._tls,
            # None: STARTTLS when offered; a local relay without TLS still works.
            start_tls=False if self._tls else None,
            timeout=self._timeout,
        )
