package main

import (
	"github.com/spf13/cobra"

	"github.com/wharfoci/wharf/distribution/server"
)

// newServeCmd is `wharf serve`: an OCI registry (distribution-spec 1.1) on a local store.
func newServeCmd(opts *globalOptions) *cobra.Command {
	var addr, root, config string
	cmd := &cobra.Command{
		Use:   "serve [--addr HOST:PORT] [--root DIR] [--config FILE]",
		Short: "Run an OCI registry",
		Long: `Run an OCI registry (distribution-spec 1.1) storing its content under --root.

Settings come from, in increasing priority: the defaults (` + server.DefaultAddr + `, ./` + server.DefaultRoot + `),
the JSON --config file (keys addr, root, logLevel, logFormat, noAnonymousMount, shutdownTimeout,
uploadMaxAge: upload sessions idle that long are removed, default 168h, negative never),
the environment (WHARF_REGISTRY_ADDR, WHARF_REGISTRY_ROOT, WHARF_REGISTRY_LOG_LEVEL,
WHARF_REGISTRY_LOG_FORMAT) and the flags. Access logs go to stderr. SIGTERM or SIGINT stops
accepting connections and lets requests in flight finish.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := server.LoadConfig(config)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("addr") {
				cfg.Addr = addr
			}
			if cmd.Flags().Changed("root") {
				cfg.Root = root
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
	return cmd
}
