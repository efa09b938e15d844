# expect: clean
"""A striped hash map: 16 locks in a list, each guarding the keys that hash to it.

Operations on several keys (move, swap, snapshot) lock every stripe they need in
index order, whichever order the keys come in, so any number of threads can work
at once without deadlock.
"""

import contextlib
import random
import threading
from collections.abc import Hashable, Iterable, Iterator

STRIPES = 16


class StripedMap:
    def __init__(self) -> None:
        self._locks = [threading.Lock() for _ in range(STRIPES)]
        self._data: list[dict[Hashable, int]] = [{} for _ in range(STRIPES)]

    def _stripe(self, key: Hashable) -> int:
        return hash(key) % STRIPES

    @contextlib.contextmanager
    def _locked(self, keys: Iterable[Hashable]) -> Iterator[None]:
        with contextlib.ExitStack() as stack:
            for index in sorted({self._stripe(key) for key in keys}):
                stack.enter_context(self._locks[index])
            yield

    def put(self, key: Hashable, value: int) -> None:
        with self._locked([key]):
            self._data[self._stripe(key)][key] = value

    def get(self, key: Hashable) -> int:
        with self._locked([key]):
            return self._data[self._stripe(key)].get(key, 0)

    def move(self, source: Hashable, target: Hashable, amount: int) -> bool:
        with self._locked([source, target]):
            have = self._data[self._stripe(source)].get(source, 0)
            if have < amount:
                return False
            self._data[self._stripe(source)][source] = have - amount
            bucket = self._data[self._stripe(target)]
            bucket[target] = bucket.get(target, 0) + amount
            return True

    def total(self) -> int:
        with self._locked(range(STRIPES)):
            return sum(sum(bucket.values()) for bucket in self._data)


def worker(table: StripedMap, keys: list[str], seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(400):
        source, target = rng.sample(keys, 2)
        table.move(source, target, rng.randint(1, 5))
        if rng.random() < 0.05:
            table.total()


def main() -> None:
    table = StripedMap()
    keys = [f"account-{i}" for i in range(40)]
    for key in keys:
        table.put(key, 100)
    workers = [threading.Thread(target=worker, args=(table, keys, seed)) for seed in range(6)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join(timeout=60)
    assert table.total() == 100 * len(keys), table.total()
    print("total:", table.total())


if __name__ == "__main__":
    main()
