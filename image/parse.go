package image

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
)

type kind int

const (
	kindAny kind = iota
	kindManifest
	kindIndex
	kindConfig
)

func (k kind) String() string {
	switch k {
	case kindManifest:
		return "manifest"
	case kindIndex:
		return "index"
	case kindConfig:
		return "config"
	}
	return "document"
}

// Document is one parsed and validated manifest, index or image config: exactly one of
// Manifest, Index and Config is set. Docker schema 2 documents are held in the OCI structures
// (their fields are a subset); MediaType tells them apart.
type Document struct {
	// Descriptor is the descriptor the document was parsed by. When that had no media type, the
	// media type found in (or, for an OCI document without a mediaType field, implied by) the
	// document is filled in.
	Descriptor ocispec.Descriptor
	Manifest   *ocispec.Manifest
	Index      *ocispec.Index
	Config     *ocispec.Image
}

// MediaType is the document's media type (see Descriptor).
func (d *Document) MediaType() string { return d.Descriptor.MediaType }

// Children returns the descriptors the document references, in document order: the config
// then the layers of a manifest, the manifests of an index, nothing for a config. The subject
// is not a child (it is a weak reference that copy and gc do not follow; see Subject). The slice
// is a copy.
func (d *Document) Children() []ocispec.Descriptor {
	switch {
	case d.Manifest != nil:
		return append([]ocispec.Descriptor{d.Manifest.Config}, d.Manifest.Layers...)
	case d.Index != nil:
		return slices.Clone(d.Index.Manifests)
	}
	return nil
}

// Subject returns the subject descriptor of a manifest or index (the manifest it refers to,
// for the referrers API), or nil.
func (d *Document) Subject() *ocispec.Descriptor {
	switch {
	case d.Manifest != nil:
		return d.Manifest.Subject
	case d.Index != nil:
		return d.Index.Subject
	}
	return nil
}

// Parse parses and validates b, the content of desc, as a manifest, an index or an image config
// according to desc.MediaType. When desc.MediaType is empty the kind is taken from the
// document's mediaType field, else from its fields (manifests: index; layers: manifest; rootfs:
// config).
//
// Checks, in order: len(b) ≤ content.MaxDocumentSize; when desc.Digest is set, desc passes
// content.ValidateDescriptor and b has exactly desc.Size bytes hashing to desc.Digest; b is a
// single JSON object without duplicate keys (for manifests and indexes, none that differ only in
// case); the document's mediaType field, if any, equals desc.MediaType; a manifest has no
// manifests field and an index no layers or config field; every descriptor in it passes
// content.ValidateDescriptor (so a bad digest wraps errdef.ErrInvalidDigest), annotation keys
// are non-empty, schemaVersion is 2, and the artifactType and empty-descriptor rules of
// image-spec 1.1 hold (see ParseManifest); last, OCI documents are validated against the
// image-spec JSON schema (Docker schema 2 has none: the checks above are its structure).
//
// A media type that is not a manifest, index or config (layers, artifact blobs, Docker schema 1)
// gives an error wrapping errdef.ErrUnsupported; every other failure is an *Error wrapping
// errdef.ErrInvalidArgument.
func Parse(desc ocispec.Descriptor, b []byte) (*Document, error) {
	return parse(desc, b, kindAny)
}

// ParseManifest parses and validates b as the image manifest desc (OCI or Docker schema 2),
// with the checks of Parse. Beyond the schema it requires: schemaVersion 2; a mediaType field
// (when present, and always for Docker) equal to desc.MediaType; no manifests field; valid
// config, layer and subject descriptors; artifactType set when the config is the empty
// descriptor (image-spec 1.1 manifest.md); any descriptor of media type
// application/vnd.oci.empty.v1+json describing the blob `{}` (digest and size of
// ocispec.DescriptorEmptyJSON). Unknown config, layer and artifact media types are accepted, as
// the spec requires of implementations that store and copy manifests.
//
// image-spec's schema asks for at least one layer, its prose only that a manifest SHOULD have
// one: an empty layers array is accepted.
func ParseManifest(desc ocispec.Descriptor, b []byte) (*ocispec.Manifest, error) {
	d, err := parse(desc, b, kindManifest)
	if err != nil {
		return nil, err
	}
	return d.Manifest, nil
}

// ParseIndex parses and validates b as the image index desc (OCI index or Docker manifest
// list), with the checks of Parse: schemaVersion 2, a mediaType field (when present, and always
// for Docker) equal to desc.MediaType, a manifests field (possibly empty) and no layers or
// config field, valid descriptors, platforms with os and architecture when present, and a
// platform on every entry of a Docker manifest list.
func ParseIndex(desc ocispec.Descriptor, b []byte) (*ocispec.Index, error) {
	d, err := parse(desc, b, kindIndex)
	if err != nil {
		return nil, err
	}
	return d.Index, nil
}

// ParseConfig parses and validates b as the image configuration desc (OCI or Docker), with the
// checks of Parse: the config schema for OCI (which also checks that every Env entry is
// KEY=value), non-empty architecture and os, rootfs.type "layers", and diff_ids that pass
// content.ValidateDigest. Whether diff_ids matches the manifest's layers is checked by
// ValidateImage.
func ParseConfig(desc ocispec.Descriptor, b []byte) (*ocispec.Image, error) {
	d, err := parse(desc, b, kindConfig)
	if err != nil {
		return nil, err
	}
	return d.Config, nil
}

// Children returns the descriptors that the manifest or index desc references (see
// Document.Children), after parsing and validating b with Parse. It is the graph walk of
// validate, gc and copy: a descriptor of any other media type (a config, a layer, an artifact
// blob, or no media type at all) is a leaf, and gives nil without b being read. Docker schema 1
// manifests give errdef.ErrUnsupported.
func Children(desc ocispec.Descriptor, b []byte) ([]ocispec.Descriptor, error) {
	if isSchema1(desc.MediaType) {
		return nil, unsupported(desc, desc.MediaType)
	}
	if !IsManifest(desc.MediaType) && !IsIndex(desc.MediaType) {
		return nil, nil
	}
	d, err := Parse(desc, b)
	if err != nil {
		return nil, err
	}
	return d.Children(), nil
}

// Subject returns the subject of the manifest or index desc (nil if it has none or desc is
// another media type), after parsing and validating b with Parse.
func Subject(desc ocispec.Descriptor, b []byte) (*ocispec.Descriptor, error) {
	if !IsManifest(desc.MediaType) && !IsIndex(desc.MediaType) {
		return nil, nil
	}
	d, err := Parse(desc, b)
	if err != nil {
		return nil, err
	}
	return d.Subject(), nil
}

// unsupported is the error for a media type that is not a document wharf parses.
func unsupported(desc ocispec.Descriptor, mt string) error {
	what := "not a manifest, index or image config"
	if isSchema1(mt) {
		what = "docker schema 1 is not supported (convert it to schema 2)"
	}
	return &Error{Kind: "document", Digest: desc.Digest, Field: "mediaType", Err: fmt.Errorf("%w: %s: %s", errdef.ErrUnsupported, mt, what)}
}

func isSchema1(mt string) bool {
	return mt == MediaTypeDockerSchema1Manifest || mt == MediaTypeDockerSchema1SignedManifest
}

func kindOf(mt string) kind {
	switch {
	case IsManifest(mt):
		return kindManifest
	case IsIndex(mt):
		return kindIndex
	case IsConfig(mt):
		return kindConfig
	}
	return kindAny
}

// probe holds the fields that tell the kind of a document and whether it is ambiguous.
// A present field (even null) has a non-nil RawMessage.
type probe struct {
	MediaType json.RawMessage `json:"mediaType"`
	Config    json.RawMessage `json:"config"`
	Layers    json.RawMessage `json:"layers"`
	Manifests json.RawMessage `json:"manifests"`
	RootFS    json.RawMessage `json:"rootfs"`
}

func parse(desc ocispec.Descriptor, b []byte, want kind) (*Document, error) {
	k := want
	if desc.MediaType != "" {
		if isSchema1(desc.MediaType) {
			return nil, unsupported(desc, desc.MediaType)
		}
		dk := kindOf(desc.MediaType)
		if dk == kindAny {
			return nil, unsupported(desc, desc.MediaType)
		}
		if want != kindAny && dk != want {
			return nil, &Error{Kind: want.String(), Digest: desc.Digest, Field: "mediaType",
				Err: fmt.Errorf("descriptor media type %s is not a%s %s", desc.MediaType, article(want), want)}
		}
		k = dk
	}
	fail := func(field string, err error) error {
		return &Error{Kind: k.String(), Digest: desc.Digest, Field: field, Err: err}
	}
	if len(b) > content.MaxDocumentSize {
		return nil, fail("", fmt.Errorf("%w: %d bytes is over the %d byte limit", errdef.ErrTooLarge, len(b), content.MaxDocumentSize))
	}
	if desc.Digest != "" {
		if err := content.ValidateDescriptor(desc); err != nil {
			return nil, fail("descriptor", err)
		}
		if int64(len(b)) != desc.Size {
			return nil, fail("", fmt.Errorf("%w: %d bytes, descriptor says %d", errdef.ErrSizeMismatch, len(b), desc.Size))
		}
		if got := desc.Digest.Algorithm().FromBytes(b); got != desc.Digest {
			return nil, fail("", fmt.Errorf("%w: content hashes to %s", errdef.ErrDigestMismatch, got))
		}
	}

	var p probe
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, fail("", fmt.Errorf("malformed JSON: %w", err))
	}
	if bytes.Equal(bytes.TrimSpace(b), []byte("null")) {
		return nil, fail("", errors.New("not a JSON object"))
	}
	var docMT string
	if p.MediaType != nil {
		if err := json.Unmarshal(p.MediaType, &docMT); err != nil || docMT == "" {
			return nil, fail("mediaType", errors.New("not a non-empty string"))
		}
	}

	// The kind: from the descriptor, else from the document.
	if desc.MediaType == "" {
		detected := kindAny
		switch {
		case docMT != "":
			if isSchema1(docMT) {
				return nil, unsupported(desc, docMT)
			}
			if detected = kindOf(docMT); detected == kindAny {
				return nil, unsupported(desc, docMT)
			}
		case p.Manifests != nil:
			detected = kindIndex
		case p.Layers != nil:
			detected = kindManifest
		case p.RootFS != nil:
			detected = kindConfig
		case p.Config != nil:
			detected = kindManifest
		}
		if detected == kindAny && want == kindAny {
			return nil, fail("", errors.New("cannot tell whether this is a manifest, an index or an image config"))
		}
		if detected != kindAny && want != kindAny && detected != want {
			return nil, fail("", fmt.Errorf("document is a%s %s, not a%s %s", article(detected), detected, article(want), want))
		}
		if detected != kindAny {
			k = detected
		}
	}

	mt := desc.MediaType
	switch {
	case k == kindConfig:
		if mt == "" {
			mt = MediaTypeConfig
		}
		if docMT != "" && (IsManifest(docMT) || IsIndex(docMT)) {
			return nil, fail("mediaType", fmt.Errorf("an image config that claims to be %s", docMT))
		}
	case mt == "":
		mt = docMT
		if mt == "" {
			mt = MediaTypeManifest
			if k == kindIndex {
				mt = MediaTypeIndex
			}
		}
	case docMT != "" && docMT != mt:
		return nil, fail("mediaType", fmt.Errorf("document says %s, its descriptor %s", docMT, mt))
	}
	if kindOf(mt) != k {
		return nil, fail("mediaType", fmt.Errorf("%s is not a%s %s media type", mt, article(k), k))
	}
	if IsDocker(mt) && k != kindConfig && docMT == "" {
		return nil, fail("mediaType", fmt.Errorf("missing: docker schema 2 requires it (%s)", mt))
	}
	switch k {
	case kindManifest:
		if p.Manifests != nil {
			return nil, fail("manifests", errors.New("a manifest with a manifests field is ambiguous"))
		}
	case kindIndex:
		if p.Layers != nil {
			return nil, fail("layers", errors.New("an index with a layers field is ambiguous"))
		}
		if p.Config != nil {
			return nil, fail("config", errors.New("an index with a config field is ambiguous"))
		}
	}

	if err := checkJSON(b, k != kindConfig); err != nil {
		return nil, fail("", err)
	}

	d := &Document{Descriptor: desc}
	d.Descriptor.MediaType = mt
	oci := !IsDocker(mt)
	switch k {
	case kindManifest:
		var m ocispec.Manifest
		if err := json.Unmarshal(b, &m); err != nil {
			return nil, fail("", fmt.Errorf("malformed manifest: %w", err))
		}
		if field, err := checkManifest(&m, oci, p.Layers != nil); err != nil {
			return nil, fail(field, err)
		}
		if oci {
			if err := validateSchema(schemaManifest, b, p.Layers); err != nil {
				return nil, fail("", err)
			}
		}
		d.Manifest = &m
	case kindIndex:
		var x ocispec.Index
		if err := json.Unmarshal(b, &x); err != nil {
			return nil, fail("", fmt.Errorf("malformed index: %w", err))
		}
		if field, err := checkIndex(&x, oci, p.Manifests != nil); err != nil {
			return nil, fail(field, err)
		}
		if oci {
			if err := validateSchema(schemaIndex, b, nil); err != nil {
				return nil, fail("", err)
			}
		}
		d.Index = &x
	case kindConfig:
		var c ocispec.Image
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fail("", fmt.Errorf("malformed image config: %w", err))
		}
		if field, err := checkConfig(&c); err != nil {
			return nil, fail(field, err)
		}
		if oci {
			if err := validateSchema(schemaConfig, b, nil); err != nil {
				return nil, fail("", err)
			}
		}
		d.Config = &c
	}
	return d, nil
}

func article(k kind) string {
	if k == kindIndex {
		return "n"
	}
	return ""
}

func isEmptyArray(raw json.RawMessage) bool {
	s := bytes.TrimSpace(raw)
	if len(s) < 2 || s[0] != '[' || s[len(s)-1] != ']' {
		return false
	}
	return len(bytes.TrimSpace(s[1:len(s)-1])) == 0
}

func checkManifest(m *ocispec.Manifest, oci, hasLayers bool) (string, error) {
	if m.SchemaVersion != 2 {
		return "schemaVersion", fmt.Errorf("%d, must be 2", m.SchemaVersion)
	}
	if m.Config.MediaType == "" && m.Config.Digest == "" {
		return "config", errors.New("missing")
	}
	if field, err := checkDescriptor(m.Config); err != nil {
		return join("config", field), err
	}
	if !hasLayers {
		return "layers", errors.New("missing")
	}
	for i, l := range m.Layers {
		if field, err := checkDescriptor(l); err != nil {
			return join("layers["+strconv.Itoa(i)+"]", field), err
		}
	}
	if m.Subject != nil {
		if field, err := checkDescriptor(*m.Subject); err != nil {
			return join("subject", field), err
		}
	}
	if err := checkAnnotations(m.Annotations); err != nil {
		return "annotations", err
	}
	if oci {
		if m.Config.MediaType == MediaTypeEmptyJSON && m.ArtifactType == "" {
			return "artifactType", errors.New("must be set when config is the empty descriptor (image-spec 1.1)")
		}
		if m.ArtifactType != "" && !ValidMediaType(m.ArtifactType) {
			return "artifactType", fmt.Errorf("%q is not a media type (RFC 6838)", m.ArtifactType)
		}
	}
	return "", nil
}

func checkIndex(x *ocispec.Index, oci, hasManifests bool) (string, error) {
	if x.SchemaVersion != 2 {
		return "schemaVersion", fmt.Errorf("%d, must be 2", x.SchemaVersion)
	}
	if !hasManifests {
		return "manifests", errors.New("missing")
	}
	for i, m := range x.Manifests {
		f := "manifests[" + strconv.Itoa(i) + "]"
		if field, err := checkDescriptor(m); err != nil {
			return join(f, field), err
		}
		if !oci && m.Platform == nil {
			return join(f, "platform"), errors.New("missing: every entry of a docker manifest list needs one")
		}
	}
	if x.Subject != nil {
		if field, err := checkDescriptor(*x.Subject); err != nil {
			return join("subject", field), err
		}
	}
	if err := checkAnnotations(x.Annotations); err != nil {
		return "annotations", err
	}
	if oci && x.ArtifactType != "" && !ValidMediaType(x.ArtifactType) {
		return "artifactType", fmt.Errorf("%q is not a media type (RFC 6838)", x.ArtifactType)
	}
	return "", nil
}

func checkConfig(c *ocispec.Image) (string, error) {
	if c.Architecture == "" {
		return "architecture", errors.New("missing")
	}
	if c.OS == "" {
		return "os", errors.New("missing")
	}
	if c.RootFS.Type != "layers" {
		return "rootfs.type", fmt.Errorf("%q, must be \"layers\"", c.RootFS.Type)
	}
	for i, id := range c.RootFS.DiffIDs {
		if err := content.ValidateDigest(id); err != nil {
			return "rootfs.diff_ids[" + strconv.Itoa(i) + "]", err
		}
	}
	return "", nil
}

// CheckDescriptor checks one descriptor found in a document: a media type (RFC 6838 syntax), the
// rules of content.ValidateDescriptor, non-empty annotation keys, absolute urls, os and
// architecture in a platform, and, for the empty media type, the digest and size of `{}`.
// It returns the offending field (relative to the descriptor) with the error.
func checkDescriptor(d ocispec.Descriptor) (string, error) {
	if !ValidMediaType(d.MediaType) {
		return "mediaType", fmt.Errorf("%q is not a media type (RFC 6838)", d.MediaType)
	}
	if err := content.ValidateDescriptor(d); err != nil {
		return "", err
	}
	if d.MediaType == MediaTypeEmptyJSON && (d.Digest != ocispec.DescriptorEmptyJSON.Digest || d.Size != ocispec.DescriptorEmptyJSON.Size) {
		return "", fmt.Errorf("media type %s must describe the blob {} (%s, 2 bytes)", MediaTypeEmptyJSON, ocispec.DescriptorEmptyJSON.Digest)
	}
	if d.ArtifactType != "" && !ValidMediaType(d.ArtifactType) {
		return "artifactType", fmt.Errorf("%q is not a media type (RFC 6838)", d.ArtifactType)
	}
	for i, u := range d.URLs {
		if pu, err := url.Parse(u); err != nil || pu.Scheme == "" {
			return "urls[" + strconv.Itoa(i) + "]", fmt.Errorf("%q is not an absolute URL", u)
		}
	}
	if err := checkAnnotations(d.Annotations); err != nil {
		return "annotations", err
	}
	if d.Platform != nil {
		if d.Platform.OS == "" {
			return "platform.os", errors.New("missing")
		}
		if d.Platform.Architecture == "" {
			return "platform.architecture", errors.New("missing")
		}
	}
	return "", nil
}

// ValidateDescriptor checks a descriptor as Parse checks every descriptor inside a document:
// content.ValidateDescriptor, a media type of RFC 6838 syntax, non-empty annotation keys,
// absolute urls, os and architecture in a platform, and the empty-descriptor rule. Errors wrap
// errdef.ErrInvalidArgument (and the precise sentinel of content.ValidateDescriptor).
func ValidateDescriptor(d ocispec.Descriptor) error {
	if field, err := checkDescriptor(d); err != nil {
		return &Error{Kind: "descriptor", Digest: digestOrEmpty(d.Digest), Field: field, Err: err}
	}
	return nil
}

func digestOrEmpty(d digest.Digest) digest.Digest {
	if content.ValidateDigest(d) != nil {
		return ""
	}
	return d
}

func checkAnnotations(a map[string]string) error {
	for k := range a {
		if k == "" {
			return errors.New("empty key")
		}
	}
	return nil
}

func join(a, b string) string {
	if b == "" {
		return a
	}
	return a + "." + b
}

// ValidMediaType checks the RFC 6838 section 4.2 syntax, as image-spec's schema pattern does:
// type "/" subtype, each 1–127 characters of [A-Za-z0-9!#$&^_.+-], starting with a letter or
// digit.
func ValidMediaType(mt string) bool {
	t, s, ok := strings.Cut(mt, "/")
	return ok && restrictedName(t) && restrictedName(s)
}

func restrictedName(s string) bool {
	if len(s) == 0 || len(s) > 127 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case i > 0 && strings.IndexByte("!#$&^_.+-", c) >= 0:
		default:
			return false
		}
	}
	return true
}
