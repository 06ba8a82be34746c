"""The Docker packaging stays complete as servers are added: every registered server has a build target,
a build-context entry, a CI build and a smoke scenario; and the secret scan finds what it looks for.

The images themselves are built and driven by scripts/docker-ci.sh (tests/docker/smoke.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sophia_shared.registry import registered_servers
from tests.docker.smoke import SCENARIOS, file_contains

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = (REPO_ROOT / "docker" / "Dockerfile").read_text()
DOCKERIGNORE = (REPO_ROOT / ".dockerignore").read_text().splitlines()
CI_SCRIPT = (REPO_ROOT / "scripts" / "docker-ci.sh").read_text()

SERVERS = sorted(server.spec.cli_name for server in registered_servers())


def _stage(target: str) -> str:
    """The Dockerfile text of one build stage, from its FROM to the next FROM."""
    match = re.search(rf"^FROM \S+ AS {re.escape(target)}\n(.*?)(?=^FROM |\Z)", DOCKERFILE, re.M | re.S)
    assert match, f"docker/Dockerfile has no stage named {target}"
    return match.group(1)


@pytest.mark.parametrize("server", SERVERS)
def test_every_server_has_a_target_that_runs_it(server: str) -> None:
    stage = _stage(server)
    assert f'ENTRYPOINT ["sophia-{server}"]' in stage
    # The final stage checks that --build-arg SERVER and --target name the same server.
    assert f"test -x /app/.venv/bin/sophia-{server}" in stage
    assert f"COPY servers/{server}/pyproject.toml servers/{server}/" in DOCKERFILE


@pytest.mark.parametrize("server", SERVERS)
def test_every_server_is_in_the_build_context_the_ci_build_and_the_smoke_test(server: str) -> None:
    assert f"!servers/{server}/pyproject.toml" in DOCKERIGNORE
    assert f"!servers/{server}/src/" in DOCKERIGNORE
    ci_servers = re.search(r"^SERVERS=\((.*)\)$", CI_SCRIPT, re.M)
    assert ci_servers and server in ci_servers.group(1).split()
    assert server in SCENARIOS


def test_build_context_is_an_allow_list() -> None:
    # Everything is excluded first, so a developer's .env, .git or warehouse never reaches a layer.
    rules = [line for line in DOCKERIGNORE if line and not line.startswith("#")]
    assert rules[0] == "*"
    assert not any(rule.lstrip("!").startswith(("tests", ".env", ".git", ".venv")) for rule in rules[1:])


def test_only_the_bi_image_declares_the_data_volume_and_only_infrastructure_has_pulumi() -> None:
    assert 'VOLUME ["/data"]' in _stage("business-intelligence")
    assert DOCKERFILE.count("VOLUME") == 1
    assert "--from=pulumi" in _stage("infrastructure")
    assert DOCKERFILE.count("--from=pulumi") == 1


def test_no_secret_is_declared_as_a_build_argument() -> None:
    # A build ARG is recorded in `docker history`; secrets come at run time only.
    arguments = re.findall(r"^ARG (\w+)", DOCKERFILE, re.M)
    assert arguments and not [a for a in arguments if re.search(r"KEY|TOKEN|SECRET|PASSWORD|PASSPHRASE", a)]


def test_layer_scan_finds_a_secret_split_across_read_chunks(tmp_path: Path) -> None:
    secret = b"pul-0123456789abcdef"
    blob = tmp_path / "layer.tar"
    blob.write_bytes(b"x" * 13 + secret + b"y" * 50)
    # Chunks smaller than the secret: it spans three reads.
    assert file_contains(blob, secret, chunk_size=7)
    assert file_contains(blob, secret, chunk_size=1 << 20)
    assert not file_contains(blob, b"pul-0123456789abcdeX", chunk_size=7)
