"""A small HTTP/1.1 server on 127.0.0.1 in a thread, standing in for tund in tests of what tundctl sends
and how it reports what it gets back."""
import http.server
import threading


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """Keep-alive like tund, and no access log on the test's stderr."""
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def send_body(self, status, body, headers=(), content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class FakeServer:
    """Serves `handler` (a QuietHandler subclass) until close(); `url` is where."""

    def __init__(self, handler):
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()
