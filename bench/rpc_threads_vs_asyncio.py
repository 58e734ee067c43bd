"""Threads or asyncio for the gRPC server? Echo 1 MiB chunks through each server kind on loopback.

The same client (sync, one thread per stream) streams ``--mib`` MiB per call and reads the echo;
the server is grpc.server (ThreadPoolExecutor) or grpc.aio.server. Reports MB/s (1e6 bytes) for
one stream and for ``--streams`` concurrent streams.

    nice -n 10 python bench/rpc_threads_vs_asyncio.py [--mib 128] [--streams 8]
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor

import grpc

METHOD = "/bench.Echo/Stream"
CHUNK = b"\x01" * (1024 * 1024)
OPTIONS = [("grpc.max_send_message_length", 8 << 20), ("grpc.max_receive_message_length", 8 << 20)]


def _sync_echo(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
    yield from requests


async def _aio_echo(
    requests: AsyncIterator[bytes], context: grpc.aio.ServicerContext
) -> AsyncIterator[bytes]:
    async for item in requests:
        yield item


def _handler(behavior) -> grpc.GenericRpcHandler:  # type: ignore[no-untyped-def]
    return grpc.method_handlers_generic_handler(
        "bench.Echo", {"Stream": grpc.stream_stream_rpc_method_handler(behavior)}
    )


def run_client(port: int, mib: int, streams: int) -> float:
    def one() -> int:
        with grpc.insecure_channel(f"127.0.0.1:{port}", options=OPTIONS) as channel:
            call = channel.stream_stream(METHOD)
            return sum(len(r) for r in call(iter([CHUNK] * mib), timeout=600))

    start = time.perf_counter()
    with ThreadPoolExecutor(streams) as pool:
        total = sum(pool.map(lambda _: one(), range(streams)))
    return 2 * total / 1e6 / (time.perf_counter() - start)  # both directions


def bench_threads(mib: int, streams: int) -> tuple[float, float]:
    server = grpc.server(ThreadPoolExecutor(16), options=OPTIONS)
    server.add_generic_rpc_handlers((_handler(_sync_echo),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        return run_client(port, mib, 1), run_client(port, mib // streams, streams)
    finally:
        server.stop(0).wait()


def bench_asyncio(mib: int, streams: int) -> tuple[float, float]:
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, object] = {}

    async def serve() -> None:
        server = grpc.aio.server(options=OPTIONS)
        server.add_generic_rpc_handlers((_handler(_aio_echo),))
        holder["port"] = server.add_insecure_port("127.0.0.1:0")
        holder["server"] = server
        await server.start()
        ready.set()
        await server.wait_for_termination()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    ready.wait(10)
    try:
        port = int(holder["port"])  # type: ignore[call-overload]
        return run_client(port, mib, 1), run_client(port, mib // streams, streams)
    finally:
        server = holder["server"]
        asyncio.run_coroutine_threadsafe(server.stop(0), loop).result(10)  # type: ignore[attr-defined]
        thread.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mib", type=int, default=128)
    parser.add_argument("--streams", type=int, default=8)
    args = parser.parse_args()
    for name, bench in (("threads", bench_threads), ("asyncio", bench_asyncio)):
        single, concurrent = bench(args.mib, args.streams)
        print(f"{name:8s} 1 stream {single:7.0f} MB/s | {args.streams} streams {concurrent:7.0f} MB/s")


if __name__ == "__main__":
    main()
