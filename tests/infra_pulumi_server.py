"""The infrastructure server with the suite's program replaced by `workloads_program` (files, not Kubernetes),
run over stdio like the real one: `python -m tests.infra_pulumi_server` (SOPHIA_TEST_FILES_DIR names the dir)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from sophia_infrastructure.server import SPEC
from sophia_infrastructure.state import InfraState
from sophia_shared.server import run_server
from sophia_shared.settings import Settings
from tests.infra_pulumi_support import workloads_suite


def _state(settings: Settings) -> InfraState:
    return InfraState(settings, suite=workloads_suite(Path(os.environ["SOPHIA_TEST_FILES_DIR"])))


if __name__ == "__main__":
    run_server(dataclasses.replace(SPEC, make_state=_state))
