"""``python -m tangentcore`` runs the command line."""

import sys

from tangentcore.cli import main

sys.exit(main())
