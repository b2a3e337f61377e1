"""``keylane run`` serves the API and /metrics while the day runs: two scrapes, numbers move."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
from prometheus_client.parser import text_string_to_metric_families

from keylane.observability import METRICS


def _value(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def test_curl_metrics_during_keylane_run(tmp_path: Path):
    command = [
        sys.executable, "-m", "keylane", "run", "--subscribers", "300", "--speed", "14400",
        "--port", "0", "--data-dir", str(tmp_path),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLANE_API")}
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        assert process.stdout is not None
        url = None
        for _ in range(20):
            line = process.stdout.readline()
            found = re.search(
                r"API and metrics on (http://127\.0\.0\.1:\d+)\s+\(token: (\S+)\)", line
            )
            if found:
                url = found.group(1)
                break
        assert url is not None, "keylane run did not print the API's URL"
        scrapes: list[str] = []
        with httpx.Client(base_url=url, timeout=5) as client:
            while process.poll() is None and len(scrapes) < 2:
                try:
                    text = client.get("/metrics").text
                except httpx.TransportError:
                    break  # the day ended and the server stopped
                decided = _value(text, "keylane_events_processed_total", outcome="ok")
                if decided > (
                    _value(scrapes[-1], "keylane_events_processed_total", outcome="ok")
                    if scrapes
                    else 0
                ):
                    scrapes.append(text)
                time.sleep(0.1)
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err[-2000:]
    assert len(scrapes) == 2, "fewer than two scrapes while the day ran"
    first, second = scrapes
    names = {s.name for f in text_string_to_metric_families(second) for s in f.samples}
    for spec in METRICS:
        assert any(n == spec.name or n.startswith(spec.name + "_") for n in names), spec.name
    assert _value(second, "keylane_events_processed_total", outcome="ok") > _value(
        first, "keylane_events_processed_total", outcome="ok"
    )
    assert _value(second, "keylane_decision_duration_seconds_count") > _value(
        first, "keylane_decision_duration_seconds_count"
    )
    assert _value(second, "keylane_hash_ranges_owned") > 0
