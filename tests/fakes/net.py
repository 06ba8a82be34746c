"""Local ports for tests: one that is free to listen on, one where nothing listens."""

from __future__ import annotations

import contextlib
import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (another process could take it before you do)."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def closed_port_url(host: str = "127.0.0.1") -> str:
    """An http URL whose connection is refused: the request is never sent."""
    return f"http://{host}:{free_port(host)}"
