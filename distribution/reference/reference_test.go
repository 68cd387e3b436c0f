package reference

import (
	"errors"
	"strings"
	"testing"

	"github.com/wharfoci/wharf/errdef"
)

const dgst = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"

func TestParseNormalized(t *testing.T) {
	tests := []struct {
		in, want, familiar string // want "" = invalid
		domain, repo       string
	}{
		{"alpine", "docker.io/library/alpine:latest", "alpine:latest", "docker.io", "library/alpine"},
		{"alpine:3.19", "docker.io/library/alpine:3.19", "alpine:3.19", "docker.io", "library/alpine"},
		{"alpine@" + dgst, "docker.io/library/alpine@" + dgst, "alpine@" + dgst, "docker.io", "library/alpine"},
		{"alpine:3.19@" + dgst, "docker.io/library/alpine:3.19@" + dgst, "alpine:3.19@" + dgst, "docker.io", "library/alpine"},
		{"user/app", "docker.io/user/app:latest", "user/app:latest", "docker.io", "user/app"},
		{"docker.io/alpine", "docker.io/library/alpine:latest", "alpine:latest", "docker.io", "library/alpine"},
		{"index.docker.io/user/app:v1", "docker.io/user/app:v1", "user/app:v1", "docker.io", "user/app"},
		{"docker.io/library/alpine", "docker.io/library/alpine:latest", "alpine:latest", "docker.io", "library/alpine"},
		{"localhost/app", "localhost/app:latest", "localhost/app:latest", "localhost", "app"},
		{"localhost:5000/a/b/c:tag", "localhost:5000/a/b/c:tag", "localhost:5000/a/b/c:tag", "localhost:5000", "a/b/c"},
		{"127.0.0.1:5200/wharf/busybox", "127.0.0.1:5200/wharf/busybox:latest", "127.0.0.1:5200/wharf/busybox:latest", "127.0.0.1:5200", "wharf/busybox"},
		{"[::1]:5000/app:1", "[::1]:5000/app:1", "[::1]:5000/app:1", "[::1]:5000", "app"},
		{"[fe80::1]/app", "[fe80::1]/app:latest", "[fe80::1]/app:latest", "[fe80::1]", "app"},
		{"ghcr.io/org/repo-name_x.y__z---w:v1.2.3-rc_1", "ghcr.io/org/repo-name_x.y__z---w:v1.2.3-rc_1", "ghcr.io/org/repo-name_x.y__z---w:v1.2.3-rc_1", "ghcr.io", "org/repo-name_x.y__z---w"},
		{"Registry.Example.COM/app", "Registry.Example.COM/app:latest", "Registry.Example.COM/app:latest", "Registry.Example.COM", "app"},
		{"MyHost/app", "MyHost/app:latest", "MyHost/app:latest", "MyHost", "app"},
		{"a:" + strings.Repeat("t", 128), "docker.io/library/a:" + strings.Repeat("t", 128), "a:" + strings.Repeat("t", 128), "docker.io", "library/a"},
		{"localhost:5000", "docker.io/library/localhost:5000", "localhost:5000", "docker.io", "library/localhost"},

		{"docker.io/foo.com/app", "docker.io/foo.com/app:latest", "docker.io/foo.com/app:latest", "docker.io", "foo.com/app"},
		{"docker.io/localhost", "docker.io/library/localhost:latest", "localhost:latest", "docker.io", "library/localhost"},

		{"", "", "", "", ""},
		{"Alpine", "", "", "", ""},
		{"alpine:", "", "", "", ""},
		{"alpine:.x", "", "", "", ""},
		{"alpine:-x", "", "", "", ""},
		{"alpine:" + strings.Repeat("t", 129), "", "", "", ""},
		{"alpine@sha256:../../x", "", "", "", ""},
		{"alpine@sha256:abc", "", "", "", ""},
		{"alpine@md5:d41d8cd98f00b204e9800998ecf8427e", "", "", "", ""},
		{"alpine@", "", "", "", ""},
		{"a//b", "", "", "", ""},
		{"a/b/", "", "", "", ""},
		{"/a", "", "", "", ""},
		{"a..b", "", "", "", ""},
		{"a___b", "", "", "", ""},
		{"-a", "", "", "", ""},
		{"a-", "", "", "", ""},
		{"a b", "", "", "", ""},
		{"example.com:0/a", "", "", "", ""},
		{"example.com:65536/a", "", "", "", ""},
		{"example.com:/a", "", "", "", ""},
		{"example.com:x/a", "", "", "", ""},
		{"-example.com/a", "", "", "", ""},
		{"exa_mple.com/a", "", "", "", ""},
		{"[::1/a", "", "", "", ""},
		{"[:::]/a", "", "", "", ""},
		{"[1:2:3:4:5:6:7:8:9]/a", "", "", "", ""},
		{"[::1]x/a", "", "", "", ""},
		{"example.com/", "", "", "", ""},
		{strings.Repeat("a", 64), "", "", "", ""},
		{"example.com/" + strings.Repeat("a", 250), "", "", "", ""},
		{"../../etc/passwd", "", "", "", ""},
		{"a/../b", "", "", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			r, err := ParseNormalized(tc.in)
			if tc.want == "" {
				if !errors.Is(err, errdef.ErrInvalidArgument) && !errors.Is(err, errdef.ErrInvalidDigest) {
					t.Fatalf("ParseNormalized(%q) = %+v, %v; want an error", tc.in, r, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseNormalized(%q): %v", tc.in, err)
			}
			if r.String() != tc.want || r.Familiar() != tc.familiar || r.Domain != tc.domain || r.Repository != tc.repo {
				t.Fatalf("ParseNormalized(%q) = %s (familiar %s, %+v), want %s (familiar %s)", tc.in, r, r.Familiar(), r, tc.want, tc.familiar)
			}
			again, err := Parse(r.String())
			if err != nil || again != r {
				t.Fatalf("Parse(%q) = %+v, %v; want %+v", r.String(), again, err, r)
			}
		})
	}
}

func TestParseKeepsWhatIsWritten(t *testing.T) {
	tests := []struct{ in, domain, repo, tag, ref string }{
		{"alpine", "", "alpine", "", ""},
		{"user/app:v1", "", "user/app", "v1", "v1"},
		{"localhost:5000/app@" + dgst, "localhost:5000", "app", "", dgst},
		{"h.io/app:v1@" + dgst, "h.io", "app", "v1", dgst},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			r, err := Parse(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if r.Domain != tc.domain || r.Repository != tc.repo || r.Tag != tc.tag || r.Ref() != tc.ref || r.String() != tc.in {
				t.Fatalf("Parse(%q) = %+v (ref %q)", tc.in, r, r.Ref())
			}
		})
	}
}

func TestValidateRepositoryAndTag(t *testing.T) {
	for _, name := range []string{"a", "a/b", "a0.b_c__d-e--f/g", strings.Repeat("a", 255)} {
		if err := ValidateRepository(name); err != nil {
			t.Errorf("ValidateRepository(%q): %v", name, err)
		}
	}
	for _, name := range []string{"", "A", "a/", "a_.b", "a.", strings.Repeat("a", 256), "a/B"} {
		if err := ValidateRepository(name); !errors.Is(err, errdef.ErrInvalidArgument) {
			t.Errorf("ValidateRepository(%q) = %v", name, err)
		}
	}
	for _, tag := range []string{"latest", "_x", "V1.0-rc_1", strings.Repeat("x", 128)} {
		if err := ValidateTag(tag); err != nil {
			t.Errorf("ValidateTag(%q): %v", tag, err)
		}
	}
	for _, tag := range []string{"", ".x", "-x", "a/b", "a:b", "a@b", strings.Repeat("x", 129), "é"} {
		if err := ValidateTag(tag); !errors.Is(err, errdef.ErrInvalidArgument) {
			t.Errorf("ValidateTag(%q) = %v", tag, err)
		}
	}
}

func FuzzParseReference(f *testing.F) {
	for _, s := range []string{"alpine", "localhost:5000/a/b:tag", "[::1]:5000/app@" + dgst, "docker.io/library/alpine:latest", "a..b", "Alpine", "x:y@z"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if !errors.Is(err, errdef.ErrInvalidArgument) && !errors.Is(err, errdef.ErrInvalidDigest) {
				t.Fatalf("unclassified error: %v", err)
			}
			return
		}
		if r.String() != s {
			t.Fatalf("Parse(%q).String() = %q", s, r.String())
		}
		if err := ValidateRepository(r.Repository); err != nil {
			t.Fatalf("accepted repository: %v", err)
		}
		n, err := ParseNormalized(s)
		if err != nil {
			return // e.g. a hex-64 name, or too long once docker.io/library/ is added
		}
		again, err := ParseNormalized(n.String())
		if err != nil || again != n {
			t.Fatalf("normalisation of %q is not idempotent: %+v then %+v, %v", s, n, again, err)
		}
		if fam, err := ParseNormalized(n.Familiar()); err != nil || fam != n {
			t.Fatalf("familiar form %q of %q normalises to %+v, %v; want %+v", n.Familiar(), s, fam, err, n)
		}
		if n.Tag == "" && n.Digest == "" {
			t.Fatalf("normalised %q has neither tag nor digest", s)
		}
	})
}
