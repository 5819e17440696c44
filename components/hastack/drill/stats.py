"""Pure measurements of a drill: what the writer, the /primary poller and the read prober recorded.

No I/O here: every function takes the logs the probes produced and returns numbers, so each rule (what
counts as an outage, as a lost write, as split brain) is tested in milliseconds.

Times are seconds on one monotonic clock shared by every probe of a run.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Summary:
    """p50/p95/max of one metric over a scenario's runs."""

    p50: float
    p95: float
    max: float

    def as_dict(self, digits: int = 2) -> dict[str, float]:
        return {"p50": round(self.p50, digits), "p95": round(self.p95, digits), "max": round(self.max, digits)}


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolation percentile (numpy's default), ``q`` in [0, 100]."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"q must be in [0, 100], got {q}")
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    lo, hi = math.floor(rank), math.ceil(rank)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (rank - lo)


def summarize(values: Sequence[float]) -> Summary:
    return Summary(percentile(values, 50), percentile(values, 95), max(values))


@dataclass(frozen=True)
class Gap:
    """The largest stretch without an acknowledged write: from the last ack before it to the first after."""

    start: float
    end: float

    @property
    def seconds(self) -> float:
        return self.end - self.start


def largest_gap(ack_times: Sequence[float], window_start: float, window_end: float) -> Gap:
    """Largest gap between consecutive acknowledged writes inside [window_start, window_end].

    The window edges count as acknowledgements, so a writer that never got an ack back after the fault
    shows an outage running to the end of the window rather than none at all.
    """
    if window_end < window_start:
        raise ValueError("window_end before window_start")
    points = [window_start, *sorted(t for t in ack_times if window_start <= t <= window_end), window_end]
    best = Gap(points[0], points[0])
    for a, b in itertools.pairwise(points):
        if b - a > best.seconds:
            best = Gap(a, b)
    return best


def lost_writes(acked: Iterable[int], present: Iterable[int]) -> list[int]:
    """Acknowledged ids that are missing after recovery, ascending."""
    return sorted(set(acked) - set(present))


@dataclass(frozen=True)
class Poll:
    """One tick of the /primary poller: HTTP status per node (None: no answer within the timeout)."""

    at: float
    status: Mapping[str, int | None]
    started: Mapping[str, str] = field(default_factory=dict)
    """Postmaster start time each answering node reported: a change means Postgres was restarted."""

    @property
    def primaries(self) -> tuple[str, ...]:
        return tuple(sorted(n for n, code in self.status.items() if code == 200))


def split_brain_ticks(polls: Iterable[Poll]) -> list[Poll]:
    """Ticks in which more than one node answered 200 on /primary."""
    return [p for p in polls if len(p.primaries) > 1]


def new_primary_after(polls: Sequence[Poll], fault_at: float, old_primary: str) -> tuple[float, str] | None:
    """(seconds after the fault, node) when a primary is serving again, or None if none was seen.

    Either another node answers 200, or the old primary answers 200 from a postmaster started after the
    fault: Patroni restarts a crashed postmaster in place while it still holds the leader key, and its REST
    API answers 200 from cached state meanwhile, so a 200 alone does not mean Postgres is back.
    """
    ordered = sorted(polls, key=lambda p: p.at)
    before = [p.started.get(old_primary) for p in ordered if p.at < fault_at and p.started.get(old_primary)]
    old_start = before[-1] if before else None
    for p in ordered:
        if p.at < fault_at:
            continue
        others = [n for n in p.primaries if n != old_primary]
        if others:
            return p.at - fault_at, others[0]
        restarted = p.started.get(old_primary)
        if old_primary in p.primaries and old_start and restarted and restarted != old_start:
            return p.at - fault_at, old_primary
    return None


@dataclass(frozen=True)
class ReadStats:
    """Read port availability: share of successful probes and the longest run without one."""

    probes: int
    ok: int
    longest_gap_s: float

    @property
    def availability(self) -> float:
        return self.ok / self.probes if self.probes else 0.0


def read_stats(results: Sequence[tuple[float, bool]], window_start: float, window_end: float) -> ReadStats:
    """From (time, succeeded) probe results within the window."""
    inside = [(t, ok) for t, ok in results if window_start <= t <= window_end]
    ok_times = [t for t, ok in inside if ok]
    gap = largest_gap(ok_times, window_start, window_end).seconds
    return ReadStats(len(inside), len(ok_times), gap)
