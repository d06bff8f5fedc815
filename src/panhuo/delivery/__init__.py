"""Delivery: sending outbox messages through SMS, app push and WeChat providers.

Modules:

- ``sim``: the provider simulator (``panhuo provider-sim``), a real HTTP server on loopback that
  behaves like the three providers (faults, receipts, replies) for tests, benchmarks and the demo.
- ``channels``: the channel adapters that speak the provider contract.
- ``worker``: the delivery worker that drains the outbox through the adapters.
- ``callbacks``: the receiving end of provider receipts and customer replies (signed webhooks).
"""
