# Sourced by the set-up scripts (demo.sh, test.sh) and .ci/run: sets PY to the Python that pip
# installs FoleySeal into, from the checkout's root.
#
# $PYTHON if set; else the active virtual environment's, else a .venv made by an earlier run,
# else `python`, else `python3` (Debian and Ubuntu have only python3). A system Python that is
# "externally managed" (PEP 668: Debian 12, Ubuntu 23.04 and later refuse `pip install` into
# it) gets a virtual environment in .venv, made once and used from then on.
if [ -n "${PYTHON:-}" ]; then
  PY="$PYTHON"
elif [ -n "${VIRTUAL_ENV:-}" ] && [ -x "$VIRTUAL_ENV/bin/python" ]; then
  PY="$VIRTUAL_ENV/bin/python"
elif [ -x .venv/bin/python ]; then
  PY=.venv/bin/python
elif command -v python >/dev/null 2>&1; then
  PY=python
elif command -v python3 >/dev/null 2>&1; then
  PY=python3
else
  echo "error: no Python found (neither python nor python3 is on PATH); FoleySeal needs Python >= 3.10" >&2
  exit 2
fi
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "error: PYTHON=$PY: no such program" >&2
  exit 2
fi
if [ "$("$PY" -c 'import sys; print(sys.version_info >= (3, 10))' 2>/dev/null)" != True ]; then
  echo "error: $("$PY" --version 2>&1 | head -n 1) at $(command -v "$PY"): FoleySeal needs Python >= 3.10 (set PYTHON=...)" >&2
  exit 2
fi
if [ "$("$PY" -c 'import os, sys, sysconfig
print(sys.prefix == sys.base_prefix
      and os.path.exists(os.path.join(sysconfig.get_path("stdlib"), "EXTERNALLY-MANAGED")))')" = True ]; then
  echo "$PY is the system's externally managed Python (PEP 668): installing into a virtual environment, .venv" >&2
  if ! "$PY" -m venv .venv; then
    echo "error: could not make a virtual environment with $PY -m venv (on Debian and Ubuntu: apt install python3-venv)" >&2
    exit 2
  fi
  PY=.venv/bin/python
fi
export PIP_DISABLE_PIP_VERSION_CHECK=1
