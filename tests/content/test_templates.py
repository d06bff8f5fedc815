"""Templates: the sandbox, the variable whitelist, file and line in errors, SMS structure, rendering."""

from __future__ import annotations

from pathlib import Path

import pytest
from jinja2.exceptions import SecurityError, UndefinedError

from panhuo.config import ContentSettings
from panhuo.content import (
    ContentError,
    ContentSpec,
    check_content,
    check_playbook_content,
    make_environment,
    message_variables,
    render_content,
)
from panhuo.playbooks.loader import LoadedPlaybook, validate_playbook

__all__: list[str] = []

REPO = Path(__file__).resolve().parents[2]
_STARTER = (REPO / "playbooks" / "ipo-day-wake-sleeping.yaml").read_text(encoding="utf-8")
IPO = _STARTER.split("\ncontent:")[0].rstrip("\n") + "\n"  # the starter without its own content section


def _playbook(content_yaml: str, file: str = "playbooks/ipo.yaml") -> LoadedPlaybook:
    text = IPO + content_yaml
    return LoadedPlaybook(spec=validate_playbook(text, file), text=text, source=file)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def _sms(template: str, **settings: object) -> list[str]:
    content = ContentSpec.model_validate({"sms": {"template": template}})
    return [str(i) for i in check_content(content, ContentSettings(**settings))]


ESCAPES = [
    "{{ ''.__class__.__mro__ }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ joiner }}",
    "{{ namespace() }}",
    "{{ range(10) }}",
    "{{ province.upper() }}",
    "{{ province['__class__'] }}",
    "{{ province|attr('__class__') }}",
    "{% include '/etc/passwd' %}",
    "{% import 'x' as y %}",
    "{% macro m() %}x{% endmacro %}",
    "{{ 9**9**9 }}",
    "{{ 'x' * 1000000000 }}",
    "{{ self }}",
    "{% for a in link %}{% for b in link %}{% for c in link %}x{% endfor %}{% endfor %}{% endfor %}",
    "{{ link|replace('h', 'hhhhhhhhhh')|replace('h', 'hhhhhhhhhh')|replace('h', 'hhhhhhhhhh') }}",
    "{{ config }}",
]


@pytest.mark.parametrize("template", ESCAPES)
def test_sandbox_escapes_are_refused_before_rendering(template: str) -> None:
    problems = _sms("您好" + template)
    assert problems, template
    content = ContentSpec.model_validate({"sms": {"template": template}})
    with pytest.raises(ContentError):
        render_content(content, message_variables({}))


@pytest.mark.parametrize("template", ["{{ ''.__class__.__mro__ }}", "{{ cycler.__init__.__globals__ }}"])
def test_the_environment_itself_refuses_them(template: str) -> None:
    """Even without the static checks, the sandbox + StrictUndefined + no globals refuse."""
    env = make_environment()
    with pytest.raises((SecurityError, UndefinedError)):
        env.from_string(template).render({})


def test_unknown_variable_names_playbook_file_line_and_variable() -> None:
    loaded = _playbook(
        "content:\n"
        "  sms:\n"
        "    template: |\n"
        "      您好，{{ brokerage_name }}提醒您：\n"
        "      今日新股申购，{{ total_asets }} {{ link }}\n"
    )
    issues = check_playbook_content(loaded)
    assert len(issues) == 1
    issue = issues[0]
    assert issue.file == "playbooks/ipo.yaml"
    assert issue.line == _line_of(loaded.text, "total_asets")
    assert issue.field == "content.sms.template"
    assert "unknown variable 'total_asets'" in issue.reason and "total_assets" in issue.reason


def test_unknown_variable_in_a_template_file(tmp_path: Path) -> None:
    (tmp_path / "ipo-call.j2").write_text("第一行\n第二行 {{ secret_score }}\n", encoding="utf-8")
    loaded = _playbook("content:\n  call: {file: ipo-call.j2}\n")
    loaded = LoadedPlaybook(spec=loaded.spec.model_copy(update={"channel": loaded.spec.channel.model_copy(
        update={"order": ["app_push", "call"]})}), text=loaded.text, source=loaded.source)
    issues = check_playbook_content(loaded, templates_dir=tmp_path)
    assert [(i.file, i.line) for i in issues] == [(str(tmp_path / "ipo-call.j2"), 2)]
    assert "secret_score" in issues[0].reason


def test_forbidden_wording_in_a_playbook_names_phrase_and_line() -> None:
    loaded = _playbook("content:\n  app_push:\n    title: 稳 赚 机会\n    body: 本产品保本保息\n")
    issues = check_playbook_content(loaded)
    found = {(i.line, i.field) for i in issues}
    assert (_line_of(loaded.text, "title: 稳"), "content.app_push.title") in found
    assert (_line_of(loaded.text, "body: 本产品"), "content.app_push.body") in found
    assert any("'稳赚'" in i.reason for i in issues) and any("'保本'" in i.reason for i in issues)


def test_configured_phrases_replace_the_default_list() -> None:
    assert _sms("限量抢购", forbidden_phrases=["限量"])
    assert not _sms("保本", forbidden_phrases=["限量"])


def test_sms_must_not_remove_signature_or_unsubscribe() -> None:
    assert any("【别家证券】" in p for p in _sms("【别家证券】新股申购"))
    assert any("conditional" in p for p in _sms("新股申购{% if app_user %}回T退订{% endif %}"))
    assert any("conditional" in p for p in _sms("新股申购{{ '回T退订' if app_user else '' }}"))
    assert any("conditional" in p for p in _sms("新股申购{{ link|replace('回T退订', '') }}"))
    assert _sms("【盘活证券】新股申购，回T退订") == []


def test_sms_fixed_text_too_long_for_max_segments() -> None:
    assert any("segments" in p for p in _sms("新" * 140, sms_max_segments=2))
    assert _sms("新" * 100, sms_max_segments=2) == []


def test_render_masks_personal_data_and_adds_signature_and_unsubscribe() -> None:
    content = ContentSpec.model_validate({
        "sms": {"template": "{{ customer_name }}您好（{{ phone }}），总资产{{ total_assets }}。{{ link }}"},
        "app_push": {"title": "{{ brokerage_name }}", "body": "{{ benefit_name }} {{ total_assets_fen|yuan }}"},
    })
    variables = message_variables({"total_assets_fen": 1234567, "risk_level": "C3"}, benefit_name="Level-2行情7天体验卡",
                                  phone="+86 138-1234-5678", customer_name="欧阳修")
    messages = {m.channel: m for m in render_content(content, variables)}
    sms = messages["sms"].parts["template"]
    assert sms == "【盘活证券】欧**您好（138****5678），总资产12,345.67元。https://m.example.com/a回T退订"
    assert "12345678" not in sms.replace("-", "")
    assert messages["sms"].sms is not None and messages["sms"].sms.segments == 1
    assert messages["app_push"].parts == {"title": "盘活证券", "body": "Level-2行情7天体验卡 12,345.67元"}


def test_rendered_push_over_limit_is_a_problem() -> None:
    content = ContentSpec.model_validate({"app_push": {"title": "{{ benefit_name }}", "body": "x"}})
    msgs = render_content(content, message_variables({}, benefit_name="很" * 30), ContentSettings(push_title_max=20))
    assert msgs[0].problems and "more than 20" in str(msgs[0].problems[0])


def test_template_for_a_channel_the_playbook_does_not_use() -> None:
    loaded = _playbook("content:\n  call: {script: 您好}\n")
    issues = check_playbook_content(loaded)
    assert [i.field for i in issues] == ["content.call"]


def test_content_section_is_optional_and_strict() -> None:
    assert validate_playbook(IPO, "x.yaml").content is None
    from panhuo.playbooks.errors import PlaybookError

    with pytest.raises(PlaybookError, match="content.sms"):
        validate_playbook(IPO + "content:\n  sms: {template: a, file: b.j2}\n", "x.yaml")


@pytest.mark.parametrize(
    "template",
    ["保{{ '' }}本", "{{ '稳' }}{{ '赚' }}", "{{ '\\u4fdd' ~ '本' }}", "零{% if app_user %}风险{% endif %}", "无\n风险"],
)
def test_phrases_assembled_from_template_pieces_are_refused(template: str) -> None:
    assert any("forbidden wording" in p for p in _sms(template)), template


def test_a_variable_between_two_characters_is_not_a_phrase() -> None:
    assert _sms("保{{ benefit_name }}本") == []


def test_renderer_compiles_once_and_renders_many_customers() -> None:
    from panhuo.content import ContentRenderer

    content = ContentSpec.model_validate({"sms": {"template": "{{ phone }} 总资产{{ total_assets }}"},
                                         "app_push": {"title": "提醒", "body": "{{ province }}"}})
    r = ContentRenderer(content)
    assert r.channels == ["app_push", "sms"]
    texts = [r.render(message_variables({"total_assets_fen": fen, "province": "广东"}, phone="13900001111"),
                      channels=["sms"])[0].parts["template"] for fen in (0, 1, 100_000_00)]
    assert texts[2] == "【盘活证券】139****1111 总资产100,000.00元回T退订"
    with pytest.raises(ContentError):
        ContentRenderer(ContentSpec.model_validate({"sms": {"template": "{{ nope }}"}}))
