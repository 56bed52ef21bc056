"""The labelling server attacked as an attacker would: path traversal (plain, absolute,
URL-encoded, double-encoded, backslashes, symlinks out of the folder), missing and wrong tokens
off the default address, a forged Host header, labels outside the classes, oversized and chunked
bodies, cross-site form posts, markup in class and file names, SQL in every text field."""

import ast
import http.client
import json
import os
import pathlib
import socket
import urllib.parse

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("starlette", reason="the web page needs the 'label' extra")
pytest.importorskip("uvicorn", reason="the web page needs the 'label' extra")

from label_helpers import DIGIT_CLASSES, ServeProcess, write_digit_pngs

from skal.labeling import Project
from skal.labeling.app import start_server

TINY = dict(batch_size=4, width=2, epochs=1, min_steps=0, mc_samples=2, holdout=0.0)
SECRET = b"TOP-SECRET-CONTENT"
LABELING = pathlib.Path(__file__).resolve().parents[2] / "skal" / "labeling"


def request(base, method, path, body=None, headers=None, raw_body=None, host_header=None):
    parsed = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=10)
    headers = dict(headers or {})
    data = raw_body
    if body is not None:
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    try:
        conn.putrequest(method, path, skip_host=host_header is not None,
                        skip_accept_encoding=True)
        if host_header is not None:
            conn.putheader("Host", host_header)
        for k, v in headers.items():
            conn.putheader(k, v)
        if data is not None and not {"Transfer-Encoding", "Content-Length"} & set(headers):
            conn.putheader("Content-Length", str(len(data)))
        conn.endheaders()
        if data is not None:
            if headers.get("Transfer-Encoding") == "chunked":
                for i in range(0, len(data), 8192):
                    chunk = data[i:i + 8192]
                    conn.send(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                conn.send(b"0\r\n\r\n")
            else:
                conn.send(data)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.fixture
def layout(tmp_path):
    """png/ (registered images, one in a sub-folder), outside/ (secrets beside it)."""
    images = tmp_path / "png"
    write_digit_pngs(images, 12, size=8)
    os.makedirs(images / "sub")
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(images / "sub" / "inner.png")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(SECRET)
    Image.fromarray(np.full((8, 8), 7, np.uint8)).save(outside / "secret.png")
    with open(outside / "secret.png", "ab") as f:
        f.write(SECRET)  # a valid PNG that carries the secret
    project = Project.init(tmp_path / "project", images, DIGIT_CLASSES + ["sub"], **TINY)
    yield tmp_path, project
    project.close()


@pytest.fixture
def server(layout):
    tmp_path, project = layout
    with start_server(project) as running:
        yield tmp_path, running


def _n_answers(project):
    """Answers beyond the one imported from the sub-folder."""
    return len(project.store.answers()) - 1


# ---------------------------------------------------------------------------- traversal
TRAVERSALS = [
    "/images/../project/skal.db",
    "/images/../../etc/passwd",
    "/images/..%2fproject%2fskal.db",
    "/images/..%2F..%2Foutside%2Fsecret.txt",
    "/images/%2e%2e/outside/secret.txt",
    "/images/%2e%2e%2f%2e%2e%2foutside%2fsecret.txt",
    "/images/%252e%252e%252foutside%252fsecret.txt",       # double-encoded
    "/images/%25252e%25252e/outside/secret.txt",           # triple-encoded
    "/images//etc/passwd",                                 # absolute
    "/images/%2Fetc%2Fpasswd",
    "/images/%2F%2Fetc/passwd",
    "/images/..\\outside\\secret.txt",                     # backslashes
    "/images/..%5coutside%5csecret.txt",
    "/images/d0000_0.png/../../outside/secret.txt",
    "/images/./../outside/secret.txt",
    "/images/....//outside/secret.txt",
    "/images/d0000_0.png%00.txt",                          # NUL
    "/images/D0000_0.PNG",                                 # not the registered name
    "/images/",
    "/images/sub/../../outside/secret.png",
    "/static/../store.py",
    "/static/%2e%2e/store.py",
    "/static/..%2fstore.py",
    "/static/%2e%2e%2f%2e%2e%2fproject%2fskal.db",
    "/static//etc/passwd",
]


def test_only_registered_images_are_served(server):
    tmp_path, running = server
    assert request(running.base, "GET", "/images/d0000_0.png")[0] == 200
    assert request(running.base, "GET", "/images/sub/inner.png")[0] == 200
    assert request(running.base, "GET", "/images/sub%2Finner.png")[0] == 200  # same file
    for path in TRAVERSALS:
        status, _, body = request(running.base, "GET", path)
        assert status == 404, (path, status)
        assert SECRET not in body and b"SQLite" not in body and b"root:" not in body, path


def test_symlinks_out_of_the_folder_are_not_served(server):
    tmp_path, running = server
    images, outside = tmp_path / "png", tmp_path / "outside"
    # a registered file swapped for a link to a file outside the folder
    os.remove(images / "d0001_1.png")
    os.symlink(outside / "secret.png", images / "d0001_1.png")
    status, _, body = request(running.base, "GET", "/images/d0001_1.png")
    assert status == 404 and SECRET not in body
    # a registered sub-folder swapped for a link to a folder outside
    os.rename(images / "sub", tmp_path / "sub_moved")
    os.makedirs(outside / "evil")
    os.replace(outside / "secret.png", outside / "evil" / "inner.png")
    os.symlink(outside / "evil", images / "sub")
    status, _, body = request(running.base, "GET", "/images/sub/inner.png")
    assert status == 404 and SECRET not in body
    # a link inside the folder that stays inside is fine
    os.remove(images / "d0002_2.png")
    os.symlink(images / "d0003_3.png", images / "d0002_2.png")
    assert request(running.base, "GET", "/images/d0002_2.png")[0] == 200


# ---------------------------------------------------------------------------- token
def _loopback_alias_available(host="127.0.0.2"):
    with socket.socket() as s:
        try:
            s.bind((host, 0))
        except OSError:
            return False
    return True


ROUTES = [("GET", "/"), ("GET", "/api/state"), ("GET", "/api/job"),
          ("GET", "/images/d0000_0.png"), ("GET", "/static/app.js"),
          ("POST", "/api/answers"), ("POST", "/api/undo"), ("POST", "/api/train")]


@pytest.mark.skipif(not _loopback_alias_available(), reason="127.0.0.2 cannot be bound here")
def test_off_the_default_address_every_route_needs_the_token(layout):
    tmp_path, project = layout
    with start_server(project, host="127.0.0.2") as running:
        token = running.token
        assert token and len(token) >= 32 and f"token={token}" in running.url
        body = {"image_id": 1, "label": "1"}
        for method, path in ROUTES:
            payload = body if method == "POST" else None
            for headers in ({}, {"X-Skal-Token": "wrong"}, {"X-Skal-Token": token[:-1]},
                            {"Cookie": "skal_token=wrong"}, {"Cookie": "skal_token="},
                            {"Authorization": f"Bearer {token}"}):
                status, _, text = request(running.base, method, path, payload, headers)
                assert status == 401, (method, path, headers, status)
                assert token.encode() not in text
            wrong_query = request(running.base, method, path + "?token=wrong", payload)
            assert wrong_query[0] == 401
        assert _n_answers(project) == 0
        good = request(running.base, "GET", "/api/state", headers={"X-Skal-Token": token})
        assert good[0] == 200
        cookie = request(running.base, "GET", "/", headers={"Cookie": f"skal_token={token}"})
        assert cookie[0] == 200
        status, headers, _ = request(running.base, "GET", "/?token=" + urllib.parse.quote(token))
        assert status == 303 and headers["location"] == "/"
        set_cookie = headers["set-cookie"].lower()
        assert "skal_token=" in set_cookie and "httponly" in set_cookie
        assert "samesite=strict" in set_cookie
        ok = request(running.base, "POST", "/api/answers", body, {"X-Skal-Token": token})
        assert ok[0] == 200 and _n_answers(project) == 1


def test_require_token_on_loopback_and_the_serve_command_prints_it_once(layout, tmp_path):
    _, project = layout
    with start_server(project, require_token=True) as running:
        assert request(running.base, "GET", "/api/state")[0] == 401
        assert request(running.base, "GET", "/api/state",
                       headers={"X-Skal-Token": running.token})[0] == 200
    if not _loopback_alias_available():
        return
    with ServeProcess(project.path, "--host", "127.0.0.2") as served:
        assert served.url.startswith("http://127.0.0.2:") and served.token
        assert sum(served.token in line for line in served.lines) == 1
        assert request(served.base, "GET", "/api/state")[0] == 401
        assert request(served.base, "GET", "/api/state",
                       headers={"X-Skal-Token": served.token})[0] == 200


def test_default_address_checks_the_host_header(server):
    _, running = server
    port = urllib.parse.urlsplit(running.base).port
    assert request(running.base, "GET", "/api/state", host_header=f"localhost:{port}")[0] == 200
    for host in (f"evil.example:{port}", "attacker.test", f"127.0.0.1.evil.example:{port}"):
        status, _, _ = request(running.base, "GET", "/api/state", host_header=host)
        assert status == 400, host  # DNS rebinding: a page elsewhere cannot read the API


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("body, status", [
    ({"image_id": 1, "label": "cat"}, 422),
    ({"image_id": 1, "label": 5}, 422),
    ({"image_id": 1, "label": None}, 422),
    ({"image_id": 1, "label": ["1"]}, 422),
    ({"image_id": 1, "label": "1 "}, 422),
    ({"image_id": "1", "label": "1"}, 422),
    ({"image_id": True, "label": "1"}, 422),
    ({"image_id": 1.5, "label": "1"}, 422),
    ({"label": "1"}, 422),
    ({"image_id": 99999, "label": "1"}, 404),
    ({"image_id": 1, "label": "1", "annotator": "../../etc"}, 422),
    ({"image_id": 1, "label": "1", "annotator": "x" * 500}, 422),
    ({"image_id": 1, "label": "1", "annotator": "a\nb"}, 422),
])
def test_bad_answers_are_rejected_and_write_nothing(server, body, status):
    _, running = server
    got, _, payload = request(running.base, "POST", "/api/answers", body)
    assert got == status, payload
    assert "detail" in json.loads(payload)
    assert _n_answers(running.project) == 0


def test_bodies_are_bounded_and_must_be_json(server):
    _, running = server
    big = json.dumps({"image_id": 1, "label": "1", "pad": "x" * 100_000}).encode()
    headers = {"Content-Type": "application/json"}
    assert request(running.base, "POST", "/api/answers", raw_body=big, headers=headers)[0] == 413
    chunked = dict(headers, **{"Transfer-Encoding": "chunked"})
    assert request(running.base, "POST", "/api/answers", raw_body=big, headers=chunked)[0] == 413
    lying = dict(headers, **{"Content-Length": str(10**9)})
    status, _, _ = request(running.base, "POST", "/api/answers", raw_body=b"{}", headers=lying)
    assert status == 413
    small = json.dumps({"image_id": 1, "label": "1"}).encode()
    assert request(running.base, "POST", "/api/answers", raw_body=small, headers=chunked)[0] \
        == 200
    # a cross-site form can send text/plain or form data without a CORS preflight: refused
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        status, _, _ = request(running.base, "POST", "/api/answers", raw_body=small,
                               headers={"Content-Type": ctype})
        assert status == 415, ctype
    status, _, _ = request(running.base, "POST", "/api/answers", raw_body=b"{not json",
                           headers=headers)
    assert status == 400
    assert request(running.base, "POST", "/api/answers", raw_body=b"[1]", headers=headers)[0] \
        == 400
    assert _n_answers(running.project) == 1
    # no CORS: a preflight is not granted
    status, headers_out, _ = request(running.base, "OPTIONS", "/api/answers",
                                     headers={"Origin": "http://evil.example",
                                              "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in {k.lower() for k in headers_out}


def test_markup_in_class_and_file_names_is_escaped(tmp_path):
    # (class names may not hold "/" or "\\": they become folder names in an export)
    names = ["<script>", "<img src=x onerror=alert(1)>", 'say "hi" & <b>bye',
             "Robert'); DROP TABLE classes;--"]
    images = tmp_path / "png"
    write_digit_pngs(images, 4, size=8)
    evil_file = '<img src=x onerror=alert(1)>.png'
    os.replace(images / sorted(os.listdir(images))[0], images / evil_file)
    project = Project.init(tmp_path / "p", images, names, **dict(TINY, batch_size=4))
    try:
        with start_server(project) as running:
            status, headers, html = request(running.base, "GET", "/")
            html = html.decode()
            assert status == 200
            assert "<img src=x" not in html and "<b>bye" not in html
            assert "&lt;script&gt;" in html and "&lt;img src=x onerror=alert(1)&gt;" in html
            assert "&lt;b&gt;bye" in html and "&#34;hi&#34;" in html
            assert html.count("<script") == 1  # only /static/app.js
            csp = headers["content-security-policy"]
            assert "script-src 'self'" in csp and "unsafe-inline" not in csp
            assert headers["x-content-type-options"] == "nosniff"
            status, headers, payload = request(running.base, "GET", "/api/state")
            assert headers["content-type"] == "application/json"
            batch = json.loads(payload)["batch"]
            evil = [b for b in batch if b["path"] == evil_file]
            assert evil and evil[0]["url"] == "/images/" + urllib.parse.quote(evil_file)
            assert request(running.base, "GET", evil[0]["url"])[0] == 200
            # the SQL-looking class is just a class
            status, _, _ = request(running.base, "POST", "/api/answers",
                                   {"image_id": batch[0]["image_id"], "label": names[3],
                                    "annotator": "x'); DROP TABLE answers; --"})
            assert status == 200
        assert project.classes == names
        row = project.store.answers()[-1]
        assert row["label"] == names[3] and row["annotator"] == "x'); DROP TABLE answers; --"
        assert project.store.integrity_check() == "ok"
    finally:
        project.close()


# ---------------------------------------------------------------------------- code checks
def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            yield name, node


def test_sql_is_never_built_from_values_and_nothing_reaches_a_shell_or_eval():
    for path in LABELING.glob("*.py"):
        tree = ast.parse(path.read_text())
        for name, call in _calls(tree):
            assert name not in ("eval", "exec", "system", "popen", "Popen", "execv",
                                "execvp", "spawnv", "check_output", "__import__"), \
                f"{path.name}: {name}()"
            assert "shell" not in {k.arg for k in call.keywords}, f"{path.name}: shell="
            if name in ("execute", "executemany", "one", "_query", "executescript") and call.args:
                sql = call.args[0]
                # SQL text is a literal (or a name bound to literals); values go as parameters
                assert not isinstance(sql, ast.JoinedStr), f"{path.name}:{call.lineno} f-string"
                assert not (isinstance(sql, ast.BinOp) and isinstance(sql.op, ast.Mod)), \
                    f"{path.name}:{call.lineno} % formatting"
                assert not (isinstance(sql, ast.Call) and getattr(sql.func, "attr", "") ==
                            "format"), f"{path.name}:{call.lineno} .format"
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                modules = [a.name for a in node.names] + [getattr(node, "module", None) or ""]
                assert "subprocess" not in modules and "os.system" not in modules


def test_the_page_script_never_writes_html():
    script = (LABELING / "static" / "app.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(",
                 "new Function"):
        assert sink not in script, sink
    assert "textContent" in script
