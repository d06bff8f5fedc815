"""``panhuo serve`` as a real process on loopback (one process, and two uvicorn workers): it serves the API of the
workspace until stopped."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from panhuo.config import Workspace
from tests.service.conftest import PASSWORD

__all__: list[str] = []


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("workers", [1, 2])
def test_panhuo_serve_answers_on_loopback_and_stops_on_sigint(ws: Workspace, workers: int) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-c", "from panhuo.cli.main import main; main()", "--workspace", str(ws.root), "serve",
         "--port", str(port), "--insecure-cookies", "--workers", str(workers)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"})
    try:
        base = f"http://127.0.0.1:{port}/api/v1"
        deadline = time.monotonic() + 30
        while True:
            try:
                health = httpx.get(f"{base}/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
                assert time.monotonic() < deadline, "panhuo serve did not answer within 30 s"
                time.sleep(0.2)
        assert health.json()["status"] == "ok"
        with httpx.Client(base_url=base) as c:
            assert c.post("/session", json={"name": "ops", "password": PASSWORD}).status_code == 200
            assert [p["id"] for p in c.get("/playbooks").json()] == ["ipo-approved", "ipo-day-wake-sleeping",
                                                                 "ipo-draft", "rescue-effective-to-sleeping"]
    finally:
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out
    assert f"http://127.0.0.1:{port}/api/v1" in out
