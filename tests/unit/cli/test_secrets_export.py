"""`sophia secrets export`: the grouping table, bad input, merging into a definition, and no value in any output."""

from __future__ import annotations

import io
import json
import stat
from pathlib import Path

import pytest
import yaml

import sophia_cli.main as cli_main
from sophia_cli import secrets_export as ex
from sophia_shared.esc_file import read_esc_file
from sophia_shared.registry import registered_servers
from sophia_shared.secret_groups import GROUPS, esc_key, group_of, group_variable, never_exported

SEED_TABLE = {
    "ai_intelligence": ("ARIZE_", "OPENROUTER_", "PORTKEY_", "HUGGINGFACE_", "TOGETHER_"),
    "data_intelligence": ("APIFY_", "PHANTOM_", "TWINGLY_", "TAVILY_", "ZENROWS_"),
    "infrastructure": ("LAMBDA_", "DOCKER_", "PULUMI_"),
    "business_intelligence": ("SNOWFLAKE_", "PINECONE_"),
}
CANARIES = {
    "TAVILY_API_KEY": "tvly-canary-7f3a9c1e55",
    "SNOWFLAKE_PASSWORD": "sf-canary-pw-82b0d4e6",
    "OPENROUTER_API_KEY": "sk-or-canary-19ce44aa",
    "GITHUB_TOKEN": "ghs_canary_runner_token_0001",
    "UNRELATED_SECRET": "unrelated-canary-5555",
}


def sophia(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = ""
) -> tuple[int, str]:
    """Run the CLI in process (with the secrets command registered); exit code and everything printed."""
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", tuple(dict.fromkeys((*cli_main.COMMAND_MODULES, "secrets"))))
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = cli_main.main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


# -- the table ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("group", "prefixes"), SEED_TABLE.items())
def test_the_seed_grouping_places_each_prefix_in_its_group(group: str, prefixes: tuple[str, ...]) -> None:
    for prefix in prefixes:
        assert group_of(f"{prefix}API_KEY") == group
        assert group_of(f"{prefix.lower()}api-key") == group


def test_keys_are_name_lower_hyphen_and_read_back_as_the_same_variable() -> None:
    assert esc_key("TAVILY_API_KEY") == "tavily-api-key"
    assert esc_key("phantom_buster-api_key") == "phantom-buster-api-key"
    for name in ("TAVILY_API_KEY", "SNOWFLAKE_PRIVATE_KEY_PASSPHRASE", "LAMBDA_LABS_API_KEY"):
        assert group_variable(esc_key(name)) == name


def test_every_declared_secret_is_exported_to_the_group_its_server_reads() -> None:
    servers = {server.spec.key for server in registered_servers()}
    assert set(GROUPS) == servers  # the table's groups are exactly the server keys ESC groups use
    for server in registered_servers():
        for spec in server.spec.settings:
            if spec.secret:
                assert group_of(spec.name) == server.spec.key, spec.name


@pytest.mark.parametrize("name", ["GITHUB_TOKEN", "github_token", "GITHUB_SHA", "ACTIONS_RUNTIME_TOKEN", "RUNNER_TEMP"])
def test_ci_credentials_are_never_exported(name: str) -> None:
    assert never_exported(name)
    plan = ex.plan_export({ex.normalize_name(name): "x" * 12})
    assert not plan.placed and plan.withheld == (ex.normalize_name(name),)


def test_a_value_in_another_servers_group_is_not_read_there() -> None:
    """What export writes is what is read: SNOWFLAKE_* counts only in business_intelligence."""
    from sophia_shared.esc_document import EscDocument, source_values

    document = EscDocument(
        {"ai_intelligence": {"snowflake-password": "misplaced", "openrouter-api-key": "sk-or-1"}},
    )
    values = source_values("esc:x", document, groups=("ai_intelligence", "business_intelligence")).values
    assert values == {"OPENROUTER_API_KEY": "sk-or-1"}


# -- bad input ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"TAVILY_API_KEY": "tvly-1", ', "is not valid JSON"),
        ('["TAVILY_API_KEY"]', "not an object of NAME: value"),
        ('{"FOO_BAR": "aaaa1", "foo-bar": "bbbb2"}', "FOO_BAR and foo-bar are the same variable (FOO_BAR)"),
        ('{"TAVILY_API_KEY": "a1", "TAVILY_API_KEY": "b2"}', "TAVILY_API_KEY is set twice."),
        ('{"TAVILY_API_KEY": ""}', "TAVILY_API_KEY is empty"),
        ('{"TAVILY_API_KEY": "   "}', "TAVILY_API_KEY is empty"),
        ('{"TAVILY_API_KEY": 12345}', "TAVILY_API_KEY is a JSON number, not a string"),
        ('{"TAVILY_API_KEY": {"nested": "x"}}', "TAVILY_API_KEY is a JSON object, not a string"),
        ('{"TAVILY_API_KEY": null}', "TAVILY_API_KEY has no value"),
        ('{"BAD NAME": "xxxx"}', "'BAD NAME' is not a variable name"),
    ],
)
def test_bad_json_is_a_clear_error_and_nothing_is_written(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "esc.yaml"
    code, said = sophia(capsys, monkeypatch, "secrets", "export", "--from-json", "-", "--out", str(out), stdin=text)
    assert code == 2
    assert message in said
    assert "Nothing was written." in said
    assert not out.exists()


def test_huge_inputs_are_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "esc.yaml"
    huge = json.dumps({"TAVILY_API_KEY": "x" * (ex.MAX_INPUT_BYTES + 10)})
    code, said = sophia(capsys, monkeypatch, "secrets", "export", "--from-json", "-", "--out", str(out), stdin=huge)
    assert code == 2 and "the most accepted is 1,000,000" in said and not out.exists()
    one_long = json.dumps({"TAVILY_API_KEY": "y" * (ex.MAX_VALUE_BYTES + 1)})
    code, said = sophia(capsys, monkeypatch, "secrets", "export", "--from-json", "-", "--out", str(out), stdin=one_long)
    assert code == 2 and "TAVILY_API_KEY is longer than 65,536 bytes" in said and not out.exists()
    many = json.dumps({f"TAVILY_K{i}": f"value-{i}" for i in range(ex.MAX_VARIABLES + 1)})
    code, said = sophia(capsys, monkeypatch, "secrets", "export", "--from-json", "-", "--out", str(out), stdin=many)
    assert code == 2 and f"{ex.MAX_VARIABLES + 1} variables (at most {ex.MAX_VARIABLES})" in said and not out.exists()


def test_a_dotenv_with_a_bare_name_or_a_duplicate_is_refused(tmp_path: Path) -> None:
    bare = tmp_path / "bare.env"
    bare.write_text("TAVILY_API_KEY=tvly-aaaa\nZENROWS_API_KEY\n")
    with pytest.raises(ex.InputError, match="ZENROWS_API_KEY has no value"):
        ex.variables_from_dotenv(bare)
    twice = tmp_path / "twice.env"
    twice.write_text("TAVILY_API_KEY=tvly-aaaa\ntavily-api-key=tvly-bbbb\n")
    with pytest.raises(ex.InputError, match="same variable"):
        ex.variables_from_dotenv(twice)


def test_from_env_takes_only_the_given_prefixes() -> None:
    environ = {"TAVILY_API_KEY": "tvly-1234", "SNOWFLAKE_USER": "ANALYST", "HOME": "/root"}
    assert ex.variables_from_environment(["TAVILY_"], environ) == {"TAVILY_API_KEY": "tvly-1234"}


# -- merging -----------------------------------------------------------------------------------

EXISTING = """\
imports:
  - shared/base
values:
  environmentVariables:
    DATABASE_URL: ${database.url}
  pulumiConfig:
    aws:region: us-east-1
  data_intelligence:
    tavily-api-key:
      fn::secret: tvly-old-0000
    hand-added: keep-me
  custom_group:
    anything: [1, 2]
"""


def test_merge_keeps_every_user_key_and_reports_names_only() -> None:
    plan = ex.plan_export({"TAVILY_API_KEY": "tvly-new-1111", "ZENROWS_API_KEY": "zr-2222", "UNKNOWN_X": "zzzz"})
    result = ex.merge(ex.parse_definition(EXISTING, "acme/sophia/dev"), plan, "acme/sophia/dev")
    merged = result.definition
    assert merged["imports"] == ["shared/base"]
    assert merged["values"]["environmentVariables"] == {"DATABASE_URL": "${database.url}"}
    assert merged["values"]["pulumiConfig"] == {"aws:region": "us-east-1"}
    assert merged["values"]["custom_group"] == {"anything": [1, 2]}
    assert merged["values"]["data_intelligence"] == {
        "tavily-api-key": {"fn::secret": "tvly-new-1111"},
        "hand-added": "keep-me",
        "zenrows-api-key": {"fn::secret": "zr-2222"},
    }
    assert result.added == ("data_intelligence.zenrows-api-key",)
    assert result.changed == ("data_intelligence.tavily-api-key",)
    assert plan.unmatched == ("UNKNOWN_X",)
    said = "\n".join(ex.diff_lines(result, plan))
    assert "tvly-new-1111" not in said and "tvly-old-0000" not in said
    assert "1 added, 1 changed, 0 unchanged; 4 other value(s) kept" in said


def test_an_unchanged_value_keeps_its_definition_node() -> None:
    encrypted = {"values": {"data_intelligence": {"tavily-api-key": {"fn::secret": {"ciphertext": "ZXNjeAAAAA=="}}}}}
    plan = ex.plan_export({"TAVILY_API_KEY": "tvly-same-3333"})
    opened = {"data_intelligence": {"tavily-api-key": "tvly-same-3333"}}
    result = ex.merge(encrypted, plan, "x", current_values=opened)
    assert result.unchanged == ("data_intelligence.tavily-api-key",) and not result.has_changes
    assert result.definition == encrypted  # the ciphertext stays: no needless new revision
    assert ex.merge(encrypted, plan, "x").changed == ("data_intelligence.tavily-api-key",)  # cannot compare


def test_a_group_that_is_not_a_mapping_is_refused() -> None:
    plan = ex.plan_export({"TAVILY_API_KEY": "tvly-4444"})
    with pytest.raises(ex.InputError, match=r"`values.data_intelligence` in the definition of x is not a mapping"):
        ex.merge({"values": {"data_intelligence": "oops"}}, plan, "x")


# -- --out FILE --------------------------------------------------------------------------------


def test_out_file_is_private_merged_and_reads_back_as_the_same_settings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "esc.yaml"
    out.write_text("values:\n  environmentVariables:\n    KEEP_ME: yes-please\n")
    code, said = sophia(
        capsys, monkeypatch, "secrets", "export", "--from-json", "-", "--out", str(out), stdin=json.dumps(CANARIES)
    )
    assert code == 0, said
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    written = yaml.safe_load(out.read_text())
    assert written["values"]["environmentVariables"] == {"KEEP_ME": "yes-please"}
    assert written["values"]["business_intelligence"] == {
        "snowflake-password": {"fn::secret": CANARIES["SNOWFLAKE_PASSWORD"]}
    }
    assert "github" not in out.read_text().lower() and "unrelated" not in out.read_text().lower()
    # The settings reader gets back exactly what was exported, as secrets.
    read = read_esc_file(out, groups=GROUPS)
    exported = {k: v for k, v in CANARIES.items() if group_of(k)}
    assert {k: read.values[k] for k in exported} == exported
    assert set(exported) <= read.secrets
    assert "Left out (no group matches): UNRELATED_SECRET" in said
    assert "Never exported (CI credentials): GITHUB_TOKEN" in said
    for value in CANARIES.values():
        assert value not in said


def test_without_a_target_it_lists_what_it_would_export_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, said = sophia(capsys, monkeypatch, "secrets", "export", "--from-json", "-", stdin=json.dumps(CANARIES))
    assert code == 0
    assert "data_intelligence.tavily-api-key  (TAVILY_API_KEY)" in said
    assert list(tmp_path.iterdir()) == []
    for value in CANARIES.values():
        assert value not in said


def test_apply_without_an_environment_is_refused(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, said = sophia(capsys, monkeypatch, "secrets", "export", "--from-json", "-", "--apply", stdin="{}")
    assert code == 2 and "--apply needs the ESC environment" in said


# -- round-trip merge: what is not exported stays as written -----------------------------------

HAND_WRITTEN = """\
# Team environment: edited by hand, keep these comments
imports:
    - shared/base   # the shared base
values:
    flags:
        country: NO          # Norway, a string in YAML 1.2
        debug: on
        mode: 0755
        quoted: 'single'
        version: 1.10
        base: &base {region: eu-north-1}
        copy: *base
        unused: &spare [a, b]
    data_intelligence:
        tavily-api-key: {fn::secret: tvly-old-0000}   # rotated weekly
        apify-api-token: {fn::secret: apify-same-1234}
"""


def export_to(
    out: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, variables: dict[str, str]
) -> tuple[int, str]:
    return sophia(
        capsys, monkeypatch, "secrets", "export", "--from-json", "-", "--out", str(out), stdin=json.dumps(variables)
    )


def test_out_edits_the_definition_in_place_keeping_everything_else_byte_for_byte(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sophia_shared.esc_eval import evaluate_file, plain

    out = tmp_path / "esc.yaml"
    out.write_text(HAND_WRITTEN)
    variables = {"TAVILY_API_KEY": "tvly-cnry-9d1", "APIFY_API_TOKEN": "apify-same-1234", "ZENROWS_API_KEY": "zr-c1"}
    code, said = export_to(out, capsys, monkeypatch, variables)
    assert code == 0, said
    expected = HAND_WRITTEN.replace("{fn::secret: tvly-old-0000}", "{fn::secret: tvly-cnry-9d1}") + (
        "        zenrows-api-key:\n            fn::secret: zr-c1\n"
    )
    assert out.read_text() == expected  # comments, quoting, anchors, flow style, indentation: all kept
    assert "1 added, 1 changed, 1 unchanged; 8 other value(s) kept as they are" in said
    assert "new spacing" not in said  # nothing else was re-laid out
    # Read as ESC reads it (YAML 1.2 core): the hand-written scalars keep their meaning.
    flags = plain(evaluate_file(out).values["flags"])
    assert flags["country"] == "NO" and flags["debug"] == "on" and flags["mode"] == 755
    assert flags["copy"] == {"region": "eu-north-1"} and flags["unused"] == ["a", "b"]
    for value in (*variables.values(), "tvly-old-0000"):
        assert value not in said


def test_an_export_that_changes_nothing_leaves_the_file_text_as_it_was(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "esc.yaml"
    out.write_text(HAND_WRITTEN)
    code, said = export_to(out, capsys, monkeypatch, {"APIFY_API_TOKEN": "apify-same-1234"})
    assert code == 0, said
    assert out.read_text() == HAND_WRITTEN
    assert "0 added, 0 changed, 1 unchanged" in said and "apify-same-1234" not in said


def test_a_layout_the_round_trip_cannot_keep_is_said_and_values_still_read_the_same(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "esc.yaml"
    out.write_text("values:\n  keep:   {a:   1}\n  other: x\n")
    code, said = export_to(out, capsys, monkeypatch, {"TAVILY_API_KEY": "tvly-canary-lay-1"})
    assert code == 0, said
    assert "line(s) of it get new spacing or indentation, with the same values" in said
    written = yaml.safe_load(out.read_text())
    assert written["values"]["keep"] == {"a": 1} and written["values"]["other"] == "x"
    assert "tvly-canary-lay-1" not in said


def alias_bomb(levels: int = 9) -> str:
    keys = [f"k{i}" for i in range(10)]
    lines = ["values:", "  a0: &a0 {" + ", ".join(f"{k}: x" for k in keys) + "}"]
    for level in range(1, levels):
        lines.append(f"  a{level}: &a{level} {{" + ", ".join(f"{k}: *a{level - 1}" for k in keys) + "}")
    return "\n".join(lines) + "\n"


def test_an_alias_bomb_definition_is_refused_quickly_and_left_alone(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import time

    out = tmp_path / "esc.yaml"
    bomb = alias_bomb()
    assert len(bomb) < 1000  # under 1 kB, ~10^9 values once expanded
    out.write_text(bomb)
    started = time.monotonic()
    code, said = export_to(out, capsys, monkeypatch, {"TAVILY_API_KEY": "tvly-canary-bomb-1"})
    assert time.monotonic() - started < 10
    assert code == 2
    assert f"has more than {ex.MAX_DEFINITION_NODES:,} values once its YAML aliases are expanded" in said
    assert "Nothing was written." in said and "Definition" not in said
    assert out.read_text() == bomb
    assert "tvly-canary-bomb-1" not in said
    with pytest.raises(ex.InputError, match="YAML aliases"):  # merge() caps its own walk too
        ex.merge(yaml.safe_load(bomb), ex.plan_export({"TAVILY_API_KEY": "tvly-x-1"}), "x")


@pytest.mark.parametrize("kind", ["directory", "missing folder", "missing folder via a link"])
def test_an_unusable_out_path_is_refused_before_anything_is_read(
    kind: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    if kind == "directory":
        out = tmp_path / "adir"
        out.mkdir()
    elif kind == "missing folder":
        out = tmp_path / "nowhere" / "esc.yaml"
    else:
        out = tmp_path / "link.yaml"
        out.symlink_to(tmp_path / "gone" / "esc.yaml")
    code, said = export_to(out, capsys, monkeypatch, {"TAVILY_API_KEY": "tvly-canary-dir-1"})
    assert code == 2, said
    message = said.splitlines()[0]
    assert f"--out {out}" in message and message.endswith("Nothing was written.")
    assert "server" not in said and "Definition" not in said and "Errno" not in said
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        {"directory": ["adir"], "missing folder": [], "missing folder via a link": ["link.yaml"]}[kind]
    )
    assert "tvly-canary-dir-1" not in said


def test_out_onto_a_symlink_writes_the_file_it_points_to_and_keeps_the_link(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = tmp_path / "config" / "esc.yaml"
    real.parent.mkdir()
    real.write_text("values:\n  other: kept\n")
    link = tmp_path / "esc-link.yaml"
    link.symlink_to(real)
    code, said = export_to(link, capsys, monkeypatch, {"TAVILY_API_KEY": "tvly-canary-link-1"})
    assert code == 0, said
    assert link.is_symlink() and link.resolve() == real
    assert yaml.safe_load(real.read_text())["values"] == {
        "other": "kept",
        "data_intelligence": {"tavily-api-key": {"fn::secret": "tvly-canary-link-1"}},
    }
    assert stat.S_IMODE(real.stat().st_mode) == 0o600
    assert sorted(p.name for p in real.parent.iterdir()) == ["esc.yaml"]  # no temporary left behind
    assert "tvly-canary-link-1" not in said


# -- input messages ----------------------------------------------------------------------------


def test_a_dotenv_names_the_lines_of_a_variable_set_twice(tmp_path: Path) -> None:
    twice = tmp_path / "twice.env"
    twice.write_text("\n\nTAVILY_API_KEY=tvly-aaaa\n# a comment\nTAVILY_API_KEY=tvly-bbbb\nfoo-bar=1\nFOO_BAR=2\n")
    with pytest.raises(ex.InputError) as caught:
        ex.variables_from_dotenv(twice)
    message = caught.value.message
    assert "TAVILY_API_KEY is set twice (lines 3 and 5)" in message
    assert "foo-bar and FOO_BAR are the same variable (FOO_BAR) after normalisation (lines 6 and 7)" in message
    assert "tvly-aaaa" not in message and "tvly-bbbb" not in message


def test_a_dotenv_error_names_its_own_line_not_an_earlier_identical_text(tmp_path: Path) -> None:
    bad = tmp_path / "bad.env"
    bad.write_text("TAVILY_API_KEY=oops bad\n\noops bad\n")
    with pytest.raises(ex.InputError, match=r"line 3, is not NAME=value\. Nothing was written\."):
        ex.variables_from_dotenv(bad)


def test_oversized_stdin_is_refused_without_claiming_a_wrong_size(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "esc.yaml"
    huge = json.dumps({"TAVILY_API_KEY": "é" * ex.MAX_INPUT_BYTES})  # 2 MB of UTF-8 in 1 M characters
    code, said = sophia(capsys, monkeypatch, "secrets", "export", "--from-json", "-", "--out", str(out), stdin=huge)
    assert code == 2 and not out.exists()
    assert (
        "the JSON on stdin is more than 1,000,000 bytes; the most accepted is 1,000,000. Nothing was written." in said
    )


def test_a_big_json_file_is_refused_by_its_size_before_it_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    big = tmp_path / "big.json"
    with big.open("wb") as handle:
        handle.truncate(64 * 1024 * 1024)  # sparse: 64 MiB that cost nothing

    def no_whole_read(self: Path, *args: object, **kwargs: object) -> str:
        raise AssertionError(f"{self} was read whole")

    monkeypatch.setattr(Path, "read_text", no_whole_read)
    monkeypatch.setattr(Path, "read_bytes", no_whole_read)
    code, said = sophia(capsys, monkeypatch, "secrets", "export", "--from-json", str(big))
    assert code == 2
    assert f"the JSON file {big} is 67,108,864 bytes; the most accepted is 1,000,000. Nothing was written." in said


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[" * 100_000 + "]" * 100_000, "the JSON on stdin is nested too deeply"),
        ('{"TAVILY_API_KEY": ' + "[" * 100_000 + "]" * 100_000 + "}", "the JSON on stdin is nested too deeply"),
        ('{"TAVILY_API_KEY\\n": "tvly-canary-nl-1"}', "'TAVILY_API_KEY\\n' is not a variable name"),
    ],
)
def test_deep_json_and_a_name_with_a_trailing_newline_are_clear_errors(
    text: str, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "esc.yaml"
    code, said = sophia(capsys, monkeypatch, "secrets", "export", "--from-json", "-", "--out", str(out), stdin=text)
    assert code == 2, said
    assert message in said and "Nothing was written." in said and not out.exists()
    assert "RecursionError" not in said and "tvly-canary-nl-1" not in said


def test_values_that_look_like_other_yaml_types_read_back_as_the_same_strings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sophia_shared.esc_eval import evaluate_file, plain

    out = tmp_path / "esc.yaml"
    tricky = {
        "TAVILY_API_KEY": "NO",
        "APIFY_API_TOKEN": "on",
        "ZENROWS_API_KEY": "0755",
        "PINECONE_API_KEY": "null",
        "SNOWFLAKE_PRIVATE_KEY": "-----BEGIN KEY-----\ncanary-pem-1\n-----END KEY-----\n",
    }
    code, said = export_to(out, capsys, monkeypatch, tricky)
    assert code == 0, said
    as_yaml_11 = yaml.safe_load(out.read_text())["values"]  # an older (YAML 1.1) reader
    as_esc = evaluate_file(out).values  # YAML 1.2 core, as ESC reads it
    for name, value in tricky.items():
        group, key = group_of(name), esc_key(name)
        assert group is not None
        assert as_yaml_11[group][key] == {"fn::secret": value}
        assert plain(as_esc[group])[key] == value
    assert "canary-pem-1" not in said
