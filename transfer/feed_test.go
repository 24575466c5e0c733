package transfer

import (
	"context"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// primary is an in-process authoritative server on 127.0.0.1 (real TCP
// socket) that answers AXFR and IXFR with what the test sets.
type primary struct {
	addr netip.AddrPort
	mu   sync.Mutex
	axfr []dns.RR                     // the whole answer, SOA first and last
	ixfr func(serial uint32) []dns.RR // nil: answer IXFR with the AXFR
	raw  func(q *dns.Msg) []byte      // a raw answer instead (malformed)
	n    atomic.Int32                 // transfers served
	keys map[string]string
}

func startPrimary(t *testing.T, keys map[string]string) *primary {
	t.Helper()
	p := &primary{keys: keys}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.addr = netip.MustParseAddrPort(l.Addr().String())
	srv := &dns.Server{Listener: l, Handler: dns.HandlerFunc(p.serve), TsigSecret: keys}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })
	return p
}

func (p *primary) set(axfr []dns.RR, ixfr func(uint32) []dns.RR) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.axfr, p.ixfr, p.raw = axfr, ixfr, nil
}

func (p *primary) serve(w dns.ResponseWriter, q *dns.Msg) {
	p.n.Add(1)
	p.mu.Lock()
	axfr, ixfr, raw := p.axfr, p.ixfr, p.raw
	p.mu.Unlock()
	if p.keys != nil && (q.IsTsig() == nil || w.TsigStatus() != nil) {
		r := new(dns.Msg)
		r.SetRcode(q, dns.RcodeNotAuth)
		_ = w.WriteMsg(r)
		return
	}
	if raw != nil {
		_, _ = w.Write(raw(q))
		return
	}
	rrs := axfr
	if q.Question[0].Qtype == dns.TypeIXFR && ixfr != nil {
		rrs = ixfr(q.Ns[0].(*dns.SOA).Serial)
	}
	ch := make(chan *dns.Envelope, 1)
	ch <- &dns.Envelope{RR: rrs}
	close(ch)
	tr := new(dns.Transfer)
	_ = tr.Out(w, q, ch)
}

func rr(t testing.TB, s string) dns.RR {
	t.Helper()
	r, err := dns.NewRR(s)
	if err != nil {
		t.Fatalf("%s: %v", s, err)
	}
	return r
}

func soa(t testing.TB, zone string, serial int) dns.RR {
	return rr(t, zone+" 60 IN SOA localhost. admin.rpz.test. "+strconv.Itoa(serial)+" 1 1 2 60")
}

// zoneV1 is serial 1: four triggers.
func zoneV1(t testing.TB) []dns.RR {
	return []dns.RR{
		soa(t, "rpz.test.", 1),
		rr(t, "rpz.test. 60 IN NS localhost."),
		rr(t, "a.example.rpz.test. 60 IN CNAME ."),
		rr(t, "b.example.rpz.test. 60 IN CNAME ."),
		rr(t, "*.c.example.rpz.test. 60 IN CNAME *."),
		rr(t, "d.example.rpz.test. 60 IN A 192.0.2.1"),
		soa(t, "rpz.test.", 1),
	}
}

func newFeed(t *testing.T, p *primary, o Options) *Feed {
	o.Name = "j/" + t.Name()
	o.Zone = "rpz.test."
	o.Primaries = []netip.AddrPort{p.addr}
	o.Timeout = 5 * time.Second
	return New(o)
}

func TestFeedAXFRThenIXFR(t *testing.T) {
	p := startPrimary(t, nil)
	p.set(zoneV1(t), nil)
	f := newFeed(t, p, Options{})
	if err := f.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	text, err := f.Text()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"a.example.rpz.test.", "*.c.example.rpz.test.", "192.0.2.1"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("zone text has no %s:\n%s", want, text)
		}
	}
	if st := f.Status(); st.Serial != 1 || st.Records != 5 || st.Primary != p.addr.String() {
		t.Errorf("status %+v", st)
	}

	// An IXFR 1 → 3 in two difference sequences: b removed, e added, then
	// a's action changed.
	p.set(nil, func(serial uint32) []dns.RR {
		if serial != 1 {
			t.Errorf("IXFR from serial %d, want 1", serial)
		}
		return []dns.RR{
			soa(t, "rpz.test.", 3),
			soa(t, "rpz.test.", 1), rr(t, "b.example.rpz.test. 60 IN CNAME ."),
			soa(t, "rpz.test.", 2), rr(t, "e.example.rpz.test. 60 IN CNAME ."),
			soa(t, "rpz.test.", 2), rr(t, "a.example.rpz.test. 60 IN CNAME ."),
			soa(t, "rpz.test.", 3), rr(t, "a.example.rpz.test. 60 IN CNAME rpz-drop."),
			soa(t, "rpz.test.", 3),
		}
	})
	upd, err := f.Refresh(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if upd == nil || upd.Full || upd.OldSerial != 1 || upd.Serial != 3 || upd.Owners != 3 {
		t.Fatalf("update %+v", upd)
	}
	if !strings.Contains(string(upd.Old), "b.example.rpz.test.") || strings.Contains(string(upd.New), "b.example.rpz.test.") ||
		!strings.Contains(string(upd.New), "rpz-drop.") || !strings.Contains(string(upd.New), "e.example.rpz.test.") {
		t.Errorf("old:\n%s\nnew:\n%s", upd.Old, upd.New)
	}
	if strings.Contains(string(upd.New), "d.example") {
		t.Errorf("untouched owner in the delta:\n%s", upd.New)
	}
	if st := f.Status(); st.Serial != 3 || st.Records != 5 {
		t.Errorf("status after IXFR %+v", st)
	}

	// Up to date: the single SOA.
	p.set(nil, func(uint32) []dns.RR { return []dns.RR{soa(t, "rpz.test.", 3)} })
	if upd, err := f.Refresh(context.Background()); err != nil || upd != nil {
		t.Errorf("up to date: %+v %v", upd, err)
	}

	// An IXFR answered with the whole zone replaces it.
	full := zoneV1(t)
	full[0], full[len(full)-1] = soa(t, "rpz.test.", 4), soa(t, "rpz.test.", 4)
	p.set(full, nil)
	if upd, err := f.Refresh(context.Background()); err != nil || upd == nil || !upd.Full || upd.Serial != 4 {
		t.Errorf("IXFR answered in full: %+v %v", upd, err)
	}
}

// TestFeedRejects: a transfer whose apex does not match, with a record
// outside the zone, malformed, or past max_shrink changes nothing.
func TestFeedRejects(t *testing.T) {
	p := startPrimary(t, nil)
	p.set(zoneV1(t), nil)
	f := newFeed(t, p, Options{MaxShrink: 0.5})
	if err := f.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	before, _ := f.Text()
	for _, tc := range []struct {
		name string
		set  func()
		want string
	}{
		{"apex mismatch", func() {
			z := zoneV1(t)
			z[0], z[len(z)-1] = soa(t, "other.test.", 9), soa(t, "other.test.", 9)
			p.set(z, nil)
		}, "does not match zone"},
		{"record outside the zone", func() {
			z := zoneV1(t)
			z[0], z[len(z)-1] = soa(t, "rpz.test.", 9), soa(t, "rpz.test.", 9)
			z = append(z[:2], append([]dns.RR{rr(t, "x.other.test. 60 IN CNAME .")}, z[2:]...)...)
			p.set(z, nil)
		}, "is not in zone"},
		{"max_shrink", func() {
			p.set([]dns.RR{soa(t, "rpz.test.", 9), rr(t, "a.example.rpz.test. 60 IN CNAME ."), soa(t, "rpz.test.", 9)}, nil)
		}, "max_shrink"},
		{"malformed", func() {
			p.mu.Lock()
			p.raw = func(q *dns.Msg) []byte {
				r := new(dns.Msg)
				r.SetReply(q)
				r.Answer = []dns.RR{soa(t, "rpz.test.", 9), rr(t, "a.example.rpz.test. 60 IN A 192.0.2.9")}
				b, _ := r.Pack()
				b[len(b)-5] = 9 // the A record's RDLENGTH (low byte): 9 bytes that are not there
				return b
			}
			p.mu.Unlock()
		}, ""},
	} {
		tc.set()
		upd, err := f.Refresh(context.Background())
		if err == nil || upd != nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: update %+v, error %v; want an error with %q", tc.name, upd, err, tc.want)
		}
		if st := f.Status(); st.Serial != 1 || st.LastError == "" {
			t.Errorf("%s: status %+v, want serial 1 kept and the error", tc.name, st)
		}
		if after, _ := f.Text(); string(after) != string(before) {
			t.Errorf("%s: the zone changed", tc.name)
		}
	}
	if f.Status().Rejected < 3 {
		t.Errorf("rejected %d, want at least 3", f.Status().Rejected)
	}
}

// TestFeedIXFRUndo: an IXFR that deletes a record the zone does not have
// leaves the zone as it was (and falls back to AXFR).
func TestFeedIXFRUndo(t *testing.T) {
	p := startPrimary(t, nil)
	p.set(zoneV1(t), nil)
	f := newFeed(t, p, Options{})
	if err := f.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	before, _ := f.Text()
	p.set(zoneV1(t), func(uint32) []dns.RR {
		return []dns.RR{
			soa(t, "rpz.test.", 2),
			soa(t, "rpz.test.", 1), rr(t, "a.example.rpz.test. 60 IN CNAME ."), rr(t, "zz.example.rpz.test. 60 IN CNAME ."),
			soa(t, "rpz.test.", 2),
			soa(t, "rpz.test.", 2),
		}
	})
	upd, err := f.Refresh(context.Background())
	// The AXFR fallback finds serial 1 again: a full "update" to the same content.
	if err != nil || upd == nil || !upd.Full {
		t.Fatalf("update %+v, error %v; want the AXFR fallback", upd, err)
	}
	after, _ := f.Text()
	if len(after) != len(before) {
		t.Errorf("zone after the undone IXFR:\n%s\nwant:\n%s", after, before)
	}
}

func TestFeedTSIG(t *testing.T) {
	secret := "c2VjcmV0LWZvci10aGUtZmVlZC11bml0LXRlc3Qh"
	p := startPrimary(t, map[string]string{"k.": secret})
	p.set(zoneV1(t), nil)
	for _, tc := range []struct {
		key *Key
		ok  bool
	}{
		{nil, false},
		{&Key{Name: "k.", Algorithm: dns.HmacSHA256, Secret: "d3Jvbmctc2VjcmV0LXdyb25nLXNlY3JldCEhIQ=="}, false},
		{&Key{Name: "k.", Algorithm: dns.HmacSHA256, Secret: secret}, true},
	} {
		f := newFeed(t, p, Options{Key: tc.key})
		if err := f.Load(context.Background()); (err == nil) != tc.ok {
			t.Errorf("key %+v: %v, want ok=%v", tc.key, err, tc.ok)
		}
	}
}

// TestFeedCacheAndExpire: a feed whose primary is gone loads the cached
// copy; past the SOA expire time without a refresh its Text fails.
func TestFeedCacheAndExpire(t *testing.T) {
	dir := t.TempDir()
	p := startPrimary(t, nil)
	p.set(zoneV1(t), nil)
	f := newFeed(t, p, Options{CacheDir: dir})
	if err := f.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	want, _ := f.Text()

	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	dead := &primary{addr: netip.MustParseAddrPort("127.0.0.1:9")} // discard: nothing answers
	g := newFeed(t, dead, Options{CacheDir: dir, Now: now, MinRefresh: time.Millisecond, Timeout: 200 * time.Millisecond})
	g.opts.Name = f.opts.Name // the same source
	g.opts.Timeout = 200 * time.Millisecond
	if err := g.Load(context.Background()); err != nil {
		t.Fatalf("load from the cache: %v", err)
	}
	got, err := g.Text()
	if err != nil || len(got) != len(want) || g.Status().Primary != "cache" {
		t.Fatalf("cached text (%v, primary %q):\n%s\nwant:\n%s", err, g.Status().Primary, got, want)
	}
	updates := make(chan *Update, 4)
	g.opts.OnUpdate = func(u *Update) { updates <- u }
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clock.Add(int64(time.Hour)) // past the expire (2 s) since the cache was written
	go g.Run(ctx)
	select {
	case u := <-updates:
		if !u.Expired {
			t.Fatalf("update %+v, want Expired", u)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no expiry")
	}
	if _, err := g.Text(); err != ErrExpired {
		t.Errorf("Text after expiry: %v", err)
	}
}

func TestFeedNotify(t *testing.T) {
	p := startPrimary(t, nil)
	f := newFeed(t, p, Options{})
	if f.Notify(netip.MustParseAddr("127.0.0.2")) {
		t.Error("NOTIFY from a non-primary accepted")
	}
	if !f.Notify(netip.MustParseAddr("127.0.0.1")) {
		t.Error("NOTIFY from the primary refused")
	}
	st := f.Status()
	if st.NotifyRefused != 1 || st.LastNotify.IsZero() {
		t.Errorf("status %+v", st)
	}
	select {
	case <-f.kick:
	default:
		t.Error("no refresh scheduled")
	}
}

// TestFeedOpen: the zone read through Open is the zone of its serial, and
// no transfer changes it until the reader is closed.
func TestFeedOpen(t *testing.T) {
	p := startPrimary(t, nil)
	p.set(zoneV1(t), nil)
	f := newFeed(t, p, Options{})
	if err := f.Load(context.Background()); err != nil {
		t.Fatal(err)
	}
	rd, serial, err := f.Open()
	if err != nil || serial != 1 {
		t.Fatalf("Open: serial %d, %v", serial, err)
	}
	v2 := []dns.RR{soa(t, "rpz.test.", 2), rr(t, "rpz.test. 60 IN NS localhost."), rr(t, "e.example.rpz.test. 60 IN CNAME ."),
		soa(t, "rpz.test.", 2)}
	p.set(v2, nil)
	refreshed := make(chan error, 1)
	go func() {
		_, err := f.Refresh(context.Background())
		refreshed <- err
	}()
	text, err := io.ReadAll(io.LimitReader(rd, 20))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-refreshed:
		t.Fatalf("a transfer ran while the zone was being read (%v)", err)
	case <-time.After(100 * time.Millisecond):
	}
	rest, err := io.ReadAll(rd)
	if err != nil {
		t.Fatal(err)
	}
	text = append(text, rest...)
	if !strings.Contains(string(text), "a.example.rpz.test.") || strings.Contains(string(text), "e.example") {
		t.Errorf("zone read:\n%s", text)
	}
	_ = rd.Close() // read to the end: already released; a second Close is harmless
	if err := <-refreshed; err != nil {
		t.Fatal(err)
	}
	if st := f.Status(); st.Serial != 2 {
		t.Errorf("serial %d after the refresh, want 2", st.Serial)
	}
	f.mu.Lock()
	f.st.Expired = true
	f.mu.Unlock()
	if _, _, err := f.Open(); err != ErrExpired {
		t.Errorf("Open of an expired zone: %v", err)
	}
	if _, err := f.Refresh(context.Background()); err != nil { // Open released the lock
		t.Fatal(err)
	}
}
