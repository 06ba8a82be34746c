"""`sophia doctor`: each setting's source and masked value, and whether each backend answers."""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable

from sophia_shared.errors import ConfigError, NotConfigured, SophiaError
from sophia_shared.gate import write_gate_variable
from sophia_shared.redaction import redact, too_short_to_redact
from sophia_shared.registry import all_setting_specs
from sophia_shared.settings import Settings

from .secrets_check import missing_lines, source_word
from .servers import all_servers


def _check(label: str, probe: Callable[[], str], timeout: float) -> tuple[str, str, str]:
    """Run a reachability probe in a daemon thread with a deadline; never raises, never waits longer."""
    outcome: dict[str, str] = {}

    def run() -> None:
        try:
            outcome["ok"] = probe()
        except NotConfigured as exc:  # optional and not set up: information, not a failure
            outcome["off"] = exc.agent_message().replace("\n", " ")
        except SophiaError as exc:
            outcome["failed"] = exc.agent_message().replace("\n", " ")
        except Exception as exc:  # a probe must report, not crash the doctor
            outcome["failed"] = f"{type(exc).__name__}: {exc}"

    started = time.perf_counter()
    worker = threading.Thread(target=run, daemon=True)  # a hung vendor call must not hold the exit
    worker.start()
    worker.join(timeout)
    status, detail = next(iter(outcome.items()), ("timeout", f"no answer within {timeout:g} s"))
    elapsed = time.perf_counter() - started
    return label, status, redact(f"{detail} ({elapsed * 1000:.0f} ms)")


def run_doctor(*, timeout: float) -> int:
    settings = Settings(specs=all_setting_specs())
    failed = False
    print("Settings (value masked where secret):")
    rows = settings.all_resolved()
    width = max((len(r.name) for r in rows), default=10)
    for resolved in rows:
        print(f"  {resolved.name:<{width}}  {source_word(resolved.source):<22} {resolved.display()}")
    if not rows:
        print("  (nothing set: every server runs on its embedded defaults)")
    short = [r.name for r in rows if r.secret and too_short_to_redact(r.value)]
    if short:
        print(f"  WARNING: {', '.join(short)} too short to be masked in output; is the value right?")
    # Missing credentials per server, with the ESC key to add (`sophia secrets check` has the full table).
    for line in missing_lines(settings):
        print(redact(line))

    print("\nSources:")
    esc_ref = settings.esc_ref
    if esc_ref:
        problem = settings.esc_problem()
        if problem:
            failed = True
            state = f"NOT OPENED — {problem}"
        else:
            state = f"opened, {settings.esc_value_count()} value(s) mapped to settings"
        print(redact(f"  Pulumi ESC   {esc_ref}: {state}".replace("\n", " ")))
    else:
        print("  Pulumi ESC   not configured (set SOPHIA_ESC_ENV=org/project/env and PULUMI_ACCESS_TOKEN)")
    esc_file = settings.esc_file_path()
    print(f"  ESC file     {esc_file}: {'found' if esc_file.is_file() else 'absent'}")
    dotenv = settings.dotenv_path
    print(f"  .env         {dotenv}: {'found' if dotenv.is_file() else 'absent'}")

    print("\nServers:")
    checks = []
    for entry in all_servers():
        try:
            listed = entry.spec.registered_tools(settings)
        except ConfigError as exc:  # e.g. an allow-list naming a tool the server does not have
            failed = True
            print(redact(f"  {entry.mcp_name:<30} WILL NOT START: {exc.agent_message()}".replace("\n", " ")))
            continue
        selected = entry.spec.tool_selection(settings)
        hidden = [t for t in entry.spec.tools if t not in listed and t.name in selected]
        gates = sorted({write_gate_variable(entry.spec.gate_of(t)) for t in hidden})
        extra = f" ({len(hidden)} more with {' / '.join(f'{g}=1' for g in gates)})" if hidden else ""
        print(f"  {entry.mcp_name:<30} {len(listed)} tool(s){extra}{'' if entry.spec.tools else ' (none yet)'}")
        if entry.spec.probe is not None:
            checks.append(_check(entry.key, functools.partial(entry.spec.probe, settings), timeout))

    print("\nBackends:")
    for label, status, detail in checks:
        print(f"  {label:<34} {status:<8} {detail}")
        failed |= status not in ("ok", "off")
    return 1 if failed else 0
