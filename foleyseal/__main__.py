"""``python -m foleyseal``: the same as the ``foleyseal`` console script (where it is not on
``PATH``: a ``pip install --user``, or an interpreter other than the one that installed it)."""

from foleyseal.cli import main

main()
