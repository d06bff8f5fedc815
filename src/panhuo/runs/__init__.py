"""Playbook runs: assignment, guardrails, the run engine and the transactional outbox.

Modules (imported on use, so importing ``panhuo.runs`` stays cheap and ``panhuo.store`` can register
the table models without pulling in Ibis):

- :mod:`panhuo.runs.models` — runs, decisions (carrying the assignments), outbox, contact_log (migrations 0002, 0007);
- :mod:`panhuo.runs.assignment` — stable-hash treatment/holdout, arms, the global control group;
- :mod:`panhuo.runs.guardrails` — one module per rule and the single set-based ``apply()``;
- :mod:`panhuo.runs.outbox` — idempotency keys and conflict-ignoring batch inserts;
- :mod:`panhuo.runs.engine` — ``run_playbook`` and ``dry_run``.
"""

from __future__ import annotations

__all__: list[str] = []
