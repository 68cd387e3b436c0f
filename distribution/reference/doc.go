// Package reference parses image references — [HOST[:PORT]/]REPOSITORY[:TAG][@DIGEST] — as
// registry clients write them, and the repository name and tag grammars of the OCI
// distribution-spec ("Pulling manifests": <name> is
// [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*, a <reference> tag is
// [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}) that the registry server enforces.
//
// ParseNormalized applies Docker's conventions (alpine → docker.io/library/alpine:latest);
// Parse takes a reference as written. Both are implemented from the grammar, not from
// distribution's reference package.
package reference
