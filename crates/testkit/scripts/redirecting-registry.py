"""A registry front for tests: serves the API of the registry at BACKEND, but answers every blob
GET with a 307 to the backend (as registries do to their storage, Docker Hub to its CDN).

redirecting-registry.py ADDR PORT BACKEND   (BACKEND = host:port of a plain-HTTP registry)
"""
import sys
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

addr, port, backend = sys.argv[1], int(sys.argv[2]), sys.argv[3]
KEEP = ("Content-Type", "Content-Length", "Docker-Content-Digest", "Docker-Distribution-API-Version", "Location")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def relay(self, method):
        if method == "GET" and "/blobs/sha256:" in self.path:
            self.send_response(307)
            self.send_header("Location", f"http://{backend}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        req = urllib.request.Request(f"http://{backend}{self.path}", method=method)
        if self.headers.get("Accept"):
            req.add_header("Accept", self.headers["Accept"])
        try:
            resp = urllib.request.urlopen(req)
        except urllib.error.HTTPError as e:
            resp = e
        body = resp.read()
        self.send_response(resp.status if hasattr(resp, "status") else resp.code)
        for k in KEEP:
            v = resp.headers.get(k)
            if v is not None and k != "Content-Length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        self.relay("GET")

    def do_HEAD(self):
        self.relay("HEAD")


server = HTTPServer((addr, port), Handler)
print("ready", flush=True)
server.serve_forever()
