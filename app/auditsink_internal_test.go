package app

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jurisdns/jurisdns/audit"
	"github.com/jurisdns/jurisdns/policy"
)

// TestAuditSinkTypeNames: the enforcement log names a query type as the
// query log and the status page do, TYPE<n> for a type without a mnemonic
// (it wrote an empty type).
func TestAuditSinkTypeNames(t *testing.T) {
	path := filepath.Join(t.TempDir(), "enforcement.log")
	w, err := audit.Open(audit.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	s := &auditSink{w: w, privacy: "full"}
	for _, q := range []uint16{1, 65280} {
		s.PolicyEvent(&policy.Event{Name: "chat.deepseek.com.", Qtype: q, Jurisdiction: &policy.Jurisdiction{}})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) != 2 || !strings.Contains(lines[0], `"type":"A"`) || !strings.Contains(lines[1], `"type":"TYPE65280"`) {
		t.Fatalf("enforcement log:\n%s\nwant type A, then TYPE65280", data)
	}
}
