# expect: clean
"""A pricing service that leans on functools caches from many threads: lru_cache
and cache on pure functions, cached_property on objects whose properties read
other objects' cached properties (nested first computations), and a cache
cleared while other threads use it.
"""

import functools
import threading
from decimal import Decimal


@functools.lru_cache(maxsize=256)
def tax_rate(region: str) -> Decimal:
    return Decimal("0.2") if region.startswith("eu") else Decimal("0.07")


@functools.cache
def exchange_rate(currency: str) -> Decimal:
    return {"EUR": Decimal("1"), "USD": Decimal("0.9"), "GBP": Decimal("1.15")}[currency]


class Catalogue:
    def __init__(self, prices: dict[str, int]) -> None:
        self.prices = prices

    @functools.cached_property
    def average(self) -> Decimal:
        return Decimal(sum(self.prices.values())) / len(self.prices)


class Quote:
    def __init__(self, catalogue: Catalogue, region: str, currency: str) -> None:
        self.catalogue = catalogue
        self.region = region
        self.currency = currency

    @functools.cached_property
    def net(self) -> Decimal:
        return self.catalogue.average * exchange_rate(self.currency)

    @functools.cached_property
    def gross(self) -> Decimal:
        return (self.net * (1 + tax_rate(self.region))).quantize(Decimal("0.01"))


def main() -> None:
    catalogues = [Catalogue({f"item{i}": 10 * (i + n) for i in range(5)}) for n in range(4)]
    regions = ["eu-west", "eu-north", "us-east", "ap-south"]
    totals: list[Decimal] = []
    totals_lock = threading.Lock()

    def client(seed: int) -> None:
        subtotal = Decimal(0)
        for n in range(300):
            quote = Quote(catalogues[(seed + n) % 4], regions[n % 4], ("EUR", "USD", "GBP")[n % 3])
            subtotal += quote.gross
            if n == 150 and seed == 0:
                tax_rate.cache_clear()
        with totals_lock:
            totals.append(subtotal)

    clients = [threading.Thread(target=client, args=(seed,)) for seed in range(6)]
    for thread in clients:
        thread.start()
    for thread in clients:
        thread.join(timeout=60)
    assert len(totals) == 6 and tax_rate.cache_info().currsize <= 4
    print("quoted", sum(totals))


if __name__ == "__main__":
    main()
