package artifact

import (
	"path"
	"strings"
	"testing"
)

// FuzzCleanTitle: a title that passes is a clean relative path inside the directory.
func FuzzCleanTitle(f *testing.F) {
	for _, s := range []string{"a.txt", "dir/f", "../x", "/etc/passwd", "a/../../b", "./a", "a//b/", ".", "", "..", "a/.."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, title string) {
		p, err := cleanTitle(title)
		if err != nil {
			return
		}
		if p == "" || p == "." || strings.HasPrefix(p, "/") || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") ||
			strings.Contains(p, "/../") || strings.ContainsRune(p, 0) {
			t.Fatalf("cleanTitle(%q) = %q", title, p)
		}
	})
}
