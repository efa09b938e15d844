# expect: clean
"""A shop's inventory and order book; every component gets its lock from one
helper, make_lock().

place_order() locks the inventory, then the order book. Fixed: cancel_order()
takes the order out of the book, lets go of the book, then puts the item back.
"""

import threading


def make_lock() -> threading.Lock:
    """The lock every component uses (one place to swap in another lock type)."""
    return threading.Lock()


class OutOfStock(Exception):
    pass


class Inventory:
    def __init__(self, stock: dict[str, int]) -> None:
        self._lock = make_lock()
        self.stock = dict(stock)


class OrderBook:
    def __init__(self) -> None:
        self._lock = make_lock()
        self.orders: dict[int, str] = {}
        self.next_id = 1


def place_order(inventory: Inventory, book: OrderBook, item: str) -> int:
    with inventory._lock:
        if inventory.stock.get(item, 0) == 0:
            raise OutOfStock(item)
        inventory.stock[item] -= 1
        with book._lock:
            order_id = book.next_id
            book.next_id += 1
            book.orders[order_id] = item
            return order_id


def cancel_order(inventory: Inventory, book: OrderBook, order_id: int) -> None:
    with book._lock:
        item = book.orders.pop(order_id)
    with inventory._lock:
        inventory.stock[item] += 1


def main() -> None:
    inventory = Inventory({"lamp": 2, "desk": 1})
    book = OrderBook()
    placed: list[int] = []
    for step in (
        lambda: placed.append(place_order(inventory, book, "lamp")),
        lambda: cancel_order(inventory, book, placed[0]),
    ):
        clerk = threading.Thread(target=step)
        clerk.start()
        clerk.join(timeout=30)
    assert inventory.stock == {"lamp": 2, "desk": 1} and not book.orders
    print(inventory.stock)


if __name__ == "__main__":
    main()
