// Command wharf-runtime is a runc-compatible OCI runtime. See README.md.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "wharf-runtime: under construction")
	os.Exit(1)
}
