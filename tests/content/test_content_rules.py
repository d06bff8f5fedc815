"""Wording check, masking, money and SMS segment rules (hypothesis properties where it pays)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from panhuo.content import (
    DEFAULT_FORBIDDEN,
    SmsRules,
    finalise_sms,
    find_forbidden,
    format_fen,
    mask_name,
    mask_phone,
    normalise,
    sms_segments,
)

__all__: list[str] = []

FULL_WIDTH = {chr(c): chr(c + 0xFEE0) for c in range(0x21, 0x7F)}
PADDING = [" ", "\u3000", "\u200b", "·", "・", "-", "_", "\t", "\ufeff", "*", "/"]


@pytest.mark.parametrize("phrase", DEFAULT_FORBIDDEN)
def test_every_default_phrase_is_refused(phrase: str) -> None:
    text = f"尊敬的客户，本产品{phrase}，欢迎了解。"
    hits = find_forbidden(text)
    assert phrase in {h.phrase for h in hits}
    hit = next(h for h in hits if h.phrase == phrase)
    assert (hit.line, hit.col) == (1, 10)


@settings(max_examples=200, deadline=None)
@given(phrase=st.sampled_from(DEFAULT_FORBIDDEN), pads=st.lists(st.sampled_from(PADDING), min_size=1, max_size=4),
       data=st.data())
def test_phrases_padded_with_spaces_or_separators_are_refused(phrase: str, pads: list[str], data: st.DataObject) -> None:
    chars = list(phrase)
    out = chars[0]
    for ch in chars[1:]:
        out += data.draw(st.sampled_from(pads)) + ch
    assert phrase in {h.phrase for h in find_forbidden("前文\n" + out + "后文")}


def test_full_width_and_case_variants_of_latin_phrases() -> None:
    text = "".join(FULL_WIDTH.get(c, c) for c in "NO RISK").upper()
    assert [h.phrase for h in find_forbidden(f"第一行\n这是{text}投资", ["no risk"])] == ["no risk"]
    hit = find_forbidden(f"第一行\n这是{text}投资", ["no risk"])[0]
    assert (hit.line, hit.col) == (2, 3)


def test_clean_text_passes_and_configured_list_is_used() -> None:
    assert find_forbidden("投资有风险，入市需谨慎。新股申购提醒。") == []
    assert [h.phrase for h in find_forbidden("限时福利", ["限时"])] == ["限时"]
    assert normalise("保　本") == "保本"


@settings(max_examples=300)
@given(st.from_regex(r"\A(\+86|86)?[ -]?1[3-9][0-9][ -]?[0-9]{4}[ -]?[0-9]{4}\Z"))
def test_masked_phone_shows_at_most_first_3_and_last_4_digits(phone: str) -> None:
    digits = re.sub(r"[^0-9]", "", phone)
    if len(digits) == 13:
        digits = digits[2:]
    masked = mask_phone(phone)
    assert masked == digits[:3] + "****" + digits[-4:]
    assert sum(c.isdigit() for c in masked) <= 7


@settings(max_examples=300)
@given(st.text(max_size=30))
def test_masked_phone_never_leaks_middle_digits(text: str) -> None:
    masked = mask_phone(text)
    digits = [c for c in text if c.isdigit() and c.isascii()]
    assert sum(c.isdigit() for c in masked) <= 7
    shown = [c for c in masked if c.isdigit()]
    if shown:
        assert masked[:3].isdigit() and masked[-4:].isdigit() and set(masked[3:-4]) == {"*"}
        assert len(digits) >= 8


@given(st.text(min_size=1, max_size=10).filter(lambda s: s.strip()))
def test_masked_name_is_first_char_and_stars(name: str) -> None:
    masked = mask_name(name)
    assert masked[0] == name.strip()[0]
    assert set(masked[1:]) <= {"*"} and len(masked) == len(name.strip())


@given(st.integers(min_value=-10**15, max_value=10**15))
def test_money_from_fen_is_exact(fen: int) -> None:
    text = format_fen(fen)
    assert text.endswith("元")
    back = int(text[:-1].replace(",", "").replace(".", ""))
    assert back == fen
    with pytest.raises(TypeError):
        format_fen(1.5)


@given(n=st.integers(min_value=0, max_value=5000))
def test_sms_segments(n: int) -> None:
    seg = sms_segments(n)
    if n == 0:
        assert seg == 0
    elif n <= 70:
        assert seg == 1
    else:
        assert seg >= 2 and 67 * (seg - 1) < n <= 67 * seg


@given(body=st.text(alphabet=st.characters(blacklist_characters="【】"), max_size=300))
def test_finalised_sms_has_signature_and_unsubscribe(body: str) -> None:
    rules = SmsRules(signature="盘活证券")
    text = finalise_sms(body, rules)
    assert text.startswith("【盘活证券】") or "【盘活证券】" in body
    assert "回T退订" in text
    assert finalise_sms(text, rules) == text  # idempotent


def test_finalise_refuses_a_foreign_signature() -> None:
    with pytest.raises(ValueError, match="别家证券"):
        finalise_sms("【别家证券】开户有礼", SmsRules(signature="盘活证券"))
    assert finalise_sms("您好", SmsRules()) == "【盘活证券】您好回T退订"
