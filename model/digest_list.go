package model

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"path"
	"path/filepath"
	"strings"

	"github.com/vramseal/vramseal/internal/untrusted"
	"github.com/vramseal/vramseal/messages"
	"github.com/vramseal/vramseal/sealer"
)

// maxDigestListLine bounds one line of a digest list, in bytes.
const maxDigestListLine = 64 << 10

// DigestList maps file names to the SHA-256 digests a publisher lists for
// them, read from the output of sha256sum.
type DigestList struct {
	byName map[string]Expectation
	names  []string
	// dir is the absolute directory of the list's file, against which its
	// relative names are also resolved; "" for a list given on the
	// command line (--expect-sha256).
	dir string
}

// ReadDigestList reads a list as GNU "sha256sum -c" reads one (coreutils'
// split_3): leading blanks are skipped; a line starting with '\' has an
// escaped name ("\\", "\n", "\r"); then either "HEX  NAME" (text mode),
// "HEX *NAME" (binary mode), the one-blank "HEX NAME" of a reversed BSD
// list (a list does not mix it with the two forms before), where the blank
// after HEX may be a tab, or the tag form "SHA256 (NAME) = HEX" that --tag
// writes, escaped or not. HEX is 64 hex digits of either case. Blank lines
// and lines whose first non-blank byte is '#' are skipped. The same line
// given twice is kept once. Any other line, a name listed with two
// different digests, or an empty list is an error wrapping
// messages.ErrInvalidInput that names the source and line. Names are
// cleaned ("./a" is "a").
func ReadDigestList(r io.Reader, source string) (*DigestList, error) {
	l := &DigestList{byName: map[string]Expectation{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxDigestListLine)
	line := 0
	form := formUnknown
	for sc.Scan() {
		line++
		text := strings.TrimSuffix(sc.Text(), "\r")
		trimmed := strings.TrimLeft(text, " \t")
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		at := fmt.Sprintf("%s line %d", source, line)
		name, sum, err := parseDigestLine(trimmed, &form)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", messages.ErrInvalidInput, at, err)
		}
		if err := l.add(name, sum, at); err != nil {
			return nil, err
		}
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return nil, fmt.Errorf("%w: %s line %d: longer than %d bytes", messages.ErrInvalidInput, source, line+1, maxDigestListLine)
		}
		return nil, fmt.Errorf("reading %s: %w", source, err)
	}
	if len(l.names) == 0 {
		return nil, fmt.Errorf("%w: %s lists no digests; want lines like \"<64 hex digits>  model.safetensors\" as sha256sum writes", messages.ErrInvalidInput, source)
	}
	return l, nil
}

// listForm is which of GNU's untagged forms a list uses; like GNU, a list
// does not mix the one-blank reversed form with the others.
type listForm int

const (
	formUnknown  listForm = iota // no untagged line yet
	formStandard                 // "HEX  NAME" or "HEX *NAME"
	formReversed                 // "HEX NAME"
)

// ParseExpectSHA256 parses a --expect-sha256 value, NAME=HEX.
func ParseExpectSHA256(v string) (name, sum string, err error) {
	i := strings.LastIndexByte(v, '=')
	if i <= 0 {
		return "", "", fmt.Errorf("%w: --expect-sha256 %s: want NAME=HEX, e.g. model.safetensors=<64 hex digits>", messages.ErrInvalidInput, untrusted.Quote(v))
	}
	name, sum = v[:i], strings.ToLower(v[i+1:])
	if err := sealer.ValidateHexSum("--expect-sha256 digest", sum); err != nil {
		return "", "", err
	}
	return cleanListName(name), sum, nil
}

// Add lists name with the digest sum, found at source; a name listed
// already is an error wrapping messages.ErrInvalidInput.
func (l *DigestList) Add(name, sum, source string) error {
	if err := sealer.ValidateHexSum("digest", sum); err != nil {
		return fmt.Errorf("%s: %w", source, err)
	}
	return l.add(cleanListName(name), sum, source)
}

func (l *DigestList) add(name, sum, at string) error {
	if prev, dup := l.byName[name]; dup {
		if prev.SHA256 == sum {
			return nil // the same line again: harmless
		}
		return fmt.Errorf("%w: %s: %s is listed already with another digest (%s); list each file once", messages.ErrInvalidInput, at, untrusted.Quote(name), prev.Source)
	}
	l.byName[name] = Expectation{Name: name, Source: at, SHA256: sum}
	l.names = append(l.names, name)
	return nil
}

// RelativeTo makes the list's relative names name files in the directory
// of listPath, the file it was read from, as well as in the working
// directory (as "sha256sum -c" run there reads them).
func (l *DigestList) RelativeTo(listPath string) error {
	abs, err := filepath.Abs(filepath.Dir(listPath))
	l.dir = abs
	return err
}

// find returns every entry that names the model file at path (as given, or
// joined to its model directory) in one of the ways sha256sum -c would
// find it: relative to the working directory, or to the list's directory;
// and, for a file of a model directory, inDir its path inside it (rel), as
// the lists published with a model name its files. Two entries may name one
// file (a and ../m/a); each must then match.
func (l *DigestList) find(path, rel string, inDir bool) []Expectation {
	want, err := filepath.Abs(path)
	if err != nil {
		return nil
	}
	var out []Expectation
	for _, n := range l.names {
		local := filepath.FromSlash(n)
		match := inDir && n == rel
		if !match {
			abs, err := filepath.Abs(local)
			match = err == nil && abs == want
		}
		if !match && l.dir != "" {
			match = filepath.Join(l.dir, local) == want || (filepath.IsAbs(local) && filepath.Clean(local) == want)
		}
		if match {
			out = append(out, l.byName[n])
		}
	}
	return out
}

// NewDigestList returns an empty list, for digests given one at a time.
func NewDigestList() *DigestList { return &DigestList{byName: map[string]Expectation{}} }

// Lookup returns the expectation for the file called name (cleaned).
func (l *DigestList) Lookup(name string) (Expectation, bool) {
	e, ok := l.byName[cleanListName(name)]
	return e, ok
}

// Names returns every listed name, in the order listed.
func (l *DigestList) Names() []string { return append([]string(nil), l.names...) }

// Len is the number of files listed.
func (l *DigestList) Len() int { return len(l.names) }

// parseDigestLine parses one line of a list, its leading blanks removed.
func parseDigestLine(text string, form *listForm) (name, sum string, err error) {
	escaped := strings.HasPrefix(text, `\`)
	if escaped {
		text = text[1:]
	}
	if rest, ok := strings.CutPrefix(text, "SHA256"); ok {
		if rest, ok = strings.CutPrefix(strings.TrimPrefix(rest, " "), "("); ok {
			name, sum, err = parseTagLine(rest)
			return unescapeIf(escaped, name, sum, err)
		}
	}
	const want = `want "<64 hex digits>  NAME" or "<64 hex digits> *NAME", as sha256sum writes, or "SHA256 (NAME) = <64 hex digits>"`
	if len(text) < 64+2 || (text[64] != ' ' && text[64] != '\t') {
		return "", "", errors.New(want)
	}
	sum = strings.ToLower(text[:64])
	if err := sealer.ValidateHexSum("digest", sum); err != nil {
		return "", "", fmt.Errorf("the digest is not 64 hex digits")
	}
	name = text[65:]
	lineForm := formReversed
	if len(name) > 1 && (name[0] == ' ' || name[0] == '*') {
		lineForm, name = formStandard, name[1:]
	}
	if *form != formUnknown && *form != lineForm {
		return "", "", errors.New(`it mixes "HEX NAME" with "HEX  NAME" lines; sha256sum -c refuses a list that does`)
	}
	*form = lineForm
	return unescapeIf(escaped, name, sum, nil)
}

// unescapeIf undoes the escaping of name when the line was escaped, and
// cleans it.
func unescapeIf(escaped bool, name, sum string, err error) (string, string, error) {
	if err == nil && escaped {
		name, err = unescapeListName(name)
	}
	if err == nil && name == "" {
		err = errors.New("no file name")
	}
	if err != nil {
		return "", "", err
	}
	return cleanListName(name), sum, nil
}

// parseTagLine parses the rest of "SHA256 (NAME) = HEX" after its '(': the
// name runs to the last ')', and blanks may surround the '='.
func parseTagLine(rest string) (name, sum string, err error) {
	i := strings.LastIndexByte(rest, ')')
	if i < 0 {
		return "", "", fmt.Errorf(`want "SHA256 (NAME) = <64 hex digits>", as sha256sum --tag writes`)
	}
	name, after := rest[:i], strings.TrimLeft(rest[i+1:], " \t")
	after, ok := strings.CutPrefix(after, "=")
	if !ok {
		return "", "", fmt.Errorf(`want "SHA256 (NAME) = <64 hex digits>", as sha256sum --tag writes`)
	}
	sum = strings.ToLower(strings.TrimLeft(after, " \t"))
	if sealer.ValidateHexSum("digest", sum) != nil {
		return "", "", fmt.Errorf("the digest is not 64 hex digits")
	}
	return name, sum, nil
}

// unescapeListName undoes sha256sum's escaping of '\' and newline.
func unescapeListName(s string) (string, error) {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 == len(s) {
			return "", fmt.Errorf(`the name ends in a lone '\'`)
		}
		i++
		switch s[i] {
		case '\\':
			b.WriteByte('\\')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		default:
			return "", fmt.Errorf(`the name has an unknown escape '\%c'`, s[i])
		}
	}
	return b.String(), nil
}

// cleanListName is how names are compared: slash-separated and cleaned, so
// "./a" and "a" are the same file.
func cleanListName(name string) string {
	return path.Clean(name)
}
