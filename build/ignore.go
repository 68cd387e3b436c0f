package build

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/wharfoci/wharf/errdef"
)

// maxIgnoreSize caps an ignore file.
const maxIgnoreSize = 4 << 20

// FindIgnoreFile returns the ignore file of a build, as buildah 1.28 looks for it:
// ignoreFile when set (--ignorefile); else FILE.dockerignore, else FILE.containerignore
// beside the Containerfile (FILE is the Containerfile's path); else CONTEXT/.containerignore,
// else CONTEXT/.dockerignore. It returns "" when there is none.
func FindIgnoreFile(contextDir, containerfile, ignoreFile string) (string, error) {
	if ignoreFile != "" {
		if _, err := os.Stat(ignoreFile); err != nil {
			return "", fmt.Errorf("find ignore file: %w", err)
		}
		return ignoreFile, nil
	}
	var candidates []string
	if containerfile != "" {
		candidates = append(candidates, containerfile+".dockerignore", containerfile+".containerignore")
	}
	candidates = append(candidates, filepath.Join(contextDir, ".containerignore"), filepath.Join(contextDir, ".dockerignore"))
	for _, c := range candidates {
		st, err := os.Stat(c)
		if err == nil && !st.IsDir() {
			return c, nil
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return "", fmt.Errorf("find ignore file: %w", err)
		}
	}
	return "", nil
}

// Ignore holds the exclusion rules of a build context (Docker's .dockerignore syntax:
// patterns from the context root, `**`, `!` exceptions, the last matching pattern wins, a
// pattern that matches a directory matches what is below it). The zero value and nil ignore
// nothing. Not safe for concurrent use (the matcher keeps state).
type Ignore struct {
	File     string   // the file read, "" when the rules came from elsewhere
	Patterns []string // as ignorefile.ReadAll cleaned them

	pm         *patternmatcher.PatternMatcher
	exceptions [][]string // each `!` pattern, split into components
}

// ReadIgnore reads the ignore file FindIgnoreFile picks (none: an empty Ignore).
func ReadIgnore(contextDir, containerfile, ignoreFile string) (*Ignore, error) {
	name, err := FindIgnoreFile(contextDir, containerfile, ignoreFile)
	if err != nil || name == "" {
		return &Ignore{}, err
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("read ignore file: %w", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > maxIgnoreSize {
		return nil, fmt.Errorf("read ignore file %s: %w: over %d bytes", name, errdef.ErrTooLarge, maxIgnoreSize)
	}
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("read ignore file %s: %w", name, err)
	}
	ig, err := NewIgnore(patterns)
	if err != nil {
		return nil, fmt.Errorf("read ignore file %s: %w", name, err)
	}
	ig.File = name
	return ig, nil
}

// NewIgnore compiles patterns (already in ignorefile.ReadAll's clean form, or --exclude
// operands). A malformed pattern wraps errdef.ErrInvalidArgument.
func NewIgnore(patterns []string) (*Ignore, error) {
	ig := &Ignore{Patterns: patterns}
	if len(patterns) == 0 {
		return ig, nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("compile ignore patterns: %w: %v", errdef.ErrInvalidArgument, err)
	}
	ig.pm = pm
	for _, p := range pm.Patterns() {
		if p.Exclusion() {
			ig.exceptions = append(ig.exceptions, strings.Split(strings.Trim(filepath.ToSlash(p.String()), "/"), "/"))
		}
	}
	return ig, nil
}

func (ig *Ignore) empty() bool { return ig == nil || ig.pm == nil }

// Excluded reports whether the slash-separated path rel (relative to the rules' root) is
// excluded, its parents' matches included.
func (ig *Ignore) Excluded(rel string) (bool, error) {
	if ig.empty() || rel == "" || rel == "." {
		return false, nil
	}
	return ig.pm.MatchesOrParentMatches(rel)
}

// match is Excluded for a walk: parent is the match state of rel's directory.
func (ig *Ignore) match(rel string, parent patternmatcher.MatchInfo) (bool, patternmatcher.MatchInfo, error) {
	if ig.empty() {
		return false, parent, nil
	}
	return ig.pm.MatchesUsingParentResults(rel, parent)
}

// MayIncludeBelow reports whether an exception (`!pattern`) could re-include something below
// the excluded directory rel: when it cannot, a walk skips the directory without reading it.
// It errs on the side of descending: a `**` in an exception, or an exception longer than rel
// whose leading components match rel's, keeps the walk going.
func (ig *Ignore) MayIncludeBelow(rel string) bool {
	if ig.empty() || len(ig.exceptions) == 0 {
		return false
	}
	dc := strings.Split(rel, "/")
	for _, pc := range ig.exceptions {
		if mayMatchUnder(pc, dc) {
			return true
		}
	}
	return false
}

// mayMatchUnder reports whether pattern components pc could match a path below the
// directory whose components are dc.
func mayMatchUnder(pc, dc []string) bool {
	for i, d := range dc {
		if i >= len(pc) {
			// the exception matches an ancestor of rel, and a later pattern excluded rel
			// all the same: that later pattern excludes everything below rel too
			return false
		}
		if strings.Contains(pc[i], "**") {
			return true
		}
		if ok, err := path.Match(pc[i], d); err != nil || !ok {
			return false
		}
	}
	return len(pc) > len(dc)
}
