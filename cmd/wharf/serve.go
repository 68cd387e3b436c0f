package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/wharfoci/wharf/distribution/server"
)

// newServeCmd is `wharf serve`: an OCI registry (distribution-spec 1.1) on a local store.
func newServeCmd(opts *globalOptions) *cobra.Command {
	var addr, root, config, tlsCert, tlsKey, metricsAddr string
	var token server.TokenAuth
	cmd := &cobra.Command{
		Use:   "serve [--addr HOST:PORT] [--root DIR] [--config FILE] [--tls-cert FILE --tls-key FILE]",
		Short: "Run an OCI registry",
		Long: `Run an OCI registry (distribution-spec 1.1) storing its content under --root.

Settings come from, in increasing priority: the defaults (` + server.DefaultAddr + `, ./` + server.DefaultRoot + `),
the JSON --config file (keys addr, root, logLevel, logFormat, noAnonymousMount, shutdownTimeout,
tlsCertificate, tlsKey, metricsAddr, auth, uploadMaxAge: upload sessions idle that long are
removed, default 168h, negative never),
the environment (WHARF_REGISTRY_ADDR, WHARF_REGISTRY_ROOT, WHARF_REGISTRY_LOG_LEVEL,
WHARF_REGISTRY_LOG_FORMAT, WHARF_REGISTRY_TLS_CERT, WHARF_REGISTRY_TLS_KEY,
WHARF_REGISTRY_METRICS_ADDR) and the flags. With --metrics-addr, Prometheus metrics (requests
by route, method and status, latency, bytes in and out, Go and process figures) are served at
/metrics on that address, apart from the registry's.
With a certificate and its key it serves HTTPS (TLS 1.2+), else plain HTTP. Access logs go to
stderr. SIGTERM or SIGINT stops accepting connections and lets requests in flight finish.

Without authorization anyone who reaches the registry may read and write it. With the --auth-token
flags (or the config's "auth": {"token": {"realm", "service", "issuer", "rootcertbundle"}}, as
distribution's) every request needs a bearer token from the token service at the realm (docker's
token protocol: docker_auth, Harbor's, GitLab's…): a JWT signed by a key whose certificate is in
the root bundle, issued by the issuer for the service, granting pull, push or delete on the
repository (registry:catalog:* for the catalog). Cross-repository mounts then need pull on the
source repository, and anonymous mounts are off.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := server.LoadConfig(config)
			if err != nil {
				return err
			}
			f := cmd.Flags()
			set := func(flag string, dst *string, v string) {
				if f.Changed(flag) {
					*dst = v
				}
			}
			set("addr", &cfg.Addr, addr)
			set("root", &cfg.Root, root)
			set("tls-cert", &cfg.TLSCert, tlsCert)
			set("tls-key", &cfg.TLSKey, tlsKey)
			set("metrics-addr", &cfg.MetricsAddr, metricsAddr)
			if f.Changed("auth-token-realm") || f.Changed("auth-token-service") || f.Changed("auth-token-issuer") || f.Changed("auth-token-rootcertbundle") {
				if cfg.Auth == nil {
					cfg.Auth = &server.AuthConfig{}
				}
				if cfg.Auth.Token == nil {
					cfg.Auth.Token = &server.TokenAuth{}
				}
				t := cfg.Auth.Token
				set("auth-token-realm", &t.Realm, token.Realm)
				set("auth-token-service", &t.Service, token.Service)
				set("auth-token-issuer", &t.Issuer, token.Issuer)
				set("auth-token-rootcertbundle", &t.RootCertBundle, token.RootCertBundle)
			}
			if opts.Debug {
				cfg.LogLevel = "debug"
			} else if opts.Quiet && cfg.LogLevel == "" {
				cfg.LogLevel = "warn"
			}
			if opts.JSON {
				cfg.LogFormat = "json"
			}
			return server.Serve(cmd.Context(), cfg, nil)
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", server.DefaultAddr, "address to listen on")
	f.StringVar(&root, "root", server.DefaultRoot, "storage directory")
	f.StringVar(&config, "config", "", "JSON configuration file")
	f.StringVar(&tlsCert, "tls-cert", "", "PEM certificate (chain): serve HTTPS (with --tls-key)")
	f.StringVar(&tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus metrics at http://ADDR/metrics (a listener of its own)")
	f.StringVar(&token.Realm, "auth-token-realm", "", "require bearer tokens from the token service at this URL")
	f.StringVar(&token.Service, "auth-token-service", "", "this registry's name, the tokens' audience")
	f.StringVar(&token.Issuer, "auth-token-issuer", "", "the tokens' issuer")
	f.StringVar(&token.RootCertBundle, "auth-token-rootcertbundle", "", "PEM certificates of the keys that sign tokens")
	cmd.AddCommand(newServeGCCmd(opts))
	return cmd
}

// newServeGCCmd is `wharf serve gc`: distribution's `registry garbage-collect`.
func newServeGCCmd(opts *globalOptions) *cobra.Command {
	var root, config string
	var gcOpts server.GCOptions
	cmd := &cobra.Command{
		Use:   "gc [--root DIR] [--config FILE] [--dry-run] [--delete-untagged]",
		Short: "Remove the blobs no manifest of the registry references",
		Long: `Collect a registry's garbage offline, as distribution's 'registry garbage-collect': in every
repository, keep the manifests (with --delete-untagged only those a tag reaches, through
indexes, and their referrers) and the blobs they reference, remove the other links, then
remove the stored blobs that no repository references. The registry must be stopped: a blob
pushed without its manifest yet is garbage. The root is locked meanwhile, and nothing is
removed when a kept manifest cannot be read.`,
		Example: `  wharf serve gc --root ./.wharf/registry --dry-run
  wharf serve gc --root ./.wharf/registry --delete-untagged`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := server.LoadConfig(config)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("root") || cfg.Root == "" {
				cfg.Root = root
			}
			if _, err := os.Stat(cfg.Root); err != nil { // collect a registry, never create one
				return fmt.Errorf("open registry root: %w", err)
			}
			cfg.LogLevel = "error"
			cfg.Auth = nil // offline: nobody to authorize
			g, err := server.New(cfg)
			if err != nil {
				return err
			}
			defer g.Close()
			res, err := g.GC(cmd.Context(), gcOpts)
			if err != nil {
				return err
			}
			if opts.JSON {
				return writeJSON(cmd.OutOrStdout(), res)
			}
			opts.infof(cmd, "gc: %s %d blobs (%s), %d manifests and %d blob links from %d repositories; %d blobs referenced",
				gcVerb(gcOpts.DryRun), res.Blobs, humanBytes(res.Bytes), res.Manifests, res.Links, res.Repositories, res.Kept)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&root, "root", server.DefaultRoot, "storage directory")
	f.StringVar(&config, "config", "", "JSON configuration file")
	f.BoolVar(&gcOpts.DryRun, "dry-run", false, "report what would be removed, remove nothing")
	f.BoolVar(&gcOpts.DeleteUntagged, "delete-untagged", false, "also remove the manifests no tag reaches")
	return cmd
}
