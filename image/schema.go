package image

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"sync"

	"github.com/opencontainers/image-spec/schema"
	"github.com/santhosh-tekuri/jsonschema/v5"
)

// image-spec's schema.Validator compiles its schemas on every call (about 4 ms and 2 MB per
// manifest). The same embedded schema files are compiled once here, with the same compiler
// image-spec uses, and kept.

// Schema names: the image-spec schema files.
const (
	schemaManifest = "image-manifest-schema.json"
	schemaIndex    = "image-index-schema.json"
	schemaConfig   = "config-schema.json"
	schemaLayout   = "image-layout-schema.json"
)

var (
	schemasOnce sync.Once
	schemas     map[string]*jsonschema.Schema
	schemasErr  error
)

func loadSchemas() {
	fs := schema.FileSystem()
	c := jsonschema.NewCompiler()
	c.Draft = jsonschema.Draft4
	// Every $ref in the image-spec schemas is a file name relative to an opencontainers.org id;
	// resolve each from the embedded files by its last path element, never from the network.
	c.LoadURL = func(u string) (io.ReadCloser, error) {
		name := path.Base(u)
		f, err := fs.Open("/" + name)
		if err != nil {
			return nil, fmt.Errorf("image-spec schema %s (for %s): %w", name, u, err)
		}
		return f, nil
	}
	m := map[string]*jsonschema.Schema{}
	for _, name := range []string{schemaManifest, schemaIndex, schemaConfig, schemaLayout} {
		s, err := c.Compile("https://opencontainers.org/schema/image/" + name)
		if err != nil {
			schemasErr = fmt.Errorf("compile image-spec schema %s: %w", name, err)
			return
		}
		m[name] = s
	}
	schemas = m
}

var envRegexp = regexp.MustCompile(`^[^=]+=.*$`)

// validateSchema validates b against the image-spec schema name. For a manifest, layers is its
// raw layers field: when that is an empty array the schema's minItems is not applied (see
// ParseManifest). For a config, every Env entry must be KEY=value, as image-spec's validator
// requires.
func validateSchema(name string, b []byte, layers json.RawMessage) error {
	schemasOnce.Do(loadSchemas)
	if schemasErr != nil {
		return schemasErr
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return fmt.Errorf("malformed JSON: %w", err)
	}
	if layers != nil && isEmptyArray(layers) {
		if m, ok := v.(map[string]any); ok {
			m["layers"] = []any{map[string]any{
				"mediaType": MediaTypeEmptyJSON,
				"digest":    "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a",
				"size":      json.Number("2"),
			}}
		}
	}
	if err := schemas[name].Validate(v); err != nil {
		var ve *jsonschema.ValidationError
		if errors.As(err, &ve) {
			leaf := ve
			for len(leaf.Causes) > 0 {
				leaf = leaf.Causes[0]
			}
			loc := leaf.InstanceLocation
			if loc == "" {
				loc = "/"
			}
			return fmt.Errorf("schema %s: %s: %s", name, loc, leaf.Message)
		}
		return fmt.Errorf("schema %s: %w", name, err)
	}
	if name == schemaConfig {
		if m, ok := v.(map[string]any); ok {
			if cfg, ok := m["config"].(map[string]any); ok {
				if env, ok := cfg["Env"].([]any); ok {
					for i, e := range env {
						if s, ok := e.(string); ok && !envRegexp.MatchString(s) {
							return fmt.Errorf("config.Env[%d]: %q is not KEY=value", i, s)
						}
					}
				}
			}
		}
	}
	return nil
}

// ValidateLayoutHeader validates the oci-layout file of an image layout against image-spec's
// image-layout-schema.json. Errors wrap errdef.ErrInvalidArgument.
func ValidateLayoutHeader(b []byte) error {
	if len(b) > 1<<16 {
		return &Error{Kind: "oci-layout", Err: errors.New("over 64 KiB")}
	}
	if err := checkJSON(b, true); err != nil {
		return &Error{Kind: "oci-layout", Err: err}
	}
	if err := validateSchema(schemaLayout, b, nil); err != nil {
		return &Error{Kind: "oci-layout", Err: err}
	}
	return nil
}
