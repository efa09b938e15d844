# expect: clean
"""An asyncio chat server's state: rooms and users, each behind an asyncio.Lock.

join() locks the rooms, then the users, to add the user to a room and record it
on the user. Fixed: kick() takes the locks in the same order, rooms then users, so joins
and kicks can run at the same time.
"""

import asyncio


class ChatState:
    def __init__(self) -> None:
        self.rooms_lock = asyncio.Lock()
        self.rooms: dict[str, set[str]] = {"lobby": set()}
        self.users_lock = asyncio.Lock()
        self.users: dict[str, set[str]] = {}

    async def join(self, user: str, room: str) -> None:
        async with self.rooms_lock:
            self.rooms.setdefault(room, set()).add(user)
            await asyncio.sleep(0)  # tell the room's members (network I/O)
            async with self.users_lock:
                self.users.setdefault(user, set()).add(room)

    async def kick(self, user: str) -> None:
        async with self.rooms_lock:
            async with self.users_lock:
                rooms = self.users.pop(user, set())
            await asyncio.sleep(0)  # tell the user (network I/O)
            for room in rooms:
                self.rooms[room].discard(user)


async def main() -> None:
    state = ChatState()
    await asyncio.create_task(state.join("ada", "lobby"), name="join")
    await asyncio.gather(state.kick("ada"), state.join("bob", "lobby"))
    await state.kick("bob")
    assert state.rooms == {"lobby": set()} and state.users == {}, state.rooms
    print("rooms:", state.rooms)


if __name__ == "__main__":
    asyncio.run(main())
