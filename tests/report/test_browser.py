"""The report in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

The report comes from a small demo study run through rungs 0-3, with HTML and
``<script>`` planted in a site name, the study title and a DICOM header field.
Screenshots at desktop and phone widths are written to ``test-artifacts/report/``
(git-ignored; CI keeps them). Without a browser the tests skip locally and fail
under ``CI=true``: CI must never pass by not running them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from claimladder import Evidence, Finding, Rung

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "report"

# No quotes inside, so they survive CSV, TOML strings and DICOM LO values unchanged.
EVIL_SITE = "<script>window.__pwned_site=1</script><b class=injected>SiteX</b>"
EVIL_TITLE = "Demo <script>window.__pwned_title=1</script><i class=injected>title</i>"
EVIL_DICOM = "<img src=x onerror=window.__pwned_dcm=1><b class=injected>d</b>"

pytestmark = pytest.mark.slow


def _unavailable(reason: str):
    # a failure under CI=true (tests/conftest.py): .ci/run installs chromium and playwright
    pytest.skip(reason)


def _chromium() -> str:
    for candidate in (os.environ.get("CLAIMLADDER_CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and (path := shutil.which(candidate)):
            return path
    _unavailable("no chromium executable found")


def _plant(root: Path) -> None:
    """Put HTML into the name of site C, the study title and the DICOM StudyDescription."""
    import pydicom

    cohort = pd.read_csv(root / "cohort.csv")
    at_c = cohort["site"] == "C"
    cohort.loc[at_c, "site"] = EVIL_SITE
    cohort.to_csv(root / "cohort.csv", index=False)
    for path in cohort.loc[at_c, "path"]:
        ds = pydicom.dcmread(root / path)
        ds.StudyDescription = EVIL_DICOM
        ds.save_as(root / path)
    spec = (root / "study.toml").read_text(encoding="utf-8")
    spec = spec.replace("site == 'C'", f"site == '{EVIL_SITE}'")
    spec = spec.replace('title = "claimladder demo: focal opacity on synthetic chest radiographs"',
                        f'title = "{EVIL_TITLE}"')
    assert EVIL_SITE in spec and EVIL_TITLE in spec
    (root / "study.toml").write_text(spec, encoding="utf-8")


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    from claimladder.datasets import fit_demo_model, make_demo_study
    from claimladder.ladder import load_study, partition_image_ids, run_ladder
    from claimladder.report import write_report

    root = tmp_path_factory.mktemp("browser-demo")
    demo = make_demo_study(root, n_patients=80, rng=0)
    _plant(root)
    spec = demo.study_path.read_text()  # fewer bootstrap replicates: the page is the point
    demo.study_path.write_text(spec.replace("n_resamples = 1000", "n_resamples = 200"))
    # seal the internal test set as a user would, and evaluate it once before the real run
    from typer.testing import CliRunner

    from claimladder.cli import app

    sealed = CliRunner().invoke(app, ["seal", str(demo.study_path), "internal_test"])
    assert sealed.exit_code == 0, sealed.output
    study = load_study(demo.study_path)
    model, _ = fit_demo_model(root, train_image_ids=partition_image_ids(study, "development"),
                              rng=0)
    run_ladder(study, rungs=[0], model=model.predict_proba)
    evidence = run_ladder(study, rungs=[0, 1, 2, 3], model=model.predict_proba)
    # No current check quotes a DICOM header value in the report; a finding that did
    # would go through the same escaping, so one stands in for it here.
    quoting = Finding(check="leakage.header_values", rung=Rung.INTERNAL, status="warn",
                      message=f"StudyDescription {EVIL_DICOM} differs between sites.",
                      table=pd.DataFrame({"keyword": ["StudyDescription"],
                                          "value": [EVIL_DICOM]}))
    evidence = Evidence.from_findings(
        [*evidence.findings, quoting], claim=evidence.claim,
        not_validated_for=evidence.not_validated_for, provenance=evidence.provenance)
    out = tmp_path_factory.mktemp("browser-report")
    return write_report(evidence, out)["report.html"]


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed (pip install -e '.[dev]')")
    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=executable,
                                      args=["--no-sandbox", "--disable-gpu"])
        yield instance
        instance.close()


# Elements sticking out of the viewport that no scrolling ancestor contains (diagnostics).
_WIDE_ELEMENTS = """() => { const W = document.documentElement.clientWidth; const out = [];
  for (const e of document.querySelectorAll('body *')) {
    if (e.getBoundingClientRect().right <= W + 1) continue;
    let a = e.parentElement, clipped = false;
    while (a) { if (getComputedStyle(a).overflowX !== 'visible') { clipped = true; break; }
                a = a.parentElement; }
    if (!clipped) out.push(`${e.tagName}.${e.className} ${e.textContent.slice(0, 60)}`);
  }
  return out.slice(0, 5); }"""


class _Page:
    """A page opened from disk with every non-file request blocked and recorded."""

    def __init__(self, browser, url: str, *, width: int, height: int):
        self.context = browser.new_context(viewport={"width": width, "height": height},
                                           offline=True, java_script_enabled=True)
        self.blocked, self.console, self.errors, self.dialogs = [], [], [], []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.console.append((m.type, m.text)))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.goto(url, wait_until="load")

    def _route(self, route):
        url = route.request.url
        if url.startswith(("file:", "data:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def close(self):
        self.context.close()


@pytest.fixture(scope="module")
def desktop(browser, report):
    page = _Page(browser, report.as_uri(), width=1280, height=900)
    yield page
    page.close()


def test_loads_from_disk_without_network_or_console_errors(desktop):
    assert desktop.blocked == []  # nothing tried to leave the file
    assert desktop.errors == []
    assert [m for m in desktop.console if m[0] in ("error", "warning")] == []
    assert desktop.page.title().startswith("claimladder evidence")


def test_every_figure_renders(desktop, report):
    html = report.read_text(encoding="utf-8")
    page = desktop.page
    sizes = page.eval_on_selector_all(
        ".figure svg", "els => els.map(e => { const r = e.getBoundingClientRect();"
                       " return [r.width, r.height]; })")
    assert len(sizes) == html.count('<div class="figure">') >= 5
    assert all(w > 50 and h > 50 for w, h in sizes), sizes
    thumbs = page.eval_on_selector_all(
        ".gallery img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight,"
                        " e.getBoundingClientRect().width])")
    assert len(thumbs) >= 6
    assert all(ok and 0 < w <= 96 and 0 < h <= 96 and shown > 0 for ok, w, h, shown in thumbs)
    flow = page.eval_on_selector_all(".flow .box", "els => els.length")
    assert flow >= 2


def test_in_page_navigation(desktop):
    page = desktop.page
    # every in-page link has a target
    missing = page.evaluate(
        "() => [...document.querySelectorAll('a[href^=\"#\"]')]"
        ".map(a => a.getAttribute('href').slice(1))"
        ".filter(id => !document.getElementById(id))")
    assert missing == []
    targets = page.eval_on_selector_all("nav a", "els => els.map(a => a.getAttribute('href'))")
    assert {"#ladder", "#failure-analysis", "#limitations", "#checklists",
            "#provenance"} <= set(targets)
    for href in ["#provenance", "#checklists", "#rung-2", "#ladder"]:
        page.click(f"nav a[href='{href}']")
        page.wait_for_function(f"() => location.hash === '{href}'")
        top = page.evaluate(f"() => document.querySelector('{href}').getBoundingClientRect().top")
        at_bottom = page.evaluate(
            "() => Math.ceil(window.scrollY + innerHeight) >= document.body.scrollHeight - 2")
        assert abs(top) < 5 or (top > 0 and at_bottom), (href, top)
    # a checklist item links to the finding that covers it
    link = page.locator("#checklists a.check").first
    href = link.get_attribute("href")
    link.click()
    page.wait_for_function(f"() => location.hash === '{href}'")
    assert abs(page.evaluate(
        f"() => document.getElementById('{href[1:]}').getBoundingClientRect().top")) < 5


def test_injected_html_is_shown_literally_and_never_runs(desktop):
    page = desktop.page
    assert page.evaluate("() => [window.__pwned_site, window.__pwned_title,"
                         " window.__pwned_dcm]") == [None, None, None]
    assert desktop.dialogs == []
    assert page.evaluate("() => document.querySelectorAll('script, .injected').length") == 0
    text = page.evaluate("() => document.body.innerText")
    assert EVIL_TITLE in page.inner_text("h1")
    assert EVIL_SITE in text  # the site name appears in tables and slice labels, as text
    assert EVIL_DICOM in text
    assert EVIL_TITLE in page.title()


def test_sealed_test_set_access_log(desktop):
    rows = desktop.page.eval_on_selector_all(
        "#sealed-access + p + .scroll tbody tr",
        "trs => trs.map(tr => [...tr.cells].map(td => td.innerText))")
    header = desktop.page.eval_on_selector_all(
        "#sealed-access + p + .scroll th", "ths => ths.map(th => th.innerText)")
    assert len(rows) == 1
    row = dict(zip(header, rows[0]))
    # two evaluations: the earlier rung-0 run and this one, under one study spec
    assert row["seal"] == "internal_test" and row["matches_seal"] == "yes"
    assert row["n_evaluations"] == "2" and row["n_specs"] == "1"


@pytest.mark.parametrize("name, width, height", [("desktop", 1280, 900), ("phone", 390, 844)],
                         ids=["desktop", "phone"])
def test_screenshots(browser, report, name, width, height):
    page = _Page(browser, report.as_uri(), width=width, height=height)
    try:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shot = ARTIFACTS / f"report-{name}.png"
        page.page.screenshot(path=str(shot), full_page=True)
        assert shot.stat().st_size > 10_000
        # the page itself never scrolls sideways; wide tables and figures scroll in place
        overflow = page.page.evaluate(
            "() => document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 1, (f"{name}: page is {overflow}px wider than the viewport: "
                               f"{page.page.evaluate(_WIDE_ELEMENTS)}")
        assert page.errors == [] and page.blocked == []
    finally:
        page.close()
