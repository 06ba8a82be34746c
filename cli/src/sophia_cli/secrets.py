"""`sophia secrets`: export flat secrets into Pulumi ESC, check what each server has, and watch rotations.

    sophia secrets export --from-json - [ORG/PROJECT/ENV [--apply] | --out FILE]
    sophia secrets check
    sophia secrets rotate-check [ORG/PROJECT/ENV] [--wait SECONDS]

No command prints a secret value: diffs and reports name keys only, and every value read is
registered with the redactor before anything is printed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sophia_shared.files import write_atomically
from sophia_shared.redaction import redact


def register(sub: Any) -> None:
    parser = sub.add_parser("secrets", help="export secrets into Pulumi ESC, check them, watch rotations")
    commands = parser.add_subparsers(dest="secrets_command", required=True)

    p = commands.add_parser(
        "export",
        help="flat secrets into the grouped ESC layout (merged; a dry run without --apply)",
        description=(
            "Group flat variables by vendor prefix into values.<server>.<key> as fn::secret and merge them "
            "into an ESC environment (or a YAML file). Prints key names only."
        ),
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--from-json", metavar="FILE", help="a JSON object NAME: value (`-` reads stdin)")
    source.add_argument("--from-dotenv", metavar="FILE", type=Path, help="a .env file")
    source.add_argument("--from-env", metavar="PREFIX", nargs="+", help="this process's variables with these prefixes")
    p.add_argument("env", nargs="?", metavar="ORG/PROJECT/ENV", help="the ESC environment to merge into")
    p.add_argument("--apply", action="store_true", help="write to the ESC environment (default: dry run)")
    p.add_argument("--out", metavar="FILE", type=Path, help="write the definition to this YAML file instead")
    p.set_defaults(handler=run_export)

    p = commands.add_parser("check", help="per server: which credentials are present, from where, which are missing")
    p.set_defaults(handler=run_check)

    p = commands.add_parser("rotate-check", help="open the ESC environment and report which keys changed")
    p.add_argument("env", nargs="?", metavar="ORG/PROJECT/ENV", help="default: SOPHIA_ESC_ENV")
    p.add_argument(
        "--wait",
        type=float,
        metavar="SECONDS",
        help="open twice, this many seconds apart (default: compare with the last rotate-check)",
    )
    p.set_defaults(handler=run_rotate_check)


def _say(line: str = "") -> None:
    print(redact(line))


# -- export ------------------------------------------------------------------------------------


def run_export(args: argparse.Namespace) -> int:
    import os

    from sophia_shared.errors import InputError

    from . import secrets_export as ex

    if args.apply and not args.env:
        raise InputError("--apply needs the ESC environment to write to: ORG/PROJECT/ENV.")
    if args.out is not None and args.env:
        raise InputError("Give either ORG/PROJECT/ENV or --out FILE, not both.")
    target = ex.out_target(args.out) if args.out is not None else None  # before any input is read
    if args.from_json is not None:
        if args.from_json == "-":
            where = "the JSON on stdin"
            text = ex.read_stream(sys.stdin, where)
        else:
            where = f"the JSON file {args.from_json}"
            text = ex.read_file(Path(args.from_json), where)
        variables = ex.variables_from_json(text, where)
    elif args.from_dotenv is not None:
        variables = ex.variables_from_dotenv(args.from_dotenv)
    else:
        variables = ex.variables_from_environment(args.from_env, os.environ)
    plan = ex.plan_export(variables)
    for line in ex.input_lines(plan):
        _say(line)
    if not plan.placed:
        raise InputError(f"No variable matches a group, so there is nothing to export. {ex.NOTHING_WRITTEN}")

    if target is not None:
        return _export_to_file(args.out, target, plan)
    if not args.env:
        _say("Would export (give ORG/PROJECT/ENV or --out FILE to write):")
        for item in plan.placed:
            _say(f"  {item.path}  ({item.variable})")
        return 0
    return _export_to_esc(args.env, plan, apply=args.apply)


def _export_to_file(shown: Path, target: Path, plan: Any) -> int:
    from sophia_shared.errors import InputError

    from . import secrets_export as ex

    before: str | None = None
    if target.exists():
        before = ex.read_file(target, f"the existing definition {shown}")
    existing = ex.parse_definition(before, str(shown))
    result = ex.merge(existing, plan, str(shown))
    text = ex.render_definition(result.definition, like=before)
    ex.check_kept(before, text, result, plan, str(shown))
    _say(f"Definition {shown}:")
    for line in ex.diff_lines(result, plan, layout=ex.layout_changes(before)):
        _say(line)
    try:
        write_atomically(target, text)  # owner-only
    except OSError as exc:
        raise InputError(f"Cannot write --out {shown}: {exc.strerror or exc}. {ex.NOTHING_WRITTEN}") from None
    _say(f"Wrote {target} (owner-only permissions; it holds the values in plain text).")
    return 0


def _export_to_esc(ref: str, plan: Any, *, apply: bool) -> int:
    from sophia_shared import esc_remote
    from sophia_shared.errors import ConfigError
    from sophia_shared.settings import Settings

    from . import secrets_export as ex

    settings = Settings()
    token = settings.get("PULUMI_ACCESS_TOKEN")
    if not token:
        raise ConfigError(
            f"PULUMI_ACCESS_TOKEN is not set, so {ref} cannot be read or written. {ex.NOTHING_WRITTEN}",
            hint="In a workflow, log in with pulumi/auth-actions (OIDC); by hand, export a Pulumi access token.",
        )
    backend = settings.get("PULUMI_BACKEND_URL")
    found = esc_remote.read_definition(ref, token=token, backend_url=backend)
    before = found.text if found else None
    existing = ex.parse_definition(before, ref)  # refuses an unusable definition before anything else
    current: dict[str, Any] | None = None
    if found is not None:
        try:  # the decrypted values tell which keys really change; an encrypted definition cannot
            current = dict(esc_remote.open_environment(ref, token=token, backend_url=backend).document.values)
        except ConfigError as exc:
            _say(f"(could not open {ref} to compare values, so every key present counts as changed: {exc.message})")
    result = ex.merge(existing, plan, ref, current_values=current)
    text = ex.render_definition(result.definition, like=before)
    ex.check_kept(before, text, result, plan, ref)
    _say(f"{'New' if found is None else 'Existing'} ESC environment {ref}:")
    for line in ex.diff_lines(result, plan, layout=ex.layout_changes(before)):
        _say(line)
    if not apply:
        _say(f"Dry run: nothing written. Add --apply to write {ref}.")
        return 0
    if not result.has_changes and found is not None:
        _say("Already up to date: nothing written.")
        return 0
    if found is None:
        esc_remote.create_environment(ref, token=token, backend_url=backend)
        found = esc_remote.read_definition(ref, token=token, backend_url=backend)
        if found is None:
            raise ConfigError(f"Pulumi ESC created {ref} but cannot read it back. {ex.NOTHING_WRITTEN}")
        _say(f"Created {ref}.")
    esc_remote.update_definition(ref, text, etag=found.etag, token=token, backend_url=backend)
    _say(f"Applied to {ref}: {len(result.added)} added, {len(result.changed)} changed.")
    return 0


# -- check -------------------------------------------------------------------------------------


def run_check(args: argparse.Namespace) -> int:
    from sophia_shared.registry import all_setting_specs
    from sophia_shared.settings import Settings

    from .secrets_check import check_lines

    ok, lines = check_lines(Settings(specs=all_setting_specs()))
    for line in lines:
        _say(line)
    return 0 if ok else 1


# -- rotate-check ------------------------------------------------------------------------------


def run_rotate_check(args: argparse.Namespace) -> int:
    import time

    from sophia_shared import esc_remote
    from sophia_shared.errors import ConfigError
    from sophia_shared.settings import Settings

    from .secrets_rotation import changed_keys, fingerprints, load_last, save_last

    settings = Settings()
    ref = args.env or settings.esc_ref
    if not ref:
        raise ConfigError("No ESC environment: give ORG/PROJECT/ENV or set SOPHIA_ESC_ENV.")
    token = settings.get("PULUMI_ACCESS_TOKEN")
    if not token:
        raise ConfigError(f"PULUMI_ACCESS_TOKEN is not set, so {ref} cannot be opened.")
    backend = settings.get("PULUMI_BACKEND_URL")

    def open_now() -> dict[str, str]:
        document = esc_remote.open_environment(ref, token=token, backend_url=backend).document
        return fingerprints(document)

    before: dict[str, str] | None
    if args.wait is not None:
        before = open_now()
        time.sleep(max(0.0, args.wait))
        label = f"between two openings {args.wait:g} s apart"
    else:
        before = load_last(ref)
        label = "since the last rotate-check"
    after = open_now()
    if args.wait is None:
        save_last(ref, after)
        if before is None:
            _say(f"{ref}: first rotate-check; {len(after)} value(s) recorded. Run it again after a rotation.")
            return 0
    assert before is not None
    changes = changed_keys(before, after)
    if not any(changes.values()):
        _say(f"{ref}: no value changed {label} ({len(after)} value(s)).")
        return 0
    _say(f"{ref}: changed {label}:")
    for kind, names in changes.items():
        for name in names:
            _say(f"  {kind:<8} {name}")
    _say("Running servers pick rotated values up on their next vendor 401/403 (ESC is re-opened once), no restart.")
    return 0
