"""Lines from a child's stdout with a deadline. A blocking readline() waits forever when the child prints
nothing more; a buffered reader would hold lines that select() cannot see. So the pipe's descriptor is
read directly."""
import os
import select
import time


class LineReader:
    def __init__(self, pipe):
        self.fd = pipe.fileno()
        self.pending = bytearray()
        self.closed = False

    def line(self, seconds):
        """The next line (without its newline), or None when none comes within `seconds` or the pipe closed."""
        deadline = time.monotonic() + seconds
        while b"\n" not in self.pending:
            remaining = deadline - time.monotonic()
            if self.closed or remaining <= 0 or not select.select([self.fd], [], [], remaining)[0]:
                return None
            chunk = os.read(self.fd, 65536)
            self.closed = not chunk
            self.pending += chunk
        line, _, rest = bytes(self.pending).partition(b"\n")
        self.pending[:] = rest
        return line.decode(errors="replace")
