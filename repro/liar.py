"""A hostile mirror on loopback: serves files of a served/ folder with lies.

usage: liar.py PORT SERVED_DIR MODE LOG [TARGET]
MODE: honest wrongbytes wrongsize truncate norange badrange loop redirport 429 503 trickle
Every request (method, path, Authorization) is appended to LOG.
"""
import hashlib, os, sys, time, json
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
from urllib.parse import unquote

PORT, ROOT, MODE, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
TARGET = sys.argv[5] if len(sys.argv) > 5 else None
SHA = {}

def sha(p):
    if p not in SHA:
        h = hashlib.sha256()
        with open(p, 'rb') as f:
            for b in iter(lambda: f.read(1 << 20), b''):
                h.update(b)
        SHA[p] = h.hexdigest()
    return SHA[p]

class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def log_message(self, *a): pass
    def rec(self):
        with open(LOG, 'a') as f:
            f.write(json.dumps([PORT, self.command, self.path, self.headers.get('Authorization'), self.headers.get('Range')]) + '\n')
    def do_HEAD(self): self.go(False)
    def do_GET(self): self.go(True)
    def go(self, body):
        self.rec()
        parts = self.path.split('?')[0].strip('/').split('/')
        if MODE == 'loop':
            self.send_response(302); self.send_header('Location', self.path); self.send_header('Content-Length', '0'); self.end_headers(); return
        if MODE == 'redirport':
            self.send_response(302); self.send_header('Location', TARGET + self.path); self.send_header('Content-Length', '0'); self.end_headers(); return
        if MODE in ('429', '503'):
            self.send_response(int(MODE)); self.send_header('Retry-After', '3600'); self.send_header('Content-Length', '0'); self.end_headers(); return
        if len(parts) < 5 or parts[2] != 'resolve':
            self.send_response(404); self.send_header('Content-Length', '0'); self.end_headers(); return
        local = os.path.join(ROOT, unquote(parts[0]), unquote(parts[1]), *[unquote(p) for p in parts[4:]])
        if not os.path.isfile(local):
            self.send_response(404); self.send_header('Content-Length', '0'); self.end_headers(); return
        data = open(local, 'rb').read()
        digest = sha(local)
        if MODE in ('wrongbytes', 'wrongtrunc'):
            data = bytes(b ^ 0x55 for b in data[:2 << 20]) + data[2 << 20:]
        if MODE == 'wrongbytes_first':
            data = bytes([data[0] ^ 1]) + data[1:]
        if MODE == 'wrongsize':
            data = data + b'x' * 10
        size = len(data)
        rng = self.headers.get('Range')
        start, end = 0, size - 1
        status = 200
        if rng and MODE != 'norange':
            a, _, b = rng.split('=')[1].partition('-')
            start = int(a); end = int(b) if b else size - 1
            status = 206
        chunk = data[start:end + 1]
        self.send_response(status)
        self.send_header('Content-Length', str(len(chunk)))
        self.send_header('ETag', '"%s"' % digest)
        self.send_header('X-Linked-Etag', '"%s"' % digest)
        self.send_header('X-Linked-Size', str(size))
        self.send_header('Accept-Ranges', 'bytes')
        if status == 206:
            if MODE == 'badrange':
                s2 = max(0, start - 100)
                self.send_header('Content-Range', 'bytes %d-%d/%d' % (s2, s2 + len(chunk) - 1, size))
            else:
                self.send_header('Content-Range', 'bytes %d-%d/%d' % (start, end, size))
        self.end_headers()
        if not body: return
        if MODE == 'truncate' or (MODE == 'wrongtrunc' and start >= (3 << 20)):
            self.wfile.write(chunk[:len(chunk) // 2]); self.wfile.flush(); self.close_connection = True
            self.connection.shutdown(2); return
        if MODE == 'trickle':
            n = int(os.environ.get('TRICKLE_CHUNK', '1024')); d = float(os.environ.get('TRICKLE_SLEEP', '0.05'))
            for i in range(0, len(chunk), n):
                try:
                    self.wfile.write(chunk[i:i+n]); self.wfile.flush()
                except OSError: return
                time.sleep(d)
            return
        try:
            self.wfile.write(chunk)
        except OSError: pass

ThreadingHTTPServer(('127.0.0.1', PORT), H).serve_forever()
