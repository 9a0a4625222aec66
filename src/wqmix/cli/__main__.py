"""`python -m wqmix.cli ARGV...` is `wqmix ARGV...`."""

import sys

from wqmix.cli import main

sys.exit(main())
