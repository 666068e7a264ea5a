"""gevent's StreamServer echo, the peer of the models bench (benches/models.rs).

Same shape as every server there: bind 127.0.0.1:0, print `listening PORT`, one greenlet per
connection with TCP_NODELAY, recv(1024) and sendall until the peer closes. The bench runs it as
`models server gevent`, which pins itself to CPU 0 and then execs this script with the Python
named by $GEVENT_PYTHON (else target/gevent-venv/bin/python, else python3).
"""

import socket
import sys

try:
    from gevent.server import StreamServer
except ImportError as e:
    print(f"error: not available: gevent is not importable by {sys.executable} ({e})", flush=True)
    sys.exit(1)


def echo(sock, _address):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    while True:
        data = sock.recv(1024)
        if not data:
            return
        sock.sendall(data)


server = StreamServer(("127.0.0.1", 0), echo, backlog=16384)
server.start()
print(f"listening {server.server_port}", flush=True)
server.serve_forever()
