"""`llm_routing`: the effective routing config, what it means, and validation of a candidate config."""

from __future__ import annotations

import json
from typing import Annotated, Any

from mcp.server.mcpserver import Context
from pydantic import BaseModel, Field

from sophia_shared.errors import ConfigError
from sophia_shared.server import ToolResult, sophia_tool, state_of
from sophia_shared.workers import run_blocking

from ..gateway.config import load_routing, mask_config, validate_config
from ..names import LLM_ROUTING
from ..state import AIState


class TargetLine(BaseModel):
    provider: str
    weight: float
    has_credentials: bool
    credential_source: str = Field(description="Which setting supplies the credential (never its value).")
    model: str
    custom_host: str


class RoutingReport(ToolResult):
    gateway: str = Field(description="Which gateway carries the calls, or why none is configured.")
    source: str = Field(description="default, or PORTKEY_CONFIG (saved id or JSON).")
    strategy: str
    targets: list[TargetLine]
    left_out: list[str] = Field(description="Providers left out for want of credentials (weights re-normalised).")
    notes: list[str]
    config: dict[str, Any] = Field(description="The config as sent in x-portkey-config, credentials masked.")
    problem: str = Field(description="Why the routing cannot be used as it stands; empty when it can.")
    candidate_valid: bool = Field(description="True when the candidate config given validates (or none was given).")
    candidate_error: str

    def render_text(self) -> str:
        lines = [f"Gateway: {self.gateway}", f"Routing ({self.source}): {self.strategy}"]
        for t in self.targets:
            credential = t.credential_source if t.has_credentials else "NO CREDENTIALS"
            extra = "".join(f", {k} {v}" for k, v in (("model", t.model), ("custom host", t.custom_host)) if v)
            lines.append(f"- {t.provider}: weight {t.weight:g} ({credential}{extra})")
        if self.left_out:
            lines.append(f"Left out (no credentials): {', '.join(self.left_out)}; weights re-normalised.")
        lines += [f"Note: {n}" for n in self.notes]
        if self.problem:
            lines.append(f"Problem: {self.problem}")
        lines.append("Config sent (credentials masked): " + json.dumps(self.config, separators=(",", ":"))[:4000])
        if self.candidate_error or not self.candidate_valid:
            lines.append(f"Candidate config INVALID: {self.candidate_error}")
        return "\n".join(lines)


def routing_report(state: AIState, candidate: dict[str, Any]) -> RoutingReport:
    """Blocking: builds the routing from settings without calling anything; works offline."""
    candidate_error = ""
    if candidate:
        try:
            validate_config(candidate, source="The candidate config")
        except ConfigError as exc:
            candidate_error = exc.message
    problem, gateway = "", ""
    try:
        gateway = state.gateway().describe()
    except ConfigError as exc:
        problem, gateway = exc.agent_message(), "none configured"
    try:
        routing = load_routing(state.settings)
    except ConfigError as exc:
        return RoutingReport(
            gateway=gateway, source="default", strategy="", targets=[], left_out=[], notes=[], config={},
            problem=exc.agent_message(), candidate_valid=not candidate_error, candidate_error=candidate_error,
        )  # fmt: skip
    plan = routing.plan
    shown = plan.config if isinstance(plan.config, dict) else {"saved config id": plan.config}
    return RoutingReport(
        gateway=gateway, source=plan.source, strategy=plan.strategy,
        targets=[
            TargetLine(provider=t.provider, weight=t.weight, has_credentials=t.has_credentials,
                       credential_source=t.credential_source, model=t.model, custom_host=t.custom_host)
            for t in plan.targets
        ],
        left_out=list(plan.left_out), notes=list(plan.notes), config=mask_config(shown), problem=problem,
        candidate_valid=not candidate_error, candidate_error=candidate_error,
    )  # fmt: skip


@sophia_tool(LLM_ROUTING, title="Show or check LLM routing", read_only=True)
async def llm_routing(
    ctx: Context[Any, Any],
    candidate_config: Annotated[
        dict[str, Any],
        Field(
            description="A Portkey config object to validate against Portkey's schema before using it; empty to skip."
        ),
    ] = {},  # noqa: B006 - pydantic copies defaults
) -> RoutingReport:
    """Show how LLM calls are routed: the gateway, the strategy (load-balance weights, fallback cascades,
    retries, cache), which provider credentials are present (never their values), which providers were
    left out and why, and the config exactly as sent (credentials masked). Optionally validate a candidate
    Portkey config. Makes no LLM call."""
    state = state_of(ctx, AIState)
    return await run_blocking(lambda: routing_report(state, candidate_config))
