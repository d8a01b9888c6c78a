"""Logs every request (and its Authorization) and answers 404. usage: sniff.py PORT LOG"""
import sys, json
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
PORT, LOG = int(sys.argv[1]), sys.argv[2]
class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def log_message(self, *a): pass
    def go(self):
        with open(LOG, 'a') as f:
            f.write(json.dumps([PORT, self.command, self.path, self.headers.get('Authorization')]) + '\n')
        self.send_response(404); self.send_header('Content-Length', '0'); self.end_headers()
    do_GET = do_HEAD = do_POST = go
ThreadingHTTPServer(('127.0.0.1', PORT), H).serve_forever()
