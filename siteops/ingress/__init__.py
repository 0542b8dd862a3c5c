"""The HTTP entry point: events from Odoo, carrier webhooks and inbound messages -> tasks.

One small ASGI service (Starlette under uvicorn: well kept, tiny, async so that a slow
client never holds a thread, and the body size can be enforced while it streams in). It
decides nothing: it authenticates the caller, bounds the body, checks the shape, puts a
task on the right site's queue and answers only once the message is in the broker.
"""
