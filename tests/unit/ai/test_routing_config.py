"""The routing config: the seed's default, keys left out and re-weighted, PORTKEY_CONFIG parsed and validated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from sophia_ai_intelligence.gateway import open_gateway
from sophia_ai_intelligence.gateway.config import (
    DEFAULT_MODELS,
    config_schema,
    gateway_custom_host,
    load_routing,
    mask_config,
    option_path,
    validate_config,
)
from sophia_ai_intelligence.settings import SETTINGS
from sophia_shared.errors import ConfigError
from sophia_shared.redaction import DISPLAY_MASK, redact
from sophia_shared.settings import Settings
from tests.fakes.specs import spec_path

ALL_KEYS = {
    "OPENAI_API_KEY": "sk-openai-unit-0001",
    "ANTHROPIC_API_KEY": "sk-ant-unit-0002",
    "OPENROUTER_API_KEY": "sk-or-unit-0003",
}


def settings(tmp_path: Path, **values: str) -> Settings:
    return Settings(environ=values, cwd=tmp_path, specs=SETTINGS)


def weights(config: dict[str, Any]) -> dict[str, float]:
    return {t["targets"][0]["provider"]: t["weight"] for t in config["targets"]}


def test_shipped_schema_is_the_vendor_copy_in_specs() -> None:
    assert config_schema() == json.loads(spec_path("portkey", "config-object.schema.json").read_text())


def test_default_is_the_seed_loadbalance_with_fallback_cascades(tmp_path: Path) -> None:
    routing = load_routing(settings(tmp_path, **ALL_KEYS))
    config = routing.config
    assert isinstance(config, dict)
    assert config["strategy"] == {"mode": "loadbalance"}
    assert weights(config) == {"openai": 40, "anthropic": 30, "openrouter": 30}
    cascades = [[leaf["provider"] for leaf in t["targets"]] for t in config["targets"]]
    assert cascades == [
        ["openai", "anthropic", "openrouter"],
        ["anthropic", "openai", "openrouter"],
        ["openrouter", "openai", "anthropic"],
    ]
    assert all(t["strategy"] == {"mode": "fallback"} for t in config["targets"])
    assert config["retry"] == {"attempts": 3, "on_status_codes": [429, 500, 502, 503, 504]}
    assert config["cache"] == {"mode": "semantic", "max_age": 3600}
    assert routing.plan.source == "default" and routing.plan.left_out == ()
    jsonschema.validate(config, config_schema())


def test_default_never_emits_the_retry_after_field_the_schemas_disagree_on(tmp_path: Path) -> None:
    config = json.dumps(load_routing(settings(tmp_path, **ALL_KEYS)).config)
    assert "use_retry_after_header" not in config


def test_default_gives_each_provider_its_model_and_the_default_model_to_its_owner(tmp_path: Path) -> None:
    routing = load_routing(settings(tmp_path, **ALL_KEYS, SOPHIA_AI_DEFAULT_MODEL="claude-3-7-sonnet-latest"))
    models = {t.provider: t.model for t in routing.plan.targets}
    assert models == {
        "openai": DEFAULT_MODELS["openai"],
        "anthropic": "claude-3-7-sonnet-latest",
        "openrouter": DEFAULT_MODELS["openrouter"],
    }


def test_a_named_model_replaces_the_per_target_models_of_the_default(tmp_path: Path) -> None:
    routing = load_routing(settings(tmp_path, **ALL_KEYS))
    named = routing.chat_config("gpt-4o")
    assert isinstance(named, dict)
    assert "override_params" not in json.dumps(named)
    assert "override_params" in json.dumps(routing.chat_config(""))


def test_provider_without_key_is_left_out_and_weights_renormalised(tmp_path: Path) -> None:
    keys = {k: v for k, v in ALL_KEYS.items() if k != "ANTHROPIC_API_KEY"}
    routing = load_routing(settings(tmp_path, **keys))
    config = routing.config
    assert isinstance(config, dict)
    assert weights(config) == pytest.approx({"openai": 57.1429, "openrouter": 42.8571})
    assert sum(weights(config).values()) == pytest.approx(100)
    assert "anthropic" not in json.dumps(config)
    assert routing.plan.left_out == ("anthropic",)
    assert any("anthropic" in note and "re-normalised" in note for note in routing.plan.notes)
    missing = [t for t in routing.plan.targets if not t.has_credentials]
    assert [(t.provider, t.credential_source) for t in missing] == [("anthropic", "")]


def test_virtual_keys_stand_in_for_raw_keys_and_are_redacted(tmp_path: Path) -> None:
    routing = load_routing(settings(tmp_path, PORTKEY_VIRTUAL_KEYS="anthropic=vk-anthropic-77,openai=vk-openai-88"))
    config = routing.config
    assert isinstance(config, dict)
    assert weights(config) == {"openai": pytest.approx(57.1429), "anthropic": pytest.approx(42.8571)}
    leaf = config["targets"][0]["targets"][0]
    assert leaf == {"provider": "openai", "virtual_key": "vk-openai-88", "override_params": {"model": "gpt-4o-mini"}}
    assert {t.provider: t.credential_source for t in routing.plan.targets if t.has_credentials} == {
        "openai": "virtual key",
        "anthropic": "virtual key",
    }
    assert redact("used vk-openai-88") == "used [REDACTED]"


def test_plan_masks_every_key(tmp_path: Path) -> None:
    plan = load_routing(settings(tmp_path, **ALL_KEYS)).plan
    shown = json.dumps(plan.config)
    assert not any(key in shown for key in ALL_KEYS.values())
    assert shown.count(DISPLAY_MASK) == 9  # three cascades of three targets


def test_no_provider_at_all_names_the_variables_to_set(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_routing(settings(tmp_path))
    text = caught.value.agent_message()
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "PORTKEY_VIRTUAL_KEYS", "SOPHIA_AI_CUSTOM_HOST"):
        assert name in text


def test_custom_host_routes_every_call_to_that_server(tmp_path: Path) -> None:
    routing = load_routing(
        settings(
            tmp_path, SOPHIA_AI_CUSTOM_HOST="http://127.0.0.1:11434/v1/", SOPHIA_AI_DEFAULT_MODEL="llama3.1", **ALL_KEYS
        )
    )
    assert routing.config == {
        "provider": "openai",
        "custom_host": "http://127.0.0.1:11434/v1",
        "api_key": ALL_KEYS["OPENAI_API_KEY"],
        "override_params": {"model": "llama3.1"},
    }
    assert routing.plan.strategy == "single"


def test_openrouter_custom_host_drops_v1_because_the_gateway_adds_it() -> None:
    assert gateway_custom_host("openrouter", "http://127.0.0.1:9/v1") == "http://127.0.0.1:9"
    assert gateway_custom_host("openai", "http://127.0.0.1:9/v1/") == "http://127.0.0.1:9/v1"
    assert gateway_custom_host("anthropic", "http://127.0.0.1:9/v1") == "http://127.0.0.1:9/v1"


def test_saved_config_id_is_sent_as_is_and_not_validated(tmp_path: Path) -> None:
    routing = load_routing(settings(tmp_path, PORTKEY_CONFIG="pc-sophia-7f3a"))
    assert routing.config == "pc-sophia-7f3a"
    assert routing.chat_config("gpt-4o") == "pc-sophia-7f3a"
    assert routing.plan.source == "PORTKEY_CONFIG (saved id)"


def test_json_config_is_accepted_and_masked(tmp_path: Path) -> None:
    config = {
        "strategy": {"mode": "fallback", "on_status_codes": [429, 503]},
        "targets": [
            {"provider": "openai", "api_key": "sk-json-secret-1"},
            {"virtual_key": "vk-json-secret-2", "override_params": {"model": "claude-3-5-haiku-latest"}},
        ],
    }
    routing = load_routing(settings(tmp_path, PORTKEY_CONFIG=json.dumps(config)))
    assert routing.config == config
    assert routing.plan.source == "PORTKEY_CONFIG (JSON)"
    assert routing.plan.strategy == "fallback"
    assert "sk-json-secret-1" not in json.dumps(routing.plan.config)
    assert redact("sk-json-secret-1 vk-json-secret-2") == "[REDACTED] [REDACTED]"
    assert routing.describe_path("config.targets[1]") == ("", ("openai",))


def test_invalid_json_config_is_refused_with_the_schema_message(tmp_path: Path) -> None:
    bad = {"strategy": {"mode": "round-robin"}, "targets": [{"provider": "openai", "api_key": "k-1234"}]}
    with pytest.raises(ConfigError) as caught:
        load_routing(settings(tmp_path, PORTKEY_CONFIG=json.dumps(bad)))
    message = caught.value.message
    assert "PORTKEY_CONFIG is not a valid Portkey config" in message
    assert "strategy/mode" in message and "'round-robin' is not one of" in message


def test_unknown_field_is_refused_by_the_schema(tmp_path: Path) -> None:
    bad = {"provider": "openai", "api_key": "k-1234", "retries": {"attempts": 2}}
    with pytest.raises(ConfigError, match="'retries' was unexpected"):
        load_routing(settings(tmp_path, PORTKEY_CONFIG=json.dumps(bad)))


def test_config_that_is_not_json_says_what_forms_are_accepted(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_routing(settings(tmp_path, PORTKEY_CONFIG="{not json"))
    assert "neither a saved config id" in caught.value.message
    assert "pc-" in caught.value.hint


def test_validate_config_accepts_what_the_default_builds_and_refuses_a_target_without_provider() -> None:
    validate_config({"provider": "openai", "api_key": "k-1234"}, source="test")
    with pytest.raises(ConfigError, match="is not valid under any of the given schemas"):
        validate_config({"weight": 1}, source="test")


def test_mask_config_masks_nested_credentials_only() -> None:
    masked = mask_config({"targets": [{"provider": "openai", "api_key": "abcd1234", "custom_host": "http://h/v1"}]})
    assert masked == {"targets": [{"provider": "openai", "api_key": DISPLAY_MASK, "custom_host": "http://h/v1"}]}


@pytest.mark.parametrize(
    ("header", "expected"),
    [("config", ()), ("config.targets[2].targets[1]", (2, 1)), ("", None), ("weird", None), ("config.x[1]", None)],
)
def test_option_index_header_parses_into_a_path(header: str, expected: tuple[int, ...] | None) -> None:
    assert option_path(header) == expected


def test_option_path_maps_back_to_provider_and_fallbacks(tmp_path: Path) -> None:
    routing = load_routing(settings(tmp_path, **ALL_KEYS))
    assert routing.describe_path("config.targets[2].targets[2]") == ("anthropic", ("openrouter", "openai"))
    assert routing.describe_path("config.targets[1].targets[0]") == ("anthropic", ())
    assert routing.describe_path("") == ("", ())


def test_open_gateway_without_a_gateway_names_what_to_set(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        open_gateway(settings(tmp_path, **ALL_KEYS))
    text = caught.value.agent_message()
    for name in ("SOPHIA_PORTKEY_BASE_URL", "PORTKEY_API_KEY", "OPENAI_API_KEY", "SOPHIA_AI_CUSTOM_HOST"):
        assert name in text


def test_open_gateway_describes_a_self_hosted_gateway_without_secrets(tmp_path: Path) -> None:
    gateway = open_gateway(settings(tmp_path, SOPHIA_PORTKEY_BASE_URL="http://127.0.0.1:8787", **ALL_KEYS))
    line = gateway.describe()
    assert "self-hosted gateway http://127.0.0.1:8787/v1" in line
    assert "openai 40" in line
    assert not any(key in line for key in ALL_KEYS.values())
