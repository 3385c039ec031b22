#!/usr/bin/env bash
# The project's test command (README.md; .ci/run runs exactly this).
# On a fresh Debian/Ubuntu/Raspberry Pi OS machine it installs what the tests need:
# Mosquitto (apt), a venv with the device runtime + [train,dev] extras, and a second
# venv with NumPy 1.24 (Raspberry Pi OS bookworm's) for the device-side tests.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"

if ! command -v mosquitto >/dev/null 2>&1 && ! [ -x /usr/sbin/mosquitto ]; then
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq mosquitto >/dev/null
fi

pipq() { "$@" -q --disable-pip-version-check 2>&1 | grep -v "^WARNING: Location" || true; }

echo "== venv: NumPy 2.x, device + train + dev =="
[ -x .venv/bin/python ] || $PY -m venv .venv
pipq .venv/bin/pip install -e '.[train,dev]'
.venv/bin/python -c "import numpy, tensorflow; print('numpy', numpy.__version__, 'tensorflow', tensorflow.__version__)"
.venv/bin/ruff check .
set +e
.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
rc1=$?
set -e

echo "== venv: NumPy 1.24 (Raspberry Pi OS bookworm), device path only =="
[ -x .venv-np124/bin/python ] || $PY -m venv .venv-np124
pipq .venv-np124/bin/pip install -e '.[dev]' 'numpy==1.24.4' scipy
.venv-np124/bin/python -c "import numpy; assert numpy.__version__ == '1.24.4', numpy.__version__; print('numpy', numpy.__version__)"
set +e
.venv-np124/bin/python -m pytest -q -p no:cacheprovider -m "not train" "$@"
rc2=$?
set -e
echo "pytest numpy2: exit $rc1; pytest numpy1.24: exit $rc2"
[ "$rc1" -eq 0 ] && [ "$rc2" -eq 0 ]
