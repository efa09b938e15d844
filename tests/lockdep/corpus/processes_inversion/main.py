# expect: order
# mode: merge upload download
"""A file-sync tool with a local cache and an index of remote files, each behind
its own lock. It is run as one process per direction: ``main.py upload`` and
``main.py download``, often from different working directories (cron jobs).

An upload holds the cache lock and records the file in the index. The bug: a
download holds the index lock and fills the cache. Each process alone only ever
takes one order, so neither can deadlock on its own; the day both directions run
in one process (a long-running sync daemon), they can.
"""

import sys
import threading


class SyncState:
    def __init__(self) -> None:
        self.cache_lock = threading.Lock()
        self.cache: dict[str, bytes] = {}
        self.index_lock = threading.Lock()
        self.index: dict[str, int] = {"report.txt": 5}

    def upload(self, name: str, data: bytes) -> None:
        with self.cache_lock:  # site
            self.cache[name] = data
            with self.index_lock:  # site
                self.index[name] = len(data)

    def download(self, name: str) -> bytes:
        with self.index_lock:  # site
            size = self.index[name]
            with self.cache_lock:  # site
                data = self.cache.setdefault(name, b"x" * size)
        return data


def main(direction: str) -> None:
    state = SyncState()
    if direction == "upload":
        work = threading.Thread(target=state.upload, args=("notes.txt", b"hello"))
    else:
        work = threading.Thread(target=state.download, args=("report.txt",))
    work.start()
    work.join(timeout=30)
    print(direction, "done:", sorted(state.cache), sorted(state.index))


if __name__ == "__main__":
    main(sys.argv[1])
