"""A learner in a real headless Chromium walks through a real lab on a real stack.

`obslab up` (free ports, own state dir) → open the printed URL → catalog, filter → start a lab → a chart
draws from Prometheus → ask a hint → a wrong answer → the right answer → the debrief → stop → history.
Screenshots of each step land in artifacts/console-*.png.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from obslab.labs.catalog import load_catalog
from stackenv import run_obslab

from obslab.paths import REPO_ROOT, find_binary

LAB = "disk-full"  # light on a shared box (fills a small sandbox volume), with clear symptoms
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    # The demo service builds its sandbox (cgroups, a network namespace) and labs inject faults: root only.
    pytest.mark.skipif(os.geteuid() != 0, reason="the demo service and labs need root"),
]

# Colored (non-grey) pixels in a chart's canvas: uPlot draws axes and grid in grey, series in colour.
COLORED_PIXELS_JS = """(el) => {
  let n = 0;
  for (const c of el.querySelectorAll('canvas')) {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < d.length; i += 4) {
      const mx = Math.max(d[i], d[i+1], d[i+2]), mn = Math.min(d[i], d[i+1], d[i+2]);
      if (d[i+3] > 0 && mx - mn > 60) n++;
    }
  }
  return n;
}"""


def _api(url: str, token: str, path: str) -> Any:
    req = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def test_learner_walks_through_a_lab(isolated_stack: dict[str, str], artifacts: Path) -> None:
    if not Path(CHROMIUM).exists() or not find_binary("prometheus"):
        pytest.fail("chromium and prometheus are installed by `make setup`")
    if not (REPO_ROOT / "labs/web/static/vendor/uplot/uPlot.iife.min.js").exists():
        pytest.fail("uPlot is missing: `make setup` runs scripts/web-assets.sh")
    from playwright.sync_api import expect, sync_playwright

    lab = load_catalog()[LAB]
    answer = lab["answer"]
    right_signal = answer["signal"][0] if isinstance(answer["signal"], list) else answer["signal"]

    up = run_obslab(isolated_stack, "up", "--skip", "ebpf", "--skip", "grafana")
    assert up.returncode == 0, up.stderr
    login = up.stdout.split("console: ", 1)[1].split()[0]
    base, token = login.split("/?token=")

    shots: list[str] = []

    def shot(page: Any, name: str, full: bool = True) -> None:
        path = artifacts / f"console-{len(shots) + 1:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=full)
        shots.append(path.name)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            expect.set_options(timeout=30_000)

            # Without the token: refused.
            resp = page.goto(base + "/labs")
            assert resp is not None and resp.status == 401

            # The printed URL logs in and drops the token from the address bar.
            page.goto(login)
            assert page.url == base + "/"
            expect(page.locator("h1")).to_contain_text("Diagnose a real fault")
            shot(page, "landing")

            # Catalog, filtered by resource.
            page.click("text=Choose a lab")
            page.select_option("#filter-resource", lab["resource"])
            page.wait_for_url(f"**/labs?resource={lab['resource']}**")
            cards = page.locator("article.lab")
            assert cards.count() >= 1
            for i in range(cards.count()):
                expect(cards.nth(i).locator(".tag").first).to_have_text(lab["resource"])
            shot(page, "catalog")

            # Start the lab.
            page.click(f'button.start[data-lab="{LAB}"]')
            page.wait_for_url("**/run")
            expect(page.locator("#lab-title")).to_have_text(lab["title"], timeout=60_000)
            expect(page.locator("#state")).to_have_text("running", timeout=90_000)
            expect(page.locator("#briefing")).to_contain_text(lab["briefing"].strip().split("\n")[0][:40])
            expect(page.locator("#countdown")).to_contain_text("left")

            # A live chart draws: data points came back and coloured series pixels are on the canvas.
            drawn = page.locator('.chart.line[data-drawn="1"]').first
            expect(drawn).to_be_visible(timeout=120_000)
            assert (
                drawn.locator(".u-legend .u-series").count() >= 1
            )  # one row per series (live: false hides x)
            deadline = time.monotonic() + 30
            while (pixels := drawn.evaluate(COLORED_PIXELS_JS)) < 50 and time.monotonic() < deadline:
                time.sleep(0.5)
            assert pixels >= 50, pixels

            # Hint ladder.
            page.click("#hint")
            expect(page.locator("#hints li")).to_have_count(1)
            expect(page.locator("#hints li").first).to_have_text(lab["hints"][0].strip())
            expect(page.locator("#hint-count")).to_contain_text(f"1 of {len(lab['hints'])}")

            # A wrong answer, then the right one.
            causes = [c["id"] for c in _api(base, token, "/api/labs")[0]["answer_options"]["cause"]]
            wrong_cause = next(c for c in causes if c != answer["cause"])
            page.select_option("#answer-resource", answer["resource"])
            page.select_option("#answer-signal", right_signal)
            page.select_option("#answer-cause", wrong_cause)
            page.click("#answer button[type=submit]")
            expect(page.locator("#feedback")).to_have_class("feedback wrong")
            expect(page.locator("#debrief-box")).to_be_hidden()
            shot(page, "wrong-answer")

            page.select_option("#answer-cause", answer["cause"])
            page.click("#answer button[type=submit]")
            expect(page.locator("#feedback")).to_have_class("feedback right")
            expect(page.locator("#debrief-box")).to_be_visible()
            expect(page.locator("#debrief")).to_contain_text("Mechanism")
            expect(page.locator("#score")).to_contain_text("Score:")
            # Let a few more refreshes land so the screenshot shows the fault's effect on the charts.
            time.sleep(6)
            shot(page, "debrief")
            page.locator("main").screenshot(path=str(artifacts / "console.png"))

            # Stop the lab (its fault is reverted) and read the history.
            page.click("#stop")
            expect(page.locator("#state")).to_have_text("finished", timeout=120_000)
            page.click("text=History")
            row = page.locator("table.history tbody tr").first
            expect(row).to_contain_text(lab["title"])
            score = row.locator("td.score").inner_text()
            assert score.isdigit(), score
            shot(page, "history")
            assert errors == [], errors
        finally:
            browser.close()

    assert _api(base, token, "/api/lab")["state"] == "finished"
    assert len(shots) == 5
