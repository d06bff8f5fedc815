"""Segments and tiers (分层) over the API: definitions, member counts, the tier summary, and a CSV export of a
segment's members (operator, compliance or admin; phones masked, other personal fields refused; audited as
``segment.export`` with the row count, columns and snapshot date)."""

import datetime as dt
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from panhuo.errors import SegmentError
from panhuo.service import views
from panhuo.service.deps import API, NotFound, Reader, requires, store_of, workspace_of
from panhuo.service.schemas import SegmentCountOut, SegmentOut, TiersOut, errors
from panhuo.store.audit import record

__all__ = ["router"]

router = APIRouter(prefix=API, tags=["segments"])

Exporter = requires("operator", "compliance", "admin", action="exporting a segment")


def _known(request: Request, name: str) -> None:
    if name not in {s["name"] for s in views.segments(workspace_of(request))}:
        raise NotFound(f"no segment {name!r} (see GET /api/v1/segments)")


@router.get("/segments", response_model=list[SegmentOut], responses=errors())
def list_segments(request: Request, _who: Reader) -> Any:
    """Every segment (built-in and the workspace's) with its rule, exclusions and cap."""
    return views.segments(workspace_of(request))


@router.get("/segments/{name}", response_model=SegmentCountOut, responses=errors(404, 409))
def get_segment(name: str, request: Request, _who: Reader, as_of: dt.date | None = None) -> Any:
    """One segment with its member count on the tag snapshot on or before ``as_of`` (default: the latest)."""
    _known(request, name)
    return views.segment_detail(workspace_of(request), name, as_of)


@router.get("/tiers", response_model=TiersOut, responses=errors(409))
def get_tiers(request: Request, _who: Reader, as_of: dt.date | None = None) -> Any:
    """Customers, share and average total assets per tier (first matching tier wins)."""
    return views.tiers(workspace_of(request), as_of)


@router.get("/segments/{name}/export", responses={**errors(400, 404, 409),
                                                  200: {"content": {"text/csv": {}}, "description": "CSV"}},
            response_class=StreamingResponse)
def export_segment(name: str, request: Request, who: Exporter, columns: str = "",
                   as_of: dt.date | None = None) -> StreamingResponse:
    """The members as CSV (UTF-8): customer_id plus ``columns`` (comma-separated tags; money in RMB, phones
    masked). Operator, compliance or admin; the export is audited."""
    _known(request, name)
    ws = workspace_of(request)
    chosen = [c.strip() for c in columns.split(",") if c.strip()]
    ws.tmp_dir.mkdir(parents=True, exist_ok=True)
    out = Path(ws.tmp_dir) / f"export-{secrets.token_hex(8)}.csv"
    try:
        rows = views.export_segment_csv(ws, name, chosen, as_of, out)
    except SegmentError:
        out.unlink(missing_ok=True)
        raise
    try:
        with store_of(request).session() as s:
            record(s, actor=who.user.name, action="segment.export", entity="segment", entity_id=name,
                   after={"rows": rows, "columns": chosen, "as_of": as_of.isoformat() if as_of else None,
                          "format": "csv"})
    except BaseException:
        out.unlink(missing_ok=True)
        raise

    def stream() -> Iterator[bytes]:
        try:
            with out.open("rb") as f:
                while chunk := f.read(1 << 16):
                    yield chunk
        finally:
            out.unlink(missing_ok=True)

    return StreamingResponse(stream(), media_type="text/csv; charset=utf-8",
                             headers={"Content-Disposition": f'attachment; filename="{name}.csv"'})
