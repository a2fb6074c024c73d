"""A registry token service for tests (Docker's token auth spec), with one user.

token-server.py ADDR PORT CERT KEY TOKEN_CERT TOKEN_KEY USER PASSWORD
Serves GET /token over TLS; answers with a JWT (RS256, x5c header) granting the requested
repository actions to USER when basic auth matches, and nothing otherwise.
"""
import base64, json, ssl, subprocess, sys, tempfile, time
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlparse

addr, port, cert, key, tcert, tkey, user, password = sys.argv[1:9]


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def der_of(pem_path):
    out = subprocess.run(["openssl", "x509", "-in", pem_path, "-outform", "DER"], capture_output=True, check=True)
    return base64.b64encode(out.stdout).decode()


X5C = [der_of(tcert)]


def sign(claims):
    header = {"alg": "RS256", "typ": "JWT", "x5c": X5C}
    signing_input = (b64(json.dumps(header).encode()) + "." + b64(json.dumps(claims).encode())).encode()
    with tempfile.NamedTemporaryFile() as f:
        f.write(signing_input)
        f.flush()
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", tkey, f.name], capture_output=True, check=True).stdout
    return signing_input.decode() + "." + b64(sig)


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        q = parse_qs(urlparse(self.path).query)
        authed = False
        h = self.headers.get("Authorization", "")
        if h.startswith("Basic "):
            u, _, p = base64.b64decode(h[6:]).decode().partition(":")
            authed = (u, p) == (user, password)
            if not authed:
                self.send_response(401)
                self.end_headers()
                return
        access = []
        if authed:
            for scope in q.get("scope", []):
                kind, _, rest = scope.partition(":")
                name, _, actions = rest.rpartition(":")
                access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        claims = {"iss": "vic-test-issuer", "sub": user if authed else "", "aud": q.get("service", [""])[0],
                  "exp": now + 300, "nbf": now - 10, "iat": now, "jti": str(now), "access": access}
        body = json.dumps({"token": sign(claims)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


server = HTTPServer((addr, int(port)), Handler)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
print("ready", flush=True)
server.serve_forever()
