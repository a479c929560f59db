"""`python -m checker` runs the dmalint command line."""

import sys

from .cli import main

sys.exit(main())
