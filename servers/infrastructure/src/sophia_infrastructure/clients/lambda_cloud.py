"""Lambda Cloud's REST API v1: instance types, instances, launch/terminate/restart, SSH keys, file systems.

The API's limits and the spend rules live here, so they hold without MCP: every attempt is spaced 1 s apart
and launches 12 s apart (queued, never failed); writes pass the write gate first; a launch checks capacity,
the hourly cap and the monthly budget, is a dry run unless told otherwise, and records a lease.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import anyio
import anyio.to_thread
import httpx

from sophia_shared.errors import AuthError, BackendError, ConfigError, InputError, PolicyError, SophiaError
from sophia_shared.gate import require_write
from sophia_shared.http import DEFAULT_RETRY, DEFAULT_TIMEOUT, LazyClient, RetryPolicy, request_json
from sophia_shared.settings import Settings

from ..leases import Lease, LeaseBook, utc_now
from ..names import GPU_ACCOUNT, GPU_INSTANCES, GPU_TYPES
from ..policy import (
    BUDGET_VARIABLE,
    MAX_HOURLY_VARIABLE,
    MonthProjection,
    check_budget,
    check_hourly_cap,
    project_month,
    usd,
)
from ..settings import SERVER_KEY

log = logging.getLogger(__name__)

VENDOR = "Lambda Cloud"
KEY_VARIABLE = "LAMBDA_API_KEY"
OLD_KEY_VARIABLE = "LAMBDA_LABS_API_KEY"
BASE_URL_VARIABLE = "SOPHIA_LAMBDA_BASE_URL"
DEFAULT_BASE_URL = "https://cloud.lambda.ai"
API = "/api/v1"
LAUNCH_PATH = f"{API}/instance-operations/launch"
REQUEST_INTERVAL = 1.0  # the API allows 1 request per second
LAUNCH_INTERVAL = 12.0  # and 1 launch per 12 seconds
GONE = frozenset({"terminated", "terminating", "preempted"})  # no longer billing (or about to stop)
MAX_LEASE_HOURS = 24 * 30
_IMAGE_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_SAFE_ID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


# -- the API's limits: a queue per limit, under the retry layer so every attempt is spaced -----------


class Spacing:
    """Let callers through one at a time, at least `interval` seconds apart, in arrival order."""

    def __init__(
        self,
        interval: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
    ) -> None:
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._lock = anyio.Lock()  # FIFO: waiters are served in the order they arrived
        self._next = float("-inf")

    async def wait(self) -> None:
        async with self._lock:
            delay = self._next - self._clock()
            if delay > 0:
                await self._sleep(delay)
            self._next = self._clock() + self.interval


class RateLimitedTransport(httpx.AsyncBaseTransport):
    """Spaces requests as Lambda's limits require: launches by `launch`, everything by `overall`."""

    def __init__(self, inner: httpx.AsyncBaseTransport, overall: Spacing, launch: Spacing) -> None:
        self._inner = inner
        self._overall = overall
        self._launch = launch

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith(LAUNCH_PATH):
            await self._launch.wait()
        await self._overall.wait()
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


# -- the key: LAMBDA_API_KEY, else its older name, read at call time --------------------------------


class _LambdaKey:
    """What `request_json` reads the key from: either name, and ESC re-opened once on a rejected key."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    def require(self, name: str, purpose: str) -> str:
        for variable in (KEY_VARIABLE, OLD_KEY_VARIABLE):
            value = self._settings.get(variable)
            if value:
                return value
        raise ConfigError(
            f"{KEY_VARIABLE} is not set (nor its older name {OLD_KEY_VARIABLE}), so {purpose} is unavailable.",
            hint=f"Create an API key in the Lambda Cloud dashboard and set {KEY_VARIABLE} in the environment, Pulumi "
            "ESC, the local ESC file or .env; `sophia doctor` shows what is found where.",
        )

    def refresh_esc(self) -> bool:
        return self._settings.refresh_esc()


# -- what the API returns, as we use it --------------------------------------------------------------


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _strings(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


@dataclass(frozen=True)
class InstanceTypeOffer:
    """An instance type with its price, specs and the regions that have capacity for it now."""

    name: str
    description: str
    gpu_description: str
    price_cents_per_hour: int
    vcpus: int
    memory_gib: int
    storage_gib: int
    gpus: int
    regions_with_capacity: tuple[str, ...]

    @classmethod
    def of(cls, item: Mapping[str, Any]) -> InstanceTypeOffer:
        kind = _mapping(item.get("instance_type"))
        specs = _mapping(kind.get("specs"))
        regions = item.get("regions_with_capacity_available")
        return cls(
            name=_text(kind.get("name")),
            description=_text(kind.get("description")),
            gpu_description=_text(kind.get("gpu_description")),
            price_cents_per_hour=_int(kind.get("price_cents_per_hour")),
            vcpus=_int(specs.get("vcpus")),
            memory_gib=_int(specs.get("memory_gib")),
            storage_gib=_int(specs.get("storage_gib")),
            gpus=_int(specs.get("gpus")),
            regions_with_capacity=tuple(
                _text(_mapping(r).get("name")) for r in (regions if isinstance(regions, list) else [])
            ),
        )


@dataclass(frozen=True)
class Instance:
    """One instance as the API lists it (the API gives no launch time: uptime comes from our lease)."""

    id: str
    name: str
    status: str
    ip: str
    private_ip: str
    region: str
    instance_type: str
    price_cents_per_hour: int
    ssh_key_names: list[str]
    file_system_names: list[str]
    hostname: str
    tags: dict[str, str]

    @property
    def billing(self) -> bool:
        return self.status not in GONE

    @classmethod
    def of(cls, data: Any) -> Instance:
        if not isinstance(data, Mapping) or not isinstance(data.get("id"), str):
            raise BackendError(
                f"{VENDOR} answered with an instance that has no id.",
                hint=f"Check {BASE_URL_VARIABLE}; if it is right, Lambda Cloud sent a broken answer: try again later.",
            )
        kind = _mapping(data.get("instance_type"))
        tags = data.get("tags")
        return cls(
            id=data["id"],
            name=_text(data.get("name")),
            status=_text(data.get("status")) or "unknown",
            ip=_text(data.get("ip")),
            private_ip=_text(data.get("private_ip")),
            region=_text(_mapping(data.get("region")).get("name")),
            instance_type=_text(kind.get("name")),
            price_cents_per_hour=_int(kind.get("price_cents_per_hour")),
            ssh_key_names=_strings(data.get("ssh_key_names")),
            file_system_names=_strings(data.get("file_system_names")),
            hostname=_text(data.get("hostname")),
            tags={
                _text(t.get("key")): _text(t.get("value"))
                for t in (tags if isinstance(tags, list) else [])
                if isinstance(t, Mapping)
            },
        )


@dataclass(frozen=True)
class SshKey:
    id: str
    name: str
    public_key: str


@dataclass(frozen=True)
class FileSystem:
    id: str
    name: str
    region: str
    mount_point: str
    in_use: bool
    bytes_used: int
    created: str


@dataclass(frozen=True)
class Image:
    id: str
    name: str
    family: str
    version: str
    architecture: str
    region: str
    description: str


@dataclass(frozen=True)
class FirewallRule:
    protocol: str
    port_range: list[int]
    source_network: str
    description: str


@dataclass(frozen=True)
class LaunchRequest:
    """What to launch; `image` is an image id (a UUID) or an image family name; `lease_hours` bounds its life."""

    region: str
    instance_type: str
    ssh_key: str
    lease_hours: float
    name: str = ""
    file_systems: Sequence[str] = ()
    image: str = ""
    tags: Mapping[str, str] = field(default_factory=dict)

    def checked(self) -> LaunchRequest:
        for what, value in (("region", self.region), ("instance_type", self.instance_type), ("ssh_key", self.ssh_key)):
            if not value.strip():
                raise InputError(
                    f"{what} is required to launch an instance.",
                    hint=f"{GPU_TYPES} lists types and the regions with capacity; {GPU_ACCOUNT} kind=ssh_keys "
                    "lists the SSH keys.",
                )
        if not 0 < self.lease_hours <= MAX_LEASE_HOURS:
            raise InputError(
                f"lease_hours={self.lease_hours:g} is out of range: a lease is above 0 and at most "
                f"{MAX_LEASE_HOURS} hours.",
                hint="Give the hours the instance may run; it is terminated when the lease expires.",
            )
        if len(self.name) > 64:
            raise InputError("name is longer than 64 characters.", hint="Use a shorter instance name.")
        return self

    def body(self) -> dict[str, Any]:
        """The exact JSON body POSTed to the launch endpoint."""
        body: dict[str, Any] = {
            "region_name": self.region,
            "instance_type_name": self.instance_type,
            "ssh_key_names": [self.ssh_key],
        }
        if self.file_systems:
            body["file_system_names"] = list(self.file_systems)
        if self.name:
            body["name"] = self.name
        if self.image:
            body["image"] = {"id": self.image} if _IMAGE_ID.match(self.image) else {"family": self.image}
        if self.tags:
            body["tags"] = [{"key": k, "value": v} for k, v in self.tags.items()]
        return body


@dataclass(frozen=True)
class LaunchPlan:
    """A launch as checked (and, unless a dry run, sent): the request, price, capacity and projections."""

    request: LaunchRequest
    offer: InstanceTypeOffer
    projection: MonthProjection
    max_hourly_usd: str
    dry_run: bool
    instance_ids: list[str] = field(default_factory=list)
    expires_at: str = ""

    @property
    def has_capacity(self) -> bool:
        return self.request.region in self.offer.regions_with_capacity

    @property
    def lease_cost_usd(self) -> str:
        return f"{usd(self.offer.price_cents_per_hour) * Decimal(str(self.request.lease_hours)):.2f}"


# -- error translation by Lambda's `code` ------------------------------------------------------------


def _envelope(response: httpx.Response) -> Mapping[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    return _mapping(_mapping(body).get("error"))


def _translated(exc: SophiaError, error: Mapping[str, Any]) -> SophiaError:
    """The actionable error for Lambda's `code`; `exc` itself when the code needs nothing beyond it."""
    code = _text(error.get("code"))
    said = " ".join(f"{_text(error.get('message'))} {_text(error.get('suggestion'))}".split())
    tail = f" Lambda says: {said}" if said else ""
    if code == "instance-operations/launch/insufficient-capacity":
        return BackendError(
            f"{VENDOR} has no capacity for this instance type in this region right now.{tail}",
            hint=f"Call {GPU_TYPES} to see which regions have capacity now, and launch there (or try again later).",
        )
    if code == "global/quota-exceeded":
        return BackendError(
            f"{VENDOR} refused: the account's quota is exhausted.{tail}",
            hint=f"Terminate instances you no longer need ({GPU_INSTANCES}) or ask Lambda support to raise the quota.",
        )
    if code == "global/invalid-api-key":
        return AuthError(
            f"{VENDOR} rejected the API key in {KEY_VARIABLE} (or {OLD_KEY_VARIABLE}), also after re-reading Pulumi "
            f"ESC.{tail}",
            hint=f"Create a new key in the Lambda Cloud dashboard and set {KEY_VARIABLE}; `sophia doctor` shows "
            "where the current one comes from.",
        )
    if code in ("global/account-inactive", "global/invalid-address"):
        return AuthError(
            f"{VENDOR} refused: the account cannot do this ({code}).{tail}",
            hint="Fix the account's status or billing address in the Lambda Cloud dashboard, then call again.",
        )
    if code == "instance-operations/launch/file-system-in-wrong-region":
        return InputError(
            f"A file system you named is in a different region than the one you launch in.{tail}",
            hint=f"{GPU_ACCOUNT} kind=file_systems shows each file system's region: launch there, or leave it out.",
        )
    if code == "filesystems/filesystem-in-use":
        return InputError(
            f"The file system is mounted on an instance, so it cannot be deleted.{tail}",
            hint=f"Terminate the instances that mount it ({GPU_INSTANCES} shows them), then delete it.",
        )
    if code == "global/duplicate":
        return InputError(f"That name is already taken in the account.{tail}", hint="Choose another name.")
    if code == "global/object-does-not-exist":
        return InputError(
            f"{VENDOR} has no such object.{tail}",
            hint=f"Check the id or name: {GPU_INSTANCES} and {GPU_ACCOUNT} list what exists.",
        )
    return exc


def _check_id(value: str, what: str) -> str:
    if not _SAFE_ID.match(value):
        raise InputError(f"{value!r} is not a Lambda Cloud {what} id.", hint=f"Pass the {what} id as listed.")
    return value


# -- the client ---------------------------------------------------------------------------------------


class LambdaCloud:
    """Async Lambda Cloud client over `request_json`; one per server, made on first use."""

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
        retry: RetryPolicy = DEFAULT_RETRY,
        leases: LeaseBook | None = None,
        request_spacing: Spacing | None = None,
        launch_spacing: Spacing | None = None,
        now: Callable[[], dt.datetime] = utc_now,
    ) -> None:
        self._settings = settings
        self._key = _LambdaKey(settings)
        self.leases = leases or LeaseBook()
        # What the server's lease reaper did since a tool last said so: the next GPU result carries it.
        self.reaper_reports: list[str] = []
        self._request_spacing = request_spacing or Spacing(REQUEST_INTERVAL)
        self._launch_spacing = launch_spacing or Spacing(LAUNCH_INTERVAL)
        self.now = now
        limited = RateLimitedTransport(
            transport or httpx.AsyncHTTPTransport(), self._request_spacing, self._launch_spacing
        )
        self._http = LazyClient(
            settings, BASE_URL_VARIABLE, DEFAULT_BASE_URL, timeout=timeout, retry=retry, transport=limited
        )

    def take_reaper_reports(self) -> list[str]:
        """The reaper's reports not yet shown to a caller (each is shown once)."""
        reports, self.reaper_reports = self.reaper_reports, []
        return reports

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _client(self) -> httpx.AsyncClient:
        return await self._http.get()

    async def _data(self, method: str, path: str, **kwargs: Any) -> Any:
        """The `data` of Lambda's `{data: …}` envelope; failures translated by the envelope's `code`."""
        error: dict[str, Any] = {}

        def said(response: httpx.Response) -> str | None:
            error.update(_envelope(response))
            return _text(error.get("message")) or None

        try:
            body = await request_json(
                await self._client(),
                self._key,
                method,
                f"{API}{path}",
                vendor=VENDOR,
                key_variable=KEY_VARIABLE,
                error_message=said,
                **kwargs,
            )
        except SophiaError as exc:
            translated = _translated(exc, error)
            if translated is exc:
                raise
            raise translated from exc
        if not isinstance(body, Mapping) or "data" not in body:
            raise BackendError(
                f"{VENDOR} answered {method} {API}{path} without the expected {{data: …}} envelope.",
                hint=f"Check {BASE_URL_VARIABLE}; if it is right, Lambda Cloud sent a broken answer: try again later.",
            )
        return body["data"]

    # -- reads ------------------------------------------------------------------------------------

    async def instance_types(self) -> list[InstanceTypeOffer]:
        data = await self._data("GET", "/instance-types")
        offers = [InstanceTypeOffer.of(_mapping(item)) for item in _mapping(data).values()]
        return sorted(offers, key=lambda o: (o.price_cents_per_hour, o.name))

    async def instances(self) -> list[Instance]:
        data = await self._data("GET", "/instances")
        return [Instance.of(item) for item in (data if isinstance(data, list) else [])]

    async def instance(self, instance_id: str) -> Instance:
        return Instance.of(await self._data("GET", f"/instances/{quote(_check_id(instance_id, 'instance'))}"))

    async def ssh_keys(self) -> list[SshKey]:
        data = await self._data("GET", "/ssh-keys")
        return [
            SshKey(_text(k.get("id")), _text(k.get("name")), _text(k.get("public_key")))
            for k in map(_mapping, data if isinstance(data, list) else [])
        ]

    async def file_systems(self) -> list[FileSystem]:
        data = await self._data("GET", "/file-systems")
        return [_file_system(f) for f in map(_mapping, data if isinstance(data, list) else [])]

    async def images(self) -> list[Image]:
        data = await self._data("GET", "/images")
        return [
            Image(
                id=_text(i.get("id")),
                name=_text(i.get("name")),
                family=_text(i.get("family")),
                version=_text(i.get("version")),
                architecture=_text(i.get("architecture")),
                region=_text(_mapping(i.get("region")).get("name")),
                description=_text(i.get("description")),
            )
            for i in map(_mapping, data if isinstance(data, list) else [])
        ]

    async def firewall_rules(self) -> list[FirewallRule]:
        data = await self._data("GET", "/firewall-rules")
        return [
            FirewallRule(
                protocol=_text(r.get("protocol")),
                port_range=[p for p in r.get("port_range", []) if isinstance(p, int)],
                source_network=_text(r.get("source_network")),
                description=_text(r.get("description")),
            )
            for r in map(_mapping, data if isinstance(data, list) else [])
        ]

    async def month_projection(self, running: Sequence[Instance] | None = None, new_cents: int = 0) -> MonthProjection:
        """The month's projection for the billing instances (listed now unless given) plus `new_cents`."""
        listed = await self.instances() if running is None else running
        budget = await anyio.to_thread.run_sync(lambda: self._settings.get_float(BUDGET_VARIABLE, minimum=0))
        return project_month([i.price_cents_per_hour for i in listed if i.billing], budget, new_cents)

    # -- writes: the gate first, then the rules, then the vendor ------------------------------------

    async def launch(self, request: LaunchRequest, *, dry_run: bool = True) -> LaunchPlan:
        """Check capacity, the hourly cap and the month's budget; unless `dry_run`, launch and record the lease."""
        require_write(self._settings, SERVER_KEY, "launch a GPU instance")
        request = request.checked()
        offers = {o.name: o for o in await self.instance_types()}
        offer = offers.get(request.instance_type)
        if offer is None:
            known = ", ".join(sorted(offers)) or "none"
            raise InputError(
                f"Lambda Cloud has no instance type {request.instance_type!r}.",
                hint=f"Use one of: {known} ({GPU_TYPES} shows prices and capacity).",
            )
        cap = await anyio.to_thread.run_sync(lambda: self._settings.get_float(MAX_HOURLY_VARIABLE, minimum=0))
        check_hourly_cap(offer.price_cents_per_hour, cap, offer.name)
        projection = await self.month_projection(new_cents=offer.price_cents_per_hour)
        check_budget(projection)
        plan = LaunchPlan(request, offer, projection, f"{cap:g}", dry_run)
        if not plan.has_capacity and not dry_run:
            where = ", ".join(offer.regions_with_capacity)
            raise BackendError(
                f"{offer.name} has no capacity in {request.region} right now; "
                + (f"regions with capacity now: {where}." if where else "no region has capacity for it now."),
                hint="Launch in a region that has capacity, pick another type, or try again later.",
            )
        if dry_run:
            return plan
        data = await self._data("POST", "/instance-operations/launch", json=request.body())
        ids = _strings(_mapping(data).get("instance_ids"))
        launched = self.now()
        expires = launched + dt.timedelta(hours=request.lease_hours)
        for instance_id in ids:
            await anyio.to_thread.run_sync(
                self.leases.record,
                Lease(
                    instance_id=instance_id,
                    name=request.name,
                    instance_type=offer.name,
                    region=request.region,
                    price_cents_per_hour=offer.price_cents_per_hour,
                    launched_at=launched.isoformat(),
                    expires_at=expires.isoformat(),
                ),
            )
        return LaunchPlan(request, offer, projection, f"{cap:g}", False, ids, expires.isoformat())

    async def terminate(self, instance_id: str, *, confirm: str) -> list[Instance]:
        """Terminate one instance; `confirm` must equal its id or its name exactly."""
        require_write(self._settings, SERVER_KEY, "terminate a GPU instance")
        instance = await self.instance(instance_id)
        if not confirm or confirm not in {instance.id, instance.name}:
            shown = f"{instance.id!r}" + (f" or its name {instance.name!r}" if instance.name else "")
            raise PolicyError(
                f"Refused to terminate {instance.id}: confirm must equal the instance's id {shown}, "
                f"and {confirm!r} does not.",
                hint="Check that this is the instance you mean, then call again with confirm set to its id or name.",
            )
        data = await self._data("POST", "/instance-operations/terminate", json={"instance_ids": [instance.id]})
        await anyio.to_thread.run_sync(self.leases.forget, instance.id)
        return [Instance.of(i) for i in _mapping(data).get("terminated_instances", [])]

    async def restart(self, instance_id: str) -> list[Instance]:
        require_write(self._settings, SERVER_KEY, "restart a GPU instance")
        ids = [_check_id(instance_id, "instance")]
        data = await self._data("POST", "/instance-operations/restart", json={"instance_ids": ids})
        return [Instance.of(i) for i in _mapping(data).get("restarted_instances", [])]

    async def add_ssh_key(self, name: str, public_key: str) -> SshKey:
        """Add a public key; never asks Lambda to generate a pair (the private key would pass through the chat)."""
        require_write(self._settings, SERVER_KEY, "add an SSH key")
        if not name.strip() or not public_key.strip():
            raise InputError(
                "Adding an SSH key needs a name and the public key.",
                hint="Pass the contents of your ~/.ssh/id_ed25519.pub (or similar) as public_key.",
            )
        data = _mapping(await self._data("POST", "/ssh-keys", json={"name": name, "public_key": public_key.strip()}))
        return SshKey(_text(data.get("id")), _text(data.get("name")), _text(data.get("public_key")))

    async def delete_ssh_key(self, key_id: str) -> None:
        require_write(self._settings, SERVER_KEY, "delete an SSH key")
        await self._data("DELETE", f"/ssh-keys/{quote(_check_id(key_id, 'SSH key'))}")

    async def create_file_system(self, name: str, region: str) -> FileSystem:
        require_write(self._settings, SERVER_KEY, "create a file system")
        return _file_system(_mapping(await self._data("POST", "/filesystems", json={"name": name, "region": region})))

    async def delete_file_system(self, file_system_id: str) -> list[str]:
        require_write(self._settings, SERVER_KEY, "delete a file system")
        data = await self._data("DELETE", f"/filesystems/{quote(_check_id(file_system_id, 'file system'))}")
        return _strings(_mapping(data).get("deleted_ids"))

    async def reap_expired(self, *, now: dt.datetime | None = None) -> list[str]:
        """Terminate every instance whose lease expired; one sentence per lease, saying what happened."""
        moment = now or self.now()
        done: list[str] = []
        for lease in await anyio.to_thread.run_sync(self.leases.expired, moment):
            try:
                instance = await self.instance(lease.instance_id)
                if not instance.billing:
                    await anyio.to_thread.run_sync(self.leases.forget, lease.instance_id)
                    done.append(f"{lease.label()}: already {instance.status}; lease removed.")
                    continue
                await self.terminate(instance.id, confirm=instance.id)
                done.append(f"{lease.label()}: lease expired at {lease.expires_at}; terminated.")
            except SophiaError as exc:
                if isinstance(exc, InputError) and "no such" in exc.message:
                    await anyio.to_thread.run_sync(self.leases.forget, lease.instance_id)
                    done.append(f"{lease.label()}: no longer exists at Lambda Cloud; lease removed.")
                else:
                    done.append(f"{lease.label()}: lease expired at {lease.expires_at}, NOT terminated: {exc.message}")
        return done


def _file_system(f: Mapping[str, Any]) -> FileSystem:
    return FileSystem(
        id=_text(f.get("id")),
        name=_text(f.get("name")),
        region=_text(_mapping(f.get("region")).get("name")),
        mount_point=_text(f.get("mount_point")),
        in_use=bool(f.get("is_in_use")),
        bytes_used=_int(f.get("bytes_used")),
        created=_text(f.get("created")),
    )
