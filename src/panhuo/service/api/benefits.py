"""Benefits 权益 and their stock over the API: the catalogue with issued units and spend against the limits
(``panhuo benefits stock``), and a stock change (operator or admin, with a reason; audited as
``benefit.stock`` with the old and new limit).

A stock change edits the catalogue, which is where the limits live: the item's workspace file
(``<workspace>/benefits/*.yaml``, rewritten without its comments) or, for an item of the starter catalogue,
``<workspace>/benefits/stock-overrides.yaml`` holding the item with its new stock (a workspace item with a
starter id replaces it). The whole catalogue is validated with the change before anything is written, and the
file is replaced atomically in the same unit of work as the audit entry.
"""

import threading
from pathlib import Path
from typing import Any

import yaml
from fastapi import APIRouter, Request

from panhuo.benefits.errors import BenefitError
from panhuo.service import views
from panhuo.service.deps import API, NotFound, Reader, ReadDb, requires, store_of, workspace_of
from panhuo.service.schemas import BenefitOut, StockIn, errors
from panhuo.store.audit import record

__all__ = ["OVERRIDES", "change_stock", "router"]

router = APIRouter(prefix=API, tags=["benefits"])

OVERRIDES = "stock-overrides.yaml"
STARTER = "panhuo starter catalogue"
_edit_lock = threading.Lock()

StockEditor = requires("operator", "admin", action="changing a benefit's stock", write=True)


@router.get("/benefits", response_model=list[BenefitOut], responses=errors())
def list_benefits(request: Request, _who: Reader, s: ReadDb, kind: str | None = None) -> Any:
    """Every benefit with kind, name, risk, unit cost, stock and budget against what runs issued and spent (fen)."""
    rows = views.benefits(workspace_of(request), s)
    return [r for r in rows if kind is None or r["kind"] == kind]


@router.get("/benefits/{benefit_id}", response_model=BenefitOut, responses=errors(404))
def get_benefit(benefit_id: str, request: Request, _who: Reader, s: ReadDb) -> Any:
    """One benefit with its stock and budget."""
    try:
        return views.benefits(workspace_of(request), s, benefit_id)[0]
    except BenefitError as exc:
        raise NotFound(str(exc)) from None


def _item_dict(item: Any, stock: int | None) -> dict[str, Any]:
    data = item.model_dump(mode="json", by_alias=True, exclude_none=True)
    if item.risk is not None:
        data["risk"] = item.risk_label
    data.pop("stock", None)
    if stock is not None:
        data["stock"] = stock
    return data


def change_stock(ws: Any, session: Any, benefit_id: str, stock: int | None, *, actor: str, reason: str) -> dict[str, Any]:
    """Set ``benefit_id``'s stock in the catalogue (see the module docstring) and audit it in ``session``.

    Returns the audited ``{"before", "after"}``. BenefitError when the id is unknown or the edited catalogue is
    invalid (nothing written then)."""
    from panhuo._io import atomic_write_text
    from panhuo.benefits import benefits_dir, load_catalogue

    with _edit_lock:
        cat = load_catalogue(ws)
        item = cat.get(benefit_id)
        shown, _line = cat.origin[benefit_id]
        folder = benefits_dir(ws)
        target = folder / OVERRIDES if shown == STARTER else ws.root / shown
        doc: dict[str, Any] = {"items": []}
        if target.exists():
            loaded = yaml.safe_load(target.read_text(encoding="utf-8-sig")) or {}
            doc = loaded if isinstance(loaded, dict) else {"items": []}
        items = doc.setdefault("items", [])
        new = _item_dict(item, stock)
        for i, it in enumerate(items):
            if isinstance(it, dict) and it.get("id") == benefit_id:
                items[i] = {**{k: v for k, v in it.items() if k != "stock"}, **({"stock": stock} if stock is not None
                                                                                  else {})}
                break
        else:
            items.append(new)
        text = ("# benefit catalogue file; stock changed through the panhuo API (see the audit log)\n"
                + yaml.safe_dump(doc, allow_unicode=True, sort_keys=False))
        # validate the whole catalogue with the edited file in place before writing anything
        ws.tmp_dir.mkdir(parents=True, exist_ok=True)
        candidate = Path(ws.tmp_dir) / f"catalogue-check-{threading.get_ident()}.yaml"
        candidate.write_text(text, encoding="utf-8")
        try:
            others = [p for p in sorted(folder.glob("*.y*ml")) if p.resolve() != target.resolve()]
            load_catalogue(None, files=[*others, candidate])
        finally:
            candidate.unlink(missing_ok=True)
        before = {"stock": item.stock, "file": shown}
        after = {"stock": stock, "file": str(target.relative_to(ws.root)), "reason": reason}
        record(session, actor=actor, action="benefit.stock", entity="benefit", entity_id=benefit_id,
               before=before, after=after)
        session.flush()
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(target, text)
        return {"before": before, "after": after}


@router.post("/benefits/{benefit_id}/stock", response_model=BenefitOut, responses=errors(404, 422))
def set_stock(benefit_id: str, body: StockIn, request: Request, who: StockEditor) -> Any:
    """Change how many units of a benefit may be issued (operator or admin; reason required, audited)."""
    ws = workspace_of(request)
    with store_of(request).session() as s:
        try:
            change_stock(ws, s, benefit_id, body.stock, actor=who.user.name, reason=body.reason.strip())
        except BenefitError as exc:
            if any("no benefit" in i.reason for i in exc.issues):
                raise NotFound(str(exc)) from None
            raise
    with store_of(request).read_session() as s:
        return views.benefits(ws, s, benefit_id)[0]
