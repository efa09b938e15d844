# expect: clean
"""A bank that serialises transfers with one transfer lock, the simplest fix for
the transfer(x, y) / transfer(y, x) deadlock: the two account locks are taken in
argument order, both orders happen, but always under the bank's transfer lock,
so two transfers never wait for each other's account lock.

Balance reads and deposits take an account's lock alone, without the bank's.
"""

import random
import threading


class Account:
    def __init__(self, number: int, balance: int) -> None:
        self.number = number
        self.balance = balance
        self.lock = threading.Lock()

    def deposit(self, amount: int) -> None:
        with self.lock:
            self.balance += amount


class Bank:
    def __init__(self, accounts: int, balance: int) -> None:
        self.accounts = [Account(n, balance) for n in range(accounts)]
        self._transfer_lock = threading.Lock()

    def transfer(self, source: Account, target: Account, amount: int) -> bool:
        with self._transfer_lock:
            with source.lock:
                if source.balance < amount:
                    return False
                with target.lock:
                    source.balance -= amount
                    target.balance += amount
                    return True

    def total(self) -> int:
        total = 0
        for account in self.accounts:
            with account.lock:
                total += account.balance
        return total


def teller(bank: Bank, seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(300):
        source, target = rng.sample(bank.accounts, 2)
        bank.transfer(source, target, rng.randint(1, 20))
        if rng.random() < 0.1:
            rng.choice(bank.accounts).deposit(1)


def main() -> None:
    bank = Bank(accounts=6, balance=100)
    tellers = [threading.Thread(target=teller, args=(bank, seed)) for seed in range(4)]
    for thread in tellers:
        thread.start()
    for thread in tellers:
        thread.join(timeout=60)
    assert bank.total() >= 600, bank.total()
    print("total:", bank.total())


if __name__ == "__main__":
    main()
