"""``panhuo provider-sim`` as a separate process: it listens, answers, and prints its stats on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time

import httpx
import pytest

from panhuo.cli.sim import parse_latency
from panhuo.errors import ConfigError
from tests.conftest import PANHUO


def _start(*args: str, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([PANHUO, "provider-sim", "--port", "0", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        m = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
        if m:
            return proc, m.group(1)
    proc.kill()
    raise AssertionError(f"provider-sim did not start: {proc.stderr.read()}")


def test_the_cli_serves_until_sigterm_then_prints_the_stats():
    proc, url = _start("--token", "cli-token", "--seed", "4", "--latency-ms", "0:5")
    try:
        r = httpx.post(f"{url}/sms/send", headers={"Authorization": "Bearer cli-token"},
                       json={"message_id": "m1", "idempotency_key": "k1", "phone": "13000000001", "text": "hi"})
        assert r.status_code == 200 and r.json()["status"] == "accepted"
        assert httpx.post(f"{url}/sms/send", json={}, headers={"Authorization": "Bearer sim-token"}).status_code == 401
        assert httpx.get(f"{url}/stats").json()["delivered"]["sms"] == 1
        assert httpx.get(f"{url}/config").json()["latency_ms"] == [0, 5]
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert re.search(r"delivered sms\s*│\s*1 ", out), out
    assert "unauthorized (401)" in out


def test_the_cli_reads_the_secret_from_the_environment_and_signs_receipts():
    from tests.delivery.test_sim_receipts import Receiver

    with Receiver() as receiver:
        proc, url = _start("--callback", receiver.url, "--secret-env", "PANHUO_SIM_TEST_SECRET",
                           "--reply-rate", "1", env={"PANHUO_SIM_TEST_SECRET": "env-secret"})
        try:
            httpx.post(f"{url}/sms/send", headers={"Authorization": "Bearer sim-token"},
                       json={"message_id": "m1", "idempotency_key": "k1", "phone": "13000000001", "text": "hi"})
            deadline = time.monotonic() + 20
            while len(receiver.got) < 2 and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0
        from panhuo.delivery.sim import verify_signature

        assert len(receiver.got) == 2
        assert all(verify_signature("env-secret", raw, header) for _, header, raw in receiver.got)
        assert "env-secret" not in out


@pytest.mark.parametrize("args,env,needle", [
    (["--callback", "http://127.0.0.1:9/hook"], {}, "--secret-env"),
    (["--callback", "http://127.0.0.1:9/hook", "--secret-env", "PANHUO_SIM_UNSET_VAR"], {}, "not set"),
    (["--error-rate", "1.5"], {}, "error_rate"),
    (["--latency-ms", "9:1"], {}, "--latency-ms"),
])
def test_bad_options_exit_with_code_2_and_a_message(args, env, needle):
    env = {k: v for k, v in os.environ.items() if k != "PANHUO_SIM_UNSET_VAR"}
    r = subprocess.run([PANHUO, "provider-sim", "--port", "0", *args], capture_output=True, text=True,
                       timeout=60, env=env)
    assert r.returncode == 2
    assert needle in r.stderr + r.stdout


def test_parse_latency():
    assert parse_latency("20:80") == (20, 80)
    assert parse_latency("50") == (50, 50)
    for bad in ("a:b", "1:2:3", "-1:5", "10:5"):
        with pytest.raises(ConfigError):
            parse_latency(bad)
