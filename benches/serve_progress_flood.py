#!/usr/bin/env python3
"""Sends N progress reports (default 1,000,000) to `picaboot serve` from the box's address
(this client fetches alice's kernel and initrd first), plus N/10 spoofed ones from 127.0.0.2,
pipelined on keep-alive connections, and prints serve's RSS before, after, and its peak
(VmHWM), so that a bound on what serve keeps in memory shows as a flat figure.

usage: benches/serve_progress_flood.py PICABOOT_BINARY [N]"""
import os, socket, subprocess, sys, tempfile, time

binary = sys.argv[1]
n = int(sys.argv[2]) if len(sys.argv) > 2 else 1_000_000

def rss(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = v.strip()
    return out

def flood(port, count, source, path):
    s = socket.socket()
    s.bind((source, 0))
    s.connect(("127.0.0.1", port))
    batch = 2000
    got = 0
    codes = {}
    buf = b""
    sent = 0
    while sent < count:
        k = min(batch, count - sent)
        s.sendall(b"".join(b"GET " + path(sent + i).encode() + b" HTTP/1.1\r\nHost: t\r\n\r\n" for i in range(k)))
        sent += k
        want = sent
        while got < want:
            data = s.recv(1 << 20)
            if not data:
                raise SystemExit("connection closed")
            buf += data
            while True:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = buf[:end].decode()
                length = 0
                for l in head.split("\r\n")[1:]:
                    if l.lower().startswith("content-length:"):
                        length = int(l.split(":")[1])
                if len(buf) < end + 4 + length:
                    break
                code = head.split(" ")[1]
                codes[code] = codes.get(code, 0) + 1
                buf = buf[end + 4 + length:]
                got += 1
    s.close()
    return codes

with tempfile.TemporaryDirectory() as d:
    nb = os.path.join(d, "alice", "netboot")
    os.makedirs(nb)
    for f in ("linux", "initrd.gz", "boot.ipxe"):
        open(os.path.join(nb, f), "w").write(f + "\n")
    probe = socket.socket(); probe.bind(("127.0.0.1", 0)); port = probe.getsockname()[1]; probe.close()
    p = subprocess.Popen([binary, "serve", d, "--listen", f"127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port)).close(); break
            except OSError:
                time.sleep(0.05)
        flood(port, 1, "127.0.0.1", lambda i: "/alice/netboot/linux")
        flood(port, 1, "127.0.0.1", lambda i: "/alice/netboot/initrd.gz")
        before = rss(p.pid)
        t0 = time.time()
        ok = flood(port, n, "127.0.0.1", lambda i: f"/progress/alice?stage=s{i}&status=x{i}")
        spoof = flood(port, n // 10, "127.0.0.2", lambda i: f"/progress/alice?stage=done&status=ok")
        dt = time.time() - t0
        after = rss(p.pid)
        print(f"{n} reports from the box: {ok}; {n // 10} spoofed: {spoof}; {dt:.1f} s")
        print(f"serve RSS before {before['VmRSS']}, after {after['VmRSS']}, peak {after['VmHWM']}")
    finally:
        p.terminate(); p.wait()
