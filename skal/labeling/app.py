"""The labelling web page: a Starlette app served by uvicorn (``skal label serve``).

Routes: ``GET /`` (the page), ``GET /api/state`` (batch, counts, job, learning curve),
``POST /api/answers`` (label or skip), ``POST /api/undo``, ``POST /api/train``, ``GET /images/PATH``
(only images registered in the project) and ``/static/`` (the page's script and style).

An answer is ``{"image_id", "label" | "skip": true, "annotator", "client_id", "view_ms"}``, the
last three optional: ``client_id`` is the page's id of the answer (8-64 letters, digits, ``-``,
``_``), so that an answer sent again by the same annotator, after its acknowledgement was lost,
is stored once (the reply carries the first answer's id); ``view_ms`` is the time from showing the
image to answering it, an integer of milliseconds in ``[0, 86400000]``.

Several annotators: ``POST /api/my-items`` gives the sender the items of the batch assigned to
them; an annotator registered with ``skal label annotator add`` is known by their token (header
``X-Skal-Annotator-Token``, or the ``skal_annotator`` cookie that ``/?annotator_token=TOKEN``
sets; it also opens a server that needs the server's token), and their name is refused (403)
without it; ``POST /api/undo`` undoes only the sender's own answers (409 on an image only others
answered). See ``docs/labeling.md``.

Security: the server binds to 127.0.0.1 unless told otherwise, and then checks the ``Host`` header
(a page elsewhere cannot reach it through DNS rebinding). On any other address a token is required
(header ``X-Skal-Token``, cookie ``skal_token``, or ``?token=`` once, which sets the cookie):
without it every route answers 401. POST bodies must be JSON (a cross-site form cannot send
them without a CORS preflight, which this server never grants), at most ``max_body`` bytes (413),
and strictly typed (422 with a message). The page's Content-Security-Policy allows only its own
scripts, styles and images, and ``Cross-Origin-Resource-Policy: same-origin`` keeps other sites'
pages from loading its images. A connection must send each request's headers within
``header_timeout`` seconds and its body within ``body_timeout`` (else it is closed, or gets 408),
so half-open connections cannot hold the server.
"""

import asyncio
import hmac
import http.cookies
import json
import os
import re
import secrets
import socket
import threading
import time
import urllib.parse

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from .batch_report import load_report as load_batch_report
from .diagnostics import load_report
from .project import Project
from .service import TrainingService
from .settings import available_strategies, check_name, cost_settings
from .store import AnnotatorError, ImageRetiredError, NotYourAnswerError

__all__ = ["create_app", "start_server", "make_server", "class_keys", "page_url",
           "LOOPBACK_HOSTS"]

_HERE = os.path.dirname(os.path.abspath(__file__))
#: Addresses the server may bind to without a token.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
TOKEN_HEADER = "x-skal-token"
TOKEN_COOKIE = "skal_token"
#: An annotator's token (``skal label annotator add``): a header, or the cookie that
#: ``/?annotator_token=TOKEN`` sets.
ANNOTATOR_HEADER = "x-skal-annotator-token"
ANNOTATOR_COOKIE = "skal_annotator"
DEFAULT_MAX_BODY = 64 * 1024
#: Seconds a connection has to send a request's headers (from connecting, or from the previous
#: response) and a request's body.
DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_BODY_TIMEOUT = 30.0
#: Addresses that mean "every address of this machine".
WILDCARD_HOSTS = ("0.0.0.0", "::", "")
# connections at once before uvicorn answers 503; half-open ones are closed after header_timeout
_LIMIT_CONCURRENCY = 512
_SQL_INT = range(-(2**63), 2**63)
_IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg",
                ".webp": "image/webp"}
_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'")


def class_keys(classes):
    """Return the key that labels each class.

    A class's key is its own name when every class name is one distinct character (``0``-``9``
    for digits), else ``1``-``9``, ``0`` for the first ten classes.

    Parameters
    ----------
    classes : list of str
        The project's class names.

    Returns
    -------
    list of str or None
        One key per class (None beyond the tenth class).
    """
    if all(len(c) == 1 and c != " " for c in classes) and len(set(classes)) == len(classes):
        return list(classes)
    return [str((i + 1) % 10) if i < 10 else None for i in range(len(classes))]


# ---------------------------------------------------------------------------- middleware
class _Guard:
    """Pure ASGI middleware: the token check, the body size bound and the security headers."""

    def __init__(self, app, token=None, max_body=DEFAULT_MAX_BODY,
                 body_timeout=DEFAULT_BODY_TIMEOUT, annotator_of=None):
        self.app = app
        self.token = token
        self.max_body = max_body
        self.body_timeout = body_timeout
        self.annotator_of = annotator_of  # an annotator token -> their name, or None

    def _has_token(self, scope):
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope.get("headers", [])}
        candidates = [headers.get(TOKEN_HEADER, "")]
        cookie = http.cookies.SimpleCookie()
        try:
            cookie.load(headers.get("cookie", ""))
        except http.cookies.CookieError:
            pass
        if TOKEN_COOKIE in cookie:
            candidates.append(cookie[TOKEN_COOKIE].value)
        if any(hmac.compare_digest(c.encode(), self.token.encode()) for c in candidates if c):
            return True
        # an annotator's own token opens the server too (a team member needs only theirs)
        token = _annotator_token(scope)
        return bool(token and self.annotator_of is not None and self.annotator_of(token))

    async def _annotator_link(self, scope, receive, send):
        """``GET /?annotator_token=TOKEN``: a valid token becomes the ``skal_annotator`` cookie
        (303 to the same path, without the token); another gets 401. False when the request
        has no such parameter."""
        if scope["method"] != "GET" or self.annotator_of is None:
            return False
        query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
        given = query.get("annotator_token", [""])[0]
        if not given:
            return False
        if self.annotator_of(given):
            response = RedirectResponse(scope.get("path", "/") or "/", status_code=303)
            response.set_cookie(ANNOTATOR_COOKIE, given, httponly=True, samesite="strict")
        else:
            response = PlainTextResponse(
                "401 Unauthorized: this annotator token is not valid here (it was replaced or "
                "removed: ask for a new one, 'skal label annotator add NAME --replace').",
                status_code=401)
        await response(scope, receive, send)
        return True

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers += [(b"x-content-type-options", b"nosniff"),
                            (b"referrer-policy", b"no-referrer"),
                            (b"x-frame-options", b"DENY"),
                            (b"content-security-policy", _CSP.encode()),
                            (b"cross-origin-resource-policy", b"same-origin"),
                            (b"cache-control", b"no-store")]
                message = dict(message, headers=headers)
            await send(message)

        if await self._annotator_link(scope, receive, send_with_headers):
            return
        if self.token is not None and not self._has_token(scope):
            query = urllib.parse.parse_qs(scope.get("query_string", b"").decode("latin-1"))
            given = query.get("token", [""])[0]
            if scope["method"] == "GET" and given and hmac.compare_digest(
                    given.encode(), self.token.encode()):
                # the printed URL: set the cookie, then drop the token from the address bar
                response = RedirectResponse(scope.get("path", "/") or "/", status_code=303)
                response.set_cookie(TOKEN_COOKIE, self.token, httponly=True, samesite="strict")
            else:
                response = PlainTextResponse(
                    "401 Unauthorized: this server needs its token (the URL printed when it "
                    "started, or the X-Skal-Token header).", status_code=401)
            await response(scope, receive, send_with_headers)
            return

        if scope["method"] in ("POST", "PUT", "PATCH", "DELETE"):
            try:
                body, too_big = await asyncio.wait_for(self._read_body(scope, receive),
                                                       self.body_timeout)
            except asyncio.TimeoutError:
                await PlainTextResponse(
                    f"408 Request Timeout: the request body did not arrive within "
                    f"{self.body_timeout:g} s.", status_code=408, headers={"connection": "close"}
                )(scope, receive, send_with_headers)
                return
            if too_big:
                await PlainTextResponse(
                    f"413 Request body larger than {self.max_body} bytes.", status_code=413
                )(scope, receive, send_with_headers)
                return
            replayed = False

            async def receive_body():
                nonlocal replayed
                if not replayed:
                    replayed = True
                    return {"type": "http.request", "body": body, "more_body": False}
                return await receive()

            await self.app(scope, receive_body, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    async def _read_body(self, scope, receive):
        """The whole request body, reading no more than ``max_body + 1`` bytes of it."""
        for key, value in scope.get("headers", []):
            if key.lower() == b"content-length":
                try:
                    if int(value) > self.max_body:
                        return b"", True
                except ValueError:
                    return b"", True
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                return b"", True
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks), False


# ---------------------------------------------------------------------------- handlers
def _error(status, detail):
    return JSONResponse({"detail": detail}, status_code=status)


async def _json_body(request):
    """The JSON object of a POST, or an error response (415 / 400)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        return None, _error(415, "Send the request body as application/json.")
    try:
        data = json.loads(await request.body() or b"{}")
    except RecursionError:
        return None, _error(400, "The request body is not valid JSON here: it is nested too "
                                 "deeply (expected a flat JSON object).")
    except (ValueError, UnicodeDecodeError):  # (an integer of over 4300 digits is one)
        return None, _error(400, "The request body is not valid JSON.")
    if not isinstance(data, dict):
        return None, _error(400, "The request body must be a JSON object.")
    return data, None


def _shown(value):
    """A value for a message: its repr, shortened, and its JSON type."""
    text = repr(value)
    if len(text) > 40:
        text = text[:37] + "..."
    kind = {bool: "a boolean", int: "an integer", float: "a number", str: "a string",
            list: "an array", dict: "an object", type(None): "null"}.get(type(value), "a value")
    return f"{text} ({kind})"


#: The longest time an answer's ``view_ms`` may give: a day, in milliseconds.
MAX_VIEW_MS = 86_400_000
_CLIENT_ID = re.compile(r"[A-Za-z0-9_-]{8,64}")


def _view_ms(data):
    """The ``view_ms`` field: absent or null (None), else an integer of milliseconds in
    ``[0, MAX_VIEW_MS]`` (ValueError)."""
    value = data.get("view_ms")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_VIEW_MS:
        raise ValueError(f"'view_ms' must be an integer of milliseconds in the range "
                         f"[0, {MAX_VIEW_MS}] (or null); got {_shown(value)}.")
    return value


def _client_id(data):
    """The ``client_id`` field (the page's id of an answer, so that a re-sent answer is stored
    once): absent or null (None), else 8 to 64 letters, digits, ``-`` or ``_`` (ValueError)."""
    value = data.get("client_id")
    if value is None:
        return None
    if not isinstance(value, str) or not _CLIENT_ID.fullmatch(value):
        raise ValueError("'client_id' must be a string of 8 to 64 letters, digits, '-' or '_' "
                         f"(or null); got {_shown(value)}.")
    return value


def _annotator_token(scope):
    """The annotator token a request carries (header, else cookie), or None."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1")
               for k, v in scope.get("headers", [])}
    if headers.get(ANNOTATOR_HEADER):
        return headers[ANNOTATOR_HEADER]
    cookie = http.cookies.SimpleCookie()
    try:
        cookie.load(headers.get("cookie", ""))
    except http.cookies.CookieError:
        return None
    return cookie[ANNOTATOR_COOKIE].value if ANNOTATOR_COOKIE in cookie else None


class _Refused(Exception):
    """An answer, undo or item request in a name the sender may not use (status, message)."""


def _annotator(data):
    """The ``annotator`` field: absent or null (``"web"``), else a valid name (ValueError)."""
    name = data.get("annotator")
    if name is None:
        return "web"
    if not isinstance(name, str):
        raise ValueError(f"'annotator' must be a string (or null); got {_shown(name)}.")
    check_name(name, "annotator")
    return name


def _details(item):
    """An item's calibrated confidence and expected seconds (:mod:`.batch_report`)."""
    return {"calibrated_confidence": item.calibrated_confidence, "calibrated": item.calibrated,
            "expected_seconds": item.expected_seconds}


def _query_summary(project_path, round_id):
    """A round's batch report without its per-image part (the items carry it), or None."""
    report = load_batch_report(project_path, round_id)
    return None if report is None else {k: v for k, v in report.items() if k != "items"}


class _Handlers:
    def __init__(self, project, service, templates):
        self.project = project
        self.service = service
        self.templates = templates

    def _who(self, request, data):
        """The sender's annotator name: their token's (a different ``annotator`` in the body is
        refused), else the body's name unless it is registered with a token (refused); raises
        ``_Refused`` (403) or ``ValueError`` (422)."""
        token = _annotator_token(request.scope)
        store = self.project.store
        if token:
            name = store.annotator_for_token(token)
            if name is None:
                raise _Refused("The annotator token sent is not valid here (it was replaced or "
                               "removed); ask for a new one ('skal label annotator add NAME "
                               "--replace').")
            asked = data.get("annotator")
            if asked is not None and asked != name:
                raise _Refused(f"This annotator token is {name!r}'s: it cannot act as "
                               f"{_shown(asked)}.")
            return name
        name = _annotator(data)
        if store.is_registered(name):
            raise _Refused(
                f"The annotator {name!r} is registered with a token: open the address that "
                "'skal label annotator add' printed (it sets the skal_annotator cookie) or send "
                "the token as the X-Skal-Annotator-Token header.")
        return name

    def _state(self):
        project = self.project
        classes = project.classes
        batch = project.next_batch()
        latest = project.store.latest_done_round()
        items = [{
            "image_id": it.image_id, "path": it.path,
            "url": "/images/" + urllib.parse.quote(it.path),
            "position": it.position, "score": it.score, "guess": it.guess,
            "confidence": it.confidence, "answer": it.answer, "label": it.label,
            **_details(it),
        } for it in batch]
        answered = sum(it["answer"] is not None for it in items)
        config = project.config
        return {
            "classes": [{"name": c, "key": k} for c, k in zip(classes, class_keys(classes))],
            "round": None if latest is None else {
                "id": latest["id"], "strategy": latest["strategy"],
                "accuracy": latest["accuracy"], "n_labeled": latest["n_labeled"],
                # when to stop and calibration (skal.labeling.diagnostics), None without one
                "stopping": load_report(project.path, latest["id"]),
                # cost-aware or not, seconds per image, temperature (skal.labeling.batch_report)
                "query": _query_summary(project.path, latest["id"])},
            "batch": items,
            "progress": {"answered": answered, "total": len(items)},
            "counts": project.label_counts(),
            "n_images": len(project.store.images()),
            "n_labeled": sum(project.label_counts().values()),
            "job": self.service.status(),
            "curve": project.learning_curve(),
            "strategies": available_strategies(),
            "strategy": config["strategy"],
            "cost_aware": bool(cost_settings(config)[0]),
            # several annotators: agreement of the items answered by 2 or more, kappas
            "agreement": project.agreement(),
        }

    async def page(self, request):
        project = self.project
        classes = project.classes
        html = self.templates.get_template("index.html").render(
            project_name=os.path.basename(project.path),
            classes=list(zip(classes, class_keys(classes))),
            strategies=available_strategies(), strategy=project.config["strategy"],
            cost_aware=bool(cost_settings(project.config)[0]),
        )
        return HTMLResponse(html)

    async def state(self, request):
        return JSONResponse(self._state())

    async def answer(self, request):
        data, err = await _json_body(request)
        if err:
            return err
        image_id = data.get("image_id")
        if isinstance(image_id, bool) or not isinstance(image_id, int):
            return _error(422, f"'image_id' must be an integer; got {_shown(image_id)}.")
        if image_id not in _SQL_INT:
            return _error(422, f"'image_id' must be an image's id, an integer in [-2**63, "
                               f"2**63); got {_shown(image_id)}.")
        skip = data.get("skip")
        if skip is not None and not isinstance(skip, bool):
            return _error(422, f"'skip' must be true, false or null; got {_shown(skip)}.")
        label = data.get("label")
        if skip and label is not None:
            return _error(422, "Send either a 'label' or 'skip': true, not both (the label "
                               f"{_shown(label)} came with skip: true).")
        try:
            annotator = self._who(request, data)
            view_ms = _view_ms(data)
            client_id = _client_id(data)
        except _Refused as exc:
            return _error(403, str(exc))
        except ValueError as exc:
            return _error(422, str(exc))
        row = self.project.store.image(image_id=image_id)
        if row is None:
            return _error(404, f"There is no image with id {image_id} in this project.")
        if not skip and (not isinstance(label, str) or label not in self.project.classes):
            return _error(422, f"'label' must be one of the project's classes "
                               f"{self.project.classes} (or send 'skip': true); got "
                               f"{_shown(label)}.")
        # an answer sent again with its client_id (its acknowledgement was lost) is stored once
        # (the store looks it up and inserts in one transaction); its first id comes back
        call = self.project.skip if skip else self.project.label
        extra = {"view_ms": view_ms, "client_id": client_id}
        try:
            if skip:
                answer_id = call(image_id, annotator=annotator, source="web", **extra)
            else:
                answer_id = call(image_id, label, annotator=annotator, source="web", **extra)
        except ImageRetiredError as exc:
            return _error(409, str(exc))
        except AnnotatorError as exc:
            return _error(403, str(exc))
        except ValueError as exc:
            return _error(422, str(exc))
        return JSONResponse({"answer_id": answer_id, "image_id": image_id})

    async def undo(self, request):
        data, err = await _json_body(request)
        if err:
            return err
        try:
            annotator = self._who(request, data)
        except _Refused as exc:
            return _error(403, str(exc))
        except ValueError as exc:
            return _error(422, str(exc))
        target = data.get("image_id")
        if target is not None and (isinstance(target, bool) or not isinstance(target, int)
                                   or target not in _SQL_INT):
            return _error(422, f"'image_id' must be an image's id (an integer) or null; got "
                               f"{_shown(target)}.")
        if target is not None and self.project.store.image(image_id=target) is None:
            return _error(404, f"There is no image with id {target} in this project.")
        try:
            image_id = self.project.undo(annotator=annotator, image=target, source="web")
        except NotYourAnswerError as exc:
            return _error(409, str(exc))
        return JSONResponse({"image_id": image_id})

    async def my_items(self, request):
        data, err = await _json_body(request)
        if err:
            return err
        try:
            annotator = self._who(request, data)
        except _Refused as exc:
            return _error(403, str(exc))
        except ValueError as exc:
            return _error(422, str(exc))
        items = self.project.my_items(annotator)
        n_votes = {}
        for r in self.project.store.votes():
            n_votes[r["image_id"]] = n_votes.get(r["image_id"], 0) + 1
        latest = self.project.store.latest_done_round()
        return JSONResponse({
            "annotator": annotator,
            "round": None if latest is None else latest["id"],
            "items": [{
                "image_id": it.image_id, "path": it.path,
                "url": "/images/" + urllib.parse.quote(it.path),
                "position": it.position, "score": it.score, "guess": it.guess,
                "confidence": it.confidence, "mine": it.answer, "label": it.label,
                "n_votes": n_votes.get(it.image_id, 0), **_details(it),
            } for it in items],
            "progress": {"answered": sum(it.answer is not None for it in items),
                         "total": len(items)},
        })

    async def train(self, request):
        data, err = await _json_body(request)
        if err:
            return err
        strategy = data.get("strategy")
        if strategy is not None and (not isinstance(strategy, str)
                                     or strategy not in available_strategies()):
            return _error(422, f"Unknown strategy {_shown(strategy)}; expected one of "
                               f"{available_strategies()} (or null for the project's).")
        cost_aware = data.get("cost_aware")
        if cost_aware is not None and not isinstance(cost_aware, bool):
            return _error(422, f"'cost_aware' must be true, false or null (the project's "
                               f"setting); got {_shown(cost_aware)}.")
        try:
            self.service.start(strategy, cost_aware)
        except RuntimeError as exc:
            return _error(409, str(exc))
        except ValueError as exc:
            return _error(422, str(exc))
        return JSONResponse({"job": self.service.status()}, status_code=202)

    async def job(self, request):
        return JSONResponse(self.service.status())

    async def image(self, request):
        rel = request.path_params["path"]
        full = self.project.image_path(path=rel)  # None unless registered and inside the folder
        ext = os.path.splitext(rel)[1].lower()
        if full is None or ext not in _IMAGE_TYPES:
            return PlainTextResponse("404 Not Found", status_code=404)
        return FileResponse(full, media_type=_IMAGE_TYPES[ext])


def _templates():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(os.path.join(_HERE, "templates")),
        autoescape=True,  # every {{ }} is HTML-escaped: a class named <script> shows as text
    )


def create_app(project, *, token=None, allowed_hosts=None, max_body=DEFAULT_MAX_BODY,
               service=None, body_timeout=DEFAULT_BODY_TIMEOUT):
    """Build the labelling web app of a project.

    Parameters
    ----------
    project : Project or str
        The project or its folder.
    token : str or None, default=None
        When given, every request must carry it (else 401).
    allowed_hosts : list of str or None, default=None
        Accepted ``Host`` header names; None accepts any (use it together with a token).
    max_body : int, default=65536
        Largest accepted request body in bytes (413 beyond).
    service : TrainingService or None
        Runs the rounds; one is made when None.
    body_timeout : float, default=30.0
        Seconds a POST body may take to arrive (408 beyond).

    Returns
    -------
    app : starlette.applications.Starlette
        With ``app.state.project`` and ``app.state.service``.
    """
    if not isinstance(project, Project):
        project = Project(project)
    service = service or TrainingService(project)
    h = _Handlers(project, service, _templates())
    routes = [
        Route("/", h.page),
        Route("/api/state", h.state),
        Route("/api/job", h.job),
        Route("/api/answers", h.answer, methods=["POST"]),
        Route("/api/undo", h.undo, methods=["POST"]),
        Route("/api/my-items", h.my_items, methods=["POST"]),
        Route("/api/train", h.train, methods=["POST"]),
        Route("/images/{path:path}", h.image),
        Mount("/static", StaticFiles(directory=os.path.join(_HERE, "static")), name="static"),
    ]
    middleware = [Middleware(_Guard, token=token, max_body=max_body,
                             body_timeout=body_timeout,
                             annotator_of=project.store.annotator_for_token)]
    if allowed_hosts is not None:
        middleware.insert(0, Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    app = Starlette(routes=routes, middleware=middleware)
    app.state.project = project
    app.state.service = service
    return app


# ---------------------------------------------------------------------------- serving
def page_url(host, port, token=None):
    """Return the address of the page for a server bound to ``host``.

    For a wildcard address (``0.0.0.0``, ``::``) the address names this machine, which the other
    machines may have to replace by its IP address.

    Parameters
    ----------
    host : str
        The bound address.
    port : int
        The bound port.
    token : str or None
        Added as ``?token=...``.

    Returns
    -------
    url : str
        The page's address.
    """
    if host in WILDCARD_HOSTS:
        host = socket.gethostname() or "localhost"
    shown = f"[{host}]" if ":" in host else host
    url = f"http://{shown}:{port}/"
    if token:
        url += "?token=" + urllib.parse.quote(token)
    return url


def _bounded_protocol(header_timeout):
    """uvicorn's h11 protocol with a deadline for request headers: a connection that has not
    sent a whole request head ``header_timeout`` seconds after connecting (or after its previous
    response) is closed, so half-open connections cannot pile up up to the concurrency limit."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class BoundedH11Protocol(H11Protocol):
        _header_timer = None

        def _arm(self):
            self._disarm()
            self._header_timer = self.loop.call_later(header_timeout, self._header_timeout)

        def _disarm(self):
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _waiting_for_head(self):
            return self.cycle is None or self.cycle.response_complete

        def _header_timeout(self):
            self._header_timer = None
            if self._waiting_for_head() and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport):
            super().connection_made(transport)
            self._arm()

        def data_received(self, data):
            cycle = self.cycle
            super().data_received(data)
            if self.cycle is not cycle:  # a request head arrived
                self._disarm()

        def on_response_complete(self):
            super().on_response_complete()
            if self._waiting_for_head() and not self.transport.is_closing():
                self._arm()  # the next request's head, on a kept-alive connection

        def connection_lost(self, exc):
            self._disarm()
            super().connection_lost(exc)

    return BoundedH11Protocol


def make_server(project, host="127.0.0.1", port=8000, *, token=None, require_token=False,
                max_body=DEFAULT_MAX_BODY, header_timeout=DEFAULT_HEADER_TIMEOUT,
                body_timeout=DEFAULT_BODY_TIMEOUT):
    """Build a uvicorn server for a project, bound now (``port=0`` picks a free port).

    A token is required on any address but 127.0.0.1 / localhost / ::1 (and there when
    ``require_token``); one is generated when none is given. A connection that has not sent a
    request's headers within ``header_timeout`` seconds (of connecting, or of its previous
    response) is closed; a POST body that takes longer than ``body_timeout`` gets 408.

    Parameters
    ----------
    project : skal.labeling.Project or str
        The project (or its folder).
    host : str, default="127.0.0.1"
        The address to bind.
    port : int, default=8000
        The port to bind; 0 picks a free one.
    token : str or None, default=None
        The access token; None generates one where one is required.
    require_token : bool, default=False
        Require a token on a loopback address too.
    max_body : int, default=65536
        The largest request body accepted, in bytes.
    header_timeout : float, default=10.0
        Seconds a connection has to send a request's headers.
    body_timeout : float, default=30.0
        Seconds a request has to send its body.

    Returns
    -------
    server : uvicorn.Server
        The server, not running yet.
    sock : socket.socket
        The bound socket; pass it as ``server.run(sockets=[sock])``.
    url : str
        The address of the page (with ``?token=...`` when a token is needed); for a wildcard
        address it names this machine (see :func:`page_url`).
    token : str or None
        The token, or None on a loopback address without ``require_token``.

    Raises
    ------
    ValueError
        For a timeout that is not a number of seconds > 0.
    """
    import uvicorn

    for name, value in (("header_timeout", header_timeout), ("body_timeout", body_timeout)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ValueError(f"{name} must be a number of seconds > 0; got {value!r}.")
    if host not in LOOPBACK_HOSTS or require_token:
        token = token or secrets.token_urlsafe(32)
        allowed = None  # reached by other names; the token guards it
    else:
        token = token if token else None
        allowed = ["127.0.0.1", "localhost", "::1", "[::1]"]
    app = create_app(project, token=token, allowed_hosts=allowed, max_body=max_body,
                     body_timeout=body_timeout)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.set_inheritable(True)
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", timeout_keep_alive=5,
                            limit_concurrency=_LIMIT_CONCURRENCY,
                            http=_bounded_protocol(float(header_timeout)),
                            h11_max_incomplete_event_size=16 * 1024)
    server = uvicorn.Server(config)
    url = page_url(host, bound_port, token)
    server.skal_app = app
    return server, sock, url, token


class _Running:
    """A server running in a background thread (see :func:`start_server`)."""

    def __init__(self, server, sock, url, token, thread):
        self.server, self.sock, self.url, self.token, self.thread = (
            server, sock, url, token, thread)
        bound = sock.getsockname()
        if bound[0] in WILDCARD_HOSTS:  # reach it on loopback from here
            loopback = "[::1]" if sock.family == socket.AF_INET6 else "127.0.0.1"
            self.base = f"http://{loopback}:{bound[1]}"
        else:
            parsed = urllib.parse.urlsplit(url)
            self.base = f"{parsed.scheme}://{parsed.netloc}"
        self.app = server.skal_app
        self.project = self.app.state.project
        self.service = self.app.state.service

    def stop(self, timeout=10):
        self.server.should_exit = True
        self.thread.join(timeout)
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def start_server(project, host="127.0.0.1", port=0, *, timeout=10, **kwargs):
    """Serve a project from a background thread (notebooks, tests).

    Parameters
    ----------
    project : skal.labeling.Project or str
        The project (or its folder).
    host : str, default="127.0.0.1"
        The address to bind.
    port : int, default=0
        The port to bind; 0 picks a free one.
    timeout : float, default=10
        Seconds to wait at most for the server to start.
    **kwargs : dict
        The other parameters of :func:`make_server`.

    Returns
    -------
    handle
        With ``url``, ``base``, ``token``, ``project``, ``service`` and ``stop()``; also a context
        manager that stops the server.
    """
    server, sock, url, token = make_server(project, host, port, **kwargs)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                              name="skal-label-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            raise RuntimeError(f"The labelling server did not start within {timeout} s.")
        time.sleep(0.02)
    return _Running(server, sock, url, token, thread)
