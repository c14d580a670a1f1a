"""Commands for tests/test_warm_workers.py, run in a warm worker as ``tests.warm_helpers:main ARGS``."""
import ctypes
import os
import signal
import sys
import time


def main() -> None:
    how, *rest = sys.argv[1:]
    print("Epoch 0")
    if how == "env":
        print("argv=" + " ".join(sys.argv[1:]))
        for name in rest:
            print(f"{name}={os.environ.get(name)}")
        os.system("echo from a grandchild")
    elif how == "exit3":
        sys.exit(3)
    elif how == "raise":
        raise ValueError("the reason")
    elif how == "ours":
        print("nnunet_transfer.errors.NnunetTransferError: the real reason")
        sys.exit(3)
    elif how == "os_exit":
        os._exit(7)
    elif how == "segfault":
        ctypes.string_at(0)
    elif how == "sigkill":
        os.kill(os.getpid(), signal.SIGKILL)
    elif how == "sleep":
        with open(rest[0] + ".tmp", "w") as handle:
            handle.write(str(os.getpid()))
        os.replace(rest[0] + ".tmp", rest[0])
        print("sleeping", flush=True)
        time.sleep(300)
