#!/usr/bin/env bash
# Create .venv-modal: a second environment in which the real modAL (modAL-python 0.4.2.1) runs next to skal.
#
# Why a second environment: modAL 0.4.2.1 pins skorch==0.9.0 and calls check_X_y(force_all_finite=...),
# which scikit-learn >= 1.8 removed (docs/ecosystem.md, 'modAL's packaging'), while the main .venv
# has scikit-learn 1.9.
# .venv-modal therefore gets its own scikit-learn 1.7.x (plus numpy, scipy, pandas) and modAL installed
# with --no-deps. To avoid a second multi-GB torch install it borrows torch, skorch and the rest from the
# main venv through a .pth file that APPENDS the main venv's site-packages and the repo root to sys.path:
# .venv-modal's own site-packages come first, so its scikit-learn 1.7 wins over the main venv's 1.9.
#
# Idempotent; needs the main venv (scripts/setup.sh) first. Usage: bash scripts/setup_modal.sh
# Then: .venv-modal/bin/python -m pytest tests/test_modal_compat.py -q -p no:cacheprovider
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd -P)
MAIN_VENV=${SKAL_VENV:-.venv}
VENV=${SKAL_MODAL_VENV:-.venv-modal}
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_INPUT=1

if [ ! -x "$MAIN_VENV/bin/python" ] || ! "$MAIN_VENV/bin/python" -c "import torch, skorch" 2>/dev/null; then
  echo "[setup_modal] the main venv $MAIN_VENV (with torch and skorch) is missing: run scripts/setup.sh first" >&2
  exit 1
fi
# The borrowed torch has compiled extensions: .venv-modal must use the very same base interpreter.
BASE_PY=$("$MAIN_VENV/bin/python" -c "import sys; print(sys._base_executable)")
MAIN_SITE=$("$MAIN_VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
MAIN_SITE=$(cd "$MAIN_SITE" && pwd -P)
# numpy and scipy are pinned to the main venv's versions: torch was installed (and is tested) with them.
NUMPY_VER=$("$MAIN_VENV/bin/python" -c "import numpy; print(numpy.__version__)")
SCIPY_VER=$("$MAIN_VENV/bin/python" -c "import scipy; print(scipy.__version__)")

PYVER='import sys; print("%d.%d" % sys.version_info[:2])'
if [ -x "$VENV/bin/python" ] && [ "$("$VENV/bin/python" -c "$PYVER")" != "$("$MAIN_VENV/bin/python" -c "$PYVER")" ]; then
  echo "[setup_modal] $VENV uses another Python version than $MAIN_VENV: recreating it"
  rm -rf "$VENV"
fi
if [ ! -x "$VENV/bin/python" ]; then
  echo "[setup_modal] creating $VENV with $BASE_PY"
  "$BASE_PY" -m venv "$VENV"
fi
SITE=$("$VENV/bin/python" -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")
PTH="$SITE/zz_skal_main_venv.pth"

own_ok() {  # the packages that must come from .venv-modal itself
  "$VENV/bin/python" - <<'EOF' 2>/dev/null
import importlib.metadata as md, sys
v = md.version("scikit-learn").split(".")
assert (int(v[0]), int(v[1])) == (1, 7), v
for name in ("numpy", "scipy", "pandas", "modAL-python"):
    md.version(name)
EOF
}

if ! own_ok; then
  # Install without the .pth in place, so pip sees only .venv-modal's own packages.
  rm -f "$PTH"
  echo "[setup_modal] installing scikit-learn 1.7.x, numpy $NUMPY_VER, scipy $SCIPY_VER, pandas, modAL-python 0.4.2.1"
  "$VENV/bin/pip" install -q "scikit-learn>=1.6,<1.8" "numpy==$NUMPY_VER" "scipy==$SCIPY_VER" "pandas>=1.1" \
    "pytest>=7" "pytest-timeout>=2"
  # modAL-python 0.4.2.1 pins skorch==0.9.0; skorch 1.4 comes from the main venv instead.
  "$VENV/bin/pip" install -q --no-deps "modAL-python==0.4.2.1"
fi

# Appended (plain path lines in a .pth go to the END of sys.path): main venv packages, then skal itself.
printf '%s\n%s\n' "$MAIN_SITE" "$ROOT" > "$PTH"

"$VENV/bin/python" - <<'EOF'
import importlib.metadata as md
import sklearn, skorch, torch, modAL, skal
assert sklearn.__version__.startswith("1.7."), sklearn.__version__
print(f"[setup_modal] ready: scikit-learn {sklearn.__version__} ({sklearn.__file__.split('/site-packages')[0]}), "
      f"skorch {skorch.__version__}, torch {torch.__version__}, modAL-python {md.version('modAL-python')}, skal {skal.__version__}")
EOF
