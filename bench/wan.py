"""A wide-area link in front of a lab host: a TCP relay that delays every byte, for the benchmark.

Operators deploy from home to servers 50-150 ms away, and every remote command of a deploy costs at least one
round trip; the lab hosts answer over a veth link at loopback latency, which hides that cost. The faithful way to
add latency is tc netem on the lab host's veth (`tc qdisc add dev VETH root netem delay 25ms`), but not every
kernel has sch_netem (the one the benchmark was written on has not). So the benchmark puts this relay in front of
the lab host's sshd instead: it listens on 127.0.0.1, connects each accepted connection to the lab host's sshd, and
forwards each chunk it reads in either direction half the round trip later, in order, without waiting for the
chunks before it (latency, not a bandwidth limit). pyinfra reaches the relay through its own connection data
(`ssh_hostname`, `ssh_port` and a known_hosts file naming the relay's address, see `connection_data`), so the
deploy runs unchanged.

The relay also counts the round trips it sees: a round trip begins each time the client sends after the server
has sent (the client waited for an answer, or at least could have).

What a relay does not emulate: it ends TCP at each side, so the client's TCP sees loopback acknowledgements and
Nagle's algorithm waits out the local delayed-ACK timer (about 40 ms) rather than a WAN round trip. Its own sockets
set TCP_NODELAY, so it adds no stall of its own. It runs in a thread of the benchmark's process, never longer
than its `lifetime`, and closes every connection when it stops.
"""

import asyncio
import os
import socket
import threading
import time

from lab import paths


class DelayRelay:
    """A delaying TCP relay from 127.0.0.1 to `target` (host, port), `round_trip` seconds added per round trip.

    Use it as a context manager: `with DelayRelay(target, 0.05) as relay: ... relay.port ...`."""

    def __init__(self, target, round_trip, lifetime=1800):
        self.target = target
        self.one_way = round_trip / 2
        self.lifetime = lifetime
        self.port = None
        self.round_trips = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()
        self._stop = None
        self._error = None

    def __enter__(self):
        self._thread.start()
        self._ready.wait(10)
        if self._error or self.port is None:
            raise RuntimeError(f"the delaying relay did not start: {self._error}")
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        """Stop the relay and close its connections (waits a few seconds for its thread at most)."""
        if self._stop is not None and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _run(self):
        try:
            self._loop.run_until_complete(self._serve())
        finally:
            self._loop.close()

    async def _serve(self):
        self._stop = asyncio.Event()
        connections = set()

        async def accepted(reader, writer):
            task = asyncio.current_task()
            connections.add(task)
            try:
                await self._relay(reader, writer)
            except asyncio.CancelledError:
                pass  # the relay is closing: a connection it cuts short is no error (asyncio would log one)
            finally:
                connections.discard(task)

        try:
            server = await asyncio.start_server(accepted, "127.0.0.1", 0)
        except OSError as error:
            self._error = error
            self._ready.set()
            return
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            await asyncio.wait_for(self._stop.wait(), self.lifetime)
        except asyncio.TimeoutError:
            pass
        server.close()
        for task in list(connections):
            task.cancel()
        await asyncio.gather(*connections, return_exceptions=True)
        await server.wait_closed()

    async def _relay(self, client_reader, client_writer):
        try:
            server_reader, server_writer = await asyncio.open_connection(*self.target)
        except OSError:
            client_writer.close()
            return
        for writer in (client_writer, server_writer):
            writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        last_sender = ["server"]  # the client's first bytes begin the first round trip

        def sent(side):
            if side == "client" and last_sender[0] == "server":
                self.round_trips += 1
            last_sender[0] = side

        pumps = [asyncio.ensure_future(self._pump(client_reader, server_writer, lambda: sent("client"))),
                 asyncio.ensure_future(self._pump(server_reader, client_writer, lambda: sent("server")))]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            for writer in (client_writer, server_writer):
                writer.close()

    async def _pump(self, reader, writer, on_read):
        """Forward what `reader` gives to `writer`, each chunk `one_way` seconds after it arrived."""
        queue = asyncio.Queue()

        async def deliver():
            while True:
                due, data = await queue.get()
                await asyncio.sleep(max(0.0, due - time.monotonic()))
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()

        delivering = asyncio.ensure_future(deliver())
        try:
            while True:
                data = await reader.read(65536)
                if data:
                    on_read()
                await queue.put((time.monotonic() + self.one_way, data))
                if not data:
                    break
            await delivering
        finally:
            delivering.cancel()


def connection_data(name, port, directory):
    """pyinfra connection data that reaches the lab host `name` through a relay on 127.0.0.1:`port`: the lab host's
    own host key, written to a known_hosts file in `directory` under the relay's address."""
    with open(paths.known_hosts_path(name)) as handle:
        key_type, key_data = handle.read().split()[1:3]
    known_hosts = os.path.join(directory, f"{name}-known_hosts")
    with open(known_hosts, "w") as handle:
        handle.write(f"[127.0.0.1]:{port} {key_type} {key_data}\n")
    return {"ssh_hostname": "127.0.0.1", "ssh_port": port, "ssh_known_hosts_file": known_hosts}
