"""Shared helpers of the labelling tests: digit PNGs on disk and a `skal label serve` subprocess."""

import os
import re
import subprocess
import sys
import time
import urllib.parse

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIGIT_CLASSES = [str(d) for d in range(10)]


def write_digit_pngs(folder, n, size=32, start=0):
    """``n`` of scikit-learn's 8x8 digits as ``size`` x ``size`` gray PNGs named
    ``d0007_3.png`` (index, true label); returns ``{file name: label}``."""
    from PIL import Image
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    os.makedirs(folder, exist_ok=True)
    truth = {}
    for i in range(start, start + n):
        pixels = (X[i].reshape(8, 8) * (255 / 16)).astype(np.uint8)  # (64,) -> (8, 8)
        image = Image.fromarray(pixels).resize((size, size), Image.Resampling.NEAREST)
        name = f"d{i:04d}_{y[i]}.png"
        image.save(os.path.join(folder, name))
        truth[name] = str(y[i])
    return truth


def true_label(path):
    """The digit in a file name made by :func:`write_digit_pngs`."""
    return re.search(r"_(\d)\.png$", path).group(1)


#: A head-recipe project small enough for tests (a 1-epoch encoder of width 2 on 8x8 digits).
HEAD_SETTINGS = {"recipe": "ssl-head", "encoder_epochs": 1, "encoder_width": 2, "batch_size": 6,
                 "epochs": 2, "min_steps": 0, "mc_samples": 2, "holdout": 0.25,
                 "strategy": "margin_sampling"}


def forget_process_caches():
    """Forget what this process holds in memory: encoders and remembered features."""
    from skal import recipe
    from skal.labeling import service

    recipe._ENCODERS.clear()
    service._FEATURES.clear()
    service._SAVED.clear()


def answer_and_train(project):
    """Answer the current batch with the true labels, then run a round; its result."""
    for item in project.next_batch():
        if item.answer is None:
            project.label(item.image_id, true_label(item.path), annotator="me")
    return project.train_and_query()


def subprocess_env():
    env = dict(os.environ)
    env["PYTHONPATH"] = REPO + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


class ServeProcess:
    """``python -m skal label serve PROJECT --port 0 ...`` in a subprocess; ``url`` is read from
    its first line (bounded wait)."""

    def __init__(self, project, *args, timeout=60):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "skal", "label", "serve", os.fspath(project), "--port", "0",
             *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=subprocess_env(),
        )
        self.lines = []
        self.url = None
        self.token = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            self.lines.append(line)
            found = re.search(r"at (http://\S+)", line)
            if found:
                self.url = found.group(1)
                token = re.search(r"\?token=(\S+)", self.url)
                self.token = token and urllib.parse.unquote(token.group(1))
            if "Ctrl+C" in line:
                break
        if self.url is None:
            self.stop()
            raise RuntimeError("skal label serve did not start:\n" + "".join(self.lines))
        self.base = re.match(r"http://[^/]+", self.url).group(0)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if self.proc.stdout:
            self.proc.stdout.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def http_request(base, method, path, body=None, headers=None, raw_body=None, timeout=10):
    """One HTTP request to ``base`` (``http://127.0.0.1:PORT``) with http.client, the path sent
    exactly as given; returns ``(status, headers, payload)``."""
    import http.client
    import json

    parsed = urllib.parse.urlsplit(base)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=timeout)
    headers = dict(headers or {})
    data = raw_body
    if body is not None:
        data = json.dumps(body).encode()
        headers.setdefault("Content-Type", "application/json")
    try:
        conn.request(method, path, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()
