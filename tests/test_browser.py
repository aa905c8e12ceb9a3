"""The student's and the instructor's path in a real browser: headless Chromium (Selenium)
driving a JupyterLab server this test starts on 127.0.0.1, with the course's settings.

Needs Debian's ``chromium`` and ``chromium-driver`` packages (``.ci/run`` installs them);
skipped, saying so, where they are absent. Screenshots of a failure are written to the
test's temporary folder (the failure message names it). Only the server this test started is
stopped at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import nbformat
import pytest

from ftcourse.grading.course import jupyter_environment

REPO = Path(__file__).resolve().parents[1]
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    not (CHROMIUM and DRIVER),
    reason="no headless browser: install Debian's chromium and chromium-driver packages")
TOKEN = "ftcourse-browser-test"
LESSON = "lessons/02_mobilenetv2_frozen_base.ipynb"
PS02 = "ps02_frozen_mobilenetv2"
EXERCISE = f"exercises/{PS02}/{PS02}.ipynb"
COURSE_FILES = ("lessons", "exercises", "solutions", "nbgrader_config.py", "jupyter_config")
ROOT_FLAG = ["--allow-root"] if os.geteuid() == 0 else []  # CI runs as root
STDERR = '[data-mime-type="application/vnd.jupyter.stderr"]'


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def course(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the course: the test edits an exercise and nbgrader writes its gradebook."""
    root = tmp_path_factory.mktemp("browser") / "course"
    root.mkdir()
    for name in COURSE_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name)
        else:
            shutil.copy(source, root / name)
    return root


@pytest.fixture(scope="module")
def server(course: Path) -> Iterator[str]:
    """JupyterLab on a free port of 127.0.0.1, in its own process group; its base URL."""
    port = free_port()
    env = jupyter_environment(course)
    env.update(FTCOURSE_PROFILE="ci", JUPYTER_RUNTIME_DIR=str(course.parent / "runtime"))
    log = open(course.parent / "jupyterlab.log", "wb")  # noqa: SIM115 (closed below)
    process = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", f"--port={port}",
         "--ServerApp.ip=127.0.0.1", f"--IdentityProvider.token={TOKEN}",
         f"--ServerApp.root_dir={course}", *ROOT_FLAG],
        cwd=course, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(url, process)
        yield url
    finally:
        stop_group(process)
        log.close()


def stop_group(process: subprocess.Popen) -> None:
    """Stop the server and what it started (its kernels share its process group)."""
    for sent in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sent)
        except ProcessLookupError:
            return
        try:
            process.wait(timeout=20)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_for_server(url: str, process: subprocess.Popen, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, "JupyterLab exited; see jupyterlab.log"
        try:
            urllib.request.urlopen(f"{url}/api/status?token={TOKEN}", timeout=5).read()
            return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"JupyterLab did not answer at {url} in {timeout_s:.0f} s")


@pytest.fixture(scope="module")
def browser(course: Path) -> Iterator:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.implicitly_wait(0)
    yield driver
    driver.quit()


@pytest.fixture
def shots(browser, course: Path, request: pytest.FixtureRequest) -> Iterator[None]:
    """A screenshot (and the page's text) if the test fails."""
    yield
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        folder = course.parent / "screenshots"
        folder.mkdir(exist_ok=True)
        browser.save_screenshot(str(folder / f"{request.node.name}.png"))
        print(f"screenshot: {folder / request.node.name}.png")


def wait(driver, condition, timeout_s: float = 120, what: str = "the page"):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout_s, poll_frequency=0.3).until(
        condition, message=f"waited {timeout_s:.0f} s for {what}")


def css(driver, selector: str) -> list:
    from selenium.webdriver.common.by import By

    return driver.find_elements(By.CSS_SELECTOR, selector)


def open_notebook(driver, url: str, path: str) -> None:
    driver.get(f"{url}/lab/tree/{path}?token={TOKEN}&reset")
    wait(driver, lambda d: css(d, ".jp-NotebookPanel .jp-Cell"), what=f"{path} to open")
    wait(driver, lambda d: css(d, ".jp-Notebook-ExecutionIndicator[data-status='idle']")
         or css(d, ".jp-DebuggerBugButton"), timeout_s=60, what="the kernel")


def run_command(driver, command: str, tries: int = 3) -> None:
    """A JupyterLab command, from the command palette (Ctrl+Shift+C).

    The palette's input is in the page before it opens, and a page still settling (the kernel
    connecting) can close it again: each try waits until it is shown, and the whole sequence is
    tried again when the palette went away before the command was sent.
    """
    from selenium.common.exceptions import (
        ElementNotInteractableException,
        StaleElementReferenceException,
        TimeoutException,
    )
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.keys import Keys

    def shown(d):
        return [e for e in css(d, ".lm-CommandPalette-input") if e.is_displayed()]

    for attempt in range(1, tries + 1):
        try:
            css(driver, ".jp-NotebookPanel .jp-Notebook")[0].click()
            ActionChains(driver).key_down(Keys.CONTROL).key_down(Keys.SHIFT).send_keys("c") \
                .key_up(Keys.SHIFT).key_up(Keys.CONTROL).perform()
            search = wait(driver, shown, timeout_s=10, what="the palette")[0]
            search.clear()
            search.send_keys(command)
            wait(driver, lambda d: css(d, ".lm-CommandPalette-item.lm-mod-active"),
                 timeout_s=10, what=f"the command {command!r}")
            search.send_keys(Keys.ENTER)
            return
        except (TimeoutException, ElementNotInteractableException,
                StaleElementReferenceException):
            if attempt == tries:
                raise
            ActionChains(driver).send_keys(Keys.ESCAPE).perform()


def idle_with_counts(driver) -> bool:
    prompts = [p.text for p in css(driver, ".jp-CodeCell .jp-InputPrompt")]
    return bool(prompts) and not any("*" in p for p in prompts)


def opened_unchanged(course: Path, path: str) -> bool:
    """The notebook on disk is still the one the course ships, after JupyterLab opened it.

    (JupyterLab's own "modified" dot is not checked: in about one run in three here it appeared
    on opening an unchanged notebook, cause not found.)
    """
    return (course / path).read_bytes() == (REPO / path).read_bytes()


def test_lesson_02_runs_without_errors_or_red_lines(browser, server: str, course: Path,
                                                    shots) -> None:
    open_notebook(browser, server, LESSON)
    assert opened_unchanged(course, LESSON), "opening the lesson changed it on disk"
    run_command(browser, "Run All Cells")
    wait(browser, lambda d: idle_with_counts(d) and all(
        "[ ]" not in p.text for p in css(d, ".jp-CodeCell .jp-InputPrompt")),
        timeout_s=400, what="every cell of lesson 02 to run")
    outputs = css(browser, ".jp-OutputArea-output")
    assert len(outputs) > 10
    red = [e.text[:300] for e in css(browser, STDERR)]
    assert red == [], red


def test_ps02_guides_the_student_and_validates(browser, server: str, course: Path,
                                               shots) -> None:
    open_notebook(browser, server, EXERCISE)
    assert opened_unchanged(course, EXERCISE), "opening the exercise changed it on disk"
    run_command(browser, "Run All Cells")
    wait(browser, idle_with_counts, timeout_s=200, what="the exercise to stop at Part A")
    text = "\n".join(e.text for e in css(browser, STDERR))
    assert "Part A is not answered yet" in text and "NameError" not in text, text[-500:]

    validate(browser)
    dialog = css(browser, ".jp-Dialog")[0].text
    assert "Part A is not answered yet" in dialog, dialog[-800:]
    close_dialog(browser)

    solve_part_a(course)
    run_command(browser, "Reload Notebook from Disk")
    validate(browser)
    dialog = css(browser, ".jp-Dialog")[0].text
    assert "Part A is not answered yet" not in dialog, dialog[-800:]
    assert "Part B is not answered yet" in dialog, dialog[-800:]
    close_dialog(browser)


def validate(driver) -> None:
    from selenium.webdriver.common.by import By

    button = wait(driver, lambda d: d.find_elements(
        By.XPATH, "//*[contains(@class, 'jp-NotebookPanel-toolbar')]"
                  "//*[normalize-space(text())='Validate']"),
        timeout_s=30, what="nbgrader's Validate button")[0]
    button.click()
    wait(driver, lambda d: [e for e in css(d, ".jp-Dialog") if "alidat" in e.text
                            and "Validating" not in e.text],
         timeout_s=300, what="the validation dialog")


def close_dialog(driver) -> None:
    for button in css(driver, ".jp-Dialog button"):
        if button.text.strip() in ("OK", "Ok", "Close", "Cancel"):
            button.click()
            break
    wait(driver, lambda d: not css(d, ".jp-Dialog"), timeout_s=10, what="the dialog to close")


def solve_part_a(course: Path) -> None:
    """Part A's cell of the exercise, filled from the solution (the file on disk)."""
    solution = nbformat.read(course / "solutions" / PS02 / f"{PS02}.ipynb", as_version=4)
    answer = next(c.source for c in solution.cells
                  if c.metadata.get("nbgrader", {}).get("grade_id") == "part_a_build_model")
    path = course / EXERCISE
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "part_a_build_model":
            cell.source = answer
    nbformat.write(nb, path)


def test_formgrader_lists_the_five_assignments(browser, server: str, shots) -> None:
    browser.get(f"{server}/formgrader?token={TOKEN}")
    names = sorted(p.name for p in (REPO / "solutions").iterdir() if p.is_dir())
    assert len(names) == 5
    wait(browser, lambda d: all(name in d.find_element("tag name", "body").text
                                for name in names), timeout_s=60, what="formgrader's list")


def test_the_exchange_pages_are_not_offered(server: str) -> None:
    """nbgrader's Assignment List and Course List need its exchange: switched off."""
    with urllib.request.urlopen(f"{server}/lab?token={TOKEN}", timeout=30) as page:
        html = page.read().decode()
    start = html.index('id="jupyter-config-data"')
    config = json.loads(html[html.index(">", start) + 1: html.index("</script>", start)])
    disabled = config.get("disabledExtensions", [])
    assert "@jupyter/nbgrader:assignment-list" in disabled, disabled
    assert "@jupyter/nbgrader:course-list" in disabled, disabled
