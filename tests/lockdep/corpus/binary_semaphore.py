# expect: clean
"""A log shipper with one reusable send buffer. A plain Lock says whether the
buffer is free: the producer acquires it to fill the buffer and hands the buffer
to the sender thread, which releases the lock once the batch is sent. The lock is
a binary semaphore: it is released by a thread other than the one that took it,
and the producer blocks on it, while "holding" it, until the sender is done.

The first batch is sent synchronously (the producer waits for the sender's
answer, so that a bad endpoint fails fast); after that the producer and the
sender run freely.
"""

import queue
import threading

BATCHES = 200


class Shipper:
    def __init__(self) -> None:
        self.buffer_free = threading.Lock()
        self.buffer: list[str] = []
        self.outbox: queue.Queue[list[str] | None] = queue.Queue()
        self.answers: queue.Queue[int] = queue.Queue()
        self.sent: list[str] = []

    def sender(self) -> None:
        while (batch := self.outbox.get()) is not None:
            self.sent.extend(batch)
            count = len(batch)
            batch.clear()
            self.buffer_free.release()  # the buffer may be refilled
            self.answers.put(count)

    def ship(self, lines: list[str]) -> None:
        self.buffer_free.acquire()  # wait until the sender has let go of the buffer
        self.buffer.extend(lines)
        self.outbox.put(self.buffer)


def main() -> None:
    shipper = Shipper()
    sender = threading.Thread(target=shipper.sender, name="sender")
    sender.start()
    shipper.ship(["hello"])
    assert shipper.answers.get(timeout=30) == 1
    for n in range(BATCHES):
        shipper.ship([f"line {n}.{i}" for i in range(3)])
    shipper.buffer_free.acquire()  # the last batch is out
    shipper.outbox.put(None)
    sender.join(timeout=30)
    assert len(shipper.sent) == 1 + 3 * BATCHES, len(shipper.sent)
    print("sent", len(shipper.sent), "lines")


if __name__ == "__main__":
    main()
