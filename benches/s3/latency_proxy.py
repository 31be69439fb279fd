"""A TCP proxy that adds a fixed latency to every request: each chunk the
client sends (an HTTP request) is forwarded after --delay-ms, as a server
that far away would see it. Responses stream back at once.

    python benches/s3/latency_proxy.py --listen 9100 --target 9000 --delay-ms 20
"""
import argparse
import asyncio


async def pipe(reader, writer, delay):
    try:
        while data := await reader.read(1 << 16):
            if delay:
                await asyncio.sleep(delay)
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", type=int, required=True)
    ap.add_argument("--target", type=int, required=True)
    ap.add_argument("--delay-ms", type=float, default=20)
    a = ap.parse_args()

    async def handle(client_r, client_w):
        server_r, server_w = await asyncio.open_connection("127.0.0.1", a.target)
        await asyncio.gather(pipe(client_r, server_w, a.delay_ms / 1000), pipe(server_r, client_w, 0))

    server = await asyncio.start_server(handle, "127.0.0.1", a.listen)
    print(f"ready {a.listen}", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
