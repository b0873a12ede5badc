"""The project's exceptions for bad input and diverged training, and the two input checks every
layer shares (a text file read as UTF-8, a folder that can be made). A module of its own,
importing nothing but the standard library, so that every layer (detector library, launcher,
analysis, command line) can use them without importing the others: `import prm_rga` loads torch
and mmdet."""
import os
import os.path as osp


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


def read_text(path: str, what: str) -> str:
    """The file's text; a file that is not UTF-8 (a binary, a Latin-1 export) is an InputError
    naming WHAT, the file and the first bad byte, not a UnicodeDecodeError from deep inside."""
    try:
        with open(path, encoding='utf-8') as f:
            return f.read()
    except UnicodeDecodeError as err:
        raise InputError(f'{what}: {path} is not UTF-8 text (byte {err.object[err.start]:#04x} '
                         f'at offset {err.start})') from None


def check_creatable_dir(path: str, what: str) -> None:
    """PATH is a writable folder or can be made one, checked without making it: its nearest
    existing ancestor is a folder we may write in. Run before a launch, so that a bad output
    path is refused before anything is started or recorded."""
    path = existing = osp.abspath(osp.expanduser(path))
    while not osp.exists(existing):
        existing = osp.dirname(existing)
    if not osp.isdir(existing):
        raise InputError(f'{what}: cannot create {path}: {existing} is a file')
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f'{what}: cannot create or write {path}: {existing} is not writable')
