# expect: order
"""Two services built on one base class that gives each instance its lock: a user
directory and a session store.

login() locks the directory, then the session store. The bug: expire_user()
locks the session store, then the directory, to mark the user logged out.
"""

import threading
import time


class Service:
    """A component with a name, some state, and a lock guarding the state."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"


class UserDirectory(Service):
    def __init__(self) -> None:
        super().__init__("users")
        self.users: dict[str, dict[str, object]] = {}

    def add(self, user: str) -> None:
        with self._lock:
            self.users[user] = {"online": False}


class SessionStore(Service):
    def __init__(self) -> None:
        super().__init__("sessions")
        self.sessions: dict[str, float] = {}


def login(directory: UserDirectory, store: SessionStore, user: str) -> None:
    with directory._lock:  # site
        directory.users[user]["online"] = True
        with store._lock:  # site
            store.sessions[user] = time.monotonic()


def expire_user(directory: UserDirectory, store: SessionStore, user: str) -> None:
    with store._lock:  # site
        store.sessions.pop(user, None)
        with directory._lock:  # site
            directory.users[user]["online"] = False


def main() -> None:
    directory, store = UserDirectory(), SessionStore()
    directory.add("ada")
    for action in (login, expire_user):
        thread = threading.Thread(target=action, args=(directory, store, "ada"))
        thread.start()
        thread.join(timeout=30)
    assert directory.users["ada"] == {"online": False} and not store.sessions
    print(directory, store, "ok")


if __name__ == "__main__":
    main()
