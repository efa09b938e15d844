"""A lock-order inversion split across two threads that never deadlock, found by lockdep.

Thread "transfer" takes accounts then journal; later thread "audit" takes journal
then accounts. Run one after the other they cannot deadlock, but interleaved
they would: lockdep reports the inversion when "audit" asks for accounts.
"""

from __future__ import annotations

import logging
import threading

import lockdep

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
lockdep.configure(on_violation="log")

accounts = lockdep.Mutex("accounts")
journal = lockdep.Mutex("journal")


def transfer() -> None:
    with accounts, journal:
        pass


def audit() -> None:
    with journal, accounts:
        pass


for target in (transfer, audit):
    thread = threading.Thread(target=target, name=target.__name__)
    thread.start()
    thread.join()

count = lockdep.stats()["violations"]
print(
    f"lockdep found {count} violation(s); the program went on, as configured (on_violation='log')."
)
