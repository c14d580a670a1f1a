"""The one exception type the command line turns into a single clear message."""


class NnunetTransferError(Exception):
    """A problem with the user's input or environment, explained in one message.

    The CLI prints ``str(error)`` without a traceback and exits with status 2. The message names
    the file / key / case that is wrong and says what to do about it.
    """


class CommandKilled(NnunetTransferError):
    """A command we started was ended by a signal (a cancelled cluster job, a killed process): its
    step was interrupted, not failed, and runs again next time."""


class OutOfSpace(NnunetTransferError):
    """A step could not write a file because its file system is full (``ENOSPC``): the step was
    interrupted, not failed (nothing it wrote is taken as finished), and the run stops."""
