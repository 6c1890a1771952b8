"""asyncio-server: the reverse server as the asyncio docs' TCP echo server
(streams: read once, write, drain, close), one event loop.  With --uvloop the
same program on uvloop (Debian: python3-uvloop).  A peer for bench/compare.

usage: python3 asyncio_server.py [--uvloop] [PORT]   (0: a free port, on stderr)
"""
import asyncio
import sys


async def handle(reader, writer):
    data = await reader.read(65536)
    writer.write(data[::-1])
    try:
        await writer.drain()
    except ConnectionError:
        pass
    writer.close()


async def main(port, name):
    server = await asyncio.start_server(handle, "127.0.0.1", port)
    bound = server.sockets[0].getsockname()[1]
    print(f"{name}: listening on 127.0.0.1:{bound}", file=sys.stderr, flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    args = sys.argv[1:]
    name = "asyncio-server"
    if args[:1] == ["--uvloop"]:
        import uvloop

        uvloop.install()
        name, args = "uvloop-server", args[1:]
    try:
        asyncio.run(main(int(args[0]) if args else 0, name))
    except KeyboardInterrupt:
        pass
