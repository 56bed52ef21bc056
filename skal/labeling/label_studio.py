"""Label Studio in and out: a project's batch as Label Studio tasks, its annotations back.

* :func:`export_tasks` turns images of a project (by default the current batch) into Label Studio
  tasks: ``data.image`` names the file through Label Studio's local-files serving
  (``/data/local-files/?d=...``, relative to the server's ``LOCAL_FILES_DOCUMENT_ROOT``), so the
  images are read from skal's image folder where they are, never copied or uploaded; each batch
  image carries the round's prediction (its guess as a ``choices`` result with the model's
  confidence) with a ``score`` that follows skal's ranking: ``1 - position / batch size``, so
  sorting the Data Manager by "Prediction score" (descending) shows skal's first pick first.
* :func:`import_annotations` reads Label Studio's JSON export (or the tasks a server returns) and
  records every annotation as a skal answer through :meth:`LabelStore.add_answer` (one
  transaction each). The answer's ``source`` is ``label-studio:<annotation id>``: importing the same
  export again adds nothing, and an annotation changed in Label Studio adds one new answer. The
  whole file is checked first; a problem anywhere (an image that is not the project's, a class
  that is not one of its classes, a malformed entry) raises one ``ValueError`` listing them, and
  nothing is written.
* :class:`LabelStudioClient` speaks Label Studio's REST API with the standard library (no SDK:
  ``label-studio-sdk`` 2.1.2 pins ``opencv-python-headless`` 4.12, which caps numpy below 2.3);
  :func:`sync` creates (or finds) the Label Studio project for a skal project, keeps its label
  config in step with the classes, connects the image folder as local storage, pushes the batch
  with its predictions and pulls the annotations.
"""

import json
import os
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import NamedTuple
from xml.sax.saxutils import quoteattr

from ..utils.atomic import write_atomic

__all__ = ["ImportReport", "LabelStudioClient", "LabelStudioError", "SyncReport",
           "export_tasks", "import_annotations", "label_config", "sync", "write_tasks"]

#: The names of the label config's controls (``from_name`` / ``to_name`` of every result).
FROM_NAME = "label"
TO_NAME = "image"
#: The environment variables read for the server's address and the API key.
URL_ENV = "LABEL_STUDIO_URL"
API_KEY_ENV = "LABEL_STUDIO_API_KEY"
_SOURCE = "label-studio:"
_MODEL_PREFIX = "skal-round-"
_MAX_PROBLEMS = 20
_MAX_PAGES = 10_000  # of 100 items


class LabelStudioError(RuntimeError):
    """Label Studio could not be reached, refused the API key or answered with an error.

    The message names the request and the server's answer, never the API key.

    See Also
    --------
    LabelStudioClient : What raises it.

    Examples
    --------
    >>> from skal.labeling.label_studio import LabelStudioClient, LabelStudioError
    >>> try:
    ...     LabelStudioClient("http://127.0.0.1:1", "key").projects()
    ... except LabelStudioError as exc:
    ...     print(str(exc).split(":")[0])
    Could not reach Label Studio at http
    """


class ImportReport(NamedTuple):
    """What :func:`import_annotations` did.

    Annotations are named by their Label Studio ids.

    Parameters
    ----------
    added : list of int
        The annotation ids recorded as answers.
    unchanged : list of int
        The annotations imported before with the same answer (nothing written).
    skipped : list of int
        Of ``added``, those cancelled (skipped) in Label Studio, recorded as skips.
    tasks_without_annotations : int
        Tasks nobody annotated yet.
    retired : list of int
        Annotations left out because their image is retired (its file left the image folder);
        an import after the file is back (``rescan``) records them.

    See Also
    --------
    import_annotations : What returns it.

    Examples
    --------
    >>> from skal.labeling.label_studio import ImportReport
    >>> report = ImportReport(added=[3, 4], unchanged=[1], skipped=[4],
    ...                       tasks_without_annotations=2, retired=[])
    >>> len(report.added), report.skipped
    (2, [4])
    """

    added: list
    unchanged: list
    skipped: list
    tasks_without_annotations: int
    retired: list


class SyncReport(NamedTuple):
    """What :func:`sync` did.

    Counts of what changed on the server, and what came back into the store.

    Parameters
    ----------
    project_id : int
        The Label Studio project.
    created : bool
        Whether this sync created it.
    tasks_created : int
        Tasks created (images of the batch that had none).
    tasks_updated : int
        Tasks whose data (the ``skal_*`` batch columns) was brought up to date.
    predictions_added : int
        Predictions of the current round pushed.
    predictions_removed : int
        The predictions of skal's older rounds removed.
    imported : ImportReport
        What the pull imported (empty with ``pull=False``).

    See Also
    --------
    sync : What returns it.

    Examples
    --------
    >>> from skal.labeling.label_studio import ImportReport, SyncReport
    >>> report = SyncReport(1, True, 6, 0, 6, 0, ImportReport([], [], [], 6, []))
    >>> report.tasks_created, report.imported.tasks_without_annotations
    (6, 6)
    """

    project_id: int
    created: bool
    tasks_created: int
    tasks_updated: int
    predictions_added: int
    predictions_removed: int
    imported: ImportReport


# ---------------------------------------------------------------------------- tasks out
def label_config(classes):
    """The Label Studio labelling config of a project's classes: one image, one single choice.

    Parameters
    ----------
    classes : list of str
        The project's class names, in order.

    Returns
    -------
    config : str
        XML; class names are escaped as attribute values.
    """
    choices = "\n".join(f"    <Choice value={quoteattr(str(c))}/>" for c in classes)
    return (f'<View>\n  <Image name="{TO_NAME}" value="$image"/>\n'
            f'  <Choices name="{FROM_NAME}" toName="{TO_NAME}" choice="single" required="true" '
            f'showInLine="true">\n{choices}\n  </Choices>\n</View>\n')


def _document_root(project, document_root):
    """The absolute document root, which must hold the image folder strictly inside it."""
    root = document_root if document_root is not None else os.environ.get(
        "LOCAL_FILES_DOCUMENT_ROOT")
    image_root = os.path.realpath(project.image_root)
    root = os.path.realpath(os.fspath(root)) if root else os.path.dirname(image_root)
    if os.path.commonpath([root, image_root]) != root or root == image_root:
        raise ValueError(
            f"The 'document_root' parameter must be a folder that holds the image folder "
            f"{image_root} (Label Studio's LOCAL_FILES_DOCUMENT_ROOT, a parent of it); got "
            f"{root!r}.")
    return root


def _image_url(document_root, image_root, path):
    relative = os.path.relpath(os.path.join(image_root, *path.split("/")), document_root)
    return "/data/local-files/?d=" + urllib.parse.quote(relative.replace(os.sep, "/"), safe="/")


def model_version(round_row):
    """``skal-round-<id>-<strategy>``: the ``model_version`` of a round's predictions."""
    return f"{_MODEL_PREFIX}{round_row['id']}-{round_row['strategy']}"


def export_tasks(project, images=None, *, document_root=None):
    """Label Studio tasks (JSON-ready dicts) for images of ``project``.

    Parameters
    ----------
    project : skal.labeling.Project
        The project whose images become tasks.
    images : iterable of (int or str) or None
        Image ids or relative paths; None: the current batch (best first).
    document_root : str, path-like or None
        The server's ``LOCAL_FILES_DOCUMENT_ROOT``, a folder above the image folder; None: the
        environment variable of that name, else the image folder's parent.

    Returns
    -------
    tasks : list of dict
        ``data`` holds ``image`` (the local-files URL), ``skal_image_id``, ``skal_path``,
        ``skal_sha256`` and, for an image of the current batch, ``skal_round``,
        ``skal_position``, ``skal_score`` (the strategy's score), ``skal_guess`` and
        ``skal_confidence``; a batch image of a round with a model also has a ``predictions``
        entry (see the module's docstring).
    """
    root = _document_root(project, document_root)
    image_root = os.path.realpath(project.image_root)
    latest = project.store.latest_done_round()
    batch = {r["image_id"]: r for r in project.store.batch(latest["id"])} if latest else {}
    if images is None:
        ids = list(batch)
    else:
        if isinstance(images, (str, bytes, int)):
            raise TypeError(f"The 'images' parameter must be an iterable of image ids or paths "
                            f"or None; got {images!r}.")
        ids, unknown = [], []
        for image in images:
            try:
                ids.append(project._image_id(image))
            except KeyError:
                unknown.append(image)
        if unknown:
            raise ValueError(f"The 'images' parameter names images that are not in this "
                             f"project: {unknown[:_MAX_PROBLEMS]}.")
    tasks = []
    # (positions of the stored ranking: retired images leave gaps, the first pick stays 1.0)
    size = max((r["position"] for r in batch.values()), default=0) + 1
    for image_id in ids:
        row = project.store.image(image_id=image_id)
        if row["retired_at"] is not None:
            raise ValueError(f"Image {image_id} ({row['path']}) is retired (its file left the "
                             "image folder); it cannot be exported as a task.")
        data = {"image": _image_url(root, image_root, row["path"]), "skal_image_id": image_id,
                "skal_path": row["path"], "skal_sha256": row["sha256"]}
        task = {"data": data}
        query = batch.get(image_id)
        if query is not None:
            data.update(skal_round=latest["id"], skal_position=query["position"],
                        skal_score=query["score"], skal_guess=query["guess"],
                        skal_confidence=query["confidence"])
            if query["guess"] is not None:
                task["predictions"] = [_prediction(latest, query, size)]
        tasks.append(task)
    return tasks


def _prediction(round_row, query, size):
    return {
        "model_version": model_version(round_row),
        "score": 1.0 - query["position"] / size,
        "result": [{"from_name": FROM_NAME, "to_name": TO_NAME, "type": "choices",
                    "value": {"choices": [query["guess"]]}, "score": query["confidence"]}],
    }


def write_tasks(project, out, images=None, *, document_root=None):
    """Write :func:`export_tasks` to a JSON file (Label Studio's import format).

    The file is written only once every image checked out.

    Parameters
    ----------
    project : skal.labeling.Project
        The project whose images become tasks.
    out : str or path-like
        The JSON file.
    images : iterable of (int or str) or None
        See :func:`export_tasks`.
    document_root : str, path-like or None
        See :func:`export_tasks`.

    Returns
    -------
    n_tasks : int
        The number of tasks written.
    """
    tasks = export_tasks(project, images, document_root=document_root)
    write_atomic(os.fspath(out), json.dumps(tasks, indent=1))
    return len(tasks)


# ---------------------------------------------------------------------------- annotations in
def _load(tasks):
    if isinstance(tasks, (str, os.PathLike)):
        try:
            with open(tasks, encoding="utf-8") as f:
                return json.load(f)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{os.fspath(tasks)!r} is not a Label Studio JSON export (JSON "
                             f"error: {exc}); nothing was imported.") from None
    return tasks


def _annotator(completed_by, users):
    """``label-studio:<email>`` (or ``<id>`` when the email is not known)."""
    if isinstance(completed_by, dict):
        who = completed_by.get("email") or completed_by.get("id")
    else:
        who = users.get(completed_by, completed_by) if users else completed_by
    return f"{_SOURCE}{who}"


def _choice(annotation, where, problems, classes):
    """The one chosen class of an annotation's result, or None (a problem is recorded)."""
    result = annotation.get("result")
    if not isinstance(result, list):
        problems.append(f"{where}: 'result' must be a list; got {result!r}")
        return None
    chosen = [r for r in result if isinstance(r, dict) and r.get("from_name") == FROM_NAME
              and r.get("type") == "choices"]
    if len(chosen) != 1:
        problems.append(f"{where}: expected one '{FROM_NAME}' choices result, found "
                        f"{len(chosen)}")
        return None
    value = chosen[0].get("value")
    choices = value.get("choices") if isinstance(value, dict) else None
    if not (isinstance(choices, list) and len(choices) == 1 and isinstance(choices[0], str)):
        problems.append(f"{where}: expected exactly one chosen class; got {choices!r}")
        return None
    if choices[0] not in classes:
        problems.append(f"{where}: {choices[0]!r} is not one of the project's classes "
                        f"{classes}")
        return None
    return choices[0]


def _plan(project, tasks, users):
    """Check every task and annotation; returns (answers to consider, tasks without annotations)
    or raises one ``ValueError`` listing the problems."""
    if not isinstance(tasks, list):  # a file's content: a ValueError, as for a bad task
        raise ValueError(  # noqa: TRY004
            f"A Label Studio export must be a JSON list of tasks; got {type(tasks).__name__}. "
            "Nothing was imported.")
    classes = project.classes
    problems, planned, seen, empty, retired = [], [], {}, 0, []
    for n, task in enumerate(tasks):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            problems.append(f"task #{n}: not a Label Studio task (an object with 'data')")
            continue
        where = f"task {task.get('id', '#' + str(n))}"
        data = task["data"]
        image_id, sha = data.get("skal_image_id"), data.get("skal_sha256")
        row = project.store.image(image_id=image_id) if isinstance(image_id, int) else None
        if row is None or row["sha256"] != sha:
            problems.append(f"{where} ({data.get('skal_path', data.get('image'))!r}): not an "
                            "image of this project (its skal_image_id / skal_sha256 match none)")
            continue
        annotations = task.get("annotations", [])
        if not isinstance(annotations, list):
            problems.append(f"{where}: 'annotations' must be a list")
            continue
        empty += not annotations
        for annotation in annotations:
            if not isinstance(annotation, dict) or not isinstance(
                    annotation.get("id"), int) or isinstance(annotation.get("id"), bool):
                problems.append(f"{where}: an annotation without an integer 'id'")
                continue
            a_where = f"{where}, annotation {annotation['id']}"
            if annotation.get("was_cancelled"):
                kind, label = "skip", None
            else:
                kind, label = "label", _choice(annotation, a_where, problems, classes)
                if label is None:
                    continue
            entry = (annotation["id"], row["id"], kind, label,
                     _annotator(annotation.get("completed_by"), users),
                     str(annotation.get("updated_at") or annotation.get("created_at") or ""))
            if seen.setdefault(annotation["id"], entry[:4]) != entry[:4]:
                problems.append(f"{a_where}: appears twice with different answers")
                continue
            # a retired image takes no answers: its annotations wait in Label Studio until the
            # file is back (rescan), and a later import takes them
            (retired if row["retired_at"] is not None else planned).append(entry)
    if problems:
        shown = "\n  ".join(problems[:_MAX_PROBLEMS])
        more = (f"\n  ... and {len(problems) - _MAX_PROBLEMS} more"
                if len(problems) > _MAX_PROBLEMS else "")
        raise ValueError(f"The Label Studio export has {len(problems)} problem(s); nothing was "
                         f"imported:\n  {shown}{more}")
    return planned, empty, [e[0] for e in retired]


def imported_answers(store):
    """``{annotation id: (kind, label, annotator)}`` of the latest answer imported from each
    Label Studio annotation (undone or not)."""
    latest = {}
    for answer in store.answers():
        source = answer["source"]
        if answer["kind"] != "undo" and source.startswith(_SOURCE):
            tail = source[len(_SOURCE):]
            if tail.isdigit():
                latest[int(tail)] = (answer["kind"], answer["label"], answer["annotator"])
    return latest


def import_annotations(project, tasks, *, users=None):
    """Record Label Studio annotations as answers of ``project``.

    Parameters
    ----------
    project : skal.labeling.Project
        The project that records the answers.
    tasks : str, path-like or list of dict
        A JSON export of the Label Studio project ("JSON" format), or its tasks as loaded.
    users : dict or None
        ``{Label Studio user id: email}``, to name annotators ``label-studio:<email>``
        (without it, ``label-studio:<id>`` unless the export gives the email).

    Returns
    -------
    report : ImportReport
        The annotations added, unchanged and skipped.

    Notes
    -----
    An annotation's answer has ``source="label-studio:<annotation id>"``: an annotation already
    imported with the same answer is left alone (re-importing is safe, also after a crash half
    way), one changed in Label Studio since adds a new answer, which becomes the standing one.
    A changed annotation keeps the annotator name of its first import (a file export names
    users by id, a sync by email), so it is one person's changed answer, not a second vote.
    A cancelled (skipped) annotation is a skip. Annotations are applied oldest first (by their
    ``updated_at``), so the latest is an image's standing answer. An answer undone in skal is not
    brought back by importing its annotation again. An annotation of a retired image is left out
    (``report.retired``) and recorded by the first import after the image is back.
    """
    planned, empty, retired = _plan(project, _load(tasks), users)
    done = imported_answers(project.store)
    added, unchanged, skipped = [], [], []
    for annotation_id, image_id, kind, label, annotator, _ in sorted(
            planned, key=lambda e: (e[5], e[0])):
        before = done.get(annotation_id)
        if before is not None and before[:2] == (kind, label):
            unchanged.append(annotation_id)
            continue
        if before is not None:  # the same person changed their mind: their first name stays
            annotator = before[2]
        project.store.add_answer(image_id, kind, label, annotator=annotator,
                                 source=f"{_SOURCE}{annotation_id}")
        done[annotation_id] = (kind, label, annotator)
        added.append(annotation_id)
        if kind == "skip":
            skipped.append(annotation_id)
    return ImportReport(added, unchanged, skipped, empty, retired)


# ---------------------------------------------------------------------------- the server
def _looks_like_jwt(key):
    return re.fullmatch(r"[\w-]+\.[\w-]+\.[\w-]+", key) is not None


class LabelStudioClient:
    """A small client of Label Studio's REST API (standard library only).

    It makes the calls :func:`sync` needs; :meth:`request` makes any other.

    Parameters
    ----------
    url : str
        The server, e.g. ``http://127.0.0.1:8080``.
    api_key : str
        A legacy API token (``Authorization: Token ...``) or a personal access token (a JWT
        refresh token, exchanged for access tokens at ``/api/token/refresh``). It is sent to
        ``url`` only (never to a redirect) and never appears in a message.
    timeout : float, default=30.0
        Seconds per request.

    See Also
    --------
    sync : Push a batch and pull the annotations through a client.

    Examples
    --------
    >>> from skal.labeling.label_studio import LabelStudioClient
    >>> LabelStudioClient("http://127.0.0.1:8080", "my-secret-key")
    LabelStudioClient('http://127.0.0.1:8080', api_key='***')
    """

    def __init__(self, url, api_key, *, timeout=30.0):
        self.url = url
        self.api_key = api_key
        self.timeout = timeout
        parsed = urllib.parse.urlsplit(url) if isinstance(url, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"The 'url' parameter must be an http(s) URL of a Label Studio "
                             f"server (e.g. http://127.0.0.1:8080); got {url!r}.")
        if not isinstance(api_key, str) or not api_key.strip():
            raise ValueError(f"The 'api_key' parameter must be a Label Studio API key (or set "
                             f"{API_KEY_ENV}); got an empty one.")
        self._base = url.rstrip("/")
        self._access = None  # (access token, expiry) for a personal access token

    def __repr__(self):  # the key stays out of tracebacks and logs
        return f"LabelStudioClient({self.url!r}, api_key='***')"

    def _authorization(self):
        if not _looks_like_jwt(self.api_key):
            return f"Token {self.api_key}"
        if self._access is None or self._access[1] < time.monotonic():
            token = self._send("POST", "/api/token/refresh", {"refresh": self.api_key},
                               auth=None)["access"]
            self._access = (token, time.monotonic() + 240)  # access tokens live 5 minutes
        return f"Bearer {self._access[0]}"

    def request(self, method, path, body=None, params=None):
        """One API call.

        Parameters
        ----------
        method : str
            ``"GET"``, ``"POST"``, ``"PATCH"``, ``"DELETE"``, ...
        path : str
            E.g. ``"/api/projects"``.
        body : object or None
            Sent as JSON.
        params : dict or None
            The query string.

        Returns
        -------
        answer : object
            The decoded JSON answer (None for an empty one).
        """
        return self._send(method, path, body, params, auth=self._authorization())

    def _send(self, method, path, body=None, params=None, *, auth):
        url = self._base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Accept", "application/json")
        if data is not None:
            req.add_header("Content-Type", "application/json")
        if auth is not None:
            req.add_unredirected_header("Authorization", auth)
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            detail = exc.read(2000).decode("utf-8", "replace").strip().replace(
                self.api_key, "***")  # (a server that echoes the key)
            hint = (" (check the API key; with a legacy token the server needs legacy tokens "
                    "enabled)" if exc.code in (401, 403) else "")
            raise LabelStudioError(f"Label Studio answered {exc.code} {exc.reason} to {method} "
                                   f"{path}{hint}: {detail[:500]}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise LabelStudioError(f"Could not reach Label Studio at {self.url}: "
                                   f"{reason}") from None
        if not raw:
            return None
        try:
            return json.loads(raw)
        except ValueError:
            raise LabelStudioError(f"Label Studio's answer to {method} {path} is not JSON (is "
                                   f"{self.url} a Label Studio server?)") from None

    def _pages(self, path, key, params=None):
        page, items = 1, []
        while True:
            answer = self.request("GET", path, params=dict(params or {}, page=page,
                                                           page_size=100))
            batch = answer if isinstance(answer, list) else answer.get(key) or []
            items.extend(batch)
            more = isinstance(answer, dict) and (answer.get("next") or (
                "total" in answer and len(items) < answer["total"]))
            if not batch or not more:
                return items
            page += 1
            if page > _MAX_PAGES:  # a server that never stops saying "next"
                raise LabelStudioError(f"Label Studio's {path} gave more than {_MAX_PAGES} "
                                       "pages; stopped.")

    # the calls sync needs
    def projects(self):
        """Every project the key's user can see.

        Returns
        -------
        projects : list of dict
            Label Studio's project records (``id``, ``title``, ``label_config``, ...).
        """
        return self._pages("/api/projects", "results")

    def users(self):
        """The users of the organisation.

        Returns
        -------
        emails : dict
            ``{user id: email}``.
        """
        answer = self.request("GET", "/api/users")
        rows = answer if isinstance(answer, list) else answer.get("results", [])
        return {u["id"]: u.get("email") or u["id"] for u in rows}

    def tasks(self, project_id):
        """Every task of a project with its annotations and predictions.

        Parameters
        ----------
        project_id : int
            The Label Studio project.

        Returns
        -------
        tasks : list of dict
            Label Studio's task records (``id``, ``data``, ``annotations``, ``predictions``).
        """
        return self._pages("/api/tasks", "tasks", {"project": project_id, "fields": "all"})


def _find_or_create(client, title, config):
    mine = [p for p in client.projects() if p.get("title") == title]
    if len(mine) > 1:
        raise LabelStudioError(f"Label Studio has {len(mine)} projects titled {title!r} "
                               f"(ids {[p['id'] for p in mine]}); give one another title.")
    if mine:
        project = mine[0]
        if project.get("label_config") != config:
            client.request("PATCH", f"/api/projects/{project['id']}", {"label_config": config})
        return project["id"], False
    project = client.request("POST", "/api/projects", {
        "title": title, "label_config": config,
        "description": "Tasks and predictions pushed by skal label studio sync."})
    return project["id"], True


def _connect_storage(client, project_id, image_root):
    storages = client.request("GET", "/api/storages/localfiles", params={"project": project_id})
    if not any(s.get("path") == image_root for s in storages or []):
        client.request("POST", "/api/storages/localfiles", {
            "project": project_id, "path": image_root, "title": "skal image folder",
            "use_blob_urls": True})


def sync(project, client, *, title=None, document_root=None, images=None, push=True,
         pull=True):
    """Bring a Label Studio project up to date with a skal project, both ways.

    Creates the Label Studio project titled ``title`` if there is none (or updates its label
    config to the classes), connects the image folder as local-files storage (the server needs
    ``LOCAL_FILES_SERVING_ENABLED=true`` and the image folder below its
    ``LOCAL_FILES_DOCUMENT_ROOT``), creates a task for each image of the current batch that has
    none, gives every batch task the current round's prediction and removes skal's predictions
    of older rounds, makes the current round the project's ``model_version`` (so "Prediction
    score" follows the current ranking; tasks outside the batch have none and sort last), brings
    the ``skal_*`` data of the tasks up to date, then imports every annotation
    (:func:`import_annotations`).

    Parameters
    ----------
    project : skal.labeling.Project
        The skal project.
    client : LabelStudioClient
        The Label Studio server.
    title : str or None
        None: ``skal: <project folder name>``.
    document_root : str, path-like or None
        See :func:`export_tasks`.
    images : iterable of (int or str) or None
        The images to push (see :func:`export_tasks`); None: the current batch.
    push : bool, default=True
        Create the project, its storage, the tasks and predictions. False: only pull, from the
        existing project titled ``title``.
    pull : bool, default=True
        Import the annotations.

    Returns
    -------
    report : SyncReport
        What was created, pushed, removed and imported.
    """
    title = title or f"skal: {os.path.basename(project.path)}"
    # checks before any call
    tasks_out = export_tasks(project, images, document_root=document_root) if push else []
    if push:
        project_id, created = _find_or_create(client, title, label_config(project.classes))
        _connect_storage(client, project_id, os.path.realpath(project.image_root))
    else:
        found = [p["id"] for p in client.projects() if p.get("title") == title]
        if len(found) != 1:
            raise LabelStudioError(f"Label Studio has {len(found)} projects titled {title!r}; "
                                   "expected one (push first, or give --title).")
        project_id, created = found[0], False
    existing = client.tasks(project_id)
    users = client.users() if pull else None
    # the whole export is checked first: a bad annotation (or task) stops everything
    _plan(project, existing, users) if pull else _plan(project, [
        dict(t, annotations=[]) if isinstance(t, dict) else t for t in existing], None)
    new, added, removed, updated = [], 0, 0, 0
    if push:
        by_image = {t["data"].get("skal_image_id"): t for t in existing}
        new = [t for t in tasks_out if t["data"]["skal_image_id"] not in by_image]
        if new:  # in skal's order: Label Studio's default (sequential) stream follows it
            client.request("POST", f"/api/projects/{project_id}/import", new)
        tasks = client.tasks(project_id) if new else existing
        # the data of the other tasks (their batch columns) is brought up to date too
        others = [i for i in by_image if isinstance(i, int) and i not in
                  {t["data"]["skal_image_id"] for t in tasks_out}
                  and (project.store.image(image_id=i) or {"retired_at": 1})["retired_at"] is None]
        wanted = tasks_out + export_tasks(project, others, document_root=document_root)
        added, removed, updated = _push_predictions(project, client, project_id, tasks, wanted)
        added += sum(len(t.get("predictions", [])) for t in new)  # (imported with their task)
    imported = (import_annotations(project, client.tasks(project_id), users=users) if pull
                else ImportReport([], [], [], 0, []))
    return SyncReport(project_id, created, len(new), updated, added, removed, imported)


def _push_predictions(project, client, project_id, tasks, wanted):
    """Give each task the data and the prediction of ``wanted`` (tasks of
    :func:`export_tasks`), remove skal's predictions of older rounds, and make the current
    round's the project's ``model_version`` (Label Studio's "Prediction score" counts only
    that version's); returns (predictions added, removed, tasks whose data was updated)."""
    latest = project.store.latest_done_round()
    current = model_version(latest) if latest else None
    if current is not None:
        client.request("PATCH", f"/api/projects/{project_id}", {"model_version": current})
    wanted = {t["data"]["skal_image_id"]: t for t in wanted}
    added = removed = updated = 0
    for task in tasks:
        want = wanted.get(task["data"].get("skal_image_id"))
        if want is None:
            continue
        if task["data"] != want["data"]:
            client.request("PATCH", f"/api/tasks/{task['id']}", {"data": want["data"]})
            updated += 1
        predictions = [p if isinstance(p, dict) else {"id": p}
                       for p in task.get("predictions") or []]
        for p in predictions:
            version = p.get("model_version") or ""
            if version.startswith(_MODEL_PREFIX) and version != current:
                client.request("DELETE", f"/api/predictions/{p['id']}")
                removed += 1
        if any(p.get("model_version") == current for p in predictions):
            continue
        for p in want.get("predictions", []):
            client.request("POST", "/api/predictions", dict(p, task=task["id"]))
            added += 1
    return added, removed, updated
