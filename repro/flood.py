"""Unauthenticated requests for N distinct made-up paths on one keep-alive connection.
usage: flood.py PORT N [pathlen]"""
import http.client, sys
port, n = int(sys.argv[1]), int(sys.argv[2]); ln = int(sys.argv[3]) if len(sys.argv) > 3 else 10
c = http.client.HTTPConnection('127.0.0.1', port)
for i in range(n):
    c.request('GET', f'/DeepBeepMeep/Wan2.1/resolve/main/{i}-' + 'A' * ln)
    r = c.getresponse(); r.read()
print('last status', r.status)
