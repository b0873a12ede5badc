"""prm_rga's name for the project's exceptions, which live in the stand-alone module
`prm_rga_errors` so that the launcher, the analysis and the command line can raise and catch
them without importing the detector library (torch, mmdet)."""
from prm_rga_errors import DivergedError, InputError

__all__ = ['DivergedError', 'InputError']
