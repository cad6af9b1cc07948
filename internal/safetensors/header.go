// Package safetensors reads and writes safetensors headers with exactly the
// reference parser's rules (sealer.HeaderRule). It is model's parser, kept
// below supervisor so that the runtime can seal a safetensors file with its
// tensor table too; model re-exports it.
package safetensors

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/vramseal/vramseal/internal/untrusted"
	"github.com/vramseal/vramseal/sealer"
)

// MaxSafetensorsHeader is the longest safetensors header accepted, in bytes,
// as in the reference parser.
const MaxSafetensorsHeader = 100_000_000

// safetensorsMetadataKey names the header entry that holds free-form
// string metadata rather than a tensor.
const safetensorsMetadataKey = "__metadata__"

// TensorTable is the checked header of a safetensors file: its tensors in
// offset order and its metadata.
type TensorTable struct {
	// HeaderLen is the length of the JSON header, padding included.
	HeaderLen int64 `json:"header_len"`
	// Tensors holds every tensor, ordered by offset (then name).
	Tensors []sealer.Tensor `json:"tensors"`
	// Metadata is the header's __metadata__ map; nil if absent.
	Metadata map[string]string `json:"metadata,omitempty"`
}

// DataStart is the file offset of the first tensor byte.
func (t *TensorTable) DataStart() int64 { return 8 + t.HeaderLen }

// ReadSafetensorsHeader reads and checks the header at the start of r, a
// safetensors file of fileSize bytes, and returns its tensor table. It reads
// only the 8-byte length and the header. Every rule of sealer.HeaderRule is checked;
// a broken one is a *sealer.HeaderError (ErrInvalidInput) naming tensor and rule.
func ReadSafetensorsHeader(r io.Reader, fileSize int64) (*TensorTable, error) {
	var n [8]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, sealer.HeaderErr("", sealer.RuleTruncated, "the file is %d bytes, shorter than the 8-byte header length", fileSize)
		}
		return nil, sealer.HeaderErr("", sealer.RuleRead, "%v", err)
	}
	length := binary.LittleEndian.Uint64(n[:])
	if length > MaxSafetensorsHeader {
		return nil, sealer.HeaderErr("", sealer.RuleLength, "header length %d is over the limit of %d bytes", length, MaxSafetensorsHeader)
	}
	if fileSize < 8 || length > uint64(fileSize-8) {
		return nil, sealer.HeaderErr("", sealer.RuleLength, "header length %d runs past the end of the %d-byte file", length, fileSize)
	}
	header := make([]byte, length)
	if _, err := io.ReadFull(r, header); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, sealer.HeaderErr("", sealer.RuleTruncated, "the file ends inside its %d-byte header", length)
		}
		return nil, sealer.HeaderErr("", sealer.RuleRead, "%v", err)
	}
	return ParseSafetensorsHeader(header, fileSize)
}

// ParseSafetensorsHeader checks header, the JSON that follows a safetensors
// file's 8-byte length, for a file of fileSize bytes, and returns its tensor
// table. Tensors may appear in any order; the table lists them by offset.
//
// It reads the header as the reference parser (huggingface/safetensors,
// SafeTensors::deserialize) does, checked against that parser's verdicts in
// testdata/safetensors-reference: JSON whitespace may pad the object on
// either side; a tensor entry is an object whose fields other than dtype,
// shape and data_offsets are ignored, or an array of those three; a dtype is
// a name or a one-key object {"NAME": null}; "__metadata__" may be null; no
// string may hold a lone surrogate escape, no value nest deeper than the
// reference's 127 levels, no number be out of a float64's range. It refuses
// two things the reference takes: a key repeated in an object (the reference
// keeps one copy silently) and a tensor with an empty name.
func ParseSafetensorsHeader(header []byte, fileSize int64) (*TensorTable, error) {
	if uint64(len(header)) > MaxSafetensorsHeader {
		return nil, sealer.HeaderErr("", sealer.RuleLength, "header length %d is over the limit of %d bytes", len(header), MaxSafetensorsHeader)
	}
	if !utf8.Valid(header) {
		return nil, sealer.HeaderErr("", sealer.RuleUTF8, "the header is not valid UTF-8 (first bad byte at %d)", firstInvalidUTF8(header))
	}
	if err := checkReferenceJSONLimits(header); err != nil {
		return nil, err
	}
	p := &headerParser{dec: json.NewDecoder(bytes.NewReader(header))}
	p.dec.UseNumber()
	table := &TensorTable{HeaderLen: int64(len(header))}
	if err := p.object(table); err != nil {
		return nil, err
	}
	rest := header[p.dec.InputOffset():]
	if i := bytes.IndexFunc(rest, func(r rune) bool { return !isJSONSpace(r) }); i >= 0 {
		return nil, sealer.HeaderErr("", sealer.RuleObject, "byte %d after the JSON object is not JSON whitespace", p.dec.InputOffset()+int64(i))
	}
	if err := table.place(fileSize); err != nil {
		return nil, err
	}
	return table, nil
}

// isJSONSpace reports whether r is whitespace between JSON tokens.
func isJSONSpace(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == '\r' }

// maxReferenceDepth is how deep the reference's JSON decoder (serde_json)
// nests arrays and objects, the header's own object counted.
const maxReferenceDepth = 127

// checkReferenceJSONLimits refuses what the reference's JSON decoder refuses
// but encoding/json takes: nesting deeper than maxReferenceDepth and a \u
// escape of a surrogate that is not half of a pair (encoding/json makes it
// U+FFFD). The header is valid UTF-8; its syntax is the decoder's to check.
func checkReferenceJSONLimits(h []byte) error {
	depth := 0
	for i := 0; i < len(h); i++ {
		switch h[i] {
		case '{', '[':
			if depth++; depth > maxReferenceDepth {
				return sealer.HeaderErr("", sealer.RuleObject, "the JSON nests deeper than %d levels at byte %d", maxReferenceDepth, i)
			}
		case '}', ']':
			depth--
		case '"':
			end, err := checkSurrogates(h, i+1)
			if err != nil {
				return err
			}
			i = end
		}
	}
	return nil
}

// checkSurrogates scans the string whose first byte is at i and returns the
// index of its closing quote (or len(h) if it has none).
func checkSurrogates(h []byte, i int) (int, error) {
	for ; i < len(h) && h[i] != '"'; i++ {
		if h[i] != '\\' {
			continue
		}
		i++
		if i >= len(h) || h[i] != 'u' {
			continue
		}
		r, ok := hex4(h, i+1)
		if !ok {
			return len(h), nil // a broken escape: the decoder refuses it
		}
		i += 4
		switch {
		case r >= 0xDC00 && r <= 0xDFFF:
			return 0, sealer.HeaderErr("", sealer.RuleObject, "a string holds a lone low surrogate escape at byte %d", i-5)
		case r >= 0xD800 && r <= 0xDBFF:
			lo, ok := rune(0), i+2 < len(h) && h[i+1] == '\\' && h[i+2] == 'u'
			if ok {
				lo, ok = hex4(h, i+3)
			}
			if !ok || lo < 0xDC00 || lo > 0xDFFF {
				return 0, sealer.HeaderErr("", sealer.RuleObject, "a string holds a lone high surrogate escape at byte %d", i-5)
			}
			i += 6
		}
	}
	return i, nil
}

// hex4 decodes the four hex digits at h[i:].
func hex4(h []byte, i int) (rune, bool) {
	if i+4 > len(h) {
		return 0, false
	}
	v, err := strconv.ParseUint(string(h[i:i+4]), 16, 16)
	return rune(v), err == nil
}

// headerParser walks a header's JSON token by token, so that duplicate keys
// are seen (encoding/json keeps the last silently).
type headerParser struct {
	dec *json.Decoder
}

// token reads the next token; a syntax error breaks the object rule, and so
// does a number the reference cannot hold (beyond a float64's range).
func (p *headerParser) token(tensor string) (json.Token, error) {
	tok, err := p.dec.Token()
	if err != nil {
		return nil, sealer.HeaderErr(tensor, sealer.RuleObject, "not valid JSON near byte %d", p.dec.InputOffset())
	}
	if num, ok := tok.(json.Number); ok {
		if _, err := strconv.ParseFloat(num.String(), 64); err != nil {
			return nil, sealer.HeaderErr(tensor, sealer.RuleObject, "a number near byte %d is out of range", p.dec.InputOffset())
		}
	}
	return tok, nil
}

func (p *headerParser) delim(tensor string, want json.Delim, rule sealer.HeaderRule, what string) error {
	tok, err := p.token(tensor)
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != want {
		return sealer.HeaderErr(tensor, rule, "%s must be a JSON %s, found %s", what, delimKind(want), tokenKind(tok))
	}
	return nil
}

// object reads the top-level object into table.
func (p *headerParser) object(table *TensorTable) error {
	if err := p.delim("", '{', sealer.RuleObject, "the header"); err != nil {
		return err
	}
	seen := map[string]bool{}
	for p.dec.More() {
		key, err := p.key("", seen)
		if err != nil {
			return err
		}
		if key == safetensorsMetadataKey {
			if table.Metadata, err = p.metadata(); err != nil {
				return err
			}
			continue
		}
		if key == "" {
			return sealer.HeaderErr("", sealer.RuleTensorName, "a tensor has an empty name")
		}
		t, err := p.tensor(key)
		if err != nil {
			return err
		}
		table.Tensors = append(table.Tensors, t)
	}
	return p.delim("", '}', sealer.RuleObject, "the header")
}

// key reads an object key and refuses one already in seen.
func (p *headerParser) key(tensor string, seen map[string]bool) (string, error) {
	tok, err := p.token(tensor)
	if err != nil {
		return "", err
	}
	key, ok := tok.(string)
	if !ok {
		return "", sealer.HeaderErr(tensor, sealer.RuleObject, "expected a key, found %s", tokenKind(tok))
	}
	if seen[key] {
		at := tensor
		if at == "" {
			at = key
		}
		return "", sealer.HeaderErr(at, sealer.RuleDuplicate, "key %s appears more than once", untrusted.Quote(key))
	}
	seen[key] = true
	return key, nil
}

// metadata reads __metadata__, null or a map of strings to strings. Null
// gives a nil map, as an absent entry does.
func (p *headerParser) metadata() (map[string]string, error) {
	const at = safetensorsMetadataKey
	tok, err := p.token(at)
	if err != nil {
		return nil, err
	}
	if tok == nil {
		return nil, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, sealer.HeaderErr(at, sealer.RuleMetadata, "__metadata__ must be a JSON object or null, found %s", tokenKind(tok))
	}
	m := map[string]string{}
	seen := map[string]bool{}
	for p.dec.More() {
		k, err := p.key(at, seen)
		if err != nil {
			return nil, err
		}
		tok, err := p.token(at)
		if err != nil {
			return nil, err
		}
		v, ok := tok.(string)
		if !ok {
			return nil, sealer.HeaderErr(at, sealer.RuleMetadata, "value of %s must be a string, found %s", untrusted.Quote(k), tokenKind(tok))
		}
		m[k] = v
	}
	return m, p.delim(at, '}', sealer.RuleMetadata, "__metadata__")
}

// tensor reads one tensor's entry, an object or an array of dtype, shape
// and data_offsets, and checks its own rules.
func (p *headerParser) tensor(name string) (sealer.Tensor, error) {
	tok, err := p.token(name)
	if err != nil {
		return sealer.Tensor{}, err
	}
	t := sealer.Tensor{Name: name}
	var offsets []uint64
	switch tok {
	case json.Delim('{'):
		offsets, err = p.tensorFields(&t)
	case json.Delim('['):
		offsets, err = p.tensorArray(&t)
	default:
		err = sealer.HeaderErr(name, sealer.RuleFields, "a tensor entry must be a JSON object, found %s", tokenKind(tok))
	}
	if err != nil {
		return sealer.Tensor{}, err
	}
	if t.Shape == nil {
		t.Shape = []uint64{}
	}
	return t, sizeTensor(&t, offsets)
}

// tensorFields reads a tensor object's fields after its '{'; fields other
// than the three are read and ignored, as the reference does.
func (p *headerParser) tensorFields(t *sealer.Tensor) (offsets []uint64, err error) {
	name := t.Name
	seen := map[string]bool{}
	for p.dec.More() {
		key, err := p.key(name, seen)
		if err != nil {
			return nil, err
		}
		switch key {
		case "dtype":
			err = p.dtype(t)
		case "shape":
			t.Shape, err = p.uints(name, sealer.RuleShape, "shape")
		case "data_offsets":
			offsets, err = p.offsets(name)
		default:
			err = p.skip(name)
		}
		if err != nil {
			return nil, err
		}
	}
	if err := p.delim(name, '}', sealer.RuleFields, "a tensor entry"); err != nil {
		return nil, err
	}
	switch {
	case !seen["dtype"]:
		return nil, sealer.HeaderErr(name, sealer.RuleFields, "no dtype")
	case !seen["shape"]:
		return nil, sealer.HeaderErr(name, sealer.RuleFields, "no shape")
	case !seen["data_offsets"]:
		return nil, sealer.HeaderErr(name, sealer.RuleFields, "no data_offsets")
	}
	return offsets, nil
}

// tensorArray reads a tensor written [dtype, shape, data_offsets], after
// its '['.
func (p *headerParser) tensorArray(t *sealer.Tensor) (offsets []uint64, err error) {
	name := t.Name
	for i, what := range []string{"dtype", "shape", "data_offsets"} {
		if !p.dec.More() {
			return nil, sealer.HeaderErr(name, sealer.RuleFields, "no %s", what)
		}
		switch i {
		case 0:
			err = p.dtype(t)
		case 1:
			t.Shape, err = p.uints(name, sealer.RuleShape, "shape")
		default:
			offsets, err = p.offsets(name)
		}
		if err != nil {
			return nil, err
		}
	}
	return offsets, p.delim(name, ']', sealer.RuleFields, "a tensor entry written as an array holds only dtype, shape and data_offsets; it")
}

// dtype reads a dtype: a known name, or a one-key object {"NAME": null}.
func (p *headerParser) dtype(t *sealer.Tensor) error {
	tok, err := p.token(t.Name)
	if err != nil {
		return err
	}
	asObject := tok == json.Delim('{')
	if asObject {
		if tok, err = p.token(t.Name); err != nil {
			return err
		}
	}
	s, ok := tok.(string)
	if !ok {
		return sealer.HeaderErr(t.Name, sealer.RuleDType, "dtype must be a string, found %s", tokenKind(tok))
	}
	if !sealer.KnownDType(s) {
		return sealer.HeaderErr(t.Name, sealer.RuleDType, "unknown dtype %s", untrusted.Quote(s))
	}
	t.DType = s
	if !asObject {
		return nil
	}
	if tok, err = p.token(t.Name); err != nil {
		return err
	}
	if tok != nil {
		return sealer.HeaderErr(t.Name, sealer.RuleDType, "a dtype written as an object maps its name to null, not %s", tokenKind(tok))
	}
	return p.delim(t.Name, '}', sealer.RuleDType, "a dtype written as an object has one key; it")
}

// offsets reads data_offsets, two numbers.
func (p *headerParser) offsets(name string) ([]uint64, error) {
	offsets, err := p.uints(name, sealer.RuleOffsets, "data_offsets")
	if err != nil {
		return nil, err
	}
	if len(offsets) != 2 {
		return nil, sealer.HeaderErr(name, sealer.RuleOffsets, "data_offsets must hold 2 numbers, found %d", len(offsets))
	}
	return offsets, nil
}

// skip reads one value of any kind and drops it.
func (p *headerParser) skip(tensor string) error {
	depth := 0
	for {
		tok, err := p.token(tensor)
		if err != nil {
			return err
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			depth++
		case json.Delim('}'), json.Delim(']'):
			depth--
		}
		if depth == 0 {
			return nil
		}
	}
}

// size checks the tensor's byte count against its shape and dtype, without
// overflow, and records its range relative to the data start.
func sizeTensor(t *sealer.Tensor, offsets []uint64) error {
	begin, end := offsets[0], offsets[1]
	if begin > end {
		return sealer.HeaderErr(t.Name, sealer.RuleOffsets, "begin %d is after end %d", begin, end)
	}
	if end > sealer.MaxTensorEnd {
		return sealer.HeaderErr(t.Name, sealer.RuleOffsets, "end %d is beyond any file", end)
	}
	want, err := sealer.TensorBytes(t.Name, t.DType, t.Shape)
	if err != nil {
		return err
	}
	if end-begin != want {
		return sealer.HeaderErr(t.Name, sealer.RuleSize, "data_offsets [%d, %d] hold %d bytes, but shape %v of %s needs %d", begin, end, end-begin, t.Shape, t.DType, want)
	}
	t.Offset, t.Size = int64(begin), int64(want)
	return nil
}

// uints reads an array of non-negative integers.
func (p *headerParser) uints(tensor string, rule sealer.HeaderRule, what string) ([]uint64, error) {
	if err := p.delim(tensor, '[', rule, what); err != nil {
		return nil, err
	}
	var out []uint64
	for p.dec.More() {
		tok, err := p.token(tensor)
		if err != nil {
			return nil, err
		}
		num, ok := tok.(json.Number)
		if !ok {
			return nil, sealer.HeaderErr(tensor, rule, "%s must hold numbers, found %s", what, tokenKind(tok))
		}
		v, err := strconv.ParseUint(num.String(), 10, 64)
		if err != nil {
			return nil, sealer.HeaderErr(tensor, rule, "%s holds %s, not a non-negative integer below 2^64", what, untrusted.Quote(num.String()))
		}
		out = append(out, v)
	}
	return out, p.delim(tensor, ']', rule, what)
}

// place sorts the tensors by offset, checks that they tile the data with no
// gap and no overlap, that the data ends where the file does, and makes
// their offsets absolute.
func (t *TensorTable) place(fileSize int64) error {
	slices.SortFunc(t.Tensors, func(a, b sealer.Tensor) int {
		if a.Offset != b.Offset {
			return cmp.Compare(a.Offset, b.Offset)
		}
		if a.Size != b.Size {
			return cmp.Compare(a.Size, b.Size)
		}
		return strings.Compare(a.Name, b.Name)
	})
	var end int64
	for i, x := range t.Tensors {
		switch {
		case x.Offset < end:
			return sealer.HeaderErr(x.Name, sealer.RuleOverlap, "bytes [%d, %d) overlap tensor %s, which ends at %d", x.Offset, x.End(), untrusted.Quote(t.Tensors[i-1].Name), end)
		case x.Offset > end && i == 0:
			return sealer.HeaderErr(x.Name, sealer.RuleGap, "the first tensor starts at %d, not 0", x.Offset)
		case x.Offset > end:
			return sealer.HeaderErr(x.Name, sealer.RuleGap, "bytes [%d, %d) between tensor %s and this one belong to no tensor", end, x.Offset, untrusted.Quote(t.Tensors[i-1].Name))
		}
		end = x.End()
	}
	if total := end + t.DataStart(); total != fileSize {
		return sealer.HeaderErr("", sealer.RuleFileSize, "8 + header %d + data %d = %d bytes, but the file is %d bytes", t.HeaderLen, end, total, fileSize)
	}
	for i := range t.Tensors {
		t.Tensors[i].Offset += t.DataStart()
	}
	return nil
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return -1
}

func delimKind(d json.Delim) string {
	switch d {
	case '{', '}':
		return "object"
	default:
		return "array"
	}
}

// tokenKind names a token's JSON kind, never its content.
func tokenKind(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		return "'" + v.String() + "'"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case nil:
		return "null"
	}
	return "something else"
}
