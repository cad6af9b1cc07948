#!/usr/bin/env python3
"""Writes corpus/: safetensors files, each a case of one header rule, whose
verdicts run.sh records from the reference parser. Re-run it, then run.sh,
after adding a case; commit corpus/ and verdicts.tsv."""
import os, shutil, struct

here = os.path.dirname(os.path.abspath(__file__))
out = os.path.join(here, "corpus")
shutil.rmtree(out, ignore_errors=True)
os.makedirs(out)

def t(dtype, shape, off, extra=""):
    s = ",".join(str(x) for x in shape)
    return '{"dtype":"%s","shape":[%s],"data_offsets":[%s,%s]%s}' % (dtype, s, off[0], off[1], extra)

def case(name, header, data=None, n=None, raw=None):
    """header: str or bytes; data: payload length (default: what the
    header's largest end would be is not computed: give it); n: a length
    field other than len(header)."""
    if raw is None:
        h = header.encode() if isinstance(header, str) else header
        raw = struct.pack("<Q", len(h) if n is None else n) + h + b"\0" * (data or 0)
    with open(os.path.join(out, name + ".safetensors"), "wb") as f:
        f.write(raw)

one = '{"a":%s}' % t("F32", [2], (0, 8))
case("valid-one-tensor", one, 8)
case("valid-empty-object", "{}", 0)
case("valid-two-tensors-any-order", '{"b":%s,"a":%s}' % (t("F32", [1], (4, 8)), t("F32", [1], (0, 4))), 8)
case("valid-scalar-shape", '{"a":%s}' % t("F64", [], (0, 8)), 8)
case("valid-zero-size", '{"a":%s}' % t("F32", [0, 7], (0, 0)), 0)
case("valid-two-zero-size-same-offset", '{"a":%s,"b":%s}' % (t("F32", [0], (0, 0)), t("U8", [0], (0, 0))), 0)
case("valid-metadata", '{"__metadata__":{"format":"pt"},"a":%s}' % t("U8", [3], (0, 3)), 3)
case("valid-metadata-empty", '{"__metadata__":{}}', 0)
case("valid-metadata-null", '{"__metadata__":null,"a":%s}' % t("U8", [1], (0, 1)), 1)
case("valid-padding-spaces", one + "    ", 8)
case("valid-padding-newline-tab-cr", one + "\n\t\r ", 8)
case("valid-leading-whitespace", " \n" + one, 8)
case("valid-extra-field-string", '{"a":%s}' % t("F32", [2], (0, 8), ',"note":"x"'), 8)
case("valid-extra-field-nested", '{"a":%s}' % t("F32", [2], (0, 8), ',"x":{"y":[1,2,{"z":null}]}'), 8)
case("valid-extra-field-number-float", '{"a":%s}' % t("F32", [2], (0, 8), ',"x":1.5e300'), 8)
case("valid-field-order", '{"a":{"data_offsets":[0,8],"shape":[2],"dtype":"F32"}}', 8)
case("valid-tensor-as-array", '{"a":["F32",[2],[0,8]]}', 8)
case("valid-dtype-as-enum-map", '{"a":{"dtype":{"F32":null},"shape":[2],"data_offsets":[0,8]}}', 8)
case("valid-name-escaped", '{"a\\u00e9\\n\\"b":%s}' % t("U8", [1], (0, 1)), 1)
case("valid-name-surrogate-pair", '{"\\ud83d\\ude00":%s}' % t("U8", [1], (0, 1)), 1)
case("valid-name-nul-escape", '{"\\u0000":%s}' % t("U8", [1], (0, 1)), 1)
case("valid-name-utf8", '{"é":%s}' % t("U8", [1], (0, 1)), 1)
case("valid-name-metadata-like", '{"__meta__":%s}' % t("U8", [1], (0, 1)), 1)
for d, bits in [("BOOL", 8), ("U8", 8), ("I8", 8), ("F8_E5M2", 8), ("F8_E4M3", 8), ("F8_E8M0", 8),
                ("F8_E4M3FNUZ", 8), ("F8_E5M2FNUZ", 8), ("I16", 16), ("U16", 16), ("F16", 16),
                ("BF16", 16), ("I32", 32), ("U32", 32), ("F32", 32), ("C64", 64), ("F64", 64),
                ("I64", 64), ("U64", 64), ("F4", 4), ("F6_E2M3", 6), ("F6_E3M2", 6)]:
    case("dtype-" + d, '{"a":%s}' % t(d, [4], (0, bits // 2)), bits // 2)
case("dtype-C128", '{"a":%s}' % t("C128", [1], (0, 16)), 16)
case("dtype-lowercase", '{"a":%s}' % t("f32", [1], (0, 4)), 4)
case("dtype-F8_E4M3FN", '{"a":%s}' % t("F8_E4M3FN", [1], (0, 1)), 1)
case("dtype-number", '{"a":{"dtype":1,"shape":[1],"data_offsets":[0,1]}}', 1)
case("dtype-enum-map-nonnull", '{"a":{"dtype":{"F32":1},"shape":[1],"data_offsets":[0,4]}}', 4)
case("dtype-F4-odd-count", '{"a":%s}' % t("F4", [3], (0, 2)), 2)
case("dtype-F6-not-whole-bytes", '{"a":%s}' % t("F6_E2M3", [2], (0, 2)), 2)

case("length-too-small-file", None, raw=b"\x02\0\0\0")
case("length-zero", "", 0)
case("length-past-file", one, 8, n=len(one) + 9)
case("length-over-limit", one, 8, n=100_000_001)
case("length-2^63", one, 8, n=1 << 63)
case("length-2^64-1", one, 8, n=(1 << 64) - 1)

case("json-not-object-array", "[]", 0)
case("json-not-object-string", '"x"', 0)
case("json-trailing-comma", '{"a":%s,}' % t("F32", [2], (0, 8)), 8)
case("json-trailing-garbage", one + "x", 8)
case("json-trailing-nul", one + "\0", 8)
case("json-two-objects", one + "{}", 8)
case("json-bom", "\ufeff" + one, 8)
case("json-single-quotes", "{'a':1}", 0)
case("json-raw-control-in-name", '{"a\tb":%s}' % t("U8", [1], (0, 1)), 1)
case("json-bad-escape", '{"a\\x":%s}' % t("U8", [1], (0, 1)), 1)
case("json-unterminated", '{"a":%s' % t("F32", [2], (0, 8)), 8)
case("utf8-invalid-byte", b'{"\xff":' + t("U8", [1], (0, 1)).encode() + b"}", 1)
case("utf8-encoded-surrogate", b'{"\xed\xa0\x80":' + t("U8", [1], (0, 1)).encode() + b"}", 1)
case("utf8-overlong", b'{"\xc0\xaf":' + t("U8", [1], (0, 1)).encode() + b"}", 1)
case("surrogate-lone-high-name", '{"\\ud800":%s}' % t("U8", [1], (0, 1)), 1)
case("surrogate-lone-low-name", '{"\\udc00":%s}' % t("U8", [1], (0, 1)), 1)
case("surrogate-reversed-pair", '{"\\udc00\\ud800":%s}' % t("U8", [1], (0, 1)), 1)
case("surrogate-high-then-letter", '{"\\ud800a":%s}' % t("U8", [1], (0, 1)), 1)
case("surrogate-in-metadata-value", '{"__metadata__":{"k":"\\ud800"}}', 0)
case("surrogate-in-extra-field", '{"a":%s}' % t("U8", [1], (0, 1), ',"x":"\\ud800"'), 1)

def nest(k):
    return "[" * k + "]" * k
# The top-level object and the tensor entry are two levels of nesting.
for k in (125, 126, 127):
    case("depth-extra-field-%d" % (k + 2), '{"a":%s}' % t("U8", [1], (0, 1), ',"x":' + nest(k)), 1)

case("fields-missing-dtype", '{"a":{"shape":[1],"data_offsets":[0,1]}}', 1)
case("fields-missing-shape", '{"a":{"dtype":"U8","data_offsets":[0,1]}}', 1)
case("fields-missing-offsets", '{"a":{"dtype":"U8","shape":[1]}}', 1)
case("fields-duplicate-dtype", '{"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}', 1)
case("fields-case-differs", '{"a":{"DType":"U8","shape":[1],"data_offsets":[0,1]}}', 1)
case("fields-tensor-null", '{"a":null}', 0)
case("fields-tensor-string", '{"a":"U8"}', 0)
case("fields-tensor-array-short", '{"a":["U8",[1]]}', 1)
case("fields-tensor-array-long", '{"a":["U8",[1],[0,1],1]}', 1)
case("dup-tensor-name", '{"a":%s,"a":%s}' % (t("U8", [1], (0, 1)), t("U8", [1], (0, 1))), 1)
case("dup-tensor-name-differs", '{"a":%s,"a":%s}' % (t("U8", [1], (0, 1)), t("U8", [2], (0, 2))), 2)
case("dup-metadata-key", '{"__metadata__":{"k":"1","k":"2"}}', 0)
case("dup-metadata-object", '{"__metadata__":{},"__metadata__":{}}', 0)
case("name-empty", '{"":%s}' % t("U8", [1], (0, 1)), 1)
case("metadata-not-object", '{"__metadata__":[]}', 0)
case("metadata-value-number", '{"__metadata__":{"k":1}}', 0)
case("metadata-value-null", '{"__metadata__":{"k":null}}', 0)
case("metadata-as-tensor-shaped", '{"__metadata__":%s}' % t("U8", [1], (0, 1)), 1)

case("shape-negative", '{"a":%s}' % t("U8", [-1], (0, 1)), 1)
case("shape-minus-zero", '{"a":%s}' % t("U8", ["-0"], (0, 0)), 0)
case("shape-float", '{"a":%s}' % t("U8", ["1.0"], (0, 1)), 1)
case("shape-exponent", '{"a":%s}' % t("U8", ["1e0"], (0, 1)), 1)
case("shape-string", '{"a":{"dtype":"U8","shape":["1"],"data_offsets":[0,1]}}', 1)
case("shape-not-array", '{"a":{"dtype":"U8","shape":1,"data_offsets":[0,1]}}', 1)
case("shape-2^64", '{"a":%s}' % t("U8", [1 << 64], (0, 1)), 1)
case("shape-overflow-product", '{"a":%s}' % t("U8", [1 << 32, 1 << 32], (0, 1)), 1)
case("shape-overflow-before-zero", '{"a":%s}' % t("U8", [1 << 63, 2, 0], (0, 0)), 0)
case("shape-zero-before-huge", '{"a":%s}' % t("U8", [0, 1 << 63, 2], (0, 0)), 0)
case("shape-bits-overflow", '{"a":%s}' % t("U64", [1 << 61], (0, 1)), 1)
case("shape-leading-zero-digit", '{"a":%s}' % t("U8", ["01"], (0, 1)), 1)

case("offsets-one-number", '{"a":{"dtype":"U8","shape":[1],"data_offsets":[1]}}', 1)
case("offsets-three-numbers", '{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1,2]}}', 1)
case("offsets-begin-after-end", '{"a":%s}' % t("U8", [0], (1, 0)), 1)
case("offsets-not-at-zero", '{"a":%s}' % t("U8", [1], (1, 2)), 2)
case("offsets-gap", '{"a":%s,"b":%s}' % (t("U8", [1], (0, 1)), t("U8", [1], (2, 3))), 3)
case("offsets-overlap", '{"a":%s,"b":%s}' % (t("U8", [2], (0, 2)), t("U8", [2], (1, 3))), 3)
case("offsets-same-range", '{"a":%s,"b":%s}' % (t("U8", [1], (0, 1)), t("U8", [1], (0, 1))), 1)
case("offsets-size-mismatch", '{"a":%s}' % t("F32", [2], (0, 7)), 7)
case("offsets-data-short-of-file", one, 9)
case("offsets-data-past-file", one, 7)
for label, v in [("2^62", 1 << 62), ("2^62+1", (1 << 62) + 1), ("2^63-1", (1 << 63) - 1),
                 ("2^63", 1 << 63), ("2^64-1", (1 << 64) - 1)]:
    case("offsets-end-" + label, '{"a":%s}' % t("U8", [v], (0, v)), 0)
    case("offsets-begin-" + label, '{"a":%s,"b":%s}' % (t("U8", [v], (0, v)), t("U8", [0], (v, v))), 0)
case("offsets-wrap-2^64", '{"a":%s,"b":%s}' % (t("U8", [(1 << 64) - 1], (0, (1 << 64) - 1)), t("U8", [1], ((1 << 64) - 1, 0))), 1)
case("offsets-2^64", '{"a":%s}' % t("U8", [1], (1 << 64, (1 << 64) + 1)), 1)
for label, v in [("2^62", 1 << 62), ("2^63", 1 << 63), ("2^64-1", (1 << 64) - 1)]:
    case("offsets-size-mismatch-end-" + label, '{"a":%s}' % t("U8", [1], (0, v)), 1)
    case("offsets-first-at-" + label, '{"a":%s}' % t("U8", [0], (v, v)), 0)
case("extra-number-out-of-range", '{"a":%s}' % t("U8", [1], (0, 1), ',"x":1e400'), 1)
case("extra-number-negative-out-of-range", '{"a":%s}' % t("U8", [1], (0, 1), ',"x":-1e400'), 1)
case("extra-number-tiny", '{"a":%s}' % t("U8", [1], (0, 1), ',"x":1e-400'), 1)
case("extra-integer-2^64", '{"a":%s}' % t("U8", [1], (0, 1), ',"x":18446744073709551616'), 1)
case("extra-bool-null", '{"a":%s}' % t("U8", [1], (0, 1), ',"x":true,"y":null,"":false'), 1)
case("extra-key-metadata", '{"a":%s}' % t("U8", [1], (0, 1), ',"__metadata__":{}'), 1)
case("dtype-null", '{"a":{"dtype":null,"shape":[1],"data_offsets":[0,1]}}', 1)
case("dtype-enum-map-two-keys", '{"a":{"dtype":{"U8":null,"I8":null},"shape":[1],"data_offsets":[0,1]}}', 1)
case("dtype-enum-map-empty-array", '{"a":{"dtype":{"U8":[]},"shape":[1],"data_offsets":[0,1]}}', 1)
case("tensor-array-dtype-map", '{"a":[{"U8":null},[1],[0,1]]}', 1)
case("tensor-empty-object", '{"a":{}}', 0)
case("offsets-as-object", '{"a":{"dtype":"U8","shape":[1],"data_offsets":{"0":0,"1":1}}}', 1)
case("json-escape-slash", '{"a\\/b":%s}' % t("U8", [1], (0, 1)), 1)
case("json-short-unicode-escape", '{"a\\u00":%s}' % t("U8", [1], (0, 1)), 1)
case("metadata-value-escaped", '{"__metadata__":{"k\\n":"v\\u00e9"}}', 0)
case("metadata-null-and-tensor-null", '{"__metadata__":null}', 0)
case("depth-metadata-value-object", '{"__metadata__":{"k":{}}}', 0)
