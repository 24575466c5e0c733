package audit

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzVerify feeds arbitrary bytes to Verify as a log file (alone and after a
// valid file) and to Open's reading of the last line: neither may panic, and
// Verify's only error for a readable file is a *ChainError.
func FuzzVerify(f *testing.F) {
	dir := f.TempDir()
	good := filepath.Join(dir, "good.log")
	writeLog(f, Options{Path: good}, 3)
	b, err := os.ReadFile(good)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(b[:len(b)-1])
	f.Add(b[:len(b)/2])
	f.Add([]byte{})
	f.Add([]byte("\n"))
	f.Add([]byte("{}\n"))
	f.Add([]byte("null\n"))
	f.Add([]byte(`{"seq":18446744073709551615,"prev":"` + Genesis + `"}` + "\n" + `{"seq":0,"prev":"` + Genesis + `"}` + "\n"))
	f.Add([]byte(`{"seq":1,"prev":"` + Genesis + `","time":"10000-01-01T00:00:00Z"}` + "\n"))
	// A signed log (checkpoints, a torn event), and its checkpoints alone.
	key := testKey(f)
	pub := key.Public().(ed25519.PublicKey)
	signed := filepath.Join(dir, "signed.log")
	writeLog(f, Options{Path: signed, SigningKey: key, CheckpointRecords: 2}, 3)
	sf, err := os.OpenFile(signed, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		f.Fatal(err)
	}
	sf.WriteString(`{"seq":`)
	sf.Close()
	w, err := Open(Options{Path: signed, SigningKey: key})
	if err != nil {
		f.Fatal(err)
	}
	w.Close()
	kept, _ := w.LastCheckpoint()
	b, err = os.ReadFile(signed)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	var cps []byte
	for _, l := range bytes.SplitAfter(b, []byte{'\n'}) {
		if bytes.Contains(l, []byte(`"event":"checkpoint"`)) {
			cps = append(cps, l...)
		}
	}
	f.Add(cps)

	// Each fuzzing process runs its inputs one at a time, so they can share
	// one file instead of a new directory each (which costs more than the
	// test itself).
	path := filepath.Join(dir, "audit.log")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o640); err != nil {
			t.Fatal(err)
		}
		_ = os.Remove(path + TornSuffix) // Open may move a torn line there
		var ce *ChainError
		rep, err := Verify(path)
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("Verify: %v (%T), want nil or *ChainError", err, err)
		}
		if err == nil && rep.Files != 1 {
			t.Fatalf("Verify succeeded with Files = %d", rep.Files)
		}
		if _, err := Verify(good, path); err != nil && !errors.As(err, &ce) {
			t.Fatalf("Verify(good, fuzz): %v", err)
		}
		rep, err = VerifyWith(VerifyOptions{PublicKey: pub, Checkpoint: &kept}, path)
		if err != nil && !errors.As(err, &ce) {
			t.Fatalf("VerifyWith: %v (%T), want nil or *ChainError", err, err)
		}
		if err == nil && (!rep.CheckpointMatched || rep.Checkpoints == 0) {
			t.Fatalf("VerifyWith succeeded without the kept checkpoint: %+v", rep)
		}
		// Open continues a chain from the last valid line (after moving a
		// torn one aside); with the writer it must then produce a file
		// that verifies from there on.
		w, err := Open(Options{Path: path})
		if err != nil {
			return
		}
		w.Log(testRecord(0))
		if err := w.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if verr := tailVerifies(t, path, dir); verr != nil {
			t.Fatalf("after Open+Log, the last two lines do not chain: %v", verr)
		}
	})
}

// tailVerifies checks that the last record of path chains onto the line
// before it (or is a genesis record when it is alone).
func tailVerifies(t *testing.T, path, dir string) error {
	lines := readLines(t, path)
	last := lines[len(lines)-1]
	r := decode(t, last)
	if len(lines) == 1 || r.Seq == 1 && r.Prev == Genesis {
		if r.Seq != 1 || r.Prev != Genesis {
			return errors.New("lone record is not a genesis record")
		}
		return nil
	}
	tail := filepath.Join(dir, "tail.log")
	writeLines(t, tail, lines[len(lines)-2:])
	_, err := Verify(tail)
	return err
}

// FuzzReadCheckpoint feeds arbitrary bytes to ReadCheckpoint, as a kept
// checkpoint file: it never panics, and what it accepts has a valid head
// and a signature that Verify can check without panicking.
func FuzzReadCheckpoint(f *testing.F) {
	key := testKey(f)
	pub := key.Public().(ed25519.PublicKey)
	cp := Checkpoint{Count: 3, Head: Genesis, Reason: ReasonClose}
	cp.sign(key)
	b, _ := json.Marshal(cp)
	f.Add(b)
	f.Add([]byte(`{"checkpoint":` + string(b) + `}`))
	f.Add([]byte(`{"count":1}`))
	f.Add([]byte(`[]`))
	path := filepath.Join(f.TempDir(), "cp.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		c, err := ReadCheckpoint(path)
		if err != nil {
			return
		}
		if !validHash(c.Head) || c.Sig == "" {
			t.Fatalf("accepted %+v", c)
		}
		_ = c.Verify(pub)
	})
}
