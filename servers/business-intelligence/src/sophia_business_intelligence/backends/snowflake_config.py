"""The Snowflake settings as one typed, validated value; defaults live only in the setting specs."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

from sophia_shared.errors import ConfigError
from sophia_shared.settings import Settings

# The connector aborts a statement client-side this long after the server-side timeout, so a lost
# response can never hang a tool call.
CLIENT_GRACE_SECONDS = 15


class SnowflakeConfig(BaseModel):
    """What the Snowflake backend needs from the settings; each field's alias is its variable."""

    # No whitespace stripping: a password may end in a space. Numbers parse with it anyway.
    model_config = ConfigDict(frozen=True)

    account: str | None = Field(None, alias="SNOWFLAKE_ACCOUNT")
    user: str | None = Field(None, alias="SNOWFLAKE_USER")
    password: SecretStr | None = Field(None, alias="SNOWFLAKE_PASSWORD")
    token: SecretStr | None = Field(None, alias="SNOWFLAKE_TOKEN")
    private_key_file: Path | None = Field(None, alias="SNOWFLAKE_PRIVATE_KEY_FILE")
    private_key_passphrase: SecretStr | None = Field(None, alias="SNOWFLAKE_PRIVATE_KEY_PASSPHRASE")
    connection_name: str | None = Field(None, alias="SNOWFLAKE_CONNECTION_NAME")
    role: str | None = Field(None, alias="SNOWFLAKE_ROLE")
    warehouse: str | None = Field(None, alias="SNOWFLAKE_WAREHOUSE")
    database: str | None = Field(None, alias="SNOWFLAKE_DATABASE")
    schema_name: str | None = Field(None, alias="SNOWFLAKE_SCHEMA")
    host: str | None = Field(None, alias="SNOWFLAKE_HOST")
    port: int | None = Field(None, alias="SNOWFLAKE_PORT", ge=1, le=65535)
    protocol: Literal["https", "http"] | None = Field(None, alias="SNOWFLAKE_PROTOCOL")
    # Required here: its default comes from the setting spec, so a Settings built without the
    # BI specs fails loudly instead of running without a timeout.
    statement_timeout_seconds: int = Field(alias="SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS", ge=1)
    query_tag: str | None = Field(None, alias="SNOWFLAKE_QUERY_TAG")

    @classmethod
    def variables(cls) -> list[str]:
        """The setting names this config reads."""
        return [str(field.alias) for field in cls.model_fields.values()]

    @classmethod
    def from_settings(cls, settings: Settings) -> Self:
        """Read and validate every Snowflake setting; a bad value is a ConfigError naming its variable."""
        raw = {name: settings.get(name) for name in cls.variables()}
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            error = exc.errors()[0]
            name = str(error["loc"][0])
            value = raw.get(name)
            if value is None:
                problem = f"{name} is not set."
            elif settings.is_secret(name):
                problem = f"{name} is not valid: {error['msg']}."
            else:
                problem = f"{name} is not valid ({value!r}): {error['msg']}."
            raise ConfigError(
                problem, hint=f"Fix {name} (`sophia doctor` shows where each setting comes from)."
            ) from None

    @property
    def client_timeout_seconds(self) -> int:
        return self.statement_timeout_seconds + CLIENT_GRACE_SECONDS

    @property
    def auth_method(self) -> str:
        if self.private_key_file:
            return "key-pair"
        if self.token:
            return "programmatic access token"
        if self.password:
            return "password"
        if self.connection_name:
            return "connections.toml"
        return "none"

    def describe(self) -> str:
        """Where and as whom the backend connects, without secrets."""
        if self.account:
            where = f"Snowflake account {self.account}"
        else:
            where = f"Snowflake connection {self.connection_name!r} from connections.toml"
        if self.user:
            where += f" as {self.user}"
        details = [
            f"{label} {value}"
            for label, value in (
                ("role", self.role),
                ("warehouse", self.warehouse),
                ("database", ".".join(v for v in (self.database, self.schema_name) if v)),
                ("host", self.host),
            )
            if value
        ]
        details.append(f"{self.auth_method} auth")
        return f"{where} ({', '.join(details)})"
