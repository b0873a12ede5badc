"""The project's exceptions for bad input and diverged training. A module of its own, importing
nothing, so that every layer (detector library, launcher, analysis, command line) can use them
without importing the others: `import prm_rga` loads torch and mmdet."""


class InputError(ValueError):
    """A config, annotation file, path or suite file that cannot be used as given.

    The `prm-rga` command prints the message and exits with status 2, without a traceback.
    It subclasses ValueError so that mmengine's registry, which re-raises build errors as
    ``type(e)(message)``, keeps the type.
    """


class DivergedError(FloatingPointError):
    """A training run whose loss became NaN or infinite (raised by FiniteLossHook).

    The `prm-rga` command prints the message and exits with status 1, without a traceback.
    """
