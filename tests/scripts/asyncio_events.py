"""Python's asyncio event loop on epoll: timers in deadline order,
wait_for timeouts, subprocesses with pipes (communicate, a shell's exit
status and standard error, concurrent readers of streamed lines), pipe
transports with EOF, a signal handler, an executor thread waking the loop,
many concurrent sleepers. Prints only what is the same on every run.

The loop's self-pipe is an os.pipe: asyncio's default loop makes it from
socket.socketpair, and this program tests the loop's use of epoll, pipes
and subprocesses, not unix sockets."""

import asyncio
import os
import signal
import sys


class _PipeEnd:
    """One end of an os.pipe with the socket methods the loop calls on
    its self-pipe."""

    def __init__(self, fd):
        self._fd = fd

    def fileno(self):
        return self._fd

    def setblocking(self, flag):
        os.set_blocking(self._fd, flag)

    def recv(self, n):
        return os.read(self._fd, n)

    def send(self, data):
        return os.write(self._fd, data)

    def close(self):
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class PipeSelfLoop(asyncio.SelectorEventLoop):
    def _make_self_pipe(self):
        r, w = os.pipe()
        self._ssock, self._csock = _PipeEnd(r), _PipeEnd(w)
        self._ssock.setblocking(False)
        self._csock.setblocking(False)
        self._internal_fds += 1
        self._add_reader(self._ssock.fileno(), self._read_from_self)


async def count_lines(n):
    p = await asyncio.create_subprocess_exec(
        "/bin/sh", "-c", f"i=0; while [ $i -lt {n} ]; do i=$((i+1)); echo line $i; done",
        stdout=asyncio.subprocess.PIPE,
    )
    lines = 0
    last = b""
    while True:
        line = await p.stdout.readline()
        if not line:
            break
        lines += 1
        last = line
    await p.wait()
    return lines, last.strip().decode(), p.returncode


async def main():
    loop = asyncio.get_running_loop()
    print("selector", type(loop._selector).__name__)

    order = []
    for delay, name in [(0.03, "c"), (0.01, "a"), (0.02, "b"), (0.0, "first")]:
        loop.call_later(delay, order.append, name)
    loop.call_soon(order.append, "soon")
    await asyncio.sleep(0.08)
    print("timers", order)

    try:
        await asyncio.wait_for(asyncio.sleep(10), 0.05)
    except asyncio.TimeoutError:
        print("wait_for timed out")

    p = await asyncio.create_subprocess_exec(
        "/bin/cat", stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    data = b"hello through cat\n" * 20000
    out, _ = await p.communicate(data)
    print("cat", len(out), out == data, p.returncode)

    p = await asyncio.create_subprocess_shell(
        "echo out; echo err >&2; exit 3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await p.communicate()
    print("shell", out, err, p.returncode)

    print("concurrent", await asyncio.gather(*(count_lines(n) for n in (10, 300, 2000))))

    r, w = os.pipe()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(
        lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(r, "rb", 0)
    )
    wt, _ = await loop.connect_write_pipe(asyncio.Protocol, os.fdopen(w, "wb", 0))
    wt.write(b"line one\nline two\n")
    print("pipe", await reader.readline(), await reader.readline())
    wt.write(b"tail")
    wt.close()
    print("pipe eof", await reader.read())

    got = loop.create_future()
    loop.add_signal_handler(signal.SIGUSR1, got.set_result, "SIGUSR1")
    os.kill(os.getpid(), signal.SIGUSR1)
    print("signal", await asyncio.wait_for(got, 5))
    loop.remove_signal_handler(signal.SIGUSR1)

    print("executor", await loop.run_in_executor(None, sum, range(100000)))

    results = await asyncio.gather(
        *(asyncio.sleep(0.001 * (i % 10), result=i) for i in range(500))
    )
    print("sleepers", len(results), sum(results))

    q = asyncio.Queue()

    async def producer():
        for i in range(100):
            await q.put(i)
            if i % 10 == 0:
                await asyncio.sleep(0.001)
        await q.put(None)

    async def consumer():
        total = 0
        while (v := await q.get()) is not None:
            total += v
        return total

    _, total = await asyncio.gather(producer(), consumer())
    print("queue", total)


loop = PipeSelfLoop()
asyncio.set_event_loop(loop)
try:
    loop.run_until_complete(main())
finally:
    loop.close()
sys.stdout.flush()
