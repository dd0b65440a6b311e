"""``python -m sealpost`` is the ``sealpost`` command."""

from sealpost.command import main

main()
