#!/usr/bin/env python3
"""Drive a QMP socket with the real third-party client, python `qemu.qmp`.

Usage: qemu_qmp_client.py SOCKET [--expect-event NAME] [--fd-command]

Connects with QMPClient (greeting, negotiation with oob only if offered),
runs query-status, optionally waits for an event that the caller triggers
(it prints READY first), and prints one JSON line with what it saw.
Exits non-zero on any failure, with the reason on stderr.
"""
import asyncio
import json
import os
import sys

from qemu.qmp import QMPClient


async def main() -> int:
    path = sys.argv[1]
    expect_event = None
    if "--expect-event" in sys.argv:
        expect_event = sys.argv[sys.argv.index("--expect-event") + 1]
    client = QMPClient("compat-check")
    await asyncio.wait_for(client.connect(path), timeout=10)
    result = {"greeting_version": client.greeting.QMP.version["qemu"] if client.greeting else None}
    result["status"] = dict(await asyncio.wait_for(client.execute("query-status"), timeout=10))
    try:
        await client.execute("no-such-command")
    except Exception as error:  # qemu.qmp raises ExecuteError carrying QEMU's error
        result["unknown_command_error"] = str(error)
    if "--fd-command" in sys.argv:
        read_end, write_end = os.pipe()
        client.send_fd_scm(write_end)
        await client.execute("getfd", {"fdname": "compat-fd"})
        os.close(read_end)
        os.close(write_end)
        await client.execute("closefd", {"fdname": "compat-fd"})
        result["getfd"] = "ok"
    if "--vfio" in sys.argv:
        # Register a watched device and an eventfd over SCM_RIGHTS, then play the host:
        # bump the fatal DLP counter in the fake sysfs tree and signal the eventfd.
        device_dir = sys.argv[sys.argv.index("--vfio") + 1]
        await client.execute("vfio-device-add", {"id": "pydev", "host": os.path.basename(device_dir),
                                                 "policy": "report"})
        efd = os.eventfd(0, os.EFD_CLOEXEC)
        client.send_fd_scm(efd)
        await client.execute("vfio-eventfd-add", {"device": "pydev", "severity": "any"})
        with client.listener() as listener:
            with open(os.path.join(device_dir, "aer_dev_fatal.new"), "w") as counters:
                counters.write("DLP 1\nTOTAL_ERR_FATAL 1\n")
            os.rename(os.path.join(device_dir, "aer_dev_fatal.new"), os.path.join(device_dir, "aer_dev_fatal"))
            os.eventfd_write(efd, 1)
            async def first_error():
                async for event in listener:
                    if event["event"] == "VFIO_PCI_ERROR":
                        return event
            event = await asyncio.wait_for(first_error(), timeout=20)
            result["vfio_event"] = event["data"]
        os.close(efd)
    if expect_event:
        with client.listener() as listener:
            print("READY", flush=True)
            async def first_matching():
                async for event in listener:
                    if event["event"] == expect_event:
                        return event
            event = await asyncio.wait_for(first_matching(), timeout=20)
            result["event"] = event["event"]
            result["event_has_timestamp"] = "timestamp" in event
    await client.disconnect()
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(asyncio.run(main()))
    except Exception as error:
        print(f"qemu.qmp check failed: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
