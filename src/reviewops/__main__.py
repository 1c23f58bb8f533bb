"""``python -m reviewops``: the same command line as the ``reviewops`` script."""

from reviewops.cli.app import main

main()
