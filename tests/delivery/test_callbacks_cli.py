"""``panhuo callbacks serve`` as a separate process: the secret from the environment, signed or refused, SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time

import httpx

from panhuo.delivery.channels import sign
from tests.conftest import PANHUO


def test_the_cli_serves_with_the_secret_from_the_environment_until_sigterm(tmp_path):
    env = {**os.environ, "PANHUO_CB_TEST_SECRET": "env-secret"}
    proc = subprocess.Popen([PANHUO, "--workspace", str(tmp_path / "ws"), "callbacks", "serve", "--port", "0",
                             "--secret-env", "PANHUO_CB_TEST_SECRET"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
    url = None
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            m = re.search(r"listening on (http://127\.0\.0\.1:\d+/callbacks/receipts)", line)
            if m:
                url = m.group(1)
                break
        assert url, proc.stderr.read()
        raw = json.dumps({"provider_id": "SMS-x", "message_id": "1", "channel": "sms", "event": "delivered",
                          "at": "2026-11-25T10:00:00+08:00"}).encode()
        # signed with the environment's secret: checked, then refused as an unknown message
        assert httpx.post(url, content=raw, headers={"X-Panhuo-Signature": sign("env-secret", raw)}).status_code == 404
        assert httpx.post(url, content=raw, headers={"X-Panhuo-Signature": sign("other", raw)}).status_code == 401
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "401: 1" in out and "404: 1" in out


def test_the_cli_refuses_to_start_without_the_secret(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "PANHUO_CB_MISSING"}
    r = subprocess.run([PANHUO, "--workspace", str(tmp_path / "ws"), "callbacks", "serve", "--port", "0",
                        "--secret-env", "PANHUO_CB_MISSING"], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 2 and "PANHUO_CB_MISSING" in (r.stderr + r.stdout)
