package conformance

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/app"
	"github.com/jurisdns/jurisdns/config"
)

// waitLimit bounds every wait of the suite (a server coming up, a reply, a
// connection being closed) so that a broken server fails a test instead of
// hanging it. No test asserts on how long anything takes.
const waitLimit = 10 * time.Second

var nets = []string{"udp", "tcp"}

// logBuffer collects a server's log lines; they are printed only when the
// test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// jurisdns is a whole jurisdns (app.New + Start) on 127.0.0.1.
type jurisdns struct {
	addr string
	app  *app.App
}

// jopts changes the configuration of startJurisdns.
type jopts struct {
	// idle is server.tcp_idle_timeout.
	idle time.Duration
	// extra is YAML for top-level keys the base configuration does not set
	// (cache, access, zones, ...).
	extra string
}

// startJurisdns writes a configuration file into t.TempDir() that listens on
// 127.0.0.1:0 and forwards only to upstreams, starts a jurisdns on it with
// app.New and Start, and shuts it down in t.Cleanup. The shipped
// jurisdictions stay on (the default), as in production; no name the suite
// uses is on their lists.
func startJurisdns(t testing.TB, upstreams []string, o jopts) *jurisdns {
	t.Helper()
	if o.idle == 0 {
		o.idle = 2 * time.Second
	}
	var ups []string
	for _, u := range upstreams {
		ups = append(ups, fmt.Sprintf("%q", u))
	}
	yaml := fmt.Sprintf(`listen: ["127.0.0.1:0"]
upstreams:
  servers: [%s]
  timeout: 3s
  try_timeout: 1s
server:
  udp_workers: 2
  tcp_idle_timeout: %s
  shutdown_timeout: 2s
admin: ""
log:
  level: debug
%s`, strings.Join(ups, ", "), o.idle, o.extra)
	path := filepath.Join(t.TempDir(), "jurisdns.yaml")
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	logs := &logBuffer{}
	a, err := app.New(app.Options{
		Load:   config.LoadOptions{Path: path, Env: []string{}},
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatalf("app.New: %v\nconfiguration:\n%s", err, yaml)
	}
	if err := a.Start(); err != nil {
		_ = a.Shutdown(context.Background())
		t.Fatalf("app.Start: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitLimit)
		defer cancel()
		if err := a.Shutdown(ctx); err != nil {
			t.Errorf("jurisdns shutdown: %v", err)
		}
		if t.Failed() {
			t.Logf("jurisdns log:\n%s", logs.String())
		}
	})
	return &jurisdns{addr: a.DNSAddrs()[0], app: a}
}

// qopt changes a query built by newQuery.
type qopt func(*dns.Msg)

// withEDNS adds an OPT record with the UDP size and DO bit.
func withEDNS(size uint16, do bool) qopt {
	return func(m *dns.Msg) { m.SetEdns0(size, do) }
}

// withOption adds an EDNS option (adding an OPT of 1232 bytes first if
// there is none).
func withOption(o dns.EDNS0) qopt {
	return func(m *dns.Msg) {
		opt := m.IsEdns0()
		if opt == nil {
			m.SetEdns0(1232, false)
			opt = m.IsEdns0()
		}
		opt.Option = append(opt.Option, o)
	}
}

func withCD() qopt    { return func(m *dns.Msg) { m.CheckingDisabled = true } }
func withoutRD() qopt { return func(m *dns.Msg) { m.RecursionDesired = false } }
func withAD() qopt    { return func(m *dns.Msg) { m.AuthenticatedData = true } }

// newQuery is a query for name and qtype with RD set and a random ID.
func newQuery(name string, qtype uint16, opts ...qopt) *dns.Msg {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	for _, o := range opts {
		o(m)
	}
	return m
}

// exchange sends m to addr over netw and returns the reply. The client
// accepts a reply of any size, so a server that ignores the client's UDP
// size is caught by the test's own size check, not by the client.
func exchange(addr, netw string, m *dns.Msg) (*dns.Msg, error) {
	if netw == "udp" {
		// miekg reads UDP into a buffer of the query's EDNS size; read
		// into a big one instead and check the size here.
		return exchangeUDP(addr, m)
	}
	c := &dns.Client{Net: netw, Timeout: waitLimit}
	r, _, err := c.Exchange(m, addr)
	return r, err
}

// exchangeUDP sends m in one datagram and unpacks the first datagram that
// comes back with m's ID. A reply larger than the client's UDP limit (512
// without EDNS, else its size) is an error.
func exchangeUDP(addr string, m *dns.Msg) (*dns.Msg, error) {
	pkt, err := m.Pack()
	if err != nil {
		return nil, err
	}
	c, err := net.Dial("udp", addr)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if _, err := c.Write(pkt); err != nil {
		return nil, err
	}
	_ = c.SetReadDeadline(time.Now().Add(waitLimit))
	buf := make([]byte, dns.MaxMsgSize)
	for {
		n, err := c.Read(buf)
		if err != nil {
			return nil, err
		}
		r := new(dns.Msg)
		if err := r.Unpack(buf[:n]); err != nil {
			return nil, fmt.Errorf("unpacking a %d-byte reply: %w", n, err)
		}
		if r.Id != m.Id {
			continue
		}
		limit := dns.MinMsgSize
		if o := m.IsEdns0(); o != nil {
			limit = max(int(o.UDPSize()), dns.MinMsgSize)
		}
		if n > limit {
			return r, fmt.Errorf("a %d-byte UDP reply to a client whose limit is %d", n, limit)
		}
		return r, nil
	}
}

// mustExchange is exchange that fails the test on error.
func mustExchange(t testing.TB, addr, netw string, m *dns.Msg) *dns.Msg {
	t.Helper()
	r, err := exchange(addr, netw, m)
	if err != nil {
		t.Fatalf("%s %s over %s to %s: %v", m.Question[0].Name, dns.TypeToString[m.Question[0].Qtype], netw, addr, err)
	}
	return r
}

// rrKey is a record without its TTL, owner in lower case: records equal in
// everything a cache must not change have the same key.
func rrKey(rr dns.RR) string {
	c := dns.Copy(rr)
	h := c.Header()
	h.Name = strings.ToLower(h.Name)
	h.Ttl = 0
	// Names in RDATA compare case-insensitively too (RFC 4034 §6.2); knot
	// writes them in the case of the query when it compresses them
	// against the question.
	switch v := c.(type) {
	case *dns.NS:
		v.Ns = strings.ToLower(v.Ns)
	case *dns.CNAME:
		v.Target = strings.ToLower(v.Target)
	case *dns.DNAME:
		v.Target = strings.ToLower(v.Target)
	case *dns.MX:
		v.Mx = strings.ToLower(v.Mx)
	case *dns.PTR:
		v.Ptr = strings.ToLower(v.Ptr)
	case *dns.SRV:
		v.Target = strings.ToLower(v.Target)
	case *dns.SOA:
		v.Ns, v.Mbox = strings.ToLower(v.Ns), strings.ToLower(v.Mbox)
	case *dns.RRSIG:
		v.SignerName = strings.ToLower(v.SignerName)
	case *dns.NSEC:
		v.NextDomain = strings.ToLower(v.NextDomain)
	}
	return c.String()
}

// section maps rrKey to TTL for the records of a section (OPT left out);
// dups lists keys seen more than once.
func section(rrs []dns.RR) (set map[string]uint32, dups []string) {
	set = map[string]uint32{}
	for _, rr := range rrs {
		if rr.Header().Rrtype == dns.TypeOPT {
			continue
		}
		k := rrKey(rr)
		if _, ok := set[k]; ok {
			dups = append(dups, k)
		}
		set[k] = rr.Header().Ttl
	}
	return set, dups
}

// compareSection reports the differences between the records jurisdns
// returned (got) and knot's (want): missing and extra records (order does
// not matter) and TTLs above knot's (lower is allowed: a cache counts down).
func compareSection(name string, got, want []dns.RR) []string {
	g, gdups := section(got)
	w, _ := section(want)
	var probs []string
	for _, d := range gdups {
		probs = append(probs, fmt.Sprintf("%s: duplicate record %s", name, d))
	}
	var missing, extra []string
	for k, wt := range w {
		gt, ok := g[k]
		if !ok {
			missing = append(missing, k)
			continue
		}
		if gt > wt {
			probs = append(probs, fmt.Sprintf("%s: TTL %d above the authoritative %d: %s", name, gt, wt, k))
		}
	}
	for k := range g {
		if _, ok := w[k]; !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(extra)
	for _, k := range missing {
		probs = append(probs, fmt.Sprintf("%s: missing %s", name, k))
	}
	for _, k := range extra {
		probs = append(probs, fmt.Sprintf("%s: extra %s", name, k))
	}
	return probs
}

// checkReplyHeader checks what any jurisdns reply to q must be: a
// response with q's ID, opcode and question (case preserved), RD and CD
// echoed, RA set, AA clear (nothing jurisdns forwards is its own
// authoritative data), Z clear, and an OPT of version 0 with q's DO bit
// when q had EDNS, none otherwise.
func checkReplyHeader(q, r *dns.Msg) []string {
	var probs []string
	add := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	if !r.Response {
		add("QR=0 in a reply")
	}
	if r.Id != q.Id {
		add("ID %d, query had %d", r.Id, q.Id)
	}
	if r.Opcode != q.Opcode {
		add("opcode %d, query had %d", r.Opcode, q.Opcode)
	}
	if want := wireQuestion(q); len(r.Question) != 1 || r.Question[0] != want {
		add("question %v, query had %v (the client's case must be kept)", r.Question, want)
	}
	if r.RecursionDesired != q.RecursionDesired {
		add("RD=%v, query had RD=%v", r.RecursionDesired, q.RecursionDesired)
	}
	if r.CheckingDisabled != q.CheckingDisabled {
		add("CD=%v, query had CD=%v", r.CheckingDisabled, q.CheckingDisabled)
	}
	if !r.RecursionAvailable {
		add("RA=0")
	}
	if r.Authoritative {
		add("AA=1 on a forwarded answer")
	}
	if r.Zero {
		add("Z=1")
	}
	qo, ro := q.IsEdns0(), r.IsEdns0()
	switch {
	case qo == nil && ro != nil:
		add("OPT in the reply to a query without EDNS")
	case qo != nil && ro == nil:
		add("no OPT in the reply to an EDNS query")
	case qo != nil:
		if ro.Version() != 0 {
			add("OPT version %d", ro.Version())
		}
		if ro.Do() != qo.Do() {
			add("DO=%v in the reply OPT, query had DO=%v", ro.Do(), qo.Do())
		}
		if n := optCount(r); n != 1 {
			add("%d OPT records", n)
		}
	}
	return probs
}

// wireQuestion is q's question as a receiver sees it: packed and unpacked,
// so that two spellings of one name ("\032" and "\ ") compare equal.
func wireQuestion(q *dns.Msg) dns.Question {
	b, err := q.Pack()
	if err != nil {
		return q.Question[0]
	}
	m := new(dns.Msg)
	if err := m.Unpack(b); err != nil || len(m.Question) != 1 {
		return q.Question[0]
	}
	return m.Question[0]
}

func optCount(m *dns.Msg) int {
	n := 0
	for _, rr := range m.Extra {
		if rr.Header().Rrtype == dns.TypeOPT {
			n++
		}
	}
	return n
}

// compareWithKnot checks jurisdns's reply got to q against knot's reply
// want to the same query: the header rules of checkReplyHeader, the same
// rcode, TC and AD, and, unless the reply is truncated, the same answer,
// authority and additional sets with TTLs not above knot's.
func compareWithKnot(q, got, want *dns.Msg) []string {
	probs := checkReplyHeader(q, got)
	if got.Rcode != want.Rcode {
		probs = append(probs, fmt.Sprintf("rcode %s, authoritative %s", dns.RcodeToString[got.Rcode], dns.RcodeToString[want.Rcode]))
	}
	if got.Truncated != want.Truncated {
		probs = append(probs, fmt.Sprintf("TC=%v, authoritative TC=%v", got.Truncated, want.Truncated))
	}
	if got.AuthenticatedData != want.AuthenticatedData {
		probs = append(probs, fmt.Sprintf("AD=%v, authoritative AD=%v", got.AuthenticatedData, want.AuthenticatedData))
	}
	if got.Truncated || want.Truncated {
		return probs // the records of a truncated reply are not compared
	}
	probs = append(probs, compareSection("answer", got.Answer, want.Answer)...)
	probs = append(probs, compareSection("authority", got.Ns, want.Ns)...)
	probs = append(probs, compareSection("additional", got.Extra, want.Extra)...)
	return probs
}

// types lists the record types of every section of m, OPT left out.
func types(m *dns.Msg) []uint16 {
	var ts []uint16
	for _, sec := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range sec {
			if t := rr.Header().Rrtype; t != dns.TypeOPT && !slices.Contains(ts, t) {
				ts = append(ts, t)
			}
		}
	}
	return ts
}

// mixCase returns name with the case of its ASCII letters flipped by a
// pattern derived from seed (DNS 0x20), leaving \DDD escapes alone.
func mixCase(name string, seed int) string {
	b := []byte(name)
	for i := range b {
		c := b[i]
		if (c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') && (i*7+seed)%3 == 0 {
			b[i] = c ^ 0x20
		}
	}
	return string(b)
}
