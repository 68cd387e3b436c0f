package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/wharfoci/wharf/errdef"
)

// Credential is what a user holds for one registry: a user name and password, or an identity
// (refresh) token from a previous OAuth2 login, or a registry token sent as is.
type Credential struct {
	Username      string
	Password      string
	IdentityToken string
	RegistryToken string
}

func (c Credential) empty() bool {
	return c.Username == "" && c.Password == "" && c.IdentityToken == "" && c.RegistryToken == ""
}

// challenge is one parsed WWW-Authenticate header: "Basic realm=…" or
// "Bearer realm=…,service=…,scope=…".
type challenge struct {
	scheme string // "basic" or "bearer"
	params map[string]string
}

// parseChallenge returns the first Basic or Bearer challenge of the headers (RFC 7235
// auth-params: token=token or token="quoted string" separated by commas).
func parseChallenge(headers []string) *challenge {
	for _, h := range headers {
		scheme, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
		scheme = strings.ToLower(scheme)
		if scheme != "basic" && scheme != "bearer" {
			continue
		}
		ch := &challenge{scheme: scheme, params: map[string]string{}}
		s := rest
		for {
			s = strings.TrimLeft(s, " ,\t")
			if s == "" {
				break
			}
			k, v, ok := strings.Cut(s, "=")
			if !ok {
				break
			}
			k = strings.ToLower(strings.TrimSpace(k))
			v = strings.TrimLeft(v, " \t")
			if strings.HasPrefix(v, `"`) {
				var b strings.Builder
				i := 1
				for ; i < len(v) && v[i] != '"'; i++ {
					if v[i] == '\\' && i+1 < len(v) {
						i++
					}
					b.WriteByte(v[i])
				}
				ch.params[k] = b.String()
				if i < len(v) {
					i++
				}
				s = v[i:]
			} else {
				end := strings.IndexByte(v, ',')
				if end < 0 {
					end = len(v)
				}
				ch.params[k] = strings.TrimSpace(v[:end])
				s = v[end:]
			}
		}
		return ch
	}
	return nil
}

type token struct {
	value   string
	expires time.Time
}

func scopeKey(host string, scopes []string) string {
	s := slices.Clone(scopes)
	slices.Sort(s)
	return host + " " + strings.Join(slices.Compact(s), " ")
}

// credential returns host's credentials, asked for once per Client (a helper program runs
// once, not per request).
func (c *Client) credential(host string) (Credential, error) {
	if c.opts.Credentials == nil {
		return Credential{}, nil
	}
	c.mu.Lock()
	cred, ok := c.creds[host]
	c.mu.Unlock()
	if ok {
		return cred, nil
	}
	cred, err := c.opts.Credentials(host)
	if err != nil {
		return Credential{}, fmt.Errorf("get credentials for %s: %w", host, err)
	}
	c.mu.Lock()
	c.creds[host] = cred
	c.mu.Unlock()
	return cred, nil
}

// authorize sets the Authorization header a request to host for scopes needs, from what the
// host asked before: Basic credentials, or a bearer token (fetched now if none is cached for
// these scopes). Before the first challenge nothing is sent.
func (c *Client) authorize(ctx context.Context, req *http.Request, host string, scopes []string) error {
	c.mu.Lock()
	ch := c.auth[host]
	tok, ok := c.tokens[scopeKey(host, scopes)]
	c.mu.Unlock()
	if ch == nil {
		return nil
	}
	switch ch.scheme {
	case "basic":
		cred, err := c.credential(host)
		if err != nil {
			return err
		}
		if cred.Username != "" || cred.Password != "" {
			req.SetBasicAuth(cred.Username, cred.Password)
		}
	case "bearer":
		if !ok || time.Now().After(tok.expires) {
			if err := c.fetchToken(ctx, host, ch, scopes, scopes); err != nil {
				return err
			}
			c.mu.Lock()
			tok = c.tokens[scopeKey(host, scopes)]
			c.mu.Unlock()
		}
		if tok.value != "" {
			req.Header.Set("Authorization", "Bearer "+tok.value)
		}
	}
	return nil
}

// answer records a challenge from host and, for Bearer, fetches the token for scopes (plus
// the scope the challenge names).
func (c *Client) answer(ctx context.Context, host string, ch *challenge, scopes []string) error {
	c.mu.Lock()
	prev := c.auth[host]
	c.auth[host] = ch
	c.mu.Unlock()
	switch ch.scheme {
	case "basic":
		cred, err := c.credential(host)
		if err != nil {
			return err
		}
		if cred.Username == "" && cred.Password == "" {
			return fmt.Errorf("%w: %s asks for a user name and password (wharf login %s)", errdef.ErrUnauthorized, host, host)
		}
		if prev != nil && prev.scheme == "basic" {
			return fmt.Errorf("%w: %s refused the credentials of %s", errdef.ErrUnauthorized, host, cred.Username)
		}
		return nil
	case "bearer":
		all := scopes
		for _, sc := range strings.Fields(ch.params["scope"]) {
			if !slices.Contains(all, sc) {
				all = append(slices.Clone(all), sc)
			}
		}
		return c.fetchToken(ctx, host, ch, all, scopes)
	}
	return nil
}

// fetchToken asks the challenge's realm for a token covering scopes (distribution's token
// authentication: GET realm?service=…&scope=… with Basic credentials, or the OAuth2
// refresh-token grant for an identity token) and caches it.
func (c *Client) fetchToken(ctx context.Context, host string, ch *challenge, scopes, key []string) error {
	realm := ch.params["realm"]
	u, err := url.Parse(realm)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%w: %s: bearer realm %q is not an http(s) URL", errdef.ErrUnauthorized, host, realm)
	}
	cred, err := c.credential(host)
	if err != nil {
		return err
	}
	if cred.RegistryToken != "" {
		c.storeToken(host, key, cred.RegistryToken, 0)
		return nil
	}
	var req *http.Request
	if cred.IdentityToken != "" {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {cred.IdentityToken}, "client_id": {"wharf"}}
		if s := ch.params["service"]; s != "" {
			form.Set("service", s)
		}
		if len(scopes) > 0 {
			form.Set("scope", strings.Join(scopes, " "))
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, realm, strings.NewReader(form.Encode()))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		q := u.Query()
		if s := ch.params["service"]; s != "" {
			q.Set("service", s)
		}
		for _, s := range scopes {
			q.Add("scope", s)
		}
		u.RawQuery = q.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return err
		}
		if cred.Username != "" || cred.Password != "" {
			req.SetBasicAuth(cred.Username, cred.Password)
		}
	}
	req.Header.Set("User-Agent", c.opts.UserAgent)
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("get token from %s: %w: %w", u.Redacted(), errdef.ErrUnavailable, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		drain(resp)
		if cred.empty() {
			return fmt.Errorf("get token from %s: %w: anonymous access refused (wharf login %s)", u.Redacted(), errdef.ErrUnauthorized, host)
		}
		return fmt.Errorf("get token from %s: %w: credentials refused", u.Redacted(), errdef.ErrUnauthorized)
	}
	if resp.StatusCode != http.StatusOK {
		return responseError(resp, "get token from "+u.Redacted())
	}
	var body struct {
		Token       string `json:"token"`
		AccessToken string `json:"access_token"`
		ExpiresIn   int    `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body); err != nil {
		return fmt.Errorf("get token from %s: %w: %v", u.Redacted(), errdef.ErrUnauthorized, err)
	}
	t := body.Token
	if t == "" {
		t = body.AccessToken
	}
	if t == "" {
		return fmt.Errorf("get token from %s: %w: the answer holds no token", u.Redacted(), errdef.ErrUnauthorized)
	}
	c.storeToken(host, key, t, body.ExpiresIn)
	return nil
}

func (c *Client) storeToken(host string, scopes []string, value string, expiresIn int) {
	if expiresIn < 60 {
		expiresIn = 60
	}
	c.mu.Lock()
	c.tokens[scopeKey(host, scopes)] = token{value: value, expires: time.Now().Add(time.Duration(expiresIn)*time.Second - 10*time.Second)}
	c.mu.Unlock()
}

// Scopes of distribution's token authentication.
func pullScope(repo string) string   { return "repository:" + repo + ":pull" }
func pushScope(repo string) string   { return "repository:" + repo + ":pull,push" }
func deleteScope(repo string) string { return "repository:" + repo + ":delete" }

const catalogScope = "registry:catalog:*"
