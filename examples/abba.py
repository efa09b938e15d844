"""An ABBA inversion between two threads that never actually deadlocks.

Plain threading locks, no lockdep in sight. "writer" takes the cache lock then
the index lock; afterwards "reader" takes the index lock then the cache lock.
The threads run one after the other, so this run finishes, but the day they
overlap the program hangs. Run it under lockdep:

    python -m lockdep run examples/abba.py      # prints the report, exits 66
"""

from __future__ import annotations

import threading

cache_lock = threading.Lock()
index_lock = threading.Lock()


def writer() -> None:
    with cache_lock, index_lock:
        pass


def reader() -> None:
    with index_lock, cache_lock:
        pass


for work in (writer, reader):
    thread = threading.Thread(target=work, name=work.__name__)
    thread.start()
    thread.join()
print("done: no deadlock in this run")
