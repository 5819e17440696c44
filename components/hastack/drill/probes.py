"""What a drill watches while it breaks things: a writer, a /primary poller and a read prober.

Each probe is a daemon thread with a hard deadline and an iteration cap, recording timestamps on the
monotonic clock that :mod:`hastack.drill.stats` measures from. Traffic goes only to the stack's loopback
addresses.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import psycopg

from .stats import Poll

TABLE = "hastack_drill"
CONNECT_TIMEOUT_S = 1
WRITER_INTERVAL_S = 0.01
POLL_INTERVAL_S = 0.1
READ_INTERVAL_S = 0.2


def connect(dsn: str, timeout: int = CONNECT_TIMEOUT_S) -> psycopg.Connection[Any]:
    # The DSN lists every proxy; libpq tries them in order, each bounded by connect_timeout.
    return psycopg.connect(dsn, connect_timeout=timeout, autocommit=True)


def ensure_table(dsn: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with connect(dsn, 2) as conn:
                conn.execute(
                    f"create table if not exists {TABLE} (run text not null, id bigint not null, "
                    "at timestamptz not null default now(), primary key (run, id))"
                )
                return
        except psycopg.Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def stored_ids(dsn: str, run: str, timeout: float = 30) -> set[int]:
    """Ids of ``run`` that the current primary has, retried until it answers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with connect(dsn, 2) as conn:
                return {row[0] for row in conn.execute(f"select id from {TABLE} where run = %s", (run,))}
        except psycopg.Error:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def forget_run(dsn: str, run: str) -> None:
    try:
        with connect(dsn, 2) as conn:
            conn.execute(f"delete from {TABLE} where run = %s", (run,))
    except psycopg.Error:
        pass  # housekeeping only: leftover rows of a finished run change no measurement


class _Probe(threading.Thread):
    def __init__(self, name: str, max_seconds: float):
        super().__init__(name=name, daemon=True)
        self._halt = threading.Event()
        self._deadline = time.monotonic() + max_seconds

    def stop(self) -> None:
        self._halt.set()

    def _running(self) -> bool:
        return not self._halt.is_set() and time.monotonic() < self._deadline


@dataclass
class WriterLog:
    acks: list[tuple[int, float]] = field(default_factory=list)
    """(id, time the commit was acknowledged)."""
    unsure: list[int] = field(default_factory=list)
    """Ids whose insert failed or was not confirmed: they may or may not exist, and are not counted."""
    errors: list[tuple[float, str]] = field(default_factory=list)
    connections: list[tuple[float, str]] = field(default_factory=list)
    """(time, server address) of every successful connection: which node the write port led to."""


class Writer(_Probe):
    """Inserts increasing ids through the proxy write port, one autocommit insert at a time.

    A commit counts as acknowledged only when Postgres returns success without warning that it stopped
    waiting for the synchronous standby (that warning means the commit is local only).
    """

    def __init__(self, dsn: str, run: str, interval: float = WRITER_INTERVAL_S, max_seconds: float = 300):
        super().__init__("drill-writer", max_seconds)
        self.dsn, self.run_id, self.interval = dsn, run, interval
        self.log = WriterLog()
        self._conn: psycopg.Connection[Any] | None = None
        self._sync_wait_cancelled = False

    def _on_notice(self, diag: psycopg.errors.Diagnostic) -> None:
        if "synchronous replication" in (diag.message_primary or ""):
            self._sync_wait_cancelled = True

    def _connect(self) -> None:
        conn = connect(self.dsn)
        conn.add_notice_handler(self._on_notice)
        row = conn.execute("select host(inet_server_addr())").fetchone()
        self.log.connections.append((time.monotonic(), str(row[0]) if row else "?"))
        self._conn = conn

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(psycopg.Error):
                self._conn.close()
            self._conn = None

    def run(self) -> None:
        next_id = 0
        # At most one attempt per 5 ms, whatever happens: a hard cap besides the deadline.
        for _ in range(int((self._deadline - time.monotonic()) / 0.005) + 1):
            if not self._running():
                break
            if self._conn is None:
                try:
                    self._connect()
                except psycopg.Error as exc:
                    self.log.errors.append((time.monotonic(), f"connect: {str(exc).strip()[:160]}"))
                    time.sleep(0.05)
                    continue
            next_id += 1
            self._sync_wait_cancelled = False
            assert self._conn is not None
            try:
                self._conn.execute(f"insert into {TABLE} (run, id) values (%s, %s)", (self.run_id, next_id))
            except psycopg.Error as exc:
                self.log.unsure.append(next_id)
                self.log.errors.append((time.monotonic(), f"insert: {str(exc).strip()[:160]}"))
                self._drop()
                continue
            if self._sync_wait_cancelled:
                self.log.unsure.append(next_id)
            else:
                self.log.acks.append((next_id, time.monotonic()))
            time.sleep(self.interval)
        self._drop()


class PrimaryPoller(_Probe):
    """Every ``interval``: GET /primary on every Patroni at once, and the leader key in Consul."""

    def __init__(
        self,
        patroni: dict[str, str],
        consul: list[str],
        leader_key: str,
        interval: float = POLL_INTERVAL_S,
        timeout: float = 0.3,
        max_seconds: float = 300,
    ):
        super().__init__("drill-primary-poller", max_seconds)
        self.patroni, self.consul, self.leader_key = patroni, consul, leader_key
        self.interval, self.timeout = interval, timeout
        self.polls: list[Poll] = []
        self.leader_key_log: list[tuple[float, str | None]] = []
        """(time, node holding the Patroni leader key, None if no key; "?" if no Consul server answered)."""

    def _status(self, base: str, path: str, method: str = "GET") -> tuple[int | None, bytes]:
        u = urlsplit(base)
        conn = http.client.HTTPConnection(u.hostname or "", u.port, timeout=self.timeout)
        try:
            conn.request(method, path)
            resp = conn.getresponse()
            return resp.status, resp.read()
        except OSError:
            return None, b""
        finally:
            conn.close()

    def _leader(self) -> str | None:
        for base in self.consul:
            # ?stale: any live server answers, even while the Raft leader is the host that was killed.
            code, body = self._status(base, f"/v1/kv/{self.leader_key}?stale")
            if code == 404:
                return None
            if code == 200:
                try:
                    return base64.b64decode(json.loads(body)[0]["Value"] or b"").decode() or None
                except (ValueError, KeyError, IndexError):
                    return "?"
        return "?"

    def run(self) -> None:
        names = list(self.patroni)
        with ThreadPoolExecutor(max_workers=len(names) + 1, thread_name_prefix="drill-poll") as pool:
            for _ in range(int((self._deadline - time.monotonic()) / self.interval) + 1):
                if not self._running():
                    break
                tick = time.monotonic()
                futures = {n: pool.submit(self._status, self.patroni[n], "/primary") for n in names}
                leader = pool.submit(self._leader)
                answers = {n: f.result() for n, f in futures.items()}
                started = {n: s for n, (code, body) in answers.items() if code == 200 and (s := _started(body))}
                self.polls.append(Poll(tick, {n: code for n, (code, _) in answers.items()}, started))
                self.leader_key_log.append((tick, leader.result()))
                time.sleep(max(0.0, self.interval - (time.monotonic() - tick)))


def _started(body: bytes) -> str | None:
    try:
        value = json.loads(body).get("postmaster_start_time")
    except (ValueError, AttributeError):
        return None
    return str(value) if value else None


class ReadProber(_Probe):
    """A fresh connection to the read port every ``interval`` and one query: can a client read right now?"""

    def __init__(self, dsn: str, interval: float = READ_INTERVAL_S, max_seconds: float = 300):
        super().__init__("drill-read-prober", max_seconds)
        self.dsn, self.interval = dsn, interval
        self.results: list[tuple[float, bool]] = []

    def run(self) -> None:
        for _ in range(int((self._deadline - time.monotonic()) / self.interval) + 1):
            if not self._running():
                break
            started = time.monotonic()
            try:
                with connect(self.dsn) as conn:
                    conn.execute("select 1").fetchone()
                self.results.append((time.monotonic(), True))
            except psycopg.Error:
                self.results.append((time.monotonic(), False))
            time.sleep(max(0.0, self.interval - (time.monotonic() - started)))
