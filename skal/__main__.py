"""``python -m skal``: the same as the ``skal`` command."""

from .cli import main

raise SystemExit(main())
