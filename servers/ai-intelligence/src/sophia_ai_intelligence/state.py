"""What the AI tools share for the life of the server: settings and lazily made backends.

Nothing is opened before a tool needs it: the gateway SDK takes ~0.9 s to import, and the cache and
ledger files are only touched by the calls that use them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from sophia_shared.settings import Settings

if TYPE_CHECKING:
    from .cache import ResponseCache
    from .gateway.base import Gateway
    from .ledger import UsageLedger
    from .prices import PriceTable
    from .tracing import LlmTracing


class AIState:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._lock = threading.Lock()
        self._gateway: Gateway | None = None
        self._cache: ResponseCache | None = None
        self._ledger: UsageLedger | None = None
        self._prices: PriceTable | None = None
        self._tracing: LlmTracing | None = None

    def gateway(self) -> Gateway:
        """The configured gateway; `ConfigError` naming what to set when there is none."""
        with self._lock:
            if self._gateway is None:
                from .gateway import open_gateway

                self._gateway = open_gateway(self.settings)
            return self._gateway

    def cache(self) -> ResponseCache:
        with self._lock:
            if self._cache is None:
                from .cache import open_cache

                self._cache = open_cache(self.settings)
            return self._cache

    def ledger(self) -> UsageLedger:
        with self._lock:
            if self._ledger is None:
                from .ledger import open_ledger

                self._ledger = open_ledger(self.settings)
            return self._ledger

    def prices(self) -> PriceTable:
        with self._lock:
            if self._prices is None:
                from .prices import load_prices

                self._prices = load_prices(self.settings)
            return self._prices

    def tracing(self) -> LlmTracing:
        with self._lock:
            if self._tracing is None:
                from .tracing import LlmTracing

                self._tracing = LlmTracing.from_settings(self.settings)
            return self._tracing

    async def close(self) -> None:
        with self._lock:
            gateway, tracing, stores = self._gateway, self._tracing, [self._cache, self._ledger]
            self._gateway = self._tracing = self._cache = self._ledger = None
        if gateway is not None:
            await gateway.close()
        if tracing is not None:
            tracing.shutdown(timeout=2.0)
        for store in stores:
            closer: Any = getattr(store, "close", None)
            if closer is not None:
                closer()
