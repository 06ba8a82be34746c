"""A fake Lambda Cloud API v1, built from `specs/lambda/openapi-1.8.3.json`.

Instance types have capacity per region (changeable mid-test); instances go booting → active on the next
read after launch and terminating → terminated on the next read after terminate; a file system in another
region, an exhausted quota and missing capacity answer with the spec's error codes. Requests closer than
`min_interval` (launches: `launch_interval`) are answered 429 and counted in `limit_violations`.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.vendor_app import Call, Reply, VendorApp

API_KEY = "secret_sophia-fake_0123456789abcdef0123456789abcdef"
API = "/api/v1"
REGIONS = {
    "us-west-1": "California, USA",
    "us-east-1": "Virginia, USA",
    "us-south-1": "Texas, USA",
    "europe-central-1": "Germany",
}
_SUGGESTIONS = {"global/invalid-api-key": "Check your API key or create a new one, then try again."}


def region(name: str) -> dict[str, str]:
    return {"name": name, "description": REGIONS[name]}


@dataclass
class FakeType:
    name: str
    description: str
    gpu_description: str
    price_cents_per_hour: int
    gpus: int
    regions: set[str] = field(default_factory=set)

    def json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "gpu_description": self.gpu_description,
            "price_cents_per_hour": self.price_cents_per_hour,
            "specs": {"vcpus": 30 * self.gpus, "memory_gib": 200 * self.gpus, "storage_gib": 1400, "gpus": self.gpus},
        }


DEFAULT_TYPES = (
    FakeType("gpu_1x_a10", "1x A10 (24 GB PCIe)", "A10 (24 GB PCIe)", 75, 1, {"us-east-1", "us-west-1"}),
    FakeType("gpu_1x_a100", "1x A100 (40 GB SXM4)", "A100 (40 GB SXM4)", 129, 1, {"us-west-1"}),
    FakeType("gpu_8x_h100_sxm5", "8x H100 (80 GB SXM5)", "H100 (80 GB SXM5)", 2392, 8, {"us-south-1"}),
)


class FakeLambda(VendorApp):
    """The Lambda Cloud API as the spec describes it, in memory."""

    def __init__(self, *, min_interval: float = 0.0, launch_interval: float = 0.0) -> None:
        super().__init__()
        self.types = {t.name: FakeType(**{**t.__dict__, "regions": set(t.regions)}) for t in DEFAULT_TYPES}
        self.instances: dict[str, dict[str, Any]] = {}
        self.ssh_keys: list[dict[str, Any]] = [
            {"id": "ddf9a910ceb744a0bb95242cbba6cb50", "name": "laptop", "public_key": "ssh-ed25519 AAAAC3Nz me"}
        ]
        self.file_systems: list[dict[str, Any]] = [self._file_system("fs1", "datasets", "us-west-1")]
        self.images = [
            {
                "id": "43336648-096d-4cba-9aa2-f9bb7727639d",
                "created_time": "2025-01-01T00:00:00Z",
                "updated_time": "2025-01-02T00:00:00Z",
                "name": "lambda-stack-24-04",
                "description": "Lambda Stack on Ubuntu 24.04",
                "family": "lambda-stack-24-04",
                "version": "24.04.1",
                "architecture": "x86_64",
                "region": region("us-west-1"),
            }
        ]
        self.firewall_rules = [
            {"protocol": "tcp", "port_range": [22, 22], "source_network": "0.0.0.0/0", "description": "SSH"}
        ]
        self.quota = 10  # instances the account may have billing at once
        self.sold_out_on_launch: set[str] = set()  # types whose capacity vanishes between listing and launch
        self.launch_fails_with = 0  # answer launches with this 5xx status (an upstream outage)
        self.min_interval = min_interval
        self.launch_interval = launch_interval
        self.limit_violations = 0
        self._last: float | None = None
        self._last_launch: float | None = None
        self._ids = itertools.count(1)
        for method, path, handler in (
            ("GET", "/instance-types", self._types),
            ("GET", "/instances", self._list),
            ("GET", "/instances/{id}", self._get),
            ("POST", "/instance-operations/launch", self._launch),
            ("POST", "/instance-operations/terminate", self._terminate),
            ("POST", "/instance-operations/restart", self._restart),
            ("GET", "/ssh-keys", lambda c: {"data": self.ssh_keys}),
            ("POST", "/ssh-keys", self._add_key),
            ("DELETE", "/ssh-keys/{id}", self._delete_key),
            ("GET", "/file-systems", lambda c: {"data": self.file_systems}),
            ("POST", "/filesystems", self._create_fs),
            ("DELETE", "/filesystems/{id}", self._delete_fs),
            ("GET", "/images", lambda c: {"data": self.images}),
            ("GET", "/firewall-rules", lambda c: {"data": self.firewall_rules}),
        ):
            self.route(method, API + path, handler)

    # -- set-up and what was seen -----------------------------------------------------------------

    def set_capacity(self, type_name: str, *regions: str) -> None:
        self.types[type_name].regions = set(regions)

    def add_instance(self, type_name: str, region_name: str, *, name: str = "", status: str = "active") -> str:
        instance_id = f"{next(self._ids):032x}"
        self.instances[instance_id] = {
            "id": instance_id,
            "name": name,
            "status": status,
            "ip": f"198.51.100.{len(self.instances) + 2}",
            "private_ip": "10.0.2.100",
            "ssh_key_names": ["laptop"],
            "file_system_names": [],
            "region": region(region_name),
            "instance_type": self.types[type_name].json(),
            "hostname": f"{instance_id[:8]}.cloud.example",
            "actions": {k: {"available": True} for k in ("migrate", "rebuild", "restart", "cold_reboot", "terminate")},
            "tags": [],
        }
        if not name:
            del self.instances[instance_id]["name"]
        return instance_id

    @property
    def launches(self) -> list[Call]:
        return [c for c in self.calls if c.method == "POST" and c.path == API + "/instance-operations/launch"]

    @property
    def posts(self) -> list[Call]:
        return [c for c in self.calls if c.method in ("POST", "PUT", "PATCH", "DELETE")]

    def error_reply(self, status: int, code: str, message: str, suggestion: str = "") -> Reply:
        error: dict[str, Any] = {"code": code, "message": message}
        if suggestion or code in _SUGGESTIONS:
            error["suggestion"] = suggestion or _SUGGESTIONS[code]
        return Reply(status, {"error": error})

    # -- the API's limits, then auth, then the route --------------------------------------------------

    async def _answer(self, call: Call) -> Reply:
        now = time.monotonic()
        too_soon = self._last is not None and now - self._last < self.min_interval
        is_launch = call.method == "POST" and call.path.endswith("/launch")
        if is_launch:
            too_soon = too_soon or (self._last_launch is not None and now - self._last_launch < self.launch_interval)
            self._last_launch = now
        self._last = now
        if too_soon:
            self.limit_violations += 1
            return Reply(429, {"error": {"code": "fake/rate-limited", "message": "Too many requests."}})
        if call.headers.get("authorization") != f"Bearer {API_KEY}":
            return self.error_reply(401, "global/invalid-api-key", "API key was invalid, expired, or deleted.")
        return await super()._answer(call)

    # -- routes ----------------------------------------------------------------------------------------

    def _types(self, call: Call) -> Any:
        return {
            "data": {
                t.name: {
                    "instance_type": t.json(),
                    "regions_with_capacity_available": [region(r) for r in sorted(t.regions)],
                }
                for t in self.types.values()
            }
        }

    def _advance(self, instance: dict[str, Any]) -> dict[str, Any]:
        """A read moves an instance on: booting → active, terminating → terminated."""
        following = {"booting": "active", "terminating": "terminated"}
        shown = dict(instance)
        instance["status"] = following.get(instance["status"], instance["status"])
        return shown

    def _list(self, call: Call) -> Any:
        return {"data": [self._advance(i) for i in self.instances.values()]}

    def _missing(self, what: str) -> Reply:
        return self.error_reply(404, "global/object-does-not-exist", f"{what} was not found.")

    def _get(self, call: Call) -> Any:
        instance = self.instances.get(call.params["id"])
        return {"data": self._advance(instance)} if instance else self._missing("Instance")

    def _launch(self, call: Call) -> Any:
        if self.launch_fails_with:
            return self.error_reply(self.launch_fails_with, "provider/internal-unavailable", "Upstream unavailable.")
        body = call.json or {}
        kind = self.types.get(body.get("instance_type_name", ""))
        where = body.get("region_name", "")
        keys = body.get("ssh_key_names") or []
        if kind is None or where not in REGIONS or len(keys) != 1:
            return self.error_reply(400, "global/invalid-parameters", "Invalid request data.")
        if not any(k["name"] == keys[0] for k in self.ssh_keys):
            return self.error_reply(404, "global/object-does-not-exist", "Specified SSH key does not exist.")
        for fs_name in body.get("file_system_names") or []:
            fs = next((f for f in self.file_systems if f["name"] == fs_name), None)
            if fs is not None and fs["region"]["name"] != where:
                return self.error_reply(
                    400,
                    "instance-operations/launch/file-system-in-wrong-region",
                    f"File system {fs_name!r} is in {fs['region']['name']}, not {where}.",
                )
        if where not in kind.regions or kind.name in self.sold_out_on_launch:
            return self.error_reply(
                400,
                "instance-operations/launch/insufficient-capacity",
                "Not enough capacity to fulfill launch request.",
            )
        billing = [i for i in self.instances.values() if i["status"] not in ("terminated", "terminating")]
        if len(billing) >= self.quota:
            return self.error_reply(
                400, "global/quota-exceeded", "Quota exceeded.", "Contact Support to increase your quota."
            )
        instance_id = self.add_instance(kind.name, where, name=body.get("name", ""), status="booting")
        self.instances[instance_id]["tags"] = body.get("tags", [])
        self.instances[instance_id]["file_system_names"] = body.get("file_system_names", [])
        return {"data": {"instance_ids": [instance_id]}}

    def _terminate(self, call: Call) -> Any:
        ids = (call.json or {}).get("instance_ids") or []
        if any(i not in self.instances for i in ids):
            return self._missing("Instance")
        for i in ids:
            self.instances[i]["status"] = "terminating"
        return {"data": {"terminated_instances": [dict(self.instances[i]) for i in ids]}}

    def _restart(self, call: Call) -> Any:
        ids = (call.json or {}).get("instance_ids") or []
        if any(i not in self.instances for i in ids):
            return self._missing("Instance")
        return {"data": {"restarted_instances": [dict(self.instances[i]) for i in ids]}}

    def _add_key(self, call: Call) -> Any:
        body = call.json or {}
        if any(k["name"] == body.get("name") for k in self.ssh_keys):
            return self.error_reply(400, "global/duplicate", "An SSH key with this name already exists.")
        key = {"id": f"{next(self._ids):032x}", "name": body["name"], "public_key": body["public_key"]}
        self.ssh_keys.append(key)
        return {"data": key}

    def _delete_key(self, call: Call) -> Any:
        before = len(self.ssh_keys)
        self.ssh_keys = [k for k in self.ssh_keys if k["id"] != call.params["id"]]
        return {"data": {}} if len(self.ssh_keys) < before else self._missing("SSH key")

    def _file_system(self, fs_id: str, name: str, region_name: str) -> dict[str, Any]:
        return {
            "id": fs_id,
            "name": name,
            "mount_point": f"/lambda/nfs/{name}",
            "created": "2025-06-01T12:00:00Z",
            "created_by": {"id": "u1", "email": "me@example.com", "status": "active"},
            "is_in_use": False,
            "region": region(region_name),
            "bytes_used": 0,
        }

    def _create_fs(self, call: Call) -> Any:
        body = call.json or {}
        if any(f["name"] == body.get("name") for f in self.file_systems):
            return self.error_reply(400, "global/duplicate", "A filesystem with this name already exists.")
        fs = self._file_system(f"{next(self._ids):032x}", body["name"], body["region"])
        self.file_systems.append(fs)
        return {"data": fs}

    def _delete_fs(self, call: Call) -> Any:
        fs = next((f for f in self.file_systems if f["id"] == call.params["id"]), None)
        if fs is None:
            return self._missing("Filesystem")
        if fs["is_in_use"]:
            return self.error_reply(400, "filesystems/filesystem-in-use", "Filesystem is in use.")
        self.file_systems.remove(fs)
        return {"data": {"deleted_ids": [fs["id"]]}}


# -- for tests: settings and a client wired to a fake --------------------------------------------------

GATE = "SOPHIA_INFRASTRUCTURE_ALLOW_WRITE"


def settings_for(tmp_path: Any, *, gate: bool = True, key: str | None = API_KEY, **extra: str) -> Any:
    """Settings that read nothing from the developer's machine, with the write gate and the key as asked."""
    from sophia_infrastructure.settings import SETTINGS
    from sophia_shared.settings import Settings

    environ = {"SOPHIA_ESC_FILE": str(tmp_path / "absent.yaml"), "SOPHIA_LAMBDA_BASE_URL": "http://fake", **extra}
    if key:
        environ["LAMBDA_API_KEY"] = key
    if gate:
        environ[GATE] = "1"
    return Settings(environ, cwd=tmp_path, specs=SETTINGS)


def quick_state(fake: FakeLambda, settings: Any, tmp_path: Any) -> Any:
    """An `InfraState` on the fake: no waiting between requests, fast retries, leases under `tmp_path`."""
    import httpx

    from sophia_infrastructure.clients.lambda_cloud import Spacing
    from sophia_infrastructure.leases import LeaseBook
    from sophia_infrastructure.state import InfraState
    from sophia_shared.http import RetryPolicy

    return InfraState(
        settings,
        transport=httpx.ASGITransport(app=fake),
        retry=RetryPolicy(base_delay=0.01),
        leases=LeaseBook(tmp_path / "infra" / "leases.json"),
        request_spacing=Spacing(0),
        launch_spacing=Spacing(0),
    )
