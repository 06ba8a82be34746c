"""Stack operations through the Automation API, one at a time per stack, cancellable.

Every method blocks (the CLI runs as a child process): callers run them in worker threads. `pulumi` is
imported here and only here, on first use.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sophia_shared.errors import BackendError, InputError, NotConfigured, PolicyError, SophiaError

from ..names import STACK_CANCEL, STACK_CONFIG_SET, STACK_HISTORY, STACK_LIST, STACK_PREVIEW, STACK_REFRESH, STACK_UP
from .backend import Backend
from .changes import CHANGE_OPS, SECRET, EventLog, ProgressCallback, ResourceChange, masked, short
from .cli import PulumiCli

if TYPE_CHECKING:
    from pulumi import automation as auto

CANCEL_TOOL = STACK_CANCEL
LOCK_HINT = (
    f"If no update is really running (a crashed run leaves its lock behind), clear the lock with {CANCEL_TOOL} "
    "or `pulumi cancel --stack STACK` in the project directory, then retry."
)


@dataclass(frozen=True)
class Project:
    """A Pulumi project whose stacks Sophia drives: the suite's inline program, or a user's directory."""

    name: str
    work_dir: Path
    program: Callable[[], None] | None = None  # inline; None: the program in work_dir (needs its language host)
    stack_prefix: str = ""  # the suite's stacks are `sophia-<environment>`
    defaults: Callable[[str], dict[str, str]] | None = None  # config set when a stack is created

    def stack_name(self, stack: str) -> str:
        stack = stack.strip()
        if not stack:
            raise InputError("No stack was named.", hint=f"Pass a stack, e.g. 'dev' ({STACK_LIST} shows them).")
        if self.stack_prefix and not stack.startswith(self.stack_prefix) and "/" not in stack:
            return f"{self.stack_prefix}{stack}"
        return stack


@dataclass
class StackInfo:
    name: str
    last_update: str
    resource_count: int | None
    update_in_progress: bool
    url: str
    outputs: dict[str, str]


@dataclass
class Outcome:
    """What one preview/up/refresh/destroy did or would do."""

    operation: str
    stack: str
    counts: dict[str, int]
    changes: list[ResourceChange]
    outputs: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    note: str = ""

    @property
    def changed(self) -> int:
        return sum(self.counts.get(op, 0) for op in CHANGE_OPS)


@dataclass
class HistoryEntry:
    version: int | None
    kind: str
    result: str
    started: str
    ended: str
    message: str
    resource_changes: dict[str, int]


@dataclass
class _Running:
    operation: str
    project: Project
    stack: str
    started: float
    interrupted: bool = False


def _iso(moment: dt.datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else ""


def masked_outputs(outputs: Mapping[str, Any]) -> dict[str, Any]:
    """Stack outputs with secret values replaced: secrets are never shown."""
    return {key: SECRET if getattr(out, "secret", False) else masked(out.value) for key, out in outputs.items()}


class StackEngine:
    """Runs stack operations for one CLI and backend; at most one operation per stack at a time."""

    def __init__(self, cli: PulumiCli, backend: Backend, *, extra_env: Mapping[str, str] | None = None) -> None:
        self.cli = cli
        self.backend = backend
        self._env = {**backend.env, **(extra_env or {})}
        self._lock = threading.Lock()
        self._running: dict[tuple[str, str], _Running] = {}
        self._command: Any = None

    # -- workspaces -----------------------------------------------------------------------------

    def _pulumi_command(self) -> Any:
        from pulumi.automation import PulumiCommand
        from semver import VersionInfo

        class _Cli(PulumiCommand):
            # The SDK looks for ROOT/bin/pulumi; ours is wherever discovery found it.
            def __init__(self, path: Path, version: str) -> None:
                self.command = str(path)
                self.version = VersionInfo.parse(version)

        with self._lock:
            if self._command is None:
                self._command = _Cli(self.cli.path, self.cli.version)
            return self._command

    def _workspace(self, project: Project) -> auto.LocalWorkspace:
        from pulumi import automation as auto

        project.work_dir.mkdir(parents=True, exist_ok=True)
        settings = None
        if project.program is not None:
            settings = auto.ProjectSettings(name=project.name, runtime="python")
        return auto.LocalWorkspace(
            work_dir=str(project.work_dir),
            pulumi_home=str(self.backend.home),
            program=project.program,
            env_vars=dict(self._env),
            project_settings=settings,
            pulumi_command=self._pulumi_command(),
        )

    def _select(self, project: Project, name: str) -> auto.Stack:
        from pulumi import automation as auto

        try:
            return auto.Stack.select(name, self._workspace(project))
        except auto.errors.StackNotFoundError:
            raise InputError(
                f"Stack {name} does not exist in project {project.name} ({self.backend.label()}).",
                hint=f"{STACK_LIST} shows the stacks; {STACK_UP} (or {STACK_CONFIG_SET}) creates a new one.",
            ) from None

    def _create_or_select(self, project: Project, name: str) -> tuple[auto.Stack, bool]:
        """The stack, created (with the project's defaults) when missing; True when it was created."""
        from pulumi import automation as auto

        workspace = self._workspace(project)
        try:
            return auto.Stack.select(name, workspace), False
        except auto.errors.StackNotFoundError:
            pass
        stack = auto.Stack.create(name, workspace)
        if project.defaults is not None:
            values = project.defaults(name)
            if values:
                stack.set_all_config({k: auto.ConfigValue(v) for k, v in values.items()})
        return stack, True

    # -- one operation per stack -----------------------------------------------------------------

    @contextmanager
    def _exclusive(self, operation: str, project: Project, name: str) -> Iterator[_Running]:
        key = (str(project.work_dir), name)
        with self._lock:
            busy = self._running.get(key)
            if busy is not None:
                raise PolicyError(
                    f"Stack {name} is busy: a {busy.operation} started {time.monotonic() - busy.started:.0f} s ago "
                    "in this server is still running; one operation per stack at a time.",
                    hint=f"Wait for it to finish, or stop it with {CANCEL_TOOL}.",
                )
            running = self._running[key] = _Running(operation, project, name, time.monotonic())
        try:
            yield running
        except SophiaError:
            raise
        except Exception as exc:
            raise self._translate(exc, operation, name, running) from None
        finally:
            with self._lock:
                self._running.pop(key, None)

    def _translate(self, exc: Exception, operation: str, name: str, running: _Running) -> SophiaError:
        from pulumi import automation as auto

        if not isinstance(exc, auto.errors.CommandError):
            return BackendError(f"Pulumi {operation} of {name} failed: {type(exc).__name__}: {short(str(exc), 800)}")
        text = str(exc)
        if isinstance(exc, auto.errors.ConcurrentUpdateError) or "currently locked" in text:
            return PolicyError(
                f"Stack {name} is locked by another update (another process or a crashed run holds its lock), so "
                f"the {operation} did not start.",
                hint=LOCK_HINT.replace("STACK", name),
            )
        if running.interrupted or "update canceled" in text.lower():
            return SophiaError(
                f"The {operation} of {name} was cancelled; resources finished so far are recorded in the stack.",
                hint=f"Run {STACK_PREVIEW} to see what is left, then {STACK_UP} again; {STACK_REFRESH} reconciles "
                "the state with reality if a resource was mid-change.",
            )
        return BackendError(
            f"Pulumi {operation} of {name} failed:\n{_error_lines(text)}",
            hint=f"Fix the program or the stack's config and retry; {STACK_HISTORY} shows earlier runs.",
        )

    def interrupt(self, project: Project, stack: str) -> bool:
        """Ask a running operation of this server on the stack to stop (SIGINT: the CLI cancels gracefully)."""
        name = project.stack_name(stack)
        with self._lock:
            running = self._running.get((str(project.work_dir), name))
        if running is None:
            return False
        running.interrupted = True
        pids = _cli_children(self.cli.path, name)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGINT)
            except ProcessLookupError:
                continue
        return bool(pids)

    def running(self, project: Project, stack: str) -> str:
        """The operation this server runs on the stack now, or ""."""
        with self._lock:
            found = self._running.get((str(project.work_dir), project.stack_name(stack)))
        return found.operation if found else ""

    # -- reads ----------------------------------------------------------------------------------

    def list_stacks(self, project: Project, *, with_outputs: bool = True) -> list[StackInfo]:
        from pulumi import automation as auto

        workspace = self._workspace(project)
        try:
            summaries = workspace.list_stacks()
        except auto.errors.CommandError as exc:
            raise BackendError(f"Listing the stacks of {project.name} failed:\n{_error_lines(str(exc))}") from None
        infos = []
        for summary in sorted(summaries, key=lambda s: s.name):
            outputs: dict[str, str] = {}
            if with_outputs and summary.resource_count:
                try:
                    raw = workspace.stack_outputs(summary.name)
                    outputs = {k: short(v, 80) for k, v in masked_outputs(raw).items()}
                except auto.errors.CommandError:
                    outputs = {}
            infos.append(
                StackInfo(
                    name=summary.name,
                    last_update=_iso(summary.last_update),
                    resource_count=summary.resource_count,
                    update_in_progress=bool(summary.update_in_progress),
                    url=summary.url or "",
                    outputs=outputs,
                )
            )
        return infos

    def outputs(self, project: Project, stack: str) -> dict[str, Any]:
        name = project.stack_name(stack)
        return masked_outputs(self._select(project, name).outputs())

    def config(self, project: Project, stack: str, key: str = "") -> dict[str, str]:
        """The stack's config (one key, or all); secret values are shown as "[secret]"."""
        name = project.stack_name(stack)
        values = self._select(project, name).get_all_config()
        shown = {k: SECRET if v.secret else v.value for k, v in sorted(values.items())}
        if not key:
            return shown
        matches = {k: v for k, v in shown.items() if k == key or k.split(":", 1)[-1] == key}
        if not matches:
            raise InputError(
                f"Stack {name} has no config key {key!r}.",
                hint="Call without a key to list the stack's config keys.",
            )
        return matches

    def history(self, project: Project, stack: str, *, limit: int = 20) -> list[HistoryEntry]:
        name = project.stack_name(stack)
        entries = self._select(project, name).history(page_size=limit, page=1, show_secrets=False)
        return [
            HistoryEntry(
                version=e.version,
                kind=str(e.kind),
                result=str(e.result),
                started=_iso(e.start_time),
                ended=_iso(e.end_time),
                message=e.message or "",
                resource_changes={str(k): int(v) for k, v in (e.resource_changes or {}).items()},
            )
            for e in entries
        ]

    # -- writes ---------------------------------------------------------------------------------

    def set_config(self, project: Project, stack: str, key: str, value: str, *, secret: bool) -> bool:
        """Set one config value (as a secret when asked); True when the stack was created for it."""
        from pulumi import automation as auto

        name = project.stack_name(stack)
        if not key.strip():
            raise InputError("No config key was given.", hint="Pass key, e.g. 'data_replicas' or 'aws:region'.")
        with self._exclusive("config set", project, name):
            target, created = self._create_or_select(project, name)
            target.set_config(key.strip(), auto.ConfigValue(value=value, secret=secret))
            return created

    def preview(
        self,
        project: Project,
        stack: str,
        *,
        config: Mapping[str, str] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Outcome:
        """What `up` would change. `config` values apply to this preview only; a stack that does not exist yet
        is previewed in a scratch stack that is removed afterwards, so a preview never changes anything."""
        name = project.stack_name(stack)
        with self._exclusive("preview", project, name) as running:
            started = time.monotonic()
            target, created = self._create_or_select(project, name)
            saved: dict[str, auto.ConfigValue | None] = {}
            try:
                saved = _apply_config(target, project, config)
                log = EventLog("preview", name, on_progress)
                target.preview(on_event=log, color="never")
                self._raise_if_interrupted(running, log, "preview", name)
            finally:
                if created:
                    target.workspace.remove_stack(name)
                else:
                    _restore_config(target, saved)
            note = f"The stack does not exist yet; {STACK_UP} creates it." if created else ""
            return Outcome("preview", name, log.counts(), log.changes(), seconds=_since(started), note=note)

    def up(
        self,
        project: Project,
        stack: str,
        *,
        config: Mapping[str, str] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Outcome:
        """Apply the stack. `config` values are saved first, in the same operation (no other operation can slip
        in between); when the up fails or is cancelled they are set back, so a failed change leaves no trace."""
        name = project.stack_name(stack)
        with self._exclusive("up", project, name) as running:
            started = time.monotonic()
            target, _ = self._create_or_select(project, name)
            saved = _apply_config(target, project, config)
            try:
                log = EventLog("up", name, on_progress)
                result = target.up(on_event=log, color="never")
                self._raise_if_interrupted(running, log, "up", name)
            except Exception as exc:
                if not saved:
                    raise
                failure = exc if isinstance(exc, SophiaError) else self._translate(exc, "up", name, running)
                raise _with_config_note(failure, _restored(target, saved, name)) from None
            return Outcome(
                "up", name, log.counts(), log.changes(), masked_outputs(result.outputs), seconds=_since(started)
            )

    def refresh(self, project: Project, stack: str, *, on_progress: ProgressCallback | None = None) -> Outcome:
        name = project.stack_name(stack)
        with self._exclusive("refresh", project, name) as running:
            started = time.monotonic()
            target = self._select(project, name)
            log = EventLog("refresh", name, on_progress)
            result = target.refresh(on_event=log, color="never")
            self._raise_if_interrupted(running, log, "refresh", name)
            return Outcome(
                "refresh", name, _merged(result.summary.resource_changes or {}), log.changes(), seconds=_since(started)
            )

    def destroy(
        self, project: Project, stack: str, *, remove: bool = False, on_progress: ProgressCallback | None = None
    ) -> Outcome:
        name = project.stack_name(stack)
        with self._exclusive("destroy", project, name) as running:
            started = time.monotonic()
            target = self._select(project, name)
            log = EventLog("destroy", name, on_progress)
            target.destroy(on_event=log, color="never")
            self._raise_if_interrupted(running, log, "destroy", name)
            note = ""
            if remove:
                target.workspace.remove_stack(name)
                note = f"Stack {name} was removed along with its history and config."
            return Outcome("destroy", name, log.counts(), log.changes(), seconds=_since(started), note=note)

    def cancel(self, project: Project, stack: str) -> str:
        """Stop this server's running operation on the stack, else clear the backend's lock (`pulumi cancel`)."""
        from pulumi import automation as auto

        name = project.stack_name(stack)
        if self.interrupt(project, stack):
            return f"Asked the running {self.running(project, stack) or 'operation'} of {name} to stop (SIGINT)."
        target = self._select(project, name)
        try:
            target.cancel()
        except auto.errors.CommandError as exc:
            text = str(exc)
            if "no update" in text.lower() or "not currently" in text.lower():
                return f"No update of {name} is running and it holds no lock; nothing to cancel."
            raise BackendError(f"`pulumi cancel` of {name} failed:\n{_error_lines(text)}") from None
        return (
            f"No operation on {name} runs in this server; `pulumi cancel` cleared any update lock the backend held "
            "for it."
        )

    @staticmethod
    def _raise_if_interrupted(running: _Running, log: EventLog, operation: str, name: str) -> None:
        if running.interrupted:
            raise SophiaError(f"The {operation} of {name} was cancelled.")


def _apply_config(
    target: auto.Stack, project: Project, config: Mapping[str, str] | None
) -> dict[str, auto.ConfigValue | None]:
    """Set `config` on the stack; returns each key's previous value (None: it was unset) for `_restore_config`."""
    from pulumi import automation as auto

    if not config:
        return {}
    current = target.get_all_config()
    saved = {key: current.get(key if ":" in key else f"{project.name}:{key}") for key in config}
    target.set_all_config({k: auto.ConfigValue(v) for k, v in config.items()})
    return saved


def _restore_config(target: auto.Stack, saved: Mapping[str, auto.ConfigValue | None]) -> None:
    for key, old in saved.items():
        if old is None:
            target.remove_config(key)
        else:
            target.set_config(key, old)


def _restored(target: auto.Stack, saved: Mapping[str, auto.ConfigValue | None], name: str) -> str:
    """Set the saved config back and say what was done (secret values are never named)."""
    said = ", ".join(
        f"{key} removed (it was unset)" if old is None else f"{key} set back to {SECRET if old.secret else old.value}"
        for key, old in saved.items()
    )
    try:
        _restore_config(target, saved)
    except Exception as exc:  # the failure that matters is the up's; this one is reported with it
        return (
            f"The config of {name} could NOT be restored ({type(exc).__name__}: {short(str(exc), 300)}); it "
            f"still holds the new value(s). Set them back with {STACK_CONFIG_SET}: {said}."
        )
    return (
        f"The config change was undone: {said}. Resources the operation changed before it stopped stay recorded "
        f"in {name}; {STACK_PREVIEW} shows anything that now differs from the config."
    )


def _with_config_note(error: SophiaError, note: str) -> SophiaError:
    """The same error (same kind and hint) with what happened to the config added to its message."""
    try:
        again = type(error)(f"{error.message.rstrip()}\n{note}", hint=error.hint)
    except TypeError:  # a subclass with another signature: keep its kind through the base class
        again = SophiaError(f"{error.message.rstrip()}\n{note}", hint=error.hint)
    return again


def _merged(counts: Mapping[Any, Any]) -> dict[str, int]:
    from .changes import op_word

    merged: dict[str, int] = {}
    for op, count in counts.items():
        word = op_word(str(op))
        merged[word] = max(merged.get(word, 0), int(count)) if word == "replace" else merged.get(word, 0) + int(count)
    return merged


def _since(started: float) -> float:
    return round(time.monotonic() - started, 2)


def _error_lines(text: str, limit: int = 1500) -> str:
    """The lines of CLI output that say what failed (errors and diagnostics), not the whole log."""
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    wanted = [
        line
        for line in lines
        if any(word in line.lower() for word in ("error", "failed", "locked", "not found", "cannot", "invalid"))
    ]
    return short("\n".join(wanted or lines[-12:]), limit)


def _cli_children(cli: Path, stack: str) -> list[int]:
    """Pids of the CLI processes this process started for the stack (read from /proc)."""
    me = os.getpid()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            if ppid != me:
                continue
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except (OSError, ValueError, IndexError):
            continue
        args = [a.decode(errors="replace") for a in argv if a]
        if args and Path(args[0]).name == cli.name and stack in args:
            found.append(int(entry.name))
    return found


def directory_project(cli: PulumiCli, work_dir: str) -> Project:
    """A user's project by directory, checked: a Pulumi.yaml whose language host the CLI can find."""
    import yaml

    path = Path(work_dir).expanduser().resolve()
    manifest = next((path / n for n in ("Pulumi.yaml", "Pulumi.yml") if (path / n).is_file()), None)
    if manifest is None:
        raise InputError(
            f"{path} has no Pulumi.yaml, so it is not a Pulumi project directory.",
            hint="Pass work_dir as the directory holding the project's Pulumi.yaml, or leave it empty for the "
            "suite's own sophia-ai project.",
        )
    try:
        data = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{manifest} is not valid YAML: {short(str(exc), 300)}") from None
    runtime = data.get("runtime")
    if isinstance(runtime, dict):
        runtime = runtime.get("name")
    name = data.get("name")
    if not (isinstance(runtime, str) and runtime and isinstance(name, str) and name):
        raise InputError(f"{manifest} needs a `name` and a `runtime` (python, nodejs, go, yaml, ...).")
    host = f"pulumi-language-{runtime}"
    if not cli.has_plugin(host):
        raise NotConfigured(
            f"The project in {path} is a {runtime} program, and its language host `{host}` is not beside the "
            f"CLI ({cli.directory}) or on PATH, so this CLI cannot run it.",
            hint=f"Install the Pulumi CLI with its language hosts (Pulumi's installer ships `{host}`), or put "
            f"`{host}` on PATH. The suite's own sophia-ai stacks need no language host (inline program).",
        )
    return Project(name=name, work_dir=path)
