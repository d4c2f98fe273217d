"""`python -m srgan` (and `torchrun -m srgan train ...`)."""

from .cli.main import console_main

console_main()
