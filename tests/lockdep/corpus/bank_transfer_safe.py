# expect: clean
"""A bank whose accounts each have a lock; a transfer locks both accounts.

Fixed: a transfer locks the two accounts in the order of their account numbers,
whichever way the money goes, so two opposite transfers cannot deadlock.
"""

import itertools
import threading

_numbers = itertools.count(1)


class InsufficientFunds(Exception):
    pass


class Account:
    def __init__(self, owner: str, balance: int) -> None:
        self.number = next(_numbers)
        self.owner = owner
        self.balance = balance
        self.lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Account({self.owner!r}, {self.balance})"


def transfer(source: Account, target: Account, amount: int) -> None:
    first, second = sorted((source, target), key=lambda account: account.number)
    with first.lock, second.lock:
        if source.balance < amount:
            raise InsufficientFunds(f"{source.owner} has {source.balance}, needs {amount}")
        source.balance -= amount
        target.balance += amount


def teller(moves: list[tuple[Account, Account, int]], refused: list[str]) -> None:
    for source, target, amount in moves:
        try:
            transfer(source, target, amount)
        except InsufficientFunds as exc:
            refused.append(str(exc))


def main() -> None:
    alice = Account("alice", 100)
    bob = Account("bob", 50)
    refused: list[str] = []
    # With the order fixed, the tellers can work at the same time.
    tellers = [
        threading.Thread(target=teller, args=(moves, refused))
        for moves in ([(alice, bob, 30)] * 4, [(bob, alice, 20)] * 3)
    ]
    for teller_thread in tellers:
        teller_thread.start()
    for teller_thread in tellers:
        teller_thread.join(timeout=30)
    assert alice.balance + bob.balance == 150, (alice, bob)
    print(f"{alice} {bob}, {len(refused)} refused")


if __name__ == "__main__":
    main()
