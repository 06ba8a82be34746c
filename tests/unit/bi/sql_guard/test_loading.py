"""sqlglot is imported lazily, once, and safely from many threads."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Twenty threads make their first guard call at the same moment in a fresh interpreter: before the loader
# lock, sqlglot's lazy imports deadlocked (`_DeadlockError`) and left a module half initialised.
_BURST = """
import threading
from sophia_business_intelligence.sql_guard import check_read_only

barrier = threading.Barrier(20)
results = []

def first_call(i):
    barrier.wait()
    try:
        dialect = "duckdb" if i % 2 else "snowflake"
        checked = check_read_only(f"SELECT {i} AS i, IFF(1 > 0, 'a', 'b') AS x", dialect=dialect)
        results.append(checked.statement_type)
    except BaseException as exc:
        results.append(f"{type(exc).__name__}: {exc}")

threads = [threading.Thread(target=first_call, args=(i,)) for i in range(20)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join(60)
print(sorted(results))
"""


def test_guard_module_imports_sqlglot_lazily() -> None:
    code = "import sys, sophia_business_intelligence.sql_guard; print('sqlglot' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


@pytest.mark.slow
def test_twenty_concurrent_first_calls_all_succeed_in_a_fresh_interpreter() -> None:
    result = subprocess.run([sys.executable, "-c", _BURST], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == str(["SELECT"] * 20), result.stdout + result.stderr
