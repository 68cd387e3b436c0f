package layout

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/errdef"
)

// RefName is the annotation that names an index.json entry.
const RefName = ocispec.AnnotationRefName

// Entry is one entry of index.json: a tagged descriptor, or an untagged one (Name == "").
type Entry struct {
	Name       string
	Descriptor ocispec.Descriptor
}

// ValidateRefName checks a tag against the image-layout ref grammar:
// component ("/" component)*, component = alphanum (separator alphanum)*, alphanum = [A-Za-z0-9]+,
// separator = [-._:@+] | "--".
func ValidateRefName(ref string) error {
	bad := func(why string) error {
		return fmt.Errorf("tag %q: %w: %s", ref, errdef.ErrInvalidArgument, why)
	}
	if ref == "" {
		return bad("empty")
	}
	if len(ref) > 4096 {
		return bad("longer than 4096 characters")
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	sep := func(c byte) bool { return c == '-' || c == '.' || c == '_' || c == ':' || c == '@' || c == '+' }
	start := true // at the start of a component: an alphanum must follow
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		switch {
		case alnum(c):
			start = false
		case c == '/':
			if start {
				return bad("empty path component or separator before '/'")
			}
			start = true
		case sep(c):
			if start {
				return bad(fmt.Sprintf("separator %q at offset %d must follow a letter or digit", c, i))
			}
			if c == '-' && i+1 < len(ref) && ref[i+1] == '-' {
				i++ // "--" is one separator
			}
			start = true
		default:
			return bad(fmt.Sprintf("character %q at offset %d is not allowed", c, i))
		}
	}
	if start {
		return bad("must end with a letter or digit")
	}
	return nil
}

// isDigestRef reports whether ref is meant as a digest ("alg:hex" with a known algorithm).
func isDigestRef(ref string) bool {
	return strings.HasPrefix(ref, "sha256:") || strings.HasPrefix(ref, "sha512:") || digest.Digest(ref).Validate() == nil
}

// List returns every entry of index.json in order.
func (l *Layout) List(ctx context.Context) ([]Entry, error) {
	idx, err := l.Index(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(idx.Manifests))
	for _, d := range idx.Manifests {
		out = append(out, Entry{Name: d.Annotations[RefName], Descriptor: d})
	}
	return out, nil
}

// Tags returns the tags of index.json (content.TagLister): every ref name, once, sorted.
// Untagged entries have none.
func (l *Layout) Tags(ctx context.Context) ([]string, error) {
	entries, err := l.List(ctx)
	if err != nil {
		return nil, err
	}
	tags := []string{}
	for _, e := range entries {
		if e.Name != "" {
			tags = append(tags, e.Name)
		}
	}
	slices.Sort(tags)
	return slices.Compact(tags), nil
}

// Resolve maps a tag (an `org.opencontainers.image.ref.name` in index.json) or a digest to a
// descriptor. A digest that index.json does not list resolves when the blob is stored and is a
// manifest or index. The blob must be present with the descriptor's size.
func (l *Layout) Resolve(ctx context.Context, ref string) (ocispec.Descriptor, error) {
	idx, err := l.Index(ctx)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var found []ocispec.Descriptor
	if isDigestRef(ref) {
		dg := digest.Digest(ref)
		if err := content.ValidateDigest(dg); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("resolve %s: %w", ref, err)
		}
		for _, d := range idx.Manifests {
			if d.Digest == dg {
				found = append(found, d)
				break
			}
		}
		if len(found) == 0 {
			d, err := l.describe(ctx, dg)
			if err != nil {
				return ocispec.Descriptor{}, fmt.Errorf("resolve %s: %w", ref, err)
			}
			return d, nil
		}
	} else {
		if err := ValidateRefName(ref); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("resolve: %w", err)
		}
		for _, d := range idx.Manifests {
			if d.Annotations[RefName] == ref {
				found = append(found, d)
			}
		}
		if len(found) == 0 {
			return ocispec.Descriptor{}, fmt.Errorf("resolve %s in %s: tag %w", ref, l.root, errdef.ErrNotFound)
		}
		for _, d := range found[1:] {
			if d.Digest != found[0].Digest {
				return ocispec.Descriptor{}, fmt.Errorf("resolve %s in %s: %w: tag names %d different manifests (%s, %s)", ref, l.root, errdef.ErrInvalidState, len(found), found[0].Digest, d.Digest)
			}
		}
	}
	d := found[0]
	if err := l.checkStored(ctx, d); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("resolve %s: %w", ref, err)
	}
	return d, nil
}

// checkStored verifies that d's blob is present with d's size.
func (l *Layout) checkStored(ctx context.Context, d ocispec.Descriptor) error {
	info, err := l.store.Info(ctx, d.Digest)
	if err != nil {
		return err
	}
	if info.Size != d.Size {
		return fmt.Errorf("%s: %w: blob has %d bytes, descriptor says %d", d.Digest, errdef.ErrSizeMismatch, info.Size, d.Size)
	}
	return nil
}

// describe builds a descriptor for a stored manifest or index blob that index.json does not list.
func (l *Layout) describe(ctx context.Context, dg digest.Digest) (ocispec.Descriptor, error) {
	info, err := l.store.Info(ctx, dg)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	d := ocispec.Descriptor{Digest: dg, Size: info.Size}
	b, err := l.readDoc(ctx, d)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	d.MediaType = sniffManifest(b)
	if d.MediaType == "" {
		return ocispec.Descriptor{}, fmt.Errorf("%s: %w: blob is not a manifest or index", dg, errdef.ErrInvalidArgument)
	}
	if _, err := children(d, b); err != nil {
		return ocispec.Descriptor{}, err
	}
	return d, nil
}

// Tag names d with ref in index.json, replacing what ref named before. d must be stored with
// its size. When ref is d's digest, d is added as an untagged entry (unless index.json already
// lists that digest): this is how a root with no name is kept from garbage collection.
func (l *Layout) Tag(ctx context.Context, d ocispec.Descriptor, ref string) error {
	if err := content.ValidateDescriptor(d); err != nil {
		return fmt.Errorf("tag %s: %w", ref, err)
	}
	if d.MediaType == "" {
		return fmt.Errorf("tag %s: %s: %w: descriptor has no mediaType", ref, d.Digest, errdef.ErrInvalidArgument)
	}
	untagged := isDigestRef(ref)
	if untagged {
		if digest.Digest(ref) != d.Digest {
			return fmt.Errorf("tag %s: %w: a digest reference must be the descriptor's digest %s", ref, errdef.ErrInvalidArgument, d.Digest)
		}
	} else if err := ValidateRefName(ref); err != nil {
		return fmt.Errorf("tag: %w", err)
	}
	entry := d
	entry.Data = nil
	entry.Annotations = make(map[string]string, len(d.Annotations)+1)
	for k, v := range d.Annotations {
		entry.Annotations[k] = v
	}
	delete(entry.Annotations, RefName)
	if !untagged {
		entry.Annotations[RefName] = ref
	}
	if len(entry.Annotations) == 0 {
		entry.Annotations = nil
	}
	err := l.update(ctx, func(idx *ocispec.Index) (bool, error) {
		// Checked under the lock: a GC can not take the blob between the check and the write.
		if err := l.checkStored(ctx, d); err != nil {
			return false, err
		}
		if untagged {
			for _, e := range idx.Manifests {
				if e.Digest == d.Digest {
					return false, nil
				}
			}
			idx.Manifests = append(idx.Manifests, entry)
			return true, nil
		}
		out := idx.Manifests[:0]
		replaced := false
		for _, e := range idx.Manifests {
			name, named := e.Annotations[RefName]
			switch {
			case named && name == ref:
				// dropped: the tag moves
			case !named && e.Digest == d.Digest && !replaced:
				replaced = true // the untagged entry becomes the tagged one
			default:
				out = append(out, e)
			}
		}
		idx.Manifests = append(out, entry)
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("tag %s in %s: %w", ref, l.root, err)
	}
	return nil
}

// Untag removes the entries named ref from index.json. What they pointed to becomes garbage
// unless something else reaches it. A ref that names nothing wraps errdef.ErrNotFound.
func (l *Layout) Untag(ctx context.Context, ref string) error {
	if !isDigestRef(ref) {
		if err := ValidateRefName(ref); err != nil {
			return fmt.Errorf("untag: %w", err)
		}
	}
	err := l.update(ctx, func(idx *ocispec.Index) (bool, error) {
		out := idx.Manifests[:0]
		for _, e := range idx.Manifests {
			if e.Annotations[RefName] == ref || (e.Annotations[RefName] == "" && string(e.Digest) == ref) {
				continue
			}
			out = append(out, e)
		}
		if len(out) == len(idx.Manifests) {
			return false, fmt.Errorf("tag %w", errdef.ErrNotFound)
		}
		idx.Manifests = out
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("untag %s in %s: %w", ref, l.root, err)
	}
	return nil
}

// Delete removes a blob and every index.json entry that points to it. Blobs that only it
// reached stay until GC.
func (l *Layout) Delete(ctx context.Context, dg digest.Digest) error {
	if err := content.ValidateDigest(dg); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	defer l.forgetReferrers()
	var blobErr error
	err := l.update(ctx, func(idx *ocispec.Index) (bool, error) {
		out := idx.Manifests[:0]
		for _, e := range idx.Manifests {
			if e.Digest != dg {
				out = append(out, e)
			}
		}
		changed := len(out) != len(idx.Manifests)
		idx.Manifests = out
		// The blob goes while the lock is held, so no writer tags it in between.
		blobErr = l.store.Delete(ctx, dg)
		if blobErr != nil && !(changed && errors.Is(blobErr, errdef.ErrNotFound)) {
			return false, blobErr
		}
		return changed, nil
	})
	if err != nil {
		return fmt.Errorf("delete %s from %s: %w", dg, l.root, err)
	}
	return nil
}

// Referrers lists the manifests and indexes stored in the layout whose subject is d
// (image-spec manifest.md "subject"), described as the referrers API describes them, optionally
// filtered by artifactType. Every stored document is considered, listed in index.json or not
// (GC keeps a referrer as long as its subject is reachable). The first call reads every stored
// blob of at most 4 MiB that starts like a JSON object and keeps the answer for every subject;
// a document pushed through this Layout, a Delete or a GC drops it (a copy with --referrers
// asks once per manifest). Writes by other processes meanwhile are not seen.
func (l *Layout) Referrers(ctx context.Context, d ocispec.Descriptor, artifactType string) ([]ocispec.Descriptor, error) {
	if err := content.ValidateDigest(d.Digest); err != nil {
		return nil, fmt.Errorf("list referrers: %w", err)
	}
	l.refsMu.Lock()
	defer l.refsMu.Unlock()
	if l.refs == nil {
		refs, err := l.scanReferrers(ctx, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("list referrers of %s in %s: %w", d.Digest, l.root, err)
		}
		l.refs = map[digest.Digest][]ocispec.Descriptor{}
		for _, r := range refs {
			if desc, ok := referrerOf(r.desc, r.body, r.subject); ok {
				l.refs[r.subject] = append(l.refs[r.subject], desc)
			}
		}
	}
	out := []ocispec.Descriptor{}
	for _, desc := range l.refs[d.Digest] {
		if artifactType == "" || desc.ArtifactType == artifactType {
			out = append(out, desc)
		}
	}
	slices.SortFunc(out, func(a, b ocispec.Descriptor) int { return strings.Compare(string(a.Digest), string(b.Digest)) })
	return out, nil
}

// forgetReferrers drops what Referrers learnt.
func (l *Layout) forgetReferrers() {
	l.refsMu.Lock()
	l.refs = nil
	l.refsMu.Unlock()
}
