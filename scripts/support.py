"""What the Python scripts share: a free port, and waiting for a listener.

They run as `python3 scripts/NAME.py`, which puts this directory on the module path.
"""
import socket
import time


def free_port():
    """A TCP port on 127.0.0.1 that nothing holds at this moment."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, seconds=10, process=None, explain=lambda: ""):
    """Returns once something accepts on 127.0.0.1:`port`. Raises RuntimeError after `seconds`, or as
    soon as `process` (a Popen that should be listening) has exited; `explain()` ends the message."""
    deadline = time.time() + seconds
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            exited = process is not None and process.poll() is not None
            if exited or time.time() > deadline:
                when = f"(it exited with {process.returncode})" if exited else f"after {seconds} s"
                raise RuntimeError(f"nothing listens on 127.0.0.1:{port} {when}{explain()}") from None
            time.sleep(0.05)
