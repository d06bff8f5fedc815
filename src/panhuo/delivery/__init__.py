"""Delivery: sending outbox messages through SMS, app push, WeChat and webhook providers, and advisor call tasks.

Modules:

- ``worker``: the delivery worker (``panhuo deliver``) that claims outbox rows and drains them through
  the adapters, with rate limits, retries, dead letters and the opt-out check before every send;
- ``channels``: the channel adapters that speak the provider contract (and sign webhooks);
- ``http``: the lean asyncio HTTP/1.1 keep-alive client the worker posts with (why not httpx: its docstring);
- ``sim``: the provider simulator (``panhuo provider-sim``), a real HTTP server on loopback that
  behaves like the providers (faults, 429 bursts, receipts, replies) for tests, benchmarks and the demo;
- ``callbacks`` and ``events``: the receiving end of provider receipts and customer replies (signed
  webhooks), and the receipt, reply and opt-out tables;
- ``calls``: recording what came of an advisor call task (CLI and API); ``archive``: the compliance
  archive exported with phones masked, and pruned after its retention;
- ``models``: call tasks, the message archive, the worker lease; ``_serve``: serving an ASGI app on loopback.
"""
