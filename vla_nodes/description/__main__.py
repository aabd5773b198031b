"""`python -m vla_nodes.description`: regenerate the description files (see generate.py)."""

import sys

from vla_nodes.description.generate import main

sys.exit(main())
