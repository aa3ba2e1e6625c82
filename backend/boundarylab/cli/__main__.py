"""``python -m boundarylab.cli``: the same as the ``boundarylab`` command."""

import sys

from boundarylab.cli import main

sys.exit(main())
