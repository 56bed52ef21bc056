#!/usr/bin/env bash
# Set up (idempotent) and run skal's whole test suite: first modAL compatibility in its own
# environment (modAL 0.4.2.1 needs scikit-learn < 1.8), then everything else.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/setup.sh
if [ -f scripts/setup_modal.sh ]; then
  bash scripts/setup_modal.sh
  echo "[test] modAL compatibility (.venv-modal)"
  .venv-modal/bin/python -m pytest -q -p no:cacheprovider tests/test_modal_*.py "$@"
fi
echo "[test] main suite (.venv)"
exec .venv/bin/python -m pytest -q -p no:cacheprovider -m "not modal" tests/ "$@"
