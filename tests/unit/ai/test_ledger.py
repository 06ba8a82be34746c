"""The usage ledger: totals, grouping, unknown costs, recommendations, the budget and two writers at once."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from sophia_ai_intelligence.ledger import (
    UsageEvent,
    UsageLedger,
    ai_state_dir,
    budget_status,
    check_budget,
    open_ledger,
)
from sophia_ai_intelligence.prices import shipped_price_table
from sophia_ai_intelligence.settings import SETTINGS
from sophia_shared.errors import ConfigError, PolicyError
from sophia_shared.settings import Settings

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MONTH_START = datetime(2026, 11, 1, tzinfo=UTC)
NEXT_MONTH = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture
def ledger(tmp_path: Path) -> UsageLedger:
    return UsageLedger(tmp_path / "ai" / "ledger.sqlite3")


def _event(**overrides: object) -> UsageEvent:
    values: dict[str, object] = {
        "at": NOW,
        "tool": "chat",
        "profile": "default",
        "provider": "openai",
        "model": "gpt-4o-mini",
        "input_tokens": 100,
        "output_tokens": 50,
        "latency_ms": 120.0,
        "cost_usd": 0.01,
        "cache_status": "miss",
    }
    values.update(overrides)
    return UsageEvent(**values)  # type: ignore[arg-type]


def _settings(tmp_path: Path, **values: str) -> Settings:
    return Settings(environ=values, cwd=tmp_path, specs=SETTINGS)


def test_ledger_lives_in_the_ai_folder_of_the_data_dir(tmp_path: Path) -> None:
    settings = _settings(tmp_path, SOPHIA_DATA_DIR=str(tmp_path / "data"))
    assert UsageLedger.from_settings(settings).path == tmp_path / "data" / "ai" / "ledger.sqlite3"
    assert ai_state_dir(settings) == tmp_path / "data" / "ai"
    assert not open_ledger(settings).path.exists()  # opened by the first call, not before


def test_totals_match_the_calls_recorded(ledger: UsageLedger) -> None:
    ledger.record(_event(input_tokens=100, output_tokens=10, cost_usd=0.25))
    ledger.record(_event(input_tokens=200, output_tokens=20, cost_usd=0.50, tool="compare"))
    ledger.record(_event(input_tokens=300, output_tokens=30, cost_usd=0.0, cache_status="hit"))
    total = ledger.totals(since=MONTH_START, until=NEXT_MONTH)
    assert (total.calls, total.input_tokens, total.output_tokens) == (3, 600, 60)
    assert total.cost_usd == pytest.approx(0.75)
    assert total.cache_hits == 1 and total.cache_consulted == 3 and total.cache_hit_rate == pytest.approx(1 / 3)


def test_summary_groups_by_day_model_provider_and_tool(ledger: UsageLedger) -> None:
    ledger.record(_event(at=NOW - timedelta(days=1), model="gpt-4o", cost_usd=1.0))
    ledger.record(_event(model="gpt-4o-mini", cost_usd=0.1, provider="openai"))
    ledger.record(_event(model="claude-3-5-haiku-20241022", provider="anthropic", tool="compare", cost_usd=0.2))
    days = ledger.summary(since=MONTH_START, until=NEXT_MONTH, group_by="day")
    assert [(r.key, r.calls) for r in days] == [("2026-11-19", 1), ("2026-11-20", 2)]
    models = ledger.summary(since=MONTH_START, until=NEXT_MONTH, group_by="model")
    assert [r.key for r in models] == ["gpt-4o", "claude-3-5-haiku-20241022", "gpt-4o-mini"]  # costliest first
    providers = {r.key: r.calls for r in ledger.summary(since=MONTH_START, until=NEXT_MONTH, group_by="provider")}
    assert providers == {"openai": 2, "anthropic": 1}
    tools = {r.key: r.cost_usd for r in ledger.summary(since=MONTH_START, until=NEXT_MONTH, group_by="tool")}
    assert tools == pytest.approx({"chat": 1.1, "compare": 0.2})


def test_summary_period_is_half_open(ledger: UsageLedger) -> None:
    ledger.record(_event(at=MONTH_START))
    ledger.record(_event(at=NEXT_MONTH))
    assert ledger.totals(since=MONTH_START, until=NEXT_MONTH).calls == 1


def test_unknown_costs_are_counted_apart_not_as_zero_spend(ledger: UsageLedger) -> None:
    ledger.record(_event(model="mystery", cost_usd=None))
    ledger.record(_event(cost_usd=0.3))
    total = ledger.totals(since=MONTH_START, until=NEXT_MONTH)
    assert total.cost_usd == pytest.approx(0.3) and total.unknown_cost_calls == 1
    mystery = next(
        r for r in ledger.summary(since=MONTH_START, until=NEXT_MONTH, group_by="model") if r.key == "mystery"
    )
    assert mystery.unknown_cost_calls == 1 and mystery.cost_usd == 0.0
    spend, unknown = ledger.month_totals(NOW)
    assert spend == pytest.approx(0.3) and unknown == 1
    assert ledger.month_spend(NOW) == pytest.approx(0.3)


def test_hit_rate_counts_only_calls_that_consulted_the_cache(ledger: UsageLedger) -> None:
    ledger.record(_event(cache_status="off"))
    assert ledger.totals(since=MONTH_START, until=NEXT_MONTH).cache_hit_rate is None


def test_errors_are_recorded_and_counted(ledger: UsageLedger) -> None:
    ledger.record(_event(error="BackendError: 503", cost_usd=None, input_tokens=None, output_tokens=None))
    total = ledger.totals(since=MONTH_START, until=NEXT_MONTH)
    assert total.calls == 1 and total.errors == 1 and total.input_tokens == 0


def test_month_spend_covers_only_the_calendar_month(ledger: UsageLedger) -> None:
    ledger.record(_event(at=MONTH_START - timedelta(seconds=1), cost_usd=5.0))
    ledger.record(_event(at=MONTH_START, cost_usd=1.0))
    ledger.record(_event(at=NEXT_MONTH - timedelta(microseconds=1), cost_usd=2.0))
    assert ledger.month_spend(NOW) == pytest.approx(3.0)
    assert ledger.month_spend(datetime(2026, 12, 31, 23, 0, tzinfo=UTC)) == 0.0


def test_naive_times_are_refused(ledger: UsageLedger) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ledger.record(_event(at=datetime(2026, 11, 20)))


# -- recommendations -------------------------------------------------------------------------------


def test_repeated_uncached_prompts_are_priced_as_cache_savings(ledger: UsageLedger) -> None:
    for minutes in (0, 10, 20):
        ledger.record(_event(at=NOW + timedelta(minutes=minutes), prompt_hash="p1", cost_usd=0.2, cache_status="off"))
    ledger.record(_event(at=NOW, prompt_hash="p2", cost_usd=0.7, cache_status="miss"))  # asked once
    ledger.record(_event(at=NOW + timedelta(minutes=5), prompt_hash="p2", cost_usd=0.0, cache_status="hit"))
    (rec,) = ledger.recommendations(since=MONTH_START, until=NEXT_MONTH, prices=shipped_price_table())
    assert rec.kind == "cache" and rec.calls == 2 and rec.saving_usd == pytest.approx(0.4)
    assert "2 calls" in rec.text and "$0.4000" in rec.text and rec.details["distinct_prompts"] == 1


def test_repeats_beyond_the_cache_ttl_are_not_counted_as_savings(ledger: UsageLedger) -> None:
    ledger.record(_event(at=NOW, prompt_hash="p1", cost_usd=0.2, cache_status="off"))
    ledger.record(_event(at=NOW + timedelta(hours=2), prompt_hash="p1", cost_usd=0.2, cache_status="off"))
    recs = ledger.recommendations(since=MONTH_START, until=NEXT_MONTH, prices=shipped_price_table())
    assert recs == []
    (rec,) = ledger.recommendations(
        since=MONTH_START, until=NEXT_MONTH, prices=shipped_price_table(), cache_ttl_seconds=3 * 3600
    )
    assert rec.calls == 1 and rec.saving_usd == pytest.approx(0.2)


def test_a_cheaper_model_that_served_the_same_tool_is_recommended_with_its_figures(ledger: UsageLedger) -> None:
    prices = shipped_price_table()
    # 4 summarise calls on gpt-4o (2,000 in / 500 out each) at its real list price.
    gpt4o = prices.cost("gpt-4o", 2000, 500)
    assert gpt4o is not None
    for i in range(4):
        ledger.record(
            _event(
                tool="summarise",
                model="gpt-4o",
                input_tokens=2000,
                output_tokens=500,
                cost_usd=gpt4o,
                prompt_hash=f"a{i}",
            )
        )
    mini = prices.cost("gpt-4o-mini", 1800, 400)
    ledger.record(_event(tool="summarise", model="gpt-4o-mini", input_tokens=1800, output_tokens=400, cost_usd=mini))
    recs = ledger.recommendations(since=MONTH_START, until=NEXT_MONTH, prices=prices)
    (rec,) = [r for r in recs if r.kind == "cheaper_model"]
    there = prices.cost("gpt-4o-mini", 8000, 2000)
    assert there is not None
    assert rec.details["model"] == "gpt-4o" and rec.details["cheaper_model"] == "gpt-4o-mini"
    assert rec.calls == 4 and rec.current_cost_usd == pytest.approx(4 * gpt4o)
    assert rec.saving_usd == pytest.approx(4 * gpt4o - there)
    assert rec.details["avg_input_tokens"] == 2000 and rec.details["cheaper_model_calls"] == 1
    assert f"${4 * gpt4o:.4f}" in rec.text and f"${4 * gpt4o - there:.4f}" in rec.text


def test_no_model_recommendation_across_tools_or_very_different_sizes(ledger: UsageLedger) -> None:
    ledger.record(_event(tool="summarise", model="gpt-4o", input_tokens=2000, output_tokens=500, cost_usd=0.01))
    ledger.record(_event(tool="classify", model="gpt-4o-mini", input_tokens=2000, output_tokens=500, cost_usd=0.0006))
    ledger.record(_event(tool="summarise", model="gpt-4.1-nano", input_tokens=50, output_tokens=5, cost_usd=0.00001))
    recs = ledger.recommendations(since=MONTH_START, until=NEXT_MONTH, prices=shipped_price_table())
    assert [r for r in recs if r.kind == "cheaper_model"] == []


def test_a_model_whose_price_is_unknown_is_never_recommended(ledger: UsageLedger) -> None:
    ledger.record(_event(tool="chat", model="gpt-4o", input_tokens=1000, output_tokens=100, cost_usd=0.0035))
    ledger.record(_event(tool="chat", model="house-llm", input_tokens=1000, output_tokens=100, cost_usd=0.0))
    recs = ledger.recommendations(since=MONTH_START, until=NEXT_MONTH, prices=shipped_price_table())
    assert recs == []


# -- budget ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spend", "alerts"),
    [
        (749.99, ()),
        (750.00, ("75%",)),
        (899.99, ("75%",)),
        (900.00, ("75%", "90%")),
        (999.99, ("75%", "90%")),
        (1000.00, ("75%", "90%", "100%")),
    ],
)
def test_budget_alerts_start_exactly_at_each_threshold(
    ledger: UsageLedger, tmp_path: Path, spend: float, alerts: tuple[str, ...]
) -> None:
    ledger.record(_event(cost_usd=spend))
    status = budget_status(ledger, _settings(tmp_path), NOW)
    assert status.budget_usd == 1000.0  # the declared default
    assert status.alerts == alerts
    assert status.percent == pytest.approx(spend / 10)
    assert bool(status.alert_text()) == bool(alerts)


def test_budget_threshold_is_reached_by_a_sum_of_small_costs(ledger: UsageLedger, tmp_path: Path) -> None:
    for cost in (0.1, 0.2):  # 0.1 + 0.2 is 0.30000000000000004 in floats
        ledger.record(_event(cost_usd=cost))
    status = budget_status(ledger, _settings(tmp_path, SOPHIA_AI_MONTHLY_BUDGET_USD="0.4"), NOW)
    assert status.alerts == ("75%",)


def test_alert_text_carries_spend_budget_and_unknown_calls(ledger: UsageLedger, tmp_path: Path) -> None:
    ledger.record(_event(cost_usd=91.0))
    ledger.record(_event(cost_usd=None, model="mystery"))
    status = budget_status(ledger, _settings(tmp_path, SOPHIA_AI_MONTHLY_BUDGET_USD="100"), NOW)
    text = status.alert_text()
    assert "(90%)" in text and "91.0 %" in text and "$91.00 of $100.00" in text and "1 calls of unknown cost" in text


def test_without_hard_stop_calls_past_the_budget_are_allowed(ledger: UsageLedger, tmp_path: Path) -> None:
    ledger.record(_event(cost_usd=1500.0))
    status = check_budget(ledger, _settings(tmp_path), NOW)
    assert status.alerts[-1] == "100%" and not status.blocked and not status.hard_stop


def test_hard_stop_refuses_once_the_budget_is_spent(ledger: UsageLedger, tmp_path: Path) -> None:
    settings = _settings(tmp_path, SOPHIA_AI_MONTHLY_BUDGET_USD="10", SOPHIA_AI_BUDGET_HARD_STOP="1")
    ledger.record(_event(cost_usd=9.99))
    assert not check_budget(ledger, settings, NOW).blocked
    ledger.record(_event(cost_usd=0.01))
    with pytest.raises(PolicyError) as caught:
        check_budget(ledger, settings, NOW)
    message = caught.value.agent_message()
    assert "$10.00 of $10.00" in message and "SOPHIA_AI_MONTHLY_BUDGET_USD" in message
    assert "SOPHIA_AI_BUDGET_HARD_STOP=0" in message


def test_hard_stop_lifts_in_the_next_month(ledger: UsageLedger, tmp_path: Path) -> None:
    settings = _settings(tmp_path, SOPHIA_AI_MONTHLY_BUDGET_USD="10", SOPHIA_AI_BUDGET_HARD_STOP="1")
    ledger.record(_event(cost_usd=50.0))
    assert check_budget(ledger, settings, NEXT_MONTH + timedelta(hours=1)).spend_usd == 0.0


def test_a_zero_or_bad_budget_is_a_config_error(ledger: UsageLedger, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="more than 0"):
        budget_status(ledger, _settings(tmp_path, SOPHIA_AI_MONTHLY_BUDGET_USD="0"), NOW)
    with pytest.raises(ConfigError, match="SOPHIA_AI_MONTHLY_BUDGET_USD"):
        budget_status(ledger, _settings(tmp_path, SOPHIA_AI_MONTHLY_BUDGET_USD="lots"), NOW)


# -- two processes ---------------------------------------------------------------------------------

_WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from pathlib import Path
    from sophia_ai_intelligence.ledger import UsageEvent, UsageLedger

    ledger = UsageLedger(Path(sys.argv[1]))
    print("ready", flush=True)
    sys.stdin.readline()  # both writers start together
    for i in range(int(sys.argv[3])):
        ledger.record(UsageEvent(at=datetime.now(UTC), tool=sys.argv[2], profile="p", provider="openai",
                                 model="gpt-4o-mini", input_tokens=1, output_tokens=1, cost_usd=0.001))
    """
)


@pytest.mark.slow
def test_two_processes_appending_at_once_lose_no_rows(ledger: UsageLedger) -> None:
    per_writer = 150
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(ledger.path), tool, str(per_writer)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for tool in ("window-a", "window-b")
    ]
    for proc in writers:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    for proc in writers:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    for proc in writers:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    since, until = datetime(2000, 1, 1, tzinfo=UTC), datetime(2100, 1, 1, tzinfo=UTC)
    tools = {r.key: r.calls for r in ledger.summary(since=since, until=until, group_by="tool")}
    assert tools == {"window-a": per_writer, "window-b": per_writer}
