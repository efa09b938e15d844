# expect: clean
"""Shopping carts that can be merged: merging locks both carts, the one with the
smaller ``id()`` first, whichever way round the merge is asked for.

Many threads merge random pairs in both directions at once; the order by id()
makes that safe.
"""

import random
import threading


class Cart:
    def __init__(self, owner: str) -> None:
        self.owner = owner
        self.items: list[str] = []
        self.lock = threading.Lock()

    def add(self, item: str) -> None:
        with self.lock:
            self.items.append(item)


def merge(into: Cart, other: Cart) -> None:
    """Move every item of other into into."""
    if into is other:
        return
    first, second = (into, other) if id(into) < id(other) else (other, into)
    with first.lock:
        with second.lock:
            into.items.extend(other.items)
            other.items.clear()


def shopper(carts: list[Cart], seed: int) -> None:
    rng = random.Random(seed)
    for n in range(300):
        cart = rng.choice(carts)
        cart.add(f"item-{seed}-{n}")
        into, other = rng.sample(carts, 2)
        merge(into, other)


def main() -> None:
    carts = [Cart(f"user-{i}") for i in range(8)]
    shoppers = [threading.Thread(target=shopper, args=(carts, seed)) for seed in range(6)]
    for thread in shoppers:
        thread.start()
    for thread in shoppers:
        thread.join(timeout=60)
    count = sum(len(cart.items) for cart in carts)
    assert count == 6 * 300, count
    print("items:", count)


if __name__ == "__main__":
    main()
