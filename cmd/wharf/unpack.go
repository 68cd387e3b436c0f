package main

import (
	"strconv"
	"strings"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"

	"github.com/wharfoci/wharf/image/bundle"
	"github.com/wharfoci/wharf/image/layer"
)

// unpackResult is what `wharf unpack --json` prints.
type unpackResult struct {
	Bundle   string   `json:"bundle"`
	Manifest string   `json:"manifest"`
	Config   string   `json:"config"`
	DiffIDs  []string `json:"diffIDs"`
}

// parseIDMaps parses CONTAINER:HOST:SIZE values (umoci's --uid-map syntax).
func parseIDMaps(flag string, vals []string) ([]specs.LinuxIDMapping, error) {
	var out []specs.LinuxIDMapping
	for _, v := range vals {
		f := strings.Split(v, ":")
		if len(f) != 3 {
			return nil, usageErrorf("--%s %q: want CONTAINER:HOST:SIZE", flag, v)
		}
		var n [3]uint32
		for i, s := range f {
			u, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return nil, usageErrorf("--%s %q: %q is not a number", flag, v, s)
			}
			n[i] = uint32(u)
		}
		if n[2] == 0 {
			return nil, usageErrorf("--%s %q: size 0", flag, v)
		}
		out = append(out, specs.LinuxIDMapping{ContainerID: n[0], HostID: n[1], Size: n[2]})
	}
	return out, nil
}

func newUnpackCmd(opts *globalOptions) *cobra.Command {
	var uidMaps, gidMaps []string
	var lim layer.Limits
	cmd := &cobra.Command{
		Use:   "unpack IMAGE BUNDLE",
		Short: "Unpack an image into a runtime bundle",
		Long: `Apply IMAGE's layers in order to BUNDLE/rootfs (image-spec layer.md: whiteouts, opaque
directories, hardlinks, devices, xattrs, owners, modes and times) and convert its config to
BUNDLE/config.json (image-spec conversion.md, on runc-spec-like defaults). Every layer is
verified against its digest and diffID and applied confined to the rootfs; BUNDLE appears,
mode 0700, only once complete. BUNDLE must not exist.

BUNDLE/wharf.json and BUNDLE/wharf.snapshot remember the image and the unpacked state, so
that "wharf repack" finds what changed without re-reading unchanged files.

--uid-map and --gid-map (CONTAINER:HOST:SIZE, repeatable) shift owners for a user-namespaced
runtime and add the user namespace to config.json. The --max-* limits end decompression, sparse
and inode bombs with an error before they fill a disk.`,
		Example: `  wharf unpack oci:./busybox:latest ./bundle && cd bundle && runc run demo
  wharf unpack docker://127.0.0.1:5000/demo/busybox:latest ./bundle
  wharf unpack --platform linux/arm64 oci:./multi:latest ./bundle-arm64
  wharf unpack --uid-map 0:100000:65536 --gid-map 0:100000:65536 oci:./busybox ./rootless`,
		Args: exactArgs(2),
	}
	mf := addManifestFlags(cmd, "unpack")
	cmd.Flags().StringArrayVar(&uidMaps, "uid-map", nil, "shift owners: CONTAINER:HOST:SIZE (repeatable)")
	cmd.Flags().StringArrayVar(&gidMaps, "gid-map", nil, "shift groups: CONTAINER:HOST:SIZE (repeatable)")
	cmd.Flags().Int64Var(&lim.MaxBytes, "max-layer-bytes", layer.DefaultMaxBytes, "refuse a layer that expands to more bytes (-1: no limit)")
	cmd.Flags().Int64Var(&lim.MaxRatio, "max-ratio", layer.DefaultMaxRatio, "refuse a layer that expands more times its compressed size, past 256 MiB (-1: no limit)")
	cmd.Flags().Int64Var(&lim.MaxEntries, "max-entries", layer.DefaultMaxEntries, "refuse a layer with more entries (-1: no limit)")
	cmd.Flags().IntVar(&lim.MaxNameLength, "max-name-length", layer.DefaultMaxNameLength, "refuse longer entry names and link targets (-1: no limit)")
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		um, err := parseIDMaps("uid-map", uidMaps)
		if err != nil {
			return err
		}
		gm, err := parseIDMaps("gid-map", gidMaps)
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		h, md, err := mf.open(ctx, args[0])
		if err != nil {
			return err
		}
		defer h.Close()
		res, err := bundle.Unpack(ctx, h.Target(), md, args[1], bundle.Options{
			UIDMap: um, GIDMap: gm, Limits: lim,
			Progress: func(i, n int, l ocispec.Descriptor) {
				opts.debugf(cmd, "layer %d/%d %s (%d bytes)", i+1, n, l.Digest, l.Size)
			},
		})
		if err != nil {
			return err
		}
		if opts.JSON {
			r := unpackResult{Bundle: args[1], Manifest: res.Manifest.Digest.String(), Config: res.Config.Digest.String()}
			for _, l := range res.Layers {
				r.DiffIDs = append(r.DiffIDs, l.DiffID.String())
			}
			return writeJSON(cmd.OutOrStdout(), r)
		}
		opts.infof(cmd, "unpacked %s (%d layers) into %s", res.Manifest.Digest, len(res.Layers), args[1])
		return nil
	}
	return cmd
}
