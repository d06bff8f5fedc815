"""schemathesis over ``/api/v1/openapi.json``: for every operation a few generated requests (valid and invalid
inputs), each answered without a server error and as the document says (status code, content type, body schema).

Requests authenticate with write API keys: a compliance user's for the compliance operations (unmask,
approve, reject, audit), the advisor's for call outcomes, the admin's for the rest (a denial is a documented
403). Few examples per operation and no shrinking keep the whole run short; the hypothesis database is off,
so a run is the same from a clean clone.

Left out: schemathesis' "schema-valid request rejected" check. A request the document allows may still be
refused for what it means (YAML that is not a playbook: 422 with every issue; an unknown role: 400), and
that is the API's job.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings

from schemathesis.specs.openapi.checks import positive_data_acceptance

from panhuo.config import Workspace
from panhuo.service import auth
from panhuo.service.app import create_app
from panhuo.store import open_store

__all__: list[str] = []

EXAMPLES = 3


def _keys(ws: Workspace) -> dict[str, str]:
    store = open_store(ws)
    try:
        with store.session() as s:
            return {user: auth.create_api_key(s, f"schemathesis-{user}", user=user, scope="write",
                                              actor="root").secret for user in ("root", "cmp", "adv")}
    finally:
        store.dispose()


def _who(method: str, path: str) -> str:
    if any(p in path for p in ("/unmask", "/approve", "/reject", "/audit")):
        return "cmp"
    if path.endswith("/outcome"):
        return "adv"
    return "root"


def test_every_operation_answers_as_documented_and_never_500(ws: Workspace) -> None:
    keys = _keys(ws)
    app = create_app(ws, cookie_secure=False)
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    failures: list[str] = []
    tried = 0
    for result in schema.get_all_operations():
        op = result.ok()
        headers = {"Authorization": f"Bearer {keys[_who(op.method.upper(), op.path)]}"}
        if op.method.upper() == "DELETE" and op.path.endswith("/session"):
            continue  # an API key has no session to end (a documented 403, tested in test_service_auth)

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
        @given(case=op.as_strategy())
        def check(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        tried += 1
        try:
            check()
        except (Exception, BaseExceptionGroup) as exc:  # collect every operation's failure, then report them together
            failures.append(f"{op.method.upper()} {op.path}: {str(exc)[:1500]}")
    assert tried >= 30
    if failures:
        pytest.fail("\n\n".join(failures))
