// Package build is the front half of `wharf build`: it turns a Containerfile and a build
// context into what the executor runs, without mounting anything or needing root.
//
// The language is BuildKit's Dockerfile frontend (docker/dockerfile:1), parsed by its own
// parser, instructions and shell packages; the results are measured against buildah 1.28
// (`buildah bud`). Load finds the Containerfile (-f, else Containerfile, else Dockerfile),
// parses it and returns a Plan: the stages the target needs in dependency order (FROM a
// stage, COPY --from and RUN --mount from= a stage name or index; images otherwise), the
// meta ARGs and predefined platform ARGs, and warnings (an unknown `# syntax=`, build args no
// ARG consumes). Errors in the file are *Error values naming FILE:LINE.
//
// The executor builds each stage with a Scope: Scope.Expand returns each step as a fresh
// command expanded in the stage's variables (the base image's Env, then ENV and ARG values
// in scope, with BuildKit's rule for which words each instruction expands) and tracks ENV and
// ARG as they go.
//
// A Tree is the build context (OpenContext, with the .containerignore/.dockerignore rules of
// ReadIgnore) or a stage's root filesystem (OpenRootfs). Tree.Resolve matches the sources of
// one COPY or ADD (paths and globs, --exclude, --parents, ADD's URLs through a Fetcher)
// without following a symlink out of the context or reading excluded directories that no
// exception reaches into; SourceSet.Digest keys the step's cache by content (with an optional
// HashCache); Copy writes the set into the step's root with Docker's COPY/ADD semantics,
// every write confined to that root, ADD's archives extracted by image/layer's applier.
package build
