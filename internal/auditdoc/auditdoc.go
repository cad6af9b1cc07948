// Package auditdoc reads the event catalogue of docs/audit-format.md, for
// tests: they check every audit record the runtime writes against it, so
// that an event, severity or field the document lacks fails the suite
// instead of going unpublished.
package auditdoc

import (
	"bufio"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Path is the document, from the module root.
const Path = "docs/audit-format.md"

// Event is what the catalogue says of one event.
type Event struct {
	// Severities are the severities it may have.
	Severities []string
	// Fields are its fields' types by name: "string", "integer",
	// "boolean" or "array of strings".
	Fields map[string]string
}

// Catalogue is the document's event catalogue.
type Catalogue struct {
	// Events are the events the runtime writes, by name.
	Events map[string]Event
	// Reserved are event names defined but never written.
	Reserved []string
}

var (
	eventHeading = regexp.MustCompile("^### ([A-Za-z]+)$")
	backticked   = regexp.MustCompile("`([^`]+)`")
	fieldRow     = regexp.MustCompile("^\\| `([a-z_]+)` \\| ([a-z ]+) \\|")
	severities   = []string{"info", "warning", "critical"}
	types        = []string{"string", "integer", "boolean", "array of strings"}
)

// Load reads the catalogue from the document, found from the working
// directory up to the module root.
func Load() (Catalogue, error) {
	dir, err := os.Getwd()
	if err != nil {
		return Catalogue{}, err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		up := filepath.Dir(dir)
		if up == dir {
			return Catalogue{}, errors.New("auditdoc: no go.mod above the working directory")
		}
		dir = up
	}
	f, err := os.Open(filepath.Join(dir, Path))
	if err != nil {
		return Catalogue{}, fmt.Errorf("auditdoc: %w", err)
	}
	defer f.Close()
	return parse(bufio.NewScanner(f))
}

// parse reads the catalogue: from "## 6. Event catalogue" on, a "### Name"
// heading per event, a "Severity:" paragraph naming its severities in
// backticks, and a table row per field; "### Reserved" names the rest.
func parse(sc *bufio.Scanner) (Catalogue, error) {
	c := Catalogue{Events: map[string]Event{}}
	inCatalogue, inSeverity := false, false
	current := ""
	for sc.Scan() {
		line := sc.Text()
		switch m := eventHeading.FindStringSubmatch(line); {
		case strings.HasPrefix(line, "## "):
			inCatalogue = strings.HasPrefix(line, "## 6. Event catalogue")
			current = ""
		case !inCatalogue:
		case m != nil && m[1] == "Reserved":
			current = "Reserved"
		case m != nil:
			current = m[1]
			c.Events[current] = Event{Fields: map[string]string{}}
		case current == "Reserved":
			for _, name := range backticked.FindAllStringSubmatch(line, -1) {
				if eventHeading.MatchString("### " + name[1]) {
					c.Reserved = append(c.Reserved, name[1])
				}
			}
		case current == "":
		case strings.HasPrefix(line, "Severity:") || (inSeverity && line != ""):
			inSeverity = true
			e := c.Events[current]
			for _, word := range backticked.FindAllStringSubmatch(line, -1) {
				if slices.Contains(severities, word[1]) && !slices.Contains(e.Severities, word[1]) {
					e.Severities = append(e.Severities, word[1])
				}
			}
			c.Events[current] = e
		case fieldRow.MatchString(line):
			row := fieldRow.FindStringSubmatch(line)
			if !slices.Contains(types, row[2]) {
				return c, fmt.Errorf("auditdoc: %s field %s: unknown type %q", current, row[1], row[2])
			}
			c.Events[current].Fields[row[1]] = row[2]
		}
		if line == "" {
			inSeverity = false
		}
	}
	if err := sc.Err(); err != nil {
		return c, fmt.Errorf("auditdoc: %w", err)
	}
	for name, e := range c.Events {
		if len(e.Severities) == 0 {
			return c, fmt.Errorf("auditdoc: event %s names no severity", name)
		}
	}
	if len(c.Events) == 0 {
		return c, errors.New("auditdoc: no event catalogue in " + Path)
	}
	return c, nil
}

// Check reports what a record has that the catalogue lacks: an unknown
// event, a severity it does not give the event, or a field it does not
// list or of another type. fields may hold Go values (as a Sink gets them)
// or JSON-decoded ones (as a log file holds them).
func (c Catalogue) Check(event, severity string, fields map[string]any) error {
	e, ok := c.Events[event]
	if !ok {
		return fmt.Errorf("event %q is not in %s's catalogue", event, Path)
	}
	var errs []error
	if !slices.Contains(e.Severities, severity) {
		errs = append(errs, fmt.Errorf("%s with severity %q: %s gives it %v", event, severity, Path, e.Severities))
	}
	for name, v := range fields {
		want, ok := e.Fields[name]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("%s field %q is not in %s's catalogue", event, name, Path))
		case !hasType(v, want):
			errs = append(errs, fmt.Errorf("%s field %q is %T (%v); %s says %s", event, name, v, v, Path, want))
		}
	}
	return errors.Join(errs...)
}

// hasType reports whether v is a value of the catalogue's type t.
func hasType(v any, t string) bool {
	switch t {
	case "string":
		_, ok := v.(string)
		return ok
	case "boolean":
		_, ok := v.(bool)
		return ok
	case "integer":
		switch n := v.(type) {
		case int, int32, int64, uint, uint32, uint64:
			return true
		case float64: // JSON-decoded
			return n == math.Trunc(n)
		}
	case "array of strings":
		switch a := v.(type) {
		case []string:
			return true
		case []any:
			for _, s := range a {
				if _, ok := s.(string); !ok {
					return false
				}
			}
			return true
		}
	}
	return false
}
