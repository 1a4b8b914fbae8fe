"""``python -m sophiavl.data_prep.trm_build``: see :mod:`sophiavl.data_prep.trm_build.cli`."""

import sys

from sophiavl.data_prep.trm_build.cli import main

sys.exit(main())
