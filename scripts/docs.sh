#!/usr/bin/env bash
# Build the documentation (Sphinx, numpydoc, sphinx-gallery) with warnings as errors.
# Installs skal's `docs` extra into .venv first (idempotent). The gallery examples run during
# the build. Output: docs/_build/html/index.html. Extra arguments go to sphinx-build.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=${SKAL_VENV:-.venv}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1
if ! "$VENV/bin/python" -c "import sphinx, numpydoc, sphinx_gallery, myst_parser, furo" 2>/dev/null; then
  echo "[docs] installing the docs extra"
  "$VENV/bin/pip" install -q -e ".[docs]"
fi
# one thread per process, as in the tests: the examples are timed on one core
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
# a clean build every time: the API pages are regenerated from the code and every gallery
# example runs again (sphinx-gallery would skip examples whose source did not change)
rm -rf docs/_build docs/generated docs/auto_examples docs/sg_execution_times.rst
start=$SECONDS
"$VENV/bin/python" -m sphinx -W --keep-going -b html docs docs/_build/html "$@"
echo "[docs] built docs/_build/html/index.html in $((SECONDS - start)) s"
