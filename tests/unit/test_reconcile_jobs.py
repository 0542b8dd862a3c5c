"""Reconciliation jobs on the store (SQLite and PostgreSQL): checkpoints, a crash mid-batch and
the resume that does nothing twice, the audit, a job id that names one job."""

from __future__ import annotations

from typing import Any

import pytest

from siteops.rules.reconcile import Item


class Crash(BaseException):
    """A process dying mid-batch (not an Exception: nothing may catch it as an error)."""


class Counting:
    """A kind over records 1..n, every third one drifted; its apply counts real effects."""

    def __init__(self, n: int, crash_at: int | None = None) -> None:
        self.n, self.crash_at = n, crash_at
        self.effects: list[int] = []

    def total(self) -> int:
        return self.n

    def batch(self, cursor: dict[str, Any], size: int) -> tuple[list[Item], dict[str, Any] | None, int]:
        start = int(cursor.get("after") or 0)
        ids = list(range(start + 1, min(self.n, start + size) + 1))
        items = [Item("stock.picking", i, f"P{i}", "write_tracking_ref", {"n": i}) for i in ids if i % 3 == 0]
        return items, ({"after": ids[-1]} if ids[-1] < self.n else None), len(ids)

    def apply(self, item: Item, call: Any, key: str) -> Any:
        def effect() -> dict[str, int]:
            if item.record_id == self.crash_at:
                self.crash_at = None
                raise Crash()
            self.effects.append(int(item.record_id or 0))
            return {"done": int(item.record_id or 0)}

        return call(key, effect, check=lambda: {"done": item.record_id} if item.record_id in self.effects else None)


def call(key: str, effect: Any, check: Any = None, on_unknown: Any = None) -> Any:
    from siteops.store import operations

    return operations.run_once(key, effect, check=check, on_unknown=on_unknown, site="NORTH", task_name="t",
                               task_id="t-1")


def run(kind: Counting, job_id: str, monkeypatch: pytest.MonkeyPatch, apply: bool = True,
        progress: list[tuple[int, int]] | None = None) -> dict[str, Any]:
    from siteops.services import reconcile

    monkeypatch.setitem(reconcile.KINDS, "counting", lambda *a: kind)
    return reconcile.run("NORTH", "counting", job_id, apply=apply, call=call, odoo=object(), batch_size=4,
                         progress=(lambda d, t: progress.append((d, t))) if progress is not None else None)


def test_a_job_killed_mid_batch_resumes_and_does_nothing_twice(store_url: str,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from siteops.store import reconcile as jobs

    dry = run(Counting(20), "dry-1", monkeypatch, apply=False)
    planned = [(c["record"], c["outcome"]) for c in dry["changes"]]
    assert planned == [(f"P{i}", "would_change") for i in (3, 6, 9, 12, 15, 18)]
    assert jobs.changes("dry-1") == []  # a dry run changes (and audits) nothing

    kind = Counting(20, crash_at=9)
    with pytest.raises(Crash):
        run(kind, "real-1", monkeypatch)
    job = jobs.get("real-1")
    assert job is not None and job.status == "failed" and job.done == 8 and kind.effects == [3, 6]
    assert job.checkpoint["pending"] and job.checkpoint["cursor"] == {"after": 8}  # the batch 9..12, planned

    progress: list[tuple[int, int]] = []
    report = run(kind, "real-1", monkeypatch, progress=progress)  # the same job id: it resumes
    assert kind.effects == [3, 6, 9, 12, 15, 18]  # each once
    assert [(c["record"], c["outcome"]) for c in report["changes"]] == [(r, "changed") for r, _ in planned]
    assert report["counts"] == {"write_tracking_ref:changed": 6}
    assert progress[0] == (8, 20) and progress[-1] == (20, 20)
    job = jobs.get("real-1")
    assert job is not None and job.status == "succeeded" and job.runs == 2 and job.done == 20
    assert [c.record for c in jobs.changes("real-1")] == [r for r, _ in planned]  # audited once each
    assert jobs.changes_by_record("P9")[0].job_id == "real-1"

    # A finished job run again returns its report and touches nothing.
    assert run(Counting(20), "real-1", monkeypatch) == report
    # A job id names one job: given again as a dry run, it is refused, naming the job.
    from siteops.connectors.errors import PermanentError

    with pytest.raises(PermanentError, match="job real-1 is counting on NORTH \\(real run\\)"):
        run(Counting(20), "real-1", monkeypatch, apply=False)
    assert {j.id for j in jobs.search(site="NORTH", kind="counting")} == {"real-1", "dry-1"}
    assert jobs.as_dict(jobs.get("dry-1"))["counts"] == {"write_tracking_ref:would_change": 6}  # type: ignore[arg-type]
