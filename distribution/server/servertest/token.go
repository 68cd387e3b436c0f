package servertest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wharfoci/wharf/distribution/server"
)

// TokenService is a docker token service for tests (the protocol docker_auth and Harbor speak):
// GET Realm?service=&scope=… with Basic credentials of one of Users answers a JWT, signed with
// an RSA key whose certificate is in the file RootCertBundle, granting the asked actions the
// user is allowed (Users[name].Allow: "repository:NAME" or "registry:catalog" → actions).
type TokenService struct {
	Realm, Service, Issuer, RootCertBundle string
	Users                                  map[string]TokenUser

	key *rsa.PrivateKey
	kid string
}

// TokenUser is one account of a TokenService.
type TokenUser struct {
	Password string
	Allow    map[string][]string
}

// StartTokenService starts a token service for users and stops it when the test ends.
func StartTokenService(t testing.TB, users map[string]TokenUser) *TokenService {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test token signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(t.TempDir(), "token-signer.pem")
	if err := os.WriteFile(bundle, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	kid, err := server.KeyID(&key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	ts := &TokenService{Service: "wharf-test-registry", Issuer: "wharf-test-issuer", RootCertBundle: bundle,
		Users: users, key: key, kid: kid}
	srv := httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(srv.Close)
	ts.Realm = srv.URL + "/token"
	return ts
}

// Config is the registry configuration that trusts this service.
func (ts *TokenService) Config() *server.AuthConfig {
	return &server.AuthConfig{Token: &server.TokenAuth{Realm: ts.Realm, Service: ts.Service, Issuer: ts.Issuer, RootCertBundle: ts.RootCertBundle}}
}

// Access is one grant in a token.
type Access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// Sign makes a token with these claims over the standard ones (iss, aud, exp in 5 minutes);
// header entries replace the default header (alg RS256, kid of the key).
func (ts *TokenService) Sign(claims map[string]any, header map[string]any) string {
	c := map[string]any{"iss": ts.Issuer, "aud": ts.Service, "sub": "test", "exp": time.Now().Add(5 * time.Minute).Unix(),
		"nbf": time.Now().Add(-time.Minute).Unix(), "iat": time.Now().Unix()}
	for k, v := range claims {
		c[k] = v
	}
	h := map[string]any{"typ": "JWT", "alg": "RS256", "kid": ts.kid}
	for k, v := range header {
		h[k] = v
	}
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(h) + "." + enc(c)
	sum := sha256.Sum256([]byte(signed))
	sig, _ := rsa.SignPKCS1v15(rand.Reader, ts.key, crypto.SHA256, sum[:])
	return signed + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func (ts *TokenService) serve(w http.ResponseWriter, r *http.Request) {
	name, pass, ok := r.BasicAuth()
	u, known := ts.Users[name]
	if !ok || !known || u.Password != pass || r.URL.Query().Get("service") != ts.Service {
		w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		http.Error(w, "bad credentials", http.StatusUnauthorized)
		return
	}
	var access []Access
	for _, scope := range r.URL.Query()["scope"] {
		for _, one := range strings.Fields(scope) {
			parts := strings.Split(one, ":")
			if len(parts) < 3 {
				continue
			}
			typ, res, actions := parts[0], strings.Join(parts[1:len(parts)-1], ":"), strings.Split(parts[len(parts)-1], ",")
			allowed := u.Allow[typ+":"+res]
			var granted []string
			for _, a := range actions {
				if slices.Contains(allowed, a) || slices.Contains(allowed, "*") {
					granted = append(granted, a)
				}
			}
			if len(granted) > 0 {
				access = append(access, Access{Type: typ, Name: res, Actions: granted})
			}
		}
	}
	tok := ts.Sign(map[string]any{"sub": name, "access": access}, nil)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"token": tok, "access_token": tok, "expires_in": 300, "issued_at": time.Now().UTC().Format(time.RFC3339)})
}
