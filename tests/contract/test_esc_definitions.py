"""ESC definitions (get/create/update with ETag, revisions) through the real pulumi-esc-sdk against the fake,
the fake checked against swagger.yaml, and `sophia secrets export --apply` end to end."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import jsonschema
import pytest
import yaml

import sophia_cli.main as cli_main
from sophia_shared import esc_remote
from sophia_shared.errors import ConfigError
from sophia_shared.esc_remote import ConcurrentEditError, create_environment, read_definition, update_definition
from tests.fakes.esc_server import VALID_TOKEN, FakeEscServer, Secret, esc_swagger, run_fake_esc

REF = "acme/sophia/dev"
NEW_KEY = "tvly-new-canary-0b7e11"
OLD_KEY = "tvly-old-canary-5d2c90"


@pytest.fixture(autouse=True)
def _hermetic(no_esc_cli_or_proxy: None) -> None:
    """No developer `esc` CLI or proxy (see conftest)."""


@pytest.fixture
def fake() -> Iterator[FakeEscServer]:
    with run_fake_esc() as server:
        server.put_environment(
            REF,
            {
                "data_intelligence": {"tavily-api-key": Secret(OLD_KEY), "hand-added": "keep-me"},
                "environmentVariables": {"EXTRA": "kept"},
            },
        )
        yield server


def response_schema(path: str, method: str, status: str, content: str = "application/json") -> dict[str, Any]:
    spec = esc_swagger()
    response = spec["paths"][path][method]["responses"][status]
    if "$ref" in response:
        response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[-1]]
    schema = response["content"][content]["schema"]
    return {**schema, "components": spec["components"]}


def sophia(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str, stdin: str = ""
) -> tuple[int, str]:
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", tuple(dict.fromkeys((*cli_main.COMMAND_MODULES, "secrets"))))
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = cli_main.main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


# -- the fake against the spec -----------------------------------------------------------------


def test_every_definition_route_of_the_fake_is_in_the_swagger() -> None:
    paths = esc_swagger()["paths"]
    assert {"post"} <= set(paths["/environments/{orgName}"])
    assert {"get", "head", "patch", "delete"} <= set(paths["/environments/{orgName}/{projectName}/{envName}"])
    assert "get" in paths["/environments/{orgName}/{projectName}/{envName}/versions"]
    assert "get" in paths["/environments/{orgName}/{projectName}/{envName}/versions/{version}"]
    assert "409" in paths["/environments/{orgName}/{projectName}/{envName}"]["patch"]["responses"]


def test_get_returns_a_definition_the_spec_describes_with_an_etag(fake: FakeEscServer) -> None:
    found = read_definition(REF, token=VALID_TOKEN, backend_url=fake.url)
    assert found is not None and found.etag == fake.etag(REF)
    parsed = yaml.safe_load(found.text)
    jsonschema.validate(
        parsed, response_schema("/environments/{orgName}/{projectName}/{envName}", "get", "200", "application/x-yaml")
    )
    assert parsed["values"]["data_intelligence"]["tavily-api-key"] == {"fn::secret": OLD_KEY}


def test_create_then_update_makes_revisions_the_spec_describes(fake: FakeEscServer) -> None:
    ref = "acme/sophia/new"
    assert read_definition(ref, token=VALID_TOKEN, backend_url=fake.url) is None
    create_environment(ref, token=VALID_TOKEN, backend_url=fake.url)
    created = read_definition(ref, token=VALID_TOKEN, backend_url=fake.url)
    assert created is not None
    update_definition(
        ref, "values:\n  a: {fn::secret: s3cret-value}\n", etag=created.etag, token=VALID_TOKEN, backend_url=fake.url
    )
    opened = esc_remote.open_environment(ref, token=VALID_TOKEN, backend_url=fake.url).document
    assert opened.values == {"a": "s3cret-value"} and opened.is_secret(("a",))
    import httpx

    answer = httpx.get(
        f"{fake.url}/api/esc/environments/acme/sophia/new/versions", headers={"Authorization": f"token {VALID_TOKEN}"}
    )
    revisions = answer.json()
    jsonschema.validate(
        revisions, response_schema("/environments/{orgName}/{projectName}/{envName}/versions", "get", "200")
    )
    assert [r["number"] for r in revisions] == [2, 1]


def test_a_stale_etag_is_a_conflict_and_nothing_is_written(fake: FakeEscServer) -> None:
    found = read_definition(REF, token=VALID_TOKEN, backend_url=fake.url)
    assert found is not None
    fake.put_environment(REF, {"data_intelligence": {"tavily-api-key": Secret("edited-by-someone-else")}})
    with pytest.raises(ConcurrentEditError, match="changed by someone else since it was read"):
        update_definition(REF, "values: {}\n", etag=found.etag, token=VALID_TOKEN, backend_url=fake.url)
    assert "edited-by-someone-else" in (fake.definition(REF) or "")


@pytest.mark.parametrize(("token", "message"), [("pul-wrong", "rejected the access token"), (None, "not found")])
def test_rejected_token_and_missing_org_are_clear(fake: FakeEscServer, token: str | None, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        if token:
            read_definition(REF, token=token, backend_url=fake.url)
        else:
            update_definition("acme/sophia/missing", "values: {}\n", etag=None, token=VALID_TOKEN, backend_url=fake.url)


# -- sophia secrets export --apply -------------------------------------------------------------

INPUT = json.dumps({"TAVILY_API_KEY": NEW_KEY, "ZENROWS_API_KEY": "zr-canary-a81f", "github_token": "ghs_canary_1234"})


def test_export_dry_run_shows_names_and_writes_nothing(
    fake: FakeEscServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULUMI_ACCESS_TOKEN", VALID_TOKEN)
    monkeypatch.setenv("PULUMI_BACKEND_URL", fake.url)
    before = fake.definition(REF)
    code, said = sophia(capsys, monkeypatch, "secrets", "export", "--from-json", "-", REF, stdin=INPUT)
    assert code == 0, said
    assert "~ data_intelligence.tavily-api-key  (TAVILY_API_KEY)" in said
    assert "+ data_intelligence.zenrows-api-key  (ZENROWS_API_KEY)" in said
    assert "Dry run: nothing written" in said
    assert fake.definition(REF) == before
    assert not [r for r in fake.requests if r.method in {"PATCH", "POST"} and not r.path.endswith("/open")]
    for value in (NEW_KEY, OLD_KEY, "zr-canary-a81f", "ghs_canary_1234", VALID_TOKEN):
        assert value not in said


def test_export_apply_merges_with_if_match_and_keeps_user_keys(
    fake: FakeEscServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULUMI_ACCESS_TOKEN", VALID_TOKEN)
    monkeypatch.setenv("PULUMI_BACKEND_URL", fake.url)
    etag = fake.etag(REF)
    code, said = sophia(capsys, monkeypatch, "secrets", "export", "--from-json", "-", "--apply", REF, stdin=INPUT)
    assert code == 0, said
    patch = [r for r in fake.requests if r.method == "PATCH"]
    assert len(patch) == 1 and patch[0].if_match == etag
    definition = yaml.safe_load(fake.definition(REF) or "")
    assert definition["values"]["environmentVariables"] == {"EXTRA": "kept"}
    assert definition["values"]["data_intelligence"]["hand-added"] == "keep-me"
    assert definition["values"]["data_intelligence"]["tavily-api-key"] == {"fn::secret": NEW_KEY}
    assert "ghs_canary_1234" not in (fake.definition(REF) or "")
    for value in (NEW_KEY, OLD_KEY, "zr-canary-a81f", "ghs_canary_1234"):
        assert value not in said
    # A second run has nothing to change and writes nothing.
    code, said = sophia(capsys, monkeypatch, "secrets", "export", "--from-json", "-", "--apply", REF, stdin=INPUT)
    assert code == 0 and "Already up to date: nothing written." in said
    assert len([r for r in fake.requests if r.method == "PATCH"]) == 1


def test_export_apply_creates_a_missing_environment(
    fake: FakeEscServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULUMI_ACCESS_TOKEN", VALID_TOKEN)
    monkeypatch.setenv("PULUMI_BACKEND_URL", fake.url)
    code, said = sophia(
        capsys, monkeypatch, "secrets", "export", "--from-json", "-", "--apply", "acme/sophia/prod", stdin=INPUT
    )
    assert code == 0, said
    assert "Created acme/sophia/prod." in said
    opened = esc_remote.open_environment("acme/sophia/prod", token=VALID_TOKEN, backend_url=fake.url).document
    assert opened.values["data_intelligence"] == {"tavily-api-key": NEW_KEY, "zenrows-api-key": "zr-canary-a81f"}


def test_a_concurrent_edit_is_not_overwritten(
    fake: FakeEscServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULUMI_ACCESS_TOKEN", VALID_TOKEN)
    monkeypatch.setenv("PULUMI_BACKEND_URL", fake.url)

    def someone_edits(ref: str) -> None:
        fake.before_update = None
        fake.put_environment(ref, {"data_intelligence": {"added-meanwhile": "by-hand"}})

    fake.before_update = someone_edits
    code, said = sophia(capsys, monkeypatch, "secrets", "export", "--from-json", "-", "--apply", REF, stdin=INPUT)
    assert code == 2
    assert "changed by someone else since it was read (HTTP 409); nothing was written" in said
    assert yaml.safe_load(fake.definition(REF) or "") == {
        "values": {"data_intelligence": {"added-meanwhile": "by-hand"}}
    }
    for value in (NEW_KEY, "zr-canary-a81f"):
        assert value not in said


HAND_WRITTEN = f"""\
# hand-written, keep me
values:
  country: NO
  debug: on
  mode: 0755
  data_intelligence:
    tavily-api-key: {{fn::secret: {OLD_KEY}}}  # rotated weekly
"""


def hand_write(fake: FakeEscServer, text: str) -> None:
    from tests.fakes.esc_server import Revision

    fake.revisions[REF].append(Revision(len(fake.revisions[REF]) + 1, text, "now"))


def test_export_apply_edits_a_hand_written_definition_without_rewriting_it(
    fake: FakeEscServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULUMI_ACCESS_TOKEN", VALID_TOKEN)
    monkeypatch.setenv("PULUMI_BACKEND_URL", fake.url)
    hand_write(fake, HAND_WRITTEN)
    code, said = sophia(capsys, monkeypatch, "secrets", "export", "--from-json", "-", "--apply", REF, stdin=INPUT)
    assert code == 0, said
    # `NO`, `on` and `0755` stay as written (YAML 1.2, as ESC reads them), and so does the comment.
    assert fake.definition(REF) == HAND_WRITTEN.replace(OLD_KEY, NEW_KEY) + (
        "    zenrows-api-key:\n      fn::secret: zr-canary-a81f\n"
    )
    assert "1 added, 1 changed, 0 unchanged; 3 other value(s) kept as they are" in said
    for value in (NEW_KEY, OLD_KEY, "zr-canary-a81f", "ghs_canary_1234"):
        assert value not in said


def test_an_alias_bomb_definition_is_refused_before_the_environment_is_opened(
    fake: FakeEscServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULUMI_ACCESS_TOKEN", VALID_TOKEN)
    monkeypatch.setenv("PULUMI_BACKEND_URL", fake.url)
    keys = [f"k{i}" for i in range(10)]
    lines = ["values:", "  a0: &a0 {" + ", ".join(f"{k}: x" for k in keys) + "}"]
    lines += [f"  a{n}: &a{n} {{" + ", ".join(f"{k}: *a{n - 1}" for k in keys) + "}" for n in range(1, 9)]
    hand_write(fake, "\n".join(lines) + "\n")
    before = fake.definition(REF)
    code, said = sophia(capsys, monkeypatch, "secrets", "export", "--from-json", "-", "--apply", REF, stdin=INPUT)
    assert code == 2
    assert f"The definition of {REF} has more than 200,000 values once its YAML aliases are expanded" in said
    assert "Nothing was written." in said
    assert fake.definition(REF) == before
    assert not [r for r in fake.requests if r.method in {"PATCH", "POST"}]  # not opened, not written
    for value in (NEW_KEY, "zr-canary-a81f"):
        assert value not in said
