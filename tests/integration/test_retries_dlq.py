"""Bounded retries with backoff, dead letters, and replay from the command line."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from tests.conftest import poll, run_siteops

pytestmark = pytest.mark.integration


def siteops(*args: str) -> subprocess.CompletedProcess[str]:
    return run_siteops(*args)


@pytest.fixture(scope="module")
def north(stack):
    return stack.serving("NORTH", concurrency=2)


def test_retryable_error_is_retried_with_backoff_then_succeeds(north, remote) -> None:
    from siteops.config.sites import get_registry
    from siteops.store import audit
    from tests.integration.fixture_tasks import flaky

    policy = get_registry().retry
    key = uuid.uuid4().hex
    result = flaky.delay("NORTH", key, fail_times=2)

    assert result.get(timeout=60) == {"attempts": 3, "worker": north.nodename}
    runs = audit.runs_for(result.id)
    assert [r.state for r in runs] == ["retrying", "retrying", "succeeded"]
    assert [r.attempt for r in runs] == [1, 2, 3]
    # Each retry waited at least its scheduled countdown, and each countdown lay inside its
    # exponential window min(cap, base * 2**n): the windows double from one retry to the next.
    times = [float(t) for t in remote.lrange(f"attempt_times:{key}", 0, -1)]
    for n, run in enumerate(runs[:-1]):
        countdown = run.transitions[-1][2]["retry_in"]
        window = min(policy.backoff_cap_seconds, policy.backoff_base_seconds * 2**n)
        assert 0 <= countdown <= window
        assert times[n + 1] - times[n] >= countdown - 0.05
    assert runs[0].error_class == "RetryableError"
    assert runs[0].business_key == key


def test_rate_limited_waits_its_retry_after(north, remote) -> None:
    from siteops.store import audit
    from tests.integration.fixture_tasks import flaky

    key = uuid.uuid4().hex
    result = flaky.delay("NORTH", key, fail_times=1, rate_limited=True)
    assert result.get(timeout=60)["attempts"] == 2
    runs = audit.runs_for(result.id)
    assert runs[0].transitions[-1][2]["retry_in"] == 0.5
    times = [float(t) for t in remote.lrange(f"attempt_times:{key}", 0, -1)]
    assert times[1] - times[0] >= 0.45


def test_exhausted_retries_land_in_the_dead_letter_store(north, remote) -> None:
    from siteops.config.sites import get_registry
    from siteops.store import audit
    from tests.integration.fixture_tasks import flaky

    max_retries = get_registry().retry.max_retries
    key = uuid.uuid4().hex
    result = flaky.delay("NORTH", key, fail_times=99)
    with pytest.raises(Exception, match="remote unavailable"):
        result.get(timeout=90)
    dead = [d for d in audit.list_dead_letters(site="NORTH") if d.task_id == result.id]
    assert len(dead) == 1
    assert dead[0].reason == "retries_exhausted"
    assert dead[0].attempts == max_retries + 1
    assert dead[0].args == ["NORTH", key] and dead[0].kwargs == {"fail_times": 99}
    assert remote.get(f"attempts:{key}") == str(max_retries + 1)
    assert [r.state for r in audit.runs_for(result.id)][-1] == "dead_lettered"


def test_permanent_error_is_dead_lettered_at_once_and_replayed_from_the_cli(north, remote) -> None:
    from siteops.store import audit
    from tests.integration.fixture_tasks import needs_fix

    key = uuid.uuid4().hex
    result = needs_fix.delay("NORTH", key)
    with pytest.raises(Exception, match="is invalid"):
        result.get(timeout=60)
    # One attempt, no retry: straight to the dead-letter store with its arguments and error.
    assert [r.state for r in audit.runs_for(result.id)] == ["dead_lettered"]
    listed = json.loads(siteops("dlq", "list", "--json", "--site", "NORTH").stdout)
    [dead] = [d for d in listed if d["task_id"] == result.id]
    assert dead["reason"] == "permanent"
    assert dead["args"] == ["NORTH", key] and dead["kwargs"] == {}
    assert dead["error_class"] == "PermanentError" and "is invalid" in dead["error_message"]
    assert dead["business_key"] == key
    shown = json.loads(siteops("dlq", "show", str(dead["id"])).stdout)
    assert shown["task_name"] == "siteops.testing.needs_fix"

    # When the operator has fixed the data, one command runs it again.
    remote.set(f"fixed:{key}", "yes")
    replayed = siteops("dlq", "replay", str(dead["id"]))
    assert replayed.returncode == 0, replayed.stderr
    new_task_id = replayed.stdout.split()[1]
    assert new_task_id != result.id
    poll(lambda: remote.llen(f"effects:{key}") == 1, 30, "the replayed task to run")
    assert remote.lrange(f"effects:{key}", 0, -1) == [new_task_id]
    after = json.loads(siteops("dlq", "show", str(dead["id"])).stdout)
    assert after["replayed_task_id"] == new_task_id and after["replayed_at"]
    # It no longer waits in the list, and a second replay is refused.
    assert all(d["id"] != dead["id"] for d in json.loads(siteops("dlq", "list", "--json").stdout))
    again = siteops("dlq", "replay", str(dead["id"]))
    assert again.returncode == 1 and "already replayed" in again.stderr


def test_replay_all_for_one_site(stack, north, remote) -> None:
    from siteops.store import audit
    from tests.integration.fixture_tasks import needs_fix

    stack.serving("SOUTH")
    keys = {site: uuid.uuid4().hex for site in ("NORTH", "SOUTH")}
    results = {site: needs_fix.delay(site, key) for site, key in keys.items()}
    for r in results.values():
        with pytest.raises(Exception, match="is invalid"):
            r.get(timeout=60)
    for key in keys.values():
        remote.set(f"fixed:{key}", "yes")
    out = siteops("dlq", "replay", "--all", "--site", "SOUTH")
    assert out.returncode == 0, out.stderr
    poll(lambda: remote.llen(f"effects:{keys['SOUTH']}") == 1, 30, "SOUTH's replay to run")
    assert remote.llen(f"effects:{keys['NORTH']}") == 0
    waiting = {d.task_id for d in audit.list_dead_letters()}
    assert results["NORTH"].id in waiting and results["SOUTH"].id not in waiting


def test_secrets_are_refused_as_task_arguments(north) -> None:
    from tests.integration.fixture_tasks import record

    with pytest.raises(ValueError, match="secret"):
        record.apply_async(args=["NORTH"], kwargs={"key": "k", "api_key": "s3cr3t"})


def test_runs_are_counted_in_prometheus_and_logged_with_task_id_and_site(north, remote) -> None:
    from prometheus_client import CollectorRegistry
    from prometheus_client.multiprocess import MultiProcessCollector

    from tests.integration.fixture_tasks import flaky

    key = uuid.uuid4().hex
    result = flaky.delay("NORTH", key, fail_times=1)
    result.get(timeout=60)

    # The pool processes write their samples to PROMETHEUS_MULTIPROC_DIR; summed here as
    # the exporter will.
    registry = CollectorRegistry()
    MultiProcessCollector(registry)

    def sample(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    labels = {"task": "siteops.testing.flaky", "site": "NORTH"}
    assert sample("siteops_task_runs_total", outcome="retried", **labels) >= 1
    assert sample("siteops_task_runs_total", outcome="succeeded", **labels) >= 1
    assert sample("siteops_task_retries_total", reason="retryable", **labels) >= 1
    assert sample("siteops_task_duration_seconds_count", **labels) >= 2
    # The retry warning names the site and the task id on its line.
    poll(lambda: any(f"[NORTH {result.id}]" in line and "retry 1/" in line
                     for line in north.log_text().splitlines()), 10, "the retry's log line")
