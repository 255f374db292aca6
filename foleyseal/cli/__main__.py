"""``python -m foleyseal.cli``: the same as the ``foleyseal`` console script."""

from foleyseal.cli import main

main()
