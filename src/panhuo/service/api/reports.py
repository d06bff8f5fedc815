"""Reports over the API: the measured increment of a playbook or a past campaign over its holdout, as the JSON
of ``panhuo report --format json`` (:func:`panhuo.measure.report.make_report`, format ``panhuo.report/1``)."""

from typing import Any

from fastapi import APIRouter, Query, Request

from panhuo.service.deps import API, NotFound, Reader, workspace_of
from panhuo.service.schemas import errors

__all__ = ["router"]

router = APIRouter(prefix=API, tags=["reports"])


@router.get("/reports", response_model=dict[str, Any], responses=errors(400, 404))
def report(request: Request, _who: Reader,
           playbook: str | None = Query(default=None, max_length=64, description="one playbook"),
           campaign: str | None = Query(default=None, max_length=100, description="one past campaign"),
           window: int = Query(default=10, ge=1, le=250, description="trading days for a campaign's window")) -> Any:
    """The report (see ``panhuo report``): reach, conversions, incremental conversions and stock+fund commission
    with 95% CIs, cost and ROI; one item per playbook (or the campaign); every playbook with a finished run when
    neither is given."""
    from panhuo.measure.report import make_report
    from panhuo.measure.outcomes import MeasureError

    try:
        return make_report(workspace_of(request), playbook=playbook, campaign=campaign, window=window)
    except MeasureError as exc:
        raise NotFound(str(exc)) from None
