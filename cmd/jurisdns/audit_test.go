package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jurisdns/jurisdns/audit"
)

// runCLI runs the CLI with args and returns its stdout, stderr and error.
func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	root := newRoot()
	var out, errOut bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errOut)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), errOut.String(), err
}

func TestAuditKeygenAndVerify(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "audit.key")
	out, _, err := runCLI(t, "audit", "keygen", "--out", key)
	if err != nil || !strings.Contains(out, "key id ") {
		t.Fatalf("keygen: %q %v", out, err)
	}
	if st, err := os.Stat(key); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("private key file: %v %v", st, err)
	}
	if _, _, err := runCLI(t, "audit", "keygen", "--out", key); err == nil || !errors.Is(err, os.ErrExist) {
		t.Fatalf("keygen over an existing key: %v, want a refusal", err)
	}

	priv, err := audit.ReadPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	log := filepath.Join(dir, "audit.log")
	w, err := audit.Open(audit.Options{Path: log, SigningKey: priv, CheckpointRecords: 3})
	if err != nil {
		t.Fatal(err)
	}
	for range 7 {
		w.Log(audit.Record{Name: "chat.deepseek.com."})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	cp, _ := w.LastCheckpoint()
	b, _ := json.Marshal(cp)
	kept := filepath.Join(dir, "kept.json")
	os.WriteFile(kept, b, 0o644)

	// 1 open + 7 records + 2 records checkpoints + 1 close = 11 lines.
	out, _, err = runCLI(t, "audit", "verify", "--public-key", key+".pub", "--checkpoint", kept, log)
	want := "ok: 11 lines in 1 file, seq 1-11 from genesis, head "
	if err != nil || !strings.HasPrefix(out, want) ||
		!strings.Contains(out, "; 4 signed checkpoints verified, the last covering 10 lines; the checkpoint given (count 10) is in the log") {
		t.Fatalf("verify: %q %v", out, err)
	}
	out, _, err = runCLI(t, "audit", "verify", log)
	if err != nil || !strings.Contains(out, "; 4 checkpoints not checked: give --public-key") {
		t.Fatalf("verify without a key: %q %v", out, err)
	}
	out, _, err = runCLI(t, "audit", "verify", "--json", "--public-key", key+".pub", log)
	var rep audit.Report
	if err != nil || json.Unmarshal([]byte(out), &rep) != nil || rep.Records != 11 || !rep.Signed || !strings.Contains(out, `"last_hash":`) {
		t.Fatalf("verify --json: %q %v", out, err)
	}

	// The tail cut past the kept checkpoint: exit 1, file:line on stderr.
	data, _ := os.ReadFile(log)
	lines := strings.SplitAfter(string(data), "\n")
	os.WriteFile(log, []byte(strings.Join(lines[:8], "")), 0o640)
	_, stderr, err := runCLI(t, "audit", "verify", "--public-key", key+".pub", "--checkpoint", kept, log)
	var ee exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(stderr, log+":8: ") || !strings.Contains(stderr, "2 line(s) cut from the end") {
		t.Fatalf("verify of a cut log: %v %q", err, stderr)
	}
	if _, _, err := runCLI(t, "audit", "verify", "--checkpoint", kept, log); err == nil || !strings.Contains(err.Error(), "needs --public-key") {
		t.Fatalf("--checkpoint without --public-key: %v", err)
	}
}
