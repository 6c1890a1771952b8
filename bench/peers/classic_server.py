"""classic-server: the classic blocking Python reverse server revd replaces:
accept, recv(1024), reverse, send, close; one client at a time.  A peer for
bench/compare.

usage: python3 classic_server.py [PORT]   (0: a free port, printed on stderr)
"""
import socket
import sys

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 0))
s.listen()
print(f"classic-server: listening on 127.0.0.1:{s.getsockname()[1]}", file=sys.stderr, flush=True)
while True:
    conn, _ = s.accept()
    try:
        data = conn.recv(1024)
        conn.sendall(data[::-1])
    except OSError:
        pass
    conn.close()
