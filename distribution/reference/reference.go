package reference

import (
	"fmt"
	"strconv"
	"strings"

	digest "github.com/opencontainers/go-digest"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
)

const (
	// DefaultDomain is the registry of a reference that names none (Docker Hub).
	DefaultDomain = "docker.io"
	// DefaultTag is the tag of a normalised reference that has neither tag nor digest.
	DefaultTag = "latest"
	// officialRepoPrefix is the namespace of single-component Docker Hub repositories.
	officialRepoPrefix = "library/"
	// legacyDomain is Docker Hub's former name, normalised to DefaultDomain.
	legacyDomain = "index.docker.io"

	// MaxNameLength bounds domain + "/" + repository, as most clients and registries do
	// (distribution-spec: "many clients impose a limit of 255 characters").
	MaxNameLength = 255
	// MaxTagLength is the longest tag the grammar allows.
	MaxTagLength = 128
)

// Reference is a parsed image reference. Domain is empty only for a reference parsed by Parse
// that names no registry. At least one of Tag and Digest is set in a normalised reference.
type Reference struct {
	Domain     string        // "docker.io", "localhost:5000", "[::1]:5000"
	Repository string        // "library/alpine": the distribution-spec <name>
	Tag        string        // "3.19"; empty when absent
	Digest     digest.Digest // empty when absent
}

// Name returns the domain and repository: "docker.io/library/alpine".
func (r Reference) Name() string {
	if r.Domain == "" {
		return r.Repository
	}
	return r.Domain + "/" + r.Repository
}

// String returns the reference in full: name[:tag][@digest]. Parsing it gives r back.
func (r Reference) String() string {
	s := r.Name()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + string(r.Digest)
	}
	return s
}

// Ref returns what a registry is asked for in /v2/<name>/manifests/<reference>: the digest
// when there is one (it pins the content; a tag beside it is informational), else the tag.
func (r Reference) Ref() string {
	if r.Digest != "" {
		return string(r.Digest)
	}
	return r.Tag
}

// Familiar returns the short form users type: the default domain and the library/ namespace
// of official images are left out ("docker.io/library/alpine:latest" → "alpine:latest"), unless
// the repository would then read as a registry ("docker.io/foo.com/app" stays). ParseNormalized
// of the familiar form gives r back.
func (r Reference) Familiar() string {
	f := r
	first, _, _ := strings.Cut(f.Repository, "/")
	if f.Domain == DefaultDomain && !isDomainLike(first) {
		f.Domain = ""
		if rest, ok := strings.CutPrefix(f.Repository, officialRepoPrefix); ok && !strings.Contains(rest, "/") {
			f.Repository = rest
		}
	}
	return f.String()
}

// Parse parses s as HOST[:PORT]/REPOSITORY[:TAG][@DIGEST] without applying defaults: the
// first path component is a domain only if it contains "." or ":", is "localhost", or has an
// upper-case letter (repositories are lower case), and there must be another component after
// it. The domain is a DNS name (components of [A-Za-z0-9-], not starting or ending with "-",
// at most 63 characters), an IPv4 address or a bracketed IPv6 address, with an optional port
// 1–65535; the repository follows the distribution-spec name grammar (see ValidateRepository);
// the tag [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}; the digest passes content.ValidateDigest. The
// name (domain/repository) is at most MaxNameLength bytes. Errors wrap
// errdef.ErrInvalidArgument (errdef.ErrInvalidDigest for the digest).
func Parse(s string) (Reference, error) {
	fail := func(format string, a ...any) (Reference, error) {
		return Reference{}, fmt.Errorf("parse reference %q: %w: %s", s, errdef.ErrInvalidArgument, fmt.Sprintf(format, a...))
	}
	if s == "" {
		return fail("empty")
	}
	var r Reference
	rest := s
	if i := strings.LastIndexByte(rest, '@'); i >= 0 {
		d := digest.Digest(rest[i+1:])
		if err := content.ValidateDigest(d); err != nil {
			return Reference{}, fmt.Errorf("parse reference %q: %w", s, err)
		}
		r.Digest = d
		rest = rest[:i]
	}
	if i := strings.LastIndexByte(rest, ':'); i >= 0 && !strings.Contains(rest[i+1:], "/") {
		r.Tag = rest[i+1:]
		if err := ValidateTag(r.Tag); err != nil {
			return fail("tag %q does not match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", r.Tag)
		}
		rest = rest[:i]
	}
	if len(rest) > MaxNameLength {
		return fail("name is %d bytes, over %d", len(rest), MaxNameLength)
	}
	if first, after, ok := strings.Cut(rest, "/"); ok && isDomainLike(first) {
		if err := ValidateDomain(first); err != nil {
			return fail("registry %q: %v", first, err)
		}
		r.Domain = first
		rest = after
	}
	if err := ValidateRepository(rest); err != nil {
		if ValidateRepository(strings.ToLower(rest)) == nil {
			return fail("repository %q must be lower case", rest)
		}
		return fail("repository %q does not match the distribution-spec name grammar", rest)
	}
	r.Repository = rest
	return r, nil
}

// ParseNormalized parses s as Parse does and applies Docker's defaults: no domain means
// docker.io (index.docker.io is docker.io too), a single-component Docker Hub repository is in
// library/, and a reference with neither tag nor digest gets the tag latest. So "alpine" is
// docker.io/library/alpine:latest and "localhost:5000/app@sha256:…" keeps its digest and gets
// no tag. A bare 64-character hex string is refused: it is an image ID, not a name.
func ParseNormalized(s string) (Reference, error) {
	r, err := Parse(s)
	if err != nil {
		return Reference{}, err
	}
	if r.Domain == "" && isHex64(r.Repository) {
		return Reference{}, fmt.Errorf("parse reference %q: %w: a 64-character hex string is an image ID, not a repository name", s, errdef.ErrInvalidArgument)
	}
	if r.Domain == "" || r.Domain == legacyDomain {
		r.Domain = DefaultDomain
	}
	if r.Domain == DefaultDomain && !strings.Contains(r.Repository, "/") {
		r.Repository = officialRepoPrefix + r.Repository
	}
	if r.Tag == "" && r.Digest == "" {
		r.Tag = DefaultTag
	}
	if len(r.Name()) > MaxNameLength {
		return Reference{}, fmt.Errorf("parse reference %q: %w: name %s is over %d bytes", s, errdef.ErrInvalidArgument, r.Name(), MaxNameLength)
	}
	return r, nil
}

// ValidateRepository checks name against the distribution-spec repository name grammar:
// path components of [a-z0-9]+ joined by ".", "_", "__" or one or more "-", separated by "/",
// at most MaxNameLength bytes in all. Errors wrap errdef.ErrInvalidArgument.
func ValidateRepository(name string) error {
	if name == "" || len(name) > MaxNameLength {
		return fmt.Errorf("repository name %q: %w: must be 1-%d bytes", name, errdef.ErrInvalidArgument, MaxNameLength)
	}
	for comp := range strings.SplitSeq(name, "/") {
		if !validComponent(comp) {
			return fmt.Errorf("repository name %q: %w: component %q does not match [a-z0-9]+((\\.|_|__|-+)[a-z0-9]+)*", name, errdef.ErrInvalidArgument, comp)
		}
	}
	return nil
}

// ValidateTag checks tag against [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}. Errors wrap
// errdef.ErrInvalidArgument.
func ValidateTag(tag string) error {
	ok := tag != "" && len(tag) <= MaxTagLength
	for i := 0; ok && i < len(tag); i++ {
		c := tag[i]
		ok = c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || i > 0 && (c == '.' || c == '-')
	}
	if !ok {
		return fmt.Errorf("tag %q: %w: must match [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}", tag, errdef.ErrInvalidArgument)
	}
	return nil
}

func isLowerAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

// validComponent matches [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*.
func validComponent(s string) bool {
	i := 0
	for {
		j := i
		for j < len(s) && isLowerAlnum(s[j]) {
			j++
		}
		if j == i {
			return false
		}
		if j == len(s) {
			return true
		}
		switch s[j] {
		case '.':
			j++
		case '_':
			j++
			if j < len(s) && s[j] == '_' {
				j++
			}
		case '-':
			for j < len(s) && s[j] == '-' {
				j++
			}
		default:
			return false
		}
		i = j
	}
}

// isDomainLike reports whether the first component of a name is a registry, as Docker decides:
// it has a "." or a ":", is "localhost", or has upper-case letters.
func isDomainLike(s string) bool {
	return strings.ContainsAny(s, ".:") || s == "localhost" || strings.ToLower(s) != s
}

// ValidateDomain checks a registry host: host[:port], host being a DNS name, an IPv4 address
// or [IPv6].
func ValidateDomain(s string) error {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return fmt.Errorf("unclosed [")
		}
		host, port = s[:end+1], s[end+1:]
		if port != "" {
			if port[0] != ':' {
				return fmt.Errorf("unexpected %q after ]", port)
			}
			port = port[1:]
			if port == "" {
				return fmt.Errorf("empty port")
			}
		}
		if !validIPv6(host[1:end]) {
			return fmt.Errorf("%q is not an IPv6 address", host)
		}
	} else {
		if i := strings.IndexByte(s, ':'); i >= 0 {
			host, port = s[:i], s[i+1:]
			if port == "" {
				return fmt.Errorf("empty port")
			}
		}
		if !validHost(host) {
			return fmt.Errorf("%q is not a host name", host)
		}
	}
	if port != "" {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' || port[0] == '+' {
			return fmt.Errorf("port %q is not 1-65535", port)
		}
	}
	return nil
}

// validHost matches domain-component ("." domain-component)*, each component
// [A-Za-z0-9] or [A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9], at most 63 characters. IPv4 addresses
// are of this form.
func validHost(h string) bool {
	if h == "" {
		return false
	}
	for comp := range strings.SplitSeq(h, ".") {
		if comp == "" || len(comp) > 63 || comp[0] == '-' || comp[len(comp)-1] == '-' {
			return false
		}
		for i := 0; i < len(comp); i++ {
			c := comp[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// validIPv6 accepts hex groups and colons with at most one "::" (no zone, no embedded IPv4).
func validIPv6(s string) bool {
	if len(s) < 2 || len(s) > 39 {
		return false
	}
	groups, double := 0, strings.Count(s, "::")
	if double > 1 || strings.Contains(s, ":::") {
		return false
	}
	for g := range strings.SplitSeq(s, ":") {
		if g == "" {
			continue
		}
		if len(g) > 4 {
			return false
		}
		for i := 0; i < len(g); i++ {
			c := g[i]
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
				return false
			}
		}
		groups++
	}
	if double == 1 {
		return groups <= 7 && !strings.Contains(strings.Replace(s, "::", "", 1), "::") && !(strings.HasPrefix(s, ":") && !strings.HasPrefix(s, "::")) && !(strings.HasSuffix(s, ":") && !strings.HasSuffix(s, "::"))
	}
	return groups == 8 && !strings.HasPrefix(s, ":") && !strings.HasSuffix(s, ":")
}

func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}
