"""The generated report in a real headless Chromium (Debian's, driven by Playwright for Python).

Checks what a reader relies on: the page loads from file:// with no console error and no request
other than its own file; the summary table and a drill-down are visible; a filter and the search
change what is shown; copy works without errors; hostile strings run no script. On a large
synthetic results file (20 000 records, conformance/bench/report_scale.py): the records, listed a
page at a time from the page's data, are filtered, searched, paged and opened (message, metrics,
repro command) with the counts the results file gives. A screenshot is written to
reports/report-screenshot.png for a human to look at.

Without Chromium (or Playwright) the tests skip with the reason, except under CI (env CI set),
where a missing browser is a failure: .ci/run installs it.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from attnconf.conformance.report import load_results, render

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
FIX = Path(__file__).parent / "fixtures" / "report"
CHROMIUM = os.environ.get("ATTNCONF_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
        "--disable-default-apps"]


def _need(condition: bool, reason: str) -> None:
    if condition:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI is set: the browser test must run here)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        sync_playwright = None
    _need(sync_playwright is not None, "Playwright for Python is not installed")
    exe = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    _need(bool(exe), f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=exe, args=ARGS)
        yield b
        b.close()


class Page:
    """A page with every console message, page error, request and dialog recorded."""

    def __init__(self, browser, path: Path):
        self.page = browser.new_page(viewport={"width": 1400, "height": 1000})
        self.console, self.errors, self.requests, self.dialogs = [], [], [], []
        self.page.on("console", lambda m: self.console.append((m.type, m.text)))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(path.as_uri())
        self.page.wait_for_load_state("load")
        # every record read from the page's data
        self.page.wait_for_function("() => document.getElementById('shown-count').dataset.ready === '1'")

    def shown(self) -> int:
        return int(self.page.locator("#shown-count").inner_text())

    def visible_records(self) -> int:
        return self.page.locator("details.rec:visible").count()

    def check_clean(self, own: Path) -> None:
        assert self.errors == []
        assert [m for m in self.console if m[0] in ("error", "warning")] == []
        assert self.requests == [own.as_uri()], "the report fetched something besides itself"
        assert self.dialogs == []


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    runs, problems = load_results([FIX / "reference.json", FIX / "torch.json", FIX / "bench.json"])
    return render(runs, tmp_path_factory.mktemp("report") / "index.html",
                  baseline=FIX / "baseline_torch.json", problems=problems)


def test_report_reads_and_filters_in_chromium(browser, report):
    p = Page(browser, report)
    page = p.page
    assert page.locator("#summary-table").is_visible()
    assert page.locator("#summary-table tbody tr").count() == 3
    assert page.locator("#clause-matrix").is_visible()
    assert page.locator("svg.plot").count() >= 4

    total = p.shown()
    assert total == p.visible_records() == page.locator("details.rec").count() > 0

    # drill-down: open the first (worst) case and see its metrics, message and repro
    first = page.locator("details.rec").first
    first.locator("summary").click()
    assert first.locator(".body").is_visible()
    assert first.locator("pre.msg").is_visible()
    assert "attnconf run" in first.locator(".repro pre").inner_text()
    first.locator("button.copy").click()
    page.locator("#filters").scroll_into_view_if_needed()
    page.evaluate("window.scrollBy(0, -60)")  # below the sticky nav
    (ROOT / "reports").mkdir(exist_ok=True)
    page.screenshot(path=str(ROOT / "reports" / "report-screenshot-cases.png"))
    page.wait_for_function("() => document.querySelector('details.rec button.copy').textContent !== 'copy'")

    # status filter: exactly the fail records of the fixtures remain
    n_fail = sum(r["status"] == "fail" for f in ("reference.json", "torch.json")
                 for r in json.loads((FIX / f).read_text())["results"])
    page.select_option("#f-status", "fail")
    assert p.shown() == p.visible_records() == n_fail < total
    page.select_option("#f-status", "")

    # framework filter also narrows the summary table
    page.select_option("#f-framework", "numpy")
    assert page.locator("#summary-table tbody tr:visible").count() == 1
    assert 0 < p.visible_records() < total
    page.click("#f-reset")
    assert p.visible_records() == total

    # search: a case id substring; then nonsense shows the "no match" note
    page.fill("#f-search", "bottom_right")
    assert 0 < p.visible_records() < total
    assert all("bottom_right" in t for t in page.locator("details.rec:visible summary").all_inner_texts())
    page.fill("#f-search", "no-such-case-anywhere")
    assert p.visible_records() == 0 and page.locator("#no-match").is_visible()
    page.click("#f-reset")

    # a clause-matrix cell lists that clause's cases for that implementation
    page.locator("button.cell-filter").first.click()
    assert page.locator("#f-clause").input_value() != "" and 0 < p.visible_records() < total
    page.click("#f-reset")

    out = ROOT / "reports" / "report-screenshot.png"
    out.parent.mkdir(exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")
    page.screenshot(path=str(out), full_page=False)
    assert out.stat().st_size > 10_000
    p.check_clean(report)
    page.close()


def test_hostile_strings_run_no_script_in_chromium(browser, tmp_path):
    import importlib.util

    # by path, so this works whether or not tests/ is a package
    spec = importlib.util.spec_from_file_location("_report_hostile", Path(__file__).parent / "test_report_escaping.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    HOSTILE, hostile_results = mod.HOSTILE, mod.hostile_results
    out = render([hostile_results(i) for i in range(3)], tmp_path / "hostile.html",
                 baseline=[hostile_results(5)], problems=HOSTILE)
    p = Page(browser, out)
    page = p.page
    for d in page.locator("details.rec").all():
        d.locator("summary").click()
    # the hostile message and repro are shown, as text
    bodies = "".join(page.locator("details.rec .body").all_inner_texts())
    assert "failed: " + HOSTILE[5] in bodies and HOSTILE[7] in bodies
    # fire the events an injected handler would listen to, on every element (no real pointer:
    # overlapping plot markers would make hovering flaky)
    page.evaluate("""() => document.querySelectorAll('*').forEach(el => {
        for (const t of ['mouseover', 'focus', 'load', 'error']) el.dispatchEvent(new Event(t));
    })""")
    page.fill("#f-search", "alert")
    assert p.visible_records() > 0
    assert page.evaluate("document.querySelectorAll('img, iframe, object, embed').length") == 0
    # the data block, the code, and the records' data chunk: no other script
    assert page.evaluate("document.scripts.length") == 3
    assert page.evaluate("Array.from(document.scripts).filter(s => !s.type || /javascript|module/.test(s.type)).length") == 1
    p.check_clean(out)
    page.close()


N_LARGE = 20_000


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    from attnconf.conformance.bench.report_scale import synthetic_results

    doc = synthetic_results(N_LARGE, seed=3)
    folder = tmp_path_factory.mktemp("large")
    (folder / "large.json").write_text(json.dumps(doc))
    runs, problems = load_results([folder / "large.json"])
    assert problems == []
    return doc["results"], render(runs, folder / "large.html")


def test_large_report_filters_searches_pages_and_opens_records(browser, large):
    records, path = large
    p = Page(browser, path)
    page = p.page
    assert p.shown() == N_LARGE
    assert p.visible_records() == 100  # one page of the list, not 20 000 elements
    assert page.locator("#pg-info").inner_text() == f"page 1 of {N_LARGE // 100}"
    assert page.evaluate("document.getElementsByTagName('*').length") < 40_000

    # status: exactly the failing records, every listed one a fail
    n_fail = sum(r["status"] == "fail" for r in records)
    page.select_option("#f-status", "fail")
    assert p.shown() == n_fail > 0
    assert set(page.locator("details.rec:visible summary .badge").all_inner_texts()) == {"fail"}
    # and a second filter narrows it further, as the data says
    impl = records[len(records) // 2]["adapter"]
    page.select_option("#f-impl", impl)
    assert p.shown() == sum(r["status"] == "fail" and r["adapter"] == impl for r in records)
    page.click("#f-reset")
    assert p.shown() == N_LARGE

    # dtype and clause prefix
    page.select_option("#f-dtype", "float16")
    clause = records[7]["clauses"][0]
    page.fill("#f-clause", clause)
    want = sum(r["dtype"] == "float16" and any(c.startswith(clause) for c in r["clauses"]) for r in records)
    assert p.shown() == want > 0
    page.click("#f-reset")

    # search: a case-name fragment matches the records whose case holds it
    q = "_17_l"
    page.fill("#f-search", q)
    assert p.shown() == sum(q in r["case"] for r in records) > 0
    assert all(q in t for t in page.locator("details.rec:visible summary").all_inner_texts())
    page.fill("#f-search", "no-such-case-anywhere")
    assert p.shown() == 0 and page.locator("#no-match").is_visible()
    page.click("#f-reset")

    # paging
    first = page.locator("details.rec").first.get_attribute("id")
    page.click("#pg-next")
    assert page.locator("#pg-info").inner_text() == f"page 2 of {N_LARGE // 100}"
    assert page.locator("details.rec").first.get_attribute("id") != first
    page.click("#pg-prev")

    # drill-down: the record's message, metrics and repro command, rendered when opened
    page.select_option("#f-status", "fail")
    rec = page.locator("details.rec").first
    assert rec.locator(".body").inner_text() == ""   # not built until opened
    rec.locator("summary").click()
    case = rec.locator("summary .mono").nth(1).inner_text()
    impl = rec.locator("summary .mono").nth(0).inner_text()
    dtype = rec.locator("summary span").nth(3).inner_text()
    raw = next(r for r in records if r["case"] == case and r["adapter"] == impl and r["dtype"] == dtype)
    assert rec.locator("pre.msg").inner_text() == raw["message"]
    assert rec.locator(".repro pre").inner_text() == raw["repro"]
    body = rec.locator(".body").inner_text()
    assert "max_ulp_error" in body and "worst element" in body and "tolerance_ulps" in body
    rec.locator("button.copy").click()
    page.wait_for_function("() => document.querySelector('details.rec button.copy').textContent !== 'copy'")

    # a link to a record shows its page and opens it
    page.goto(path.as_uri() + "#rec-250")
    page.wait_for_function("() => document.getElementById('rec-250') && document.getElementById('rec-250').open")
    assert page.locator("#rec-250 pre.msg").is_visible()
    p.check_clean(path)
    page.close()
