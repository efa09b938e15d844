# expect: clean
"""An image-processing pipeline built on the queue module: a bounded Queue between
stages (producers block when it is full), a PriorityQueue for urgent work, a
LifoQueue of reusable buffers, a SimpleQueue for results, and task_done()/join()
to know when a stage has drained.
"""

import queue
import threading

IMAGES = 400
WORKERS = 4


def main() -> None:
    incoming: queue.Queue[int | None] = queue.Queue(maxsize=8)
    urgent: queue.PriorityQueue[tuple[int, int]] = queue.PriorityQueue()
    buffers: queue.LifoQueue[bytearray] = queue.LifoQueue()
    results: queue.SimpleQueue[tuple[int, int]] = queue.SimpleQueue()
    for _ in range(WORKERS):
        buffers.put(bytearray(64))

    def resize() -> None:
        while True:
            try:
                _, image = urgent.get_nowait()
                urgent.task_done()
            except queue.Empty:
                item = incoming.get()
                if item is None:
                    incoming.task_done()
                    return
                image = item
                incoming.task_done()
            buffer = buffers.get(timeout=30)
            buffer[0] = image % 256
            results.put((image, buffer[0]))
            buffers.put(buffer)

    workers = [threading.Thread(target=resize, name=f"resize-{n}") for n in range(WORKERS)]
    for thread in workers:
        thread.start()
    for image in range(IMAGES):
        if image % 25 == 0:
            urgent.put((0, image))
        else:
            incoming.put(image, timeout=30)
    urgent.join()
    incoming.join()
    for _ in workers:
        incoming.put(None, timeout=30)
    for thread in workers:
        thread.join(timeout=60)
    done = sorted(results.get() for _ in range(IMAGES))
    assert [image for image, _ in done] == list(range(IMAGES))
    assert all(pixel == image % 256 for image, pixel in done)
    assert buffers.qsize() == WORKERS and results.empty()
    print(IMAGES, "images")


if __name__ == "__main__":
    main()
