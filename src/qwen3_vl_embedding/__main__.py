"""`python -m qwen3_vl_embedding` runs the `qvl` command."""
import sys

from .cli import main

sys.exit(main())
