# expect: clean
"""Dining philosophers: five forks in a list; each philosopher needs the forks on
both sides.

Fixed with Dijkstra's resource hierarchy: a philosopher takes the lower-numbered
fork first, so the last philosopher reaches for fork 0 before fork 4 and no cycle
of waiting can form. They all dine at the same time.
"""

import threading

SEATS = 5
MEALS = 200

forks = [threading.Lock() for _ in range(SEATS)]
meals_eaten = [0] * SEATS


def philosopher(seat: int) -> None:
    first, second = sorted((seat, (seat + 1) % SEATS))
    for _ in range(MEALS):
        with forks[first]:
            with forks[second]:
                meals_eaten[seat] += 1


def main() -> None:
    diners = [
        threading.Thread(target=philosopher, args=(seat,), name=f"philosopher-{seat}")
        for seat in range(SEATS)
    ]
    for diner in diners:
        diner.start()
    for diner in diners:
        diner.join(timeout=30)
    assert meals_eaten == [MEALS] * SEATS, meals_eaten
    print("meals:", meals_eaten)


if __name__ == "__main__":
    main()
