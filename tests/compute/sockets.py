"""Which addresses a set of processes listens on."""

from __future__ import annotations

import ipaddress

import psutil


def is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip.split("%")[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def bound_sockets(processes: list[psutil.Process]) -> list[tuple[str, str, int]]:
    """(process, ip, port) for every listening TCP and bound UDP socket of ``processes``."""
    found = []
    for process in processes:
        try:
            name = process.name()
            for conn in process.net_connections(kind="inet"):
                listening = conn.status == psutil.CONN_LISTEN or conn.status == psutil.CONN_NONE
                if listening and conn.laddr:
                    found.append((f"{name}[{process.pid}]", conn.laddr.ip, conn.laddr.port))
        except psutil.NoSuchProcess:
            continue
    return found
