package client

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func FuzzParseChallenge(f *testing.F) {
	for _, s := range []string{`Bearer realm="https://a/token",service="s",scope="repository:a:pull"`, `Basic realm="x"`,
		`Bearer realm="\"",scope=`, `Bearer ,,,`, `bearer realm=unquoted, service = "x"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ch := parseChallenge([]string{s})
		if ch != nil && ch.scheme != "basic" && ch.scheme != "bearer" {
			t.Fatalf("scheme %q", ch.scheme)
		}
	})
}

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 0-9/10", "bytes 5-9/*", "bytes -1-2/3", "bytes 9223372036854775807-1/2", "items 0-1/2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, total, ok := parseContentRange(s)
		if ok && (start < 0 || total < -1) {
			t.Fatalf("%q → start %d total %d", s, start, total)
		}
	})
}

// nextLink never leaves the registry's host, whatever the Link header says.
func FuzzNextLink(f *testing.F) {
	for _, s := range []string{`</v2/a/tags/list?n=2&last=b>; rel="next"`, `<https://evil.example/x>; rel="next"`, `<//evil/x>; rel=next`, `<>; rel="next"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, link string) {
		u, _ := url.Parse("http://registry.example/v2/a/tags/list")
		resp := &http.Response{Header: http.Header{"Link": {link}}, Request: &http.Request{URL: u}}
		next := nextLink(resp)
		if next == "" {
			return
		}
		// the caller requests "http://" + host + next: it must stay on host
		nu, err := url.Parse("http://registry.example" + next)
		if !strings.HasPrefix(next, "/") || err != nil || nu.Host != "registry.example" {
			t.Fatalf("Link %q gave %q", link, next)
		}
	})
}
