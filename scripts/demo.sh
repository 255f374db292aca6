#!/usr/bin/env bash
# The README's first set-up command: install FoleySeal and run the main job on the bundled
# example: create a watermark key, watermark the example clip, detect the mark, print the report.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -e .
work="${FOLEYSEAL_DEMO_DIR:-$(mktemp -d)}"
foleyseal keys new-watermark-key "$work/watermark.key" --force
foleyseal watermark embed examples/ambient_piano_choir.flac "$work/marked.flac" \
  --key "$work/watermark.key" --payload 0123456789abcdef
foleyseal watermark detect "$work/marked.flac" --key "$work/watermark.key" --json
echo "outputs in $work"
