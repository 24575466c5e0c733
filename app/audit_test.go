package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/app"
	"github.com/jurisdns/jurisdns/audit"
)

// tmpfs mounts a 64 KiB tmpfs for the test and returns its directory and
// a function that fills all of its free space (remove the file it names to
// free it). Without permission to mount (not root), the test is skipped:
// the audit package covers the same failure with an injected writer.
func tmpfs(t *testing.T) (dir string, fill func() string) {
	t.Helper()
	dir = t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs (%v: %s): needs root; audit's tests inject the failure instead", err, out)
	}
	t.Cleanup(func() {
		if err := exec.Command("umount", dir).Run(); err != nil {
			t.Errorf("umount %s: %v", dir, err)
		}
	})
	return dir, func() string {
		p := filepath.Join(dir, "filler")
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, int64(st.Bavail)*st.Bsize), 0o600); err != nil {
			t.Fatalf("filling %s: %v", dir, err)
		}
		return p
	}
}

// waitUntil polls cond (which may call e.get) until it holds.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A full disk under the enforcement log keeps DNS up: /readyz turns
// "degraded" (200; 503 with audit.required), the metrics say so, and the
// log resumes, with a resumed event, when space returns.
func TestEnforcementLogFullDisk(t *testing.T) {
	for _, required := range []bool{false, true} {
		t.Run(fmt.Sprintf("required=%v", required), func(t *testing.T) {
			dir, fill := tmpfs(t)
			e := newEnv(t, nil)
			e.write("list.txt", "blocked.example\n")
			logPath := filepath.Join(dir, "audit.log")
			e.config(fmt.Sprintf(`audit: {path: %q, required: %v}
default_jurisdictions: [acme]
jurisdictions:
  - {id: acme, tier: local, sources: [{name: core, path: list.txt}]}
`, logPath, required))
			a := e.start()
			wantRcode(t, "blocked", e.query("udp", "blocked.example", dns.TypeA), dns.RcodeNameError)
			waitUntil(t, "the first record on disk", func() bool { st, _ := os.Stat(logPath); return st != nil && st.Size() > 0 })
			if code, body := e.get("/readyz"); code != 200 || strings.TrimSpace(body) != `{"ready":true}` {
				t.Fatalf("/readyz before the disk fills: %d %s", code, body)
			}

			filler := fill()
			// The records fill the slack of the file's last page first.
			for i := 0; e.metric("audit_writing") == 1; i++ {
				if i == 100 {
					t.Fatal("the log still writes after 100 records on a full disk")
				}
				wantRcode(t, "blocked on a full disk", e.query("udp", "blocked.example", dns.TypeA), dns.RcodeNameError)
				time.Sleep(5 * time.Millisecond)
			}
			wantCode, wantBody := 200, `{"ready":true,"status":"degraded","degraded":["enforcement log not writing"]}`
			if required {
				wantCode, wantBody = 503, `{"ready":false,"missing":["enforcement log not writing"],"status":"degraded","degraded":["enforcement log not writing"]}`
			}
			if code, body := e.get("/readyz"); code != wantCode || strings.TrimSpace(body) != wantBody {
				t.Fatalf("/readyz on a full disk: %d %s, want %d %s", code, body, wantCode, wantBody)
			}
			if e.metric("audit_writing") != 0 || e.metric("audit_write_errors_total") == 0 {
				t.Fatalf("metrics on a full disk: writing %v, write errors %v", e.metric("audit_writing"), e.metric("audit_write_errors_total"))
			}
			_, body := e.get("/api/status")
			var page struct {
				Audit *audit.State `json:"audit"`
			}
			if err := json.Unmarshal([]byte(body), &page); err != nil || page.Audit == nil || page.Audit.Writing ||
				!strings.Contains(page.Audit.Error, "no space left on device") {
				t.Fatalf("/api/status audit on a full disk: %+v %v", page.Audit, err)
			}
			// DNS keeps answering.
			wantRcode(t, "forwarded on a full disk", e.query("udp", "fwd.example", dns.TypeA), dns.RcodeSuccess)

			if err := os.Remove(filler); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "the log to resume", func() bool {
				code, body := e.get("/readyz")
				return code == 200 && strings.TrimSpace(body) == `{"ready":true}`
			})
			if e.metric("audit_writing") != 1 {
				t.Fatal("audit_writing not back to 1")
			}
			if err := a.Shutdown(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, err := audit.Verify(logPath); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			var resumed *audit.Resumed
			for _, l := range readLines(t, logPath) {
				var r audit.Record
				if err := json.Unmarshal([]byte(l), &r); err != nil {
					t.Fatal(err)
				}
				if r.Event == audit.EventResumed {
					resumed = r.Resumed
				}
			}
			if resumed == nil || resumed.Buffered == 0 || resumed.Lost != 0 {
				t.Fatalf("resumed event %+v, want the records kept in memory and none lost", resumed)
			}
		})
	}
}

// A log whose last line was torn (a crash, a full disk under an older
// version) no longer keeps jurisdns from starting: the line is moved into
// audit.log.torn and the chain records it.
func TestEnforcementLogTornLineAtStart(t *testing.T) {
	e := newEnv(t, nil)
	logPath := filepath.Join(e.dir, "audit.log")
	writeAuditLog(t, logPath, 2)
	f, err := os.OpenFile(logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"time":"2026-12-06T10:00:00Z","seq":3,"cli`)
	f.Close()
	e.config(fmt.Sprintf("audit: {path: %q}\n", logPath))
	a := e.start()
	if code, _ := e.get("/readyz"); code != 200 {
		t.Fatalf("/readyz after recovering a torn line: %d", code)
	}
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(logPath + ".torn"); err != nil || string(b) != `{"time":"2026-12-06T10:00:00Z","seq":3,"cli`+"\n" {
		t.Fatalf(".torn = %q, %v", b, err)
	}
	rep, err := audit.Verify(logPath)
	if err != nil || rep.Records != 3 {
		t.Fatalf("Verify: %+v %v, want 2 records and the torn event", rep, err)
	}
	if w := e.logs.find(0, func(r logRecord) bool { return strings.Contains(r.Msg, "torn") }); len(w) != 1 {
		t.Fatalf("torn line not logged once: %v", w)
	}
}

func writeAuditLog(t *testing.T, path string, n int) {
	t.Helper()
	w, err := audit.Open(audit.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		w.Log(audit.Record{Name: fmt.Sprintf("r%d.example.", i)})
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// With audit.signing_key_file the log carries signed checkpoints, the last
// one is on /metrics and /api/status, and a copy kept from there checks
// the log after the fact.
func TestEnforcementLogSignedCheckpoints(t *testing.T) {
	e := newEnv(t, nil)
	priv, pub, err := audit.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	keyFile := e.write("audit.key", string(priv)) // mode 0644: warned about
	pubFile := e.write("audit.pub", string(pub))
	e.write("list.txt", "blocked.example\n")
	logPath := filepath.Join(e.dir, "audit.log")
	e.config(fmt.Sprintf(`audit: {path: %q, signing_key_file: %q, checkpoint_records: 2, checkpoint_interval: 0s}
default_jurisdictions: [acme]
jurisdictions:
  - {id: acme, tier: local, sources: [{name: core, path: list.txt}]}
`, logPath, keyFile))
	a := e.start()
	for range 2 {
		wantRcode(t, "blocked", e.query("udp", "blocked.example", dns.TypeA), dns.RcodeNameError)
	}
	// open checkpoint (line 1), two records, a checkpoint covering 3 lines.
	waitUntil(t, "the records checkpoint", func() bool { return e.metric("audit_checkpoint_info", "count=3") == 1 })
	_, body := e.get("/api/status")
	var page struct {
		Audit struct {
			Checkpoint json.RawMessage `json:"checkpoint"`
		} `json:"audit"`
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	kept := e.write("kept.json", string(page.Audit.Checkpoint))
	if err := a.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	cp, err := audit.ReadCheckpoint(kept)
	if err != nil || cp.Count != 3 || cp.Reason != audit.ReasonRecords {
		t.Fatalf("kept checkpoint %+v, %v", cp, err)
	}
	pk, err := audit.ReadPublicKey(pubFile)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := audit.VerifyWith(audit.VerifyOptions{PublicKey: pk, Checkpoint: &cp}, logPath)
	if err != nil || !rep.CheckpointMatched || rep.Checkpoints != 2 || rep.Unsigned != 0 {
		t.Fatalf("VerifyWith = %+v, %v; want the kept checkpoint found and nothing unsigned", rep, err)
	}

	if w := e.logs.find(0, func(r logRecord) bool { return strings.Contains(r.Msg, "readable by other users") }); len(w) != 1 {
		t.Errorf("no warning about a key file readable by others")
	}

	// A key file that is not a key stops the start with the key path.
	e.write("audit.key", "not a key")
	if _, err := app.New(e.options()); err == nil || !strings.Contains(err.Error(), "audit.signing_key_file: "+keyFile) {
		t.Fatalf("app.New with a bad key file: %v", err)
	}
}
