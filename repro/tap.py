"""A logging forwarder: PORT -> UPSTREAM, logging method, path and Authorization of every request;
a Location pointing at REWRITE_FROM is rewritten to REWRITE_TO. usage: tap.py PORT UPSTREAM LOG [FROM TO]"""
import sys, json, urllib3
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
PORT, UP, LOG = int(sys.argv[1]), sys.argv[2], sys.argv[3]
FROM, TO = (sys.argv[4], sys.argv[5]) if len(sys.argv) > 5 else (None, None)
pool = urllib3.PoolManager()
class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def log_message(self, *a): pass
    def go(self):
        with open(LOG, 'a') as f:
            f.write(json.dumps([PORT, self.command, self.path[:90], self.headers.get('Authorization')]) + '\n')
        n = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(n) if n else None
        hdrs = {k: v for k, v in self.headers.items() if k.lower() not in ('host', 'connection')}
        r = pool.request(self.command, UP + self.path, headers=hdrs, body=body, redirect=False, preload_content=True, decode_content=False)
        self.send_response(r.status)
        for k, v in r.headers.items():
            if k.lower() in ('transfer-encoding', 'connection', 'content-length'): continue
            if k.lower() == 'location' and FROM: v = v.replace(FROM, TO)
            self.send_header(k, v)
        data = r.data
        self.send_header('Content-Length', r.headers.get('Content-Length', str(len(data))) if self.command == 'HEAD' else str(len(data)))
        self.end_headers()
        if self.command != 'HEAD': self.wfile.write(data)
    do_GET = do_HEAD = do_POST = go
ThreadingHTTPServer(('127.0.0.1', PORT), H).serve_forever()
