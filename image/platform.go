package image

import (
	"fmt"
	"runtime"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/errdef"
)

// ParsePlatform parses "os/arch[/variant]" (as given to --platform, e.g. "linux/arm64",
// "linux/arm/v7") and returns it normalised (see NormalizePlatform). Each part is 1–64
// characters of [A-Za-z0-9_.-] starting with a letter or digit; case is ignored. Errors wrap errdef.ErrInvalidArgument.
func ParsePlatform(s string) (ocispec.Platform, error) {
	parts := strings.Split(s, "/")
	if len(parts) < 2 || len(parts) > 3 {
		return ocispec.Platform{}, fmt.Errorf("parse platform %q: %w: want os/arch[/variant]", s, errdef.ErrInvalidArgument)
	}
	for _, p := range parts {
		if !platformPart(p) {
			return ocispec.Platform{}, fmt.Errorf("parse platform %q: %w: %q is not 1-64 characters of [A-Za-z0-9_.-] starting with a letter or digit", s, errdef.ErrInvalidArgument, p)
		}
	}
	p := ocispec.Platform{OS: parts[0], Architecture: parts[1]}
	if len(parts) == 3 {
		p.Variant = parts[2]
	}
	return NormalizePlatform(p), nil
}

func platformPart(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '_' && c != '.' && c != '-') {
			return false
		}
	}
	return true
}

// FormatPlatform returns "os/arch[/variant]" (the os.version, if any, is left out).
func FormatPlatform(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// NormalizePlatform returns p with os, architecture and variant in the canonical form of the
// OCI platform values (Go's GOOS/GOARCH names), lowercased, with default variants made
// explicit so that equal platforms compare equal:
//
//	x86_64, x86-64, amd64 → amd64 (variant v1 → none); i386, i486, i586, i686, x86, 386 → 386
//	aarch64, arm64 → arm64, variant v8 when none (8 → v8)
//	armhf, armel, armv5l/6l/7l/8l, arm → arm, variant v7 when none (armel v6, armvNl vN; 7 → v7)
//	macos → darwin
//
// os.version and os.features are kept as they are.
func NormalizePlatform(p ocispec.Platform) ocispec.Platform {
	p.OS = strings.ToLower(p.OS)
	if p.OS == "macos" {
		p.OS = "darwin"
	}
	arch := strings.ToLower(p.Architecture)
	variant := strings.ToLower(p.Variant)
	switch arch {
	case "x86_64", "x86-64", "amd64":
		arch = "amd64"
		if variant == "v1" || variant == "1" {
			variant = ""
		} else if len(variant) == 1 && variant[0] >= '2' && variant[0] <= '4' {
			variant = "v" + variant
		}
	case "i386", "i486", "i586", "i686", "x86", "386":
		arch = "386"
	case "aarch64", "arm64":
		arch = "arm64"
		switch variant {
		case "", "8", "v8":
			variant = "v8"
		default:
			if len(variant) > 0 && variant[0] >= '0' && variant[0] <= '9' {
				variant = "v" + variant
			}
		}
	case "armhf":
		arch, variant = "arm", "v7"
	case "armel":
		arch, variant = "arm", "v6"
	case "armv5l", "armv6l", "armv7l", "armv8l":
		if variant == "" {
			variant = "v" + arch[4:5]
		}
		arch = "arm"
	case "arm":
		switch {
		case variant == "":
			variant = "v7"
		case len(variant) == 1 && variant[0] >= '5' && variant[0] <= '8':
			variant = "v" + variant
		}
	}
	if arch == "arm" && len(variant) == 1 && variant[0] >= '5' && variant[0] <= '8' {
		variant = "v" + variant
	}
	p.Architecture = arch
	p.Variant = variant
	return p
}

// Match reports whether an image for platform have runs where want is asked for. Both are
// normalised first; then os and architecture must be equal, and the variant equal (so
// linux/arm64 matches linux/arm64/v8 and linux/arm matches linux/arm/v7, but linux/arm/v7 does
// not match linux/arm/v6). When want has an os.version, have's must be equal. A nil have (an
// index entry without a platform) matches nothing; a nil want matches everything.
func Match(want, have *ocispec.Platform) bool {
	if want == nil {
		return true
	}
	if have == nil {
		return false
	}
	w, h := NormalizePlatform(*want), NormalizePlatform(*have)
	if w.OS != h.OS || w.Architecture != h.Architecture || w.Variant != h.Variant {
		return false
	}
	return w.OSVersion == "" || w.OSVersion == h.OSVersion
}

// DefaultPlatform returns the platform this program runs on, normalised: runtime.GOOS and
// runtime.GOARCH, with variant v8 on arm64 and v7 on arm.
func DefaultPlatform() ocispec.Platform {
	return NormalizePlatform(ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH})
}
