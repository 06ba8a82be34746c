"""What the infrastructure tools share for the life of the server: settings, the lease file, a lazy client."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from sophia_shared.settings import Settings

if TYPE_CHECKING:  # imported on first use: the HTTP stack must not slow `initialize`
    import httpx

    from sophia_shared.http import RetryPolicy

    from .clients.lambda_cloud import LambdaCloud, Spacing
    from .leases import LeaseBook


class InfraState:
    """The Lambda Cloud client is made on first use, so a missing key is named only by a call that needs it."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        leases: LeaseBook | None = None,
        request_spacing: Spacing | None = None,
        launch_spacing: Spacing | None = None,
    ) -> None:
        from .leases import LeaseBook

        self.settings = settings
        self.leases = leases or LeaseBook()
        self._transport = transport
        self._retry = retry
        self._spacings = (request_spacing, launch_spacing)
        self._lock = threading.Lock()
        self._lambda: LambdaCloud | None = None

    def lambda_cloud(self) -> LambdaCloud:
        from sophia_shared.http import DEFAULT_RETRY

        from .clients.lambda_cloud import LambdaCloud

        with self._lock:
            if self._lambda is None:
                self._lambda = LambdaCloud(
                    self.settings,
                    transport=self._transport,
                    retry=self._retry or DEFAULT_RETRY,
                    leases=self.leases,
                    request_spacing=self._spacings[0],
                    launch_spacing=self._spacings[1],
                )
            return self._lambda

    async def close(self) -> None:
        with self._lock:
            client, self._lambda = self._lambda, None
        if client is not None:
            await client.aclose()
