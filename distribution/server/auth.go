package server

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/wharfoci/wharf/distribution/errcode"
	"github.com/wharfoci/wharf/errdef"
)

// TokenAuth configures bearer-token authorization, as distribution's auth.token: clients get a
// token from the token service at Realm (docker's token protocol) and the registry checks it —
// a JWT signed by a key whose certificate is in RootCertBundle (by its x5c chain, or by its
// libtrust key ID in kid), issued by Issuer for Service, not expired — and that it grants the
// access the request needs: pull or push on repository:NAME, delete for DELETE, and
// registry:catalog:* for the catalog.
type TokenAuth struct {
	Realm          string `json:"realm"`
	Service        string `json:"service"`
	Issuer         string `json:"issuer"`
	RootCertBundle string `json:"rootcertbundle"`
}

// tokenAuth is a loaded TokenAuth.
type tokenAuth struct {
	TokenAuth
	roots *x509.CertPool
	byKID map[string]crypto.PublicKey // libtrust key IDs of the bundle's keys
	now   func() time.Time
}

// leeway is the clock skew tolerated on exp and nbf.
const leeway = 60 * time.Second

func loadTokenAuth(c *TokenAuth) (*tokenAuth, error) {
	if c.Realm == "" || c.Service == "" || c.Issuer == "" || c.RootCertBundle == "" {
		return nil, fmt.Errorf("auth.token: %w: realm, service, issuer and rootcertbundle are all needed", errdef.ErrInvalidArgument)
	}
	b, err := os.ReadFile(c.RootCertBundle)
	if err != nil {
		return nil, fmt.Errorf("auth.token: read rootcertbundle: %w", err)
	}
	a := &tokenAuth{TokenAuth: *c, roots: x509.NewCertPool(), byKID: map[string]crypto.PublicKey{}, now: time.Now}
	for len(b) > 0 {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("auth.token: rootcertbundle %s: %w", c.RootCertBundle, err)
		}
		a.roots.AddCert(cert)
		if id, err := KeyID(cert.PublicKey); err == nil {
			a.byKID[id] = cert.PublicKey
		}
	}
	if len(a.byKID) == 0 {
		return nil, fmt.Errorf("auth.token: rootcertbundle %s: %w: no certificate", c.RootCertBundle, errdef.ErrInvalidArgument)
	}
	return a, nil
}

// KeyID is the key ID docker's token servers put in a token's kid (libtrust's): the SHA-256
// of the DER public key, its first 240 bits in base32, in groups of four joined by ':'.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	s := base32.StdEncoding.EncodeToString(sum[:30])
	var parts []string
	for i := 0; i < len(s); i += 4 {
		parts = append(parts, s[i:i+4])
	}
	return strings.Join(parts, ":"), nil
}

// access is one grant of a token (or one need of a request).
type access struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

func (x access) scope() string { return x.Type + ":" + x.Name + ":" + strings.Join(x.Actions, ",") }

type claims struct {
	Issuer    string          `json:"iss"`
	Audience  json.RawMessage `json:"aud"`
	Expires   *int64          `json:"exp"`
	NotBefore *int64          `json:"nbf"`
	Access    []access        `json:"access"`
}

// verify checks a token and returns what it grants.
func (a *tokenAuth) verify(token string) ([]access, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errors.New("malformed token")
	}
	var hdr struct {
		Alg string   `json:"alg"`
		Kid string   `json:"kid"`
		X5c []string `json:"x5c"`
	}
	if err := decodeSegment(parts[0], &hdr); err != nil {
		return nil, fmt.Errorf("token header: %w", err)
	}
	key, err := a.signingKey(hdr.Kid, hdr.X5c)
	if err != nil {
		return nil, err
	}
	sig, err := base64.RawURLEncoding.Strict().DecodeString(parts[2])
	if err != nil {
		return nil, errors.New("token signature: not base64url")
	}
	if err := verifySignature(hdr.Alg, key, []byte(parts[0]+"."+parts[1]), sig); err != nil {
		return nil, err
	}
	var c claims
	if err := decodeSegment(parts[1], &c); err != nil {
		return nil, fmt.Errorf("token claims: %w", err)
	}
	if c.Issuer != a.Issuer {
		return nil, fmt.Errorf("token issued by %q, not %q", c.Issuer, a.Issuer)
	}
	var auds []string
	if json.Unmarshal(c.Audience, &auds) != nil {
		var one string
		if json.Unmarshal(c.Audience, &one) == nil {
			auds = []string{one}
		}
	}
	if !slices.Contains(auds, a.Service) {
		return nil, fmt.Errorf("token is not for %q", a.Service)
	}
	now := a.now()
	if c.Expires == nil {
		return nil, errors.New("token has no expiry (exp)")
	}
	if now.After(time.Unix(*c.Expires, 0).Add(leeway)) {
		return nil, errors.New("token expired")
	}
	if c.NotBefore != nil && now.Add(leeway).Before(time.Unix(*c.NotBefore, 0)) {
		return nil, errors.New("token not valid yet")
	}
	return c.Access, nil
}

func decodeSegment(s string, v any) error {
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		return errors.New("not base64url")
	}
	return json.Unmarshal(b, v)
}

// signingKey finds the token's key: the leaf of an x5c chain that verifies against the root
// bundle, or the bundle key whose libtrust ID is kid.
func (a *tokenAuth) signingKey(kid string, x5c []string) (crypto.PublicKey, error) {
	if len(x5c) > 0 {
		var chain []*x509.Certificate
		for _, s := range x5c {
			der, err := base64.StdEncoding.DecodeString(s)
			if err != nil {
				return nil, errors.New("token x5c: not base64")
			}
			c, err := x509.ParseCertificate(der)
			if err != nil {
				return nil, fmt.Errorf("token x5c: %w", err)
			}
			chain = append(chain, c)
		}
		inter := x509.NewCertPool()
		for _, c := range chain[1:] {
			inter.AddCert(c)
		}
		if _, err := chain[0].Verify(x509.VerifyOptions{Roots: a.roots, Intermediates: inter, CurrentTime: a.now(),
			KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			return nil, fmt.Errorf("token x5c: %w", err)
		}
		return chain[0].PublicKey, nil
	}
	if key, ok := a.byKID[kid]; ok {
		return key, nil
	}
	return nil, fmt.Errorf("token signed by an unknown key %q", kid)
}

// verifySignature checks a JWS signature (RS256/384/512, PS256/384/512, ES256/384/512; never
// "none", never an HMAC: the key is public).
func verifySignature(alg string, key crypto.PublicKey, signed, sig []byte) error {
	var h crypto.Hash
	switch alg[min(len(alg), 2):] {
	case "256":
		h = crypto.SHA256
	case "384":
		h = crypto.SHA384
	case "512":
		h = crypto.SHA512
	default:
		return fmt.Errorf("token algorithm %q is not supported", alg)
	}
	hh := h.New()
	hh.Write(signed)
	sum := hh.Sum(nil)
	bad := errors.New("token signature does not verify")
	switch k := key.(type) {
	case *rsa.PublicKey:
		switch alg[:2] {
		case "RS":
			if rsa.VerifyPKCS1v15(k, h, sum, sig) != nil {
				return bad
			}
			return nil
		case "PS":
			if rsa.VerifyPSS(k, h, sum, sig, nil) != nil {
				return bad
			}
			return nil
		}
	case *ecdsa.PublicKey:
		if alg[:2] == "ES" {
			n := (k.Curve.Params().BitSize + 7) / 8
			if len(sig) != 2*n {
				return bad
			}
			r, s := new(big.Int).SetBytes(sig[:n]), new(big.Int).SetBytes(sig[n:])
			if !ecdsa.Verify(k, sum, r, s) {
				return bad
			}
			return nil
		}
	}
	return fmt.Errorf("token algorithm %q does not match its key (%T)", alg, key)
}

// grants reports whether what a token grants covers the action on name.
func grants(have []access, typ, name, action string) bool {
	for _, x := range have {
		if x.Type == typ && x.Name == name && (slices.Contains(x.Actions, action) || slices.Contains(x.Actions, "*")) {
			return true
		}
	}
	return false
}

// need is the access a request requires (none for the base endpoint: any valid token).
func need(rt route, method string) []access {
	repo := func(actions ...string) []access {
		return []access{{Type: "repository", Name: rt.name, Actions: actions}}
	}
	switch rt.kind {
	case routeCatalog:
		return []access{{Type: "registry", Name: "catalog", Actions: []string{"*"}}}
	case routeBlob, routeManifest:
		switch method {
		case http.MethodGet, http.MethodHead:
			return repo("pull")
		case http.MethodDelete:
			return repo("delete")
		}
		return repo("pull", "push")
	case routeUploads, routeUpload:
		return repo("pull", "push")
	case routeTags, routeReferrers:
		return repo("pull")
	}
	return nil
}

type grantsKey struct{}

// authorize checks the request's bearer token against what the route needs. On failure it has
// answered 401 with the challenge that tells a client where to get a token and for what scope.
func (g *Registry) authorize(w http.ResponseWriter, r *http.Request, rt route) (*http.Request, bool) {
	needs := need(rt, r.Method)
	deny := func(why string, insufficient bool) (*http.Request, bool) {
		ch := fmt.Sprintf(`Bearer realm=%q,service=%q`, g.auth.Realm, g.auth.Service)
		if len(needs) > 0 {
			var scopes []string
			for _, n := range needs {
				scopes = append(scopes, n.scope())
			}
			ch += fmt.Sprintf(`,scope=%q`, strings.Join(scopes, " "))
		}
		if insufficient {
			ch += `,error="insufficient_scope"`
		} else if why != "" {
			ch += `,error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", ch)
		if why != "" {
			g.log.Info("access denied", "method", r.Method, "path", r.URL.Path, "why", why)
		}
		errcode.Write(w, errcode.Unauthorized.New("authentication required"))
		return nil, false
	}
	h := r.Header.Get("Authorization")
	token, ok := strings.CutPrefix(h, "Bearer ")
	if !ok || token == "" {
		return deny("", false)
	}
	have, err := g.auth.verify(strings.TrimSpace(token))
	if err != nil {
		return deny(err.Error(), false)
	}
	for _, n := range needs {
		for _, act := range n.Actions {
			if !grants(have, n.Type, n.Name, act) {
				return deny(fmt.Sprintf("token lacks %s:%s:%s", n.Type, n.Name, act), true)
			}
		}
	}
	return r.WithContext(context.WithValue(r.Context(), grantsKey{}, have)), true
}

// mayPull reports whether the request may read repository name: always without auth, else
// when its token grants pull there (a cross-repository mount needs it on the source).
func (g *Registry) mayPull(r *http.Request, name string) bool {
	if g.auth == nil {
		return true
	}
	have, _ := r.Context().Value(grantsKey{}).([]access)
	return grants(have, "repository", name, "pull")
}
