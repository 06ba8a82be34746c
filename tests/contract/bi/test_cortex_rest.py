"""Single completions over the Cortex REST API, against a fake built from cortex-inference.yaml."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from sophia_business_intelligence.backends.base import CancelToken
from sophia_business_intelligence.backends.snowflake import SnowflakeWarehouse
from sophia_business_intelligence.backends.text_ai.cortex_rest import jwt_account, parse_answer
from sophia_business_intelligence.backends.text_ai.snowflake_cortex import SnowflakeCortex
from sophia_business_intelligence.settings import SETTINGS
from sophia_business_intelligence.tools.cortex import run_cortex_complete
from sophia_shared.errors import AuthError, ConfigError
from sophia_shared.settings import Settings
from tests.fakes.cortex_rest import COMPLETE_PATH, UNAVAILABLE_MODEL, FakeCortexRest, conform
from tests.fakes.vendor_app import serve

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("no_esc_cli_or_proxy")]
PAT = "pat-secret-value-1234"


@pytest.fixture(scope="module")
def key_pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("keys") / "rsa_key.p8"
    path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return path, public


@pytest.fixture
def fake(key_pair: tuple[Path, bytes]) -> FakeCortexRest:
    return FakeCortexRest(account="myorg-acct1", user="analyst", pat=PAT, public_key_pem=key_pair[1])


@pytest.fixture
def base(fake: FakeCortexRest) -> Iterator[str]:
    with serve(fake) as url:
        yield url


def cortex(base: str, **credentials: str) -> SnowflakeCortex:
    host, port = base.removeprefix("http://").split(":")
    env = {"SNOWFLAKE_ACCOUNT": "myorg-acct1", "SNOWFLAKE_USER": "analyst", "SNOWFLAKE_HOST": host,
           "SNOWFLAKE_PORT": port, "SNOWFLAKE_PROTOCOL": "http", **credentials}  # fmt: skip
    settings = Settings(environ=env, specs=SETTINGS)
    return SnowflakeCortex(settings, SnowflakeWarehouse(settings))


async def test_a_pat_completion_streams_over_rest_with_token_counts(base: str, fake: FakeCortexRest) -> None:
    result = await run_cortex_complete(
        cortex(base, SNOWFLAKE_TOKEN=PAT), CancelToken(), prompt="Name a colour", model="llama3.1-70b",
        system="One word.", max_tokens=20,
    )  # fmt: skip
    assert result.via == "rest" and result.items[0].output == "stand-in answer to: Name a colour"
    assert result.usage is not None and result.usage.completion_tokens == 6
    (call,) = fake.calls_to(COMPLETE_PATH)
    assert call.headers["x-snowflake-authorization-token-type"] == "PROGRAMMATIC_ACCESS_TOKEN"
    conform("CompleteRequest", call.json)
    assert call.json["messages"][0] == {"role": "system", "content": "One word."}
    assert call.json["max_tokens"] == 20


async def test_a_key_pair_completion_sends_a_jwt_the_fake_verifies(base: str, key_pair: tuple[Path, bytes]) -> None:
    result = await run_cortex_complete(
        cortex(base, SNOWFLAKE_PRIVATE_KEY_FILE=str(key_pair[0])), CancelToken(), prompt="hi", model="mistral-7b"
    )
    assert result.items[0].output == "stand-in answer to: hi" and result.model == "mistral-7b"


async def test_a_rejected_pat_is_an_auth_error_that_does_not_echo_the_token(base: str) -> None:
    with pytest.raises(AuthError) as caught:
        await run_cortex_complete(cortex(base, SNOWFLAKE_TOKEN="wrong-token-5678"), CancelToken(), prompt="hi",
                                  model="m")  # fmt: skip
    assert "wrong-token-5678" not in caught.value.agent_message()
    assert "SNOWFLAKE_TOKEN" in caught.value.hint


async def test_a_model_missing_in_the_region_over_rest_suggests_cross_region(base: str) -> None:
    with pytest.raises(ConfigError) as caught:
        await run_cortex_complete(cortex(base, SNOWFLAKE_TOKEN=PAT), CancelToken(), prompt="hi",
                                  model=UNAVAILABLE_MODEL)  # fmt: skip
    assert "CORTEX_ENABLED_CROSS_REGION" in caught.value.hint


def test_a_non_streaming_answer_is_read_too() -> None:
    body = {"choices": [{"message": {"content": "plain"}}], "usage": {"prompt_tokens": 2, "completion_tokens": 1}}
    conform("NonStreamingCompleteResponse", body)
    answer = parse_answer("application/json", json.dumps(body).encode())
    assert answer.text == "plain" and answer.usage is not None and answer.usage.total_tokens == 3


def test_the_jwt_account_drops_region_and_domain() -> None:
    assert jwt_account("xy12345.us-east-2.aws") == "XY12345"
    assert jwt_account("myorg-acct1") == "MYORG-ACCT1"
    assert jwt_account("myorg-acct1.snowflakecomputing.com") == "MYORG-ACCT1"
