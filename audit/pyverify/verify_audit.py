#!/usr/bin/env python3
"""Check a vramseal audit log without vramseal.

Written from docs/audit-format.md alone, with Python's standard library only
(hmac, hashlib; HKDF by hand). It prints the verdict `vramseal audit verify`
prints and exits with the same code:

  0  intact: N records by worker "W", head H  (and every --expect-head held)
  1  NOT intact: line L: REASON: ...          (edited, missing, reordered,
                                               inserted or truncated)
  2  bad usage, or the log or token cannot be read, or the log is empty
  5  wrong key: the log names another worker or token fingerprint
  6  intact, but it does not hold an --expect-head: truncated or diverged

Usage: verify_audit.py LOG --token-file FILE [--worker-id W] [--expect-head SEQ:MAC ...]
"""

import argparse
import hashlib
import hmac
import json
import re
import sys

MAX_LINE_BYTES = 65536
MAC_PREFIX = b',"mac":"'
MAC_HEX = 64
SUFFIX_LEN = len(MAC_PREFIX) + MAC_HEX + 2  # ,"mac":" + 64 hex + "}
KEY_LABEL = b"vramseal/v1/audit-log"
GENESIS_LABEL = b"vramseal/v1/audit-genesis"
MIN_TOKEN = 16
MAX_TOKEN_FILE = 4096
SEVERITIES = ("info", "warning", "critical")
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


class Usage(Exception):
    """Exit 2."""


def hkdf_sha256(ikm, info, length=32):
    """RFC 5869 with no salt (32 zero bytes)."""
    prk = hmac.new(b"\x00" * 32, ikm, hashlib.sha256).digest()
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def read_token(path):
    """The token file's bytes, one trailing \\n or \\r\\n cut."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_TOKEN_FILE + 1)
    except OSError as e:
        raise Usage("token file %s cannot be read: %s" % (path, e.strerror))
    if len(data) > MAX_TOKEN_FILE:
        raise Usage("token file %s is longer than %d bytes" % (path, MAX_TOKEN_FILE))
    if data.endswith(b"\n"):
        data = data[:-1]
        if data.endswith(b"\r"):
            data = data[:-1]
    if len(data) < MIN_TOKEN:
        raise Usage("token in %s is %d bytes, too short: a token needs at least %d" % (path, len(data), MIN_TOKEN))
    return data


class Line:
    """One line of the file, and what it says about itself."""

    def __init__(self, text, complete):
        self.complete = complete
        self.error = None  # why it does not parse (checks 2-4), or None
        self.mac = None  # 32 bytes, if it ends in a well-formed mac
        self.body = None
        self.seq = 0
        self.worker = ""
        self.obj = None
        if len(text) + 1 > MAX_LINE_BYTES:
            self.error = "line longer than %d bytes" % MAX_LINE_BYTES
            return
        cut = len(text) - SUFFIX_LEN
        if cut < 1 or text[cut:cut + len(MAC_PREFIX)] != MAC_PREFIX or not text.endswith(b'"}'):
            self.error = "no mac at the end of the line"
            return
        try:
            self.mac = bytes.fromhex(text[cut + len(MAC_PREFIX):-2].decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            self.error = "mac is not hex"
            return
        self.body = text[:cut] + b"}"
        try:
            obj = json.loads(self.body.decode("utf-8", errors="replace"), parse_constant=_no_constant)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            self.error = "not a JSON record"
            return
        seq, worker = obj.get("seq"), obj.get("worker_id")
        if seq is not None and (type(seq) is not int or seq < 0 or seq >= 1 << 64):
            self.error = "not a JSON record"
            return
        if worker is not None and not isinstance(worker, str):
            self.error = "not a JSON record"
            return
        self.obj, self.seq, self.worker = obj, seq or 0, worker or ""
        if self.seq == 0:
            self.error = "no seq"


def _no_constant(name):
    raise ValueError(name)


def split_lines(data):
    """The log's lines: empty lines at the very end are not lines of it."""
    while data.endswith(b"\n\n"):
        data = data[:-1]
    parts = data.split(b"\n")
    lines = [Line(p, True) for p in parts[:-1]]
    if parts[-1]:
        lines.append(Line(parts[-1], False))
    return lines


class Chain:
    def __init__(self, key, worker):
        self.key, self.worker = key, worker
        self.genesis = hmac.new(key, GENESIS_LABEL + b"\x00" + worker.encode("utf-8"), hashlib.sha256).digest()

    def mac(self, prev, body):
        return hmac.new(self.key, prev + body, hashlib.sha256).digest()

    def continues(self, q, seq, prev):
        """q is a complete, parsed line with this seq, chained from prev."""
        return (q is not None and q.complete and q.error is None and q.seq == seq
                and q.worker == self.worker and hmac.compare_digest(self.mac(prev, q.body), q.mac))


def classify(chain, lines, i, expected, prev):
    """The reason and detail for bad line lines[i] (section 5)."""
    p = lines[i]
    if not p.complete:
        return "truncated", "the last line is cut short"
    q = lines[i + 1] if i + 1 < len(lines) else None
    if p.mac is not None and chain.continues(q, expected + 1, p.mac):
        return "edited", edit_detail(chain, p, expected)
    if chain.continues(q, expected, prev):
        if p.error is None and p.seq > expected and chains_later(chain, lines, i, q):
            return "reordered", "seq %d comes before seq %d" % (p.seq, expected)
        return "inserted", "the line is not part of the chain; seq %d follows it" % expected
    if p.error is not None or p.worker != chain.worker or p.seq == expected:
        return "edited", edit_detail(chain, p, expected)
    if p.seq < expected:
        return "inserted", "seq %d repeats an earlier record" % p.seq
    for r in lines[i + 1:]:
        if r.error is None and expected <= r.seq < p.seq:
            return "reordered", "seq %d comes before seq %d" % (p.seq, expected)
    if p.seq == expected + 1:
        return "missing", "seq %d is missing" % expected
    return "missing", "seq %d to %d are missing" % (expected, p.seq - 1)


def chains_later(chain, lines, i, q):
    """Following the chain from q (line i+1) up to p's seq, p continues it."""
    p, head, seq, j = lines[i], q.mac, q.seq, i + 2
    while seq + 1 < p.seq:
        r = lines[j] if j < len(lines) else None
        if not chain.continues(r, seq + 1, head):
            return False
        head, seq, j = r.mac, r.seq, j + 1
    return chain.continues(p, p.seq, head)


def edit_detail(chain, p, expected):
    if p.error is not None:
        return p.error
    if p.worker != chain.worker:
        return "worker_id %s, but the key is for worker %s" % (json.dumps(p.worker), json.dumps(chain.worker))
    if p.seq != expected:
        return "seq %d where seq %d belongs" % (p.seq, expected)
    return "mac does not match (the line was edited, or this is the wrong key)"


def summary_claims(lines):
    """Workers and WorkerStarted key fingerprints that the records claim,
    from the first line up to the first that is not a record."""
    workers, fingerprints = [], []
    for ln in lines:
        o = ln.obj
        if ln.error is not None or not record_shaped(o):
            break
        if (o.get("worker_id") or "") not in workers:
            workers.append(o.get("worker_id") or "")
        fields = o.get("fields") or {}
        if o.get("event") == "WorkerStarted" and isinstance(fields.get("key_fingerprint"), str):
            fingerprints.append(fields["key_fingerprint"])
    return workers, fingerprints


def record_shaped(o):
    t, ev, sev, f = o.get("time"), o.get("event"), o.get("severity"), o.get("fields")
    return ((t is None or (isinstance(t, str) and RFC3339.match(t))) and (ev is None or isinstance(ev, str))
            and (sev is None or sev in SEVERITIES) and (f is None or isinstance(f, dict)))


def named_worker(data):
    """The worker the first line naming one names."""
    for text in data.split(b"\n"):
        try:
            o = json.loads(text.decode("utf-8", errors="replace"), parse_constant=_no_constant)
        except ValueError:
            continue
        if isinstance(o, dict) and isinstance(o.get("worker_id"), str) and o["worker_id"]:
            return o["worker_id"]
    return ""


def parse_head(s):
    seq, sep, mac = s.partition(":")
    if not sep or not seq.isdigit() or not seq.isascii() or int(seq) == 0 or int(seq) >= 1 << 64 \
            or not re.fullmatch(r"[0-9a-fA-F]{64}", mac):
        raise Usage("--expect-head %r is not SEQ:MAC (a seq from 1, a colon and 64 hex digits)" % s)
    return int(seq), mac.lower()


def verify(path, token_file, worker, heads):
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise Usage("audit log %s cannot be read: %s" % (path, e.strerror))
    if not data:
        raise Usage("audit log %s is empty" % path)
    token = read_token(token_file)
    lines = split_lines(data)
    worker = worker or named_worker(data)
    if not worker:
        print("NOT intact: no line of it is an audit record")
        return 1
    key = hkdf_sha256(token, KEY_LABEL + b"\x00" + worker.encode("utf-8"))
    fingerprint = hashlib.sha256(token).hexdigest()[:6]
    chain = Chain(key, worker)
    prev, seq, macs = chain.genesis, 0, {}
    for i, ln in enumerate(lines):
        if ln.error is None and ln.seq == seq + 1 and ln.worker == worker and \
                hmac.compare_digest(chain.mac(prev, ln.body), ln.mac):
            prev, seq = ln.mac, ln.seq
            macs[seq] = ln.mac.hex()
            continue
        reason, detail = classify(chain, lines, i, seq + 1, prev)
        workers, fingerprints = summary_claims(lines)
        if workers and worker not in workers:
            print("wrong key: the log was written by worker %s, not %s" % (", ".join(workers), json.dumps(worker)))
            return 5
        if fingerprints and fingerprint not in fingerprints:
            print("wrong key: the log was written with the token of fingerprint %s, and this token's is %s"
                  % (", ".join(fingerprints), fingerprint))
            return 5
        print("NOT intact: line %d: %s: %s; the %d records before it are intact" % (i + 1, reason, detail, seq))
        return 1
    head = prev.hex() if seq else ""
    last = None
    for hseq, hmac_hex in sorted(set(heads)):
        if hseq not in macs:
            print("intact: %d records by worker %s, head %s; but it is truncated: the log ends at seq %d, before the published head at seq %d; %s"
                  % (seq, json.dumps(worker), head, seq, hseq, held(last)))
            return 6
        if macs[hseq] != hmac_hex:
            print("intact: %d records by worker %s, head %s; but it is diverged: the record at seq %d has mac %s, not the published %s; %s"
                  % (seq, json.dumps(worker), head, hseq, macs[hseq], hmac_hex, held(last)))
            return 6
        last = hseq
    print("intact: %d records by worker %s, head %s" % (seq, json.dumps(worker), head))
    return 0


def held(last):
    return "it holds none of the heads given" if last is None else "the last head it holds is seq %d" % last


def main(argv):
    ap = argparse.ArgumentParser(description="Check a vramseal audit log (docs/audit-format.md).")
    ap.add_argument("log")
    ap.add_argument("--token-file", required=True)
    ap.add_argument("--worker-id", default="")
    ap.add_argument("--expect-head", action="append", default=[])
    try:
        args = ap.parse_args(argv)
    except SystemExit as e:
        return 2 if e.code else 0
    try:
        heads = [parse_head(h) for h in args.expect_head]
        return verify(args.log, args.token_file, args.worker_id, heads)
    except Usage as e:
        print("error: %s" % e, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
