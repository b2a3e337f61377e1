"""``keylane serve`` as a real process: prints the URL and the token, serves, stops on SIGTERM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.integration.web.conftest import subscribed


def _lines_until(process: subprocess.Popen[str], pattern: str, limit: int = 50) -> list[str]:
    lines: list[str] = []
    assert process.stdout is not None
    for _ in range(limit):
        line = process.stdout.readline()
        if not line:
            break
        lines.append(line)
        if re.search(pattern, line):
            return lines
    raise AssertionError(f"no line matching {pattern!r} in {lines}")


def test_keylane_serve_prints_its_url_and_token_and_serves(tmp_path: Path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYLANE_API", "OTEL_"))}
    process = subprocess.Popen(
        [sys.executable, "-m", "keylane", "serve", "--port", "0", "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        lines = _lines_until(process, r"^API token: ")
        url = re.search(r"on (http://127\.0\.0\.1:\d+)", lines[0])
        assert url is not None, lines
        token = lines[1].split()[2]
        assert "generated" in lines[1]
        with httpx.Client(base_url=url.group(1), timeout=10) as client:
            assert client.get("/healthz").json() == {"status": "alive"}
            headers = {"Authorization": f"Bearer {token}"}
            response = client.post("/v1/events", json=subscribed("cli1"), headers=headers)
            assert response.status_code == 202
            for _ in range(500):
                metrics = client.get("/metrics").text
                if (
                    'keylane_sends_total{channel="sms",outcome="sent",stage="dispatch"} 1.0'
                    in metrics
                ):
                    break
                time.sleep(0.02)
            else:
                raise AssertionError("the welcome SMS was never sent")
            assert client.get("/readyz").json() == {"ready": True}
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "stopped" in out
    assert token not in err  # the token is printed once, on stdout, and never logged
    assert "+14155550123" not in err
