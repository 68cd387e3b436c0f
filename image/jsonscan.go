package image

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// maxDepth bounds the nesting of a document: OCI documents nest four levels at most, image
// configs a few more. It keeps hostile input from costing more than its size.
const maxDepth = 64

// checkJSON checks that b is exactly one JSON object and that no object in it has a key twice.
// encoding/json keeps the last of duplicate keys and matches field names case-insensitively,
// while other parsers keep the first or match exactly: a document read differently by two
// implementations is refused. With fold set, keys are compared case-insensitively (manifests and
// indexes, whose field names are fixed), except inside "annotations", whose keys are free and
// compared exactly; configs (free-form maps such as Labels) are checked with fold unset. With
// fold set, a case variant of a known field name ("MediaType") is refused too.
func checkJSON(b []byte, fold bool) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errors.New("not a JSON object")
	}
	if err := scanObject(dec, fold, 1); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("malformed JSON: data after the top-level object")
	}
	return nil
}

// scanObject reads the members of an object whose '{' has been consumed, and its '}'.
func scanObject(dec *json.Decoder, fold bool, depth int) error {
	if depth > maxDepth {
		return fmt.Errorf("malformed JSON: nested deeper than %d levels", maxDepth)
	}
	seen := map[string]string{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("malformed JSON: %w", err)
		}
		key, ok := tok.(string)
		if !ok {
			return errors.New("malformed JSON: object key is not a string")
		}
		k := key
		if fold {
			k = foldKey(key)
		}
		if prev, dup := seen[k]; dup {
			if prev == key {
				return fmt.Errorf("duplicate key %q", key)
			}
			return fmt.Errorf("keys %q and %q differ only in case", prev, key)
		}
		seen[k] = key
		if fold {
			if canon, known := knownKeys[k]; known && canon != key {
				return fmt.Errorf("key %q must be spelled %q", key, canon)
			}
		}
		if err := scanValue(dec, fold && key != "annotations", depth); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return fmt.Errorf("malformed JSON: %w", err)
	}
	return nil
}

func scanValue(dec *json.Decoder, fold bool, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		return scanObject(dec, fold, depth+1)
	case '[':
		if depth+1 > maxDepth {
			return fmt.Errorf("malformed JSON: nested deeper than %d levels", maxDepth)
		}
		for dec.More() {
			if err := scanValue(dec, fold, depth+1); err != nil {
				return err
			}
		}
		if _, err := dec.Token(); err != nil { // ']'
			return fmt.Errorf("malformed JSON: %w", err)
		}
		return nil
	}
	return fmt.Errorf("malformed JSON: unexpected %v", d)
}

// knownKeys maps the folded form of every field name of manifests, indexes, descriptors and
// platforms to its spelling. encoding/json would fill the field from any case variant; other
// parsers would not, so a variant is refused rather than read.
var knownKeys = func() map[string]string {
	m := map[string]string{}
	for _, k := range []string{"schemaVersion", "mediaType", "artifactType", "config", "layers", "manifests",
		"subject", "annotations", "digest", "size", "urls", "data", "platform", "architecture", "os",
		"os.version", "os.features", "variant", "features"} {
		m[foldKey(k)] = k
	}
	return m
}()

// foldKey maps key to the form encoding/json treats as equal: ASCII and simple Unicode case
// folding (ToUpper then ToLower also merges the Kelvin sign with k and long s with s).
func foldKey(key string) string {
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c >= 0x80 {
			return strings.ToLower(strings.ToUpper(key))
		}
		if c >= 'A' && c <= 'Z' {
			return strings.ToLower(key)
		}
	}
	return key
}
