#!/usr/bin/env bash
# Set up (idempotent) and run skal's whole test suite: first modAL compatibility in its own
# environment (modAL 0.4.2.1 needs scikit-learn < 1.8), then everything else, then build the
# documentation (warnings are errors, the gallery examples run).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
if [ -f scripts/setup_modal.sh ]; then
  bash scripts/setup_modal.sh
  echo "[test] modAL compatibility (.venv-modal)"
  .venv-modal/bin/python -m pytest -q -p no:cacheprovider tests/test_modal_*.py "$@"
fi
echo "[test] main suite (.venv)"
.venv/bin/python -m pytest -q -p no:cacheprovider -m "not modal" tests/ "$@"
# The documentation, with warnings as errors; every gallery example runs (SKAL_DOCS=0 skips it).
if [ "${SKAL_DOCS:-1}" != 0 ]; then
  echo "[test] documentation (scripts/docs.sh)"
  bash scripts/docs.sh -q
fi
