"""Snowflake connector errors as the suite's errors, each with what to do about it."""

from __future__ import annotations

from sophia_shared.errors import AuthError, BackendError, InputError, SophiaError

from ..names import WAREHOUSE_DESCRIBE_TABLE, WAREHOUSE_LIST_TABLES

_TIMEOUT_ERRNOS = frozenset({630, 604})  # statement timeout; statement cancelled (client timebomb)
_NETWORK_ERRNOS = frozenset({250001, 250003, 251011, 251012})
# The session token was rejected (expired, renewed elsewhere, logged out): the statement never ran.
_SESSION_GONE_ERRNOS = frozenset({290401, 390104, 390111, 390112, 390113, 390114, 390115})
_CREDENTIAL_ERRNOS = frozenset({390100, 390101, 390102, 390144, 394300, 394301, 394302, 394304, 394400})
AUTH_HINT = (
    "Check SNOWFLAKE_USER and the credential in use (SNOWFLAKE_PASSWORD, SNOWFLAKE_TOKEN or "
    "SNOWFLAKE_PRIVATE_KEY_FILE); if it was rotated, update it in Pulumi ESC (SOPHIA_ESC_ENV) or the "
    "environment. For key-pair auth the user needs the matching RSA_PUBLIC_KEY; a PAT must not be expired."
)
STATEMENT_HINT = (
    f"Check object and column names with {WAREHOUSE_LIST_TABLES} and {WAREHOUSE_DESCRIBE_TABLE}, and the SQL syntax."
)


class SessionExpired(BackendError):
    """Snowflake no longer accepts this connection's session; a new login is needed."""


def errno_of(exc: BaseException) -> int | None:
    value = getattr(exc, "errno", None)
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def message_of(exc: BaseException) -> str:
    return (getattr(exc, "msg", None) or str(exc) or type(exc).__name__).strip()


def is_auth_error(exc: BaseException) -> bool:
    """Snowflake rejected the credentials (not a network or SQL problem)."""
    if getattr(exc, "sqlstate", None) == "28000" or errno_of(exc) in _CREDENTIAL_ERRNOS:
        return True
    return "incorrect username or password" in str(exc).lower()


def session_expired(exc: BaseException) -> SessionExpired | None:
    """A SessionExpired when `exc` says the session token is gone, else None."""
    if errno_of(exc) not in _SESSION_GONE_ERRNOS:
        return None
    return SessionExpired(f"Snowflake ended the session: {exc}", hint="Call again: the server logs in anew.")


def translate_error(exc: BaseException, *, timeout_seconds: int) -> SophiaError:
    """A connector error as the suite's error, with what to do about it."""
    from snowflake.connector import errors as sf

    text = str(exc).strip() or message_of(exc)
    errno = errno_of(exc)
    lowered = text.lower()
    if errno in _TIMEOUT_ERRNOS or ("timeout" in lowered and "statement" in lowered):
        return BackendError(
            f"Snowflake stopped the statement: {text}",
            hint=(
                f"It ran longer than SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS ({timeout_seconds} s). Narrow the "
                "query (filters, LIMIT, fewer columns), use a larger SNOWFLAKE_WAREHOUSE, or raise "
                "SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS."
            ),
        )
    if is_auth_error(exc):
        return AuthError(f"Snowflake rejected the credentials: {text}", hint=AUTH_HINT)
    if isinstance(exc, (sf.OperationalError, sf.InterfaceError)) or errno in _NETWORK_ERRNOS:
        return BackendError(
            f"Could not reach Snowflake: {text}",
            hint=(
                "Is SNOWFLAKE_ACCOUNT right (orgname-accountname, without .snowflakecomputing.com) and is "
                "the network up? SNOWFLAKE_HOST overrides the host (private link)."
            ),
        )
    if isinstance(exc, (sf.ProgrammingError, sf.IntegrityError, sf.DataError, sf.NotSupportedError)):
        return InputError(f"Snowflake rejected the statement: {text}", hint=STATEMENT_HINT)
    return BackendError(f"Snowflake failed: {text}")
