"""`python -m hfgen ...` and `accelerate launch -m hfgen train ...` run the same CLI as `hfgen`."""

import sys

from .cli import main

sys.exit(main())
