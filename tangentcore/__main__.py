"""Run the command line as ``python -m tangentcore``."""

import sys

from tangentcore.cli import main

sys.exit(main())
