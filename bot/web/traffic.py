"""Which questions are internal traffic: tests and monitoring probes, not visitors.

A request is internal when its client address (the socket's, or the one the
``TRUST_PROXY`` proxies forward) is in one of the ``INTERNAL_NETWORKS`` (CIDR
ranges such as ``10.0.0.0/8`` or ``2001:db8::/32``), or when it carries the
header named by ``INTERNAL_HEADER`` (any value; empty setting: no header counts).
Its questions are answered as any other and logged marked ``internal``, and
the query log's reads leave them out of every chart, list and export
(:mod:`bot.querylog.stats`).

:func:`init_app` checks the settings at start-up (a bad range is a
:class:`bot.config.ConfigError` naming it); :func:`is_internal` judges the
current request.
"""

from __future__ import annotations

import ipaddress

from flask import Flask, current_app, request

from bot.config import ConfigError

__all__ = ["init_app", "is_internal"]

_EXTENSION = "xiaocheng_internal_networks"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def init_app(app: Flask) -> None:
    """Read ``INTERNAL_NETWORKS`` once; raise ConfigError for a range that is not one."""
    raw = app.config.get("INTERNAL_NETWORKS") or []
    if isinstance(raw, str):
        raw = [part.strip() for part in raw.split(",") if part.strip()]
    networks: list[Network] = []
    for item in raw:
        try:
            networks.append(ipaddress.ip_network(str(item).strip(), strict=False))
        except ValueError:
            raise ConfigError(
                f"INTERNAL_NETWORKS: {item!r} is not an address range "
                "(write it like 10.0.0.0/8, 192.168.1.20 or 2001:db8::/32)"
            ) from None
    header = app.config.get("INTERNAL_HEADER") or ""
    if not isinstance(header, str):
        raise ConfigError(f"INTERNAL_HEADER should be a header name, not {header!r}")
    app.extensions[_EXTENSION] = tuple(networks)


def is_internal() -> bool:
    """Whether the current request is internal traffic (see the module's docstring)."""
    header = current_app.config.get("INTERNAL_HEADER") or ""
    if header and header in request.headers:
        return True
    networks: tuple[Network, ...] = current_app.extensions.get(_EXTENSION, ())
    if not networks or not request.remote_addr:
        return False
    try:
        address = ipaddress.ip_address(request.remote_addr)
    except ValueError:
        return False
    return any(address in network for network in networks)
