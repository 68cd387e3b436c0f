package content

import (
	// go-digest hashes through crypto.Hash: register the algorithms ValidateDigest accepts, so
	// that NewVerifyReader and Algorithm.FromBytes never panic on a valid sha512 digest.
	_ "crypto/sha256"
	_ "crypto/sha512"
)
