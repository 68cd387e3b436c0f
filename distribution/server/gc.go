package server

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/content"
	"github.com/wharfoci/wharf/image"
)

// GCOptions tunes GC.
type GCOptions struct {
	// DryRun reports what would be removed and removes nothing.
	DryRun bool
	// DeleteUntagged also removes the manifests no tag reaches (through indexes), with the
	// referrers of what is removed, as distribution's --delete-untagged.
	DeleteUntagged bool
}

// GCResult is what a collection removed (or, dry, would remove).
type GCResult struct {
	Repositories int   `json:"repositories"`
	Manifests    int   `json:"manifestsRemoved"` // manifest links removed from repositories
	Links        int   `json:"blobLinksRemoved"` // blob links removed from repositories
	Blobs        int   `json:"blobsRemoved"`     // blobs removed from the store
	Bytes        int64 `json:"bytesRemoved"`     // their size
	Kept         int   `json:"blobsKept"`        // blobs still referenced
	DryRun       bool  `json:"dryRun,omitempty"`
}

// GC collects garbage offline, like distribution's `registry garbage-collect`: in every
// repository it marks the manifests kept (all of them, or with DeleteUntagged those tags reach
// and their referrers) and the blobs they reference, removes the other manifest, referrer and
// blob links, then removes the stored blobs no repository references. A blob pushed to a
// repository with no manifest referencing it yet is garbage: stop the registry (New refuses to
// open a root that a registry serves) and let pushes finish first. Nothing is removed when a
// kept manifest cannot be read or parsed.
func (g *Registry) GC(ctx context.Context, opts GCOptions) (GCResult, error) {
	res := GCResult{DryRun: opts.DryRun}
	repos, err := g.catalog()
	if err != nil {
		return res, fmt.Errorf("list repositories: %w", err)
	}
	res.Repositories = len(repos)
	type plan struct {
		name             string
		manifests, links []digest.Digest
		referrerEntries  []string
	}
	used := map[digest.Digest]bool{}
	var plans []plan
	for _, name := range repos {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		manifests := g.links(name, "_manifests")
		keep, blobs, err := g.markRepository(ctx, name, manifests, opts.DeleteUntagged)
		if err != nil {
			return res, fmt.Errorf("gc %s: %w (nothing removed)", name, err)
		}
		p := plan{name: name}
		for _, d := range manifests {
			if !keep[d] {
				p.manifests = append(p.manifests, d)
			}
		}
		for _, d := range g.links(name, "_blobs") {
			if !blobs[d] && !keep[d] {
				p.links = append(p.links, d)
			}
		}
		p.referrerEntries = g.staleReferrers(name, keep)
		for d := range keep {
			used[d] = true
		}
		for d := range blobs {
			used[d] = true
		}
		plans = append(plans, p)
	}
	for _, p := range plans {
		res.Manifests += len(p.manifests)
		res.Links += len(p.links)
		if opts.DryRun {
			continue
		}
		for _, d := range p.manifests {
			if err := os.Remove(g.manifestLink(p.name, d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return res, fmt.Errorf("gc %s: remove manifest %s: %w", p.name, d, err)
			}
		}
		for _, e := range p.referrerEntries {
			os.Remove(e)
			os.Remove(filepath.Dir(e)) // the subject's directory, when it is empty
		}
		for _, d := range p.links {
			if err := os.Remove(g.blobLink(p.name, d)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return res, fmt.Errorf("gc %s: remove blob link %s: %w", p.name, d, err)
			}
		}
	}
	var garbage []content.Info
	if err := g.store.Walk(ctx, func(info content.Info) error {
		if used[info.Digest] {
			res.Kept++
		} else {
			garbage = append(garbage, info)
		}
		return nil
	}); err != nil {
		return res, fmt.Errorf("list blobs: %w", err)
	}
	for _, info := range garbage {
		if !opts.DryRun {
			if err := g.store.Delete(ctx, info.Digest); err != nil {
				return res, fmt.Errorf("gc: %w", err)
			}
		}
		res.Blobs++
		res.Bytes += info.Size
	}
	return res, nil
}

// markRepository returns the manifests kept in repository name (whose manifest links are
// manifests) and the blobs they reference.
func (g *Registry) markRepository(ctx context.Context, name string, manifests []digest.Digest, deleteUntagged bool) (keep, blobs map[digest.Digest]bool, err error) {
	keep, blobs = map[digest.Digest]bool{}, map[digest.Digest]bool{}
	var queue []digest.Digest
	if deleteUntagged {
		tags, err := listDir(filepath.Join(g.repoDir(name), "_tags"))
		if err != nil {
			return nil, nil, err
		}
		for _, t := range tags {
			if m, err := g.lookupManifest(name, t, false); err == nil {
				queue = append(queue, m.Digest)
			}
		}
	} else {
		queue = slices.Clone(manifests)
	}
	for len(queue) > 0 {
		d := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if keep[d] {
			continue
		}
		m, err := g.lookupManifest(name, string(d), true)
		if err != nil {
			continue // not a manifest of this repository (an index child pushed elsewhere)
		}
		keep[d] = true
		desc := ocispec.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size}
		body, err := content.ReadAll(ctx, g.store, desc, content.MaxDocumentSize)
		if err != nil {
			return nil, nil, fmt.Errorf("read manifest %s: %w", d, err)
		}
		doc, err := image.Parse(desc, body)
		if err != nil {
			return nil, nil, fmt.Errorf("parse manifest %s: %w", d, err)
		}
		for _, c := range doc.Children() {
			if err := g.validDigest(c.Digest); err != nil {
				return nil, nil, fmt.Errorf("manifest %s: %w", d, err)
			}
			if image.IsManifest(c.MediaType) || image.IsIndex(c.MediaType) {
				queue = append(queue, c.Digest)
			} else {
				blobs[c.Digest] = true
			}
		}
		refs, err := g.referrers(name, d, "")
		if err != nil {
			return nil, nil, err
		}
		for _, r := range refs {
			queue = append(queue, r.Digest)
		}
	}
	return keep, blobs, nil
}

// links lists the digests linked under dir (_manifests or _blobs) of repository name.
func (g *Registry) links(name, dir string) []digest.Digest {
	var out []digest.Digest
	base := filepath.Join(g.repoDir(name), dir)
	algs, _ := listDir(base)
	for _, alg := range algs {
		hexes, _ := listDir(filepath.Join(base, alg))
		for _, h := range hexes {
			d := digest.Digest(alg + ":" + h)
			if g.validDigest(d) == nil {
				out = append(out, d)
			}
		}
	}
	return out
}

// staleReferrers lists the referrer entries of repository name whose manifest is not kept.
func (g *Registry) staleReferrers(name string, keep map[digest.Digest]bool) []string {
	var out []string
	base := filepath.Join(g.repoDir(name), "_referrers")
	algs, _ := listDir(base)
	for _, alg := range algs {
		subjects, _ := listDir(filepath.Join(base, alg))
		for _, s := range subjects {
			dir := filepath.Join(base, alg, s)
			entries, _ := listDir(dir)
			for _, e := range entries {
				a, h, ok := strings.Cut(e, "-")
				if ok && !keep[digest.Digest(a+":"+h)] {
					out = append(out, filepath.Join(dir, e))
				}
			}
		}
	}
	return out
}
