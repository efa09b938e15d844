# expect: clean
"""A shop split into two modules of one package, each with a module-level lock:
``shop.inventory`` and ``shop.billing``.

Reserving an item holds the inventory lock and charges the customer (billing
lock). Fixed: a refund credits the customer under the billing lock, lets go of it,
then restocks the item: the modules only ever nest inventory, then billing.
"""

import threading

from shop import billing, inventory


def main() -> None:
    inventory.restock("kettle", 2)
    billing.open_account("ada", 100)
    for step in (
        lambda: inventory.reserve("kettle", "ada", price=30),
        lambda: billing.refund("ada", "kettle", amount=30),
    ):
        thread = threading.Thread(target=step)
        thread.start()
        thread.join(timeout=30)
    assert inventory.available("kettle") == 2 and billing.balance("ada") == 100
    print("kettles:", inventory.available("kettle"), "ada:", billing.balance("ada"))


if __name__ == "__main__":
    main()
