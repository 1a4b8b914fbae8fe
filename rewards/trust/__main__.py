"""``python -m sophiavl.rewards.trust``: see :mod:`sophiavl.rewards.trust.cli`."""

import sys

from sophiavl.rewards.trust.cli import main

sys.exit(main())
