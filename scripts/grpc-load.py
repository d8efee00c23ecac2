#!/usr/bin/env python3
"""Concurrent gRPC calls against one address, counted by status code.

    scripts/grpc-load.py ADDR [--calls 4000] [--concurrency 320]
        [--channels 8] [--token wst_…] [--allow CODE ...]

Each of CONCURRENCY workers makes calls one after another until CALLS have
been made: grpc.health.v1.Health/Check. The workers share CHANNELS channels (separate HTTP/2
connections; a proxy such as nginx allows 128 streams per client
connection by default), so up to CONCURRENCY calls are in flight at once.
Exits 1 if any call ends with a code other than OK (or one of --allow),
printing the first few failures; a proxy's 502 arrives as UNAVAILABLE.
Needs grpcio and grpcio-health-checking (pip; .ci/run installs them).
"""

import argparse
import asyncio
import collections
import sys
import time

import grpc
from grpc_health.v1 import health_pb2


def workspace_stubs(channel):
    """CreateWorkspace and GetWorkspace with hand-written protobuf encoding:
    the repository's proto is not compiled for Python, and the two requests
    need one string field each (CreateWorkspaceRequest.name = 2,
    GetWorkspaceRequest.id = 1; Workspace.id = 1 in the answer)."""

    def encode_string_field(number, text):
        data = text.encode()
        return bytes([number << 3 | 2]) + _varint(len(data)) + data

    create = channel.unary_unary(
        "/workspace.v1.WorkspaceService/CreateWorkspace",
        request_serializer=lambda name: encode_string_field(2, name),
        response_deserializer=_first_string_field,
    )
    get = channel.unary_unary(
        "/workspace.v1.WorkspaceService/GetWorkspace",
        request_serializer=lambda id_: encode_string_field(1, id_),
        response_deserializer=_first_string_field,
    )
    return create, get


def _varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _first_string_field(data):
    """Field 1 of a message whose field 1 is a string (Workspace.id)."""
    if len(data) >= 2 and data[0] == (1 << 3 | 2):
        length, shift, index = 0, 0, 1
        while True:
            byte = data[index]
            length |= (byte & 0x7F) << shift
            index += 1
            shift += 7
            if not byte & 0x80:
                break
        return data[index : index + length].decode()
    return ""


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("addr")
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=320)
    parser.add_argument("--channels", type=int, default=8)
    parser.add_argument("--token", help="a demo token: also create and get workspaces")
    parser.add_argument("--allow", nargs="*", default=[], help="codes that do not fail the run")
    parser.add_argument("--timeout", type=float, default=20.0, help="seconds per call")
    args = parser.parse_args()

    # A local subchannel pool per channel: otherwise grpcio shares one
    # connection among channels with equal arguments.
    channels = [
        grpc.aio.insecure_channel(
            args.addr, options=[("grpc.use_local_subchannel_pool", 1), ("grpc.channel_id", i)]
        )
        for i in range(args.channels)
    ]
    codes = collections.Counter()
    failures = []
    remaining = [args.calls]
    in_flight = [0, 0]  # now, most
    metadata = (("authorization", f"Bearer {args.token}"),) if args.token else None

    async def record(call):
        in_flight[0] += 1
        in_flight[1] = max(in_flight[1], in_flight[0])
        try:
            result = await call
            codes["OK"] += 1
            return result
        except grpc.aio.AioRpcError as err:
            codes[err.code().name] += 1
            if err.code().name not in args.allow and len(failures) < 5:
                failures.append(f"{err.code().name}: {err.details()}")
            return None
        finally:
            in_flight[0] -= 1

    async def worker(index):
        channel = channels[index % len(channels)]
        check = channel.unary_unary(
            "/grpc.health.v1.Health/Check",
            request_serializer=health_pb2.HealthCheckRequest.SerializeToString,
            response_deserializer=health_pb2.HealthCheckResponse.FromString,
        )
        _, get = workspace_stubs(channel)
        turn = index
        while remaining[0] > 0:
            remaining[0] -= 1
            turn += 1
            if workspace_id and turn % 2 == 0:
                await record(get(workspace_id, metadata=metadata, timeout=args.timeout))
            else:
                await record(check(health_pb2.HealthCheckRequest(), timeout=args.timeout))

    for channel in channels:
        await channel.channel_ready()
    workspace_id = None
    if args.token:
        create, _ = workspace_stubs(channels[0])
        workspace_id = await create(
            f"load target {time.time_ns()}", metadata=metadata, timeout=args.timeout
        )
    started = time.monotonic()
    await asyncio.gather(*(worker(i) for i in range(args.concurrency)))
    elapsed = time.monotonic() - started
    for channel in channels:
        await channel.close()

    total = sum(codes.values())
    print(
        f"{total} calls in {elapsed:.1f} s, at most {in_flight[1]} in flight over "
        f"{args.channels} connections: "
        + ", ".join(f"{code} {count}" for code, count in sorted(codes.items()))
    )
    bad = {code: n for code, n in codes.items() if code != "OK" and code not in args.allow}
    if bad:
        for failure in failures:
            print("  " + failure)
        print(f"grpc-load: {sum(bad.values())} of {total} calls failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
