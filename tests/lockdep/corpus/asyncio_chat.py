# expect: order
"""An asyncio chat server's state: rooms and users, each behind an asyncio.Lock.

join() locks the rooms, then the users, to add the user to a room and record it
on the user. The bug: kick() locks the users, then the rooms. Two tasks, one
joining and one kicking, can each wait for the other's lock forever; the event
loop goes on, but both tasks, and every task after them, hang.
"""

import asyncio


class ChatState:
    def __init__(self) -> None:
        self.rooms_lock = asyncio.Lock()
        self.rooms: dict[str, set[str]] = {"lobby": set()}
        self.users_lock = asyncio.Lock()
        self.users: dict[str, set[str]] = {}

    async def join(self, user: str, room: str) -> None:
        async with self.rooms_lock:  # site
            self.rooms.setdefault(room, set()).add(user)
            await asyncio.sleep(0)  # tell the room's members (network I/O)
            async with self.users_lock:  # site
                self.users.setdefault(user, set()).add(room)

    async def kick(self, user: str) -> None:
        async with self.users_lock:  # site
            rooms = self.users.pop(user, set())
            await asyncio.sleep(0)  # tell the user (network I/O)
            async with self.rooms_lock:  # site
                for room in rooms:
                    self.rooms[room].discard(user)


async def main() -> None:
    state = ChatState()
    # Each task runs to its end before the next starts: no hang in this run.
    await asyncio.create_task(state.join("ada", "lobby"), name="join")
    await asyncio.create_task(state.kick("ada"), name="kick")
    assert state.rooms == {"lobby": set()} and state.users == {}, state.rooms
    print("rooms:", state.rooms)


if __name__ == "__main__":
    asyncio.run(main())
