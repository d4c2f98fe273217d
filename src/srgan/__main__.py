"""`python -m srgan` (and `torchrun -m srgan train ...`)."""

import sys

from .cli.main import main

sys.exit(main())
