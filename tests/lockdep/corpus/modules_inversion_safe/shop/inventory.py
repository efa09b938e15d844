"""Stock levels, behind the inventory lock."""

import threading

from . import billing

_lock = threading.Lock()
_stock: dict[str, int] = {}


class OutOfStock(Exception):
    pass


def available(item: str) -> int:
    with _lock:
        return _stock.get(item, 0)


def restock(item: str, count: int = 1) -> None:
    with _lock:
        _stock[item] = _stock.get(item, 0) + count


def reserve(item: str, customer: str, price: int) -> None:
    with _lock:
        if _stock.get(item, 0) == 0:
            raise OutOfStock(item)
        billing.charge(customer, price)
        _stock[item] -= 1
