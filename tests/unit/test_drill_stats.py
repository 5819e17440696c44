"""Contracts of the drill measurements: what counts as an outage, a lost write, split brain, a new primary."""

from __future__ import annotations

import json

import pytest

from hastack.drill import report
from hastack.drill.runner import RunResult, ScenarioResult
from hastack.drill.stats import (
    Poll,
    largest_gap,
    lost_writes,
    new_primary_after,
    percentile,
    read_stats,
    split_brain_ticks,
    summarize,
)


def test_percentiles_interpolate_like_numpy() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert percentile(values, 50) == 3.0
    assert percentile(values, 95) == pytest.approx(8.8)
    assert percentile([5.0], 95) == 5.0
    s = summarize(values)
    assert (s.p50, s.max) == (3.0, 10.0)
    assert s.as_dict() == {"p50": 3.0, "p95": 8.8, "max": 10.0}


def test_percentile_of_nothing_is_refused() -> None:
    with pytest.raises(ValueError, match="no values"):
        percentile([], 50)


def test_outage_is_the_largest_gap_between_consecutive_acks() -> None:
    gap = largest_gap([1.0, 1.1, 1.2, 4.7, 4.8], window_start=1.0, window_end=5.0)
    assert (gap.start, gap.end) == (1.2, 4.7)
    assert gap.seconds == pytest.approx(3.5)


def test_acks_that_never_resume_make_an_outage_to_the_end_of_the_window() -> None:
    assert largest_gap([1.0, 1.1], window_start=1.0, window_end=9.0).seconds == pytest.approx(7.9)


def test_acks_outside_the_window_are_ignored() -> None:
    assert largest_gap([0.1, 2.0, 2.1, 50.0], window_start=2.0, window_end=2.5).seconds == pytest.approx(0.4)


def test_lost_writes_are_acked_ids_missing_after_recovery() -> None:
    # 4 was attempted but never acknowledged: its absence is not a loss, and extra rows are fine.
    assert lost_writes(acked=[1, 2, 3, 5], present={1, 2, 4, 5, 6}) == [3]
    assert lost_writes(acked=[], present=set()) == []


def test_split_brain_is_two_200s_in_the_same_tick() -> None:
    polls = [
        Poll(0.0, {"a": 200, "b": 503, "c": 503}),
        Poll(0.1, {"a": 200, "b": 200, "c": None}),
        Poll(0.2, {"a": None, "b": 200, "c": 503}),
    ]
    assert [p.at for p in split_brain_ticks(polls)] == [0.1]


def test_no_answer_is_not_a_primary() -> None:
    assert Poll(0.0, {"a": None, "b": 503}).primaries == ()


def test_new_primary_is_the_first_other_node_answering_200_after_the_fault() -> None:
    polls = [
        Poll(0.9, {"a": 200, "b": 503}),
        Poll(1.1, {"a": None, "b": 503}),
        Poll(3.6, {"a": None, "b": 200}),
    ]
    at, node = new_primary_after(polls, fault_at=1.0, old_primary="a") or (None, None)
    assert node == "b"
    assert at == pytest.approx(2.6)


def test_a_crashed_postmaster_restarted_in_place_counts_once_it_is_a_new_postmaster() -> None:
    # Patroni's REST API keeps answering 200 from cached state while Postgres is down.
    polls = [
        Poll(0.5, {"a": 200, "b": 503}, {"a": "08:00:00"}),
        Poll(1.5, {"a": 200, "b": 503}, {"a": "08:00:00"}),
        Poll(3.0, {"a": 200, "b": 503}, {"a": "08:00:02"}),
    ]
    assert new_primary_after(polls, fault_at=1.0, old_primary="a") == (2.0, "a")


def test_no_new_primary_when_only_the_old_one_answers() -> None:
    polls = [Poll(2.0, {"a": 200, "b": 503}, {"a": "x"}), Poll(3.0, {"a": 200, "b": 503}, {"a": "x"})]
    assert new_primary_after(polls, fault_at=1.0, old_primary="a") is None


def test_read_availability_counts_successful_probes_in_the_window() -> None:
    rs = read_stats([(0.5, True), (1.0, True), (1.2, False), (1.4, False), (2.0, True)], 1.0, 2.0)
    assert (rs.probes, rs.ok) == (4, 2)
    assert rs.availability == 0.5
    assert rs.longest_gap_s == pytest.approx(1.0)


def _scenario(name: str, outages: list[float], lost: int = 0) -> ScenarioResult:
    res = ScenarioResult(name)
    for i, o in enumerate(outages, 1):
        res.runs.append(RunResult(name, i, "a", "kill", new_primary="b", outage_s=o, new_primary_s=o - 0.5))
    res.runs[0].lost_acked = list(range(lost))
    return res


def test_bench_json_has_exactly_the_issue_shape() -> None:
    doc = json.loads(report.bench_json([_scenario("node-loss", [3.0, 2.0, 4.0], lost=1)], {"k": 1}, {"cpus": 2}))
    assert set(doc) == {"scenarios", "config", "machine"}
    s = doc["scenarios"]["node-loss"]
    assert set(s) == {"runs", "outage_s", "new_primary_s", "lost_acked", "split_brain"}
    assert s["runs"] == 3 and s["lost_acked"] == 1 and s["split_brain"] == 0
    assert s["outage_s"] == {"p50": 3.0, "p95": 3.9, "max": 4.0}


def test_benchmarks_markdown_puts_every_scenario_next_to_the_anchors() -> None:
    from hastack.spec import load_spec

    config = report.settings(
        load_spec({"platform": "local"}),
        "drill",
        {"writer_interval_ms": 10, "connect_timeout_s": 1, "poll_interval_ms": 100, "read_interval_ms": 200},
    )
    md = report.benchmarks_markdown(
        [_scenario("switchover", [1.2, 1.3]), _scenario("node-loss", [2.5, 3.0])],
        config,
        {"cpus": 2},
        "2026-01-01 00:00 UTC",
        "bench/results/x.json",
    )
    assert "| node-loss | 2 | 2.8 / 3.0 / 3.0 |" in md
    assert "| switchover | 2 | 1.2 / 1.3 / 1.3 |" in md
    for name, _ in report.ANCHORS:
        assert name in md
