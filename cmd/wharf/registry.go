package main

import (
	"context"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"

	"github.com/wharfoci/wharf/distribution/client"
	"github.com/wharfoci/wharf/imageref"
)

// registryFlags are the flags of the commands that talk to registries (copy, inspect, tags,
// delete, login).
type registryFlags struct {
	plainHTTP bool
	insecure  bool
	caCert    string
	chunkSize int64
	retries   int
}

func addRegistryFlags(cmd *cobra.Command, uploads bool) *registryFlags {
	rf := &registryFlags{}
	f := cmd.Flags()
	f.BoolVar(&rf.plainHTTP, "plain-http", false, "talk plain HTTP to registries (always done for localhost and 127.0.0.1)")
	f.BoolVar(&rf.insecure, "insecure", false, "do not verify registries' TLS certificates, and fall back to plain HTTP")
	f.StringVar(&rf.caCert, "cacert", "", "PEM file of certificate authorities to trust for registries")
	f.IntVar(&rf.retries, "retries", 4, "retries of a failed registry request (5xx, 429, dropped connections)")
	if uploads {
		f.Int64Var(&rf.chunkSize, "chunk-size", 0, "upload blobs in chunks of this many bytes (0: each blob in one request)")
	}
	return rf
}

// client builds the registry client the flags describe, with the credentials of docker's and
// containers' configuration files.
func (rf *registryFlags) client() (*client.Client, error) {
	if rf.chunkSize < 0 {
		return nil, usageErrorf("--chunk-size %d: must not be negative", rf.chunkSize)
	}
	if rf.retries < 0 {
		return nil, usageErrorf("--retries %d: must not be negative", rf.retries)
	}
	creds := client.DefaultCredentials()
	retries := rf.retries
	if retries == 0 {
		retries = -1
	}
	return client.New(client.Options{
		PlainHTTP:   rf.plainHTTP,
		Insecure:    rf.insecure,
		CACertFile:  rf.caCert,
		ChunkSize:   rf.chunkSize,
		MaxRetries:  retries,
		Credentials: creds.Get,
	})
}

// openAny opens what r names — a layout, an archive or a registry repository.
func openAny(ctx context.Context, r imageref.Reference, create bool, rf *registryFlags) (*imageref.Handle, error) {
	o := imageref.OpenOptions{Create: create}
	if r.Transport == imageref.Docker {
		c, err := rf.client()
		if err != nil {
			return nil, err
		}
		o.Registry = c
	}
	return imageref.Open(ctx, r, o)
}

// openAnyImage is openImage for layouts, archives and registries.
func openAnyImage(ctx context.Context, arg string, rf *registryFlags) (*imageref.Handle, ocispec.Descriptor, error) {
	r, err := parseImage(arg)
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	if r.Transport != imageref.Docker {
		return openImage(ctx, arg)
	}
	h, err := openAny(ctx, r, false, rf)
	if err != nil {
		return nil, ocispec.Descriptor{}, err
	}
	d, err := h.ResolveImage(ctx)
	if err != nil {
		h.Close()
		return nil, ocispec.Descriptor{}, err
	}
	return h, d, nil
}

// parseRegistry parses a docker:// name (or a bare registry name, as docker accepts) for the
// commands that only work on registries.
func parseRegistry(arg string) (imageref.Reference, error) {
	r, err := imageref.Parse(arg)
	if err != nil {
		var err2 error
		if r, err2 = imageref.Parse("docker://" + arg); err2 != nil {
			return r, asUsage(err)
		}
	}
	if r.Transport != imageref.Docker {
		return r, usageErrorf("%s: name a registry repository: docker://HOST[:PORT]/REPO[:TAG|@DIGEST]", arg)
	}
	return r, nil
}
