"""A fake of Snowflake's Cortex REST endpoint, built from specs/snowflake/cortex-inference.yaml.

`POST /api/v2/cortex/inference:complete`: the request must be a valid `CompleteRequest`; the answer is
server-sent events, each a valid `StreamingCompleteResponseDataEvent` (the last carries `usage`), or a
`NonStreamingCompleteResponse` when the request says `"stream": false`. Errors are common.yaml's
`ErrorResponse`. Auth is checked as Snowflake documents: a PAT with `PROGRAMMATIC_ACCESS_TOKEN`, or a
key-pair JWT (`KEYPAIR_JWT`) whose RS256 signature verifies with the user's public key and whose
iss/sub/iat/exp are right.
"""

from __future__ import annotations

import functools
import json
import time
from typing import Any

import jsonschema
import yaml

from tests.fakes.specs import spec_path
from tests.fakes.vendor_app import Call, Reply, VendorApp

COMPLETE_PATH = "/api/v2/cortex/inference:complete"
UNAVAILABLE_MODEL = "claude-unavailable-here"


@functools.cache
def _spec(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(spec_path("snowflake", name).read_text(encoding="utf-8"))
    return loaded


@functools.cache
def spec_validator(schema_name: str, document: str = "cortex-inference.yaml") -> jsonschema.protocols.Validator:
    """A validator for `#/components/schemas/<schema_name>` of a Snowflake spec file."""
    components = _spec(document)["components"]
    if schema_name not in components["schemas"]:
        raise KeyError(f"{schema_name} is not a schema of {document}")
    return jsonschema.Draft4Validator(
        {"allOf": [{"$ref": f"#/components/schemas/{schema_name}"}], "components": components}
    )


def conform(schema_name: str, body: Any, document: str = "cortex-inference.yaml") -> None:
    """Raise if `body` does not match the spec's schema (the fake checks what it sends, too)."""
    error = jsonschema.exceptions.best_match(spec_validator(schema_name, document).iter_errors(body))
    if error is not None:
        raise AssertionError(f"{schema_name}: {'/'.join(map(str, error.absolute_path))}: {error.message}")


class FakeCortexRest(VendorApp):
    """Answers completions with a deterministic text; accepts one PAT and/or one key pair."""

    def __init__(self, *, account: str, user: str, pat: str = "", public_key_pem: bytes = b"") -> None:
        super().__init__()
        self.account, self.user, self.pat, self.public_key_pem = account.upper(), user.upper(), pat, public_key_pem
        self.fingerprint = ""
        if public_key_pem:
            self.fingerprint = _fingerprint(public_key_pem)
        self.route("POST", COMPLETE_PATH, self._complete)

    def error_reply(self, status: int, code: str, message: str) -> Reply:
        body = {"message": message, "code": code, "request_id": "01b2c3d4-0000-0000-0000-000000000001"}
        conform("ErrorResponse", body, "common.yaml")
        return Reply(status, body)

    def _unauthorized(self, call: Call) -> str:
        kind = call.headers.get("x-snowflake-authorization-token-type", "")
        token = call.headers.get("authorization", "").removeprefix("Bearer ")
        if kind == "PROGRAMMATIC_ACCESS_TOKEN":
            return "" if self.pat and token == self.pat else "Invalid programmatic access token."
        if kind == "KEYPAIR_JWT" and self.public_key_pem:
            return self._jwt_problem(token)
        return f"Unsupported token type {kind!r}."

    def _jwt_problem(self, token: str) -> str:
        import jwt

        try:
            claims = jwt.decode(token, self.public_key_pem, algorithms=["RS256"], options={"require": ["exp", "iat"]})
        except jwt.PyJWTError as exc:
            return f"JWT token is invalid: {exc}."
        qualified = f"{self.account}.{self.user}"
        if claims.get("sub") != qualified or claims.get("iss") != f"{qualified}.{self.fingerprint}":
            return "JWT token is invalid: issuer or subject does not match the user's public key."
        if claims["exp"] - claims["iat"] > 3600 or claims["iat"] > time.time() + 60:
            return "JWT token is invalid: it must be issued now and expire within an hour."
        return ""

    def _complete(self, call: Call) -> Reply:
        problem = self._unauthorized(call)
        if problem:
            return self.error_reply(401, "390144", problem)
        body = call.json
        error = jsonschema.exceptions.best_match(spec_validator("CompleteRequest").iter_errors(body))
        if error is not None:
            return self.error_reply(400, "399504", f"Invalid request: {error.message}")
        if body["model"] == UNAVAILABLE_MODEL:
            return self.error_reply(400, "399505", f"model {UNAVAILABLE_MODEL} is unavailable in your region")
        prompt = body["messages"][-1].get("content", "")
        words = f"stand-in answer to: {prompt}".split(" ")
        usage = {
            "prompt_tokens": len(prompt),
            "completion_tokens": len(words),
            "total_tokens": len(prompt) + len(words),
        }
        if body.get("stream") is False:
            answer = {"choices": [{"message": {"content": " ".join(words)}}], "usage": usage}
            conform("NonStreamingCompleteResponse", answer)
            return Reply(200, answer)
        events = []
        for i, word in enumerate(words):
            event: dict[str, Any] = {
                "id": "fake-1",
                "model": body["model"],
                "choices": [{"delta": {"type": "text", "content": word if i == 0 else " " + word}}],
            }
            if i == len(words) - 1:
                event["usage"] = usage
            conform("StreamingCompleteResponseDataEvent", event)
            events.append(f"data: {json.dumps(event)}\n\n")
        return Reply(200, body="".join(events).encode(), content_type="text/event-stream")


def _fingerprint(public_key_pem: bytes) -> str:
    import base64
    import hashlib

    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_public_key(public_key_pem)
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return "SHA256:" + base64.b64encode(hashlib.sha256(der).digest()).decode()
