"""The local ESC-format file evaluated like Pulumi ESC: imports, interpolation, builtins, secrets,
and what is refused offline. Real files in tmp_path, read the way the settings layer reads them.
ESC's own fixtures are in test_esc_fixtures.py."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from sophia_shared.errors import ConfigError
from sophia_shared.esc_eval import EscLoadError, evaluate_file, plain
from sophia_shared.esc_file import read_esc_file
from sophia_shared.redaction import MASK, redact
from sophia_shared.setting_specs import SettingSpec
from sophia_shared.settings import Settings

GROUPS = ("business_intelligence", "ai_intelligence", "infrastructure")
SECRET = "pw-canary-7f3a9c"  # a value that must never appear in a message


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


# -- imports ---------------------------------------------------------------------------------------


def test_imports_merge_later_over_earlier_and_own_values_over_imports(tmp_path: Path) -> None:
    write(
        tmp_path,
        "base.yaml",
        """\
values:
  business_intelligence: {snowflake-user: base-user, snowflake-role: base-role, snowflake-account: base-account}
""",
    )
    write(
        tmp_path,
        "team.yaml",
        """\
values:
  business_intelligence: {snowflake-role: team-role, snowflake-warehouse: team-wh}
""",
    )
    root = write(
        tmp_path,
        "esc.yaml",
        """\
imports: [base, team]
values:
  business_intelligence: {snowflake-account: own-account}
""",
    )

    source = read_esc_file(root, groups=GROUPS)

    assert source.values == {
        "SNOWFLAKE_USER": "base-user",  # only in the first import
        "SNOWFLAKE_ROLE": "team-role",  # the later import wins
        "SNOWFLAKE_WAREHOUSE": "team-wh",  # objects merge deeply
        "SNOWFLAKE_ACCOUNT": "own-account",  # the file's own value wins
    }


def test_unmerged_import_is_only_reachable_through_imports_reference(tmp_path: Path) -> None:
    write(tmp_path, "shared/db.yaml", "values:\n  host: db.internal\n  business_intelligence: {snowflake-user: x}\n")
    root = write(
        tmp_path,
        "esc.yaml",
        """\
imports:
  - shared/db: {merge: false}
values:
  environmentVariables:
    DATABASE_URL: postgres://${imports["shared/db"].host}/app
""",
    )

    source = read_esc_file(root, groups=GROUPS)

    assert source.values == {"DATABASE_URL": "postgres://db.internal/app"}


def test_environments_reference_reads_another_file_without_merging_it(tmp_path: Path) -> None:
    write(tmp_path, "payments/prod.yaml", "values:\n  stripe-key: {fn::secret: sk-live-1}\n  other: x\n")
    root = write(
        tmp_path,
        "esc.yaml",
        """\
values:
  ai_intelligence:
    openrouter-api-key: ${environments.payments.prod.stripe-key}
""",
    )

    evaluation = evaluate_file(root)

    assert plain(evaluation.values["ai_intelligence"]) == {"openrouter-api-key": "sk-live-1"}
    assert evaluation.values["ai_intelligence"].raw["openrouter-api-key"].secret
    assert "other" not in evaluation.values


@pytest.mark.parametrize("name", ["../outside", "/etc/passwd", "a//b", "./x"])
def test_import_names_cannot_leave_the_folder(tmp_path: Path, name: str, caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path.parent, "outside.yaml", "values:\n  environmentVariables:\n    LEAKED: yes\n")
    root = write(tmp_path, "esc.yaml", f"imports: ['{name}']\nvalues:\n  environmentVariables:\n    KEPT: ok\n")

    with caplog.at_level(logging.WARNING, logger="sophia_shared.esc_file"):
        source = read_esc_file(root, groups=())

    assert source.values == {"KEPT": "ok"}
    assert any("is not an environment name" in w and f"{root}, line 1" in w for w in warnings_of(caplog))


@pytest.mark.parametrize("link", ["file", "folder"])
def test_import_names_cannot_leave_the_folder_through_a_symbolic_link(
    tmp_path: Path, link: str, caplog: pytest.LogCaptureFixture
) -> None:
    outside = tmp_path / "outside"
    write(outside, "secrets.yaml", f"values:\n  environmentVariables:\n    LEAKED: {SECRET}\n")
    folder = tmp_path / "esc"
    folder.mkdir()
    if link == "file":
        (folder / "secrets.yaml").symlink_to(outside / "secrets.yaml")
        name = "secrets"
    else:
        (folder / "team").symlink_to(outside, target_is_directory=True)
        name = "team/secrets"
    root = write(folder, "esc.yaml", f"imports: ['{name}']\nvalues:\n  environmentVariables:\n    KEPT: ok\n")

    with caplog.at_level(logging.WARNING, logger="sophia_shared.esc_file"):
        source = read_esc_file(root, groups=())

    assert source.values == {"KEPT": "ok"}
    warnings = warnings_of(caplog)
    assert any(
        f"import {name}" in w and "a symbolic link leads outside" in w and f"{root}, line 1" in w for w in warnings
    ), warnings
    assert all(SECRET not in w for w in warnings)


def test_a_symbolic_link_that_stays_inside_the_folder_is_followed(tmp_path: Path) -> None:
    write(tmp_path, "shared/base.yaml", "values:\n  environmentVariables:\n    FROM_BASE: base\n")
    (tmp_path / "base.yaml").symlink_to(tmp_path / "shared" / "base.yaml")
    root = write(tmp_path, "esc.yaml", "imports: [base]\n")

    assert read_esc_file(root, groups=()).values == {"FROM_BASE": "base"}


def test_missing_and_cyclic_imports_are_warnings_and_the_rest_still_counts(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "a.yaml", "imports: [b]\nvalues:\n  environmentVariables:\n    FROM_A: a\n")
    write(tmp_path, "b.yaml", "imports: [a]\n")
    root = write(tmp_path, "esc.yaml", "imports: [a, absent]\nvalues:\n  environmentVariables:\n    OWN: own\n")

    with caplog.at_level(logging.WARNING, logger="sophia_shared.esc_file"):
        source = read_esc_file(root, groups=())

    assert source.values == {"FROM_A": "a", "OWN": "own"}
    warnings = warnings_of(caplog)
    assert any("cyclic import of a" in w and "b.yaml, line 1" in w for w in warnings), warnings
    assert any("environment absent not found" in w and str(tmp_path / "absent.yaml") in w for w in warnings)


def test_import_that_is_not_yaml_names_its_file_and_line_but_not_its_text(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(tmp_path, "base.yaml", f"values:\n  a: ok\n   b: [{SECRET}\n")
    root = write(tmp_path, "esc.yaml", "imports: [base]\nvalues:\n  environmentVariables:\n    OWN: own\n")

    with caplog.at_level(logging.WARNING, logger="sophia_shared.esc_file"):
        source = read_esc_file(root, groups=())

    assert source.values == {"OWN": "own"}
    warnings = warnings_of(caplog)
    assert any(f"{tmp_path / 'base.yaml'}, line 3" in w and "not valid YAML" in w for w in warnings), warnings
    assert all(SECRET not in w for w in warnings)


def test_final_value_from_an_import_cannot_be_overridden(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write(tmp_path, "policy.yaml", "values:\n  environmentVariables:\n    SOPHIA_X_ALLOW_WRITE: {fn::final: '0'}\n")
    root = write(
        tmp_path,
        "esc.yaml",
        """\
imports: [policy]
values:
  environmentVariables:
    SOPHIA_X_ALLOW_WRITE: '1'
""",
    )

    with caplog.at_level(logging.WARNING, logger="sophia_shared.esc_file"):
        source = read_esc_file(root, groups=())

    assert source.values == {"SOPHIA_X_ALLOW_WRITE": "0"}
    assert any("line 4" in w and "cannot override final value" in w for w in warnings_of(caplog))


# -- interpolation and secrets ---------------------------------------------------------------------

INTERPOLATED = f"""\
values:
  db:
    user: analyst
    password: {{fn::secret: {SECRET}}}
    host: db.internal
  environmentVariables:
    DATABASE_URL: postgres://${{db.user}}:${{db.password}}@${{db.host}}/app
    DB_HOST: ${{db.host}}
    PRICE: $${{not.a.reference}}
  business_intelligence:
    snowflake-password: ${{db.password}}
    snowflake-user: ${{db.user}}
"""


def test_interpolation_resolves_and_carries_secrecy(tmp_path: Path) -> None:
    root = write(tmp_path, "esc.yaml", INTERPOLATED)

    source = read_esc_file(root, groups=GROUPS)

    assert source.values == {
        "DATABASE_URL": f"postgres://analyst:{SECRET}@db.internal/app",
        "DB_HOST": "db.internal",
        "PRICE": "${not.a.reference}",  # $$ escapes
        "SNOWFLAKE_PASSWORD": SECRET,
        "SNOWFLAKE_USER": "analyst",
    }
    # A string built from a secret is a secret; a reference to a plain value is not.
    assert source.secrets == {"DATABASE_URL", "SNOWFLAKE_PASSWORD"}


def test_a_value_built_from_a_file_secret_is_redacted_by_the_settings(tmp_path: Path) -> None:
    root = write(tmp_path, "esc.yaml", INTERPOLATED)
    specs = (SettingSpec("DATABASE_URL", "core", False, "A database URL."),)
    settings = Settings(
        {"SOPHIA_ESC_FILE": str(root), "SOPHIA_DOTENV": str(tmp_path / ".env")}, cwd=tmp_path, specs=specs
    )

    assert settings.get("DATABASE_URL") == f"postgres://analyst:{SECRET}@db.internal/app"
    assert redact(f"connecting to postgres://analyst:{SECRET}@db.internal/app") == f"connecting to {MASK}"


def test_cycles_are_reported_by_path_and_other_values_survive(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = write(
        tmp_path,
        "esc.yaml",
        """\
values:
  environmentVariables:
    A: ${environmentVariables.B}
    B: x-${environmentVariables.A}
    C: fine
""",
    )

    with caplog.at_level(logging.WARNING, logger="sophia_shared.esc_file"):
        source = read_esc_file(root, groups=())

    assert source.values == {"C": "fine"}
    assert any("cyclic reference to environmentVariables.A" in w and "line 4" in w for w in warnings_of(caplog))


def test_reference_inside_the_same_object_is_no_cycle(tmp_path: Path) -> None:
    root = write(tmp_path, "esc.yaml", "values:\n  a:\n    p: ${a.q}\n    q: [x, '${a.q[0]}y']\n")
    assert plain(evaluate_file(root).values["a"]) == {"p": ["x", "xy"], "q": ["x", "xy"]}


def test_unknown_reference_names_the_property_and_line(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = write(tmp_path, "esc.yaml", "values:\n  environmentVariables:\n    A: ${db.pasword}\n  db: {password: x}\n")

    with caplog.at_level(logging.WARNING, logger="sophia_shared.esc_file"):
        source = read_esc_file(root, groups=())

    assert source.values == {}
    assert any('line 3: environmentVariables.A: unknown property "pasword"' in w for w in warnings_of(caplog))


# -- builtins --------------------------------------------------------------------------------------


def test_builtins_evaluate_like_esc(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        "esc.yaml",
        """\
values:
  hosts: [a.example, b.example]
  joined: {fn::join: [",", "${hosts}"]}
  split: {fn::split: [",", "${joined}"]}
  concat: {fn::concat: [["${hosts[0]}"], [1, true]]}
  config: {retries: 3, name: svc, tags: [x]}
  json: {fn::toJSON: "${config}"}
  back: {fn::fromJSON: "${json}"}
  string: {fn::toString: "${config}"}
  number: {fn::toString: 42}
  b64: {fn::toBase64: "${joined}"}
  unb64: {fn::fromBase64: "${b64}"}
""",
    )

    values = {key: plain(value) for key, value in evaluate_file(root).values.items()}

    assert values["joined"] == "a.example,b.example"
    assert values["split"] == ["a.example", "b.example"]
    assert values["concat"] == ["a.example", 1, True]
    assert values["json"] == '{"name":"svc","retries":3,"tags":["x"]}'
    assert values["back"] == {"retries": 3, "name": "svc", "tags": ["x"]}
    assert values["string"] == '"name"="svc","retries"="3","tags"="\\"x\\""'
    assert values["number"] == "42"
    assert values["b64"] == "YS5leGFtcGxlLGIuZXhhbXBsZQ=="
    assert values["unb64"] == "a.example,b.example"


def test_secret_json_unpacked_into_a_group_keeps_every_key_secret(tmp_path: Path) -> None:
    payload = '{"openrouter-api-key": "sk-or-1", "portkey-api-key": "pk-2"}'
    root = write(tmp_path, "esc.yaml", f"values:\n  ai_intelligence:\n    fn::fromJSON: {{fn::secret: '{payload}'}}\n")

    source = read_esc_file(root, groups=GROUPS)

    assert source.values == {"OPENROUTER_API_KEY": "sk-or-1", "PORTKEY_API_KEY": "pk-2"}
    assert source.secrets == {"OPENROUTER_API_KEY", "PORTKEY_API_KEY"}


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ('{fn::fromJSON: {fn::secret: \'{"broken": ' + SECRET + "'}}", "fn::fromJSON is not valid JSON"),
        ("{fn::fromBase64: {fn::secret: '" + SECRET + "!'}}", "not base64-encoded UTF-8 text"),
        ("{fn::join: [',', {fn::secret: '" + SECRET + "'}]}", "expected array, got string"),
        ("{fn::secret: [" + SECRET + "]}", "secret values must be string literals"),
        ("{fn::split: [',']}", "must be a two-valued list"),
    ],
)
def test_bad_builtin_arguments_say_why_without_the_value(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, expression: str, problem: str
) -> None:
    root = write(tmp_path, "esc.yaml", f"values:\n  environmentVariables:\n    BAD: {expression}\n    OK: fine\n")

    with caplog.at_level(logging.WARNING, logger="sophia_shared.esc_file"):
        source = read_esc_file(root, groups=())

    assert source.values == {"OK": "fine"}
    warnings = warnings_of(caplog)
    assert any(problem in w and "environmentVariables.BAD" in w and "line 3" in w for w in warnings), warnings
    assert all(SECRET not in w for w in warnings)


# -- what needs Pulumi Cloud ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("{fn::open::aws-secrets: {region: us-east-1}}", "fn::open::aws-secrets, a provider only Pulumi ESC can run"),
        ("{fn::open: {provider: vault, inputs: {}}}", "fn::open::vault, a provider only Pulumi ESC can run"),
        ("{fn::rotate::aws-iam: {inputs: {}, state: {}}}", "fn::rotate::aws-iam, which only Pulumi ESC evaluates"),
        ("{fn::secret: {ciphertext: ZXNjeAAAAAHo9e705fKyKo30VQ==}}", "only Pulumi ESC can decrypt"),
    ],
)
def test_what_needs_pulumi_cloud_is_refused_and_the_rest_is_read(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, expression: str, problem: str
) -> None:
    root = write(
        tmp_path,
        "esc.yaml",
        f"""\
values:
  infrastructure:
    lambda-api-key: {expression}
    docker-user: bot
  derived: ${{infrastructure.lambda-api-key}}-x
""",
    )

    with caplog.at_level(logging.WARNING, logger="sophia_shared.esc_file"):
        source = read_esc_file(root, groups=GROUPS)

    assert source.values == {"DOCKER_USER": "bot"}
    warnings = warnings_of(caplog)
    # One warning, at the value itself: what depends on it is left out quietly, as ESC does.
    assert len(warnings) == 1, warnings
    assert problem in warnings[0] and "line 3" in warnings[0] and "infrastructure.lambda-api-key" in warnings[0]
    assert "SOPHIA_ESC_ENV" in warnings[0]
    assert "ZXNjeA" not in warnings[0]


def test_a_provider_in_the_file_does_not_stop_the_settings(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = write(
        tmp_path,
        "esc.yaml",
        """\
values:
  environmentVariables:
    TOKEN: {fn::open::vault: {path: x}}
    REGION: eu-west-1
""",
    )
    specs = (SettingSpec("REGION", "core", False, "A region."), SettingSpec("TOKEN", "core", True, "A token."))
    with caplog.at_level(logging.WARNING):
        settings = Settings(
            {"SOPHIA_ESC_FILE": str(root), "SOPHIA_DOTENV": str(tmp_path / ".env")}, cwd=tmp_path, specs=specs
        )
        assert settings.get("REGION") == "eu-west-1"
        assert settings.get("TOKEN") is None
    assert any("fn::open::vault" in w for w in warnings_of(caplog))


# -- the file's own shape ------------------------------------------------------------------------


def test_scalars_are_read_as_esc_reads_them(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        "esc.yaml",
        """\
values:
  environmentVariables: {ON: yes, FLAG: true, HEX: 0x10, DAY: 2026-11-30, NOTHING: null, PORT: 5432}
""",
    )

    source = read_esc_file(root, groups=())

    # YAML 1.2 as ESC reads it: `yes` and dates stay text; a null is no setting.
    assert source.values == {"ON": "yes", "FLAG": "true", "HEX": "16", "DAY": "2026-11-30", "PORT": "5432"}


def test_duplicate_key_keeps_the_first_and_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    root = write(tmp_path, "esc.yaml", "values:\n  environmentVariables:\n    A: first\n    A: second\n")

    with caplog.at_level(logging.WARNING, logger="sophia_shared.esc_file"):
        source = read_esc_file(root, groups=())

    assert source.values == {"A": "first"}
    assert any("line 4" in w and 'duplicate key "A"' in w for w in warnings_of(caplog))


def test_unreadable_root_file_is_a_config_error(tmp_path: Path) -> None:
    root = tmp_path / "esc.yaml"
    root.write_bytes(b"values:\n  a: \xff\xfe\n")

    with pytest.raises(ConfigError, match="cannot be read"):
        read_esc_file(root, groups=())


def test_evaluate_file_raises_load_error_for_a_broken_root(tmp_path: Path) -> None:
    root = write(tmp_path, "esc.yaml", f"values:\n  a: [{SECRET}\n")

    with pytest.raises(EscLoadError) as caught:
        evaluate_file(root)

    assert caught.value.kind == "yaml" and caught.value.file == root
    assert SECRET not in str(caught.value) and SECRET not in caught.value.problem


def test_an_alias_bomb_is_refused_not_expanded(tmp_path: Path) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{n}: &a{n} [*a{n - 1}, *a{n - 1}, *a{n - 1}, *a{n - 1}, *a{n - 1}]" for n in range(1, 9)]
    root = write(tmp_path, "esc.yaml", "values:\n" + "\n".join(f"  {line}" for line in lines) + "\n")

    with pytest.raises(ConfigError, match="has more than 200000 values") as raised:
        read_esc_file(root, groups=())
    message = raised.value.agent_message()
    assert "Remove the YAML aliases" in message
    assert "Use the ESC layout" not in message  # the layout is fine; the aliases are the problem


def test_values_nested_too_deeply_are_a_config_error_telling_to_flatten(tmp_path: Path) -> None:
    root = write(tmp_path, "esc.yaml", "values:\n  a: " + "[" * 5000 + "]" * 5000 + "\n")

    with pytest.raises(ConfigError, match="nests values too deeply") as raised:
        read_esc_file(root, groups=())
    message = raised.value.agent_message()
    assert "Flatten the values" in message
    assert "Use the ESC layout" not in message


def test_a_very_long_reference_chain_is_a_config_error_not_a_crash(tmp_path: Path) -> None:
    chain = "\n".join(f"  v{n}: ${{v{n + 1}}}" for n in range(3000))
    root = write(tmp_path, "esc.yaml", f"values:\n{chain}\n  v3000: end\n")

    with pytest.raises(ConfigError, match="too deeply") as raised:
        read_esc_file(root, groups=())
    assert "Shorten the chain of ${…} references" in raised.value.agent_message()
