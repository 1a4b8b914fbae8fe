"""``python -m sophiavl.eval.trm``: see :mod:`sophiavl.eval.trm.cli`."""

import sys

from sophiavl.eval.trm.cli import main

sys.exit(main())
