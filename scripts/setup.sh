#!/usr/bin/env bash
# Set up everything skal needs on a fresh machine: a virtual environment in .venv with torch, skal and
# its test dependencies, and the real Fashion-MNIST files from Debian. Idempotent; safe to run twice.
# Usage: source scripts/setup.sh   (or bash scripts/setup.sh)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
VENV=${SKAL_VENV:-.venv}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup] creating $VENV"
  "$PY" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c "import torch, torchvision" 2>/dev/null; then
  echo "[setup] installing torch + torchvision (this takes a minute or two)"
  # These two releases lie on this project's machines' disks; elsewhere fall back to what pip finds.
  "$VENV/bin/pip" install -q "torch==2.14.1" "torchvision==0.29.1" 2>/dev/null \
    || "$VENV/bin/pip" install -q torch torchvision
fi
# An interrupted or partial install (a missing CUDA wheel, a full disk) can leave torch that pip calls
# installed but that does not import: stop here rather than report a ready environment.
if ! "$VENV/bin/python" -c "import torch, torchvision" >/dev/null; then
  echo "[setup] error: torch or torchvision is installed in $VENV but does not import (see above);" \
       "remove $VENV and run this script again" >&2
  exit 1
fi
if ! "$VENV/bin/python" -c "import skal, skorch, imblearn, pytest, starlette, uvicorn, jinja2, selenium, numpydoc, lightly.loss" 2>/dev/null \
   || [ setup.cfg -nt "$VENV/.skal-installed" ]; then
  echo "[setup] installing skal and its test dependencies"
  "$VENV/bin/pip" install -q -e ".[test]"
  # skal.ContrastiveEncoder's NT-Xent loss and projection head (setup.cfg's `ssl` extra), with
  # --no-deps: they need only torch, and lightly's pytorch-lightning and hydra-core are not used
  "$VENV/bin/pip" install -q --no-deps "lightly==1.6.0"
  # test-only references of tests/query/test_batch_selection.py (setup.cfg's `reference` extra), with
  # --no-deps because their own pins clash with skal's; the tests skip if this fails
  "$VENV/bin/pip" install -q --no-deps "batchbald-redux==2.0.5" "toma>=1.1,<2" "baal==2.1.0" \
    "structlog>=22" "torchmetrics>=1.7" "lightning-utilities>=0.15" "scikit-activeml==1.0.1" \
    "makefun>=1.15" || echo "[setup] warning: reference packages not installed; their tests skip"
  touch "$VENV/.skal-installed"
fi

FMNIST=/usr/share/datasets/fashion-mnist
if [ ! -f "$FMNIST/train-images-idx3-ubyte.gz" ] && [ -z "${SKAL_DATA:-}" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[setup] installing the Debian package dataset-fashion-mnist"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) >/dev/null \
      || echo "[setup] warning: could not install dataset-fashion-mnist; Fashion-MNIST tests will be skipped"
  else
    echo "[setup] note: Fashion-MNIST not found; as root run: apt-get install dataset-fashion-mnist"
  fi
fi
# The labelling page's end-to-end test drives Debian's Chromium through chromium-driver (Selenium is
# told where both are: nothing is downloaded). Without them that one test is skipped.
if ! { command -v chromium && command -v chromedriver; } >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[setup] installing the Debian packages chromium and chromium-driver (browser test)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver) >/dev/null \
      || echo "[setup] warning: could not install chromium; the browser test will be skipped"
  else
    echo "[setup] note: chromium not found; as root run: apt-get install chromium chromium-driver"
  fi
fi
# The label store's PostgreSQL tests start a throw-away cluster with Debian's initdb/pg_ctl (as the
# postgres user when run as root; unix socket only). Without them those tests are skipped.
if ! { command -v initdb || ls /usr/lib/postgresql/*/bin/initdb; } >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "[setup] installing the Debian package postgresql (label store tests)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql) >/dev/null \
      || echo "[setup] warning: could not install postgresql; the PostgreSQL store tests will be skipped"
  else
    echo "[setup] note: PostgreSQL not found; as root run: apt-get install postgresql"
  fi
fi
# A failing import here ends the script with an error (set -e applies to an assignment), never "ready".
versions=$("$VENV/bin/python" -c 'import skal, torch, skorch, sklearn; print(f"torch {torch.__version__}, skorch {skorch.__version__}, scikit-learn {sklearn.__version__}")')
# Label Studio for tests/labeling/test_label_studio.py, in an environment of its own: label-studio 1.23.2 pins
# Django and, through label-studio-sdk's opencv-python-headless 4.12, numpy < 2.3, which cannot sit
# beside skal's. sentry-sdk 3 dropped an option that label-studio 1.23.2 passes at start-up, hence < 3.
# Reached only once skal's environment imports; SKAL_SKIP_LABEL_STUDIO=1 skips it (the test skips too).
LS_VENV=${SKAL_LS_VENV:-.venv-ls}
if [ "${SKAL_SKIP_LABEL_STUDIO:-0}" != 1 ] && ! "$LS_VENV/bin/python" -c \
    "import label_studio, label_studio_sdk, sentry_sdk; assert int(sentry_sdk.VERSION.split('.')[0]) < 3" \
    >/dev/null 2>&1; then
  echo "[setup] installing Label Studio 1.23.2 into $LS_VENV (its own environment; a few minutes)"
  ls_start=$SECONDS
  { [ -x "$LS_VENV/bin/python" ] || "$PY" -m venv "$LS_VENV"; } \
    && "$LS_VENV/bin/pip" install -q "label-studio==1.23.2" "sentry-sdk<3" \
    && echo "[setup] Label Studio installed in $((SECONDS - ls_start)) s" \
    || echo "[setup] warning: could not install Label Studio into $LS_VENV; tests/labeling/test_label_studio.py will be skipped"
fi
echo "[setup] ready: $VENV ($versions)"
