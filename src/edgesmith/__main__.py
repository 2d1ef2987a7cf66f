"""``python -m edgesmith``: the same CLI as the ``edgesmith`` command."""

import sys

from edgesmith.app.cli import main  # the entry point: the one core module that reaches the app

sys.exit(main())
