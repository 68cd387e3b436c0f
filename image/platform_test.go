package image

import (
	"errors"
	"runtime"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/errdef"
)

func TestParsePlatform(t *testing.T) {
	tests := []struct {
		in, want string // want "" = error
	}{
		{"linux/amd64", "linux/amd64"},
		{"linux/x86_64", "linux/amd64"},
		{"Linux/AMD64", "linux/amd64"},
		{"linux/amd64/v1", "linux/amd64"},
		{"linux/amd64/v3", "linux/amd64/v3"},
		{"linux/arm64", "linux/arm64/v8"},
		{"linux/aarch64", "linux/arm64/v8"},
		{"linux/arm64/8", "linux/arm64/v8"},
		{"linux/arm64/v9", "linux/arm64/v9"},
		{"linux/arm", "linux/arm/v7"},
		{"linux/arm/7", "linux/arm/v7"},
		{"linux/arm/v6", "linux/arm/v6"},
		{"linux/armhf", "linux/arm/v7"},
		{"linux/armel", "linux/arm/v6"},
		{"linux/armv7l", "linux/arm/v7"},
		{"linux/i686", "linux/386"},
		{"linux/ppc64le", "linux/ppc64le"},
		{"linux/s390x", "linux/s390x"},
		{"linux/riscv64", "linux/riscv64"},
		{"macos/arm64", "darwin/arm64/v8"},
		{"windows/amd64", "windows/amd64"},
		{"linux", ""},
		{"", ""},
		{"linux/", ""},
		{"/amd64", ""},
		{"linux/amd64/v3/x", ""},
		{"linux/amd 64", ""},
		{"linux/../amd64", ""},
		{"linux/amd64:10.0", ""},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			p, err := ParsePlatform(tc.in)
			if tc.want == "" {
				if !errors.Is(err, errdef.ErrInvalidArgument) {
					t.Fatalf("ParsePlatform(%q) = %v, %v; want ErrInvalidArgument", tc.in, p, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParsePlatform(%q): %v", tc.in, err)
			}
			if got := FormatPlatform(p); got != tc.want {
				t.Fatalf("ParsePlatform(%q) = %s, want %s", tc.in, got, tc.want)
			}
			// Normalisation is idempotent and round-trips through FormatPlatform.
			again, err := ParsePlatform(FormatPlatform(p))
			if err != nil || FormatPlatform(again) != tc.want {
				t.Fatalf("re-parse of %s = %v, %v", tc.want, again, err)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	p := func(os, arch, variant string) *ocispec.Platform {
		return &ocispec.Platform{OS: os, Architecture: arch, Variant: variant}
	}
	tests := []struct {
		name       string
		want, have *ocispec.Platform
		match      bool
	}{
		{"equal", p("linux", "amd64", ""), p("linux", "amd64", ""), true},
		{"alias", p("linux", "x86_64", ""), p("linux", "amd64", ""), true},
		{"arm64 default variant", p("linux", "arm64", ""), p("linux", "arm64", "v8"), true},
		{"arm64 no variant on either side", p("linux", "aarch64", ""), p("linux", "arm64", ""), true},
		{"arm default v7", p("linux", "arm", ""), p("linux", "arm", "v7"), true},
		{"arm v7 is not v6", p("linux", "arm", "v7"), p("linux", "arm", "v6"), false},
		{"arm v6 is not default", p("linux", "arm", "v6"), p("linux", "arm", ""), false},
		{"os differs", p("windows", "amd64", ""), p("linux", "amd64", ""), false},
		{"arch differs", p("linux", "arm64", ""), p("linux", "amd64", ""), false},
		{"amd64 v3 is not v1", p("linux", "amd64", ""), p("linux", "amd64", "v3"), false},
		{"nil have", p("linux", "amd64", ""), nil, false},
		{"nil want", nil, p("linux", "amd64", ""), true},
		{"os.version asked", &ocispec.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.1879"},
			&ocispec.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.1879"}, true},
		{"os.version differs", &ocispec.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.17763.1879"},
			&ocispec.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348.1"}, false},
		{"os.version not asked", p("windows", "amd64", ""),
			&ocispec.Platform{OS: "windows", Architecture: "amd64", OSVersion: "10.0.20348.1"}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Match(tc.want, tc.have); got != tc.match {
				t.Fatalf("Match(%v, %v) = %v, want %v", tc.want, tc.have, got, tc.match)
			}
		})
	}
}

func TestDefaultPlatform(t *testing.T) {
	p := DefaultPlatform()
	if p.OS != runtime.GOOS {
		t.Errorf("OS = %s, want %s", p.OS, runtime.GOOS)
	}
	if FormatPlatform(p) != FormatPlatform(NormalizePlatform(ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH})) {
		t.Errorf("DefaultPlatform() = %v is not normalised", p)
	}
	if _, err := ParsePlatform(FormatPlatform(p)); err != nil {
		t.Errorf("ParsePlatform(FormatPlatform(%v)): %v", p, err)
	}
}
