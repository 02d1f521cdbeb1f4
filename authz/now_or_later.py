"""The one convention for "an answer now, or later": a function that can answer without I/O
returns the answer itself; one that needs I/O returns a coroutine that the caller awaits.
A cached Check then costs no coroutine, no task and no await on its way out (engine, gRPC
unary layer, HTTP check alike), and `type(result) is Later` tells the two apart at the
cost of one comparison."""

from __future__ import annotations

from types import CoroutineType
from typing import Any, Coroutine, TypeVar, Union

T = TypeVar("T")

Later = CoroutineType  # what "later" always is: the coroutine of an `async def`
NowOrLater = Union[T, Coroutine[Any, Any, T]]


async def settled(result: NowOrLater[T]) -> T:
    """The answer, awaited if it comes later (for callers that are coroutines anyway)."""
    return await result if type(result) is Later else result  # type: ignore[misc,return-value]
