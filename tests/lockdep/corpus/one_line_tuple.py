# expect: order
"""A message channel between two threads: a send side and a receive side, each with
its own lock, both made on one line.

The bug: deliver() and close() lock the send side then the receive side; drain()
locks them the other way round.
"""

import threading
from collections import deque


class ChannelClosed(Exception):
    pass


class Channel:
    def __init__(self) -> None:
        self.send_lock, self.recv_lock = threading.Lock(), threading.Lock()
        self._outbox: deque[bytes] = deque()
        self._inbox: deque[bytes] = deque()
        self.closed = False

    def send(self, message: bytes) -> None:
        with self.send_lock:
            if self.closed:
                raise ChannelClosed
            self._outbox.append(message)

    def deliver(self) -> int:
        """Move what was sent to the receive side (the network, in a real program)."""
        with self.send_lock, self.recv_lock:  # site
            moved = len(self._outbox)
            self._inbox.extend(self._outbox)
            self._outbox.clear()
            return moved

    def drain(self) -> list[bytes]:
        with self.recv_lock:  # site
            received = list(self._inbox)
            self._inbox.clear()
            with self.send_lock:  # site
                received.extend(self._outbox)
                self._outbox.clear()
            return received

    def close(self) -> None:
        with self.send_lock:
            self.closed = True
            with self.recv_lock:
                self._inbox.append(b"<eof>")


def main() -> None:
    channel = Channel()
    for message in (b"hello", b"world"):
        channel.send(message)
    channel.deliver()
    channel.send(b"late")
    got: list[bytes] = []
    for step in (lambda: got.extend(channel.drain()), channel.close):
        thread = threading.Thread(target=step)
        thread.start()
        thread.join(timeout=30)
    assert got == [b"hello", b"world", b"late"] and channel.closed, got
    print(got)


if __name__ == "__main__":
    main()
