"""End to end in a real headless browser: Debian's chromium driven by Selenium through
chromium-driver (no browser download). A folder of digit PNGs -> ``skal label init`` -> ``skal
label serve`` on an ephemeral port -> label a batch by keyboard (with an undo) -> "train and query"
-> the next batch arrives -> the database holds every answer and both rounds. Then the page's
promises: a server killed (``kill -9``) and restarted mid-batch loses no answer and the page says
what is saved and what waits; the keyboard-only flow (scrolling in a 700 px window, the end of a
batch, Enter after a click, the ``?`` sheet, zoom, arrows, focus and alt text). One browser serves
the module.

Set SKAL_LABEL_SCREENSHOT=PATH to also save the page's screenshot there (the README's
docs/images/label_page.png is made so).
"""

import json
import math
import os
import shutil
import sqlite3
import time

import pytest
from label_helpers import (
    DIGIT_CLASSES,
    ServeProcess,
    http_request,
    true_label,
    write_digit_pngs,
)

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


@pytest.fixture(scope="module")
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


@pytest.fixture
def window(browser):
    """The module's browser, at the usual size (a test may change it)."""
    browser.set_window_size(1280, 1000)
    yield browser
    browser.set_window_size(1280, 1000)


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
        "path: c.dataset.path, answer: c.dataset.answer || null, waiting: c.dataset.waiting"
        " || null, label: c.dataset.label || null,"
        " guess: c.querySelector('.guess').textContent}));")


def _selected_path(driver):
    return driver.execute_script(
        "const c = document.querySelector('#grid figure.cell.selected');"
        "return c ? c.dataset.path : null;")


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
    _wait(lambda: _body(driver, "answered") == str(n) and _body(driver, "waiting") == "0", 15, "every answer of the batch to be acknowledged")
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


def test_label_two_batches_by_keyboard_in_chromium(tmp_path, window):
    browser = window
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
        # each guess shows its calibrated confidence (a temperature fitted on held-out labels)
        served = browser.execute_script("return state.batch;")
        assert all(it["calibrated"] for it in served), served
        assert [f"({math.floor(it['calibrated_confidence'] * 100 + 0.5)}%, calibrated)"
                in c["guess"] for it, c in zip(served, cells)] == [True] * BATCH, cells

        second = _label_batch_by_keyboard(browser)
        round3 = _train_and_wait(browser, round2)
        _wait(lambda: len(browser.find_elements("css selector", "#curve svg circle")) == 2, 10,
              "the learning curve's two points")
        # when to stop: the page shows the server's report of the round
        report = browser.execute_script("return state.round.stopping;")
        assert report is not None and report["stop_kappa"] is not None, report
        shown = browser.find_element("id", "stopping").text
        assert f"kappa with the previous round's predictions {report['stop_kappa']:.3f}" in shown
        assert report["recommendation"] and report["recommendation"] in shown
        assert f"calibration error (ECE) {report['ece'] * 100:.1f}%" in shown
        # a few answers in the third batch, for the screenshot; the first accepts the guess
        guessed_path = _selected_path(browser)
        guess = next(c["guess"] for c in _cells(browser) if c["path"] == guessed_path)
        guess = guess.split("guess: ")[1].split(" (")[0]
        _press(browser, "g")
        for _ in range(2):
            _press(browser, true_label(_selected_path(browser)))
        _wait(lambda: _body(browser, "answered") == "3" and _body(browser, "waiting") == "0", 10,
              "three answers in the third batch")
        shot = os.environ.get("SKAL_LABEL_SCREENSHOT") or str(tmp_path / "label_page.png")
        os.makedirs(os.path.dirname(os.path.abspath(shot)), exist_ok=True)
        assert browser.save_screenshot(shot)
        assert os.path.getsize(shot) > 10_000

    # the database: every keyboard answer, the undo, and the rounds
    db = sqlite3.connect(project / "skal.db")
    answers = db.execute("SELECT kind, label, undoes, annotator, source, image_id, client_id "
                         "FROM answers ORDER BY id").fetchall()
    paths = dict(db.execute("SELECT id, path FROM images").fetchall())
    web = [a for a in answers if a[4] == "web"]
    assert [a[0] for a in web].count("undo") == 1
    assert len(web) == 2 * BATCH + 2 + 3 and all(a[3] == "web" for a in web)
    # each answer of the page came with its own client id (the undo is the server's)
    ids = [a[6] for a in web if a[0] != "undo"]
    assert len(set(ids)) == len(ids) and all(len(i) == 32 for i in ids)
    assert {(a[3], a[4]) for a in answers if a not in web} == {("import", "import")}
    current = {paths[i]: label for i, kind, label in db.execute(
        "SELECT image_id, kind, label FROM current")}
    third = set(current) - set(first) - set(second) - set(imported)
    assert len(third) == 3
    assert current.pop(guessed_path) == guess  # the accepted guess
    assert current == dict(imported, **{p: true_label(p) for p in first + second + list(third)
                                        if p != guessed_path})
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


def test_markup_in_names_shows_as_text_in_chromium(tmp_path, window):
    browser = window
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
            _wait(lambda: _body(browser, "answered") == "1" and _body(browser, "waiting") == "0", 10, "the answer")
            browser.switch_to.active_element  # raises UnexpectedAlertPresent if alert() ran
        assert [r["label"] for r in project.store.answers()] == ["<script>"]
    finally:
        project.close()


# ---------------------------------------------------------------------------- the page's promises
def _record_answers(driver):
    """Wrap the page's fetch to keep the bodies it POSTs to /api/answers (window.sentAnswers)."""
    driver.execute_script(
        "window.sentAnswers = []; const real = window.fetch;"
        "window.fetch = function (path, options) {"
        "  if (path === '/api/answers') window.sentAnswers.push(JSON.parse(options.body));"
        "  return real.apply(this, arguments); };")


def _selected_index(driver):
    return driver.execute_script(
        "const c = document.querySelector('#grid .cell.selected');"
        "return c && document.activeElement === c ? Number(c.dataset.index) : null;")


def _in_view(driver):
    """Whether the selected cell is wholly inside the window."""
    return driver.execute_script(
        "const r = document.querySelector('#grid .cell.selected').getBoundingClientRect();"
        "return r.top >= 0 && r.bottom <= window.innerHeight && r.left >= 0 && "
        "r.right <= window.innerWidth;")


def _web_answers(project_dir):
    db = sqlite3.connect(project_dir / "skal.db")
    try:
        return db.execute("SELECT id, image_id, kind, label, client_id FROM answers WHERE "
                          "source = 'web' AND client_id IS NOT NULL ORDER BY id").fetchall()
    finally:
        db.close()


def test_keyboard_only_flow_in_a_700px_window(tmp_path, window):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from skal.labeling import Project
    from skal.labeling.app import start_server

    browser = window
    n = 16
    write_digit_pngs(tmp_path / "png", 30, size=8)
    project = Project.init(tmp_path / "p", tmp_path / "png", DIGIT_CLASSES, batch_size=n,
                           width=2, epochs=1, min_steps=0, mc_samples=2, holdout=0.0,
                           assign_size=n)
    try:
        with start_server(project) as running:
            browser.set_window_size(900, 700)
            browser.get(running.url)
            _wait(lambda: len(_cells(browser)) == n and _selected_index(browser) == 0, 15,
                  "the batch, its first image selected and focused")
            _record_answers(browser)
            # focusable cells (one tab stop), aria-live progress, alt text that is no file path
            a11y = browser.execute_script(
                "const cells = Array.from(document.querySelectorAll('#grid .cell'));"
                "return {tab: cells.map(c => c.tabIndex), alt: cells.map(c => "
                "c.querySelector('img').alt), sel: cells.map(c => c.getAttribute('aria-selected')),"
                "role: document.getElementById('grid').getAttribute('role'),"
                "live: document.getElementById('batch-count').getAttribute('aria-live')};")
            assert a11y["tab"] == [0] + [-1] * (n - 1)
            assert a11y["sel"] == ["true"] + ["false"] * (n - 1)
            assert a11y["role"] == "listbox" and a11y["live"] == "polite"
            assert a11y["alt"] == [f"image {i + 1} of {n}" for i in range(n)]
            paths = [c["path"] for c in _cells(browser)]
            # the large view names the selected file
            assert browser.find_element(By.ID, "preview-name").text == paths[0]

            # arrows move in the grid: right/left by one (wrapping), down/up by a row
            cols = browser.execute_script("return columns();")
            assert 1 < cols < n
            for key, expected in ((Keys.ARROW_RIGHT, 1), (Keys.ARROW_DOWN, 1 + cols),
                                  (Keys.ARROW_UP, 1), (Keys.ARROW_LEFT, 0),
                                  (Keys.ARROW_LEFT, n - 1), (Keys.HOME, 0)):
                _press(browser, key)
                assert _selected_index(browser) == expected, key
            assert browser.find_element(By.ID, "preview-name").text == paths[0]

            # "?" opens the shortcut sheet, Esc closes it and the keyboard is back on the grid
            _press(browser, "?")
            sheet = browser.find_element(By.ID, "help-sheet")
            assert sheet.is_displayed()
            text = sheet.text
            assert "accept the model's guess" in text and "label the selected image 7" in text
            assert "move in the grid" in text and "undo your latest answer" in text
            _press(browser, "7")  # keys do not answer behind the sheet
            _press(browser, Keys.ESCAPE)
            assert not sheet.is_displayed() and _selected_index(browser) == 0
            # the zoom shows the selected image large, with its file name
            _press(browser, "z")
            zoom = browser.find_element(By.ID, "zoom")
            assert zoom.is_displayed()
            assert browser.find_element(By.ID, "zoom-name").text == paths[0]
            assert browser.find_element(By.ID, "zoom-img").size["height"] > 300
            _press(browser, Keys.ESCAPE)
            assert not zoom.is_displayed() and _selected_index(browser) == 0
            assert _body(browser, "waiting") == "0" and _body(browser, "answered") == "0"
            # no model yet: accepting the guess answers nothing and says why
            _press(browser, "g")
            assert "no model's guess yet" in browser.find_element(By.ID, "error-text").text
            browser.find_element(By.ID, "error-close").click()

            # a click on a class button, then Enter: one answer, not a second on the next image
            time.sleep(0.3)
            browser.find_element(By.CSS_SELECTOR, ".class-button[data-class='3']").click()
            _wait(lambda: _body(browser, "answered") == "1" and _body(browser, "waiting") == "0",
                  10, "the clicked answer to be saved")
            assert _selected_index(browser) == 1  # the keyboard is on the next image
            _press(browser, Keys.ENTER)
            _press(browser, Keys.ENTER)
            time.sleep(0.5)
            assert _body(browser, "answered") == "1" and _body(browser, "waiting") == "0"
            assert len(_web_answers(tmp_path / "p")) == 1

            # the rest by keyboard: the selected image is always in view in a 700 px window
            off_screen_somewhere = False
            for i in range(1, n):
                assert _selected_index(browser) == i and _in_view(browser), i
                off_screen_somewhere |= browser.execute_script(
                    "const r = document.querySelector('#grid .cell:last-child')"
                    ".getBoundingClientRect(); return r.bottom > window.innerHeight "
                    "|| r.top < 0;")
                _press(browser, true_label(paths[i]))
            assert off_screen_somewhere, "the window is too tall for this test"
            _wait(lambda: _body(browser, "answered") == str(n) and _body(browser, "waiting")
                  == "0", 15, "every answer to be saved")
            # after the last image: class keys do not relabel it; the page offers the round
            assert _body(browser, "batchDone") == "1"
            offer = browser.find_element(By.ID, "batch-done")
            assert offer.is_displayed() and "train and query" in offer.text
            for key in ("5", " ", Keys.ENTER):
                _press(browser, key)
            time.sleep(0.5)
            rows = _web_answers(tmp_path / "p")
            assert len(rows) == n and _body(browser, "waiting") == "0"
            by_image = {r[1]: r for r in rows}
            assert len(by_image) == n and all(r[2] == "label" for r in rows)
            ids = [c["image_id"] for c in browser.execute_script("return state.batch;")]
            assert [by_image[i][3] for i in ids] == ["3"] + [true_label(p) for p in paths[1:]]
            # what the page sent: a client id and the time the image was shown, per answer
            sent = browser.execute_script("return window.sentAnswers;")
            assert len(sent) == n and len({s["client_id"] for s in sent}) == n
            assert all(isinstance(s["view_ms"], int) and 0 <= s["view_ms"] < 60_000
                       for s in sent)
            assert sent[0]["view_ms"] >= 300  # selected 0.3 s (and more) before the click
            assert [r[4] for r in rows] == [s["client_id"] for s in sent]
            db = sqlite3.connect(tmp_path / "p" / "skal.db")
            stored_ms = [r[0] for r in db.execute(
                "SELECT view_ms FROM answers WHERE client_id IS NOT NULL ORDER BY id")]
            db.close()
            assert stored_ms == [s["view_ms"] for s in sent]
            # "t" starts the round the page offers
            _press(browser, "t")
            _wait(lambda: _body(browser, "round") == "2", 30, "the next batch")
            assert _body(browser, "batchDone") == "0" and not offer.is_displayed()
            assert _selected_index(browser) == 0
    finally:
        project.close()


def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_server_killed_mid_batch_loses_no_answer_and_the_page_says_so(tmp_path, window):
    from selenium.webdriver.common.by import By

    browser = window
    images = tmp_path / "digits"
    write_digit_pngs(images, 12)
    for name, label in write_digit_pngs(tmp_path / "labelled", 20, start=12).items():
        os.makedirs(images / label, exist_ok=True)
        os.replace(tmp_path / "labelled" / name, images / label / name)
    project = tmp_path / "project"
    assert main(["label", "init", str(project), "--images", str(images), "--classes",
                 ",".join(DIGIT_CLASSES), "--batch-size", "6", "--width", "2", "--epochs",
                 "5000", "--min-steps", "0", "--holdout", "0"]) == 0
    port = str(_free_port())
    server = ServeProcess(project, "--port", port)
    try:
        browser.get(server.url)
        _wait(lambda: len(_cells(browser)) == 6, 15, "the batch")
        paths = [c["path"] for c in _cells(browser)]
        for path in paths[:2]:
            _press(browser, true_label(path))
        _wait(lambda: _body(browser, "answered") == "2" and _body(browser, "waiting") == "0", 10,
              "two answers saved")
        # a round that trains for long, then the server is killed in the middle of it
        browser.find_element(By.ID, "train-button").click()
        job = browser.find_element(By.ID, "job")
        _wait(lambda: "epoch" in job.text, 30, "the round to train")
        server.proc.kill()
        server.proc.wait(10)
        for path in paths[2:5]:
            _press(browser, true_label(path))
        _wait(lambda: _body(browser, "online") == "0", 10, "the page to notice")
        banner = browser.find_element(By.ID, "connection")
        assert "Offline \u2014 3 answers waiting" in banner.text, banner.text
        assert _body(browser, "answered") == "2" and _body(browser, "waiting") == "3"
        cells = _cells(browser)
        assert [c["waiting"] for c in cells] == [None, None, "label", "label", "label", None]
        assert [c["answer"] for c in cells] == ["label", "label", None, None, None, None]
        assert "2 / 6 answered (3 more not saved yet)" in browser.find_element(
            By.ID, "batch-count").text
        assert "epoch" not in job.text and job.get_attribute("data-state") == "unknown"
        stored = browser.execute_script(
            "return Object.keys(localStorage).filter(k => k.startsWith('skal-outbox:'))"
            ".map(k => JSON.parse(localStorage.getItem(k)).length);")
        assert stored == [3]
        time.sleep(7)  # the state stays (no message that vanishes after 6 s)
        assert banner.is_displayed() and "3 answers waiting" in banner.text
        assert _body(browser, "online") == "0"
    finally:
        server.stop()
    # the server is back (on the same port): the page reconnects by itself and delivers them
    with ServeProcess(project, "--port", port) as server:
        _wait(lambda: _body(browser, "online") == "1" and _body(browser, "waiting") == "0", 30,
              "the page to reconnect and send what waited")
        _wait(lambda: _body(browser, "answered") == "5", 10, "five answers saved")
        assert not browser.find_element(By.ID, "connection").is_displayed()
        # the training status is the new server's, not the round the killed one ran
        _wait(lambda: browser.find_element(By.ID, "job").get_attribute("data-state") == "idle",
              10, "the job state from the server")
        assert "5 / 6 answered" == browser.find_element(By.ID, "batch-count").text
        rows = _web_answers(project)
        assert len(rows) == 5 and len({r[1] for r in rows}) == 5 and len({r[4] for r in rows}) == 5
        # an answer whose acknowledgement was lost is sent again after a reload: stored once
        first = rows[0]
        browser.execute_script(
            "const key = 'skal-outbox:' + document.body.dataset.project + ':' + "
            "sessionStorage.getItem('skal-tab');"
            "localStorage.setItem(key, JSON.stringify([{client_id: arguments[0], image_id: "
            "arguments[1], annotator: 'web', skip: false, label: arguments[2], view_ms: 5}]));",
            first[4], first[1], first[3])
        browser.refresh()
        _wait(lambda: len(_cells(browser)) == 6 and _body(browser, "waiting") == "0"
              and _body(browser, "answered") == "5", 15, "the re-sent answer")
        assert _web_answers(project) == rows
        db = sqlite3.connect(project / "skal.db")
        status = db.execute("SELECT status FROM rounds WHERE id = 2").fetchone()[0]
        db.close()
        assert status in ("running", "interrupted")  # the killed round left nothing behind


def test_each_annotator_sees_their_own_items_in_chromium(tmp_path, window):
    from selenium.webdriver.common.by import By

    from skal.labeling import Project
    from skal.labeling.app import start_server

    browser = window
    write_digit_pngs(tmp_path / "png", 20, size=8)
    project = Project.init(tmp_path / "p", tmp_path / "png", DIGIT_CLASSES, batch_size=9,
                           width=2, epochs=1, min_steps=0, holdout=0.0, assign_size=3)
    batch = lambda: {c["image_id"] for c in browser.execute_script("return state.batch;")}
    try:
        with start_server(project) as running:
            # bob (another browser, through the API) holds three items of the batch
            status, _, payload = http_request(running.base, "POST", "/api/my-items",
                                              body={"annotator": "bob"})
            assert status == 200, payload
            bobs = {it["image_id"] for it in json.loads(payload)["items"]}
            assert len(bobs) == 3
            # carol has a token (the address 'skal label annotator add' prints): the page learns
            # her name from the server and answers as her (the name field cannot say otherwise)
            token = project.add_annotator("carol")
            browser.get(running.url + "?annotator_token=" + token)
            _wait(lambda: browser.execute_script(
                "return teamApi === true && tokenName === 'carol' && state.batch.length === 3;"),
                15, "carol's items")
            field = browser.find_element(By.ID, "annotator")
            assert field.get_attribute("value") == "carol" and field.get_attribute("readOnly")
            assert not batch() & bobs
            _press(browser, true_label(_selected_path(browser)))
            # answered: saved, and one more item comes to her (she holds 3 unanswered)
            _wait(lambda: _body(browser, "waiting") == "0" and _body(browser, "answered") == "1"
                  and len(batch()) == 4, 10, "carol's answer and her next item")
            carols = batch()
            assert not carols & bobs
            browser.delete_all_cookies()
            # alice's browser has her name from an earlier visit (set before the page's script
            # runs: a first visit as "web" would hold items for "web")
            script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {
                "source": "localStorage.setItem('skal-annotator', 'alice');"})
            browser.get(running.url)
            browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument",
                                    {"identifier": script["identifier"]})
            _wait(lambda: browser.execute_script(
                "return teamApi === true && state.batch.length === 2 && tokenName === null && "
                "document.getElementById('annotator').value === 'alice';"), 15, "alice's items")
            mine = batch()
            assert not mine & (bobs | carols)
            for _ in range(2):
                _press(browser, true_label(_selected_path(browser)))
            _wait(lambda: _body(browser, "waiting") == "0" and _body(browser, "answered") == "2",
                  10, "alice's answers")
            # her items are answered and the others hold theirs: she gets none of them
            time.sleep(0.5)
            assert batch() == mine and _body(browser, "batchDone") == "1"
        rows = [r for r in project.store.answers() if r["kind"] == "label"]
        assert {r["annotator"] for r in rows} == {"alice", "carol"} and len(rows) == 3
        assert {r["image_id"] for r in rows if r["annotator"] == "alice"} == mine
        assert {r["image_id"] for r in rows if r["annotator"] == "carol"} <= carols
    finally:
        project.close()


def test_agreement_of_overlapping_annotators_is_shown_in_chromium(tmp_path, window):
    from selenium.webdriver.common.by import By

    from skal.labeling import Project
    from skal.labeling.app import start_server

    browser = window
    write_digit_pngs(tmp_path / "png", 12, size=8)
    project = Project.init(tmp_path / "p", tmp_path / "png", DIGIT_CLASSES, batch_size=3,
                           width=2, epochs=1, min_steps=0, holdout=0.0, overlap=2)
    try:
        with start_server(project) as running:
            items = [it.image_id for it in project.next_batch()]
            # bob and dave answer the same three items; they differ on the last one
            for who, labels in (("bob", ["1", "2", "3"]), ("dave", ["1", "2", "4"])):
                assert http_request(running.base, "POST", "/api/my-items",
                                    body={"annotator": who})[0] == 200
                for image_id, label in zip(items, labels):
                    assert http_request(running.base, "POST", "/api/answers", body={
                        "image_id": image_id, "label": label, "annotator": who})[0] == 200
            # bob's browser (his name from an earlier visit)
            script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {
                "source": "localStorage.setItem('skal-annotator', 'bob');"})
            browser.get(running.url)
            browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument",
                                    {"identifier": script["identifier"]})
            box = browser.find_element(By.ID, "agreement-box")
            _wait(lambda: box.is_displayed(), 15, "the agreement")
            report = browser.execute_script("return state.agreement;")
            assert report["n_overlap"] == 3 and report["pairs"][0]["n_items"] == 3
            text = browser.find_element(By.ID, "agreement").text
            assert "3 of 3 answered items have 2 or more answers" in text
            assert f"mean agreement per item {round(report['mean_item_agreement'] * 100)}%" in text
            assert f"Fleiss' kappa {report['fleiss_kappa']:.2f}" in text
            assert f"Cohen's kappa bob / dave {report['pairs'][0]['kappa']:.2f} on 3 items" \
                in text
            # bob sees his items, his own answers and that each has two
            _wait(lambda: len(_cells(browser)) == 3, 10, "bob's items")
            cells = _cells(browser)
            assert [c["label"] for c in cells] == ["1", "2", "3"]
            assert all(c["guess"].endswith("\u00b7 2 answers") for c in cells), cells
            assert _body(browser, "answered") == "3"
            # alice, a third, has nothing left (each item went to two) and is told so
            script = browser.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {
                "source": "localStorage.setItem('skal-annotator', 'alice');"})
            browser.get(running.url)
            browser.execute_cdp_cmd("Page.removeScriptToEvaluateOnNewDocument",
                                    {"identifier": script["identifier"]})
            count = browser.find_element(By.ID, "batch-count")
            _wait(lambda: count.text.startswith("no items for you now"), 10, "alice's message")
            assert _cells(browser) == []
    finally:
        project.close()
