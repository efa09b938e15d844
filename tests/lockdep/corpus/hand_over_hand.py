# expect: clean
"""A sorted linked list with a lock per node, traversed hand over hand: a thread
holds a node's lock while it takes the next node's, then lets go of the first.

Inserts, removals and lookups run in many threads at once. Every thread takes the
node locks in list order, and a node never moves, so no cycle can form. Removed
nodes are dropped and new ones made all the time.
"""

import random
import threading


class Node:
    def __init__(self, key: float, next_node: "Node | None" = None) -> None:
        self.key = key
        self.next = next_node
        self.lock = threading.Lock()


class SortedList:
    def __init__(self) -> None:
        self.tail = Node(float("inf"))
        self.head = Node(float("-inf"), self.tail)

    def _locate(self, key: float) -> tuple[Node, Node]:
        """The pair (prev, curr) with prev.key < key <= curr.key, both locked."""
        prev = self.head
        prev.lock.acquire()
        curr = prev.next
        assert curr is not None
        curr.lock.acquire()
        while curr.key < key:
            prev.lock.release()
            prev, curr = curr, curr.next
            assert curr is not None  # the tail's key is larger than any
            curr.lock.acquire()
        return prev, curr

    def insert(self, key: float) -> bool:
        prev, curr = self._locate(key)
        try:
            if curr.key == key:
                return False
            prev.next = Node(key, curr)
            return True
        finally:
            curr.lock.release()
            prev.lock.release()

    def remove(self, key: float) -> bool:
        prev, curr = self._locate(key)
        try:
            if curr.key != key:
                return False
            prev.next = curr.next
            return True
        finally:
            curr.lock.release()
            prev.lock.release()

    def __contains__(self, key: float) -> bool:
        prev, curr = self._locate(key)
        curr.lock.release()
        prev.lock.release()
        return curr.key == key

    def keys(self) -> list[float]:
        out, node = [], self.head.next
        while node is not None and node is not self.tail:
            out.append(node.key)
            node = node.next
        return out


def worker(items: SortedList, seed: int, inserted: list[int], removed: list[int]) -> None:
    rng = random.Random(seed)
    for _ in range(300):
        key = rng.randrange(60)
        action = rng.random()
        if action < 0.45:
            inserted[seed] += items.insert(key)
        elif action < 0.8:
            removed[seed] += items.remove(key)
        else:
            _ = key in items


def main() -> None:
    items = SortedList()
    threads = 5
    inserted, removed = [0] * threads, [0] * threads
    workers = [
        threading.Thread(target=worker, args=(items, seed, inserted, removed))
        for seed in range(threads)
    ]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=60)
    keys = items.keys()
    assert keys == sorted(set(keys)) and len(keys) == sum(inserted) - sum(removed), keys
    print("keys left:", len(keys))


if __name__ == "__main__":
    main()
