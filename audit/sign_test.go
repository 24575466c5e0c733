package audit

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jurisdns/jurisdns/internal/testtool"
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

// signedLog writes a signed log of n records (a checkpoint every 5) and
// returns its lines and the checkpoint the Writer published last.
func signedLog(t *testing.T, path string, key ed25519.PrivateKey, n int) ([][]byte, Checkpoint) {
	t.Helper()
	w := openTest(t, Options{Path: path, SigningKey: key, CheckpointRecords: 5})
	for i := range n {
		w.Log(testRecord(i))
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	cp, ok := w.LastCheckpoint()
	if !ok {
		t.Fatal("no checkpoint published")
	}
	return readLines(t, path), cp
}

func TestSignedLog(t *testing.T) {
	key := testKey(t)
	pub := key.Public().(ed25519.PublicKey)
	path := filepath.Join(t.TempDir(), "audit.log")
	lines, last := signedLog(t, path, key, 12)

	// open (seq 1), 5 records, checkpoint, 5 records, checkpoint, 2 records, close.
	wantEvents := map[int]string{0: ReasonOpen, 6: ReasonRecords, 12: ReasonRecords, 15: ReasonClose}
	if len(lines) != 16 {
		t.Fatalf("%d lines, want 16", len(lines))
	}
	for i, l := range lines {
		r := decode(t, l)
		reason, isCP := wantEvents[i]
		if (r.Event == EventCheckpoint) != isCP {
			t.Fatalf("line %d: event %q, want checkpoint: %v", i+1, r.Event, isCP)
		}
		if !isCP {
			continue
		}
		c := r.Checkpoint
		if c.Reason != reason || c.Count != r.Seq-1 || c.Head != r.Prev || c.Key != KeyID(pub) || c.Verify(pub) != nil {
			t.Fatalf("line %d: checkpoint %+v, want reason %s covering the lines before it, signed", i+1, *c, reason)
		}
	}
	if got := decode(t, lines[15]).Checkpoint; *got != last {
		t.Fatalf("LastCheckpoint = %+v, want the closing one %+v", last, *got)
	}
	if last.Count != 15 || last.Head != lineHash(lines[14]) {
		t.Fatalf("closing checkpoint covers %d lines, head %s", last.Count, last.Head)
	}
	// The message is the documented text.
	want := "jurisdns audit checkpoint v1\ncount 15\nhead " + last.Head + "\ntime 2026-03-01T01:00:00Z\nreason close\n"
	if got := string(last.Message()); got != want {
		t.Fatalf("Message = %q, want %q", got, want)
	}

	rep, err := VerifyWith(VerifyOptions{PublicKey: pub, Checkpoint: &last}, path)
	if err != nil {
		t.Fatalf("VerifyWith: %v", err)
	}
	if !rep.Signed || rep.Checkpoints != 4 || rep.LastCheckpoint != 15 || rep.Unsigned != 0 || !rep.CheckpointMatched || rep.Records != 16 {
		t.Fatalf("Report = %+v", rep)
	}

	// Reopened after a clean close: the chain goes on without a new open
	// checkpoint (the last line is one).
	w := openTest(t, Options{Path: path, SigningKey: key})
	w.Log(testRecord(50))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines = readLines(t, path)
	if len(lines) != 18 || decode(t, lines[16]).Event != "" || decode(t, lines[17]).Checkpoint.Reason != ReasonClose {
		t.Fatalf("after reopen: %d lines, want a record then a close checkpoint", len(lines))
	}
	// The older checkpoint still checks against the longer log.
	if _, err := VerifyWith(VerifyOptions{PublicKey: pub, Checkpoint: &last}, path); err != nil {
		t.Fatalf("VerifyWith an older checkpoint: %v", err)
	}

	// After a crash the lines after the last checkpoint are unsigned; the
	// next Open signs them with an open checkpoint.
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	r := testRecord(60)
	r.Time, r.Seq, r.Prev = fixedNow.UTC(), 19, lineHash(lines[17])
	f.Write(append(mustMarshal(t, r), '\n'))
	f.Close()
	rep, err = VerifyWith(VerifyOptions{PublicKey: pub}, path)
	if err != nil || rep.Unsigned != 1 {
		t.Fatalf("VerifyWith with an unsigned tail: %+v %v, want ok with Unsigned 1", rep, err)
	}
	w = openTest(t, Options{Path: path, SigningKey: key})
	w.Close()
	if c := decode(t, readLines(t, path)[19]).Checkpoint; c == nil || c.Reason != ReasonOpen || c.Count != 19 {
		t.Fatalf("no open checkpoint after the unsigned tail: %+v", c)
	}
}

// rechain is what a forger with a 20-line script does: give every line
// from line from on the seq and prev that follow the line before it, and
// make each checkpoint name its new place (the forger cannot sign it).
func rechain(t *testing.T, lines [][]byte, from int) [][]byte {
	t.Helper()
	out := append([][]byte{}, lines[:from]...)
	seq, prev := uint64(0), Genesis
	if from > 0 {
		seq, prev = decode(t, lines[from-1]).Seq, lineHash(lines[from-1])
	}
	for _, l := range lines[from:] {
		d := json.NewDecoder(bytes.NewReader(l))
		d.UseNumber()
		var m map[string]any
		if err := d.Decode(&m); err != nil {
			t.Fatal(err)
		}
		seq++
		m["seq"], m["prev"] = seq, prev
		if c, ok := m["checkpoint"].(map[string]any); ok {
			c["count"], c["head"] = seq-1, prev
		}
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
		prev = lineHash(b)
	}
	return out
}

func isCheckpoint(t *testing.T, l []byte) bool { return decode(t, l).Event == EventCheckpoint }

// Each way an editor can change a signed log is caught with the public key
// (and, for a cut tail, a checkpoint kept elsewhere), at the line that
// shows it. Plain Verify, all that existed before, passes all of them.
func TestSignedLogDetectsTampering(t *testing.T) {
	key := testKey(t)
	pub := key.Public().(ed25519.PublicKey)
	good := filepath.Join(t.TempDir(), "audit.log")
	lines, kept := signedLog(t, good, key, 12) // 16 lines; 12 and 16 are records-/close checkpoints
	if !isCheckpoint(t, lines[15]) || isCheckpoint(t, lines[14]) {
		t.Fatal("unexpected layout")
	}
	edit := func(ls [][]byte, i int, old, new string) [][]byte {
		out := append([][]byte{}, ls...)
		out[i] = bytes.Replace(ls[i], []byte(old), []byte(new), 1)
		if bytes.Equal(out[i], ls[i]) {
			t.Fatalf("edit of line %d changed nothing", i+1)
		}
		return out
	}
	var noCPs [][]byte
	for _, l := range lines {
		if !isCheckpoint(t, l) {
			noCPs = append(noCPs, l)
		}
	}
	otherKey := testKey(t)
	resigned := rechain(t, edit(lines, 2, "chat1.", "chat9."), 2)
	for i := range resigned {
		if r := decode(t, resigned[i]); r.Checkpoint != nil {
			r.Checkpoint.sign(otherKey)
			resigned[i] = mustMarshal(t, r)
			resigned = rechain(t, resigned, i+1)
		}
	}

	tests := []struct {
		name     string
		lines    [][]byte
		keep     bool // give the kept checkpoint
		wantLine int
		reason   string
		plainOK  bool // plain Verify (no key) passes it
	}{
		// The last record, its hash fixed in the closing checkpoint's prev.
		{name: "edit_last_record", lines: rechain(t, edit(lines, 14, "chat11.", "chat99."), 14),
			wantLine: 16, reason: "checkpoint: signature does not verify", plainOK: true},
		{name: "edit_last_record_only", lines: edit(lines, 14, "chat11.", "chat99."),
			wantLine: 16, reason: "prev hash does not match line 15"},
		{name: "edit_last_record_kept_checkpoint", lines: rechain(t, edit(lines, 14, "chat11.", "chat99."), 14),
			keep: true, wantLine: 15, reason: "does not match the head of the checkpoint given (count 15)", plainOK: true},
		{name: "cut_tail", lines: lines[:13], keep: true,
			wantLine: 13, reason: "the checkpoint given covers 15 line(s): 2 line(s) cut from the end", plainOK: true},
		{name: "cut_tail_to_a_checkpoint", lines: lines[:7], keep: true,
			wantLine: 7, reason: "8 line(s) cut from the end", plainOK: true},
		{name: "delete_head", lines: lines[3:],
			wantLine: 1, reason: "the chain starts here without an anchor: the 3 line(s) before it were deleted", plainOK: true},
		{name: "delete_head_to_a_checkpoint", lines: lines[6:],
			wantLine: 1, reason: "without an anchor: the 6 line(s) before it", plainOK: true},
		{name: "delete_head_and_rechain", lines: rechain(t, lines[3:], 0),
			wantLine: 4, reason: "checkpoint: signature does not verify", plainOK: true},
		{name: "rechain_whole_log", lines: rechain(t, edit(lines, 2, "chat1.", "chat9."), 2),
			wantLine: 7, reason: "checkpoint: signature does not verify", plainOK: true},
		{name: "rechain_without_checkpoints", lines: rechain(t, edit(noCPs, 2, "chat2.", "chat9."), 0),
			wantLine: 12, reason: "no checkpoint in the log", plainOK: true},
		{name: "resigned_with_another_key", lines: resigned,
			wantLine: 1, reason: "signed by key", plainOK: true},
		{name: "checkpoint_edited", lines: edit(lines, 6, `"reason":"records"`, `"reason":"interval"`),
			wantLine: 7, reason: "signature does not verify"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			writeLines(t, path, tc.lines)
			opts := VerifyOptions{PublicKey: pub}
			if tc.keep {
				opts.Checkpoint = &kept
			}
			_, err := VerifyWith(opts, path)
			wantChainError(t, err, path, tc.wantLine, tc.reason)
			// Without the key, the forgeries that keep the chain
			// consistent pass: the hash chain alone only catches
			// careless edits.
			if _, err := Verify(path); (err == nil) != tc.plainOK {
				t.Errorf("plain Verify: %v, want passing: %v", err, tc.plainOK)
			}
		})
	}
}

// Every file the Writer starts begins with a signed rotate checkpoint, so
// a set whose oldest files were removed by rotation still verifies with
// the key, and a file whose first lines were cut does not.
func TestSignedRotation(t *testing.T) {
	key := testKey(t)
	pub := key.Public().(ed25519.PublicKey)
	path := filepath.Join(t.TempDir(), "audit.log")
	writeLog(t, Options{Path: path, SigningKey: key, MaxSize: 2000, MaxFiles: 3}, 30)
	set, err := RotatedSet(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(set) != 4 {
		t.Fatalf("RotatedSet = %v, want 4 files", set)
	}
	for _, f := range set {
		if c := decode(t, readLines(t, f)[0]).Checkpoint; c == nil || c.Reason != ReasonRotate {
			t.Fatalf("%s does not start with a rotate checkpoint", f)
		}
	}
	rep, err := VerifyWith(VerifyOptions{PublicKey: pub}, set...)
	if err != nil || rep.Genesis || rep.Unsigned != 0 {
		t.Fatalf("VerifyWith(rotated set) = %+v, %v", rep, err)
	}
	// The oldest file gone: still anchored.
	if _, err := VerifyWith(VerifyOptions{PublicKey: pub}, set[1:]...); err != nil {
		t.Fatalf("VerifyWith without the oldest file: %v", err)
	}
	// Its first two lines gone: caught.
	writeLines(t, set[1], readLines(t, set[1])[2:])
	_, err = VerifyWith(VerifyOptions{PublicKey: pub}, set[1:]...)
	wantChainError(t, err, set[1], 1, "without an anchor: the ")

	// Restarted right after a rotation (Path empty): the new file still
	// starts with a rotate checkpoint.
	p2 := filepath.Join(t.TempDir(), "audit.log")
	writeLog(t, Options{Path: p2, SigningKey: key}, 2)
	if err := os.Rename(p2, p2+".1"); err != nil {
		t.Fatal(err)
	}
	writeLog(t, Options{Path: p2, SigningKey: key}, 1)
	if c := decode(t, readLines(t, p2)[0]).Checkpoint; c == nil || c.Reason != ReasonRotate || c.Count != 4 {
		t.Fatalf("first line after a restart on an empty file: %+v", c)
	}
	if _, err := VerifyWith(VerifyOptions{PublicKey: pub}, p2); err != nil {
		t.Fatalf("VerifyWith of the new file alone: %v", err)
	}
}

func TestIntervalCheckpoint(t *testing.T) {
	key := testKey(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	w := openTest(t, Options{Path: path, SigningKey: key, CheckpointInterval: 20 * time.Millisecond})
	defer w.Close()
	if cp, _ := w.LastCheckpoint(); cp.Reason != ReasonOpen || cp.Count != 0 {
		t.Fatalf("first checkpoint %+v, want open at count 0", cp)
	}
	w.Log(testRecord(0))
	waitFor(t, "an interval checkpoint", func() bool {
		cp, _ := w.LastCheckpoint()
		return cp.Reason == ReasonInterval
	})
	cp, _ := w.LastCheckpoint()
	if seq, _ := w.Head(); cp.Count != 2 || seq != 3 {
		t.Fatalf("interval checkpoint covers %d lines, head seq %d; want 2 and 3", cp.Count, seq)
	}
	// No records since: no more checkpoints.
	time.Sleep(60 * time.Millisecond)
	if seq, _ := w.Head(); seq != 3 {
		t.Fatalf("head moved to %d without records", seq)
	}
	st := w.State()
	if !st.Signed || st.Checkpoint == nil || *st.Checkpoint != cp {
		t.Fatalf("State = %+v", st)
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	priv, pub, err := GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	kf, pf := filepath.Join(dir, "key.pem"), filepath.Join(dir, "key.pub")
	os.WriteFile(kf, priv, 0o600)
	os.WriteFile(pf, pub, 0o644)
	k, err := ReadPrivateKey(kf)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ReadPublicKey(pf)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Equal(k.Public()) {
		t.Fatal("public key does not match the private key")
	}
	if p2, err := ReadPublicKey(kf); err != nil || !p2.Equal(p) {
		t.Fatalf("ReadPublicKey(private key file) = %v", err)
	}
	for name, content := range map[string]string{
		"empty":             "",
		"not pem":           "hello",
		"public as private": string(pub),
	} {
		f := filepath.Join(dir, "bad")
		os.WriteFile(f, []byte(content), 0o600)
		if _, err := ReadPrivateKey(f); err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("%s: ReadPrivateKey = %v, want an error naming the file", name, err)
		}
	}

	// What openssl writes is read as it is.
	openssl := testtool.Need(t, "openssl", "openssl")
	of := filepath.Join(dir, "openssl.pem")
	if out, err := exec.Command(openssl, "genpkey", "-algorithm", "ed25519", "-out", of).CombinedOutput(); err != nil {
		t.Fatalf("openssl genpkey: %v\n%s", err, out)
	}
	opub := filepath.Join(dir, "openssl.pub")
	if out, err := exec.Command(openssl, "pkey", "-in", of, "-pubout", "-out", opub).CombinedOutput(); err != nil {
		t.Fatalf("openssl pkey: %v\n%s", err, out)
	}
	k, err = ReadPrivateKey(of)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := ReadPublicKey(opub); err != nil || !p.Equal(k.Public()) {
		t.Fatalf("openssl public key: %v", err)
	}
	rsa := filepath.Join(dir, "rsa.pem")
	if out, err := exec.Command(openssl, "genpkey", "-algorithm", "rsa", "-pkeyopt", "rsa_keygen_bits:1024", "-out", rsa).CombinedOutput(); err != nil {
		t.Fatalf("openssl genpkey rsa: %v\n%s", err, out)
	}
	if _, err := ReadPrivateKey(rsa); err == nil || !strings.Contains(err.Error(), "want an Ed25519 key") {
		t.Fatalf("ReadPrivateKey(RSA) = %v", err)
	}
}

func TestReadCheckpoint(t *testing.T) {
	key := testKey(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	lines, last := signedLog(t, path, key, 3)
	dir := t.TempDir()
	status, _ := json.Marshal(map[string]any{"path": path, "checkpoint": last}) // the shape of /api/status audit
	for name, content := range map[string][]byte{
		"object":      mustJSON(t, last),
		"log line":    lines[len(lines)-1],
		"status json": status,
	} {
		f := filepath.Join(dir, "cp.json")
		os.WriteFile(f, append(content, '\n'), 0o644)
		got, err := ReadCheckpoint(f)
		if err != nil || got != last {
			t.Errorf("%s: ReadCheckpoint = %+v, %v; want %+v", name, got, err, last)
		}
	}
	f := filepath.Join(dir, "bad.json")
	os.WriteFile(f, []byte(`{"count":3}`), 0o644)
	if _, err := ReadCheckpoint(f); err == nil || !strings.Contains(err.Error(), "not a checkpoint") {
		t.Fatalf("ReadCheckpoint(incomplete) = %v", err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A torn line moved aside in a signed log: the torn event is signed by the
// open checkpoint that follows it.
func TestSignedTornLine(t *testing.T) {
	key := testKey(t)
	path := filepath.Join(t.TempDir(), "audit.log")
	signedLog(t, path, key, 2)
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"time":"2026-03-01T01:00:00Z","seq":`)
	f.Close()
	w := openTest(t, Options{Path: path, SigningKey: key})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	n := len(lines)
	if ev := decode(t, lines[n-2]); ev.Event != EventTorn {
		t.Fatalf("line %d: %s, want the torn event", n-1, lines[n-2])
	}
	if cp := decode(t, lines[n-1]).Checkpoint; cp == nil || cp.Reason != ReasonOpen || cp.Count != uint64(n-1) {
		t.Fatalf("line %d: %s, want an open checkpoint covering the torn event", n, lines[n-1])
	}
	rep, err := VerifyWith(VerifyOptions{PublicKey: key.Public().(ed25519.PublicKey)}, path)
	if err != nil || rep.Unsigned != 0 {
		t.Fatalf("VerifyWith: %+v %v", rep, err)
	}
}
