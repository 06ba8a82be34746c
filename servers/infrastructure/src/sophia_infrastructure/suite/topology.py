"""What the suite's own deployment is made of, as plain data (no Pulumi import).

The seed's deployment: the four servers as Kubernetes Deployments (AI 2 replicas, data 3, BI 1 on
the A10 GPU node pool, infrastructure 1) behind an MCP gateway that an HPA scales between 3 and 10
replicas at 70 % CPU / 80 % memory. The stack config key `{workload}_replicas` overrides a default;
`scale` and `optimize` read the bounds from here, and the program builds its resources from here, so
the three can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass

PROJECT = "sophia-ai"
STACK_PREFIX = "sophia-"  # stacks are `sophia-<environment>`
NAMESPACE = "sophia-ai"
GPU_NODE_POOL = "a10"  # node label value of the A10 pool (`sophia.ai/node-pool`)
NODE_POOL_LABEL = "sophia.ai/node-pool"


@dataclass(frozen=True, slots=True)
class Autoscaler:
    min_replicas: int
    max_replicas: int
    cpu_percent: int
    memory_percent: int


@dataclass(frozen=True, slots=True)
class Workload:
    key: str  # config key prefix and the name used in tools: `{key}_replicas`
    image: str
    command: tuple[str, ...]
    replicas: int
    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str
    port: int = 0  # 0: no Service
    gpus: int = 0  # nvidia.com/gpu limit; > 0 also pins the pod to the A10 node pool
    autoscaler: Autoscaler | None = None
    # The cost of one replica is computed in suite/costs.py (replica_month_usd) from the requests
    # and its node price table. Only the gateway has a port: the four servers speak stdio.

    @property
    def config_key(self) -> str:
        return f"{self.key}_replicas"

    def bounds(self) -> tuple[int, int | None]:
        """Lowest and highest replica count `scale` accepts (no upper bound without an autoscaler)."""
        if self.autoscaler is None:
            return 1, None
        return self.autoscaler.min_replicas, self.autoscaler.max_replicas


_IMAGE = "sophia/{server}:0.1.0"

WORKLOADS: dict[str, Workload] = {
    w.key: w
    for w in (
        Workload(
            key="ai",
            image=_IMAGE.format(server="ai-intelligence"),
            command=("sophia-ai-intelligence",),
            replicas=2,
            cpu_request="500m",
            memory_request="1Gi",
            cpu_limit="2",
            memory_limit="4Gi",
        ),
        Workload(
            key="data",
            image=_IMAGE.format(server="data-intelligence"),
            command=("sophia-data-intelligence",),
            replicas=3,
            cpu_request="250m",
            memory_request="512Mi",
            cpu_limit="1",
            memory_limit="2Gi",
        ),
        Workload(
            key="bi",
            image=_IMAGE.format(server="business-intelligence"),
            command=("sophia-business-intelligence",),
            replicas=1,
            cpu_request="2",
            memory_request="8Gi",
            cpu_limit="4",
            memory_limit="16Gi",
            gpus=1,
        ),
        Workload(
            key="infrastructure",
            image=_IMAGE.format(server="infrastructure"),
            command=("sophia-infrastructure",),
            replicas=1,
            cpu_request="250m",
            memory_request="512Mi",
            cpu_limit="1",
            memory_limit="1Gi",
        ),
        Workload(
            key="gateway",
            image="sophia/mcp-gateway:0.1.0",
            command=(),
            replicas=3,
            cpu_request="500m",
            memory_request="512Mi",
            cpu_limit="1",
            memory_limit="1Gi",
            port=8080,
            autoscaler=Autoscaler(min_replicas=3, max_replicas=10, cpu_percent=70, memory_percent=80),
        ),
    )
}


def workload(key: str) -> Workload:
    """The workload named `key` (also accepts `business_intelligence`-style names); KeyError lists them."""
    aliases = {
        "business_intelligence": "bi",
        "business-intelligence": "bi",
        "ai_intelligence": "ai",
        "ai-intelligence": "ai",
        "data_intelligence": "data",
        "data-intelligence": "data",
        "infra": "infrastructure",
        "mcp_gateway": "gateway",
        "mcp-gateway": "gateway",
    }
    name = aliases.get(key.strip().lower(), key.strip().lower())
    if name not in WORKLOADS:
        raise KeyError(f"no workload '{key}'; the suite's workloads are: {', '.join(WORKLOADS)}")
    return WORKLOADS[name]


def stack_name(environment: str) -> str:
    return environment if environment.startswith(STACK_PREFIX) else f"{STACK_PREFIX}{environment}"
