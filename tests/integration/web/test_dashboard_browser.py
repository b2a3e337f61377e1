"""The live dashboard in a real browser: Debian's Chromium, driven by Playwright, on the page that
``keylane run`` serves while its day runs.

The test starts ``keylane run`` (a small, slow day) as a process, reads the dashboard URL it
prints, loads the page, checks that the numbers move (two readings of the decision count and of
the engine clock differ), opens the timeline of a subscriber the page lists as delivered-to by
typing its key into the search box, checks that the timeline shows a delivered message and the
decision's reasons, checks that the browser logged no error (a Content-Security-Policy violation
would be one), and saves a screenshot to ``test-output/dashboard.png``.

Chromium is Debian's ``/usr/bin/chromium`` (``scripts/services.py up`` installs it); Playwright
never downloads a browser here. Without it the test fails in CI (``CI`` set) and is skipped
elsewhere.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(300)]

ROOT = Path(__file__).resolve().parents[3]
OUTPUT = ROOT / "test-output"
CHROMIUM = Path("/usr/bin/chromium")
#: As root, on a machine whose network is closed: no sandbox, no background connections.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
#: Milliseconds the page may take to show what the run does (bounded waits, not assertions).
WAIT_MS = 90_000


def _require_chromium() -> None:
    if CHROMIUM.is_file():
        return
    problem = f"{CHROMIUM} is missing: `scripts/services.py up` installs Debian's chromium"
    if os.environ.get("CI"):
        pytest.fail(problem)
    pytest.skip(problem)


@dataclass
class Run:
    process: subprocess.Popen[bytes]
    url: str
    dashboard: str
    token: str
    stderr: Path


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)


@pytest.fixture
def keylane_run(tmp_path: Path) -> Iterator[Run]:
    """``keylane run`` on a small, slow day (300 subscribers, 300 simulated seconds a second)."""
    _require_chromium()
    out, err = tmp_path / "stdout.txt", tmp_path / "stderr.txt"
    command = [
        sys.executable, "-m", "keylane", "run", "--subscribers", "300", "--speed", "300",
        "--port", "0", "--data-dir", str(tmp_path / "data"),
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("KEYLANE_API")}
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen(command, stdout=stdout, stderr=stderr, env=env, cwd=ROOT)
    try:
        found = None
        for _ in range(600):  # the URL comes once the pipeline runs (a few seconds)
            found = re.search(
                r"Dashboard: (?P<url>(?P<base>http://127\.0\.0\.1:\d+)/dashboard#token=(?P<t>\S+))",
                out.read_text(errors="replace"),
            )
            if found or process.poll() is not None:
                break
            time.sleep(0.1)
        assert found, f"keylane run printed no dashboard URL:\n{err.read_text()[-2000:]}"
        yield Run(process, found["base"], found["url"], found["t"], err)
    finally:
        _stop(process)


def _number(text: str | None) -> int:
    assert text is not None
    return int(text.replace(",", ""))


def test_the_dashboard_shows_the_run_live_in_chromium(
    keylane_run: Run, capsys: pytest.CaptureFixture[str]
) -> None:
    from playwright.sync_api import sync_playwright

    run = keylane_run
    OUTPUT.mkdir(exist_ok=True)
    shot = OUTPUT / "dashboard.png"
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="keylane-chromium-") as profile, sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            profile,  # a fresh --user-data-dir
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1440, "height": 900},
        )
        try:
            page = context.new_page()
            page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
            page.on(
                "console",
                lambda m: problems.append(f"console: {m.text}") if m.type == "error" else None,
            )
            page.goto(run.dashboard)
            page.wait_for_selector('#status[data-state="live"]', timeout=WAIT_MS)
            assert "token=" not in page.url, "the token stays in the address bar"

            # The numbers move: two readings of the decision count and the engine clock differ.
            page.wait_for_function(
                "/^[0-9,]+$/.test(document.getElementById('kpi-decided').textContent)",
                timeout=WAIT_MS,
            )
            first = _number(page.text_content("#kpi-decided"))
            first_clock = page.text_content("#engine-time")
            page.wait_for_function(
                "(n) => document.getElementById('kpi-decided').textContent"
                ".replaceAll(',', '') !== String(n)",
                arg=first,
                timeout=WAIT_MS,
            )
            second = _number(page.text_content("#kpi-decided"))
            assert second > first
            assert page.text_content("#engine-time") != first_clock
            assert page.locator("#consumers tbody tr").count() >= 1
            assert page.locator("#ring rect").count() > 1, "no hash range drawn"

            # A subscriber who got a message, as the page lists it; then its timeline.
            sent = page.locator("#deliveries tbody tr", has=page.locator(".badge.sent"))
            sent.first.wait_for(timeout=WAIT_MS)
            key = sent.first.locator("a.key").text_content()
            assert key is not None
            assert ":" in key
            page.fill("#search-input", key)
            page.press("#search-input", "Enter")
            delivered = page.locator('#timeline .send[data-delivered="true"]')
            delivered.first.wait_for(timeout=WAIT_MS)
            assert page.text_content("#timeline-key") == key
            assert "delivered" in (delivered.first.text_content() or "")
            event = page.locator(
                "#timeline .event", has=page.locator('.send[data-delivered="true"]')
            ).first
            codes = event.locator(".reasons .code").all_text_contents()
            assert "sent" in codes, codes

            page.evaluate("window.scrollTo(0, 0)")
            page.screenshot(path=str(shot), full_page=True)
        finally:
            context.close()
    with capsys.disabled():
        print(f"\ndashboard screenshot: {shot}")

    # The page's timeline agrees with the API: that subscriber has a sent row in its ledger.
    view = httpx.get(
        f"{run.url}/v1/timeline",
        params={"key": key},
        headers={"Authorization": f"Bearer {run.token}"},
        timeout=10,
    ).json()
    assert view["delivered"] >= 1
    assert problems == []
    assert run.process.poll() is None, "keylane run ended while the page was watched"
