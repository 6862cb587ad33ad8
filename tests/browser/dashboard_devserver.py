#!/usr/bin/python3
"""dashboard_devserver.py -- serve the dashboard against a fixture, no engine.

Usage: dashboard_devserver.py PORT FIXTURE.json HTML

GET /             -> HTML (text/html; charset=utf-8)
GET /api/funnels  -> FIXTURE.json (application/json), re-read on every request,
                     so editing the file changes what the page sees next poll.
Anything else is 404. PORT 0 picks a free port. The first stdout line is
"listening on http://127.0.0.1:PORT/" (flushed), so a test can start the server
in the background and read the URL from it instead of sleeping. For
development and the browser test only; binds 127.0.0.1.
"""
import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    fixture = None
    html = None

    def _send(self, code, ctype, body):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        try:
            if path in ("/", "/index.html"):
                with open(self.html, "rb") as f:
                    return self._send(200, "text/html; charset=utf-8", f.read())
            if path == "/api/funnels":
                with open(self.fixture, "rb") as f:
                    return self._send(200, "application/json", f.read())
        except OSError as e:
            return self._send(500, "text/plain", str(e).encode())
        return self._send(404, "text/plain", b"not found\n")

    do_HEAD = do_GET

    def log_message(self, fmt, *args):  # quiet: the test's output stays readable
        pass


def main(argv):
    if len(argv) != 3:
        sys.stderr.write(__doc__)
        return 2
    Handler.fixture, Handler.html = argv[1], argv[2]
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(argv[0])), Handler)
    print("listening on http://127.0.0.1:%d/" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
