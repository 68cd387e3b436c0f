// Package cgroups is the runtime's control-group code (runtime-spec config-linux.md "Control
// groups"): where a container's cgroups are on the host, what linux.resources and
// linux.resources.devices become in their files, what the files say back (the stats `events`
// prints), the freezer, and the processes they hold.
//
// A container is placed in every mounted hierarchy — v1 controllers, named ones such as
// name=systemd, and cgroup2 — which covers v1, v2 and hybrid hosts alike. Paths maps each
// hierarchy to the container's directory in it; the rest of the package is methods on Paths
// that read and write files under those directories. Nothing here assumes a kernel behind the
// files, so every part can run against a directory tree that holds the files a kernel would
// have; only HostPaths reads the calling process's /proc, and Signal and Kill signal the
// processes the files list.
package cgroups
