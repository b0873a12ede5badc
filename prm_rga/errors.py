"""prm_rga's name for the project's exceptions and shared input checks, which live in the
stand-alone module `prm_rga_errors` so that the launcher, the analysis and the command line can
use them without importing the detector library (torch, mmdet)."""
from prm_rga_errors import DivergedError, InputError, check_creatable_dir, read_text

__all__ = ['DivergedError', 'InputError', 'check_creatable_dir', 'read_text']
