"""`python -m prm_rga_cli` = `prm-rga`."""
import sys

from prm_rga_cli import main

sys.exit(main())
