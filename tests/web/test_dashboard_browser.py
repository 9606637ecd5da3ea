"""The dashboard in a real browser: Debian's Chromium driven by Playwright (never a downloaded browser).

Every page loads without console errors or failed requests and passes basic accessibility checks (a
title, landmarks, labelled fields, every control reachable with the keyboard); a person signs in,
finds a customer, replays a quarantined event and downloads a CSV and the investment case. Screenshots
of every page go to ``test-artifacts/screenshots`` (gitignored).
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.web.conftest import PAGES, PASSWORDS, Dashboard

# The shared server's set-up simulates, resolves, predicts and fits a small shop first (minutes on a busy machine).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    executable = shutil.which("chromium")
    if executable is None:
        message = "Debian's chromium is not installed (apt-get install -y chromium)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=ARGS)
        yield launched
        launched.close()


class Watched:
    """A page whose console errors, failed requests and error responses are collected."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.problems: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.problems.append(f"console: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(f"failed: {r.url} {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and self.problems.append(f"{r.status}: {r.url}"))


@pytest.fixture
def signed_in(browser: Any, dashboard: Dashboard) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, accept_downloads=True)
    watched = Watched(context.new_page())
    page = watched.page
    page.goto(dashboard.url + "/")
    assert page.url.startswith(dashboard.url + "/signin")
    page.fill("#username", "ada")
    page.fill("#password", PASSWORDS["ada"])
    page.click("button[type=submit]")
    page.wait_for_url(dashboard.url + "/")
    yield watched
    context.close()


# Accessibility basics, checked in the page (axe-core is not packaged for Python; these are its core rules).
A11Y = """() => {
  const problems = [];
  if (!document.title.trim()) problems.push('no title');
  if (document.documentElement.lang === '') problems.push('no lang');
  for (const sel of ['header', 'main', 'footer']) {
    if (document.querySelectorAll(sel).length !== 1) problems.push('landmark ' + sel);
  }
  if (!document.querySelector('h1')) problems.push('no h1');
  for (const f of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    const label = f.id && document.querySelector('label[for="' + f.id + '"]');
    if (!label && !f.getAttribute('aria-label')) problems.push('unlabelled ' + (f.name || f.outerHTML.slice(0, 60)));
  }
  for (const svg of document.querySelectorAll('svg')) {
    if (!svg.getAttribute('aria-label')) problems.push('chart without a label');
  }
  for (const el of document.querySelectorAll('a, button')) {
    if (!el.textContent.trim() && !el.getAttribute('aria-label')) problems.push('control without a name');
  }
  const ids = Array.from(document.querySelectorAll('[id]'), e => e.id);
  for (const id of new Set(ids.filter((id, i) => ids.indexOf(id) !== i))) problems.push('duplicate id ' + id);
  for (const el of document.querySelectorAll('[tabindex]')) {
    if (el.tabIndex < 0) problems.push('removed from tab order');
  }
  return problems;
}"""

# Numbers every visible control; the Tab walk then reports which numbers received the focus.
CONTROLS = """() => Array.from(
    document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary'))
  .filter(e => e.offsetParent !== null || e.tagName === 'SUMMARY')
  .map((e, i) => { e.dataset.tabId = String(i); return String(i); })"""


def _tab_walk(page: Any, limit: int) -> set[str]:
    """The numbered controls focused by pressing Tab from the top of the page."""
    page.evaluate("() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); }")
    seen: set[str] = set()
    for _ in range(limit):
        page.keyboard.press("Tab")
        tab_id = page.evaluate("() => (document.activeElement && document.activeElement.dataset.tabId) || ''")
        if tab_id in seen:
            break
        seen.add(tab_id)
    return seen


def test_every_page_loads_cleanly_and_is_accessible(signed_in: Watched, dashboard: Dashboard) -> None:
    page = signed_in.page
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.goto(dashboard.url + "/customers?q=" + dashboard.email)
    profile_path = page.url.removeprefix(dashboard.url)
    assert profile_path.startswith("/customers/prf_")
    for path in [*PAGES, profile_path]:
        page.goto(dashboard.url + path)
        name = "profile" if path == profile_path else (path.strip("/") or "overview")
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        assert page.evaluate(A11Y) == [], path
        assert "data-computing" not in page.content(), path
        controls = set(page.evaluate(CONTROLS))
        reached = _tab_walk(page, len(controls) + 5)
        assert controls <= reached, (path, sorted(controls - reached, key=int)[:5])
    assert signed_in.problems == []


def test_search_a_customer_and_open_the_profile(signed_in: Watched, dashboard: Dashboard) -> None:
    page = signed_in.page
    page.click("nav >> text=Customers")
    page.fill("#q", dashboard.email)
    page.keyboard.press("Enter")
    page.wait_for_url("**/customers/prf_*")
    assert dashboard.email in page.content()
    for heading in ("Identities", "Traits", "Predictions", "Timeline"):
        assert page.get_by_role("heading", name=heading).is_visible()
    assert page.locator("ol.timeline li").count() > 0
    # part of the address finds it too, as a list to click through
    page.goto(dashboard.url + "/customers?q=" + dashboard.email.split("@")[0][:-1])
    page.locator("table a").first.click()
    page.wait_for_url("**/customers/prf_*")
    assert signed_in.problems == []


def test_build_an_audience_see_its_count_and_save_it(signed_in: Watched, dashboard: Dashboard) -> None:
    page = signed_in.page
    page.click("nav >> text=Audiences")
    page.fill("#definition", '{"trait": "orders", "gte": 1}')
    page.click("button:text-is('Count')")
    count = int(page.locator("#builder-count").inner_text().split()[0].replace(",", ""))
    assert count > 0
    assert page.locator("table a[href^='/customers/prf_']").count() == min(count, 10)
    page.fill("#definition", '{"trait": "orders", "eq": "SE"}')  # a mistake is named, the text kept
    page.click("button:text-is('Count')")
    assert "'orders' is a number" in page.locator("[role=alert]").inner_text()
    assert page.input_value("#definition") == '{"trait": "orders", "eq": "SE"}'
    signed_in.problems.clear()  # the 400 of that mistake is expected
    page.fill("#definition", '{"trait": "orders", "gte": 1}')
    page.fill("#audience-name", "buyers-from-the-browser")
    page.click("text=Save as an audience")
    page.wait_for_url("**/audiences?saved=buyers-from-the-browser")
    for _ in range(60):  # the page's section is recomputed in the background
        if f"{count:,} members" in page.content() and "buyers-from-the-browser" in page.content():
            break
        page.wait_for_timeout(1000)
        page.reload()
    assert "buyers-from-the-browser" in page.content() and f"{count:,} members" in page.content()
    assert signed_in.problems == []


def test_replay_a_quarantined_event_with_a_correction(signed_in: Watched, dashboard: Dashboard) -> None:
    page = signed_in.page
    page.goto(dashboard.url + "/data")
    page.locator("table a[href^='/data/quarantine/']").first.click()
    assert "u-bad" in page.locator("pre.payload").inner_text()
    fixed = '{"type": "track", "event": "Fixed In Dashboard", "userId": "u-bad", "messageId": "bad-event-1"}'
    page.fill("#payload", fixed)
    page.click("text=Replay this record")
    assert "1 record(s) replayed" in page.locator("main").inner_text()
    page.goto(dashboard.url + "/data")
    assert "0 record(s) quarantined" in page.content()
    assert signed_in.problems == []


def test_download_a_csv_and_the_investment_case(signed_in: Watched, dashboard: Dashboard) -> None:
    page = signed_in.page
    page.goto(dashboard.url + "/")
    with page.expect_download() as info:
        page.click("text=Download weekly revenue, new customers and spend (CSV)")
    path = info.value.path()
    lines = Path(path).read_text().splitlines()
    assert lines[0] == "week,revenue,new_customers,spend" and len(lines) > 5
    page.goto(dashboard.url + "/mmm")
    with page.expect_download() as info:
        page.click("text=Download the investment case (PDF)")
    assert Path(info.value.path()).read_bytes()[:5] == b"%PDF-"
    assert signed_in.problems == []


def test_paths_sankey_and_the_experiment_planner(signed_in: Watched, dashboard: Dashboard) -> None:
    from touchpoint.experiments.planner import sample_size_binomial

    page = signed_in.page
    page.goto(dashboard.url + "/journeys")
    sankey = page.locator("svg.sankey")
    assert sankey.is_visible() and (sankey.get_attribute("aria-label") or "").startswith("Paths to an order")
    box = sankey.bounding_box()
    assert box is not None and box["width"] > 300 and box["height"] > 100
    flows = page.locator("svg.sankey path.flow")
    assert flows.count() > 0 and "Order Completed" in page.locator("svg.sankey").inner_html()
    page.goto(dashboard.url + "/experiments")
    page.fill("#plan-baseline", "0.1")
    page.fill("#plan-mde", "0.05")
    page.click("button:text-is('Plan')")
    page.wait_for_url("**/experiments?*")
    assert page.locator("#plan-total").inner_text() == f"{2 * math.ceil(sample_size_binomial(0.1, 0.05)):,}"
    assert "days" in page.locator("#plan-duration").inner_text()
    assert signed_in.problems == []
    page.fill("#plan-baseline", "ten")  # a mistake is named beside its field, what was typed kept
    page.click("button:text-is('Plan')")
    assert "baseline: 'ten' is not a number" in page.locator("#plan-error").inner_text()
    assert page.get_attribute("#plan-baseline", "aria-invalid") == "true"
    assert page.input_value("#plan-baseline") == "ten"
    signed_in.problems.clear()  # that answer's 400 (and the console's note of it) is expected


def test_readable_on_a_phone(browser: Any, dashboard: Dashboard) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    page.goto(dashboard.url + "/signin")
    page.fill("#username", "vic")
    page.fill("#password", PASSWORDS["vic"])
    page.click("button[type=submit]")
    page.wait_for_url(dashboard.url + "/")
    for path in ("/", "/mmm", "/journeys", "/experiments"):
        page.goto(dashboard.url + path)
        overflow = page.evaluate("() => document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 1, (path, overflow)  # wide tables scroll inside their box, not the page
    page.goto(dashboard.url + "/")
    page.screenshot(path=str(SHOTS / "overview-phone.png"))
    context.close()
