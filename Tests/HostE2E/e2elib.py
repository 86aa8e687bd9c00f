"""What both halves of the host end-to-end test use: the outside driver
(host_e2e.py, on the build machine) and the scenario inside the nested host
(scenario.py). Python stdlib only: inside, the interpreter is the build
machine's /usr/bin/python3 over 9p, without its pip packages' paths.
"""
import json
import os
import select
import socket
import time


class Failure(Exception):
    """A check that did not hold; the message says what was expected and seen."""


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds

    def remaining(self):
        return max(0.0, self.end - time.monotonic())

    def passed(self):
        return time.monotonic() >= self.end


def connect_unix(path, timeout):
    """Connects to a unix stream socket, retrying until the server has created it."""
    deadline = Deadline(timeout)
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(path)
            return sock
        except OSError as error:
            sock.close()
            if deadline.passed():
                raise Failure(f"cannot connect to {path}: {error}") from None
            time.sleep(0.02)


class LineChannel:
    """Newline-framed JSON objects over a file descriptor (a socket or a tty)."""

    def __init__(self, fd, name):
        self.fd = fd
        self.name = name
        self.buffer = b""

    def send(self, message):
        data = (json.dumps(message) + "\n").encode()
        while data:
            data = data[os.write(self.fd, data):]

    def receive(self, timeout):
        """The next object, or None when nothing came within timeout seconds."""
        deadline = Deadline(timeout)
        while b"\n" not in self.buffer:
            ready, _, _ = select.select([self.fd], [], [], deadline.remaining())
            if not ready:
                return None
            chunk = os.read(self.fd, 65536)
            if not chunk:
                raise Failure(f"{self.name}: connection closed")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        line = line.strip(b"\r")
        if not line.strip():
            return self.receive(deadline.remaining())
        try:
            return json.loads(line)
        except ValueError:
            # A tty may carry noise before the peer opens it; skip what is not ours.
            return self.receive(deadline.remaining())


class QMPClient:
    """A small synchronous QMP client. Events that arrive while waiting for a
    reply are kept, with their arrival time, for wait_event()."""

    def __init__(self, path, name, timeout=30):
        self.name = name
        self.sock = connect_unix(path, timeout)
        self.channel = LineChannel(self.sock.fileno(), name)
        self.events = []          # (monotonic arrival, event object)
        self.next_id = 0
        greeting = self.channel.receive(timeout)
        if greeting is None or "QMP" not in greeting:
            raise Failure(f"{name}: no QMP greeting, got {greeting!r}")
        self.greeting = greeting
        self.command("qmp_capabilities")

    def close(self):
        self.sock.close()

    def _next(self, deadline):
        message = self.channel.receive(deadline.remaining())
        if message is not None and "event" in message:
            self.events.append((time.monotonic(), message))
        return message

    def execute(self, name, arguments=None, timeout=30):
        """The whole reply: {"return": ...} or {"error": ...}."""
        self.next_id += 1
        request = {"execute": name, "id": f"e2e-{self.next_id}"}
        if arguments is not None:
            request["arguments"] = arguments
        self.channel.send(request)
        deadline = Deadline(timeout)
        while not deadline.passed():
            message = self._next(deadline)
            if message is not None and message.get("id") == request["id"]:
                return message
        raise Failure(f"{self.name}: no reply to {name} within {timeout} s")

    def command(self, name, arguments=None, timeout=30):
        reply = self.execute(name, arguments, timeout)
        if "error" in reply:
            raise Failure(f"{self.name}: {name} failed: {reply['error']}")
        return reply["return"]

    def hmp(self, line, timeout=30):
        return self.command("human-monitor-command", {"command-line": line}, timeout)

    def wait_event(self, match, timeout, since=0.0):
        """The first event (arrival time, event) at or after `since` for which
        match(event) holds; raises Failure after timeout seconds."""
        deadline = Deadline(timeout)
        seen = 0
        while True:
            for arrival, event in self.events[seen:]:
                if arrival >= since and match(event):
                    return arrival, event
            seen = len(self.events)
            if deadline.passed():
                names = [event["event"] for arrival, event in self.events if arrival >= since]
                raise Failure(f"{self.name}: expected event not seen within {timeout} s (saw {names})")
            self._next(deadline)

    def poll_events(self, timeout=0.0):
        """Reads whatever events have arrived (up to timeout seconds of waiting)."""
        deadline = Deadline(timeout)
        while True:
            message = self._next(deadline)
            if message is None:
                return


def event_named(name, **data):
    """A wait_event matcher: event `name` whose data has these members."""
    def match(event):
        return event.get("event") == name and all(event.get("data", {}).get(key) == value for key, value in data.items())
    return match
