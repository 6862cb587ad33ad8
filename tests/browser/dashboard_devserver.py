#!/usr/bin/python3
"""dashboard_devserver.py -- serve the dashboard against a fixture, no engine.

Usage: dashboard_devserver.py PORT FIXTURE.json HTML [JOURNEYS.json]

GET /             -> HTML (text/html; charset=utf-8)
GET /api/funnels  -> FIXTURE.json (application/json), re-read on every request,
                     so editing the file changes what the page sees next poll.
GET /api/journeys/<customer_id>, GET /api/journeys?id=<customer_id>
                  -> {"customer_id": ID, "journeys": JOURNEYS[ID] or []}, with
                     the server's rules (src/stage/api.c serve_journeys): ID is
                     percent-encoded, decoded byte-wise; a bad escape, more
                     than 128 bytes, an empty id= or bytes that are not UTF-8
                     -> 400; no id at all -> 404; errors are {"error": ...}.
                     JOURNEYS.json maps customer ids to journey lists
                     (src/http/lookup.h); re-read on every request; without it
                     every customer has none.
Anything else is 404. PORT 0 picks a free port. The first stdout line is
"listening on http://127.0.0.1:PORT/" (flushed), so a test can start the server
in the background and read the URL from it instead of sleeping. For
development and the browser test only; binds 127.0.0.1.
"""
import http.server
import json
import re
import sys

MAX_CUSTOMER_ID = 128  # src/codec/event.h FS_MAX_CUSTOMER_ID


def unescape(raw):
    """The id's bytes, as fs_http_unescape decodes them; None for a bad escape."""
    out = bytearray()
    i, b = 0, raw.encode("latin-1")
    while i < len(b):
        if b[i:i + 1] == b"%":
            if not re.fullmatch(rb"[0-9A-Fa-f]{2}", b[i + 1:i + 3]):
                return None
            out.append(int(b[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(b[i])
            i += 1
    return bytes(out)


class Handler(http.server.BaseHTTPRequestHandler):
    fixture = None
    html = None
    journeys = None

    def _error(self, code, msg):
        body = json.dumps({"error": msg}) + "\n"
        return self._send(code, "application/json", body.encode())

    def _journeys(self, raw):
        if raw is None:
            return self._error(404, "want /api/journeys/<customer_id> or /api/journeys?id=<id>")
        cid = unescape(raw)
        if cid is None or len(cid) > MAX_CUSTOMER_ID:
            return self._error(400, "the id is badly percent-encoded or longer than 128 bytes")
        if not cid:
            return self._error(400, "the id is empty")
        try:
            name = cid.decode("utf-8")
        except UnicodeDecodeError:
            return self._error(400, "the id is not UTF-8: no event can carry it")
        table = {}
        if self.journeys:
            with open(self.journeys, "rb") as f:
                table = json.load(f)
        doc = {"customer_id": name, "journeys": table.get(name, [])}
        body = json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n"
        return self._send(200, "application/json", body.encode("utf-8"))

    def _send(self, code, ctype, body):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    @staticmethod
    def _query_id(query):
        for part in query.split("&"):
            if part.startswith("id="):
                return part[3:]
        return None

    def do_GET(self):
        path, _, query = self.path.partition("?")
        try:
            if path in ("/", "/index.html"):
                with open(self.html, "rb") as f:
                    return self._send(200, "text/html; charset=utf-8", f.read())
            if path == "/api/funnels":
                with open(self.fixture, "rb") as f:
                    return self._send(200, "application/json", f.read())
            if path.startswith("/api/journeys/") and len(path) > len("/api/journeys/"):
                return self._journeys(path[len("/api/journeys/"):])
            if path in ("/api/journeys", "/api/journeys/"):
                return self._journeys(self._query_id(query) if path == "/api/journeys" else None)
        except (OSError, ValueError) as e:
            return self._send(500, "text/plain", str(e).encode())
        return self._send(404, "text/plain", b"not found\n")

    do_HEAD = do_GET

    def log_message(self, fmt, *args):  # quiet: the test's output stays readable
        pass


def main(argv):
    if len(argv) not in (3, 4):
        sys.stderr.write(__doc__)
        return 2
    Handler.fixture, Handler.html = argv[1], argv[2]
    Handler.journeys = argv[3] if len(argv) == 4 else None
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", int(argv[0])), Handler)
    print("listening on http://127.0.0.1:%d/" % srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
