package resolver

import (
	"bytes"
	"fmt"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// checkCache walks every shard's ring from head to tail and checks the
// invariants the cache relies on: records are whole and within one chunk,
// each index position is a live record of that key, the counters match the
// live records, and the chunks and entries stay within their bounds.
func checkCache(t *testing.T, c *Cache) {
	t.Helper()
	var chunkBytes int64
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		if s.tail-s.head > s.ring {
			t.Fatalf("shard %d: %d bytes in a ring of %d", i, s.tail-s.head, s.ring)
		}
		live, n := int64(0), int64(0)
		for pos := s.head; pos < s.tail; {
			hdr := s.at(s.off(pos), 8)
			size := recordLen(hdr)
			if size < 8 || size%8 != 0 || int(pos%uint64(s.chunk))+size > s.chunk {
				t.Fatalf("shard %d: record of %d bytes at %d (chunk %d)", i, size, pos, s.chunk)
			}
			if hdr[recKind] == kindEntry {
				if p, ok := s.index.get(recordKey(s.at(s.off(pos), recHdr)).h); ok && p == s.off(pos) {
					live += int64(size)
					n++
					var e entry
					if !e.unmarshal(s.at(s.off(pos), size), c.epoch) {
						t.Fatalf("shard %d: live record at %d does not decode", i, pos)
					}
				}
			} else if hdr[recKind] != kindPadding {
				t.Fatalf("shard %d: record kind %d at %d", i, hdr[recKind], pos)
			}
			pos += uint64(size)
		}
		if n != int64(s.index.len()) || n != s.entries.Load() || live != s.live.Load() {
			t.Fatalf("shard %d: %d live records of %d bytes; index %d, counted %d entries of %d bytes", i, n, live, s.index.len(), s.entries.Load(), s.live.Load())
		}
		if n > int64(s.maxEntries) {
			t.Fatalf("shard %d: %d entries over its bound %d", i, n, s.maxEntries)
		}
		for _, ch := range s.chunks {
			chunkBytes += int64(len(ch))
		}
		s.mu.Unlock()
	}
	if chunkBytes > c.opts.MaxBytes {
		t.Fatalf("arenas of %d bytes over MaxBytes %d", chunkBytes, c.opts.MaxBytes)
	}
}

// txtAnswer is an answer of about size bytes (one TXT record), with a CNAME
// in front when cname is set.
func txtAnswer(name string, size int, cname bool) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(name, dns.TypeTXT)
	m.Response = true
	owner := name
	if cname {
		owner = "target." + name
		m.Answer = append(m.Answer, &dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 300}, Target: owner})
	}
	var txt []string
	for size > 0 {
		n := min(size, 255)
		txt = append(txt, strings.Repeat("x", n))
		size -= n
	}
	m.Answer = append(m.Answer, &dns.TXT{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeTXT, Class: dns.ClassINET, Ttl: 300}, Txt: txt})
	return m
}

// TestCacheBounds: answers of many sizes never take the arenas past
// MaxBytes or a shard past its entries, evictions are reported, and the
// rings stay sound, with small and large bounds (one shard and several).
func TestCacheBounds(t *testing.T) {
	for _, tc := range []struct {
		size     int
		maxBytes int64
	}{{50, 4096}, {100000, 100 << 10}, {64, 1 << 20}, {100000, 1 << 20}, {5, 1 << 20}} {
		t.Run(fmt.Sprintf("%d/%d", tc.size, tc.maxBytes), func(t *testing.T) {
			evicted := 0
			c := NewCache(CacheOptions{Size: tc.size, MaxBytes: tc.maxBytes, OnEvict: func() { evicted++ }})
			now := time.Now()
			stored := 0
			for i := 0; i < 3000; i++ {
				name := "n" + strconv.Itoa(i%1500) + ".example."
				req := &Request{Name: name, Qtype: dns.TypeTXT, DO: i%3 == 0}
				if c.put(req, txtAnswer(name, (i*37)%3000, i%2 == 0), now) == nil {
					t.Fatalf("answer %d not cacheable", i)
				}
				stored++
				if i%97 == 0 {
					checkCache(t, c)
				}
				c.get("n"+strconv.Itoa(i/2)+".example.", dns.TypeTXT, false, false) // references for CLOCK
			}
			checkCache(t, c)
			if c.Len() == 0 || c.Bytes() == 0 || c.Bytes() > tc.maxBytes || c.Len() > tc.size {
				t.Fatalf("%d entries of %d bytes under bounds %d entries, %d bytes", c.Len(), c.Bytes(), tc.size, tc.maxBytes)
			}
			if evicted == 0 {
				t.Error("no eviction reported")
			}
		})
	}
}

// TestCacheRoundTrip: what get and load return is what put stored (the
// answer bytes, the TTL offsets, the CNAME targets, the scalars); a
// replaced answer leaves one entry; a reused entry is refilled completely.
func TestCacheRoundTrip(t *testing.T) {
	c := NewCache(CacheOptions{Size: 1000})
	now := time.Now()
	put := func(name string, size int, cname bool, do bool) *entry {
		e := c.put(&Request{Name: name, Qtype: dns.TypeTXT, DO: do}, txtAnswer(name, size, cname), now)
		if e == nil {
			t.Fatalf("%s not cacheable", name)
		}
		return e
	}
	same := func(got, want *entry) {
		t.Helper()
		if got == nil {
			t.Fatal("not cached")
		}
		if got.name != want.name || !bytes.Equal(got.msg, want.msg) || !bytes.Equal(got.ttls, want.ttls) || got.qEnd != want.qEnd ||
			got.ttl != want.ttl || got.rcode != want.rcode || got.qtype != want.qtype || got.flags != want.flags ||
			!got.stored.Equal(want.stored) || fmt.Sprint(got.cnames) != fmt.Sprint(want.cnames) {
			t.Fatalf("cached %+v, stored %+v", got, want)
		}
	}
	a := put("a.example.", 100, true, false)
	b := put("b.example.", 2000, false, true)
	same(c.get("a.example.", dns.TypeTXT, false, false), a)
	same(c.get("b.example.", dns.TypeTXT, true, false), b)
	if c.get("b.example.", dns.TypeTXT, false, false) != nil || c.get("a.example.", dns.TypeA, false, false) != nil {
		t.Fatal("a different key was found")
	}
	var w entry
	same(c.load(&w, "b.example.", dns.TypeTXT, true, false), b)
	same(c.load(&w, "a.example.", dns.TypeTXT, false, false), a)
	if len(a.cnames) != 1 || a.cnames[0] != "target.a.example." {
		t.Fatalf("cnames %q", a.cnames)
	}
	a2 := put("a.example.", 500, false, false)
	same(c.get("a.example.", dns.TypeTXT, false, false), a2)
	if c.Len() != 2 || c.Bytes() != int64(a2.recordSize()+b.recordSize()) {
		t.Fatalf("after a replacement: %d entries of %d bytes", c.Len(), c.Bytes())
	}
	checkCache(t, c)

	// Another name stored under a's key (a hash collision) is not a's.
	other := put("other.example.", 10, false, false)
	c.store(c.key("a.example.", dns.TypeTXT, false, false), other)
	if c.get("a.example.", dns.TypeTXT, false, false) != nil {
		t.Fatal("a colliding name was served")
	}

	c.Purge()
	if c.Len() != 0 || c.Bytes() != 0 || c.get("b.example.", dns.TypeTXT, true, false) != nil {
		t.Fatalf("after Purge: %d entries of %d bytes", c.Len(), c.Bytes())
	}
	checkCache(t, c)
	b = put("b.example.", 2000, false, true)
	same(c.get("b.example.", dns.TypeTXT, true, false), b)
}

// TestCacheTooBig: an answer whose record is larger than a chunk is served
// from the entry put returns but not cached.
func TestCacheTooBig(t *testing.T) {
	c := NewCache(CacheOptions{Size: 100, MaxBytes: 4096})
	if e := c.put(&Request{Name: "big.example.", Qtype: dns.TypeTXT}, txtAnswer("big.example.", 5000, false), time.Now()); e == nil || len(e.msg) < 5000 {
		t.Fatal("no entry for a big answer")
	}
	if c.Len() != 0 || c.get("big.example.", dns.TypeTXT, false, false) != nil {
		t.Fatal("an answer larger than the arena was cached")
	}
	// A big answer replacing a small one drops the small one.
	c.put(&Request{Name: "big.example.", Qtype: dns.TypeTXT}, txtAnswer("big.example.", 100, false), time.Now())
	if c.Len() != 1 {
		t.Fatal("small answer not cached")
	}
	c.put(&Request{Name: "big.example.", Qtype: dns.TypeTXT}, txtAnswer("big.example.", 5000, false), time.Now())
	if c.Len() != 0 || c.Bytes() != 0 || c.get("big.example.", dns.TypeTXT, false, false) != nil {
		t.Fatal("the answer a big one replaced is still served")
	}
	if NewCache(CacheOptions{Size: 1, MaxBytes: 100}).put(&Request{Name: "a.example.", Qtype: dns.TypeTXT}, txtAnswer("a.example.", 1000, false), time.Now()) == nil {
		t.Fatal("a tiny MaxBytes cache failed")
	}
}

// TestCacheSecondChance: an entry looked up between stores survives a scan
// of new names that evicts everything else (CLOCK), one that is never
// looked up does not.
func TestCacheSecondChance(t *testing.T) {
	c := NewCache(CacheOptions{Size: 16, MaxBytes: 4096}) // one shard
	now := time.Now()
	c.put(&Request{Name: "hot.example.", Qtype: dns.TypeA}, cacheBenchAnswer("hot.example."), now)
	c.put(&Request{Name: "cold.example.", Qtype: dns.TypeA}, cacheBenchAnswer("cold.example."), now)
	for i := 0; i < 200; i++ {
		name := "scan" + strconv.Itoa(i) + ".example."
		c.put(&Request{Name: name, Qtype: dns.TypeA}, cacheBenchAnswer(name), now)
		if c.get("hot.example.", dns.TypeA, false, false) == nil {
			t.Fatalf("the looked-up entry was evicted after %d stores", i+1)
		}
	}
	if c.get("cold.example.", dns.TypeA, false, false) != nil {
		t.Fatal("an entry never looked up survived the scan")
	}
	checkCache(t, c)
}

// TestClaimPrefetch: a refresh is claimed once, for an entry found before,
// in the last tenth of its lifetime, and again after endPrefetch.
func TestClaimPrefetch(t *testing.T) {
	c := NewCache(CacheOptions{Size: 100})
	now := time.Now()
	name := "p.example."
	c.put(&Request{Name: name, Qtype: dns.TypeA}, cacheBenchAnswer(name), now) // lifetime 60 s
	late := now.Add(55 * time.Second)
	if e := c.get(name, dns.TypeA, false, false); e.claimPrefetch(late) {
		t.Fatal("claimed on the first hit")
	}
	e := c.get(name, dns.TypeA, false, false)
	if e.claimPrefetch(now.Add(50 * time.Second)) {
		t.Fatal("claimed with a sixth of the lifetime left")
	}
	if !e.claimPrefetch(late) {
		t.Fatal("not claimed: popular, in the last tenth")
	}
	if c.get(name, dns.TypeA, false, false).claimPrefetch(late) {
		t.Fatal("claimed twice")
	}
	e.endPrefetch()
	if !c.get(name, dns.TypeA, false, false).claimPrefetch(late) {
		t.Fatal("not claimed after endPrefetch")
	}
	c.put(&Request{Name: name, Qtype: dns.TypeA}, cacheBenchAnswer(name), now)
	if e.claimPrefetch(late) {
		t.Fatal("claimed for a replaced record")
	}
}

// FuzzCacheRecord: any bytes read as a record either fail unmarshal or
// give an entry that appendReply can serve and that marshals back to a
// record giving the same entry.
func FuzzCacheRecord(f *testing.F) {
	c := NewCache(CacheOptions{Size: 10})
	for _, m := range []*dns.Msg{txtAnswer("a.example.", 50, true), cacheBenchAnswer("b.example.")} {
		e := c.put(&Request{Name: m.Question[0].Name, Qtype: m.Question[0].Qtype}, m, time.Now())
		rec := make([]byte, e.recordSize())
		e.marshal(rec, c.key(e.name, e.qtype, false, false), 12345)
		f.Add(rec)
	}
	epoch := time.Now()
	f.Fuzz(func(t *testing.T, rec []byte) {
		var e entry
		if !e.unmarshal(rec, epoch) {
			return
		}
		e.name = "x.example."
		q := question{qEnd: e.qEnd, edns: true}
		e.appendReply(nil, e.msg, &q, epoch.Add(time.Minute), 30, false)
		k := recordKey(rec)
		out := make([]byte, e.recordSize())
		e.marshal(out, k, int64(e.stored.Sub(epoch)))
		var back entry
		if !back.unmarshal(out, epoch) || !bytes.Equal(back.msg, e.msg) || !bytes.Equal(back.ttls, e.ttls) ||
			fmt.Sprint(back.cnames) != fmt.Sprint(e.cnames) || back.ttl != e.ttl || back.qEnd != e.qEnd ||
			!back.stored.Equal(e.stored) || string(recordName(out)) != e.name || recordKey(out) != k {
			t.Fatalf("round trip: %+v, then %+v", e, back)
		}
	})
}

// TestCacheConcurrent: stores, lookups, prefetch claims and purges from
// several goroutines (run with -race) leave sound rings, and every entry a
// lookup returns is the answer stored for its name.
func TestCacheConcurrent(t *testing.T) {
	c := NewCache(CacheOptions{Size: 200, MaxBytes: 64 << 10})
	now := time.Now()
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var e entry
			for i := 0; i < 3000; i++ {
				name := "c" + strconv.Itoa((i*7+g)%400) + ".example."
				switch {
				case i%3 == 0:
					c.put(&Request{Name: name, Qtype: dns.TypeTXT}, txtAnswer(name, (i*13)%1500, i%2 == 0), now)
				case g == 0 && i%500 == 1:
					c.Purge()
				default:
					if got := c.load(&e, name, dns.TypeTXT, false, false); got != nil {
						var m dns.Msg
						if err := m.Unpack(got.msg); err != nil || m.Question[0].Name != name {
							t.Errorf("%s: cached %v %v", name, m.Question, err)
							return
						}
						got.claimPrefetch(now.Add(299 * time.Second))
					}
				}
			}
		}()
	}
	wg.Wait()
	checkCache(t, c)
}

// TestCacheHoldsNoObjects: the answers a cache holds are not heap objects
// the GC has to mark (the point of the arena): 20,000 entries add a few
// chunks and the index's groups, not objects per entry.
func TestCacheHoldsNoObjects(t *testing.T) {
	const n = 20_000
	c := NewCache(CacheOptions{Size: 2 * n})
	now := time.Now()
	msgs := make([]*dns.Msg, n)
	names := make([]string, n)
	for i := range msgs {
		names[i] = "obj" + strconv.Itoa(i) + ".example."
		msgs[i] = cacheBenchAnswer(names[i])
	}
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	before := ms.HeapObjects
	for i := range msgs {
		c.put(&Request{Name: names[i], Qtype: dns.TypeA}, msgs[i], now)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	if c.Len() != n {
		t.Fatalf("%d of %d entries cached", c.Len(), n)
	}
	if per := (float64(ms.HeapObjects) - float64(before)) / n; per > 0.1 {
		t.Errorf("%.2f heap objects per cached entry, want none", per)
	}
	runtime.KeepAlive(c)
	runtime.KeepAlive(msgs) // the answers stay, so their objects do not count
}
