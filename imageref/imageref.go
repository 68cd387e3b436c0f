package imageref

import (
	"fmt"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/distribution/reference"
	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/image/layout"
)

// Transport names where an image lives.
type Transport string

const (
	// OCI is an OCI image layout directory: oci:DIR[:TAG|@DIGEST].
	OCI Transport = "oci"
	// OCIArchive is a tar archive of an OCI image layout: oci-archive:FILE[:TAG|@DIGEST].
	OCIArchive Transport = "oci-archive"
	// Docker is a registry repository: docker://[HOST[:PORT]/]REPO[:TAG|@DIGEST], normalised as
	// docker does (busybox is docker.io/library/busybox:latest).
	Docker Transport = "docker"
	// DockerArchive is what docker save and podman save write, read-only:
	// docker-archive:FILE[:NAME[:TAG]|@DIGEST], NAME normalised as docker does.
	DockerArchive Transport = "docker-archive"
)

// Reference is a parsed image name. At most one of Tag and Digest is set; when both are empty
// the name designates the whole layout (commands that read one image then require the layout to
// hold exactly one).
type Reference struct {
	Transport Transport
	// Path is the layout directory (oci) or the archive file (oci-archive), as given; for
	// docker, the normalised repository name HOST/REPO.
	Path string
	// Domain and Repository split Path for docker: the registry and the repository name.
	Domain, Repository string
	// Tag is the org.opencontainers.image.ref.name of an index.json entry.
	Tag string
	// Digest names an index.json entry (or a manifest inside the layout) by digest.
	Digest digest.Digest
}

// transport is one entry of the transport table: the prefix before ':' and the function that
// parses what follows. This is the extension point for new transports (docker://…).
type transport struct {
	name  Transport
	parse func(details string) (Reference, error)
}

var transports = []transport{
	{name: OCI, parse: func(d string) (Reference, error) { return parseLayout(OCI, d) }},
	{name: OCIArchive, parse: func(d string) (Reference, error) { return parseLayout(OCIArchive, d) }},
	{name: Docker, parse: parseDocker},
	{name: DockerArchive, parse: parseDockerArchive},
}

// Transports lists the transports Parse accepts, for help texts and error messages.
func Transports() []Transport {
	var out []Transport
	for _, t := range transports {
		out = append(out, t.name)
	}
	return out
}

// Parse parses an image name "transport:details". Malformed names wrap
// errdef.ErrInvalidArgument; known but unimplemented transports wrap errdef.ErrUnsupported.
func Parse(s string) (Reference, error) {
	name, details, ok := strings.Cut(s, ":")
	if !ok || name == "" {
		return Reference{}, fmt.Errorf("parse image name %q: %w: want TRANSPORT:DETAILS, e.g. oci:DIR:TAG (transports: %s)", s, errdef.ErrInvalidArgument, transportList())
	}
	for _, t := range transports {
		if string(t.name) != name {
			continue
		}
		r, err := t.parse(details)
		if err != nil {
			return Reference{}, fmt.Errorf("parse image name %q: %w", s, err)
		}
		return r, nil
	}
	return Reference{}, fmt.Errorf("parse image name %q: %w: unknown transport %q (transports: %s)", s, errdef.ErrInvalidArgument, name, transportList())
}

func transportList() string {
	var names []string
	for _, t := range Transports() {
		names = append(names, string(t))
	}
	return strings.Join(names, ", ")
}

// parseLayout parses PATH[:TAG|@DIGEST] the way containers-transports(5) does for oci: the
// path ends at the first ':'.
func parseLayout(t Transport, details string) (Reference, error) {
	path, tag, hasTag := strings.Cut(details, ":")
	r := Reference{Transport: t, Path: path}
	if at := strings.LastIndexByte(path, '@'); at >= 0 && hasTag && isAlgorithm(path[at+1:]) {
		r.Path = path[:at]
		r.Digest = digest.Digest(path[at+1:] + ":" + tag)
		if err := content.ValidateDigest(r.Digest); err != nil {
			return Reference{}, err
		}
		tag = ""
	} else if hasTag {
		if tag != "" {
			if err := ValidateTag(tag); err != nil {
				return Reference{}, err
			}
		}
		r.Tag = tag
	}
	if r.Path == "" {
		return Reference{}, fmt.Errorf("%w: empty %s path", errdef.ErrInvalidArgument, t)
	}
	if strings.ContainsRune(r.Path, 0) {
		return Reference{}, fmt.Errorf("%w: path contains a NUL byte", errdef.ErrInvalidArgument)
	}
	return r, nil
}

// parseDocker parses //[HOST[:PORT]/]REPO[:TAG|@DIGEST] with distribution/reference and
// docker's defaults. A digest wins over a tag written beside it.
func parseDocker(details string) (Reference, error) {
	rest, ok := strings.CutPrefix(details, "//")
	if !ok {
		return Reference{}, fmt.Errorf("%w: want docker://[HOST[:PORT]/]REPO[:TAG|@DIGEST]", errdef.ErrInvalidArgument)
	}
	n, err := reference.ParseNormalized(rest)
	if err != nil {
		return Reference{}, err
	}
	r := Reference{Transport: Docker, Path: n.Name(), Domain: n.Domain, Repository: n.Repository, Tag: n.Tag, Digest: n.Digest}
	if r.Digest != "" {
		r.Tag = ""
	}
	return r, nil
}

// ParseRepository parses a name that may designate a whole repository or layout, as sync's
// do: like Parse, except that a docker:// name without a tag of its own gets none (Parse gives it
// docker's default, latest).
func ParseRepository(s string) (Reference, error) {
	r, err := Parse(s)
	if err != nil || r.Transport != Docker || r.Digest != "" {
		return r, err
	}
	if written, err := reference.Parse(strings.TrimPrefix(s, string(Docker)+"://")); err == nil && written.Tag == "" {
		r.Tag = ""
	}
	return r, nil
}

// parseDockerArchive parses FILE[:NAME[:TAG]|@DIGEST]: the path ends at the first ':', and the
// rest is a docker reference, normalised (busybox → docker.io/library/busybox:latest), which is
// how OpenDockerArchive names the archive's RepoTags.
func parseDockerArchive(details string) (Reference, error) {
	file, name, hasName := strings.Cut(details, ":")
	if !hasName || strings.Contains(file, "@") {
		return parseLayout(DockerArchive, details)
	}
	r, err := parseLayout(DockerArchive, file)
	if err != nil {
		return r, err
	}
	if name != "" {
		if r.Tag, err = NormalizeRepoTag(name); err != nil {
			return r, err
		}
	}
	return r, nil
}

// NormalizeRepoTag is the docker-archive name of a RepoTag: the normalised docker reference
// (docker.io/library/busybox:latest for busybox).
func NormalizeRepoTag(s string) (string, error) {
	n, err := reference.ParseNormalized(s)
	if err != nil {
		return "", err
	}
	if n.Digest != "" {
		return "", fmt.Errorf("%w: %q: a docker-archive names images by NAME[:TAG]", errdef.ErrInvalidArgument, s)
	}
	return n.String(), nil
}

func isAlgorithm(s string) bool {
	switch s {
	case "sha256", "sha512":
		return true
	}
	return false
}

// ValidateTag checks tag against the org.opencontainers.image.ref.name grammar of image-spec
// (annotations.md), exactly as image/layout does before writing index.json:
//
//	ref       ::= component ("/" component)*
//	component ::= alphanum (separator alphanum)*
//	alphanum  ::= [A-Za-z0-9]+
//	separator ::= [-._:@+] | "--"
//
// Errors wrap errdef.ErrInvalidArgument.
func ValidateTag(tag string) error { return layout.ValidateRefName(tag) }

// String formats r so that Parse(r.String()) gives r back.
func (r Reference) String() string {
	s := string(r.Transport) + ":" + r.Path
	if r.Transport == Docker {
		s = "docker://" + r.Path
	}
	switch {
	case r.Digest != "":
		s += "@" + string(r.Digest)
	case r.Tag != "":
		s += ":" + r.Tag
	}
	return s
}

// Ref is what to resolve inside the layout: the digest, the tag, or "" for "the only image".
func (r Reference) Ref() string {
	if r.Digest != "" {
		return string(r.Digest)
	}
	return r.Tag
}
