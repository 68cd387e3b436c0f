// Command wharf builds, ships and runs OCI images. See README.md.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "wharf: under construction")
	os.Exit(1)
}
