"""GPU leases: how long a launched instance may run, kept in `<data dir>/infra/leases.json`.

Every change holds an exclusive `flock` on a lock file beside it and replaces the file atomically, so the
server and a cron `sophia infra reap` can share it. An expired lease is reported on every tool call and
terminated by `reap_expired`, which says what it did.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sophia_shared.errors import SophiaError
from sophia_shared.files import write_atomically
from sophia_shared.paths import data_dir
from sophia_shared.settings import Settings

if TYPE_CHECKING:
    from .clients.lambda_cloud import LambdaCloud


def default_lease_path() -> Path:
    return data_dir() / "infra" / "leases.json"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Lease:
    """One launched instance and the time it must be gone by."""

    instance_id: str
    name: str
    instance_type: str
    region: str
    price_cents_per_hour: int
    launched_at: str  # ISO-8601, UTC
    expires_at: str

    @property
    def expires(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.expires_at)

    @property
    def launched(self) -> dt.datetime:
        return dt.datetime.fromisoformat(self.launched_at)

    def label(self) -> str:
        return f"{self.instance_id} ({self.name})" if self.name else self.instance_id


class LeaseBook:
    """The lease file: `record`, `forget`, `all`, `expired(now)`; safe across processes."""

    def __init__(self, path: Path | None = None) -> None:
        self.path = path or default_lease_path()

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_suffix(".lock"), "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self) -> dict[str, Lease]:
        try:
            raw: Any = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise SophiaError(
                f"The lease file {self.path} is not valid JSON, so GPU leases cannot be checked.",
                hint="Fix or remove the file (it lists launched instances and when they expire); check "
                "gpu_instances for instances that are still running.",
            ) from exc
        return {item["instance_id"]: Lease(**item) for item in raw.get("leases", [])}

    def _write(self, leases: dict[str, Lease]) -> None:
        body = json.dumps({"leases": [asdict(lease) for lease in leases.values()]}, indent=2)
        write_atomically(self.path, body)

    def all(self) -> list[Lease]:
        with self._locked():
            return list(self._read().values())

    def get(self, instance_id: str) -> Lease | None:
        with self._locked():
            return self._read().get(instance_id)

    def record(self, lease: Lease) -> None:
        with self._locked():
            leases = self._read()
            leases[lease.instance_id] = lease
            self._write(leases)

    def forget(self, instance_id: str) -> bool:
        """Drop a lease; False when there was none."""
        with self._locked():
            leases = self._read()
            if leases.pop(instance_id, None) is None:
                return False
            self._write(leases)
            return True

    def expired(self, now: dt.datetime | None = None) -> list[Lease]:
        moment = now or utc_now()
        return [lease for lease in self.all() if lease.expires <= moment]


def expired_notes(book: LeaseBook, now: dt.datetime | None = None) -> list[str]:
    """One sentence per expired lease: the reminder every tool result carries."""
    moment = now or utc_now()
    return [
        f"Lease expired: instance {lease.label()} ({lease.instance_type}, ${lease.price_cents_per_hour / 100:.2f}/h) "
        f"was due to stop at {lease.expires_at} and may still be billing; run `sophia infra reap` or terminate it."
        for lease in book.expired(moment)
    ]


async def reap_expired(
    settings: Settings, client: LambdaCloud | None = None, *, now: dt.datetime | None = None
) -> list[str]:
    """Terminate every instance whose lease has expired; one sentence per lease saying what was done."""
    from .clients.lambda_cloud import LambdaCloud

    own = client is None
    cloud = client or LambdaCloud(settings)
    try:
        return await cloud.reap_expired(now=now)
    finally:
        if own:
            await cloud.aclose()
