"""Our ESC evaluator against Pulumi ESC's own evaluator fixtures (specs/pulumi-esc/esc-eval-fixtures).

Run as upstream runs them (eval/eval_test.go, described in specs/pulumi-esc/SOURCE.txt): env.yaml is
the root environment, named after its folder; imports load <name>.yaml from the same folder;
context.pulumi.user.id is USER_123; `fn::open::test`, `fn::open::secret-wrapper` and
`fn::open::error` are upstream's Go test providers, re-created here (production has no providers).
expected.json "eval.properties" holds every value with its `secret`/`unknown` marks.

A fixture without diagnostics must match exactly: values, secret marks, no diagnostics of ours.
A fixture with diagnostics (loadDiags/checkDiags/evalDiags) must make us report at least one, every
value we do produce must match, and a value we leave out must be unknown upstream or named by one of
our diagnostics (upstream sometimes keeps a placeholder, e.g. "" for an invalid secret).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from sophia_shared.esc_eval import (
    EscLoadError,
    Evaluation,
    ProviderError,
    Value,
    evaluate_file,
    plain,
    walk,
)
from tests.fakes.specs import spec_path

FIXTURES = spec_path("pulumi-esc", "esc-eval-fixtures")
CASES = sorted(path.name for path in FIXTURES.iterdir() if (path / "expected.json").is_file())

OUT_OF_SCOPE = {
    "ciphertext": "encrypted fn::secret (ciphertext): decrypting needs Pulumi Cloud",
    "ciphertext-import": "encrypted fn::secret (ciphertext): decrypting needs Pulumi Cloud",
    "ciphertext-invalid": "encrypted fn::secret (ciphertext): decrypting needs Pulumi Cloud",
    "ciphertext-show-secrets": "encrypted fn::secret (ciphertext) and the showSecrets override of `esc open`",
    "inline-reference-rotateOnly": "fn::rotate::echo and the rotate operation: rotation needs Pulumi Cloud",
    "anonymous-environment": "an anonymous root environment (rootEnvironment override) exists only in Pulumi Cloud",
}
# What each out-of-scope fixture must make us say instead of guessing a value.
REFUSAL = {
    "ciphertext": "only Pulumi ESC can decrypt",
    "ciphertext-import": "only Pulumi ESC can decrypt",
    "ciphertext-invalid": "only Pulumi ESC can decrypt",
    "ciphertext-show-secrets": "only Pulumi ESC can decrypt",
    "inline-reference-rotateOnly": "fn::rotate::echo, which only Pulumi ESC evaluates",
}
SUPPORTED = [case for case in CASES if case not in OUT_OF_SCOPE]


def _secret_wrapper(inputs: Value) -> Value:
    def mark(value: Value) -> Value:
        if isinstance(value.raw, list):
            return Value([mark(item) for item in value.raw], secret=True)
        if isinstance(value.raw, dict):
            return Value({key: mark(item) for key, item in value.raw.items()}, secret=True)
        return Value(value.raw, secret=True)

    return mark(inputs)


def _error(inputs: Value) -> Value:
    why = inputs.raw.get("why") if isinstance(inputs.raw, dict) else None
    raise ProviderError(why.raw if isinstance(why, Value) and isinstance(why.raw, str) else "error")


TEST_PROVIDERS = {"test": lambda inputs: inputs, "secret-wrapper": _secret_wrapper, "error": _error}


def evaluate_case(case: str) -> Evaluation:
    root = FIXTURES / case / "env.yaml"
    if not root.is_file():
        pytest.fail(
            f"{root} is missing: the fixture inputs (*.yaml) must be copied with expected.json; restore them "
            "from the commit named in specs/pulumi-esc/SOURCE.txt."
        )
    return evaluate_file(root, name=case, providers=TEST_PROVIDERS, context={"pulumi": {"user": {"id": "USER_123"}}})


def expected_of(case: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((FIXTURES / case / "expected.json").read_text(encoding="utf-8"))
    return data


UNKNOWN = "<unknown>"


def upstream_tree(node: dict[str, Any]) -> Any:
    """An ESC `Value` object as (value, secret) pairs, UNKNOWN for unknown values."""
    if node.get("unknown"):
        return UNKNOWN
    inner = node.get("value")
    if isinstance(inner, list):
        inner = [upstream_tree(item) for item in inner]
    elif isinstance(inner, dict):
        inner = {key: upstream_tree(item) for key, item in inner.items()}
    return (inner, bool(node.get("secret")))


def our_tree(value: Value) -> Any:
    if value.unknown:
        return UNKNOWN
    inner = value.raw
    if isinstance(inner, list):
        inner = [our_tree(item) for item in inner]
    elif isinstance(inner, dict):
        inner = {key: our_tree(item) for key, item in inner.items()}
    return (inner, value.secret)


def differences(ours: Any, theirs: Any, path: str, excused: set[str]) -> list[str]:
    """Where our tree differs from upstream's; an unknown of ours at an `excused` path is no difference."""
    if ours == UNKNOWN or theirs == UNKNOWN:
        if ours == theirs or (ours == UNKNOWN and path in excused):
            return []
        return [f"{path or '<root>'}: ours {_show(ours)}, upstream {_show(theirs)}"]
    (our_inner, our_secret), (their_inner, their_secret) = ours, theirs
    if our_secret != their_secret:
        return [f"{path}: secret ours {our_secret}, upstream {their_secret}"]
    if isinstance(our_inner, dict) and isinstance(their_inner, dict):
        found = []
        for key in sorted(set(our_inner) | set(their_inner)):
            child = f"{path}.{key}" if path else key
            if key not in our_inner:
                found.append(f"{child}: missing in ours")
            elif key not in their_inner:
                found.append(f"{child}: not in upstream")
            else:
                found.extend(differences(our_inner[key], their_inner[key], child, excused))
        return found
    if isinstance(our_inner, list) and isinstance(their_inner, list) and len(our_inner) == len(their_inner):
        found = []
        for index, (mine, upstream) in enumerate(zip(our_inner, their_inner, strict=True)):
            found.extend(differences(mine, upstream, f"{path}[{index}]", excused))
        return found
    if our_inner != their_inner or type(our_inner) is not type(their_inner):
        return [f"{path}: ours {_show(ours)}, upstream {_show(theirs)}"]
    return []


def _show(tree: Any) -> str:
    return UNKNOWN if tree == UNKNOWN else json.dumps(tree)[:200]


def has_diagnostics(expected: dict[str, Any]) -> bool:
    return any(expected.get(key) for key in ("loadDiags", "checkDiags", "evalDiags"))


@pytest.mark.parametrize("case", SUPPORTED)
def test_fixture_evaluates_like_pulumi_esc(case: str) -> None:
    expected = expected_of(case)

    if "eval" not in expected and has_diagnostics(expected):
        # Upstream stops at loading (e.g. YAML that does not parse): so must we, with the file named.
        with pytest.raises(EscLoadError) as caught:
            evaluate_case(case)
        assert caught.value.file.name == "env.yaml" and caught.value.problem
        return

    evaluation = evaluate_case(case)
    upstream = {
        key: upstream_tree(node) for key, node in ((expected.get("eval") or {}).get("properties") or {}).items()
    }
    ours = {key: our_tree(value) for key, value in evaluation.values.items()}

    if not has_diagnostics(expected):
        assert [str(d) for d in evaluation.diagnostics] == []
        assert differences(({**ours}, False), ({**upstream}, False), "", set()) == []
        return

    assert evaluation.diagnostics, f"{case}: upstream reports a problem, we report none"
    assert all(d.message for d in evaluation.diagnostics)
    excused = {d.path for d in evaluation.diagnostics}
    assert differences((ours, False), (upstream, False), "", excused) == []


def test_supported_fixture_count() -> None:
    """The number issue 11 asks for; the reasons for the rest are in OUT_OF_SCOPE."""
    assert len(CASES) == 48
    assert len(SUPPORTED) == 42
    assert set(OUT_OF_SCOPE) <= set(CASES)


@pytest.mark.parametrize("case", sorted(REFUSAL))
def test_out_of_scope_fixture_is_refused_with_a_reason(case: str) -> None:
    evaluation = evaluate_case(case)
    messages = [str(d) for d in evaluation.diagnostics]
    assert any(REFUSAL[case] in message for message in messages), messages
    refused = {d.path for d in evaluation.diagnostics if REFUSAL[case] in d.message}
    for path, value in walk(Value(dict(evaluation.values))):
        dotted = ".".join(str(part) for part in path)
        if dotted in refused:
            assert value.unknown, f"{dotted} was refused but has a value"


def test_refusals_never_quote_the_ciphertext() -> None:
    evaluation = evaluate_case("ciphertext")
    assert evaluation.diagnostics
    assert all("ZXNjeA" not in str(d) + d.hint for d in evaluation.diagnostics)


def test_plain_values_of_a_fixture_match_esc_open_json() -> None:
    """`evalJSONRevealed` is what `esc open --format json` prints: our plain values are the same."""
    expected = expected_of("omnibus")
    evaluation = evaluate_case("omnibus")
    assert {key: plain(value) for key, value in evaluation.values.items()} == expected["evalJSONRevealed"]
