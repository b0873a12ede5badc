"""The one exception for bad user input: its message names the file or field at fault."""


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
