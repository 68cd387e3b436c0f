package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/wharfoci/wharf/distribution/client"
)

// registryHost accepts HOST[:PORT], docker://HOST or https://HOST/… and returns the host.
func registryHost(arg string) (string, error) {
	h := strings.TrimPrefix(strings.TrimPrefix(strings.TrimPrefix(arg, "docker://"), "https://"), "http://")
	h, _, _ = strings.Cut(h, "/")
	if h == "" || strings.ContainsAny(h, " \t@") {
		return "", usageErrorf("%q: name a registry host, HOST[:PORT]", arg)
	}
	return h, nil
}

func newLoginCmd(opts *globalOptions) *cobra.Command {
	var user, pass string
	var passStdin bool
	cmd := &cobra.Command{
		Use:   "login HOST[:PORT]",
		Short: "Log in to a registry and store the credentials",
		Long: `Check a user name and password against a registry (GET /v2/ with Basic or the Bearer token
flow, as the registry asks) and store them where docker and skopeo read them:
$REGISTRY_AUTH_FILE when set, else $DOCKER_CONFIG/config.json or ~/.docker/config.json (or the
file's credsStore / credHelpers program, docker-credential-NAME).`,
		Example: `  wharf login -u alice --password-stdin registry.example < password.txt
  wharf login -u alice -p secret localhost:5000`,
		Args: exactArgs(1),
	}
	f := cmd.Flags()
	f.StringVarP(&user, "username", "u", "", "user name (asked for on a terminal when missing)")
	f.StringVarP(&pass, "password", "p", "", "password (prefer --password-stdin)")
	f.BoolVar(&passStdin, "password-stdin", false, "read the password from standard input")
	rf := addRegistryFlags(cmd, false)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		host, err := registryHost(args[0])
		if err != nil {
			return err
		}
		in := bufio.NewReader(cmd.InOrStdin())
		if user == "" {
			fmt.Fprint(cmd.ErrOrStderr(), "Username: ")
			line, _ := in.ReadString('\n')
			user = strings.TrimSpace(line)
		}
		switch {
		case passStdin:
			b, err := io.ReadAll(in)
			if err != nil {
				return fmt.Errorf("login %s: read password: %w", host, err)
			}
			pass = strings.TrimRight(string(b), "\r\n")
		case pass == "":
			fmt.Fprint(cmd.ErrOrStderr(), "Password: ")
			if term.IsTerminal(int(os.Stdin.Fd())) {
				b, err := term.ReadPassword(int(os.Stdin.Fd()))
				fmt.Fprintln(cmd.ErrOrStderr())
				if err != nil {
					return fmt.Errorf("login %s: read password: %w", host, err)
				}
				pass = string(b)
			} else {
				line, _ := in.ReadString('\n')
				pass = strings.TrimRight(line, "\r\n")
			}
		}
		if user == "" || pass == "" {
			return usageErrorf("login %s: a user name and a password are needed", host)
		}
		cred := client.Credential{Username: user, Password: pass}
		if _, err := rf.client(); err != nil { // flag checks
			return err
		}
		c2, err := client.New(client.Options{PlainHTTP: rf.plainHTTP, Insecure: rf.insecure, CACertFile: rf.caCert,
			Credentials: func(string) (client.Credential, error) { return cred, nil }})
		if err != nil {
			return err
		}
		if err := c2.Ping(cmd.Context(), host); err != nil {
			return fmt.Errorf("login %s: %w", host, err)
		}
		store := client.DefaultCredentials()
		if err := store.Store(host, cred); err != nil {
			return fmt.Errorf("login %s: %w", host, err)
		}
		opts.infof(cmd, "Login Succeeded (credentials stored in %s)", store.WriteFile)
		return nil
	}
	return cmd
}

func newLogoutCmd(opts *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "logout HOST[:PORT]",
		Short: "Remove a registry's stored credentials",
		Long: `Remove the credentials login stored for a registry ($REGISTRY_AUTH_FILE when set, else docker's
config.json, or its credential helper). Credentials that are not there are an error (exit 3).`,
		Example: `  wharf logout registry.example`,
		Args:    exactArgs(1),
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		host, err := registryHost(args[0])
		if err != nil {
			return err
		}
		if err := client.DefaultCredentials().Erase(host); err != nil {
			return fmt.Errorf("logout %s: %w", host, err)
		}
		opts.infof(cmd, "Removed login credentials for %s", host)
		return nil
	}
	return cmd
}
