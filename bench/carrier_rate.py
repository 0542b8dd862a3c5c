"""Four workers sharing one carrier account limited to 10 requests/s, measured in one run.

The carrier simulator answers 429 above 10 requests/s per API key (a token bucket, as
carriers count). Four processes call it through siteops's guard (the account's GCRA
rate limit in Redis, shared) as fast as they can for `--seconds`; then, as the anchor,
the same four without the shared limit. Prints the measured request rate and the 429
count against the limit (goal: >= 90 % of the limit used, zero 429s).

    python bench/carrier_rate.py [--seconds 10] [--limit 10] [--workers 4]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORKER = textwrap.dedent("""
    import json, sys, time
    from siteops.connectors.carriers.config import account
    from siteops.connectors.carriers.easypost import EasyPostCarrier
    from siteops.connectors.carriers.guard import Guard
    from siteops.connectors.errors import ConnectorError, RateLimited
    acct = account("bench")
    carrier, guard = EasyPostCarrier(acct), Guard(acct)
    barrier, n, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    guard.redis.incr(barrier)
    while int(guard.redis.get(barrier)) < n:
        time.sleep(0.005)
    end, ok, limited, deferred = time.monotonic() + seconds, 0, 0, 0
    while time.monotonic() < end:
        try:
            guard.call("BENCH", "shipment.retrieve", lambda: carrier.find_by_reference("bench"))
            ok += 1
        except RateLimited as exc:
            limited += exc.system == "easypost"
            deferred += exc.system != "easypost"
        except ConnectorError:
            pass
    print(json.dumps({"ok": ok, "429": limited, "deferred": deferred}))
""")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run(sim: object, env: dict[str, str], workers: int, seconds: float) -> dict[str, float]:
    sim.log.clear()  # type: ignore[attr-defined]
    limited_before = sim.faults.limited  # type: ignore[attr-defined]
    barrier = f"bench:barrier:{uuid.uuid4().hex}"
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, barrier, str(workers), str(seconds)], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, text=True) for _ in range(workers)]
    results = [json.loads(p.communicate(timeout=seconds + 120)[0].strip().splitlines()[-1]) for p in procs]
    entries = [e for e in sim.log.entries() if e["operation"] == "shipment.retrieve"]  # type: ignore[attr-defined]
    span = max(e["t"] for e in entries) - min(e["t"] for e in entries) if len(entries) > 1 else seconds
    return {"requests": len(entries), "rate": (len(entries) - 1) / max(span, 1e-9),
            "429": sim.faults.limited - limited_before,  # type: ignore[attr-defined]
            "ok": sum(r["ok"] for r in results), "deferred": sum(r["deferred"] for r in results)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--limit", type=float, default=10.0)
    p.add_argument("--workers", type=int, default=4)
    args = p.parse_args()

    from siteops.sim.carrier import CarrierSim
    from siteops.sim.embedded import RedisServer

    tmp = Path(tempfile.mkdtemp(prefix="siteops-bench-carrier-"))
    port = free_port()
    redis_server = RedisServer(port=port, data_dir=tmp / "redis").start()
    sim = CarrierSim(step_seconds=1000).start()
    sim.faults.set(rate_limit_per_second=args.limit)
    base = {**os.environ, "SITEOPS_BROKER_URL": f"redis://127.0.0.1:{port}/0", "SITEOPS_VAR_DIR": str(tmp / "var"),
            "SITEOPS_EASYPOST_URL": sim.api_base, "SITEOPS_EASYPOST_API_KEY": "EZTK_bench",
            "SITEOPS_CARRIER_MAX_WAIT": "5", "SITEOPS_CARRIER_BREAKER_MIN_CALLS": "1000000",
            "PROMETHEUS_MULTIPROC_DIR": str(tmp)}
    try:
        shared = run(sim, {**base, "SITEOPS_CARRIER_RATE_LIMIT": str(args.limit)}, args.workers, args.seconds)
        time.sleep(1.5)  # let the carrier's bucket refill before the anchor run
        alone = run(sim, {**base, "SITEOPS_CARRIER_RATE_LIMIT": "0"}, args.workers, args.seconds)
    finally:
        sim.stop()
        redis_server.stop()
    print(f"{args.workers} workers, one account limited to {args.limit:g} req/s at the carrier, {args.seconds:g}s each")
    print(f"  shared siteops limit : {shared['rate']:.2f} req/s = {shared['rate'] / args.limit:.1%} of the limit, "
          f"{shared['429']} x 429, {shared['ok']} calls done")
    print(f"  no siteops limit     : {alone['rate']:.2f} req/s sent, {alone['429']} x 429, {alone['ok']} calls done")
    ok = shared["rate"] >= 0.9 * args.limit and shared["429"] == 0
    print(f"goal (>= 90 % of the limit, zero 429s): {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    main()
