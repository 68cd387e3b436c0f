package client

import (
	"context"
	"net/http"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/wharfoci/wharf/distribution/client"
	"github.com/wharfoci/wharf/distribution/server/servertest"
)

// The client's Bearer flow against the token service: alice pushes and lists, bob may only
// pull, a wrong password is refused, and a mount from a repository the pusher may not read
// stores nothing (a new upload instead).
func TestTokenAuth(t *testing.T) {
	ts := servertest.StartTokenService(t, map[string]servertest.TokenUser{
		"alice": {Password: "s3cret", Allow: map[string][]string{"repository:team/app": {"pull", "push"}, "registry:catalog": {"*"}}},
		"bob":   {Password: "hunter2", Allow: map[string][]string{"repository:team/app": {"pull"}}},
	})
	host := servertest.StartWithAuth(t, ts)
	ctx := context.Background()
	as := func(user, pass string) client.Options {
		return client.Options{Credentials: func(string) (client.Credential, error) {
			return client.Credential{Username: user, Password: pass}, nil
		}}
	}
	repo := func(o client.Options, name string) *client.Repository { return newRepo(t, host, name, o) }
	blob := []byte("layer bytes")
	d := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	alice := as("alice", "s3cret")
	if err := repo(alice, "team/app").Push(ctx, d, strings.NewReader(string(blob))); err != nil {
		t.Fatalf("alice pushes: %v", err)
	}
	if ok, err := repo(as("bob", "hunter2"), "team/app").Exists(ctx, d); err != nil || !ok {
		t.Fatalf("bob reads: %v %v", ok, err)
	}
	if err := repo(as("bob", "hunter2"), "team/app").Push(ctx, d, strings.NewReader(string(blob))); err == nil {
		t.Fatal("bob pushed")
	}
	if _, err := repo(as("alice", "wrong"), "team/app").Exists(ctx, d); err == nil {
		t.Fatal("a wrong password read")
	}
	ac, _ := client.New(alice)
	repos, err := ac.Catalog(ctx, host, 0)
	if err != nil || strings.Join(repos, ",") != "team/app" {
		t.Fatalf("catalog: %v %v", repos, err)
	}
	// a token for bob/own only: a mount from team/app must not link the blob
	tok := ts.Sign(map[string]any{"access": []servertest.Access{{Type: "repository", Name: "bob/own", Actions: []string{"pull", "push"}}}}, nil)
	bearer := func(method, url string) int {
		req, _ := http.NewRequest(method, url, nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := bearer("POST", "http://"+host+"/v2/bob/own/blobs/uploads/?mount="+d.Digest.String()+"&from=team/app"); code != http.StatusAccepted {
		t.Fatalf("mount from an unreadable repository: %d, want 202 (a new upload)", code)
	}
	if code := bearer("HEAD", "http://"+host+"/v2/bob/own/blobs/"+d.Digest.String()); code != 404 {
		t.Fatalf("the unreadable blob was mounted: %d", code)
	}
}
