"""Logging in to Snowflake: the connector's keyword arguments, credentials and key-pair decoding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import SecretStr

from sophia_shared.errors import ConfigError, missing_setting

from .snowflake_config import SnowflakeConfig
from .snowflake_errors import message_of

APPLICATION = "sophia-mcp"
LOGIN_TIMEOUT_SECONDS = 30


def open_connection(config: SnowflakeConfig) -> Any:
    """A new connector connection; the connector's own configuration checks become ConfigErrors."""
    kwargs = connect_kwargs(config)
    import snowflake.connector
    from snowflake.connector import errors as sf

    try:
        return snowflake.connector.connect(**kwargs)
    except sf.Error as exc:
        if exc.errno is None or "connection_name" in str(exc):
            # Unknown connection name or a bad option: the connector found it before any network call.
            raise ConfigError(
                f"The Snowflake connector refused the configuration: {message_of(exc)}",
                hint="Check SNOWFLAKE_CONNECTION_NAME against ~/.snowflake/connections.toml and the "
                "other SNOWFLAKE_* settings (`sophia doctor`).",
            ) from None
        raise


def connect_kwargs(config: SnowflakeConfig) -> dict[str, Any]:
    """Keyword arguments for `snowflake.connector.connect` (holds secrets: never log it)."""
    if not config.connection_name and not config.account:
        raise missing_setting("SNOWFLAKE_ACCOUNT", "the Snowflake warehouse")
    kwargs: dict[str, Any] = {
        key: value
        for key, value in (
            ("connection_name", config.connection_name),
            ("account", config.account),
            ("user", config.user),
            ("role", config.role),
            ("warehouse", config.warehouse),
            ("database", config.database),
            ("schema", config.schema_name),
            ("host", config.host),
            ("port", config.port),
            ("protocol", config.protocol),
        )
        if value
    }
    kwargs.update(_credentials(config))
    session_parameters: dict[str, Any] = {
        "MULTI_STATEMENT_COUNT": 1,
        "STATEMENT_TIMEOUT_IN_SECONDS": config.statement_timeout_seconds,
        # Out-of-band telemetry goes to a Snowflake service outside the account: keep it off.
        "CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False,
    }
    if config.query_tag:
        session_parameters["QUERY_TAG"] = config.query_tag
    kwargs.update(
        application=APPLICATION,
        # Server-side binding: `?` placeholders, values sent apart from the SQL text.
        paramstyle="qmark",
        login_timeout=LOGIN_TIMEOUT_SECONDS,
        network_timeout=config.client_timeout_seconds,
        session_parameters=session_parameters,
    )
    return kwargs


def _credentials(config: SnowflakeConfig) -> dict[str, Any]:
    named = bool(config.user or config.connection_name)
    if config.private_key_file:
        if not named:
            raise _missing_user("key-pair")
        return {"private_key": private_key_der(config.private_key_file, config.private_key_passphrase)}
    if config.token:
        return {"authenticator": "PROGRAMMATIC_ACCESS_TOKEN", "token": config.token.get_secret_value()}
    if config.password:
        if not named:
            raise _missing_user("password")
        return {"password": config.password.get_secret_value()}
    if config.connection_name:
        return {}  # connections.toml holds the credentials
    raise ConfigError(
        "No Snowflake credentials are set, so the Snowflake warehouse is unavailable.",
        hint=(
            "Set one of SNOWFLAKE_PASSWORD, SNOWFLAKE_TOKEN (programmatic access token) or "
            "SNOWFLAKE_PRIVATE_KEY_FILE (+ SNOWFLAKE_PRIVATE_KEY_PASSPHRASE if the key is encrypted), "
            "or SNOWFLAKE_CONNECTION_NAME to use ~/.snowflake/connections.toml."
        ),
    )


def _missing_user(method: str) -> ConfigError:
    return ConfigError(
        f"SNOWFLAKE_USER is not set, so {method} authentication to Snowflake cannot be used.",
        hint="Set SNOWFLAKE_USER to the Snowflake login name.",
    )


def private_key_der(path: Path, passphrase: SecretStr | None) -> bytes:
    """The PEM key decrypted and re-encoded as unencrypted PKCS#8 DER, as the connector takes it."""
    from cryptography.hazmat.primitives import serialization

    path = path.expanduser()
    try:
        pem = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"Cannot read the Snowflake private key file {path} ({exc.strerror or type(exc).__name__}).",
            hint="Point SNOWFLAKE_PRIVATE_KEY_FILE at a readable PEM private key.",
        ) from None
    password = passphrase.get_secret_value().encode() if passphrase else None
    try:
        key = serialization.load_pem_private_key(pem, password=password)
    except TypeError:
        # cryptography says whether a password was missing or superfluous; the text has no secret.
        if passphrase:
            hint = "The key is not encrypted: unset SNOWFLAKE_PRIVATE_KEY_PASSPHRASE."
        else:
            hint = "The key is encrypted: set SNOWFLAKE_PRIVATE_KEY_PASSPHRASE."
        raise ConfigError(f"Cannot load the Snowflake private key {path}.", hint=hint) from None
    except ValueError:
        raise ConfigError(
            f"Cannot load the Snowflake private key {path}: wrong passphrase, or not a PEM private key.",
            hint="Check SNOWFLAKE_PRIVATE_KEY_PASSPHRASE and that SNOWFLAKE_PRIVATE_KEY_FILE is the "
            "PEM file (-----BEGIN ENCRYPTED PRIVATE KEY----- or -----BEGIN PRIVATE KEY-----).",
        ) from None
    return key.private_bytes(
        encoding=serialization.Encoding.DER,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )
