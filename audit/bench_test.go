package audit

import (
	"path/filepath"
	"testing"
)

// BenchmarkLog measures the caller's cost of Log (the DNS hot path), with all
// goroutines logging at once; records the writer cannot keep up with are
// dropped, as in production.
func BenchmarkLog(b *testing.B) {
	w := openTest(b, Options{Path: filepath.Join(b.TempDir(), "audit.log")})
	r := testRecord(0)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			w.Log(r)
		}
	})
	b.StopTimer()
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(w.Dropped())/float64(b.N), "dropped/op")
}

// BenchmarkWrite measures the writer goroutine's work per record: chaining,
// encoding, hashing and buffered writing. It calls write directly (the
// goroutine stays idle: nothing is queued) and flushes every 256 records.
func BenchmarkWrite(b *testing.B) {
	path := filepath.Join(b.TempDir(), "audit.log")
	w := openTest(b, Options{Path: path})
	r := testRecord(0)
	r.Time = fixedNow
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		w.write(r)
		if n++; n%256 == 0 {
			w.flush()
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	if rep, err := Verify(path); err != nil || rep.Records != n {
		b.Fatalf("Verify: %+v %v, want %d records", rep, err, n)
	}
}

// BenchmarkVerify measures Verify per record.
func BenchmarkVerify(b *testing.B) {
	path := filepath.Join(b.TempDir(), "audit.log")
	writeLog(b, Options{Path: path, QueueSize: 10000}, 10000)
	b.ResetTimer()
	for b.Loop() {
		if _, err := Verify(path); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/10000, "ns/record")
}
