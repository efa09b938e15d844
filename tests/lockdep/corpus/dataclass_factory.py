# expect: order
"""A warehouse: stock items and a ledger are dataclasses whose lock is a field made
by ``field(default_factory=threading.Lock)``.

sell() locks the item, then the ledger. The bug: the nightly reconcile() locks the
ledger, then each item it corrects.
"""

import threading
from dataclasses import dataclass, field


@dataclass
class StockItem:
    sku: str
    quantity: int
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


@dataclass
class Ledger:
    name: str
    entries: list[tuple[str, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)


def sell(item: StockItem, ledger: Ledger, count: int) -> bool:
    with item.lock:  # site
        if item.quantity < count:
            return False
        item.quantity -= count
        with ledger.lock:  # site
            ledger.entries.append((item.sku, -count))
        return True


def reconcile(ledger: Ledger, items: dict[str, StockItem], counted: dict[str, int]) -> None:
    with ledger.lock:  # site
        for sku, quantity in counted.items():
            item = items[sku]
            with item.lock:  # site
                if item.quantity != quantity:
                    ledger.entries.append((sku, quantity - item.quantity))
                    item.quantity = quantity


def main() -> None:
    items = {"bolt": StockItem("bolt", 100), "nut": StockItem("nut", 40)}
    ledger = Ledger("main")
    for step in (
        lambda: sell(items["bolt"], ledger, 30),
        lambda: reconcile(ledger, items, {"bolt": 69, "nut": 40}),
    ):
        thread = threading.Thread(target=step)
        thread.start()
        thread.join(timeout=30)
    assert ledger.entries == [("bolt", -30), ("bolt", -1)], ledger
    print(items, ledger)


if __name__ == "__main__":
    main()
