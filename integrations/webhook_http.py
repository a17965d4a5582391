"""POSTs webhook deliveries with httpx, to public addresses only.

The SSRF guard sits where the socket is opened: a network backend under httpx resolves
the host, refuses the lot if any address is private, loopback, link-local, multicast,
reserved or an IPv6 form embedding one (domain.webhook_urls.is_public_address), and
connects to the very addresses it checked. A DNS answer that changes between the check
and the connection (rebinding) therefore cannot reach an inner address, and the URL
keeps its host name, so TLS verifies the certificate for it and the pool never shares
a connection between two host names. Redirects are not followed, proxies from the
environment are not used (either would bypass the check), and the answer's body is
never read: a receiver cannot make us hold more than its status line and headers.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
import typing
from collections.abc import Iterable, Mapping

import httpcore
import httpx

from domain.webhook_delivery import AttemptResult
from domain.webhook_urls import IpAddress, check_url, is_public_address

_DNS_TIMEOUT_SECONDS = 5.0


class AddressRefused(httpcore.ConnectError):
    """The host is, or resolves to, an address webhooks may not reach."""


async def resolve_checked(host: str, port: int, *, allow_private: bool) -> list[IpAddress]:
    """The addresses of `host`, every one of them public (unless `allow_private`);
    AddressRefused otherwise, or when it does not resolve."""
    try:
        literal: IpAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses = [literal]
    else:
        try:
            async with asyncio.timeout(_DNS_TIMEOUT_SECONDS):
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, port, type=socket.SOCK_STREAM
                )
        except (OSError, TimeoutError, UnicodeError) as error:
            raise AddressRefused(f"{host} does not resolve ({type(error).__name__})") from None
        addresses = list(
            dict.fromkeys(ipaddress.ip_address(str(info[4][0]).split("%")[0]) for info in infos)
        )
        if not addresses:
            raise AddressRefused(f"{host} does not resolve")
    if not allow_private:
        refused = [a for a in addresses if not is_public_address(a)]
        if refused:
            raise AddressRefused(f"{host} resolves to {refused[0]}, not a public address")
    return addresses


class _CheckedBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, allow_private: bool) -> None:
        self._inner = httpcore.AnyIOBackend()
        self._allow_private = allow_private

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await resolve_checked(host, port, allow_private=self._allow_private)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(address), port, timeout, local_address, socket_options
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressRefused("webhooks do not use unix sockets")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class HttpxWebhookTransport:
    """The sender's WebhookTransport: one pooled client, each POST bounded by
    `timeout_seconds` from DNS to the response's headers."""

    def __init__(
        self, *, timeout_seconds: float, allow_private: bool, max_connections: int
    ) -> None:
        self._timeout = timeout_seconds
        self._allow_private = allow_private
        transport = httpx.AsyncHTTPTransport(
            trust_env=False,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )
        # httpx (pinned, 0.28) takes no network backend; its pool, rebuilt alike, does.
        transport._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=5.0,
            network_backend=_CheckedBackend(allow_private),
        )
        self._client = httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(timeout_seconds),
            follow_redirects=False,
            trust_env=False,
        )

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        started = time.monotonic()

        def result(status: int | None, error: str | None) -> AttemptResult:
            return AttemptResult(status, error, int((time.monotonic() - started) * 1000))

        _target, problem = check_url(url, allow_private=self._allow_private)
        if problem is not None:
            return result(None, problem)
        try:
            async with (
                asyncio.timeout(self._timeout),
                self._client.stream("POST", url, content=body, headers=dict(headers)) as answer,
            ):
                status = answer.status_code  # the body stays unread
        except TimeoutError:
            return result(None, f"timed out after {self._timeout:g} s")
        except httpx.TimeoutException:
            return result(None, f"timed out after {self._timeout:g} s")
        except httpx.HTTPError as error:
            return result(None, f"{type(error).__name__}: {str(error)[:200]}")
        if 200 <= status < 300:
            return result(status, None)
        if 300 <= status < 400:
            return result(status, f"HTTP {status}: redirects are not followed")
        return result(status, f"HTTP {status}")

    async def aclose(self) -> None:
        await self._client.aclose()
