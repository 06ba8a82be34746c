"""`sophia secrets check`, doctor's credential lines and `rotate-check`, against the ESC fake."""

from __future__ import annotations

import io
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

import sophia_cli.main as cli_main
from tests.fakes.esc_server import VALID_TOKEN, FakeEscServer, Secret, run_fake_esc

REF = "acme/sophia/dev"
ESC_KEY = "tvly-esc-canary-77d1"
ENV_PASSWORD = "sf-env-canary-3e9f"


@pytest.fixture(autouse=True)
def _hermetic(no_esc_cli_or_proxy: None) -> None:
    """No developer `esc` CLI or proxy (see conftest)."""


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeEscServer]:
    with run_fake_esc() as server:
        server.put_environment(REF, {"data_intelligence": {"tavily-api-key": Secret(ESC_KEY)}})
        monkeypatch.setenv("SOPHIA_ESC_ENV", REF)
        monkeypatch.setenv("PULUMI_ACCESS_TOKEN", VALID_TOKEN)
        monkeypatch.setenv("PULUMI_BACKEND_URL", server.url)
        yield server


def sophia(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *argv: str) -> tuple[int, str]:
    monkeypatch.setattr(cli_main, "COMMAND_MODULES", tuple(dict.fromkeys((*cli_main.COMMAND_MODULES, "secrets"))))
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code = cli_main.main(list(argv))
    out = capsys.readouterr()
    return code, out.out + out.err


def line_of(text: str, name: str) -> str:
    return next(line for line in text.splitlines() if line.strip().startswith(name + " "))


def test_check_shows_source_masked_and_the_key_to_add(
    fake: FakeEscServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SNOWFLAKE_PASSWORD", ENV_PASSWORD)
    code, said = sophia(capsys, monkeypatch, "secrets", "check")
    assert code == 0, said
    assert f"Pulumi ESC {REF}: opened" in said
    assert "present  ESC acme/sophia/dev" in line_of(said, "TAVILY_API_KEY")
    assert "present  env" in line_of(said, "SNOWFLAKE_PASSWORD")
    assert (
        f"missing  add `zenrows-api-key: {{fn::secret: …}}` under values.data_intelligence in ESC environment {REF}"
        in line_of(said, "ZENROWS_API_KEY")
    )
    assert "sophia-data-intelligence (ESC group data_intelligence)" in said
    assert ESC_KEY not in said and ENV_PASSWORD not in said and VALID_TOKEN not in said


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            {"PULUMI_ACCESS_TOKEN": "pul-wrong-token-1234"},
            "rejected the access token when opening acme/sophia/dev (HTTP 401)",
        ),
        ({"SOPHIA_ESC_ENV": "acme/sophia/missing"}, "acme/sophia/missing was not found"),
        ({"PULUMI_BACKEND_URL": "closed"}, "Pulumi ESC unreachable at http://127.0.0.1:"),
    ],
)
def test_an_environment_that_cannot_be_opened_says_why_in_one_line(
    fake: FakeEscServer,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    change: dict[str, str],
    expected: str,
) -> None:
    for name, value in change.items():
        monkeypatch.setenv(name, closed_port_url() if value == "closed" else value)
    code, said = sophia(capsys, monkeypatch, "secrets", "check")
    assert code == 1
    first = said.splitlines()[0]
    assert "NOT OPENED" in first and expected in first
    assert "pul-wrong-token-1234" not in said


def test_doctor_names_the_esc_key_of_each_missing_credential(
    fake: FakeEscServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from sophia_cli.doctor import run_doctor

    run_doctor(timeout=5)
    said = capsys.readouterr().out
    assert "not set (data_intelligence): ZENROWS_API_KEY (ESC data_intelligence.zenrows-api-key)" in said
    assert "TAVILY_API_KEY (ESC" not in said  # present in ESC
    assert ESC_KEY not in said


def test_rotate_check_reports_changed_names_only(
    fake: FakeEscServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, said = sophia(capsys, monkeypatch, "secrets", "rotate-check")
    assert code == 0 and "first rotate-check; 1 value(s) recorded" in said
    code, said = sophia(capsys, monkeypatch, "secrets", "rotate-check")
    assert "no value changed since the last rotate-check" in said
    fake.put_environment(
        REF, {"data_intelligence": {"tavily-api-key": Secret("tvly-rotated-canary-1"), "new-one": "x"}}
    )
    code, said = sophia(capsys, monkeypatch, "secrets", "rotate-check")
    assert code == 0
    assert "changed  data_intelligence.tavily-api-key" in said
    assert "added    data_intelligence.new-one" in said
    assert ESC_KEY not in said and "tvly-rotated-canary-1" not in said
    from sophia_shared.paths import data_dir

    stored = (data_dir() / "secrets" / "esc-fingerprints.json").read_text()
    assert ESC_KEY not in stored and "tvly-rotated-canary-1" not in stored
    assert (data_dir() / "secrets" / "esc-fingerprints.json").stat().st_mode & 0o077 == 0


def test_check_names_the_local_esc_file_when_it_is_the_source(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOPHIA_ESC_ENV", raising=False)
    esc_file = tmp_path / "esc.yaml"
    esc_file.write_text(f"values:\n  data_intelligence:\n    tavily-api-key:\n      fn::secret: {ESC_KEY}\n")
    monkeypatch.setenv("SOPHIA_ESC_FILE", str(esc_file))
    code, said = sophia(capsys, monkeypatch, "secrets", "check")
    assert code == 0, said
    assert said.splitlines()[1] == f"ESC file {esc_file}: found, 1 value(s) mapped to settings"
    assert "present  ESC file" in line_of(said, "TAVILY_API_KEY")
    assert ESC_KEY not in said
    esc_file.unlink()
    code, said = sophia(capsys, monkeypatch, "secrets", "check")
    assert said.splitlines()[1] == f"ESC file {esc_file}: absent"


def test_check_fails_on_an_esc_file_it_cannot_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOPHIA_ESC_ENV", raising=False)
    esc_file = tmp_path / "esc.yaml"
    esc_file.write_text("values: [not, a, mapping\n")
    monkeypatch.setenv("SOPHIA_ESC_FILE", str(esc_file))
    code, said = sophia(capsys, monkeypatch, "secrets", "check")
    assert code == 1
    assert said.splitlines()[1].startswith(f"ESC file {esc_file}: found, NOT READ: ")
