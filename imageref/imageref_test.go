package imageref

import (
	"errors"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"

	"github.com/wharfoci/wharf/errdef"
)

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want Reference
		err  error
	}{
		{"dir only", "oci:/tmp/img", Reference{Transport: OCI, Path: "/tmp/img"}, nil},
		{"relative dir", "oci:img", Reference{Transport: OCI, Path: "img"}, nil},
		{"tag", "oci:/tmp/img:latest", Reference{Transport: OCI, Path: "/tmp/img", Tag: "latest"}, nil},
		{"empty tag is no tag (as skopeo)", "oci:img:", Reference{Transport: OCI, Path: "img"}, nil},
		{"tag with colon stays whole (path ends at first colon)", "oci:img:example.com/app:v1", Reference{Transport: OCI, Path: "img", Tag: "example.com/app:v1"}, nil},
		{"tag with at", "oci:img:app@v1", Reference{Transport: OCI, Path: "img", Tag: "app@v1"}, nil},
		{"digest", "oci:/tmp/img@sha256:" + hex64, Reference{Transport: OCI, Path: "/tmp/img", Digest: digest.Digest("sha256:" + hex64)}, nil},
		{"at in dir name is not a digest", "oci:me@host/img:v1", Reference{Transport: OCI, Path: "me@host/img", Tag: "v1"}, nil},
		{"archive", "oci-archive:/tmp/a.tar", Reference{Transport: OCIArchive, Path: "/tmp/a.tar"}, nil},
		{"archive tag", "oci-archive:a.tar:v2", Reference{Transport: OCIArchive, Path: "a.tar", Tag: "v2"}, nil},
		{"archive digest", "oci-archive:a.tar@sha256:" + hex64, Reference{Transport: OCIArchive, Path: "a.tar", Digest: digest.Digest("sha256:" + hex64)}, nil},
		{"bad digest", "oci:img@sha256:abc", Reference{}, errdef.ErrInvalidDigest},
		{"path traversal digest", "oci:img@sha256:../../x", Reference{}, errdef.ErrInvalidDigest},
		{"uppercase digest", "oci:img@sha256:" + strings.ToUpper(hex64), Reference{}, errdef.ErrInvalidDigest},
		{"no transport", "/tmp/img", Reference{}, errdef.ErrInvalidArgument},
		{"empty", "", Reference{}, errdef.ErrInvalidArgument},
		{"unknown transport", "dir:/tmp/img", Reference{}, errdef.ErrInvalidArgument},
		{"docker normalised", "docker://busybox", Reference{Transport: Docker, Path: "docker.io/library/busybox", Domain: "docker.io", Repository: "library/busybox", Tag: "latest"}, nil},
		{"docker host port digest", "docker://localhost:5000/a/b@sha256:" + hex64, Reference{Transport: Docker, Path: "localhost:5000/a/b", Domain: "localhost:5000", Repository: "a/b", Digest: digest.Digest("sha256:" + hex64)}, nil},
		{"docker without slashes", "docker:busybox", Reference{}, errdef.ErrInvalidArgument},
		{"docker upper-case repository", "docker://localhost/Busybox", Reference{}, errdef.ErrInvalidArgument},
		{"empty path", "oci:", Reference{}, errdef.ErrInvalidArgument},
		{"empty path with tag", "oci::v1", Reference{}, errdef.ErrInvalidArgument},
		{"bad tag char", "oci:img:v 1", Reference{}, errdef.ErrInvalidArgument},
		{"tag ends with separator", "oci:img:v1-", Reference{}, errdef.ErrInvalidArgument},
		{"tag starts with separator", "oci:img:.v1", Reference{}, errdef.ErrInvalidArgument},
		{"tag with slash path", "oci:img:a/b/c", Reference{Transport: OCI, Path: "img", Tag: "a/b/c"}, nil},
		{"tag with double dash", "oci:img:a--b", Reference{Transport: OCI, Path: "img", Tag: "a--b"}, nil},
		{"tag with triple dash", "oci:img:a---b", Reference{}, errdef.ErrInvalidArgument},
		{"tag empty component", "oci:img:a//b", Reference{}, errdef.ErrInvalidArgument},
		{"nul in path", "oci:im\x00g", Reference{}, errdef.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Parse(tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Parse(%q) error = %v, want %v", tc.in, err, tc.err)
				}
				if !strings.Contains(err.Error(), "parse image name") {
					t.Errorf("error %q does not name the operation", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse(%q): %v", tc.in, err)
			}
			if got != tc.want {
				t.Fatalf("Parse(%q) = %+v, want %+v", tc.in, got, tc.want)
			}
			again, err := Parse(got.String())
			if err != nil || again != got {
				t.Fatalf("round trip of %q via %q = %+v, %v", tc.in, got.String(), again, err)
			}
		})
	}
}

func TestRef(t *testing.T) {
	tests := []struct {
		name string
		r    Reference
		want string
	}{
		{"none", Reference{Transport: OCI, Path: "x"}, ""},
		{"tag", Reference{Transport: OCI, Path: "x", Tag: "v1"}, "v1"},
		{"digest", Reference{Transport: OCI, Path: "x", Digest: digest.Digest("sha256:" + hex64)}, "sha256:" + hex64},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.r.Ref(); got != tc.want {
				t.Fatalf("Ref() = %q, want %q", got, tc.want)
			}
		})
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"oci:img", "oci:img:latest", "oci:img:a/b:c", "oci-archive:x.tar:v1",
		"oci:img@sha256:" + hex64, "oci:a@b:c", "docker://x", "oci:", "oci:a:b--c", "oci:a@sha512:x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := Parse(s)
		if err != nil {
			if !errors.Is(err, errdef.ErrInvalidArgument) && !errors.Is(err, errdef.ErrInvalidDigest) && !errors.Is(err, errdef.ErrUnsupported) {
				t.Fatalf("Parse(%q): unclassified error %v", s, err)
			}
			return
		}
		if r.Path == "" || (r.Transport != Docker && strings.ContainsRune(r.Path, ':')) {
			t.Fatalf("Parse(%q) = %+v: path empty or holds ':'", s, r)
		}
		if r.Tag != "" && r.Digest != "" {
			t.Fatalf("Parse(%q) = %+v: both tag and digest", s, r)
		}
		if r.Tag != "" {
			if err := ValidateTag(r.Tag); err != nil {
				t.Fatalf("Parse(%q) accepted tag: %v", s, err)
			}
		}
		again, err := Parse(r.String())
		if err != nil || again != r {
			t.Fatalf("round trip %q → %q → %+v, %v", s, r.String(), again, err)
		}
	})
}

func TestParseRepository(t *testing.T) {
	for in, tag := range map[string]string{
		"docker://localhost:5000/app":        "",
		"docker://localhost:5000/app:v1":     "v1",
		"docker://localhost:5000/app:latest": "latest",
		"docker://busybox":                   "",
		"oci:dir":                            "",
		"oci:dir:v2":                         "v2",
	} {
		r, err := ParseRepository(in)
		if err != nil || r.Tag != tag {
			t.Errorf("ParseRepository(%q) = %+v, %v; want tag %q", in, r, err, tag)
		}
	}
}
