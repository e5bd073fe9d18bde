"""Company webhook URLs that cannot be turned against the engine's own network (SSRF).

The engine POSTs every event to a URL a tenant chose. Without a check, a tenant could make it call the
cloud metadata service, the database's admin port or anything else only the engine's network reaches. So
a URL is refused when its host is a loopback, link-local, private, shared, reserved or multicast address,
a well-known internal name (`localhost`, `metadata.google.internal`, …), or a name that resolves to any
such address. An operator whose receivers really live on a private network switches the check off with
`CALLBACKS_WEBHOOK_ALLOW_PRIVATE=true`.

The check runs when the URL is set. DNS can change afterwards (rebinding); that is a known limit of a
set-time check, see docs/api.md.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

RESOLVE_TIMEOUT_SECONDS = 3.0
INTERNAL_NAMES = frozenset(
    {
        "localhost",
        "localhost.localdomain",
        "ip6-localhost",
        "ip6-loopback",
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
        "kubernetes.default",
        "kubernetes.default.svc",
    }
)
INTERNAL_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain", ".svc", ".cluster.local")

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class WebhookUrlRefused(ValueError):
    """The URL is not acceptable as a webhook target; the message says why."""


def forbidden_address(address: IpAddress) -> bool:
    """Loopback, link-local (incl. 169.254.169.254), private, shared (100.64/10), reserved, multicast,
    unspecified: anything that is not a global unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return not address.is_global or address.is_multicast


def literal_address(host: str) -> IpAddress | None:
    """The address a host *is*, if it is written as one, including the shorthand forms the C resolver
    also accepts (`127.1`, `2130706433`, `0x7f.0.0.1`)."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if host and all(ch in "0123456789abcdefx." for ch in host) and any(ch.isdigit() for ch in host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def parse(url: str) -> tuple[str, int]:
    """(host, port) of an http(s) URL, or WebhookUrlRefused."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise WebhookUrlRefused(f"is not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise WebhookUrlRefused("must be an http:// or https:// URL")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise WebhookUrlRefused("needs a host name")
    if parts.username or parts.password:
        raise WebhookUrlRefused("must not carry credentials (use the signature to authenticate)")
    return host, port or (443 if parts.scheme == "https" else 80)


async def check_webhook_url(url: str, *, allow_private: bool) -> str:
    """The URL as given when it may receive webhooks; WebhookUrlRefused otherwise."""
    host, port = parse(url)
    if allow_private:
        return url
    if host in INTERNAL_NAMES or host.endswith(INTERNAL_SUFFIXES):
        raise WebhookUrlRefused(f"points at the internal host {host!r}")
    literal = literal_address(host)
    if literal is not None:
        if forbidden_address(literal):
            raise WebhookUrlRefused(f"points at the non-public address {literal}")
        return url
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT_SECONDS):
            infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError):
        raise WebhookUrlRefused(f"the host {host!r} does not resolve") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if forbidden_address(address):
            raise WebhookUrlRefused(f"the host {host!r} resolves to the non-public address {address}")
    return url
