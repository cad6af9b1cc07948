package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"

	"github.com/vramseal/vramseal/internal/untrusted"
)

// readWeightMap reads the weight_map of a model.safetensors.index.json as
// transformers reads it (json.load, then index["weight_map"]), so that
// vramseal checks the map the loader will use: keys match exactly (not
// case-insensitively, as encoding/json matches fields), a key given twice in
// an object is refused (Python keeps the last silently, encoding/json
// merges a repeated map), and nothing but whitespace may follow the object.
// The file names are cleaned, as a path join does ("./a" is "a"); one that
// is absolute or climbs out of the directory is refused.
func readWeightMap(r io.Reader) (map[string]string, error) {
	dec := json.NewDecoder(r)
	if err := expectDelim(dec, '{', "the index"); err != nil {
		return nil, err
	}
	var weightMap map[string]string
	seen := map[string]bool{}
	for dec.More() {
		key, err := objectKey(dec, seen)
		if err != nil {
			return nil, err
		}
		if key != "weight_map" {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return nil, errors.New("not valid JSON")
			}
			continue
		}
		if weightMap, err = readStringMap(dec); err != nil {
			return nil, err
		}
	}
	if err := expectDelim(dec, '}', "the index"); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("something follows the JSON object")
	}
	return weightMap, nil
}

// readStringMap reads weight_map, an object of tensor names to file names.
func readStringMap(dec *json.Decoder) (map[string]string, error) {
	if err := expectDelim(dec, '{', "weight_map"); err != nil {
		return nil, err
	}
	m := map[string]string{}
	seen := map[string]bool{}
	for dec.More() {
		tensor, err := objectKey(dec, seen)
		if err != nil {
			return nil, err
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, errors.New("not valid JSON")
		}
		file, ok := tok.(string)
		if !ok {
			return nil, fmt.Errorf("the file of tensor %s is not a string", untrusted.Quote(tensor))
		}
		clean := path.Clean(file)
		if file == "" || path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(file, "\\") {
			return nil, fmt.Errorf("tensor %s is in %s, which is not a file of the model directory", untrusted.Quote(tensor), untrusted.Quote(file))
		}
		m[tensor] = clean
	}
	return m, expectDelim(dec, '}', "weight_map")
}

// objectKey reads a key and refuses one already in seen.
func objectKey(dec *json.Decoder, seen map[string]bool) (string, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", errors.New("not valid JSON")
	}
	key, ok := tok.(string)
	if !ok {
		return "", errors.New("not valid JSON")
	}
	if seen[key] {
		return "", fmt.Errorf("key %s appears twice", untrusted.Quote(key))
	}
	seen[key] = true
	return key, nil
}

// expectDelim reads the delimiter want, of what.
func expectDelim(dec *json.Decoder, want json.Delim, what string) error {
	tok, err := dec.Token()
	if err != nil {
		return errors.New("not valid JSON")
	}
	if tok != want {
		return fmt.Errorf("%s is not a JSON object", what)
	}
	return nil
}
