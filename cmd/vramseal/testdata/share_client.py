"""A second process for serve_e2e_test.go: an inference process's side.

usage: share_client.py SOCKET SHARD verified|hold|copy

verified: acquire SHARD verified, print its bytes' sha256, show that the
mapping refuses writes, then wait for the revoke and print its reason.
hold: acquire SHARD, print "held", and wait to be killed.
copy: acquire SHARD verified, print the grant's handle and the sha256 of
the bytes copied out of the mapping (lease.read(), either handle), release.
"""

import hashlib
import sys
import time

import vramseal_share

sock, shard, mode = sys.argv[1:4]
deadline = time.monotonic() + 60
while True:  # the worker may still be sealing
    client = vramseal_share.connect(sock, timeout=30)
    if any(s.id == shard for s in client.shards()):
        break
    client.close()
    if time.monotonic() > deadline:
        sys.exit(f"shard {shard} never appeared")
    time.sleep(0.05)

lease = client.acquire(shard, verified=(mode != "hold"))
if mode == "copy":
    print("handle", lease.handle, flush=True)
    print("sha256", hashlib.sha256(lease.read()).hexdigest(), flush=True)
    lease.release()
    client.close()
    print("released", flush=True)
    sys.exit(0)
if mode == "hold":
    print("held", flush=True)
    time.sleep(120)
    sys.exit("was not killed")

view = lease.memoryview()
print("sha256", hashlib.sha256(view).hexdigest(), flush=True)
try:
    view[0] = view[0] ^ 1
    print("write: succeeded", flush=True)
except TypeError:
    print("write: refused", flush=True)
del view
if not lease.revoked.wait(60):
    sys.exit("no revoke within 60 s")
print("revoked", lease.revoke_reason, flush=True)
lease.release()
client.close()
