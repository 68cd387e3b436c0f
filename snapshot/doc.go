// Package snapshot manages file-system snapshots in containerd's model
// (core/snapshots/snapshotter.go): layers of an image, the root file systems of containers and
// build steps.
//
// A snapshot is active (writable, made by Prepare), a view (read-only, made by View) or
// committed (read-only, immutable, made from an active one by Commit and named — by the image
// store, by its layer's chain ID). Every snapshot but the first of a chain has a committed
// parent. Prepare and View return mounts; the caller mounts them (Mount.Mount, MountAll) where
// it wants, and unmounts them before Commit or Remove.
//
// Two drivers: overlay (the default where the kernel mounts overlayfs on the store's file
// system: a snapshot's directory holds only what it changed, whiteouts as overlay whiteouts,
// and its mounts stack its parents as lower directories) and native (a full copy of the parent
// in each snapshot, where overlay cannot be mounted). The store keeps the driver it was made
// with.
//
// On disk, under the root: snapshots/<id>/ with info.json (kind, name, parent, labels), fs/ (the
// content) and work/ (overlay's work directory); keys/<sha256 of the name> holding "<id>\n<name>"
// — the index from a key or name to its directory. Every record is written durably
// (internal/durable) in an order that a crash at any point leaves recoverable: a directory no
// index names is half-made and removed by Cleanup, an index that disagrees with its record is
// dropped, and Commit syncs the snapshot's file system before it names it, so no half-made
// snapshot is ever used. Changes happen under an exclusive flock on root/.lock, lookups under a
// shared one: several processes may use one store.
package snapshot
