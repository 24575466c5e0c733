package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"testing"
)

// testKey returns a new signing key.
func testKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}
