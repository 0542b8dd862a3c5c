"""A carrier simulator shaped like EasyPost's API (`siteops sim carrier`).

    from siteops.sim.carrier import CarrierSim
    with CarrierSim(step_seconds=1) as sim:
        client = easypost.EasyPostClient("EZTK_test", api_base=sim.api_base)

Test and demo equipment: the production code talks to it through the official SDK and
never knows. See `state` (objects, timelines), `faults` and `server` (HTTP, webhooks).
"""

from __future__ import annotations

import argparse
import signal
import threading

from siteops.sim.carrier.server import CarrierSim, sign

__all__ = ["CarrierSim", "main", "sign"]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="siteops sim carrier", description="An EasyPost-shaped carrier simulator.")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8071)
    p.add_argument("--step-seconds", type=float, default=20.0, help="time between two tracking events")
    p.add_argument("--exception-share", type=float, default=0.1)
    p.add_argument("--return-share", type=float, default=0.1)
    p.add_argument("--rate-limit", type=float, default=0.0, help="requests/s per API key above which it answers 429")
    p.add_argument("--webhook-url", default=None, help="register this tracking webhook at start")
    p.add_argument("--webhook-secret-file", default=None)
    args = p.parse_args(argv)
    sim = CarrierSim(args.host, args.port, step_seconds=args.step_seconds, exception_share=args.exception_share,
                     return_share=args.return_share)
    if args.rate_limit:
        sim.faults.set(rate_limit_per_second=args.rate_limit)
    if args.webhook_url:
        secret = open(args.webhook_secret_file).read().strip() if args.webhook_secret_file else ""  # noqa: SIM115
        hook_id = sim.state.new_id("hook")
        sim.state.webhooks[hook_id] = {"id": hook_id, "object": "Webhook", "mode": "test", "url": args.webhook_url,
                                       "secret": secret, "created_at": "", "disabled_at": None}
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    sim.start()
    print(f"carrier simulator (EasyPost API) at {sim.api_base}; keys must start with EZTK or EZAK", flush=True)  # noqa: T201
    stop.wait()
    sim.stop()
    return 0
