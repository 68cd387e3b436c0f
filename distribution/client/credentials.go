package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/wharfoci/wharf/errdef"
	"github.com/wharfoci/wharf/internal/durable"
)

// Credentials reads (and, for login and logout, writes) registry credentials the way docker,
// podman and skopeo keep them. Files are read in order and the first that names the host
// wins; in each, a credHelpers entry for the host, else an auths entry, else the credsStore
// helper is used. Helpers are the docker-credential-NAME programs (get, store, erase).
type Credentials struct {
	// Files are the configuration files read, in order of precedence.
	Files []string
	// WriteFile is the file login and logout change.
	WriteFile string
}

// DefaultCredentials returns the files skopeo and podman read, in their order:
// $REGISTRY_AUTH_FILE, ${XDG_RUNTIME_DIR}/containers/auth.json,
// ~/.config/containers/auth.json, then docker's $DOCKER_CONFIG/config.json (or
// ~/.docker/config.json). Login writes $REGISTRY_AUTH_FILE when it is set, else docker's file.
func DefaultCredentials() *Credentials {
	var files []string
	if f := os.Getenv("REGISTRY_AUTH_FILE"); f != "" {
		files = append(files, f)
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		files = append(files, filepath.Join(d, "containers", "auth.json"))
	}
	home, _ := os.UserHomeDir()
	if home != "" {
		files = append(files, filepath.Join(home, ".config", "containers", "auth.json"))
	}
	docker := ""
	if d := os.Getenv("DOCKER_CONFIG"); d != "" {
		docker = filepath.Join(d, "config.json")
	} else if home != "" {
		docker = filepath.Join(home, ".docker", "config.json")
	}
	if docker != "" {
		files = append(files, docker)
	}
	w := docker
	if f := os.Getenv("REGISTRY_AUTH_FILE"); f != "" {
		w = f
	}
	return &Credentials{Files: files, WriteFile: w}
}

type authEntry struct {
	Auth          string `json:"auth,omitempty"`
	IdentityToken string `json:"identitytoken,omitempty"`
	RegistryToken string `json:"registrytoken,omitempty"`
}

type configFile struct {
	Auths       map[string]authEntry `json:"auths,omitempty"`
	CredsStore  string               `json:"credsStore,omitempty"`
	CredHelpers map[string]string    `json:"credHelpers,omitempty"`
}

func readConfig(path string) (configFile, map[string]json.RawMessage, error) {
	var cf configFile
	raw := map[string]json.RawMessage{}
	b, err := os.ReadFile(path)
	if err != nil {
		return cf, raw, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return cf, raw, nil
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return cf, raw, fmt.Errorf("parse %s: %w: %v", path, errdef.ErrInvalidArgument, err)
	}
	if err := json.Unmarshal(b, &cf); err != nil {
		return cf, raw, fmt.Errorf("parse %s: %w: %v", path, errdef.ErrInvalidArgument, err)
	}
	return cf, raw, nil
}

// normalizeKey turns an auths key ("https://index.docker.io/v1/", "http://host:5000",
// "host:5000/some/repo") into a host.
func normalizeKey(k string) string {
	k = strings.TrimPrefix(strings.TrimPrefix(k, "https://"), "http://")
	k, _, _ = strings.Cut(k, "/")
	return credHost(k)
}

// credHost is the name credentials of a registry are filed under: Docker Hub's several
// names are one.
func credHost(h string) string {
	switch h {
	case "registry-1.docker.io", "index.docker.io", "docker.io":
		return "docker.io"
	}
	return h
}

// Get returns the credentials for host (empty when none are configured).
func (s *Credentials) Get(host string) (Credential, error) {
	host = credHost(host)
	for _, f := range s.Files {
		cf, _, err := readConfig(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return Credential{}, err
		}
		for k, h := range cf.CredHelpers {
			if normalizeKey(k) == host {
				return helperGet(h, k)
			}
		}
		for k, e := range cf.Auths {
			if normalizeKey(k) != host {
				continue
			}
			c := Credential{IdentityToken: e.IdentityToken, RegistryToken: e.RegistryToken}
			if e.Auth != "" {
				b, err := base64.StdEncoding.DecodeString(e.Auth)
				if err != nil {
					return Credential{}, fmt.Errorf("read credentials for %s in %s: %w: auth is not base64", host, f, errdef.ErrInvalidArgument)
				}
				c.Username, c.Password, _ = strings.Cut(string(b), ":")
			}
			if !c.empty() {
				return c, nil
			}
		}
		if cf.CredsStore != "" {
			c, err := helperGet(cf.CredsStore, dockerHubKey(host))
			if err != nil || !c.empty() {
				return c, err
			}
		}
	}
	return Credential{}, nil
}

// dockerHubKey is the server URL docker files Docker Hub credentials under.
func dockerHubKey(host string) string {
	if host == "docker.io" {
		return "https://index.docker.io/v1/"
	}
	return host
}

// Store records c for host in WriteFile (or in its credsStore helper), keeping every other
// field of the file as it is.
func (s *Credentials) Store(host string, c Credential) error {
	host = credHost(host)
	return s.update(func(cf configFile, raw map[string]json.RawMessage, auths map[string]json.RawMessage) error {
		if h := helperFor(cf, host); h != "" {
			return helperRun(h, "store", helperPayload{ServerURL: dockerHubKey(host), Username: c.Username, Secret: c.Password})
		}
		e := authEntry{IdentityToken: c.IdentityToken, RegistryToken: c.RegistryToken}
		if c.Username != "" || c.Password != "" {
			e.Auth = base64.StdEncoding.EncodeToString([]byte(c.Username + ":" + c.Password))
		}
		for k := range auths {
			if normalizeKey(k) == host {
				delete(auths, k)
			}
		}
		b, _ := json.Marshal(e)
		auths[dockerHubKey(host)] = b
		return nil
	})
}

// Erase removes host's credentials from WriteFile (or its helper). Erasing credentials that
// are not there wraps errdef.ErrNotFound.
func (s *Credentials) Erase(host string) error {
	host = credHost(host)
	return s.update(func(cf configFile, raw map[string]json.RawMessage, auths map[string]json.RawMessage) error {
		if h := helperFor(cf, host); h != "" {
			return helperRun(h, "erase", dockerHubKey(host))
		}
		found := false
		for k := range auths {
			if normalizeKey(k) == host {
				delete(auths, k)
				found = true
			}
		}
		if !found {
			return fmt.Errorf("erase credentials for %s from %s: %w", host, s.WriteFile, errdef.ErrNotFound)
		}
		return nil
	})
}

func helperFor(cf configFile, host string) string {
	for k, h := range cf.CredHelpers {
		if normalizeKey(k) == host {
			return h
		}
	}
	return cf.CredsStore
}

func (s *Credentials) update(fn func(cf configFile, raw, auths map[string]json.RawMessage) error) error {
	if s.WriteFile == "" {
		return fmt.Errorf("store credentials: %w: no configuration file (set HOME or REGISTRY_AUTH_FILE)", errdef.ErrInvalidArgument)
	}
	cf, raw, err := readConfig(s.WriteFile)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	auths := map[string]json.RawMessage{}
	if a, ok := raw["auths"]; ok {
		if err := json.Unmarshal(a, &auths); err != nil {
			return fmt.Errorf("parse %s: %w: auths: %v", s.WriteFile, errdef.ErrInvalidArgument, err)
		}
	}
	if err := fn(cf, raw, auths); err != nil {
		return err
	}
	b, _ := json.Marshal(auths)
	raw["auths"] = b
	out, err := json.MarshalIndent(raw, "", "\t")
	if err != nil {
		return err
	}
	if err := durable.MkdirAll(filepath.Dir(s.WriteFile), 0o700); err != nil {
		return fmt.Errorf("store credentials: %w", err)
	}
	if err := durable.WriteFile(s.WriteFile, append(out, '\n'), 0o600); err != nil {
		return fmt.Errorf("store credentials: %w", err)
	}
	return nil
}

type helperPayload struct {
	ServerURL string
	Username  string
	Secret    string
}

// helperGet runs docker-credential-NAME get. An identity token comes back with the user
// name "<token>".
func helperGet(name, server string) (Credential, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker-credential-"+name, "get")
	cmd.Stdin = strings.NewReader(server)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		msg := strings.TrimSpace(string(out) + stderr.String())
		if strings.Contains(msg, "credentials not found") {
			return Credential{}, nil
		}
		return Credential{}, fmt.Errorf("docker-credential-%s get %s: %w: %s", name, server, err, msg)
	}
	var p helperPayload
	if err := json.Unmarshal(out, &p); err != nil {
		return Credential{}, fmt.Errorf("docker-credential-%s get %s: %w: %v", name, server, errdef.ErrInvalidArgument, err)
	}
	if p.Username == "<token>" {
		return Credential{IdentityToken: p.Secret}, nil
	}
	return Credential{Username: p.Username, Password: p.Secret}, nil
}

func helperRun(name, verb string, in any) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "docker-credential-"+name, verb)
	if s, ok := in.(string); ok {
		cmd.Stdin = strings.NewReader(s)
	} else {
		b, _ := json.Marshal(in)
		cmd.Stdin = bytes.NewReader(b)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("docker-credential-%s %s: %w: %s", name, verb, err, strings.TrimSpace(string(out)))
	}
	return nil
}
