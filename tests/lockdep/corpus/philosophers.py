# expect: order
"""Dining philosophers: five forks in a list, each philosopher takes the fork on
the left, then the fork on the right.

The bug is the textbook one: the last philosopher's right fork is the first
philosopher's left fork, so the five of them, each holding a left fork, wait for
each other forever.
"""

import threading

SEATS = 5
MEALS = 3

forks = [threading.Lock() for _ in range(SEATS)]
meals_eaten = [0] * SEATS


def philosopher(seat: int) -> None:
    left, right = forks[seat], forks[(seat + 1) % SEATS]
    for _ in range(MEALS):
        with left:  # site
            with right:  # site
                meals_eaten[seat] += 1


def main() -> None:
    # Seated one at a time, each finishing before the next sits down: in this run
    # nobody starves, but the cycle of forks is there all the same.
    for seat in range(SEATS):
        diner = threading.Thread(target=philosopher, args=(seat,), name=f"philosopher-{seat}")
        diner.start()
        diner.join(timeout=30)
    assert meals_eaten == [MEALS] * SEATS, meals_eaten
    print("meals:", meals_eaten)


if __name__ == "__main__":
    main()
