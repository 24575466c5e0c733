package testtool

import (
	"context"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
	"time"
)

// BuildJurisdns builds cmd/jurisdns into dir and returns the binary's path,
// for tests that run jurisdns as a process (as a user or a platform does).
func BuildJurisdns(t testing.TB, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "jurisdns")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, goBin, "build", "-o", bin, "github.com/jurisdns/jurisdns/cmd/jurisdns").CombinedOutput()
	if err != nil {
		t.Fatalf("go build ./cmd/jurisdns: %v\n%s", err, out)
	}
	return bin
}
