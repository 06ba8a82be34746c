"""How a setting is declared, and the core settings every server reads.

Each server declares its own settings beside its code (`<server>/settings.py`) and lists them on its
`ServerSpec`; `sophia doctor`, the redactor and the test fixtures find them through the server registry.
ESC's grouped layout maps a key `some-key` in a server's group (its key, e.g. `business_intelligence`)
to `SOME_KEY`.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SettingSpec:
    name: str
    group: str  # "core" or the ESC group / server it belongs to
    secret: bool
    description: str
    default: str = ""


_CORE = [
    SettingSpec("SOPHIA_ESC_ENV", "core", False, "Pulumi ESC environment to read settings from: org/project/env."),
    SettingSpec("PULUMI_ACCESS_TOKEN", "core", True, "Pulumi access token used to open SOPHIA_ESC_ENV."),
    SettingSpec(
        "PULUMI_BACKEND_URL",
        "core",
        False,
        "Pulumi backend: a Pulumi Cloud API base (default https://api.pulumi.com) or a self-managed backend "
        "(file://DIR, s3://...) for the infrastructure stacks; unset and no token: file:// in the data dir.",
    ),
    SettingSpec("SOPHIA_ESC_FILE", "core", False, "Local ESC-format YAML file (default ~/.config/sophia/esc.yaml)."),
    SettingSpec("SOPHIA_DOTENV", "core", False, "Path of the .env file to read (default ./.env)."),
    SettingSpec("SOPHIA_DATA_DIR", "core", False, "Where Sophia keeps local data (default ~/.local/share/sophia)."),
    SettingSpec("SOPHIA_LOG_LEVEL", "core", False, "Log level for stderr logging.", "INFO"),
]

CORE_SETTINGS: tuple[SettingSpec, ...] = tuple(_CORE)

# Words that mark a variable as secret when no declared setting says otherwise.
_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSPHRASE", "CREDENTIAL")


def is_secret_name(name: str, spec: SettingSpec | None = None) -> bool:
    """A declared setting is secret as declared; any other name by the words it contains."""
    if spec is not None:
        return spec.secret
    upper = name.upper()
    return any(word in upper for word in _SECRET_WORDS) and not upper.endswith(("_FILE", "_PATH"))


def declare(group: str, name: str, description: str, *, secret: bool = False, default: str = "") -> SettingSpec:
    """One server setting: `declare(SERVER_KEY, "TAVILY_API_KEY", "…", secret=True)`."""
    return SettingSpec(name, group, secret, description, default)
