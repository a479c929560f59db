"""`python -m bench`: the speed and scale benchmark (bench/run.py)."""

import sys

from bench.run import main

sys.exit(main())
