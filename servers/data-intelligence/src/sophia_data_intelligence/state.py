"""What the data tools share for the life of the server: settings and lazily made vendor clients.

Each client is made on first use and closed with the server; a missing key is reported by the client
when a tool needs it, so every tool stays listed.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

from sophia_shared.settings import Settings

T = TypeVar("T")


class DataState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._clients: dict[str, Any] = {}

    def client(self, name: str, make: Callable[[Settings], T]) -> T:
        """The one client called `name`, made by `make(settings)` the first time."""
        with self._lock:
            if name not in self._clients:
                self._clients[name] = make(self.settings)
            client: T = self._clients[name]
            return client

    async def close(self) -> None:
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            closer = getattr(client, "aclose", None)
            if closer is not None:
                await closer()
