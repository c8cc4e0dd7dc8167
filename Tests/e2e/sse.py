"""A small Server-Sent Events client for the tests: reads events from tund's /events with a timeout."""
import http.client
import json
import socket


class EventClient:
    def __init__(self, port, last_event_id=None, timeout=10.0):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        headers = {"Accept": "text/event-stream"}
        if last_event_id is not None:
            headers["Last-Event-ID"] = str(last_event_id)
        self.connection.request("GET", "/events", headers=headers)
        self.response = self.connection.getresponse()
        assert self.response.status == 200, self.response.status
        assert self.response.getheader("Content-Type") == "text/event-stream"

    def next_event(self):
        """The next event as (id, type, data); comments and heartbeats are skipped."""
        fields = {}
        while True:
            line = self.response.fp.readline()
            if not line:
                raise EOFError("event stream ended")
            line = line.decode().rstrip("\r\n")
            if line == "":
                if "data" in fields:
                    return int(fields["id"]), fields["event"], json.loads(fields["data"])
                fields = {}
                continue
            if line.startswith(":"):
                continue
            key, _, value = line.partition(":")
            fields[key] = value[1:] if value.startswith(" ") else value

    def wait_for(self, predicate, limit=200):
        """Reads events until one matches; returns it. Bounded in count and by the socket timeout."""
        seen = []
        for _ in range(limit):
            event = self.next_event()
            seen.append(event)
            if predicate(event):
                return event, seen
        raise AssertionError(f"no matching event among {seen}")

    def close(self):
        try:
            self.connection.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.connection.close()
