"""The web UI in a real browser (Debian's chromium driven by Playwright) against the served bento."""

from __future__ import annotations

import csv
import io
import time
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from tests.e2e.server import Server
from tests.fakes import VIRGINICA

pytestmark = pytest.mark.slow

TIMEOUT_MS = 20_000


def open_ui(browser: Browser, url: str, width: int = 1280, height: int = 1000) -> Page:
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(f"{url}/ui/")
    expect(page.locator("#predict-button")).to_be_visible()
    return page


def set_measurements(page: Page, values: dict[str, float]) -> None:
    for name, value in values.items():
        box = page.locator(f"#input-{name} input[type=number]")
        box.fill(str(value))
        box.press("Enter")


def write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    with path.open("w", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def report_an_outcome(url: str) -> None:
    """Predict a row and report its outcome, once the prediction is in the log (within about a second)."""
    httpx.post(f"{url}/prediction", json=VIRGINICA, headers={"x-request-id": "ui-live-1"})
    deadline = time.monotonic() + 10
    while httpx.post(f"{url}/feedback", json=[{"request_id": "ui-live-1", "label": "virginica"}]).json()["matched"] < 1:
        assert time.monotonic() < deadline, "the prediction never reached the log"
        time.sleep(0.2)


def test_single_prediction(browser: Browser, served_bento: Server, artifacts: Path) -> None:
    page = open_ui(browser, served_bento.url)
    set_measurements(page, VIRGINICA)
    page.locator("#predict-button").click()
    expect(page.locator("#verdict")).to_contain_text("virginica")
    expect(page.locator("#verdict")).to_contain_text("probability")
    bars = page.locator("#bars")
    for name in ("setosa", "versicolor", "virginica"):
        expect(bars).to_contain_text(name)
    expect(page.locator("#where")).to_be_visible()
    expect(page.locator("#header")).to_contain_text("test accuracy")
    page.screenshot(path=artifacts / "ui-predict.png", full_page=True)
    page.close()


def test_batch_csv_results_and_download(
    browser: Browser, served_bento: Server, artifacts: Path, tmp_path: Path
) -> None:
    rows = [
        {"id": "a", "sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2},
        {"id": "b", **VIRGINICA},
        {"id": "c", "sepal_length": 6.0, "sepal_width": 2.9, "petal_length": 4.5, "petal_width": 1.5},
    ]
    page = open_ui(browser, served_bento.url)
    page.get_by_role("tab", name="Batch (CSV)").click()
    page.locator("#batch-file input[type=file]").set_input_files(write_csv(tmp_path / "flowers.csv", rows))
    expect(page.locator("#batch-status")).to_contain_text("Predicted 3 rows")
    table = page.locator("#batch-table")
    expect(table).to_contain_text("virginica")
    expect(table).to_contain_text("setosa")
    page.screenshot(path=artifacts / "ui-batch.png", full_page=True)

    with page.expect_download() as download_info:
        page.locator("#batch-download").click()
    results = list(csv.DictReader(io.StringIO(Path(download_info.value.path()).read_text())))
    assert [r["id"] for r in results] == ["a", "b", "c"], "the user's own columns are kept"
    assert [r["class"] for r in results[:2]] == ["setosa", "virginica"]
    assert {"probability", "p_setosa", "p_versicolor", "p_virginica"} <= set(results[0])
    page.close()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("sepal_length,sepal_width,petal_length\n5.1,3.5,1.4\n", "Missing column(s): petal_width"),
        (
            "sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,0.2\n5.0,abc,1.4,0.2\n",
            "Row 2, column sepal_width: 'abc' is not a number",
        ),
        ("sepal_length,sepal_width,petal_length,petal_width\n5.1,3.5,1.4,-50\n", "Row 1, column petal_width"),
        (
            "sepal_length,sepal_width,petal_length,petal_width\n" + "5.1,3.5,1.4,0.2\n" * 1001,
            "has 1,001 rows; at most 1,000",
        ),
    ],
    ids=["missing-column", "not-a-number", "out-of-range", "too-many-rows"],
)
def test_bad_csv_gets_a_message(
    browser: Browser, served_bento: Server, artifacts: Path, tmp_path: Path, content: str, message: str
) -> None:
    page = open_ui(browser, served_bento.url)
    page.get_by_role("tab", name="Batch (CSV)").click()
    bad = tmp_path / "bad.csv"
    bad.write_text(content)
    page.locator("#batch-file input[type=file]").set_input_files(bad)
    expect(page.locator("#batch-status")).to_contain_text("Cannot use this file")
    expect(page.locator("#batch-status")).to_contain_text(message)
    expect(page.locator("#batch-table")).to_be_hidden()
    page.screenshot(path=artifacts / f"ui-bad-csv-{bad.stat().st_size}.png", full_page=True)
    page.close()


def test_model_card_and_links(browser: Browser, served_bento: Server, trained_tag: str, artifacts: Path) -> None:
    report_an_outcome(served_bento.url)
    page = open_ui(browser, served_bento.url)
    page.get_by_role("tab", name="Model card").click()
    summary = page.locator("#card-summary")
    expect(summary).to_contain_text(trained_tag)
    expect(summary).to_contain_text("Trained on 105 rows")
    expect(page.get_by_text("Test metrics and quality gates")).to_be_visible()
    expect(page.get_by_text("Confusion matrix (test set)")).to_be_visible()
    # The live figures, from the outcomes reported to POST /feedback, beside the test's.
    expect(page.locator("#live-quality")).to_contain_text("predictions with a reported outcome")
    expect(page.locator("#live-table")).to_contain_text("accuracy")
    # Without an API key the executed notebook (its outputs can show training rows) is not served, nor linked.
    expect(summary).to_contain_text("the executed notebook is not served")
    assert httpx.get(f"{served_bento.url}/model/notebook").status_code == 403
    for name, path in (("API docs", "/"), ("metrics", "/metrics"), ("model JSON", "/model")):
        href = page.locator("#header").get_by_role("link", name=name).evaluate("a => a.href")
        assert href == f"{served_bento.url}{path}", name
        assert httpx.get(href).status_code == 200
    page.screenshot(path=artifacts / "ui-model-card.png", full_page=True)
    page.close()


def test_phone_width(browser: Browser, served_bento: Server, artifacts: Path) -> None:
    page = open_ui(browser, served_bento.url, width=390, height=844)
    set_measurements(page, VIRGINICA)
    page.locator("#predict-button").click()
    expect(page.locator("#verdict")).to_contain_text("virginica")
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 1, f"page is {overflow}px wider than a phone screen"
    page.screenshot(path=artifacts / "ui-phone.png", full_page=True)
    page.close()


def test_behind_reverse_proxy_path_prefix(browser: Browser, bento_tag: str, tmp_path: Path, artifacts: Path) -> None:
    from tests.e2e.proxy import nginx_prefix
    from tests.e2e.server import serve, wait_for_ui

    env = {"SERVING_ROOT_PATH": "/iris"}
    with serve(bento_tag, cwd=tmp_path, log=artifacts / "serve-behind-proxy.log", env=env) as server:
        wait_for_ui(server.url)
        with nginx_prefix(server.url, "/iris", tmp_path) as public:
            page = open_ui(browser, public.removesuffix("/iris") + "/iris")
            set_measurements(page, VIRGINICA)
            page.locator("#predict-button").click()
            expect(page.locator("#verdict")).to_contain_text("virginica")
            docs = page.locator("#header").get_by_role("link", name="API docs").evaluate("a => a.href")
            assert docs == f"{public}/"
            assert "swagger" in httpx.get(docs).text.lower()
            page.screenshot(path=artifacts / "ui-behind-proxy.png", full_page=True)
            page.close()


def choose(page: Page, feature: str, value: str) -> None:
    """Pick a value in a feature's dropdown, as a person would: open it, click the option."""
    page.locator(f"#input-{feature} input").click()
    page.get_by_role("option", name=value, exact=True).click()


def test_churn_form_with_dropdowns_a_flag_and_a_blank(
    browser: Browser, served_churn_bento: Server, artifacts: Path
) -> None:
    page = open_ui(browser, served_churn_bento.url)
    expect(page.locator("#header")).to_contain_text("Telco customer churn")
    expect(page.locator("#header")).to_contain_text("ROC AUC")
    choose(page, "contract", "month-to-month")
    choose(page, "internetservice", "fiber_optic")
    choose(page, "paymentmethod", "electronic_check")
    set_measurements(page, {"tenure": 2, "monthlycharges": 95})
    page.locator("#input-totalcharges input").fill("")  # a new customer: no total yet
    page.locator("#input-seniorcitizen input[type=checkbox]").check()
    page.locator("#predict-button").click()
    expect(page.locator("#verdict")).to_contain_text("probability")
    bars = page.locator("#bars")
    expect(bars).to_contain_text("yes")
    expect(bars).to_contain_text("no")
    expect(page.locator("#where")).to_be_visible()
    page.screenshot(path=artifacts / "ui-churn.png", full_page=True)
    early = page.locator("#verdict").inner_text()
    # A long two-year customer: the answer moves towards "no".
    choose(page, "contract", "two_year")
    set_measurements(page, {"tenure": 70})
    page.locator("#input-totalcharges input").fill("6500")
    page.locator("#predict-button").click()
    expect(page.locator("#verdict")).not_to_have_text(early)
    expect(page.locator("#verdict")).to_contain_text("no")
    for word in ("flower", "species", "(cm)"):
        assert word not in page.content(), word
    page.close()
