# expect: clean
"""A three-stage ingest pipeline: each stage's buffer has its own lock.

Moving a batch forward holds the stage's lock and then the next stage's. Fixed:
the publisher decides to throttle under its own lock, then sets the flag under
the ingest lock alone, so the locks are only ever taken ingest -> transform ->
publish.
"""

import threading
from collections import deque


class Pipeline:
    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.ingest_lock = threading.Lock()
        self.incoming: deque[str] = deque()
        self.transform_lock = threading.Lock()
        self.transformed: deque[str] = deque()
        self.publish_lock = threading.Lock()
        self.outgoing: deque[str] = deque()
        self.paused = False

    def ingest(self, records: list[str]) -> None:
        with self.ingest_lock:
            if not self.paused:
                self.incoming.extend(records)

    def transform(self) -> None:
        with self.ingest_lock:
            with self.transform_lock:
                while self.incoming:
                    self.transformed.append(self.incoming.popleft().upper())

    def publish(self) -> None:
        with self.transform_lock:
            with self.publish_lock:
                while self.transformed:
                    self.outgoing.append(self.transformed.popleft())

    def throttle(self) -> None:
        with self.publish_lock:
            full = len(self.outgoing) >= self.capacity
        if full:
            with self.ingest_lock:
                self.paused = True


def main() -> None:
    pipeline = Pipeline(capacity=3)
    pipeline.ingest(["a", "b", "c", "d"])
    for stage in (pipeline.transform, pipeline.publish, pipeline.throttle):
        worker = threading.Thread(target=stage, name=stage.__name__)
        worker.start()
        worker.join(timeout=30)
    pipeline.ingest(["e"])
    assert list(pipeline.outgoing) == ["A", "B", "C", "D"] and pipeline.paused
    print("published", list(pipeline.outgoing))


if __name__ == "__main__":
    main()
