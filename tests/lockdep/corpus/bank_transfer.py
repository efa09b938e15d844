# expect: order
"""A bank whose accounts each have a lock; a transfer locks both accounts.

The bug: transfer(x, y) locks x then y, and transfer(y, x) locks y then x. Two
tellers moving money in opposite directions at the same moment deadlock.
"""

import threading


class InsufficientFunds(Exception):
    pass


class Account:
    def __init__(self, owner: str, balance: int) -> None:
        self.owner = owner
        self.balance = balance
        self.lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Account({self.owner!r}, {self.balance})"


def transfer(source: Account, target: Account, amount: int) -> None:
    with source.lock:  # site
        if source.balance < amount:
            raise InsufficientFunds(f"{source.owner} has {source.balance}, needs {amount}")
        with target.lock:  # site
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
    # One teller after the other: this run cannot deadlock, but both orders happen.
    for moves in ([(alice, bob, 30)] * 4, [(bob, alice, 20)] * 3):
        teller_thread = threading.Thread(target=teller, args=(moves, refused))
        teller_thread.start()
        teller_thread.join(timeout=30)
    assert alice.balance + bob.balance == 150, (alice, bob)
    print(f"{alice} {bob}, {len(refused)} refused")


if __name__ == "__main__":
    main()
