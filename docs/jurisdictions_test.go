package docs

import (
	"bytes"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/jurisdns/jurisdns/policy"
)

const registerFile = "jurisdictions.md"

// TestJurisdictionRegister fails when jurisdictions.md is not what the
// shipped data gives, or when a jurisdiction's status changed since the day
// it was generated (a ban took effect or expired). Refresh it with
// `go generate ./docs` (or go test ./docs -run TestJurisdictionRegister
// -update).
func TestJurisdictionRegister(t *testing.T) {
	today := time.Now().UTC().Truncate(24 * time.Hour)
	if *update {
		var b bytes.Buffer
		if err := policy.WriteRegister(&b, today); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(registerFile, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	got, err := os.ReadFile(registerFile)
	if err != nil {
		t.Fatalf("%v: run `go generate ./docs`", err)
	}
	m := regexp.MustCompile(`Status on (\d{4}-\d{2}-\d{2}) \(00:00 UTC\)`).FindSubmatch(got)
	if m == nil {
		t.Fatalf("docs/%s has no \"Status on\" date: run `go generate ./docs`", registerFile)
	}
	asOf, err := time.Parse(time.DateOnly, string(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	var want bytes.Buffer
	if err := policy.WriteRegister(&want, asOf); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("docs/%s is stale (the shipped jurisdictions changed): run `go generate ./docs` and commit it\n%s",
			registerFile, firstDiff(got, want.Bytes()))
	}
	then, err := policy.RegisterStatuses(asOf)
	if err != nil {
		t.Fatal(err)
	}
	now, err := policy.RegisterStatuses(today)
	if err != nil {
		t.Fatal(err)
	}
	for id, st := range now {
		if then[id] != st {
			t.Errorf("docs/%s is stale: %s is %q today, %q on %s: run `go generate ./docs` and commit it",
				registerFile, id, st, then[id], asOf.Format(time.DateOnly))
		}
	}
}
