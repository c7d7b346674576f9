"""``python -m runner``: the command line."""

import sys

from runner.cli import main
from runner.drivers import preload_shadowed_drivers

# Python put the working directory first on the import path: a project's own redis.py
# there must not stand in for the driver a backend imports later.
preload_shadowed_drivers()
sys.exit(main())
