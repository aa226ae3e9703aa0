"""FastAPI adapter code the JSON API and the web pages share: the service context of a request,
the bound on every integer a request carries, the client's address behind trusted proxies, and
the JSON body of a refusal.

Both `api` and `web` import this module; neither imports the other for it (the import-graph test,
tests/unit/test_import_graph.py, keeps it so).
"""

from __future__ import annotations

import ipaddress
from typing import Annotated

from annotated_types import Interval
from fastapi import Depends, Request
from starlette.requests import HTTPConnection

from mutualaid.services.context import ServiceContext


def error_body(
    code: str, message: str, field: str | None = None, **extra: object
) -> dict[str, object]:
    """The JSON body of every refusal, from the API and from the pages' fallbacks alike."""
    return {"error": {"code": code, "message": message, "field": field, **extra}}


async def service_context(request: Request) -> ServiceContext:
    # async (it does no I/O): FastAPI runs a sync dependency in the thread pool, one hop each.
    ctx: ServiceContext = request.app.state.ctx
    return ctx


Context = Annotated[ServiceContext, Depends(service_context)]


INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

#: An integer beyond a 64-bit column (ids, cursors, amounts, log indexes) used to reach the database
#: or the log code and fail there with a 500; `Int64` refuses it as a 422 naming the field.
Int64 = Annotated[int, Interval(ge=INT64_MIN, le=INT64_MAX)]


def parse_int64(text: str) -> int:
    """A form field as a 64-bit integer; ValueError (as `int` raises) when it is not one."""
    value = int(text)
    if not INT64_MIN <= value <= INT64_MAX:
        raise ValueError(f"{text[:30]} is beyond a 64-bit integer")
    return value


# --- the client's address, behind a reverse proxy or not (MUTUALAID_FORWARDED_ALLOW_IPS) ----------

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class TrustedProxies:
    """The peers whose X-Forwarded-For and X-Forwarded-Proto headers are believed.

    Built from a comma-separated list of addresses and networks ("127.0.0.1, 10.0.0.0/8"), as
    uvicorn's `forwarded_allow_ips`; "*" trusts every peer (only for a server that nothing but
    the proxy can reach, e.g. over a Unix socket). Empty, the default: no peer is trusted and the
    headers are ignored.
    """

    def __init__(self, spec: str = "") -> None:
        entries = [entry.strip() for entry in spec.split(",") if entry.strip()]
        self.everyone = "*" in entries
        self.networks: tuple[Network, ...] = tuple(
            ipaddress.ip_network(entry, strict=False) for entry in entries if entry != "*"
        )

    def __bool__(self) -> bool:
        return self.everyone or bool(self.networks)

    def trusts(self, host: str | None) -> bool:
        if self.everyone:
            return True
        if host is None or not self.networks:
            return False
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)

    def client(self, peer: str | None, forwarded_for: str | None) -> str:
        """The client: the peer itself, unless it is trusted and names who it forwards for.

        X-Forwarded-For is read from the right (each proxy appends the address it received the
        request from), skipping trusted proxies: the first address that is not one is the client,
        and whatever a client wrote further left is never believed. An entry that is not an IP
        address stops the walk at the proxy that passed it on.
        """
        nearest = peer or "unknown"
        if not forwarded_for or not self.trusts(peer):
            return nearest
        for entry in reversed([hop.strip() for hop in forwarded_for.split(",")]):
            try:
                address = str(ipaddress.ip_address(entry))
            except ValueError:
                return nearest
            if not self.trusts(address):
                return address
            nearest = address
        return nearest

    def scheme(self, peer: str | None, forwarded_proto: str | None, scheme: str) -> str:
        """The scheme the client used: X-Forwarded-Proto when a trusted proxy terminated TLS."""
        proto = (forwarded_proto or "").split(",")[-1].strip().lower()
        return proto if proto in ("http", "https") and self.trusts(peer) else scheme


NO_PROXIES = TrustedProxies()
TRUSTED_PROXIES_STATE = "trusted_proxies"


def trusted_proxies(connection: HTTPConnection) -> TrustedProxies:
    proxies: TrustedProxies = getattr(connection.app.state, TRUSTED_PROXIES_STATE, NO_PROXIES)
    return proxies


def client_address(connection: HTTPConnection) -> str:
    """The client's address for rate limits, the login throttle and audit rows: the socket peer,
    or the X-Forwarded-For client when the peer is a trusted proxy. The API and the pages both
    ask here."""
    peer = connection.client.host if connection.client else None
    # Several header lines are one list, in order (a proxy may add its own line after the
    # client's rather than append to it).
    forwarded_for = ", ".join(connection.headers.getlist("x-forwarded-for")) or None
    return trusted_proxies(connection).client(peer, forwarded_for)
