"""Runs over the API: the list (newest first) and one run with its funnel."""

from typing import Any

from fastapi import APIRouter
from sqlalchemy import select

from panhuo.service.deps import API, NotFound, ReadDb, Reader, RowId
from panhuo.service.schemas import RunDetailOut, RunOut, errors

__all__ = ["router", "run_out"]

router = APIRouter(prefix=API, tags=["runs"])


def run_out(r: Any) -> dict[str, Any]:
    return {k: getattr(r, k) for k in RunOut.model_fields}


@router.get("/runs", response_model=list[RunOut], responses=errors())
def list_runs(_who: Reader, s: ReadDb, playbook_id: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Runs, newest first (optionally of one playbook; at most ``limit``, 1-1000)."""
    from panhuo.runs.models import Run

    q = select(Run).order_by(Run.id.desc()).limit(max(1, min(limit, 1000)))
    if playbook_id is not None:
        q = q.where(Run.playbook_id == playbook_id)
    return [run_out(r) for r in s.execute(q).scalars()]


@router.get("/runs/{run_id}", response_model=RunDetailOut, responses=errors(404))
def get_run(run_id: RowId, _who: Reader, s: ReadDb) -> dict[str, Any]:
    """One run with its funnel (candidates, after each guardrail, holdout, sends)."""
    from panhuo.runs.models import Run

    r = s.get(Run, run_id)
    if r is None:
        raise NotFound(f"no run {run_id}")
    return {**run_out(r), "funnel": r.funnel}
