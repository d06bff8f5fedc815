"""The playbook editor's form: the five elements 时点/用户/权益/渠道/方式 (plus the SMS, push and call templates) as fields, to YAML.

:func:`playbook_yaml` turns the posted fields into the YAML text a person would write by hand (the same
schema, :mod:`panhuo.playbooks.schema`); it never validates. The text then goes through exactly the
checks ``panhuo playbook validate|add`` and ``POST /api/v1/playbooks`` run, so every issue is reported
with the line and field of the generated YAML. A value that does not parse as the number a field
expects is passed on as text so that the validator names the field, instead of being dropped here.
:func:`form_from_yaml` fills the form back from a stored version (fields it cannot show stay empty).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import yaml

__all__ = ["FIELDS", "form_from_yaml", "playbook_yaml"]

#: every field name of the form (what the template posts)
FIELDS: tuple[str, ...] = (
    "id", "name", "purpose", "description",
    "trigger", "schedule", "at", "sched_n", "sched_event", "event", "threshold", "index", "direction",
    "transition", "lifecycle_days", "behaviour", "min_logins", "behaviour_days",
    "window_start", "window_end", "reentry", "reentry_n",
    "segment", "rule", "tier", "exclude", "max_audience",
    "benefits",
    "channel_mode", "channels",
    "mode", "holdout", "allocation", "success_event", "success_days", "personalised",
    "content_link", "sms_template", "push_title", "push_body", "call_script",
)


def _s(form: Mapping[str, Any], key: str) -> str:
    v = form.get(key)
    return "" if v is None else str(v).strip()


def _list(text: str) -> list[str]:
    return [p for p in re.split(r"[\s,，;；]+", text) if p]


def _int(text: str) -> int | str:
    try:
        return int(text)
    except ValueError:
        return text


def _num(text: str) -> float | int | str:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


class _Flow(list):  # type: ignore[type-arg]
    """A list written in flow style (``[09:00, 11:00]``)."""


class _Dumper(yaml.SafeDumper):
    pass


_Dumper.add_representer(_Flow, lambda d, v: d.represent_sequence("tag:yaml.org,2002:seq", v, flow_style=True))


def playbook_yaml(form: Mapping[str, Any]) -> str:
    """The playbook YAML the form describes (empty fields left out; no validation here)."""
    doc: dict[str, Any] = {"id": _s(form, "id"), "name": _s(form, "name")}
    if _s(form, "purpose"):
        doc["purpose"] = _s(form, "purpose")
    if _s(form, "description"):
        doc["description"] = _s(form, "description")

    trigger = _s(form, "trigger")
    timing: dict[str, Any] = {"trigger": trigger}
    if trigger == "schedule":
        timing["schedule"] = _s(form, "schedule")
        if _s(form, "at"):
            timing["at"] = _s(form, "at")
        if _s(form, "sched_n"):
            timing["n"] = _int(_s(form, "sched_n"))
        if _s(form, "sched_event"):
            timing["event"] = _s(form, "sched_event")
    elif trigger == "market_event":
        timing["event"] = _s(form, "event")
        for key in ("threshold", "index", "direction"):
            if _s(form, key):
                timing[key] = _num(_s(form, key)) if key == "threshold" else _s(form, key)
    elif trigger == "lifecycle":
        timing["transition"] = _s(form, "transition")
        if _s(form, "lifecycle_days"):
            timing["days"] = _Flow(_int(d) for d in _list(_s(form, "lifecycle_days")))
    elif trigger == "behaviour":
        timing["behaviour"] = _s(form, "behaviour")
        if _s(form, "min_logins"):
            timing["min_logins"] = _int(_s(form, "min_logins"))
        if _s(form, "behaviour_days"):
            timing["days"] = _int(_s(form, "behaviour_days"))
    timing["send_window"] = _Flow([_s(form, "window_start"), _s(form, "window_end")])
    policy = _s(form, "reentry") or "once_ever"
    timing["reentry"] = ({"policy": policy, "n": _int(_s(form, "reentry_n"))}
                         if policy == "every_n_trading_days" else policy)
    doc["timing"] = timing

    user: dict[str, Any] = {}
    if _s(form, "tier"):
        user["tier"] = _s(form, "tier")
    if _s(form, "rule"):
        user["rule"] = _s(form, "rule")
    elif _s(form, "segment"):
        user["segment"] = _s(form, "segment")
    if _s(form, "exclude"):
        user["exclude"] = _Flow(_list(_s(form, "exclude")))
    if _s(form, "max_audience"):
        user["max_audience"] = _int(_s(form, "max_audience"))
    doc["user"] = user

    doc["benefit"] = {"items": _Flow(_list(_s(form, "benefits")))}
    channels = _list(_s(form, "channels"))
    doc["channel"] = ({"fixed": channels[0] if channels else ""} if _s(form, "channel_mode") == "fixed"
                      else {"order": _Flow(channels)})

    method: dict[str, Any] = {"mode": _s(form, "mode") or "automated", "holdout": _num(_s(form, "holdout"))}
    if _s(form, "allocation"):
        method["allocation"] = _s(form, "allocation")
    method["success"] = {"event": _s(form, "success_event"), "within_trading_days": _int(_s(form, "success_days"))}
    if _s(form, "personalised") in ("on", "true", "1", "yes"):
        method["personalised"] = True
    doc["method"] = method

    content: dict[str, Any] = {}
    if _s(form, "content_link"):
        content["link"] = _s(form, "content_link")
    if _s(form, "push_title") or _s(form, "push_body"):
        content["app_push"] = {"title": _s(form, "push_title"), "body": _s(form, "push_body")}
    if _s(form, "sms_template"):
        content["sms"] = {"template": _s(form, "sms_template")}
    if _s(form, "call_script"):
        content["call"] = {"script": _s(form, "call_script")}
    if content:
        doc["content"] = content
    return yaml.dump(doc, Dumper=_Dumper, allow_unicode=True, sort_keys=False, width=1000)


def _join(v: Any) -> str:
    if isinstance(v, list):
        return ", ".join(str(x) for x in v)
    return "" if v is None else str(v)


def form_from_yaml(text: str) -> dict[str, str]:
    """The form's fields filled from a playbook's YAML (best effort: a text that does not parse gives {})."""
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError:
        return {}
    if not isinstance(doc, dict):
        return {}

    def sub(key: str) -> dict[str, Any]:
        v = doc.get(key)
        return v if isinstance(v, dict) else {}

    t, u, b, c, m, content = sub("timing"), sub("user"), sub("benefit"), sub("channel"), sub("method"), sub("content")
    out: dict[str, str] = {k: _join(doc.get(k)) for k in ("id", "name", "purpose", "description")}
    trig = _join(t.get("trigger"))
    out["trigger"] = trig
    if trig == "schedule":
        out.update(schedule=_join(t.get("schedule")), at=_join(t.get("at")), sched_n=_join(t.get("n")),
                   sched_event=_join(t.get("event")))
    elif trig == "market_event":
        out.update(event=_join(t.get("event")), threshold=_join(t.get("threshold")), index=_join(t.get("index")),
                   direction=_join(t.get("direction")))
    elif trig == "lifecycle":
        out.update(transition=_join(t.get("transition")), lifecycle_days=_join(t.get("days")))
    elif trig == "behaviour":
        out.update(behaviour=_join(t.get("behaviour")), min_logins=_join(t.get("min_logins")),
                   behaviour_days=_join(t.get("days")))
    window = t.get("send_window") if isinstance(t.get("send_window"), list) else ["", ""]
    out["window_start"], out["window_end"] = (_join(window[0]), _join(window[1])) if len(window) == 2 else ("", "")
    re_ = t.get("reentry")
    if isinstance(re_, dict):
        out["reentry"], out["reentry_n"] = _join(re_.get("policy")), _join(re_.get("n"))
    else:
        out["reentry"] = _join(re_)
    out.update(segment=_join(u.get("segment")), rule=_join(u.get("rule")), tier=_join(u.get("tier")),
               exclude=_join(u.get("exclude")), max_audience=_join(u.get("max_audience")))
    out["benefits"] = _join(b.get("items"))
    if c.get("fixed") is not None:
        out["channel_mode"], out["channels"] = "fixed", _join(c.get("fixed"))
    else:
        out["channel_mode"], out["channels"] = "order", _join(c.get("order"))
    success = m.get("success") if isinstance(m.get("success"), dict) else {}
    out.update(mode=_join(m.get("mode")), holdout=_join(m.get("holdout")), allocation=_join(m.get("allocation")),
               success_event=_join(success.get("event")), success_days=_join(success.get("within_trading_days")),
               personalised="on" if m.get("personalised") is True else "")
    push = content.get("app_push") if isinstance(content.get("app_push"), dict) else {}
    call = content.get("call") if isinstance(content.get("call"), dict) else {}
    sms = content.get("sms") if isinstance(content.get("sms"), dict) else {}
    out.update(content_link=_join(content.get("link")), push_title=_join(push.get("title")),
               push_body=_join(push.get("body")), call_script=_join(call.get("script")),
               sms_template=_join(sms.get("template")))
    return out
