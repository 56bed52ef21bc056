"""Label Studio in and out (skal.labeling.label_studio, `skal label studio`).

The first tests need no server: tasks and their predictions, the import of Label Studio's JSON
export (idempotent, all-or-nothing), the command line. The last ones start a real Label Studio
1.23.2 (``.venv-ls``, installed by scripts/setup.sh) on loopback with a temporary data folder, once
for the module, and drive it as a person would through label-studio-sdk (run by ``.venv-ls``'s
Python: the SDK cannot sit in ``.venv``, see setup.cfg). They are skipped only when ``.venv-ls`` is
absent; a server that does not come up fails them.
"""

import copy
import json
import os
import shutil
import socket
import subprocess
import time
import urllib.request
import xml.etree.ElementTree as ET

import pytest
from label_helpers import DIGIT_CLASSES, REPO, true_label, write_digit_pngs

from skal.cli import main
from skal.labeling import Project
from skal.labeling import label_studio as ls

TINY = {"batch_size": 6, "width": 2, "epochs": 1, "min_steps": 0, "mc_samples": 2,
        "holdout": 0.25}
LS_PYTHON = os.path.join(REPO, ".venv-ls", "bin", "python")
LS_BIN = os.path.join(REPO, ".venv-ls", "bin", "label-studio")
EMAIL, PASSWORD, TOKEN = "annotator@example.com", "skal-test-pw-1", "skal0test0token0123456"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A project folder under ``root/`` whose latest round (2) trained a model and queried a
    batch of 6; closed, so that tests copy it."""
    root = tmp_path_factory.mktemp("ls") / "root"
    write_digit_pngs(root / "imgs", 30, size=8)
    with Project.init(root / "project", root / "imgs", DIGIT_CLASSES, **TINY) as p:
        for item in p.next_batch():
            p.label(item.image_id, true_label(item.path), annotator="me")
        for row in p.store.images()[:12]:
            p.label(row["id"], true_label(row["path"]), annotator="me")
        p.train_and_query()
    return root


@pytest.fixture
def project(trained, tmp_path):
    """A fresh copy of the trained project (its images stay in ``trained/imgs``)."""
    shutil.copytree(trained / "project", tmp_path / "project")
    p = Project(tmp_path / "project")
    yield p
    p.close()


def _annotated(tasks, labels, *, first_id=1, cancelled=(), when="2026-01-01T00:00:00Z"):
    """``tasks`` as Label Studio exports them once annotated: ``labels[i]`` on task i (None: no
    annotation); annotation ids from ``first_id``; positions in ``cancelled`` skipped."""
    out = []
    for i, (task, label) in enumerate(zip(tasks, labels)):
        task = dict(copy.deepcopy(task), id=100 + i, annotations=[])
        if label is not None:
            result = [] if i in cancelled else [{
                "from_name": "label", "to_name": "image", "type": "choices",
                "value": {"choices": [label]}}]
            task["annotations"].append({
                "id": first_id + i, "completed_by": 7, "result": result,
                "was_cancelled": i in cancelled, "created_at": when, "updated_at": when})
        out.append(task)
    return out


# ---------------------------------------------------------------------------- tasks out
def test_label_config_lists_the_classes_escaped():
    classes = ['say "hi"', "<b>&", "cat"]
    root = ET.fromstring(ls.label_config(classes))
    choices = root.find("Choices")
    assert choices.get("name") == "label" and choices.get("toName") == "image"
    assert choices.get("choice") == "single" and choices.get("required") == "true"
    assert [c.get("value") for c in choices.findall("Choice")] == classes
    assert root.find("Image").get("value") == "$image"


def test_export_tasks_carry_the_batch_and_its_predictions_in_skal_order(project, trained):
    batch = project.next_batch()
    tasks = ls.export_tasks(project, document_root=trained)
    assert len(tasks) == len(batch) == 6
    latest = project.store.latest_done_round()
    for item, task in zip(batch, tasks):
        data = task["data"]
        assert data["image"] == f"/data/local-files/?d=imgs/{item.path}"
        assert (data["skal_image_id"], data["skal_path"]) == (item.image_id, item.path)
        assert data["skal_position"] == item.position and data["skal_score"] == item.score
        (prediction,) = task["predictions"]
        assert prediction["model_version"] == f"skal-round-{latest['id']}-bald"
        assert prediction["score"] == pytest.approx(1 - item.position / 6)
        (result,) = prediction["result"]
        assert result["value"] == {"choices": [item.guess]}
        assert result["score"] == pytest.approx(item.confidence)
    # "sort by prediction score" (descending) is skal's ranking
    ranked = sorted(tasks, key=lambda t: -t["predictions"][0]["score"])
    assert [t["data"]["skal_position"] for t in ranked] == list(range(6))


def test_export_of_any_images_and_of_the_random_first_batch(project, trained, tmp_path):
    ids = [r["id"] for r in project.store.images()]
    tasks = ls.export_tasks(project, ids[:3] + [project.store.image(image_id=ids[4])["path"]],
                            document_root=trained)
    assert [t["data"]["skal_image_id"] for t in tasks] == ids[:3] + [ids[4]]
    in_batch = {i.image_id for i in project.next_batch()}
    for task in tasks:  # an image outside the batch has no prediction
        assert ("predictions" in task) == (task["data"]["skal_image_id"] in in_batch)
    with Project.init(tmp_path / "fresh", trained / "imgs", DIGIT_CLASSES, **TINY) as fresh:
        first = ls.export_tasks(fresh, document_root=trained)
        assert len(first) == 6 and not any("predictions" in t for t in first)  # no model yet


def test_export_refuses_bad_input_and_writes_nothing(project, trained, tmp_path):
    out = tmp_path / "tasks.json"
    with pytest.raises(ValueError, match="'document_root' parameter must be a folder that holds"):
        ls.write_tasks(project, out, document_root=trained / "imgs")
    with pytest.raises(ValueError, match="'document_root' parameter"):
        ls.write_tasks(project, out, document_root=tmp_path)
    with pytest.raises(ValueError, match=r"not in this project: \['nope.png', 99999\]"):
        ls.write_tasks(project, out, ["nope.png", 99999], document_root=trained)
    with pytest.raises(TypeError, match="'images' parameter must be an iterable"):
        ls.export_tasks(project, "d0001_1.png", document_root=trained)
    assert not out.exists() and os.listdir(tmp_path) == ["project"]
    assert ls.write_tasks(project, out, document_root=trained) == 6
    assert json.loads(out.read_text()) == ls.export_tasks(project, document_root=trained)


# ---------------------------------------------------------------------------- annotations in
def test_import_is_idempotent_follows_updates_and_records_skips(project, trained, tmp_path):
    tasks = ls.export_tasks(project, document_root=trained)
    truth = [true_label(t["data"]["skal_path"]) for t in tasks]
    export = _annotated(tasks, truth[:4] + [None, None], cancelled={3})
    path = tmp_path / "export.json"
    path.write_text(json.dumps(export))
    before = len(project.store.answers())
    report = ls.import_annotations(project, path)
    assert report.added == [1, 2, 3, 4] and report.skipped == [4] and report.unchanged == []
    assert report.tasks_without_annotations == 2
    log = project.store.answers()[before:]
    assert [(a["kind"], a["label"], a["source"], a["annotator"]) for a in log] == [
        ("label", truth[0], "label-studio:1", "label-studio:7"),
        ("label", truth[1], "label-studio:2", "label-studio:7"),
        ("label", truth[2], "label-studio:3", "label-studio:7"),
        ("skip", None, "label-studio:4", "label-studio:7")]
    # again: nothing new (also with the emails of the users known)
    again = ls.import_annotations(project, export, users={7: "ann@example.com"})
    assert again.added == [] and again.unchanged == [1, 2, 3, 4]
    assert len(project.store.answers()) == before + 4
    # annotation 2 changed in Label Studio: one new answer, the standing one
    changed = copy.deepcopy(export)
    other = "0" if truth[1] != "0" else "1"
    changed[1]["annotations"][0]["result"][0]["value"]["choices"] = [other]
    changed[1]["annotations"][0]["updated_at"] = "2026-01-02T00:00:00Z"
    assert ls.import_annotations(project, changed, users={7: "ann@example.com"}).added == [2]
    assert project.labels()[tasks[1]["data"]["skal_path"]] == other
    # still the same person (named as when first imported), so their vote changed
    assert project.store.answers()[-1]["annotator"] == "label-studio:7"
    assert len(project.store.answers()) == before + 5
    # a new annotation, with the users' emails known, is named by email
    newer = _annotated(tasks, [None] * 4 + ["5", None], first_id=50)
    assert ls.import_annotations(project, newer, users={7: "ann@example.com"}).added == [54]
    assert project.store.answers()[-1]["annotator"] == "label-studio:ann@example.com"


def test_an_answer_undone_in_skal_stays_undone_on_reimport(project, trained):
    tasks = ls.export_tasks(project, document_root=trained)
    export = _annotated(tasks, ["3"] + [None] * 5)
    ls.import_annotations(project, export)
    path = tasks[0]["data"]["skal_path"]
    assert project.labels()[path] == "3"
    assert project.undo(annotator="label-studio:7") == tasks[0]["data"]["skal_image_id"]
    assert ls.import_annotations(project, export).unchanged == [1]
    assert path not in project.labels()


def test_annotations_of_a_retired_image_wait_until_it_is_back(project, trained):
    tasks = ls.export_tasks(project, document_root=trained)
    export = _annotated(tasks, ["1", "2"] + [None] * 4)
    image_id, path = tasks[0]["data"]["skal_image_id"], tasks[0]["data"]["skal_path"]
    project.store.update_images(retire=[(image_id, "gone")])  # as a rescan does
    before = len(project.store.answers())
    report = ls.import_annotations(project, export)
    assert report.added == [2] and report.retired == [1]
    assert len(project.store.answers()) == before + 1
    project.store.update_images(move=[(image_id, path)])  # the file is back
    report = ls.import_annotations(project, export)
    assert report.added == [1] and report.unchanged == [2] and report.retired == []
    assert project.labels()[path] == "1"


def test_a_bad_export_is_refused_whole_with_every_problem_listed(project, trained, tmp_path):
    tasks = ls.export_tasks(project, document_root=trained)
    export = _annotated(tasks, ["1", "cat", "2", "3", "4", "5"])
    export[2]["data"]["skal_sha256"] = "0" * 64  # an image of another project
    export[3]["annotations"][0]["result"][0]["value"]["choices"] = ["1", "2"]
    del export[4]["annotations"][0]["id"]
    export.append({"no": "data"})
    before = len(project.store.answers())
    with pytest.raises(ValueError) as caught:
        ls.import_annotations(project, export)
    message = str(caught.value)
    assert "5 problem(s); nothing was imported" in message
    assert "task 101, annotation 2: 'cat' is not one of the project's classes" in message
    assert "task 102 (" in message and "not an image of this project" in message
    assert "task 103, annotation 4: expected exactly one chosen class" in message
    assert "task 104: an annotation without an integer 'id'" in message
    assert "task #6: not a Label Studio task" in message
    assert len(project.store.answers()) == before  # annotation 1 (fine) was not written either
    bad = tmp_path / "bad.json"
    bad.write_text("[{")
    with pytest.raises(ValueError, match="is not a Label Studio JSON export"):
        ls.import_annotations(project, bad)
    with pytest.raises(ValueError, match="must be a JSON list of tasks; got dict"):
        ls.import_annotations(project, {"tasks": []})
    once = _annotated(tasks, ["1"] + [None] * 5)
    twice = once + copy.deepcopy(once[:1])
    twice[-1]["annotations"][0]["result"][0]["value"]["choices"] = ["2"]
    with pytest.raises(ValueError, match="annotation 1: appears twice with different answers"):
        ls.import_annotations(project, twice)
    assert len(project.store.answers()) == before


def test_client_checks_its_parameters_and_hides_the_key():
    with pytest.raises(ValueError, match="'url' parameter must be an http"):
        ls.LabelStudioClient("ftp://x", "k")
    with pytest.raises(ValueError, match="'api_key' parameter must be a Label Studio API key"):
        ls.LabelStudioClient("http://127.0.0.1:1", " ")
    client = ls.LabelStudioClient("http://127.0.0.1:1", "s3cret-key")
    assert "s3cret" not in repr(client)
    with pytest.raises(ls.LabelStudioError, match="Could not reach Label Studio") as caught:
        client.projects()
    assert "s3cret" not in str(caught.value)


# ---------------------------------------------------------------------------- command line
def test_cli_export_and_import_files(project, trained, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(ls.URL_ENV, raising=False)
    out = tmp_path / "tasks.json"
    assert main(["label", "studio", "export", project.path, "--out", str(out),
                 "--document-root", str(trained)]) == 0
    assert "wrote 6 Label Studio task(s)" in capsys.readouterr().out
    tasks = json.loads(out.read_text())
    assert main(["label", "studio", "export", project.path, "--all", "--out", str(out),
                 "--document-root", str(trained)]) == 0
    assert len(json.loads(out.read_text())) == 30
    capsys.readouterr()
    export = tmp_path / "export.json"
    export.write_text(json.dumps(_annotated(tasks, ["1", "2"] + [None] * 4)))
    for _ in range(2):
        assert main(["label", "studio", "import", project.path, str(export)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("2 answer(s) imported (0 skip(s)), 0 already imported")
    assert lines[1].startswith("0 answer(s) imported (0 skip(s)), 2 already imported")


def test_cli_errors_name_the_flags(project, trained, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(ls.URL_ENV, raising=False)
    monkeypatch.delenv(ls.API_KEY_ENV, raising=False)
    cases = [
        (["sync", project.path], "--url is required (or set LABEL_STUDIO_URL)"),
        (["sync", project.path, "--url", "http://127.0.0.1:1"], "--api-key is required"),
        (["sync", project.path, "--url", "file:///etc", "--api-key", "k"],
         "--url must be an http(s) URL"),
        (["export", project.path, "--out", "x.json", "--url", "http://127.0.0.1:1",
          "--api-key", "k"], "not both"),
        (["import", project.path], "give a Label Studio JSON export FILE or --url"),
        (["export", project.path, "--document-root", str(tmp_path)],
         "--document-root must be a folder that holds"),
        (["sync", project.path, "--url", "http://127.0.0.1:1", "--api-key", "s3cret-key",
          "--document-root", str(trained)], "Could not reach Label Studio at"),
    ]
    for args, expected in cases:
        assert main(["label", "studio", *args]) == 2, args
        err = capsys.readouterr().err
        assert expected in err and "Traceback" not in err and "s3cret" not in err, (args, err)
    assert not os.path.exists(os.path.join(project.path, "label-studio-tasks.json"))


# ---------------------------------------------------------------------------- a real server
def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(trained, tmp_path_factory):
    """Label Studio 1.23.2 on 127.0.0.1 with a temporary data folder, its document root the
    folder above the images, one user with a legacy API token; yields its URL."""
    if not os.path.isfile(LS_BIN):
        pytest.skip(".venv-ls (Label Studio) is not installed: run scripts/setup.sh")
    data = tmp_path_factory.mktemp("ls-data")
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k != "HOST"}  # LS reads HOST as its URL
    env.update(
        LABEL_STUDIO_BASE_DATA_DIR=str(data), LOCAL_FILES_SERVING_ENABLED="true",
        LOCAL_FILES_DOCUMENT_ROOT=str(trained), LABEL_STUDIO_USERNAME=EMAIL,
        LABEL_STUDIO_PASSWORD=PASSWORD, LABEL_STUDIO_USER_TOKEN=TOKEN,
        # no calls out: no version check, analytics or Sentry reports
        LATEST_VERSION_CHECK="false", COLLECT_ANALYTICS="false", SENTRY_DSN="",
        FRONTEND_SENTRY_DSN="")
    url = f"http://127.0.0.1:{port}"
    with open(data / "server.log", "w") as log:
        started = time.monotonic()
        proc = subprocess.Popen(
            [LS_BIN, "start", "--no-browser", "--host", "127.0.0.1", "--port", str(port),
             "--data-dir", str(data), "--enable-legacy-api-token"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env)
        try:
            _wait_until_up(url, proc, started + 300, data / "server.log")
            print(f"Label Studio up in {time.monotonic() - started:.1f} s")
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _wait_until_up(url, proc, deadline, log):
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=5) as r:
                if json.loads(r.read()).get("status") == "UP":
                    return
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"Label Studio did not come up on {url} (exit {proc.poll()}):\n"
                        f"{log.read_text()[-3000:]}")
        time.sleep(1)


# a person's actions in Label Studio, through label-studio-sdk (run by .venv-ls's Python)
_HUMAN = r"""
import json, sys
from label_studio_sdk import LabelStudio
url, key, action, args = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
client = LabelStudio(base_url=url, api_key=key)
if action == "order":  # task positions in the Data Manager sorted by prediction score
    out = {}
    for name, ordering in (("desc", "-tasks:predictions_score"),
                           ("asc", "tasks:predictions_score")):
        query = json.dumps({"ordering": [ordering]})
        tasks = client.tasks.list(project=args["project"], query=query)
        out[name] = [[t.id, t.data["skal_image_id"]] for t in tasks]
    project = client.projects.get(id=args["project"])
    out["label_config"] = project.label_config
    print(json.dumps(out))
elif action == "annotate":  # [[task id, class or null (skip)], ...]
    ids = []
    for task_id, label in args["answers"]:
        result = [] if label is None else [{"from_name": "label", "to_name": "image",
                                            "type": "choices", "value": {"choices": [label]}}]
        ids.append(client.annotations.create(id=task_id, result=result,
                                             was_cancelled=label is None).id)
    print(json.dumps(ids))
elif action == "relabel":
    client.annotations.update(id=args["annotation"], result=[{
        "from_name": "label", "to_name": "image", "type": "choices",
        "value": {"choices": [args["label"]]}}])
    print("[]")
"""


def _human(url, action, **args):
    proc = subprocess.run([LS_PYTHON, "-c", _HUMAN, url, TOKEN, action, json.dumps(args)],
                          check=False, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _ranked_batch(project):
    return [i.image_id for i in project.next_batch()]


def test_sync_with_a_real_label_studio(server, trained, tmp_path):
    shutil.copytree(trained / "project", tmp_path / "project")
    project = Project(tmp_path / "project")
    client = ls.LabelStudioClient(server, TOKEN)
    report = ls.sync(project, client, title="digits", document_root=trained)
    assert report.created and report.tasks_created == 6 and report.predictions_removed == 0
    assert report.imported.tasks_without_annotations == 6
    seen = _human(server, "order", project=report.project_id)
    assert [c.get("value") for c in ET.fromstring(seen["label_config"]).iter("Choice")] == \
        DIGIT_CLASSES
    # Label Studio's "sort by prediction score" is skal's ranking, both ways
    assert [i for _, i in seen["desc"]] == _ranked_batch(project)
    assert [i for _, i in seen["asc"]] == _ranked_batch(project)[::-1]
    task_of = {image_id: task_id for task_id, image_id in seen["desc"]}
    # Label Studio serves the image from skal's folder (local storage), to a logged-in user only
    item = project.next_batch()[0]
    served = urllib.request.Request(f"{server}/data/local-files/?d=imgs/{item.path}",
                                    headers={"Authorization": f"Token {TOKEN}"})
    with urllib.request.urlopen(served, timeout=30) as r:
        assert r.read() == (trained / "imgs" / item.path).read_bytes()
    with pytest.raises(urllib.error.HTTPError):
        urllib.request.urlopen(f"{server}/data/local-files/?d=imgs/{item.path}", timeout=30)

    # a person labels two images and skips one
    batch = project.next_batch()
    answers = [[task_of[batch[0].image_id], true_label(batch[0].path)],
               [task_of[batch[1].image_id], true_label(batch[1].path)],
               [task_of[batch[2].image_id], None]]
    annotation_ids = _human(server, "annotate", answers=answers)
    before = len(project.store.answers())
    report = ls.sync(project, client, title="digits", document_root=trained)
    assert not report.created and report.tasks_created == 0 and report.predictions_added == 0
    assert sorted(report.imported.added) == sorted(annotation_ids)
    assert report.imported.skipped == [annotation_ids[2]]
    log = project.store.answers()[before:]
    assert sorted((a["image_id"], a["kind"], a["label"]) for a in log) == sorted(
        [(batch[0].image_id, "label", true_label(batch[0].path)),
         (batch[1].image_id, "label", true_label(batch[1].path)),
         (batch[2].image_id, "skip", None)])
    assert {a["annotator"] for a in log} == {f"label-studio:{EMAIL}"}
    assert {a["source"] for a in log} == {f"label-studio:{i}" for i in annotation_ids}
    # again: nothing new; then the person changes their mind on the first image
    assert ls.sync(project, client, title="digits", document_root=trained).imported.added == []
    other = "0" if true_label(batch[0].path) != "0" else "1"
    _human(server, "relabel", annotation=annotation_ids[0], label=other)
    assert ls.sync(project, client, title="digits",
                   document_root=trained).imported.added == [annotation_ids[0]]
    assert project.labels()[batch[0].path] == other
    assert len(project.store.answers()) == before + 4

    # the next round: its batch is pushed, the older round's predictions go
    project.train_and_query()
    fresh = _ranked_batch(project)
    report = ls.sync(project, client, title="digits", document_root=trained)
    assert report.predictions_removed == 6 and report.predictions_added == 6
    assert report.tasks_created == len(set(fresh) - set(task_of))
    assert report.tasks_updated == 6  # the new positions, or out of the batch
    seen = _human(server, "order", project=report.project_id)
    assert len(seen["desc"]) == 6 + report.tasks_created
    assert [i for _, i in seen["desc"]][:6] == fresh  # tasks without a prediction come last
    assert [i for _, i in seen["asc"]][:6] == fresh[::-1]  # (both ways)
    tasks = {t["data"]["skal_image_id"]: t for t in client.tasks(report.project_id)}
    for item in project.next_batch():  # the Data Manager's skal_* columns are the new batch's
        assert tasks[item.image_id]["data"]["skal_position"] == item.position
    assert not any("skal_position" in t["data"] for i, t in tasks.items() if i not in fresh)
    project.close()


def test_cli_sync_reads_the_key_from_the_environment(server, trained, tmp_path, capsys,
                                                     monkeypatch):
    shutil.copytree(trained / "project", tmp_path / "project")
    monkeypatch.setenv(ls.API_KEY_ENV, TOKEN)
    args = ["label", "studio", "sync", str(tmp_path / "project"), "--url", server,
            "--title", "from the cli", "--document-root", str(trained)]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "(created)" in out and "6 task(s) created, 0 updated, 6 prediction(s) pushed" in out
    assert TOKEN not in out
    assert main(args) == 0
    assert "(found)" in capsys.readouterr().out
    common = [str(tmp_path / "project"), "--url", server, "--title", "from the cli"]
    assert main(["label", "studio", "export", *common, "--document-root", str(trained)]) == 0
    out = capsys.readouterr().out  # a push only: no import part
    assert "(found)" in out and "0 task(s) created, 0 updated, 0 prediction(s) pushed" in out
    assert "answer(s)" not in out
    assert main(["label", "studio", "import", *common]) == 0
    assert capsys.readouterr().out.startswith("0 answer(s) imported (0 skip(s)), 0 already "
                                              "imported, 6 task(s) not annotated yet")
    monkeypatch.setenv(ls.API_KEY_ENV, "wrong-key-123456")
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "401" in err and "check the API key" in err and "wrong-key" not in err


def test_a_personal_access_token_works_too(server, trained, tmp_path):
    # Label Studio's newer keys: a JWT refresh token, exchanged for short-lived access tokens
    pat = ls.LabelStudioClient(server, TOKEN).request("POST", "/api/token/")["token"]
    client = ls.LabelStudioClient(server, pat)
    assert client.request("GET", "/api/current-user/whoami")["email"] == EMAIL
    assert client._access is not None and pat not in repr(client)
    shutil.copytree(trained / "project", tmp_path / "project")
    with Project(tmp_path / "project") as project:
        report = ls.sync(project, client, title="with a token", document_root=trained)
        assert report.created and report.tasks_created == 6
        pulled = ls.sync(project, client, title="with a token", push=False)
        assert pulled.tasks_created == 0 and pulled.imported.tasks_without_annotations == 6
        with pytest.raises(ls.LabelStudioError, match="has 0 projects titled 'nobody'"):
            ls.sync(project, client, title="nobody", push=False)
