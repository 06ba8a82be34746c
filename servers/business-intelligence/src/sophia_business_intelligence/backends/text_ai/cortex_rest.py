"""The Cortex REST endpoint `POST /api/v2/cortex/inference:complete` (specs/snowflake/cortex-inference.yaml).

Auth as Snowflake documents it: a programmatic access token (`Bearer <PAT>` with
`X-Snowflake-Authorization-Token-Type: PROGRAMMATIC_ACCESS_TOKEN`) or a key-pair JWT (`KEYPAIR_JWT`;
RS256, iss `<ACCOUNT>.<USER>.SHA256:<public key fingerprint>`, sub `<ACCOUNT>.<USER>`, valid under an
hour). The endpoint streams server-sent events by default; a JSON answer is read as well.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from sophia_shared.errors import AuthError, BackendError, ConfigError, InputError, SophiaError
from sophia_shared.http import make_client
from sophia_shared.settings import Settings

from ..snowflake_config import SnowflakeConfig
from ..snowflake_connect import private_key_der
from .base import CompletionTask, Usage
from .snowflake_cortex import actionable_error, usage_of

COMPLETE_PATH = "/api/v2/cortex/inference:complete"
JWT_LIFETIME_SECONDS = 59 * 60  # Snowflake accepts at most one hour
MAX_STREAM_BYTES = 4 * 2**20
_TIMEOUT = httpx.Timeout(120.0, connect=10.0)


def rest_credentials_configured(settings: Settings) -> bool:
    """True when an account and a PAT or key pair are set: the credentials the REST API accepts."""
    if not settings.get("SNOWFLAKE_ACCOUNT"):
        return False
    return bool(settings.get("SNOWFLAKE_TOKEN") or settings.get("SNOWFLAKE_PRIVATE_KEY_FILE"))


def base_url(config: SnowflakeConfig) -> str:
    """SNOWFLAKE_HOST (with SNOWFLAKE_PORT/PROTOCOL) or `<account>.snowflakecomputing.com`."""
    if not config.account and not config.host:
        raise ConfigError("SNOWFLAKE_ACCOUNT is not set, so the Cortex REST API cannot be reached.")
    host = config.host or f"{config.account}.snowflakecomputing.com"
    port = f":{config.port}" if config.port else ""
    return f"{config.protocol or 'https'}://{host}{port}"


def jwt_account(account: str) -> str:
    """The account part of a key-pair JWT: upper case, without region or domain."""
    name = account.upper().removesuffix(".SNOWFLAKECOMPUTING.COM")
    if ".GLOBAL" in name:
        return name.partition("-")[0]
    return name.partition(".")[0]


def public_key_fingerprint(private_der: bytes) -> str:
    """`SHA256:<base64 of the SHA-256 of the public key's DER>`, as Snowflake stores it for the user."""
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_der_private_key(private_der, password=None)
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "SHA256:" + base64.b64encode(hashlib.sha256(public).digest()).decode()


def keypair_jwt(config: SnowflakeConfig, *, now: float | None = None) -> str:
    """A fresh RS256 JWT for key-pair authentication."""
    import jwt

    if not config.private_key_file or not config.user or not config.account:
        raise ConfigError(
            "Key-pair auth to the Cortex REST API needs SNOWFLAKE_ACCOUNT, SNOWFLAKE_USER and "
            "SNOWFLAKE_PRIVATE_KEY_FILE."
        )
    der = private_key_der(config.private_key_file, config.private_key_passphrase)
    qualified = f"{jwt_account(config.account)}.{config.user.upper()}"
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": f"{qualified}.{public_key_fingerprint(der)}",
        "sub": qualified,
        "iat": issued,
        "exp": issued + JWT_LIFETIME_SECONDS,
    }
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_der_private_key(der, password=None)
    return jwt.encode(claims, key, algorithm="RS256")  # type: ignore[arg-type]


def auth_headers(config: SnowflakeConfig) -> dict[str, str]:
    """Authorization headers: key pair first (as the connector prefers it), else the PAT."""
    if config.private_key_file:
        return {"Authorization": f"Bearer {keypair_jwt(config)}", "X-Snowflake-Authorization-Token-Type": "KEYPAIR_JWT"}
    if config.token:
        return {
            "Authorization": f"Bearer {config.token.get_secret_value()}",
            "X-Snowflake-Authorization-Token-Type": "PROGRAMMATIC_ACCESS_TOKEN",
        }
    raise ConfigError(
        "The Cortex REST API needs a programmatic access token or a key pair.",
        hint="Set SNOWFLAKE_TOKEN, or SNOWFLAKE_PRIVATE_KEY_FILE with SNOWFLAKE_USER.",
    )


def request_body(task: CompletionTask) -> dict[str, Any]:
    """A CompleteRequest: model and messages, plus temperature and max_tokens when given."""
    messages = [{"role": "system", "content": task.system}] if task.system else []
    messages.append({"role": "user", "content": task.prompt})
    body: dict[str, Any] = {"model": task.model, "messages": messages}
    if task.temperature is not None:
        body["temperature"] = task.temperature
    if task.max_tokens is not None:
        body["max_tokens"] = task.max_tokens
    return body


@dataclass(frozen=True)
class RestCompletion:
    text: str
    model: str
    usage: Usage | None


def parse_answer(content_type: str, body: bytes) -> RestCompletion:
    """The text, model and usage from SSE `data:` events (StreamingCompleteResponse) or one JSON body."""
    if "text/event-stream" not in content_type:
        data = json.loads(body)
        message = ((data.get("choices") or [{}])[0]).get("message") or {}
        return RestCompletion(
            str(message.get("content") or ""), str(data.get("model") or ""), usage_of(data.get("usage"))
        )
    parts: list[str] = []
    model, usage = "", None
    for line in body.decode("utf-8", errors="replace").splitlines():
        if not line.startswith("data:"):
            continue
        payload = line[5:].strip()
        if not payload or payload == "[DONE]":
            continue
        event = json.loads(payload)
        model = str(event.get("model") or model)
        usage = usage_of(event.get("usage")) or usage
        for choice in event.get("choices") or []:
            delta = choice.get("delta") or {}
            piece = delta.get("content") if delta.get("content") is not None else delta.get("text")
            if isinstance(piece, str):
                parts.append(piece)
    return RestCompletion("".join(parts), model, usage)


class CortexRestClient:
    """One short-lived client for `inference:complete`; `transport` replaces the network in tests."""

    def __init__(self, settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.settings = settings
        self.config = SnowflakeConfig.from_settings(settings)
        self._client = make_client(base_url=base_url(self.config), timeout=_TIMEOUT, transport=transport)

    async def aclose(self) -> None:
        await self._client.aclose()

    async def complete(self, task: CompletionTask) -> RestCompletion:
        headers = {**auth_headers(self.config), "Accept": "text/event-stream, application/json"}
        request = self._client.build_request("POST", COMPLETE_PATH, json=request_body(task), headers=headers)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise BackendError(
                f"Could not reach the Cortex REST API at {self.config.host or self.config.account}: "
                f"{type(exc).__name__}.",
                hint="Check SNOWFLAKE_ACCOUNT (or SNOWFLAKE_HOST) and the network.",
            ) from None
        try:
            body = b""
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_STREAM_BYTES:
                    raise BackendError(f"The Cortex REST answer exceeded {MAX_STREAM_BYTES:,} bytes; stopped reading.")
        finally:
            await response.aclose()
        if response.status_code >= 400:
            raise self._failure(response.status_code, body, task.model)
        try:
            return parse_answer(response.headers.get("content-type", ""), body)
        except (ValueError, AttributeError) as exc:
            raise BackendError(f"The Cortex REST API sent an answer that could not be read: {exc}.") from None

    def _failure(self, status: int, body: bytes, model: str) -> SophiaError:
        try:
            data = json.loads(body)
            said = str(data.get("message") or data) if isinstance(data, dict) else str(data)
        except ValueError:
            said = body[:300].decode("utf-8", errors="replace")
        said = " ".join(said.split())[:300]
        where = f"HTTP {status} from {COMPLETE_PATH}"
        if status == 401:
            return AuthError(
                f"Snowflake rejected the Cortex REST credentials ({where}): {said}",
                hint="Check SNOWFLAKE_TOKEN (not expired, network policy allows it) or that SNOWFLAKE_USER has the "
                "public key of SNOWFLAKE_PRIVATE_KEY_FILE as RSA_PUBLIC_KEY.",
            )
        error = SophiaError(f"Snowflake rejected the statement: {said}")
        mapped = actionable_error(error, family="rest", function="COMPLETE", model=model)
        if mapped is not error:
            return mapped
        if status == 403:
            return ConfigError(
                f"Snowflake refused the Cortex REST call ({where}): {said}",
                hint="The user's default role needs the SNOWFLAKE.CORTEX_USER database role.",
            )
        if status in (400, 404):
            return InputError(
                f"Cortex refused the completion ({where}): {said}", hint="Check the model name and prompt."
            )
        if status == 429:
            return BackendError(f"Cortex rate limited the call ({where}): {said}", hint="Wait a minute and call again.")
        return BackendError(f"The Cortex REST API failed ({where}): {said}", hint="Try again later.")
