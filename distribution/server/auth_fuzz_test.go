package server

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"
)

// FuzzTokenVerify: a token is untrusted input; whatever it holds, verify answers without
// panicking, and nothing it accepts lacks the issuer and audience it must have.
func FuzzTokenVerify(f *testing.F) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		f.Fatal(err)
	}
	kid, _ := KeyID(&key.PublicKey)
	a := &tokenAuth{TokenAuth: TokenAuth{Service: "svc", Issuer: "iss"}, roots: x509.NewCertPool(),
		byKID: map[string]crypto.PublicKey{kid: &key.PublicKey}, now: time.Now}
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signed := enc(map[string]any{"alg": "ES256", "kid": kid}) + "." +
		enc(map[string]any{"iss": "iss", "aud": "svc", "exp": time.Now().Add(time.Hour).Unix(),
			"access": []access{{Type: "repository", Name: "a", Actions: []string{"pull"}}}})
	sum := sha256.Sum256([]byte(signed))
	r, s, _ := ecdsa.Sign(rand.Reader, key, sum[:])
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	valid := signed + "." + base64.RawURLEncoding.EncodeToString(sig)
	if _, err := a.verify(valid); err != nil {
		f.Fatalf("the seed token: %v", err)
	}
	f.Add(valid)
	f.Add("a.b.c")
	f.Add(enc(map[string]any{"alg": "none"}) + "." + enc(map[string]any{"iss": "iss", "aud": "svc"}) + ".")
	f.Add(enc(map[string]any{"alg": "ES256", "x5c": []string{"AAAA"}}) + ".e30.")
	f.Fuzz(func(t *testing.T, token string) {
		have, err := a.verify(token)
		if err == nil && token != valid {
			// only a token signed by the key passes; the fuzzer cannot sign
			t.Fatalf("accepted a token it was not given: %q (%v)", token, have)
		}
	})
}
