"""Customer balances, behind the billing lock."""

import threading

from . import inventory

_lock = threading.Lock()
_balances: dict[str, int] = {}


class PaymentDeclined(Exception):
    pass


def open_account(customer: str, balance: int) -> None:
    with _lock:
        _balances[customer] = balance


def balance(customer: str) -> int:
    with _lock:
        return _balances[customer]


def charge(customer: str, amount: int) -> None:
    with _lock:  # site
        if _balances[customer] < amount:
            raise PaymentDeclined(customer)
        _balances[customer] -= amount


def refund(customer: str, item: str, amount: int) -> None:
    with _lock:  # site
        _balances[customer] += amount
        inventory.restock(item)
