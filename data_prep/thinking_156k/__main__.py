"""``python -m sophiavl.data_prep.thinking_156k``: see :mod:`sophiavl.data_prep.thinking_156k.cli`."""

import sys

from sophiavl.data_prep.thinking_156k.cli import main

sys.exit(main())
