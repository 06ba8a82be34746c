"""Stack operations through the Automation API, one at a time per stack, cancellable.

Every method blocks (the CLI runs as a child process): callers run them in worker threads. `pulumi` is
imported here and only here, on first use.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import secrets
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from sophia_shared.errors import BackendError, InputError, NotConfigured, PolicyError, SophiaError

from ..names import STACK_CANCEL, STACK_CONFIG_SET, STACK_HISTORY, STACK_LIST, STACK_PREVIEW, STACK_REFRESH, STACK_UP
from .backend import Backend
from .changes import CHANGE_OPS, SECRET, EventLog, ProgressCallback, ResourceChange, masked, short
from .cli import PulumiCli

if TYPE_CHECKING:
    from pulumi import automation as auto

T = TypeVar("T")
CANCEL_TOOL = STACK_CANCEL
LOCK_HINT = (
    f"If no update is really running (a crashed run leaves its lock behind), clear the lock with {CANCEL_TOOL} "
    "or `pulumi cancel --stack STACK` in the project directory, then retry."
)


_NAME_PART = re.compile(r"[A-Za-z0-9_.][A-Za-z0-9_.-]{0,99}")
_CONFIG_KEY = re.compile(r"(?:[A-Za-z0-9_][A-Za-z0-9_.-]*:)?[A-Za-z0-9_][A-Za-z0-9_.-]*")
WAIT_SECONDS = 60.0  # how long a read or a config write waits for the stack's running operation


def check_stack_name(name: str) -> str:
    """Pulumi's rule: letters, digits, '-', '_' and '.' (at most 100), optionally as org/stack or org/project/stack."""
    parts = name.split("/")
    if len(parts) > 3 or any(not _NAME_PART.fullmatch(p) or p in {".", ".."} for p in parts):
        raise InputError(
            f"{short(name, 120)!r} is not a valid Pulumi stack name.",
            hint="A stack name uses letters, digits, '-', '_' and '.' (at most 100 characters), e.g. 'dev' or "
            "'sophia-prod'; Pulumi Cloud also accepts 'org/stack' and 'org/project/stack'.",
        )
    return name


def check_config_key(key: str) -> str:
    """A config key is `[namespace:]name` (letters, digits, '_', '-', '.'); never something the CLI reads as a flag."""
    key = key.strip()
    if not key or len(key) > 200 or not _CONFIG_KEY.fullmatch(key):
        raise InputError(
            f"{short(key, 120)!r} is not a valid config key.",
            hint="Use `name` or `namespace:name` with letters, digits, '_', '-' and '.', starting with a letter, "
            "digit or '_', e.g. 'data_replicas' or 'aws:region'.",
        )
    return key


class StackNotFound(InputError):
    """The named stack does not exist in the project's backend."""


@dataclass(frozen=True)
class Project:
    """A Pulumi project whose stacks Sophia drives: the suite's inline program, or a user's directory."""

    name: str
    work_dir: Path
    program: Callable[[], None] | None = None  # inline; None: the program in work_dir (needs its language host)
    stack_prefix: str = ""  # the suite's stacks are `sophia-<environment>`
    defaults: Callable[[str], dict[str, str]] | None = None  # config set when a stack is created
    runtime: str = ""  # a directory project's language; running its program needs `pulumi-language-<runtime>`

    def stack_name(self, stack: str) -> str:
        stack = stack.strip()
        if not stack:
            raise InputError("No stack was named.", hint=f"Pass a stack, e.g. 'dev' ({STACK_LIST} shows them).")
        if self.stack_prefix and not stack.startswith(self.stack_prefix) and "/" not in stack:
            stack = f"{self.stack_prefix}{stack}"
        return check_stack_name(stack)


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
        self._freed = threading.Condition(self._lock)  # notified whenever a stack's operation ends
        self._running: dict[tuple[str, str], _Running] = {}
        self._command: Any = None
        _quiet_grpc_server_log()

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

    def _workspace(self, project: Project, env: Mapping[str, str] | None = None) -> auto.LocalWorkspace:
        from pulumi import automation as auto

        project.work_dir.mkdir(parents=True, exist_ok=True)
        settings = None
        if project.program is not None:
            settings = auto.ProjectSettings(name=project.name, runtime="python")
        return auto.LocalWorkspace(
            work_dir=str(project.work_dir),
            pulumi_home=str(self.backend.home),
            program=project.program,
            env_vars=dict(env if env is not None else self._env),
            project_settings=settings,
            pulumi_command=self._pulumi_command(),
        )

    def _select(self, project: Project, name: str) -> auto.Stack:
        from pulumi import automation as auto

        try:
            return auto.Stack.select(name, self._workspace(project))
        except auto.errors.StackNotFoundError:
            raise StackNotFound(
                f"Stack {name} does not exist in project {project.name} ({self.backend.label()}).",
                hint=f"{STACK_LIST} shows the stacks; {STACK_UP} (or {STACK_CONFIG_SET}) creates a new one.",
            ) from None
        except auto.errors.CommandError as exc:
            raise self._read_error(exc, f"Selecting stack {name}") from None

    def _read_error(self, exc: Exception, what: str) -> SophiaError:
        """A CLI failure on a read path, said plainly (never as a server bug)."""
        return BackendError(
            f"{what} failed ({self.backend.label()}):\n{_error_lines(str(exc))}",
            hint="Check the backend settings (PULUMI_BACKEND_URL, PULUMI_ACCESS_TOKEN, the passphrase) and the "
            f"project; {STACK_LIST} shows the stacks the backend holds.",
        )

    def _read(self, what: str, run: Callable[[], T]) -> T:
        from pulumi import automation as auto

        try:
            return run()
        except auto.errors.CommandError as exc:
            raise self._read_error(exc, what) from None

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
    def _exclusive(
        self,
        operation: str,
        project: Project,
        name: str,
        *,
        wait: float = 0.0,
        on_progress: ProgressCallback | None = None,
    ) -> Iterator[_Running]:
        """Hold the stack for one operation. With `wait`, wait (up to that many seconds, reporting progress) for
        the operation already running; without it, a busy stack is refused at once."""
        key = (str(project.work_dir), name)
        deadline = time.monotonic() + wait
        with self._lock:
            said = ""
            while (busy := self._running.get(key)) is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    waited = f" (waited {wait:.0f} s)" if wait else ""
                    mine = busy.operation in {"up", "refresh", "destroy", "scale"}
                    raise PolicyError(
                        f"Stack {name} is busy: a {busy.operation} started {time.monotonic() - busy.started:.0f} s "
                        f"ago in this server is still running{waited}; one operation per stack at a time.",
                        hint="Retry when it has finished"
                        + (f" (or stop it with {CANCEL_TOOL} if it should not go on)." if mine else "."),
                    )
                if on_progress is not None and said != busy.operation:
                    said = busy.operation
                    on_progress(0, f"waiting for {busy.operation} on {name}")
                self._freed.wait(timeout=min(left, 1.0))
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
                self._freed.notify_all()

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

    def interrupt(self, project: Project, stack: str) -> str:
        """Ask this server's running operation on the stack to stop: it is marked so it stops before its next
        step, and a CLI it runs gets SIGINT (the CLI cancels gracefully). The operation's name, or "" if none."""
        name = project.stack_name(stack)
        with self._lock:
            running = self._running.get((str(project.work_dir), name))
        if running is None:
            return ""
        running.interrupted = True
        for pid in _cli_children(self.cli.path, name):
            try:
                os.kill(pid, signal.SIGINT)
            except ProcessLookupError:
                continue
        return running.operation

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
        target = self._select(project, name)
        return masked_outputs(self._read(f"Reading the outputs of {name}", target.outputs))

    def config(self, project: Project, stack: str, key: str = "") -> dict[str, str]:
        """The stack's config (one key, or all); secret values are shown as "[secret]"."""
        name = project.stack_name(stack)
        target = self._select(project, name)
        values = self._read(f"Reading the config of {name}", target.get_all_config)
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
        target = self._select(project, name)
        entries = self._read(
            f"Reading the history of {name}", lambda: target.history(page_size=limit, page=1, show_secrets=False)
        )
        return [
            HistoryEntry(
                version=e.version,
                kind=str(e.kind),
                result=str(e.result),
                started=_iso(e.start_time),
                ended=_iso(e.end_time),
                message=e.message or "",
                resource_changes=_resource_counts(e.resource_changes or {}),
            )
            for e in entries
        ]

    # -- writes ---------------------------------------------------------------------------------

    def set_config(
        self,
        project: Project,
        stack: str,
        key: str,
        value: str,
        *,
        secret: bool,
        on_progress: ProgressCallback | None = None,
    ) -> bool:
        """Set one config value (as a secret when asked); True when the stack was created for it."""
        from pulumi import automation as auto

        name = project.stack_name(stack)
        key = check_config_key(key)
        with self._exclusive("config set", project, name, wait=WAIT_SECONDS, on_progress=on_progress):
            target, created = self._create_or_select(project, name)
            target.set_config(key, auto.ConfigValue(value=value, secret=secret))
            return created

    def remove_config(
        self, project: Project, stack: str, key: str, *, on_progress: ProgressCallback | None = None
    ) -> bool:
        """Remove one config key; False when the stack did not have it (nothing changed)."""
        name = project.stack_name(stack)
        key = check_config_key(key)
        with self._exclusive("config remove", project, name, wait=WAIT_SECONDS, on_progress=on_progress):
            target = self._select(project, name)
            full = key if ":" in key else f"{project.name}:{key}"
            if full not in target.get_all_config():
                return False
            target.remove_config(key)
            return True

    def preview(
        self,
        project: Project,
        stack: str,
        *,
        config: Mapping[str, str] | None = None,
        on_progress: ProgressCallback | None = None,
    ) -> Outcome:
        """What `up` would change; never writes the stack's config file or the backend (see `_preview`)."""
        name = project.stack_name(stack)
        with self._exclusive("preview", project, name, wait=WAIT_SECONDS, on_progress=on_progress) as running:
            return self._preview(running, project, name, config, on_progress)

    def _preview(
        self,
        running: _Running,
        project: Project,
        name: str,
        config: Mapping[str, str] | None,
        on_progress: ProgressCallback | None,
    ) -> Outcome:
        """Preview in a scratch copy of the work dir: its stack config files are copied (the rest linked), and
        `config` is set in the copy only, so the real Pulumi.<stack>.yaml is never written. A stack that does
        not exist is previewed in a scratch local backend (there is no state to read), so the real backend
        gets no scratch stack either."""
        from pulumi import automation as auto

        check_language_host(self.cli, project)
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="sophia-preview-") as scratch:
            copy = replace(project, work_dir=_scratch_copy(project.work_dir, Path(scratch) / "project"))
            note = ""
            try:
                target = auto.Stack.select(name, self._workspace(copy))
            except auto.errors.StackNotFoundError:
                target = self._scratch_stack(copy, name, Path(scratch) / "backend")
                note = f"The stack does not exist yet; {STACK_UP} creates it."
            if config:
                target.set_all_config({k: auto.ConfigValue(v) for k, v in config.items()})
            self._raise_if_interrupted(running, "preview", name)
            log = EventLog("preview", name, on_progress)
            target.preview(on_event=log, color="never")
            self._raise_if_interrupted(running, "preview", name)
        return Outcome("preview", name, log.counts(), log.changes(), seconds=_since(started), note=note)

    def _scratch_stack(self, project: Project, name: str, backend_dir: Path) -> auto.Stack:
        """The stack, made in a throwaway file:// backend with the project's defaults (for previewing a stack
        that does not exist without creating it in the real backend)."""
        from pulumi import automation as auto

        backend_dir.mkdir(parents=True, exist_ok=True)
        env = {**self._env, "PULUMI_BACKEND_URL": f"file://{backend_dir}"}
        if not {"PULUMI_CONFIG_PASSPHRASE", "PULUMI_CONFIG_PASSPHRASE_FILE"} & env.keys():
            env["PULUMI_CONFIG_PASSPHRASE"] = secrets.token_urlsafe(24)  # Pulumi Cloud: a throwaway one
        stack = auto.Stack.create(name.rsplit("/", 1)[-1], self._workspace(project, env))
        if project.defaults is not None:
            values = project.defaults(name)
            if values:
                stack.set_all_config({k: auto.ConfigValue(v) for k, v in values.items()})
        return stack

    def change_config(
        self,
        operation: str,
        project: Project,
        stack: str,
        decide: Callable[[dict[str, str]], dict[str, str]],
        *,
        apply: bool,
        on_progress: ProgressCallback | None = None,
    ) -> Outcome | None:
        """One held operation that reads the stack's config (plain values), lets `decide` turn it into a config
        change (it may refuse by raising), then previews that change or applies it with `up`. The stack counts as
        busy from the start, so a cancel sent while the config is read stops it too. A missing stack is refused."""
        from pulumi import automation as auto

        name = project.stack_name(stack)
        with self._exclusive(operation, project, name, on_progress=on_progress) as running:
            try:
                target = auto.Stack.select(name, self._workspace(project))
            except auto.errors.StackNotFoundError:
                raise InputError(
                    f"Stack {name} does not exist in project {project.name}, so there is nothing to {operation}.",
                    hint=f"Preview it with {STACK_PREVIEW} and create it with {STACK_UP} first.",
                ) from None
            current = {k: v.value for k, v in target.get_all_config().items() if not v.secret}
            self._raise_if_interrupted(running, operation, name)
            change = decide(current)
            if not change:
                return None  # nothing to change: no preview, no up
            if apply:
                return self._up(running, project, name, change, on_progress)
            return self._preview(running, project, name, change, on_progress)

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
            return self._up(running, project, name, config, on_progress)

    def _up(
        self,
        running: _Running,
        project: Project,
        name: str,
        config: Mapping[str, str] | None,
        on_progress: ProgressCallback | None,
    ) -> Outcome:
        check_language_host(self.cli, project)
        started = time.monotonic()
        target, _ = self._create_or_select(project, name)
        saved = _apply_config(target, project, config)
        try:
            self._raise_if_interrupted(running, "up", name)
            log = EventLog("up", name, on_progress)
            result = target.up(on_event=log, color="never")
            self._raise_if_interrupted(running, "up", name)
        except Exception as exc:
            if not saved:
                raise
            failure = exc if isinstance(exc, SophiaError) else self._translate(exc, "up", name, running)
            raise _with_config_note(failure, _restored(target, saved, name)) from None
        return Outcome("up", name, log.counts(), log.changes(), masked_outputs(result.outputs), seconds=_since(started))

    def refresh(self, project: Project, stack: str, *, on_progress: ProgressCallback | None = None) -> Outcome:
        name = project.stack_name(stack)
        check_language_host(self.cli, project)
        with self._exclusive("refresh", project, name) as running:
            started = time.monotonic()
            target = self._select(project, name)
            log = EventLog("refresh", name, on_progress)
            result = target.refresh(on_event=log, color="never")
            self._raise_if_interrupted(running, "refresh", name)
            return Outcome(
                "refresh", name, _merged(result.summary.resource_changes or {}), log.changes(), seconds=_since(started)
            )

    def destroy(
        self, project: Project, stack: str, *, remove: bool = False, on_progress: ProgressCallback | None = None
    ) -> Outcome:
        name = project.stack_name(stack)
        check_language_host(self.cli, project)
        with self._exclusive("destroy", project, name) as running:
            started = time.monotonic()
            target = self._select(project, name)
            render_dir = target.get_all_config().get(f"{project.name}:render_dir") if remove else None
            log = EventLog("destroy", name, on_progress)
            target.destroy(on_event=log, color="never")
            self._raise_if_interrupted(running, "destroy", name)
            note = ""
            if remove:
                target.workspace.remove_stack(name)
                _remove_empty_dirs(self.backend, project, name)
                if render_dir is not None and not render_dir.secret:
                    _prune_empty(Path(render_dir.value))
                note = f"Stack {name} was removed along with its history and config."
            return Outcome("destroy", name, log.counts(), log.changes(), seconds=_since(started), note=note)

    def clear_lock(self, project: Project, stack: str) -> str:
        """Clear an update lock another process holds on the stack (`pulumi cancel`); says whether there was one.
        Callers gate this: it ends another process's update."""
        from pulumi import automation as auto

        name = project.stack_name(stack)
        target = self._select(project, name)
        held = self._lock_holder(project, name)
        if held == "":
            return (
                f"No operation on {name} runs in this server and no process holds its update lock; nothing to cancel."
            )
        try:
            target.cancel()
        except auto.errors.CommandError as exc:
            text = str(exc)
            if "no update" in text.lower() or "not currently" in text.lower():
                return f"No update of {name} is running and it holds no lock; nothing to cancel."
            raise BackendError(f"`pulumi cancel` of {name} failed:\n{_error_lines(text)}") from None
        if held is None:
            return (
                f"No operation on {name} runs in this server; `pulumi cancel` ran and cleared the backend's update "
                "lock if one was held (this backend does not say whether one was)."
            )
        return f"Cleared the update lock {held} held on {name} (`pulumi cancel`); that update is cancelled."

    def _lock_holder(self, project: Project, name: str) -> str | None:
        """Who holds the stack's update lock ("" when nobody), or None when the backend does not tell."""
        if self.backend.url.startswith("file://"):
            root = Path(self.backend.url.removeprefix("file://")) / ".pulumi" / "locks"
            leaf = name.rsplit("/", 1)[-1]
            found = [*(root / "organization" / project.name / leaf).glob("*.json"), *(root / leaf).glob("*.json")]
            if not found:
                return ""
            try:
                import json

                info = json.loads(found[0].read_text(encoding="utf-8"))
                return f"process {info.get('pid')} of {info.get('username')}@{info.get('hostname')}"
            except (OSError, ValueError, AttributeError):
                return "another process"
        if self.backend.kind == "cloud":
            for summary in self._read("Listing the stacks", self._workspace(project).list_stacks):
                if summary.name == name or summary.name.endswith(f"/{name}"):
                    return "another update" if summary.update_in_progress else ""
        return None

    @staticmethod
    def _raise_if_interrupted(running: _Running, operation: str, name: str) -> None:
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
    """A user's project by directory, checked: an absolute path to a directory with a valid Pulumi.yaml. Its
    language host is checked only by the operations that run the program (preview, up, refresh, destroy)."""
    import yaml

    raw = Path(work_dir.strip()).expanduser()
    if not raw.is_absolute():
        raise InputError(
            f"work_dir {work_dir.strip()!r} is a relative path; the server's working directory is not the user's.",
            hint="Pass the absolute path of the directory holding the project's Pulumi.yaml.",
        )
    path = raw.resolve()
    if not path.is_dir():
        raise InputError(
            f"{path} does not exist{'' if not path.exists() else ' as a directory'}.",
            hint="Pass the absolute path of the directory holding the project's Pulumi.yaml.",
        )
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
    runtime = data.get("runtime") if isinstance(data, dict) else None
    if isinstance(runtime, dict):
        runtime = runtime.get("name")
    name = data.get("name") if isinstance(data, dict) else None
    if not (isinstance(runtime, str) and runtime and isinstance(name, str) and name):
        raise InputError(f"{manifest} needs a `name` and a `runtime` (python, nodejs, go, yaml, ...).")
    return Project(name=name, work_dir=path, runtime=runtime)


def check_language_host(cli: PulumiCli, project: Project) -> None:
    """A directory project's program runs in its language host: say clearly when the CLI cannot find it."""
    if project.program is not None or not project.runtime:
        return
    host = f"pulumi-language-{project.runtime}"
    if not cli.has_plugin(host):
        raise NotConfigured(
            f"The project in {project.work_dir} is a {project.runtime} program, and its language host `{host}` is "
            f"not beside the CLI ({cli.directory}) or on PATH, so this CLI cannot run it (its stacks, outputs, "
            "config and history can still be read).",
            hint=f"Install the Pulumi CLI with its language hosts (Pulumi's installer ships `{host}`), or put "
            f"`{host}` on PATH. The suite's own sophia-ai stacks need no language host (inline program).",
        )


def _scratch_copy(source: Path, dest: Path) -> Path:
    """A copy of a project directory for one preview: Pulumi.yaml and the stack config files are copied (the
    preview may write them), everything else is a symlink (a program's sources, its virtualenv, node_modules)."""
    dest.mkdir(parents=True)
    if source.is_dir():
        for entry in source.iterdir():
            if entry.is_file() and entry.name.startswith("Pulumi.") and entry.suffix in {".yaml", ".yml"}:
                shutil.copy2(entry, dest / entry.name)
            elif entry.name != ".git":
                (dest / entry.name).symlink_to(entry)
    return dest


def _remove_empty_dirs(backend: Backend, project: Project, name: str) -> None:
    """After `stack rm` a file:// backend keeps the stack's empty lock and project dirs: remove them."""
    if not backend.url.startswith("file://"):
        return
    root = Path(backend.url.removeprefix("file://")) / ".pulumi"
    leaf = name.rsplit("/", 1)[-1]
    for path in (root / "locks" / "organization" / project.name / leaf, root / "locks" / "organization" / project.name):
        try:
            path.rmdir()  # only when empty
        except OSError:
            continue


def _prune_empty(directory: Path) -> None:
    """Remove `directory` and its subdirectories when they hold no file (a removed stack's rendered manifests)."""
    if not directory.is_dir():
        return
    for path in sorted((p for p in directory.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
        try:
            path.rmdir()
        except OSError:
            continue
    with suppress(OSError):
        directory.rmdir()


def _resource_counts(changes: Mapping[Any, Any]) -> dict[str, int]:
    return {str(k): int(v) for k, v in changes.items()}


class _OneLine(logging.Filter):
    """The inline program's gRPC server logs a full traceback at ERROR when the CLI went away mid-call, which is
    what a cancelled update does: keep it as one WARNING line."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and record.exc_info:
            error = record.exc_info[1]
            first = str(error).strip().splitlines()[0] if error is not None and str(error).strip() else ""
            record.msg = "Pulumi program server: a call failed after the CLI stopped (a cancelled update?): %s %s"
            record.args = (type(error).__name__, short(first, 200))
            record.exc_info = None
            record.exc_text = None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def _quiet_grpc_server_log() -> None:
    logger = logging.getLogger("grpc._server")
    if not any(isinstance(f, _OneLine) for f in logger.filters):
        logger.addFilter(_OneLine())
