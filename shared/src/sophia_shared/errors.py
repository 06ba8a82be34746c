"""The suite's error model: every failure a user can act on says what, why and what to do."""

from __future__ import annotations


class SophiaError(Exception):
    """A failure with an actionable message; becomes an MCP tool error (`isError`)."""

    kind = "error"

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def agent_message(self) -> str:
        text = self.message.rstrip()
        if self.hint:
            text += f"\nWhat to do: {self.hint.rstrip()}"
        return text


class ConfigError(SophiaError):
    """A setting is missing or invalid."""

    kind = "configuration"


class NotConfigured(ConfigError):
    """An optional backend nobody set up: the tools that need it say what to set; `doctor` shows it as off."""

    kind = "not configured"


class InputError(SophiaError):
    """The caller's arguments cannot be used as given."""

    kind = "invalid input"


class PolicyError(SophiaError):
    """A safety rule refused the request (SQL guard, write gate, budget, SSRF)."""

    kind = "refused"


class BackendError(SophiaError):
    """A vendor or database failed, or was unreachable after retries."""

    kind = "backend"


class AuthError(BackendError):
    """A vendor rejected our credentials (HTTP 401/403 or equivalent)."""

    kind = "authentication"


class CancelledByClient(SophiaError):
    kind = "cancelled"


def missing_setting(name: str, purpose: str) -> ConfigError:
    return ConfigError(
        f"{name} is not set, so {purpose} is unavailable.",
        hint=(
            f"Set {name} in the environment, in your Pulumi ESC environment (SOPHIA_ESC_ENV), in the "
            "local ESC-format file (SOPHIA_ESC_FILE) or in .env; `sophia doctor` shows what is found where."
        ),
    )
