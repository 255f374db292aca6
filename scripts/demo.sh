#!/usr/bin/env bash
# The README's first set-up command: install FoleySeal and run the main job on the bundled
# example video: generate a soundtrack (watermarked, signed, stored), then verify the result.
# Keys and the manifest store live in a throwaway FoleySeal home unless FOLEYSEAL_HOME is set.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/python-env.sh
"$PY" -m pip install -q -e .
foleyseal() { "$PY" -m foleyseal "$@"; }  # the console script may not be on PATH (a .venv, --user)
work="${FOLEYSEAL_DEMO_DIR:-$(mktemp -d)}"
export FOLEYSEAL_HOME="${FOLEYSEAL_HOME:-$work/home}"
foleyseal keys init
foleyseal generate examples/ball_bounce.mp4 -o "$work/ball_scored.mp4" \
  --prompt "tennis ball bouncing in a gym, calm music" --negative-prompt "crowd" \
  --cue-sheet "$work/ball.cues.json"
set +e
foleyseal verify "$work/ball_scored.mp4"
rc=$?
set -e
echo "outputs in $work (FOLEYSEAL_HOME=$FOLEYSEAL_HOME)"
exit "$rc"
