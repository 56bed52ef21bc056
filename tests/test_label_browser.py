"""End to end in a real headless browser: Debian's chromium driven by Selenium through
chromium-driver (no browser download). A folder of digit PNGs -> ``skal label init`` -> ``skal
label serve`` on an ephemeral port -> label a batch by keyboard (with an undo) -> "train and query"
-> the next batch arrives -> the database holds every answer and both rounds.

Set SKAL_LABEL_SCREENSHOT=PATH to also save the page's screenshot there (the README's
docs/images/label_page.png is made so).
"""

import os
import shutil
import sqlite3
import time

import pytest
from label_helpers import DIGIT_CLASSES, ServeProcess, true_label, write_digit_pngs

from skal.cli import main

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (os.path.isfile(CHROMIUM) and os.path.isfile(CHROMEDRIVER)),
        reason="needs Debian's chromium and chromium-driver (as root: apt-get install chromium "
               "chromium-driver; scripts/setup.sh installs them)",
    ),
    pytest.mark.timeout(180),
]

BATCH = 8


@pytest.fixture
def browser():
    webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (pip)")
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1280,1000", "--disable-extensions", "--no-first-run"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def _wait(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# The page re-renders its grid after every answer, so the test reads it through scripts rather
# than keeping element references (which would go stale).
def _cells(driver):
    """The batch as shown: one dict per cell (path, answer, label, guess caption)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#grid figure.cell')).map(c => ({"
        "path: c.querySelector('img').title, answer: c.dataset.answer || null,"
        "label: c.dataset.label || null, guess: c.querySelector('.guess').textContent}));")


def _selected_path(driver):
    return driver.execute_script(
        "const c = document.querySelector('#grid figure.cell.selected img');"
        "return c ? c.title : null;")


def _body(driver, name):
    return driver.execute_script(f"return document.body.dataset.{name} || '';")


def _press(driver, key):
    from selenium.webdriver.common.action_chains import ActionChains

    ActionChains(driver).send_keys(key).perform()


def _label_batch_by_keyboard(driver, with_undo=False):
    """Press the true digit of the selected image until the batch is answered."""
    from selenium.webdriver.common.keys import Keys

    n = len(_cells(driver))
    pressed = []
    for i in range(n):
        path = _selected_path(driver)
        if with_undo and i == 0:
            wrong = str((int(true_label(path)) + 1) % 10)
            _press(driver, wrong)
            _wait(lambda: _body(driver, "answered") == "1", 10,
                  "the wrong answer to be shown")
            _press(driver, Keys.BACKSPACE)
            _wait(lambda: _body(driver, "answered") == "0" and _selected_path(driver) == path,
                  10, "the undo to select the image again")
        _press(driver, true_label(path))
        pressed.append(path)
    # all shown as answered, and the page has refreshed from the server (no answer pending)
    _wait(lambda: _body(driver, "answered") == str(n) and driver.execute_script(
        "return pending === 0;"), 15, "every answer of the batch to be acknowledged")
    return pressed


def _train_and_wait(driver, round_before, timeout=60):
    from selenium.webdriver.common.by import By

    driver.find_element(By.ID, "train-button").click()
    def finished():
        job = driver.execute_script("return document.getElementById('job').dataset.state;")
        return job == "failed" or (
            job == "done" and _body(driver, "round") not in ("", str(round_before)))

    _wait(finished, timeout, "the next batch")
    job = driver.execute_script("const j = document.getElementById('job');"
                                "return [j.dataset.state, j.textContent];")
    assert job[0] == "done", job[1]
    return int(_body(driver, "round"))


def test_label_two_batches_by_keyboard_in_chromium(tmp_path, browser):
    start = time.monotonic()
    # a partially labelled ImageFolder: 100 loose images, 60 in class sub-folders
    images = tmp_path / "digits"
    write_digit_pngs(images, 100)
    imported = {}
    for name, label in write_digit_pngs(tmp_path / "labelled", 60, start=100).items():
        os.makedirs(images / label, exist_ok=True)
        os.replace(tmp_path / "labelled" / name, images / label / name)
        imported[f"{label}/{name}"] = label
    project = tmp_path / "project"
    assert main(["label", "init", str(project), "--images", str(images), "--classes",
                 ",".join(DIGIT_CLASSES), "--batch-size", str(BATCH), "--width", "8",
                 "--epochs", "1", "--min-steps", "60", "--mc-samples", "4", "--holdout", "0.25"]) == 0
    with ServeProcess(project) as server:
        browser.get(server.url)
        _wait(lambda: len(_cells(browser)) == BATCH, 15, "the first batch")
        assert _body(browser, "round") == "1"

        first = _label_batch_by_keyboard(browser, with_undo=True)
        round2 = _train_and_wait(browser, 1)
        assert round2 == 2
        _wait(lambda: len(_cells(browser)) == BATCH, 10, "the second batch")
        cells = _cells(browser)
        assert not {c["path"] for c in cells} & set(first), "a labelled image was queried again"
        assert all(c["guess"].startswith("guess: ") and c["answer"] is None for c in cells), cells

        second = _label_batch_by_keyboard(browser)
        round3 = _train_and_wait(browser, round2)
        _wait(lambda: len(browser.find_elements("css selector", "#curve svg circle")) == 2, 10,
              "the learning curve's two points")
        for _ in range(3):  # a few answers in the third batch, for the screenshot
            _press(browser, true_label(_selected_path(browser)))
        _wait(lambda: _body(browser, "answered") == "3" and browser.execute_script(
            "return pending === 0;"), 10, "three answers in the third batch")
        shot = os.environ.get("SKAL_LABEL_SCREENSHOT") or str(tmp_path / "label_page.png")
        os.makedirs(os.path.dirname(os.path.abspath(shot)), exist_ok=True)
        assert browser.save_screenshot(shot)
        assert os.path.getsize(shot) > 10_000

    # the database: every keyboard answer, the undo, and the rounds
    db = sqlite3.connect(project / "skal.db")
    answers = db.execute("SELECT kind, label, undoes, annotator, source, image_id FROM answers "
                         "ORDER BY id").fetchall()
    paths = dict(db.execute("SELECT id, path FROM images").fetchall())
    web = [a for a in answers if a[4] == "web"]
    assert [a[0] for a in web].count("undo") == 1
    assert len(web) == 2 * BATCH + 2 + 3 and all(a[3] == "web" for a in web)
    assert {(a[3], a[4]) for a in answers if a not in web} == {("import", "import")}
    current = {paths[i]: label for i, kind, label in db.execute(
        "SELECT image_id, kind, label FROM current")}
    third = set(current) - set(first) - set(second) - set(imported)
    assert len(third) == 3
    assert current == dict(imported, **{p: true_label(p) for p in first + second + list(third)})
    rounds = db.execute("SELECT id, status, strategy, model, n_labeled, checkpoint FROM rounds "
                        "ORDER BY id").fetchall()
    assert [r[:4] for r in rounds] == [(1, "done", "random_sampling", None),
                                      (2, "done", "bald", "resnet18"),
                                      (round3, "done", "bald", "resnet18")]
    assert [r[4] for r in rounds] == [60, 60 + BATCH, 60 + 2 * BATCH]
    assert all((project / r[5]).is_file() for r in rounds[1:])
    assert db.execute("SELECT count(*) FROM queries WHERE round_id = ?", (round3,)).fetchone() \
        == (BATCH,)
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    db.close()
    assert time.monotonic() - start < 90


def test_markup_in_names_shows_as_text_in_chromium(tmp_path, browser):
    from selenium.webdriver.common.by import By

    from skal.labeling import Project
    from skal.labeling.app import start_server

    images = tmp_path / "png"
    write_digit_pngs(images, 3, size=8)
    evil_file = "<img src=x onerror=alert(1)>.png"
    os.replace(images / sorted(os.listdir(images))[0], images / evil_file)
    names = ["<script>", "<img src=x onerror=alert(1)>", "a & b"]
    project = Project.init(tmp_path / "p", images, names, batch_size=3, width=2, epochs=1,
                           min_steps=0)
    try:
        with start_server(project) as running:
            browser.get(running.url)
            _wait(lambda: len(_cells(browser)) == 3, 15, "the batch")
            buttons = browser.execute_script(
                "return Array.from(document.querySelectorAll('.class-button .class-name'))"
                ".map(b => b.textContent);")
            assert buttons == names
            assert {c["path"] for c in _cells(browser)} >= {evil_file}
            counts = browser.execute_script(
                "return Array.from(document.querySelectorAll('#counts td:first-child'))"
                ".map(td => td.textContent);")
            assert counts == names
            assert browser.execute_script(
                "return document.querySelectorAll('img[src=\"x\"], #grid script, "
                "#classes img, #counts img').length;") == 0
            assert len(browser.find_elements(By.TAG_NAME, "script")) == 1  # app.js only
            # label the selected image by clicking the class named <script>
            browser.find_element(By.CSS_SELECTOR, ".class-button[data-key='1']").click()
            _wait(lambda: _body(browser, "answered") == "1" and browser.execute_script(
                "return pending === 0;"), 10, "the answer")
            browser.switch_to.active_element  # raises UnexpectedAlertPresent if alert() ran
        assert [r["label"] for r in project.store.answers()] == ["<script>"]
    finally:
        project.close()
