"""PineconeVectorStore when things go wrong: the write gate, rejected and rotated keys, 429/5xx (the SDK's
own retries and nothing more), a slow index, Pinecone's 4xx answers, and a key that never leaks."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sophia_business_intelligence.backends.vectors.base import TextRecord, VectorRecord
from sophia_business_intelligence.backends.vectors.pinecone import PineconeVectorStore
from sophia_business_intelligence.names import VECTOR_DESCRIBE_INDEX, VECTOR_LIST_INDEXES
from sophia_business_intelligence.settings import SETTINGS
from sophia_shared.errors import AuthError, BackendError, ConfigError, InputError, PolicyError, SophiaError
from sophia_shared.settings import Settings, SourceValues
from tests.fakes.pinecone_server import (
    VALID_KEY,
    FakePinecone,
    record_sdk_retry_sleeps,
    run_fake_pinecone,
    settings_env,
)

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
OLD_KEY = "pcsk_old_rotated_away_000"
NEW_KEY = "pcsk_new_after_rotation_111"
ESC_ENV = {"SOPHIA_ESC_ENV": "acme/sophia/dev", "PULUMI_ACCESS_TOKEN": "pul-test-token"}


@pytest.fixture(autouse=True)
def sleeps(no_esc_cli_or_proxy: None, monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The backoff delays the SDK chose (it does not actually sleep here)."""
    return record_sdk_retry_sleeps(monkeypatch)


@pytest.fixture
def fake() -> Iterator[FakePinecone]:
    with run_fake_pinecone() as server:
        yield server


def make_store(settings: Settings, *, writable: bool = True, **kwargs: Any) -> PineconeVectorStore:
    kwargs = {"ready_timeout": 5, "poll_interval": 0.01, **kwargs}
    return PineconeVectorStore(settings, writable=writable, **kwargs)


@pytest.fixture
def store(fake: FakePinecone) -> Iterator[PineconeVectorStore]:
    vectors = make_store(Settings(environ=settings_env(fake), specs=SETTINGS))
    yield vectors
    vectors.close()


def all_text(exc: BaseException) -> str:
    if isinstance(exc, SophiaError):
        return "\n".join([str(exc), exc.message, exc.hint, exc.agent_message()])
    return str(exc)


def data_calls(fake: FakePinecone, suffix: str) -> int:
    return len([c for c in fake.calls if c.path.endswith(suffix)])


# -- the write gate ---------------------------------------------------------------------------------


WRITES: list[tuple[str, Callable[[PineconeVectorStore], object]]] = [
    ("create", lambda s: s.create_index("deals", dimension=4, metric="cosine", model=MODEL)),
    ("delete index", lambda s: s.delete_index("deals")),
    ("upsert", lambda s: s.upsert("deals", [VectorRecord("a", [1, 0, 0, 0])], namespace="", model=MODEL)),
    ("upsert texts", lambda s: s.upsert_texts("deals", [TextRecord("a", "hello")], namespace="")),
    ("delete records", lambda s: s.delete("deals", ids=["a"], filter={}, namespace="")),
]


@pytest.mark.parametrize(("what", "write"), WRITES, ids=[w[0] for w in WRITES])
def test_writes_are_refused_without_the_gate_and_nothing_is_sent(
    fake: FakePinecone, what: str, write: Callable[[PineconeVectorStore], object]
) -> None:
    fake.indexes.clear()
    gated = make_store(Settings(environ=settings_env(fake, write=False), specs=SETTINGS))
    with pytest.raises(PolicyError) as refused:
        write(gated)
    assert "SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE" in refused.value.message
    assert fake.calls == []


@pytest.mark.parametrize(("what", "write"), WRITES, ids=[w[0] for w in WRITES])
def test_writes_are_refused_by_a_read_only_store_even_with_the_gate_open(
    fake: FakePinecone, what: str, write: Callable[[PineconeVectorStore], object]
) -> None:
    read_only = make_store(Settings(environ=settings_env(fake), specs=SETTINGS), writable=False)
    with pytest.raises(PolicyError, match="read-only"):
        write(read_only)
    assert fake.calls == []


def test_reads_work_without_the_gate(fake: FakePinecone, store: PineconeVectorStore) -> None:
    store.create_index("deals", dimension=4, metric="cosine", model=MODEL)
    reader = make_store(Settings(environ=settings_env(fake, write=False), specs=SETTINGS), writable=False)
    assert [i.name for i in reader.list_indexes()] == ["deals"]
    assert reader.query("deals", vector=[1, 0, 0, 0], top_k=3, namespace="", filter={}, model=MODEL) == []


# -- keys -------------------------------------------------------------------------------------------


def rotating_esc(keys: list[str], opened: list[str]) -> Callable[[str, str, str | None], SourceValues]:
    """An ESC opener handing out the next key on each open (the last one again once they run out)."""

    def opener(ref: str, token: str, backend_url: str | None) -> SourceValues:
        key = keys[min(len(opened), len(keys) - 1)]
        opened.append(key)
        return SourceValues(f"esc:{ref}", {"PINECONE_API_KEY": key}, frozenset({"PINECONE_API_KEY"}))

    return opener


def esc_settings(fake: FakePinecone, keys: list[str], opened: list[str]) -> Settings:
    environ = {**ESC_ENV, "PINECONE_CONTROLLER_HOST": fake.url, "SOPHIA_BUSINESS_INTELLIGENCE_ALLOW_WRITE": "1"}
    return Settings(environ=environ, specs=SETTINGS, esc_opener=rotating_esc(keys, opened))


def test_a_rotated_key_is_picked_up_by_reopening_esc_once() -> None:
    with run_fake_pinecone(api_keys=(NEW_KEY,)) as fake:
        opened: list[str] = []
        store = make_store(esc_settings(fake, [OLD_KEY, NEW_KEY], opened))
        assert store.list_indexes() == []
        assert opened == [OLD_KEY, NEW_KEY]
        assert [c.headers["api-key"] for c in fake.calls] == [OLD_KEY, NEW_KEY]
        store.create_index("deals", dimension=4, metric="cosine", model=MODEL)
        store.upsert("deals", [VectorRecord("a", [1, 0, 0, 0])], namespace="", model=MODEL)
        assert opened == [OLD_KEY, NEW_KEY]  # the new key stays in use
        assert {c.headers["api-key"] for c in fake.calls[2:]} == {NEW_KEY}


def test_a_data_plane_401_also_reopens_esc_and_retries(fake: FakePinecone) -> None:
    opened: list[str] = []
    store = make_store(esc_settings(fake, [VALID_KEY, NEW_KEY], opened))
    store.create_index("deals", dimension=4, metric="cosine", model=MODEL)
    fake.api_keys = {NEW_KEY}  # rotated while the server runs
    fake.calls.clear()
    assert store.query("deals", vector=[1, 0, 0, 0], top_k=1, namespace="", filter={}, model=MODEL) == []
    assert opened == [VALID_KEY, NEW_KEY]


def test_a_key_still_rejected_after_reopening_esc_is_an_auth_error_naming_the_setting() -> None:
    with run_fake_pinecone(api_keys=(NEW_KEY,)) as fake:
        opened: list[str] = []
        store = make_store(esc_settings(fake, [OLD_KEY, OLD_KEY], opened))
        with pytest.raises(AuthError) as rejected:
            store.list_indexes()
        assert opened == [OLD_KEY, OLD_KEY]  # re-opened once, not in a loop
        assert len(fake.calls) == 2
        assert "PINECONE_API_KEY" in rejected.value.agent_message()
        assert OLD_KEY not in all_text(rejected.value)


def test_a_rejected_key_without_esc_fails_at_once_and_is_never_shown() -> None:
    with run_fake_pinecone(api_keys=(NEW_KEY,)) as fake:
        store = make_store(Settings(environ=settings_env(fake, key=OLD_KEY), specs=SETTINGS))
        with pytest.raises(AuthError) as rejected:
            store.describe_index("deals")
        assert len(fake.calls) == 1  # 401 is not retried
        assert "PINECONE_API_KEY" in rejected.value.hint
        assert OLD_KEY not in all_text(rejected.value)


def test_a_missing_key_is_a_config_error_before_any_request(fake: FakePinecone) -> None:
    store = make_store(Settings(environ={"PINECONE_CONTROLLER_HOST": fake.url}, specs=SETTINGS))
    with pytest.raises(ConfigError, match="PINECONE_API_KEY"):
        store.list_indexes()
    assert fake.calls == []


def test_pinecone_environment_is_accepted_ignored_and_noted_at_debug(
    fake: FakePinecone, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sophia_business_intelligence.backends.vectors import pinecone as module

    monkeypatch.setattr(module, "_environment_noted", False)
    environ = {**settings_env(fake), "PINECONE_ENVIRONMENT": "us-west1-gcp"}
    with caplog.at_level(logging.DEBUG, logger=module.__name__):
        store = make_store(Settings(environ=environ, specs=SETTINGS))
        store.list_indexes()
        make_store(Settings(environ=environ, specs=SETTINGS)).list_indexes()
    noted = [r for r in caplog.records if "PINECONE_ENVIRONMENT" in r.getMessage()]
    assert len(noted) == 1 and noted[0].levelno == logging.DEBUG
    assert all("us-west1-gcp" not in c.path for c in fake.calls)


# -- 429 and 5xx: the SDK's retries, none of ours -----------------------------------------------------


def serving_index(store: PineconeVectorStore) -> None:
    """An index with one record whose data-plane host the store already knows (so reads go straight there)."""
    store.create_index("deals", dimension=4, metric="cosine", model=MODEL)
    store.upsert("deals", [VectorRecord("a", [1, 0, 0, 0])], namespace="", model=MODEL)


def test_a_429_is_retried_by_the_sdk_honouring_retry_after(
    fake: FakePinecone, store: PineconeVectorStore, sleeps: list[float]
) -> None:
    serving_index(store)
    sleeps.clear()
    fake.fail_next(1, 429, retry_after="2")
    assert [r.id for r in store.fetch("deals", ["a"], namespace="")] == ["a"]
    assert data_calls(fake, "/vectors/fetch") == 2
    assert len(sleeps) == 1 and sleeps[0] >= 2.0


def test_a_429_that_persists_is_a_backend_error_saying_when_to_retry(
    fake: FakePinecone, store: PineconeVectorStore
) -> None:
    serving_index(store)
    fake.fail_next(10, 429, retry_after="7")
    with pytest.raises(BackendError) as limited:
        store.fetch("deals", ["a"], namespace="")
    assert "rate limiting" in limited.value.message
    assert "Retry after 7 seconds" in limited.value.hint
    assert data_calls(fake, "/vectors/fetch") == 4  # the SDK's 3 retries; no layer of our own on top


def test_a_5xx_after_the_sdks_retries_is_a_backend_error(fake: FakePinecone, store: PineconeVectorStore) -> None:
    fake.fail_next(10, 503)
    with pytest.raises(BackendError) as failed:
        store.list_indexes()
    assert not isinstance(failed.value, AuthError)
    assert "HTTP 503" in failed.value.message
    assert len(fake.calls) == 4
    assert VALID_KEY not in all_text(failed.value)


def test_a_5xx_followed_by_success_goes_unnoticed(fake: FakePinecone, store: PineconeVectorStore) -> None:
    store.create_index("deals", dimension=4, metric="cosine", model=MODEL)
    fake.fail_next(2, 500)
    assert store.upsert("deals", [VectorRecord("a", [1, 0, 0, 0])], namespace="", model=MODEL) == 1


def test_an_unreachable_pinecone_is_a_backend_error_naming_the_host_setting() -> None:
    with run_fake_pinecone() as gone:
        environ = settings_env(gone)
    store = make_store(Settings(environ=environ, specs=SETTINGS), request_timeout=2)
    with pytest.raises(BackendError) as unreachable:
        store.list_indexes()
    assert "PINECONE_CONTROLLER_HOST" in unreachable.value.hint


# -- a slow index -----------------------------------------------------------------------------------


def test_create_waits_for_a_slow_index_to_become_ready(fake: FakePinecone, store: PineconeVectorStore) -> None:
    fake.not_ready_for(4)
    info = store.create_index("deals", dimension=4, metric="cosine", model=MODEL)
    assert info.ready
    assert len([c for c in fake.calls if c.method == "GET" and c.path == "/indexes/deals"]) == 5


def test_an_index_still_initializing_says_try_again_in_a_minute(fake: FakePinecone) -> None:
    fake.not_ready_for(1_000_000)
    store = make_store(Settings(environ=settings_env(fake), specs=SETTINGS), ready_timeout=0.2, poll_interval=0.05)
    with pytest.raises(BackendError) as slow:
        store.create_index("deals", dimension=4, metric="cosine", model=MODEL)
    assert "not ready yet" in slow.value.message and "try again in a minute" in slow.value.message
    assert VECTOR_DESCRIBE_INDEX in slow.value.hint and "do not create it again" in slow.value.hint

    described = store.describe_index("deals")
    assert not described.ready and described.record_count is None
    with pytest.raises(BackendError, match="not ready yet"):
        store.upsert("deals", [VectorRecord("a", [1, 0, 0, 0])], namespace="", model=MODEL)
    assert data_calls(fake, "/vectors/upsert") == 0


# -- Pinecone's 4xx answers ---------------------------------------------------------------------------


def test_an_existing_name_is_an_input_error(store: PineconeVectorStore) -> None:
    store.create_index("deals", dimension=4, metric="cosine", model=MODEL)
    with pytest.raises(InputError, match="already exists"):
        store.create_index("deals", dimension=4, metric="cosine", model=MODEL)


def test_a_bad_request_is_an_input_error_with_pinecones_message(store: PineconeVectorStore) -> None:
    with pytest.raises(InputError) as bad:
        store.create_index("Bad_Name", dimension=4, metric="cosine", model=MODEL)
    assert "lowercase alphanumeric" in bad.value.message


def test_an_unknown_hosted_model_is_an_input_error(store: PineconeVectorStore) -> None:
    with pytest.raises(InputError, match="not supported"):
        store.create_index("notes", dimension=0, metric="cosine", model="pinecone:no-such-model")


def test_an_exhausted_index_quota_says_what_ran_out_without_reopening_esc(fake: FakePinecone) -> None:
    opened: list[str] = []
    store = make_store(esc_settings(fake, [VALID_KEY], opened))
    fake.index_quota = 0
    with pytest.raises(BackendError) as quota:
        store.create_index("deals", dimension=4, metric="cosine", model=MODEL)
    assert not isinstance(quota.value, AuthError)
    assert "index quota ran out" in quota.value.message
    assert opened == [VALID_KEY]


def test_deletion_protection_is_an_input_error_not_an_auth_error(
    fake: FakePinecone, store: PineconeVectorStore
) -> None:
    store.create_index("deals", dimension=4, metric="cosine", model=MODEL)
    fake.indexes["deals"].deletion_protection = "enabled"
    with pytest.raises(InputError, match="Deletion protection"):
        store.delete_index("deals")
    assert "deals" in fake.indexes


def test_operations_on_a_missing_index_name_the_list_tool(store: PineconeVectorStore) -> None:
    for operation in [
        lambda: store.query("nope", vector=[1.0], top_k=1, namespace="", filter={}, model=MODEL),
        lambda: store.fetch("nope", ["a"], namespace=""),
        lambda: store.delete_index("nope"),
    ]:
        with pytest.raises(InputError) as missing:
            operation()
        assert "no index named 'nope'" in missing.value.message
        assert VECTOR_LIST_INDEXES in missing.value.hint


def test_a_recreated_index_is_found_on_its_new_host(fake: FakePinecone, store: PineconeVectorStore) -> None:
    store.create_index("deals", dimension=4, metric="cosine", model=MODEL)
    store.upsert("deals", [VectorRecord("a", [1, 0, 0, 0])], namespace="", model=MODEL)
    old_host = fake.indexes["deals"].host_id
    other = make_store(Settings(environ=settings_env(fake), specs=SETTINGS))
    other.delete_index("deals")
    other.create_index("deals", dimension=4, metric="cosine", model=MODEL)
    assert fake.indexes["deals"].host_id != old_host
    assert store.fetch("deals", ["a"], namespace="") == []  # a 404 on the old host, then the new one
    assert any(c.path.startswith(f"/hosts/{old_host}/") and c.path.endswith("/fetch") for c in fake.calls)


# -- laziness --------------------------------------------------------------------------------------


def test_constructing_the_store_neither_imports_the_sdk_nor_reads_the_key() -> None:
    code = """
        import sys
        from sophia_shared.settings import Settings
        from sophia_business_intelligence.backends.vectors.pinecone import PineconeVectorStore
        from sophia_business_intelligence.settings import SETTINGS

        class Watched(Settings):
            def resolve(self, name):
                raise AssertionError(f"read {name}")

        PineconeVectorStore(Watched(environ={}, specs=SETTINGS), writable=True)
        print("pinecone" in sys.modules)
    """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, env=dict(os.environ)
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"


# -- every SDK error has a home -------------------------------------------------------------------


def sdk_errors() -> list[tuple[Exception, type[SophiaError], str]]:
    from pinecone.errors import exceptions as pe

    return [
        (pe.PaymentRequiredError("Request failed. Pay all past due invoices."), BackendError, "billing"),
        (pe.RateLimitError("You've reached the max storage allowed for project."), BackendError, "storage ran out"),
        (pe.ForbiddenError("Pod limit reached for this project."), BackendError, "pod quota ran out"),
        (pe.RateLimitError("Too many requests", retry_after=3.0), BackendError, "Retry after 3 seconds"),
        (pe.ApiError("Invalid filter: $regex is not supported", 400), InputError, "$regex is not supported"),
        (pe.FailedPreconditionError("There are pending collections for this index"), InputError, "pending"),
        (pe.ServiceError("Bad gateway", 502), BackendError, "HTTP 502"),
        (pe.PineconeTimeoutError("Request timed out"), BackendError, "did not answer in time"),
        (pe.PineconeValueError("dimension must be positive"), InputError, "dimension must be positive"),
        (pe.ForbiddenError("Access denied: Permission data::write is required"), AuthError, "PINECONE_API_KEY"),
        (RuntimeError("boom"), BackendError, "RuntimeError: boom"),
    ]


@pytest.mark.parametrize("case", range(len(sdk_errors())))
def test_sdk_errors_become_the_suites_errors(case: int) -> None:
    from sophia_business_intelligence.backends.vectors.pinecone import translate_error

    exc, kind, says = sdk_errors()[case]
    error = translate_error(exc, index="deals")
    assert type(error) is kind
    assert says in error.agent_message()


def test_a_key_quoted_by_pinecone_is_redacted_from_the_message() -> None:
    from pinecone.errors.exceptions import ApiError

    from sophia_business_intelligence.backends.vectors.pinecone import translate_error

    error = translate_error(ApiError(f"Malformed key {VALID_KEY}", 400), key=VALID_KEY)
    assert VALID_KEY not in all_text(error) and "[redacted]" in error.message
