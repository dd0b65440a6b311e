"""``python -m sealpost`` is the ``sealpost`` command."""

from sealpost.cli import main

main()
