"""The self-contained HTML measurement report (zh-CN, English in small text) of ``panhuo report --format html``.

One file, readable offline: inline CSS, charts drawn as inline SVG from geometry computed in
:mod:`panhuo.report.charts` (forest plots of the increments with their 95% CIs), no script, no CDN,
no external asset. Every value reaches the page through Jinja2 with autoescape on. The page says in
words what the numbers allow: a window still open (how many trading days remain, "not final"),
customers missing from the data, no holdout, an increment that is not significant (its CI includes 0:
no ROI is claimed), and the cost per incremental reactivation against the acquisition cost of a new
effective account.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape

from panhuo.report.charts import Forest, forest

__all__ = ["EVENT_ZH", "render_report", "verdicts_zh"]

_TEMPLATES = Path(__file__).parent / "templates"
EVENT_ZH = {"login": "登录", "trade": "交易", "deposit": "入金", "back_to_effective": "恢复有效户",
            "activated": "休眠户激活"}
KIND_ZH = {"playbook": "策略", "campaign": "历史活动", "programme": "整体项目（对全局对照组）"}
CHANNEL_ZH = {"app_push": "App推送", "sms": "短信", "wechat": "微信", "call": "电话"}


_REASONS_ZH = (
    ("too few customers", "样本过少，无法给出可靠的95%置信区间（每组至少30人）"),
    ("no holdout", "没有对照组客户，无法衡量增量"),
    ("no treated", "没有实验组客户"),
    ("no window is closed yet", "观察窗口均未结束，尚无结果"),
    ("no customer of the global control group", "全局对照组中没有可衡量的客户，无法衡量整体增量"),
    ("no variation", "两组结果均无差异（例如都无人转化），无法给出置信区间"),
    ("the finished runs assigned no customer", "已完成的运行没有分配任何客户"),
    ("fewer than 2 customers", "实验组或对照组不足2人"),
)


def _yuan(x: float) -> str:
    return f"-¥{-x:,.2f}" if x < 0 else f"¥{x:,.2f}"


def _money(v: float | None) -> str:
    return "—" if v is None else _yuan(v)


def _ci(d: dict[str, float | None] | None, money: bool = False) -> str:
    if not d or d.get("estimate") is None:
        return "—"
    f = _yuan if money else (lambda x: f"{x:,.1f}")
    return f"{f(d['estimate'])} [{f(d['ci_low'])}, {f(d['ci_high'])}]"


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{x * 100:.1f}%"


def _label(g: dict[str, Any], tier_names: dict[str, str]) -> str:
    arm = "全部方案" if g["arm"] == "all" else f"方案 {g['arm']}"
    if g["tier"] == "all":
        return arm
    tier = "未知分层" if g["tier"] == "unknown" else tier_names.get(g["tier"], g["tier"])
    return f"{arm} · {tier}"


def verdicts_zh(g: dict[str, Any], acquisition_cost: float) -> list[str]:
    """Plain Chinese sentences on one comparison (the HTML twin of :func:`panhuo.measure.report.verdicts`)."""
    if g["not_estimable"]:
        why = g["not_estimable"]
        zh = next((z for key, z in _REASONS_ZH if why.startswith(key)), "")
        return [f"无法估计：{zh or why}（不给出任何数字）" + (f" {why}" if zh else "")]
    out = []
    for what, key in (("增量转化", "conversions"), ("增量股基佣金", "commission")):
        if g["significant"][key]:
            out.append(f"{what}在95%水平上显著。")
        else:
            out.append(f"{what}不显著（95%置信区间包含0），不能认定有增量。")
    if g.get("roi"):
        r = g["roi"]
        out.append(f"投入产出比 ROI {r['estimate']:.2f}（95%区间 {r['ci_low']:.2f} 至 {r['ci_high']:.2f}），"
                   "即每投入1元带来的增量佣金。")
    elif g.get("cost") is not None:
        out.append("不给出ROI：" + {
            "no cost recorded: ROI undefined": "没有记录到成本。",
            "not estimable": "增量无法估计。",
        }.get(g.get("roi_note") or "", "增量佣金不显著，精确的ROI会误导。"))
    per = g.get("cost_per_incremental_reactivation_rmb")
    if per is not None:
        side = "低于" if per < acquisition_cost else "不低于"
        out.append(f"每个增量促活成本 ¥{per:,.2f}，{side}新增有效户获客成本 ¥{acquisition_cost:,.2f}。")
    return out


def _charts(item: dict[str, Any]) -> tuple[Forest, Forest]:
    names = item.get("tier_names", {})
    conv, comm = [], []
    for g in item["groups"]:
        if g["arm"] != "all" and g["tier"] != "all":
            continue  # arm x tier rows are in the table; the charts keep to arms and tiers
        basis = "_cuped" if g.get("estimator") == "cuped" and g.get("incremental_conversions_cuped") else ""
        c = g.get(f"incremental_conversions{basis}") or {}
        m = g.get(f"incremental_commission_rmb{basis}") or {}
        label = _label(g, names)
        conv.append((label, c.get("estimate"), c.get("ci_low"), c.get("ci_high"), g["significant"]["conversions"]))
        comm.append((label, m.get("estimate"), m.get("ci_low"), m.get("ci_high"), g["significant"]["commission"]))
    left = min(340.0, max(120.0, 12.0 * max((_units(lab) for lab, *_ in conv), default=10) + 16))
    return forest(conv, left=left, width=left + 480), forest(comm, left=left, width=left + 480, fmt="{:,.0f}")


def _units(label: str) -> float:
    """Width of a label in 12px-font ems: a CJK character is one, other characters about 0.6."""
    return sum(1.0 if ord(ch) > 0x2E80 else 0.6 for ch in label)


def render_report(report: dict[str, Any]) -> str:
    """The report dict of :func:`panhuo.measure.report.make_report` as one self-contained HTML page."""
    env = Environment(loader=FileSystemLoader(str(_TEMPLATES)),
                      autoescape=select_autoescape(["html"], default_for_string=True, default=True))
    env.filters.update(money=_money, ci=_ci, pct=_pct)
    items = list(report["items"]) + ([report["programme"]] if report.get("programme") else [])
    views = []
    for item in items:
        conv, comm = _charts(item)
        rows = [{"g": g, "label": _label(g, item.get("tier_names", {})),
                 "verdicts": verdicts_zh(g, report["acquisition_cost_rmb"])} for g in item["groups"]]
        views.append({"item": item, "kind": KIND_ZH.get(item["kind"], item["kind"]),
                      "event": " + ".join(EVENT_ZH.get(e, e) for e in item["success_event"].split("+")),
                      "conv": conv, "comm": comm, "rows": rows, "head": rows[0] if rows else None})
    return env.get_template("measure.html").render(r=report, views=views, channel_zh=CHANNEL_ZH)
