"""Cross-field rules of a playbook, checked after the schema; each issue names the field it is about.

- The send window is a same-day window ``start < end`` outside quiet hours: the default quiet hours
  21:00-08:00 Asia/Shanghai (so windows lie within 08:00-21:00) and the playbook's own ``quiet_hours``.
- Triggers that need the market open (``ipo_subscription``: subscriptions are entered during the
  trading sessions 09:30-11:30 and 13:00-15:00) need a send window that overlaps a session.
- A scheduled ``at`` time lies inside the send window.
- A playbook whose audience is dormant accounts (休眠户) declares ``purpose: activation_invite``:
  it may invite and guide; activation is the customer's own application (DESIGN.md section 7).
- An advisor-led playbook reaches customers through advisor call tasks (``call`` among its channels).
- Arms have unique ids; Thompson allocation needs at least two arms when arms are listed; fixed
  weights, when given, are given for every arm and sum to 1.
- A segment does not exclude itself.
"""

from __future__ import annotations

import re

from panhuo.playbooks.schema import MarketEventTiming, PlaybookSpec, ScheduleTiming, minutes
from panhuo.playbooks.yamlmarks import Path

__all__ = [
    "DEFAULT_QUIET_HOURS",
    "NEEDS_TRADING_HOURS",
    "TRADING_SESSIONS",
    "check_rules",
    "in_quiet_hours",
    "targets_dormant",
]

DEFAULT_QUIET_HOURS: tuple[str, str] = ("21:00", "08:00")
TRADING_SESSIONS: tuple[tuple[str, str], ...] = (("09:30", "11:30"), ("13:00", "15:00"))
NEEDS_TRADING_HOURS: frozenset[str] = frozenset({"ipo_subscription"})
_DORMANT = re.compile(r"(^|[^a-z])dormant([^a-z]|$)|休眠")


def targets_dormant(spec: PlaybookSpec) -> bool:
    """Whether the audience is (or includes) dormant accounts, by segment name or inline rule."""
    text = spec.user.segment or spec.user.rule or ""
    return bool(_DORMANT.search(text.lower()))


def in_quiet_hours(minute: int, quiet: tuple[str, str]) -> bool:
    """Whether ``minute`` (of the day) falls in quiet hours ``[from, to)``, which may wrap midnight."""
    start, end = minutes(quiet[0]), minutes(quiet[1])
    if start == end:
        return False
    return start <= minute < end if start < end else (minute >= start or minute < end)


def _window_issues(spec: PlaybookSpec, quiet_hours: tuple[str, str]) -> list[tuple[Path, str]]:
    t = spec.timing
    start, end = (minutes(x) for x in t.send_window)
    text = f"{t.send_window[0]}-{t.send_window[1]}"
    if start >= end:
        return [(("timing", "send_window"), f"send window {text} must start before it ends (same day)")]
    for label, quiet in (("quiet hours", quiet_hours), ("this playbook's quiet_hours", t.quiet_hours)):
        if quiet is None:
            continue
        # The window [start, end) is clear when no minute of it is quiet; checking both ends and the
        # quiet start suffices because quiet hours are one interval on the 24h circle.
        qs = minutes(quiet[0])
        bad = in_quiet_hours(start, quiet) or in_quiet_hours(end - 1, quiet) or (start <= qs < end)
        if bad:
            allowed = f"{quiet[1]}-{quiet[0]}"
            return [(("timing", "send_window"),
                     f"send window {text} is outside the allowed hours {allowed} ({label} {quiet[0]}-{quiet[1]})")]
    issues: list[tuple[Path, str]] = []
    overlaps_session = any(start < minutes(b) and minutes(a) < end for a, b in TRADING_SESSIONS)
    if isinstance(t, MarketEventTiming) and t.event in NEEDS_TRADING_HOURS and not overlaps_session:
        sessions = ", ".join(f"{a}-{b}" for a, b in TRADING_SESSIONS)
        issues.append((("timing", "send_window"),
                       f"send window {text} is outside trading hours ({sessions}), which {t.event} needs"))
    if isinstance(t, ScheduleTiming) and t.at is not None and not start <= minutes(t.at) <= end:
        issues.append((("timing", "at"), f"at {t.at} is outside the send window {text}"))
    return issues


def check_rules(
    spec: PlaybookSpec, *, quiet_hours: tuple[str, str] = DEFAULT_QUIET_HOURS, purpose_given: bool = True
) -> list[tuple[Path, str]]:
    """Every cross-field rule ``spec`` breaks, as ``(field path, reason)``.

    ``purpose_given`` says whether the file states ``purpose`` (else issues about it point at the audience).
    """
    issues = _window_issues(spec, quiet_hours)
    if targets_dormant(spec) and spec.purpose != "activation_invite":
        what = f"segment {spec.user.segment!r}" if spec.user.segment else "its rule"
        where: Path = ("purpose",) if purpose_given else ("user", "segment" if spec.user.segment else "rule")
        issues.append((where, (
            f"the audience ({what}) is dormant accounts (休眠户): declare purpose: activation_invite; "
            "a dormant-account playbook may only invite and guide, never activate on the customer's behalf")))
    m = spec.method
    if m.mode == "advisor_led" and "call" not in spec.channel.channels:
        issues.append((("channel",), "an advisor_led playbook needs the call channel (advisor call tasks)"))
    if m.arms is not None:
        ids = [a.id for a in m.arms]
        for i, arm_id in enumerate(ids):
            if arm_id in ids[:i]:
                issues.append((("method", "arms", i, "id"), f"arm id {arm_id!r} repeats"))
        if m.allocation == "thompson" and len(m.arms) < 2:
            issues.append((("method", "arms"), "thompson allocation needs at least two arms"))
        weights = [a.weight for a in m.arms]
        if any(w is not None for w in weights):
            if any(w is None for w in weights):
                issues.append((("method", "arms"), "give a weight for every arm or for none"))
            elif abs(sum(w for w in weights if w is not None) - 1) > 1e-9:
                issues.append((("method", "arms"), f"arm weights sum to {sum(w for w in weights if w)}, not 1"))
            if m.allocation == "thompson":
                issues.append((("method", "arms"), "weights apply to fixed allocation, not thompson"))
    if spec.user.segment is not None and spec.user.segment in spec.user.exclude:
        issues.append((("user", "exclude"), f"segment {spec.user.segment!r} excludes itself"))
    return issues
