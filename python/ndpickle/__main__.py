"""``python -m ndpickle``: the ``ndpickle`` command (see :mod:`ndpickle.cli`)."""

import sys

from .cli import main

sys.exit(main())
