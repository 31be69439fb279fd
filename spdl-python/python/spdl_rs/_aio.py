"""The asyncio side of ``spdl_rs.pipeline``: the event loop a run owns.

A pipeline with ``async def`` stages or an async source starts one
:class:`LoopThread` when a run starts and stops it when the last run of
that pipeline ends (the Rust side counts the runs). Calls are handed to
the loop in batches (a byte on a socket wakes it) and run as tasks; the Rust stage bounds
how many are in flight (its ``concurrency``).
"""
import asyncio
import concurrent.futures
import inspect
import socket
import threading

# How long stopping the loop waits for its thread (tasks are cancelled first).
_STOP_TIMEOUT = 5.0


def kind(fn):
    """How the pipeline calls ``fn``: "async", "asyncgen", "gen" or "sync"."""
    call = fn if inspect.isroutine(fn) or not callable(fn) else getattr(fn, "__call__", fn)
    for target in (fn, call):
        if inspect.iscoroutinefunction(target):
            return "async"
        if inspect.isasyncgenfunction(target):
            return "asyncgen"
        if inspect.isgeneratorfunction(target):
            return "gen"
    return "sync"


def is_async_iterable(obj):
    """Whether ``obj`` is an async iterable (an async generator included)."""
    return hasattr(obj, "__aiter__")


async def _call(fn, item, timeout):
    """Runs one stage call: awaits ``fn(item)``, or collects an async
    generator's outputs into a list; ``timeout`` (seconds) cancels it. A
    ``SystemExit`` or ``KeyboardInterrupt`` raised by the stage fails the
    item instead of ending the loop."""
    try:
        return await _call_inner(fn, item, timeout)
    except (KeyboardInterrupt, SystemExit) as e:
        raise RuntimeError(f"the stage raised {type(e).__name__}") from e


async def _call_inner(fn, item, timeout):
    out = fn(item)
    if inspect.isasyncgen(out):
        work = _collect(out)
    elif inspect.isawaitable(out):
        work = out
    else:
        raise TypeError(f"an async stage returned {type(out).__name__}, not an awaitable")
    if timeout is None:
        return await work
    try:
        return await asyncio.wait_for(work, timeout)
    except asyncio.TimeoutError:
        raise TimeoutError(f"timed out after {timeout} s") from None


async def _collect(agen):
    return [x async for x in agen]


async def _pull(aiter, max_items, max_seconds):
    """Up to ``max_items`` items of ``aiter`` (fewer once ``max_seconds``
    passed with at least one): (items, ended, the exception that ended it
    or None); the items pulled before an exception are kept."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_seconds
    items = []
    while len(items) < max_items:
        try:
            items.append(await aiter.__anext__())
        except StopAsyncIteration:
            return items, True, None
        except Exception as e:  # noqa: BLE001 - reported by the pipeline
            return items, True, e
        if loop.time() >= deadline:
            break
    return items, False, None


class LoopThread:
    """An asyncio event loop running on a thread of its own."""

    def __init__(self, wake_fd, take_calls):
        """``wake_fd``: a socket (taken over) that pipeline threads write to
        when calls are waiting; ``take_calls()`` returns them."""
        self.loop = asyncio.new_event_loop()
        self._wake = socket.socket(fileno=wake_fd)
        self._take_calls = take_calls
        # asyncio keeps only weak references to tasks: these keep them alive.
        self._tasks = set()
        self.thread = threading.Thread(target=self._run, name="spdl-rs-asyncio", daemon=True)
        self.thread.start()

    def _run(self):
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.add_reader(self._wake.fileno(), self._start_calls)
            self.loop.run_forever()
            self.loop.remove_reader(self._wake.fileno())
            # Cancel what is left, so no coroutine is destroyed pending.
            tasks = asyncio.all_tasks(self.loop)
            for task in tasks:
                task.cancel()
            self.loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        finally:
            self.loop.close()
            self._wake.close()

    def _start_calls(self):
        """Starts the waiting ``(fn, item, timeout, done)`` calls as tasks;
        ``done(task)`` runs when each ends."""
        try:
            if not self._wake.recv(4096):  # before taking: a later wake-up is kept
                # The pipeline side closed: no more calls will come.
                self.loop.remove_reader(self._wake.fileno())
                return
        except BlockingIOError:
            pass
        for fn, item, timeout, done in self._take_calls():
            task = self.loop.create_task(_call(fn, item, timeout))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            task.add_done_callback(done)

    def pull(self, aiter, max_items, max_seconds):
        """Blocks (GIL released) until the next items of ``aiter`` arrive."""
        future = asyncio.run_coroutine_threadsafe(_pull(aiter, max_items, max_seconds), self.loop)
        while True:
            try:
                return future.result(timeout=0.1)
            except concurrent.futures.TimeoutError:
                # A loop that stopped meanwhile never finishes the pull.
                if not self.thread.is_alive():
                    raise RuntimeError("the pipeline's event loop stopped") from None

    def stop(self):
        """Stops the loop (pending coroutines are cancelled) and joins it."""
        if self.loop.is_closed():
            return
        try:
            self.loop.call_soon_threadsafe(self.loop.stop)
        except RuntimeError:  # closed in the meantime
            return
        self.thread.join(_STOP_TIMEOUT)
