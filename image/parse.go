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

// parse runs the checks of Parse in their order, one step each; want is the kind the caller
// asks for (kindAny: whatever the document is).
func parse(desc ocispec.Descriptor, b []byte, want kind) (*Document, error) {
	ps := &parser{desc: desc, b: b, want: want, k: want}
	if err := ps.kindFromDescriptor(); err != nil {
		return nil, err
	}
	if err := ps.checkBytes(); err != nil {
		return nil, err
	}
	if err := ps.readProbe(); err != nil {
		return nil, err
	}
	if err := ps.kindFromDocument(); err != nil {
		return nil, err
	}
	if err := ps.mediaType(); err != nil {
		return nil, err
	}
	if err := ps.checkAmbiguous(); err != nil {
		return nil, err
	}
	if err := checkJSON(b, ps.k != kindConfig); err != nil {
		return nil, ps.fail("", err)
	}
	return ps.decode()
}

// parser is one document being parsed: what is known of it so far.
type parser struct {
	desc  ocispec.Descriptor
	b     []byte
	want  kind
	k     kind   // the kind as far as it is known (errors name it)
	p     probe  // the fields that tell kinds apart
	docMT string // the document's own mediaType field
	mt    string // the media type it is parsed as
}

func (ps *parser) fail(field string, err error) error {
	return &Error{Kind: ps.k.String(), Digest: ps.desc.Digest, Field: field, Err: err}
}

// kindFromDescriptor takes the kind from the descriptor's media type, when it has one: a
// document wharf parses, of the kind asked for.
func (ps *parser) kindFromDescriptor() error {
	mt := ps.desc.MediaType
	if mt == "" {
		return nil
	}
	if isSchema1(mt) {
		return unsupported(ps.desc, mt)
	}
	dk := kindOf(mt)
	if dk == kindAny {
		return unsupported(ps.desc, mt)
	}
	if ps.want != kindAny && dk != ps.want {
		return &Error{Kind: ps.want.String(), Digest: ps.desc.Digest, Field: "mediaType",
			Err: fmt.Errorf("descriptor media type %s is not a%s %s", mt, article(ps.want), ps.want)}
	}
	ps.k = dk
	return nil
}

// checkBytes caps the size, then checks the descriptor and the bytes against it (when it names
// a digest).
func (ps *parser) checkBytes() error {
	if len(ps.b) > content.MaxDocumentSize {
		return ps.fail("", fmt.Errorf("%w: %d bytes is over the %d byte limit", errdef.ErrTooLarge, len(ps.b), content.MaxDocumentSize))
	}
	d := ps.desc
	if d.Digest == "" {
		return nil
	}
	if err := content.ValidateDescriptor(d); err != nil {
		return ps.fail("descriptor", err)
	}
	if int64(len(ps.b)) != d.Size {
		return ps.fail("", fmt.Errorf("%w: %d bytes, descriptor says %d", errdef.ErrSizeMismatch, len(ps.b), d.Size))
	}
	if got := d.Digest.Algorithm().FromBytes(ps.b); got != d.Digest {
		return ps.fail("", fmt.Errorf("%w: content hashes to %s", errdef.ErrDigestMismatch, got))
	}
	return nil
}

// readProbe decodes the fields that tell kinds apart: the bytes must be one JSON object, and
// a mediaType field a non-empty string.
func (ps *parser) readProbe() error {
	if err := json.Unmarshal(ps.b, &ps.p); err != nil {
		return ps.fail("", fmt.Errorf("malformed JSON: %w", err))
	}
	if bytes.Equal(bytes.TrimSpace(ps.b), []byte("null")) {
		return ps.fail("", errors.New("not a JSON object"))
	}
	if ps.p.MediaType != nil {
		if err := json.Unmarshal(ps.p.MediaType, &ps.docMT); err != nil || ps.docMT == "" {
			return ps.fail("mediaType", errors.New("not a non-empty string"))
		}
	}
	return nil
}

// kindFromDocument, for a descriptor without a media type, takes the kind from the document:
// its mediaType field, else its fields (manifests: index; layers: manifest; rootfs: config;
// config: manifest).
func (ps *parser) kindFromDocument() error {
	if ps.desc.MediaType != "" {
		return nil
	}
	detected := kindAny
	switch p := ps.p; {
	case ps.docMT != "":
		if isSchema1(ps.docMT) {
			return unsupported(ps.desc, ps.docMT)
		}
		if detected = kindOf(ps.docMT); detected == kindAny {
			return unsupported(ps.desc, ps.docMT)
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
	switch {
	case detected == kindAny && ps.want == kindAny:
		return ps.fail("", errors.New("cannot tell whether this is a manifest, an index or an image config"))
	case detected != kindAny && ps.want != kindAny && detected != ps.want:
		return ps.fail("", fmt.Errorf("document is a%s %s, not a%s %s", article(detected), detected, article(ps.want), ps.want))
	case detected != kindAny:
		ps.k = detected
	}
	return nil
}

// mediaType settles the media type the document is parsed as: the descriptor's, which the
// document's mediaType field must equal, else the document's, else the OCI one of its kind. A
// config's mediaType field is not its media type, but may not claim a manifest's or index's;
// Docker schema 2 manifests and lists must have the field.
func (ps *parser) mediaType() error {
	mt, docMT, k := ps.desc.MediaType, ps.docMT, ps.k
	switch {
	case k == kindConfig:
		if mt == "" {
			mt = MediaTypeConfig
		}
		if docMT != "" && (IsManifest(docMT) || IsIndex(docMT)) {
			return ps.fail("mediaType", fmt.Errorf("an image config that claims to be %s", docMT))
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
		return ps.fail("mediaType", fmt.Errorf("document says %s, its descriptor %s", docMT, mt))
	}
	if kindOf(mt) != k {
		return ps.fail("mediaType", fmt.Errorf("%s is not a%s %s media type", mt, article(k), k))
	}
	if IsDocker(mt) && k != kindConfig && docMT == "" {
		return ps.fail("mediaType", fmt.Errorf("missing: docker schema 2 requires it (%s)", mt))
	}
	ps.mt = mt
	return nil
}

// checkAmbiguous refuses a document with the fields of two kinds: a manifest with manifests,
// an index with layers or config.
func (ps *parser) checkAmbiguous() error {
	switch {
	case ps.k == kindManifest && ps.p.Manifests != nil:
		return ps.fail("manifests", errors.New("a manifest with a manifests field is ambiguous"))
	case ps.k == kindIndex && ps.p.Layers != nil:
		return ps.fail("layers", errors.New("an index with a layers field is ambiguous"))
	case ps.k == kindIndex && ps.p.Config != nil:
		return ps.fail("config", errors.New("an index with a config field is ambiguous"))
	}
	return nil
}

// decode decodes the document as its kind, checks its semantics (checkManifest, checkIndex,
// checkConfig) and, for OCI, validates it against the image-spec schema.
func (ps *parser) decode() (*Document, error) {
	d := &Document{Descriptor: ps.desc}
	d.Descriptor.MediaType = ps.mt
	oci := !IsDocker(ps.mt)
	var err error
	switch ps.k {
	case kindManifest:
		d.Manifest, err = decodeAs(ps, "manifest", oci, schemaManifest, ps.p.Layers, func(m *ocispec.Manifest) (string, error) {
			return checkManifest(m, oci, ps.p.Layers != nil)
		})
	case kindIndex:
		d.Index, err = decodeAs(ps, "index", oci, schemaIndex, nil, func(x *ocispec.Index) (string, error) {
			return checkIndex(x, oci, ps.p.Manifests != nil)
		})
	case kindConfig:
		d.Config, err = decodeAs(ps, "image config", oci, schemaConfig, nil, checkConfig)
	}
	if err != nil {
		return nil, err
	}
	return d, nil
}

// decodeAs unmarshals the document into a T, checks it and, for OCI, validates it against the
// schema (layers: the raw layers field, see validateSchema).
func decodeAs[T any](ps *parser, what string, oci bool, schema string, layers json.RawMessage, check func(*T) (string, error)) (*T, error) {
	var v T
	if err := json.Unmarshal(ps.b, &v); err != nil {
		return nil, ps.fail("", fmt.Errorf("malformed %s: %w", what, err))
	}
	if field, err := check(&v); err != nil {
		return nil, ps.fail(field, err)
	}
	if oci {
		if err := validateSchema(schema, ps.b, layers); err != nil {
			return nil, ps.fail("", err)
		}
	}
	return &v, nil
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
