"""``python -m edgesmith``: the same CLI as the ``edgesmith`` command."""

import sys

from edgesmith.cli import main

sys.exit(main())
