#!/usr/bin/env bash
# Install FoleySeal with its test extras and run the test suite.
# This is the README's test command and what .ci/run runs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/python-env.sh
"$PY" -m pip install -q -e ".[test]"
set +e
"$PY" -m pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "error: no tests were collected" >&2
  exit 1
fi
exit "$rc"
