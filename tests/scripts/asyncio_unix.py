# Python's asyncio over unix sockets, in one program: an echo server on a
# named socket and clients of it, and a loop's own socketpair.
import asyncio, os, socket, tempfile

async def handle(reader, writer):
    while True:
        line = await reader.readline()
        if not line:
            break
        writer.write(line.upper())
        await writer.drain()
    writer.close()
    await writer.wait_closed()

async def client(path, n):
    reader, writer = await asyncio.open_unix_connection(path)
    out = []
    for i in range(n):
        writer.write(f"message {i}\n".encode())
        await writer.drain()
        out.append((await reader.readline()).decode().strip())
    writer.close()
    await writer.wait_closed()
    return out

async def main():
    d = tempfile.mkdtemp()
    path = os.path.join(d, "echo.sock")
    server = await asyncio.start_unix_server(handle, path, limit=1 << 21)
    print("socket file:", os.path.exists(path), oct(os.stat(path).st_mode)[:5])
    results = await asyncio.gather(*(client(path, 3) for _ in range(4)))
    for r in results:
        print(r)
    big = b"x" * (1 << 20) + b"\n"
    reader, writer = await asyncio.open_unix_connection(path, limit=1 << 21)
    writer.write(big)
    await writer.drain()
    echoed = await reader.readline()
    print("1 MiB echoed:", echoed == big.upper())
    writer.close()
    server.close()
    await server.wait_closed()
    os.unlink(path)
    os.rmdir(d)
    # Datagram and stream socketpairs under the loop.
    a, b = socket.socketpair()
    loop = asyncio.get_running_loop()
    a.setblocking(False)
    b.setblocking(False)
    await loop.sock_sendall(a, b"ping")
    print("socketpair:", await loop.sock_recv(b, 16))
    a.close()
    b.close()

asyncio.run(main())
print("done")
