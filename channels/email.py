"""Email over SMTP (aiosmtplib): multipart text + HTML with a Message-ID that is stable per (event,
recipient, channel), so a mail client or archive can drop the duplicate a lost acknowledgement causes."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate
from urllib.parse import unquote, urlsplit

import aiosmtplib

from channels.errors import DeliveryError
from channels.templates import render_email
from models.notifications import PlannedDelivery

SMTP_STEPS = 4


@dataclass(frozen=True)
class SmtpConfig:
    """From an `SMTP_URL`: smtp://user:pass@host:port (STARTTLS when offered), smtps:// (implicit TLS)."""

    hostname: str
    port: int
    username: str | None = None
    password: str | None = None
    use_tls: bool = False
    # Per step (connect, each command); the whole conversation is held to `deadline`.
    timeout: float = 30.0

    @property
    def deadline(self) -> float:
        """The most one send may take: aiosmtplib applies `timeout` to each step of the conversation
        (connect, EHLO, STARTTLS, AUTH, MAIL, RCPT, DATA, …), so their sum has no useful bound; the
        whole send gets SMTP_STEPS of them and is cut off there."""
        return self.timeout * SMTP_STEPS

    @classmethod
    def from_url(cls, url: str, *, timeout: float = 30.0) -> SmtpConfig:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps"):
            raise ValueError(f"SMTP_URL must start with smtp:// or smtps://, not {parts.scheme!r}")
        use_tls = parts.scheme == "smtps"
        return cls(
            hostname=parts.hostname or "127.0.0.1",
            port=parts.port or (465 if use_tls else 25),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            use_tls=use_tls,
            timeout=timeout,
        )


def message_id_header(planned: PlannedDelivery, domain: str) -> str:
    return f"<{planned.message_id}@{domain}>"


def build_email(
    planned: PlannedDelivery, *, sender: str, domain: str, summary: str | None = None
) -> EmailMessage:
    """`summary`: the tenant's override, already rendered in the sandbox (channels/templates.py)."""
    rendered = render_email(planned, summary)
    message = EmailMessage()
    message["From"] = sender
    message["To"] = planned.address
    message["Subject"] = rendered.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = message_id_header(planned, domain)
    message["X-Event-Id"] = str(planned.message_id)
    message["X-Event-Type"] = planned.event.type
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(rendered.text)
    message.add_alternative(rendered.html, subtype="html")
    return message


async def send_email(message: EmailMessage, config: SmtpConfig) -> None:
    """Hand the mail to the SMTP server. A permanent refusal (5xx) is not retryable; a temporary one
    (4xx), a timeout or a refused connection is. The whole send ends at `config.deadline`."""
    try:
        async with asyncio.timeout(config.deadline):
            await aiosmtplib.send(
                message,
                hostname=config.hostname,
                port=config.port,
                username=config.username,
                password=config.password,
                use_tls=config.use_tls,
                timeout=config.timeout,
            )
    except TimeoutError:
        raise DeliveryError(f"SMTP: not done within {config.deadline:g} s", retryable=True) from None
    except aiosmtplib.SMTPRecipientsRefused as refused:
        codes = [error.code for error in refused.recipients]
        raise DeliveryError(
            f"recipient refused ({', '.join(map(str, codes))})",
            retryable=all(c < 500 for c in codes),
            detail=str(refused),
        ) from None
    except aiosmtplib.SMTPResponseException as error:
        raise DeliveryError(f"SMTP {error.code}", retryable=error.code < 500, detail=error.message) from None
    except (aiosmtplib.SMTPException, OSError) as error:
        raise DeliveryError(f"SMTP unavailable: {error!r}", retryable=True) from None
