package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wharfoci/wharf/distribution/server"
	"github.com/wharfoci/wharf/distribution/server/servertest"
)

func tokenUsers() map[string]servertest.TokenUser {
	return map[string]servertest.TokenUser{
		"alice": {Password: "s3cret", Allow: map[string][]string{
			"repository:team/app": {"pull", "push", "delete"}, "repository:team/base": {"pull"}, "registry:catalog": {"*"}}},
		"bob": {Password: "hunter2", Allow: map[string][]string{"repository:team/app": {"pull"}}},
	}
}

func do(t *testing.T, method, url, token string, body io.Reader) *http.Response {
	t.Helper()
	req, _ := http.NewRequest(method, url, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// The registry answers every request without a valid token, or with one that lacks the scope,
// with 401 and a challenge naming the realm, the service and the scope to ask for.
func TestTokenAuthChecks(t *testing.T) {
	ts := servertest.StartTokenService(t, tokenUsers())
	host := servertest.StartWithAuth(t, ts)
	base := "http://" + host
	tags := base + "/v2/team/app/tags/list"
	pull := []servertest.Access{{Type: "repository", Name: "team/app", Actions: []string{"pull"}}}
	valid := ts.Sign(map[string]any{"access": pull}, nil)

	resp := do(t, "GET", tags, "", nil)
	ch := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != 401 || !strings.Contains(ch, `realm="`+ts.Realm+`"`) || !strings.Contains(ch, `service="wharf-test-registry"`) ||
		!strings.Contains(ch, `scope="repository:team/app:pull"`) {
		t.Fatalf("no token: %d %q", resp.StatusCode, ch)
	}
	if resp := do(t, "GET", base+"/v2/", "", nil); resp.StatusCode != 401 {
		t.Fatalf("base without a token: %d", resp.StatusCode)
	}
	if resp := do(t, "GET", base+"/v2/", valid, nil); resp.StatusCode != 200 {
		t.Fatalf("base with a token: %d", resp.StatusCode)
	}
	if resp := do(t, "GET", tags, valid, nil); resp.StatusCode != 404 { // allowed; the repository is empty
		t.Fatalf("pull with a pull token: %d", resp.StatusCode)
	}
	resp = do(t, "POST", base+"/v2/team/app/blobs/uploads/", valid, nil)
	if ch := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || !strings.Contains(ch, `error="insufficient_scope"`) ||
		!strings.Contains(ch, `scope="repository:team/app:pull,push"`) {
		t.Fatalf("push with a pull token: %d %q", resp.StatusCode, ch)
	}
	if resp := do(t, "GET", base+"/v2/_catalog", valid, nil); resp.StatusCode != 401 {
		t.Fatalf("catalog without registry:catalog:*: %d", resp.StatusCode)
	}
	exp := time.Now().Add(-10 * time.Minute).Unix()
	for name, tok := range map[string]string{
		"expired":        ts.Sign(map[string]any{"access": pull, "exp": exp}, nil),
		"no expiry":      ts.Sign(map[string]any{"access": pull, "exp": nil}, nil),
		"not yet valid":  ts.Sign(map[string]any{"access": pull, "nbf": time.Now().Add(time.Hour).Unix()}, nil),
		"other issuer":   ts.Sign(map[string]any{"access": pull, "iss": "someone"}, nil),
		"other audience": ts.Sign(map[string]any{"access": pull, "aud": []string{"other-registry"}}, nil),
		"unknown key":    ts.Sign(map[string]any{"access": pull}, map[string]any{"kid": "AAAA:BBBB"}),
		"alg none":       strings.Join(strings.Split(ts.Sign(map[string]any{"access": pull}, map[string]any{"alg": "none"}), ".")[:2], ".") + ".",
		"alg HS256":      ts.Sign(map[string]any{"access": pull}, map[string]any{"alg": "HS256"}),
		"tampered":       valid[:len(valid)-4] + "AAAA",
		"other repo":     ts.Sign(map[string]any{"access": []servertest.Access{{Type: "repository", Name: "team/base", Actions: []string{"pull"}}}}, nil),
		"not a jwt":      "garbage",
	} {
		if resp := do(t, "GET", tags, tok, nil); resp.StatusCode != 401 {
			t.Errorf("%s token: %d, want 401", name, resp.StatusCode)
		}
	}
	// an audience list holding the service is fine
	if resp := do(t, "GET", tags, ts.Sign(map[string]any{"access": pull, "aud": []string{"x", "wharf-test-registry"}}, nil), nil); resp.StatusCode != 404 {
		t.Fatalf("audience list: %d", resp.StatusCode)
	}
}

func TestTokenAuthConfig(t *testing.T) {
	for name, a := range map[string]*server.AuthConfig{
		"no token section": {},
		"no realm":         {Token: &server.TokenAuth{Service: "s", Issuer: "i", RootCertBundle: "/dev/null"}},
		"missing bundle":   {Token: &server.TokenAuth{Realm: "r", Service: "s", Issuer: "i", RootCertBundle: "/nonexistent.pem"}},
		"empty bundle":     {Token: &server.TokenAuth{Realm: "r", Service: "s", Issuer: "i", RootCertBundle: "/dev/null"}},
	} {
		if _, err := server.New(server.Config{Root: t.TempDir(), Auth: a}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	var c server.Config
	if err := json.Unmarshal([]byte(`{"auth":{"token":{"realm":"https://auth/token","service":"reg","issuer":"iss","rootcertbundle":"/x.pem"}}}`), &c); err != nil ||
		c.Auth.Token.Realm != "https://auth/token" || c.Auth.Token.RootCertBundle != "/x.pem" {
		t.Fatalf("config file: %+v %v", c.Auth, err)
	}
}
