"""The dashboard in a real browser (Debian's chromium + chromedriver, driven by
Selenium) while a real run goes on in another process.

Set GLEITZEIT_SCREENSHOT_DIR to keep the run page's screenshot (docs/ui-run.png
is made that way); otherwise it goes to the test's temporary folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.ui.conftest import WAIT_S, Cli, first_run_id, running, wait_for, write

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# what Chromium needs to run headless as root in a container, without phoning home
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1400,1200")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    for binary in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(binary):
            pytest.fail(f"{binary} not found: install Debian's chromium and chromium-driver (scripts/test does)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix="gz-chromium-")
    options.add_argument(f"--user-data-dir={profile}")
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def node_class(driver: webdriver.Chrome, key: str) -> str:
    return driver.find_element(By.CSS_SELECTOR, f'.node[data-key="{key}"]').get_attribute("class") or ""


def test_run_page_follows_a_live_run(cli: Cli, work: Path, dashboard_factory, browser: webdriver.Chrome,
                                     tmp_path: Path) -> None:
    gate = work / "gate"
    wf = write(work, "nightly.yaml", f"""
        name: nightly
        tasks:
          - name: Extract
            method: python/execute
            params: {{code: "result = list(range(5))"}}
          - name: Transform
            method: python/execute
            dependencies: [Extract]
            params:
              code: "import os, time\\nprint('transforming batch 1', flush=True)\\nwhile not os.path.exists(context['gate'] + '.1'): time.sleep(0.05)\\nprint('transforming batch 2', flush=True)\\nwhile not os.path.exists(context['gate']): time.sleep(0.05)\\nresult = 'ok'"
              context: {{gate: "{gate}"}}
          - name: Load
            method: python/execute
            dependencies: [Transform]
            params: {{code: "result = 'loaded'"}}
          - name: Validate
            method: python/execute
            dependencies: [Extract]
            params: {{code: "print('checked 5 rows; row 3 is broken')\\nraise ValueError('row 3 is broken')"}}
    """)
    ui = dashboard_factory(cli.env)
    with running(cli, wf) as proc:
        run_id = first_run_id(ui)
        wait_for(lambda: {t["key"]: t["status"] for t in ui.get_json(f"/api/runs/{run_id}/tasks")}["Transform"]
                 == "running", WAIT_S, what="Transform to run")
        browser.get(f"{ui.url}/runs/{run_id}")
        # the panel's content is swapped while we look: an element found just before is then stale
        wait = WebDriverWait(browser, WAIT_S, ignored_exceptions=(StaleElementReferenceException,))
        # the graph is there, one node per task, coloured by status
        nodes = browser.find_elements(By.CSS_SELECTOR, "#graph-svg .node")
        assert sorted(n.get_attribute("data-key") for n in nodes) == ["Extract", "Load", "Transform", "Validate"]
        assert len(browser.find_elements(By.CSS_SELECTOR, "#graph-svg .edges path")) == 3
        assert "st-running" in node_class(browser, "Transform")
        browser.execute_script("window.__notReloaded = true")

        # the running task's panel streams its log: a line printed after it opened appears in it
        browser.find_element(By.CSS_SELECTOR, '.node[data-key="Transform"]').click()
        logs = lambda d: d.find_element(By.ID, "task-logs").text  # noqa: E731
        wait.until(lambda d: "transforming batch 1" in logs(d))
        assert "transforming batch 2" not in logs(browser)
        (work / "gate.1").write_text("open")
        wait.until(lambda d: "transforming batch 2" in logs(d))
        assert browser.find_element(By.ID, "task-panel").get_attribute("data-status") == "running"  # not re-rendered
        assert logs(browser).index("transforming batch 1") < logs(browser).index("transforming batch 2")

        gate.write_text("open")
        wait.until(lambda d: "st-completed" in node_class(d, "Load"))
        assert "st-completed" in node_class(browser, "Transform")
        wait.until(lambda d: d.find_element(By.ID, "run-status").text == "failed")
        assert browser.execute_script("return window.__notReloaded") is True  # updated in place
        load_row = browser.find_element(By.CSS_SELECTOR, '#task-table tr[data-task="Load"]')
        assert load_row.find_element(By.CSS_SELECTOR, ".status").text == "completed"
        assert load_row.find_element(By.CSS_SELECTOR, ".detail").text == "loaded"

        # the failed task's panel: its error and what it printed before failing
        browser.find_element(By.CSS_SELECTOR, '.node[data-key="Validate"]').click()
        wait.until(lambda d: d.find_element(By.ID, "task-panel").get_attribute("data-key") == "Validate")
        panel = browser.find_element(By.ID, "task-panel")
        assert "ValueError: row 3 is broken" in panel.text
        assert "checked 5 rows; row 3 is broken" in browser.find_element(By.ID, "task-logs").text
        shots = Path(os.environ.get("GLEITZEIT_SCREENSHOT_DIR") or tmp_path)
        assert browser.save_screenshot(str(shots / "ui-run.png"))
        assert proc.wait(WAIT_S) == 1


def test_a_thousand_task_run_page_stays_usable(home: Path, work: Path, dashboard_factory,
                                               browser: webdriver.Chrome) -> None:
    width = 998
    lines = ["name: wide", "tasks:", "  - {name: root, method: python/execute, params: {code: 'result = 0'}}"]
    lines += [f"  - {{name: t{i}, method: python/execute, dependencies: [root], params: {{code: 'result = {i}'}}}}"
              for i in range(width)]
    lines.append("  - {name: join, method: python/execute, dependencies: [%s], params: {code: 'result = 1'}}"
                 % ", ".join(f"t{i}" for i in range(width)))
    wf = work / "wide.yaml"
    wf.write_text("\n".join(lines) + "\n")
    cli = Cli(home, {"GLEITZEIT_PERSISTENCE_BACKEND": "sqlite"})
    cli.ok("run", str(wf), "--json")
    ui = dashboard_factory(cli.env)
    run_id = first_run_id(ui, "completed")
    browser.get(f"{ui.url}/runs/{run_id}")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#graph-svg .node.st-completed")) == 1000
    assert len(browser.find_elements(By.CSS_SELECTOR, "#graph-svg .edges path")) == 2 * width
    assert len(browser.find_elements(By.CSS_SELECTOR, "#task-table tbody tr")) == 1000
    # a node far down the picture opens its panel like any other
    node = browser.find_element(By.CSS_SELECTOR, '.node[data-key="t997"]')
    browser.execute_script("arguments[0].scrollIntoView()", node)
    node.click()
    WebDriverWait(browser, WAIT_S).until(lambda d: d.find_element(By.ID, "task-panel").get_attribute("data-key")
                                         == "t997")
