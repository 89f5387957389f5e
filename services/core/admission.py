"""Admission control: at most `limit` chat streams run at once in this process; the next is refused at once.

Past its capacity a server does not get slower for one more chat, it gets slower for all of them
(benchmarks/bench_capacity.py: every stream's wait grows once the core is busy). A refused chat
gets 503 + Retry-After immediately, which a client (or a load balancer) can retry elsewhere or later.
The count is per process: with several workers each admits `limit` (MAX_CONCURRENT_CHATS).

Routers call `refuse_if_full()` first (a busy server answers before any store lookups), then
`acquire()` right before returning the stream, and wrap the stream in `Slot.guard`, which frees the
slot when the stream ends, fails, is closed, or is dropped without ever being started.
"""

from __future__ import annotations

from typing import AsyncIterator, Callable, TypeVar

from services.core.errors import Overloaded

T = TypeVar("T")
RETRY_AFTER_SECONDS = 2


class Admission:
    """A counter of running chat streams with a try-acquire; `limit` 0 admits everything (still counted)."""

    def __init__(self, *, limit: int, retry_after: int = RETRY_AFTER_SECONDS,
                 on_refusal: Callable[[], None] | None = None) -> None:
        self.limit = max(0, limit)
        self.retry_after = retry_after
        self.on_refusal = on_refusal
        self.active = 0

    @property
    def full(self) -> bool:
        return self.limit > 0 and self.active >= self.limit

    def refuse_if_full(self) -> None:
        """Raise `Overloaded` (503) when no slot is free; takes nothing."""
        if self.full:
            if self.on_refusal is not None:
                self.on_refusal()
            raise Overloaded(f"The service is busy answering other questions. Please try again in "
                             f"{self.retry_after} seconds.", retry_after=self.retry_after)

    def acquire(self) -> "Slot":
        """Take a slot or raise `Overloaded`; the caller must release it (`Slot.guard` does)."""
        self.refuse_if_full()
        self.active += 1
        return Slot(self)


class Slot:
    """One admitted chat; `release()` may be called any number of times."""

    def __init__(self, admission: Admission) -> None:
        self._admission: Admission | None = admission

    def release(self) -> None:
        admission, self._admission = self._admission, None
        if admission is not None:
            admission.active -= 1

    def guard(self, stream: AsyncIterator[T]) -> AsyncIterator[T]:
        """`stream`, releasing this slot when it ends, fails or is closed (or is dropped unstarted)."""
        return _Guarded(stream, self)

    def __del__(self) -> None:  # a response dropped before its stream began must not keep the slot
        self.release()


class _Guarded:
    """An async iterator (not a generator: one that never starts still runs `__del__`) over a slot's stream."""

    def __init__(self, stream: AsyncIterator[T], slot: Slot) -> None:
        self._stream = stream
        self._slot = slot

    def __aiter__(self) -> "_Guarded":
        return self

    async def __anext__(self):
        try:
            return await self._stream.__anext__()
        except BaseException:  # the end (StopAsyncIteration), a failure or a cancellation: the chat is over
            self._slot.release()
            raise

    async def aclose(self) -> None:
        self._slot.release()
        aclose = getattr(self._stream, "aclose", None)
        if aclose is not None:
            await aclose()

    def __del__(self) -> None:
        self._slot.release()
