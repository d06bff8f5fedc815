"""Worker processes of the concurrency test (a module of its own, so ``spawn`` children can import it)."""

from __future__ import annotations

import random
from typing import Any

__all__ = ["reserve_worker"]


def reserve_worker(url: str, specs: list[dict[str, Any]], run_id: int, batches: list[tuple[list[str], list[str]]],
                   barrier: Any, results: Any, worker: int) -> None:
    """Wait for the others, then reserve for each batch (customer ids, benefit ids) in one transaction."""
    from panhuo.benefits.ledger import reserve_all
    from panhuo.store.db import open_store
    from tests.benefits.conftest import AT, item

    items = {spec["bid"]: item(**spec) for spec in specs}
    store = open_store(url)
    out: list[dict[str, Any]] = []
    try:
        barrier.wait(timeout=120)
        rng = random.Random(worker)
        for ids, bids in batches:
            order = [items[b] for b in bids]
            rng.shuffle(order)  # reserve_all must lock in id order whatever order it is given
            with store.session() as s:
                got = reserve_all(s, [(it, ids) for it in order], run_id, at=AT, actor=f"worker-{worker}")
            out.append({bid: {"granted": r.granted, "refused": r.refused, "new": r.new, "held": r.held,
                              "logged": r.logged} for bid, r in got.items()})
    except BaseException as exc:  # report, so the parent fails with the cause instead of a timeout
        results.put((worker, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        store.dispose()
    results.put((worker, out))
