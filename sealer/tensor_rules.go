package sealer

import (
	"fmt"
	"math/bits"

	"github.com/vramseal/vramseal/internal/untrusted"
	"github.com/vramseal/vramseal/messages"
)

// The rules a shard's tensor table follows: the safetensors dtypes and their
// sizes, and the rules of a safetensors header, which package model's parser
// checks a file against and ValidateTensors checks a record's table against.

// dtypeBits is the size of one element of each safetensors dtype, in bits:
// every dtype of the reference parser (huggingface/safetensors 0.8's Dtype,
// 0.7's and the two FNUZ float8s), C64 being a complex64 of two F32 parts.
var dtypeBits = map[string]uint64{
	"BOOL": 8, "U8": 8, "I8": 8, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8,
	"F8_E4M3FNUZ": 8, "F8_E5M2FNUZ": 8,
	"I16": 16, "U16": 16, "F16": 16, "BF16": 16,
	"I32": 32, "U32": 32, "F32": 32,
	"I64": 64, "U64": 64, "F64": 64, "C64": 64,
	"F4": 4, "F6_E2M3": 6, "F6_E3M2": 6,
}

// KnownDType reports whether dtype is a safetensors dtype vramseal knows.
func KnownDType(dtype string) bool {
	_, ok := dtypeBits[dtype]
	return ok
}

// HeaderRule names one rule a safetensors header must follow.
type HeaderRule string

// The rules of a safetensors header. A HeaderError names the one broken.
const (
	RuleLength     HeaderRule = "header length"     // 8-byte length, at most the reference's limit and the file
	RuleUTF8       HeaderRule = "UTF-8"             // the header is valid UTF-8
	RuleObject     HeaderRule = "JSON object"       // one JSON object as the reference reads it, only JSON whitespace around
	RuleDuplicate  HeaderRule = "duplicate key"     // no key appears twice in an object
	RuleDType      HeaderRule = "dtype"             // a known dtype
	RuleShape      HeaderRule = "shape"             // an array of non-negative integers
	RuleOffsets    HeaderRule = "data_offsets"      // [begin, end], begin <= end
	RuleFields     HeaderRule = "fields"            // dtype, shape and data_offsets, each once
	RuleSize       HeaderRule = "size"              // end - begin == product(shape) x dtype size, no overflow
	RuleOverlap    HeaderRule = "overlap"           // no two tensors share a byte
	RuleGap        HeaderRule = "gap"               // no bytes between tensors, first at 0
	RuleFileSize   HeaderRule = "file size"         // data end + 8 + header length == file size
	RuleMetadata   HeaderRule = "metadata"          // __metadata__ maps strings to strings
	RuleTensorName HeaderRule = "tensor name"       // a non-empty name
	RuleTruncated  HeaderRule = "truncated"         // the file holds the header it announces
	RuleRead       HeaderRule = "unreadable header" // the header could not be read
)

// HeaderError says which rule a safetensors header breaks, and for which
// tensor. It matches messages.ErrInvalidInput with errors.Is.
type HeaderError struct {
	Tensor string // the tensor (or key) at fault; empty for the header as a whole
	Rule   HeaderRule
	Detail string // what was found, in plain ASCII
}

// Error names the tensor, the rule and what broke it.
func (e *HeaderError) Error() string {
	where := ""
	if e.Tensor != "" {
		where = " tensor " + untrusted.Quote(e.Tensor) + ":"
	}
	return fmt.Sprintf("%v: safetensors header:%s rule %q broken: %s", messages.ErrInvalidInput, where, string(e.Rule), e.Detail)
}

// Is makes errors.Is(err, messages.ErrInvalidInput) true.
func (e *HeaderError) Is(target error) bool { return target == messages.ErrInvalidInput }

// HeaderErr makes the HeaderError for tensor and rule, its detail formatted
// from format and args.
func HeaderErr(tensor string, rule HeaderRule, format string, args ...any) error {
	return &HeaderError{Tensor: tensor, Rule: rule, Detail: fmt.Sprintf(format, args...)}
}

// MaxTensorEnd bounds data offsets so that every sum of them fits an int64.
const MaxTensorEnd = uint64(1) << 62

// TensorBytes is product(shape) x the dtype's size, in bytes, computed
// without overflow.
func TensorBytes(name, dtype string, shape []uint64) (uint64, error) {
	elemBits, ok := dtypeBits[dtype]
	if !ok {
		return 0, HeaderErr(name, RuleDType, "unknown dtype %s", untrusted.Quote(dtype))
	}
	elems := uint64(1)
	for _, d := range shape {
		hi, lo := bits.Mul64(elems, d)
		if hi != 0 {
			return 0, HeaderErr(name, RuleSize, "the product of shape %v overflows 64 bits", shape)
		}
		elems = lo
	}
	hi, n := bits.Mul64(elems, elemBits)
	if hi != 0 || n/8 > MaxTensorEnd {
		return 0, HeaderErr(name, RuleSize, "shape %v of %s is too large for any file", shape, dtype)
	}
	if n%8 != 0 {
		return 0, HeaderErr(name, RuleSize, "shape %v of %s is %d bits, not whole bytes", shape, dtype, n)
	}
	return n / 8, nil
}
