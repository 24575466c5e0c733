package conformance

import (
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/internal/testtool"
)

// testdata is the suite's fixtures: the zones knot serves and its
// configuration template.
const testdata = "../testdata/conformance"

// knot is a knotd started by the test on 127.0.0.1.
type knot struct {
	addr string
}

// knotdPath returns the knotd binary. Without knot installed the test is
// skipped with the install hint, or fails where every tool is required
// (.ci/run installs knot and requires every tool).
func knotdPath(t *testing.T) string {
	t.Helper()
	return testtool.Need(t, "knotd", "knot")
}

// startKnot runs knotd as a foreground child with the zones and the
// configuration template of testdata/conformance, everything it writes
// (rundir, database, keys, zones) in t.TempDir(), listening on a free port
// of 127.0.0.1. It returns once knot serves every zone and has signed the
// two DNSSEC zones, and kills knot in t.Cleanup. The port is chosen before
// knot binds it, so a start that loses a race for it is tried again.
func startKnot(t *testing.T) *knot {
	t.Helper()
	bin := knotdPath(t)
	tmpl, err := template.ParseFiles(filepath.Join(testdata, "knot.conf.tmpl"))
	if err != nil {
		t.Fatal(err)
	}
	zoneFiles, err := filepath.Glob(filepath.Join(testdata, "*.zone"))
	if err != nil || len(zoneFiles) == 0 {
		t.Fatalf("no zone files in %s: %v", testdata, err)
	}
	var lastErr error
	for range 3 {
		dir := t.TempDir()
		for _, d := range []string{"run", "db", "keys", "zones"} {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for _, z := range zoneFiles {
			b, err := os.ReadFile(z)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "zones", filepath.Base(z)), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		port := testtool.FreePort(t)
		conf := filepath.Join(dir, "knot.conf")
		f, err := os.Create(conf)
		if err != nil {
			t.Fatal(err)
		}
		err = tmpl.Execute(f, struct {
			Dir  string
			Port int
		}{dir, port})
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			t.Fatal(err)
		}
		logs := &logBuffer{}
		cmd := exec.Command(bin, "-c", conf)
		cmd.Stdout, cmd.Stderr = logs, logs
		if err := cmd.Start(); err != nil {
			t.Fatalf("starting %s: %v", bin, err)
		}
		exited := make(chan struct{})
		var waitErr error
		go func() { waitErr = cmd.Wait(); close(exited) }()
		stop := func() {
			_ = cmd.Process.Kill()
			<-exited
		}
		k := &knot{addr: fmt.Sprintf("127.0.0.1:%d", port)}
		err = k.waitReady(exited)
		if err == nil {
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("knotd log:\n%s", logs.String())
				}
			})
			return k
		}
		stop()
		select {
		case <-exited:
			if waitErr != nil {
				err = fmt.Errorf("%w (knotd: %v)", err, waitErr)
			}
		default:
		}
		lastErr = fmt.Errorf("%w\nknotd log:\n%s", err, logs.String())
	}
	t.Fatalf("knotd did not come up: %v", lastErr)
	return nil
}

// waitReady polls knot, within waitLimit*3, until every zone answers its
// SOA with AA=1 over UDP and TCP and both DNSSEC zones are signed: the SOA
// of signed.example carries an RRSIG and nsec3.example has its NSEC3PARAM.
func (k *knot) waitReady(exited <-chan struct{}) error {
	deadline := time.Now().Add(3 * waitLimit)
	var err error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("knotd exited")
		default:
		}
		if err = k.ready(); err == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond) // a poll interval, not a wait for an event
	}
	return fmt.Errorf("knot not ready after %s: %w", 3*waitLimit, err)
}

func (k *knot) ready() error {
	ask := func(netw, name string, qtype uint16, do bool) (*dns.Msg, error) {
		q := newQuery(name, qtype, withEDNS(1232, do))
		c := &dns.Client{Net: netw, Timeout: 500 * time.Millisecond}
		r, _, err := c.Exchange(q, k.addr)
		if err != nil {
			return nil, err
		}
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative {
			return nil, fmt.Errorf("%s %s: rcode %s, AA=%v", name, dns.TypeToString[qtype], dns.RcodeToString[r.Rcode], r.Authoritative)
		}
		return r, nil
	}
	for _, z := range []string{"conformance.example.", "other.example.", "xn--mnchen-3ya.example.", "signed.example.", "nsec3.example."} {
		if _, err := ask("udp", z, dns.TypeSOA, false); err != nil {
			return err
		}
	}
	r, err := ask("tcp", "signed.example.", dns.TypeSOA, true)
	if err != nil {
		return err
	}
	if !slices.Contains(types(r), dns.TypeRRSIG) {
		return errors.New("signed.example. not signed yet")
	}
	r, err = ask("udp", "nsec3.example.", dns.TypeNSEC3PARAM, true)
	if err != nil {
		return err
	}
	if !slices.Contains(types(r), dns.TypeNSEC3PARAM) || !slices.Contains(types(r), dns.TypeRRSIG) {
		return errors.New("nsec3.example. not signed yet")
	}
	return nil
}

// longName returns a name of exactly 253 characters (255 octets on the
// wire, the most RFC 1035 allows) ending in suffix, whose first label is
// made of c. It matches the names in the zone files.
func longName(c byte, suffix string) string {
	l63 := func(c byte) string { return strings.Repeat(string(c), 60) + "063" }
	middle := l63('a') + "." + l63('b') + "." + l63('c') + "."
	n := 253 - len(middle) - len(suffix) - 1 // the first label and its dot
	first := strings.Repeat(string(c), n-3) + fmt.Sprintf("%03d", n)
	return first + "." + middle + suffix + "."
}

var (
	long253      = longName('d', "conformance.example")
	long253NX    = longName('x', "conformance.example")
	long253Signd = longName('e', "signed.example")
)

// kcase is one question of the comparison matrix.
type kcase struct {
	label string // subtest name; default name/type
	name  string
	qtype uint16
	// rcode and answer are what knot must answer without DO (the number of
	// answer records, over TCP): a check that the zones are what the suite
	// assumes, so that a comparison of two wrong answers cannot pass.
	rcode  int
	answer int
	// signed: the name is in a signed zone, so with DO the reply must carry
	// RRSIGs and without DO it must carry no DNSSEC records.
	signed bool
	// doTypes must all be in the reply (any section) with DO.
	doTypes []uint16
}

var knotCases = []kcase{
	// conformance.example: plain data, several TTLs.
	{name: "www.conformance.example", qtype: dns.TypeA, answer: 2},
	{name: "www.conformance.example", qtype: dns.TypeAAAA, answer: 1},
	{name: "www.conformance.example", qtype: dns.TypeTXT, answer: 1},
	{name: "conformance.example", qtype: dns.TypeSOA, answer: 1},
	{name: "conformance.example", qtype: dns.TypeNS, answer: 1},
	{name: "conformance.example", qtype: dns.TypeMX, answer: 1},
	{name: "conformance.example", qtype: dns.TypeTXT, answer: 1},
	{name: "short.conformance.example", qtype: dns.TypeA, answer: 1},
	// NXDOMAIN and NODATA (with the SOA in the authority section).
	{name: "nx.conformance.example", qtype: dns.TypeA, rcode: dns.RcodeNameError},
	{name: "deeper.nx.conformance.example", qtype: dns.TypeTXT, rcode: dns.RcodeNameError},
	{name: "nodata.conformance.example", qtype: dns.TypeAAAA},
	{name: "ent.conformance.example", qtype: dns.TypeA, label: "empty-non-terminal/A"},
	{name: "leaf.ent.conformance.example", qtype: dns.TypeA, answer: 1},
	// Wildcards (RFC 4592).
	{name: "foo.wild.conformance.example", qtype: dns.TypeA, answer: 1},
	{name: "foo.wild.conformance.example", qtype: dns.TypeTXT, answer: 1},
	{name: "foo.wild.conformance.example", qtype: dns.TypeAAAA, label: "wildcard-nodata/AAAA"},
	{name: "a.b.wild.conformance.example", qtype: dns.TypeA, answer: 1},
	{name: "explicit.wild.conformance.example", qtype: dns.TypeA, answer: 1},
	{name: "explicit.wild.conformance.example", qtype: dns.TypeTXT, label: "wildcard-not-applied/TXT"},
	{name: "wild.conformance.example", qtype: dns.TypeA, label: "wildcard-parent/A"},
	// CNAME chains: in one zone (knot follows it), across zones (knot
	// answers the first link; a forwarder passes that on), dangling.
	{name: "chain1.conformance.example", qtype: dns.TypeA, answer: 4},
	{name: "cross1.conformance.example", qtype: dns.TypeA, answer: 1},
	{name: "cross2.other.example", qtype: dns.TypeA, answer: 1},
	{name: "cross3.conformance.example", qtype: dns.TypeA, answer: 3},
	{name: "tosigned.conformance.example", qtype: dns.TypeA, answer: 1},
	{name: "dangling.conformance.example", qtype: dns.TypeA, answer: 1},
	{name: "chain1.conformance.example", qtype: dns.TypeCNAME, answer: 1},
	{name: "nowhere.other.example", qtype: dns.TypeA, rcode: dns.RcodeNameError},
	{name: "target.other.example", qtype: dns.TypeA, answer: 1},
	// IDN: punycode labels, a zone whose apex is one, a raw 8-bit label.
	{name: "xn--bcher-kva.conformance.example", qtype: dns.TypeA, answer: 1},
	{name: "www.xn--mnchen-3ya.example", qtype: dns.TypeA, answer: 1},
	{name: "xn--strae-oqa.xn--mnchen-3ya.example", qtype: dns.TypeA, answer: 1},
	{name: "nx.xn--mnchen-3ya.example", qtype: dns.TypeA, rcode: dns.RcodeNameError},
	{name: `caf\195\169.conformance.example`, qtype: dns.TypeA, answer: 1, label: "8bit-label/A"},
	{name: `dot\.label.conformance.example`, qtype: dns.TypeA, answer: 1, label: "dot-in-label/A"},
	{name: `dot\.label.conformance.example`, qtype: dns.TypeAAAA, label: "dot-in-label-nodata/AAAA"},
	{name: `label.conformance.example`, qtype: dns.TypeA, rcode: dns.RcodeNameError, label: "not-dot-in-label/A"},
	{name: `space\032label.conformance.example`, qtype: dns.TypeTXT, answer: 1, label: "space-in-label/TXT"},
	// 253-character names.
	{name: long253, qtype: dns.TypeA, answer: 1, label: "long253/A"},
	{name: long253, qtype: dns.TypeTXT, answer: 1, label: "long253/TXT"},
	{name: long253, qtype: dns.TypeAAAA, label: "long253-nodata/AAAA"},
	{name: long253NX, qtype: dns.TypeA, rcode: dns.RcodeNameError, label: "long253-nxdomain/A"},
	// More than 1232 bytes: TC=1 over UDP, everything over TCP.
	{name: "big.conformance.example", qtype: dns.TypeTXT, answer: 8},
	// signed.example (NSEC).
	{name: "signed.example", qtype: dns.TypeSOA, answer: 1, signed: true, doTypes: []uint16{dns.TypeSOA, dns.TypeRRSIG}},
	{name: "signed.example", qtype: dns.TypeDNSKEY, answer: 2, signed: true, doTypes: []uint16{dns.TypeDNSKEY, dns.TypeRRSIG}},
	{name: "signed.example", qtype: dns.TypeNS, answer: 1, signed: true},
	{name: "www.signed.example", qtype: dns.TypeA, answer: 1, signed: true, doTypes: []uint16{dns.TypeA, dns.TypeRRSIG}},
	{name: "www.signed.example", qtype: dns.TypeAAAA, answer: 1, signed: true},
	{name: "txt.signed.example", qtype: dns.TypeTXT, answer: 1, signed: true},
	{name: "nx.signed.example", qtype: dns.TypeA, rcode: dns.RcodeNameError, signed: true, doTypes: []uint16{dns.TypeSOA, dns.TypeNSEC, dns.TypeRRSIG}},
	{name: "www.signed.example", qtype: dns.TypeMX, signed: true, doTypes: []uint16{dns.TypeSOA, dns.TypeNSEC, dns.TypeRRSIG}, label: "signed-nodata/MX"},
	{name: "foo.w.signed.example", qtype: dns.TypeA, answer: 1, signed: true, doTypes: []uint16{dns.TypeA, dns.TypeNSEC, dns.TypeRRSIG}, label: "signed-wildcard/A"},
	{name: "alias.signed.example", qtype: dns.TypeA, answer: 2, signed: true, doTypes: []uint16{dns.TypeCNAME, dns.TypeA, dns.TypeRRSIG}},
	{name: "sub.signed.example", qtype: dns.TypeDS, answer: 1, signed: true, doTypes: []uint16{dns.TypeDS, dns.TypeRRSIG}},
	{name: "www.sub.signed.example", qtype: dns.TypeA, signed: true, doTypes: []uint16{dns.TypeNS, dns.TypeDS, dns.TypeRRSIG}, label: "signed-referral/A"},
	{name: long253Signd, qtype: dns.TypeA, answer: 1, signed: true, label: "signed-long253/A"},
	// nsec3.example (NSEC3, RFC 5155).
	{name: "www.nsec3.example", qtype: dns.TypeA, answer: 1, signed: true, doTypes: []uint16{dns.TypeA, dns.TypeRRSIG}},
	{name: "nx.nsec3.example", qtype: dns.TypeA, rcode: dns.RcodeNameError, signed: true, doTypes: []uint16{dns.TypeSOA, dns.TypeNSEC3, dns.TypeRRSIG}},
	{name: "www.nsec3.example", qtype: dns.TypeTXT, signed: true, doTypes: []uint16{dns.TypeSOA, dns.TypeNSEC3, dns.TypeRRSIG}, label: "nsec3-nodata/TXT"},
	{name: "foo.w.nsec3.example", qtype: dns.TypeTXT, answer: 1, signed: true, doTypes: []uint16{dns.TypeTXT, dns.TypeNSEC3, dns.TypeRRSIG}, label: "nsec3-wildcard/TXT"},
	{name: "nsec3.example", qtype: dns.TypeNSEC3PARAM, answer: 1, signed: true},
}

// variants are the ways each question is asked, in this order: the first
// two share a cache entry (DO=0, CD=0), so the second is served from what
// the first stored, with a bigger UDP size (and RD=0, which a forwarder
// echoes); the last has its own (CD=1) and sets AD, which an
// authoritative answer must not turn into AD=1.
var variants = []struct {
	label string
	opts  []qopt
	do    bool
}{
	{"noedns", nil, false},
	{"edns+rd0", []qopt{withEDNS(1232, false), withoutRD()}, false},
	{"do", []qopt{withEDNS(1232, true)}, true},
	{"do+cd+ad", []qopt{withEDNS(4096, true), withCD(), withAD()}, true},
}

var dnssecTypes = []uint16{dns.TypeRRSIG, dns.TypeNSEC, dns.TypeNSEC3}

// TestKnot compares jurisdns, forwarding to knot, with knot itself.
func TestKnot(t *testing.T) {
	k := startKnot(t)
	j := startJurisdns(t, []string{k.addr}, jopts{})

	// First, while the cache is empty for these names: DO=1 then DO=0
	// and the other way round must not share an answer.
	t.Run("cache-keyed-by-DO", func(t *testing.T) { testCacheByDO(t, k, j) })
	t.Run("answers", func(t *testing.T) { testAnswers(t, k, j) })
	t.Run("big-txt", func(t *testing.T) { testBigTXT(t, k, j) })
	t.Run("nsid", func(t *testing.T) { testNSID(t, k, j) })
	t.Run("any", func(t *testing.T) { testANY(t, k, j) })
}

// testAnswers asks every kcase in every variant over UDP and TCP, first
// knot, then jurisdns twice (a miss, then usually a hit: the UDP fast path
// and the TCP slow path from the cache), and compares.
func testAnswers(t *testing.T, k *knot, j *jurisdns) {
	for i, c := range knotCases {
		label := c.label
		if label == "" {
			label = strings.TrimSuffix(c.name, ".") + "/" + dns.TypeToString[c.qtype]
		}
		t.Run(label, func(t *testing.T) {
			for _, v := range variants {
				for _, n := range nets {
					q := newQuery(mixCase(c.name, i), c.qtype, v.opts...)
					want := mustExchange(t, k.addr, n, q)
					if !v.do && v.label == "edns+rd0" && n == "tcp" {
						if want.Rcode != c.rcode || len(want.Answer) != c.answer {
							t.Fatalf("knot answers %s with %d records; the suite expects %s with %d: the zones are not what it assumes\n%v",
								dns.RcodeToString[want.Rcode], len(want.Answer), dns.RcodeToString[c.rcode], c.answer, want)
						}
					}
					if v.do && !want.Truncated {
						for _, ty := range c.doTypes {
							if !slices.Contains(types(want), ty) {
								t.Fatalf("knot's reply with DO has no %s: the zone is not signed as the suite assumes\n%v", dns.TypeToString[ty], want)
							}
						}
					}
					for pass := 1; pass <= 2; pass++ {
						q.Id = dns.Id()
						got, err := exchange(j.addr, n, q)
						if err != nil {
							t.Errorf("%s %s query %d: %v", v.label, n, pass, err)
							continue
						}
						probs := compareWithKnot(q, got, want)
						if c.signed && !got.Truncated {
							hasSig := slices.Contains(types(got), dns.TypeRRSIG)
							if v.do && !hasSig {
								probs = append(probs, "DO=1 in a signed zone, but no RRSIG passed through")
							}
							if !v.do {
								for _, ty := range dnssecTypes {
									if slices.Contains(types(got), ty) {
										probs = append(probs, fmt.Sprintf("DO=0, but the reply has %s", dns.TypeToString[ty]))
									}
								}
							}
						}
						for _, p := range probs {
							t.Errorf("%s over %s, query %d: %s", v.label, n, pass, p)
						}
						if len(probs) > 0 {
							t.Logf("query:\n%v\njurisdns:\n%v\nknot:\n%v", q, got, want)
						}
					}
				}
			}
		})
	}
}

// testCacheByDO asks the same questions with and without DO, in both
// orders and over both transports: a DO=0 client never gets DNSSEC records
// a DO=1 client caused to be cached, and a DO=1 client always gets them.
func testCacheByDO(t *testing.T, k *knot, j *jurisdns) {
	type step struct {
		netw string
		do   bool
	}
	seqs := []struct {
		name  string
		qtype uint16
		steps []step
	}{
		{"ns1.signed.example.", dns.TypeA, []step{{"udp", true}, {"udp", false}, {"udp", false}, {"tcp", false}, {"tcp", true}, {"udp", true}}},
		{"ns1.nsec3.example.", dns.TypeA, []step{{"udp", false}, {"udp", false}, {"udp", true}, {"udp", true}, {"tcp", true}, {"tcp", false}}},
		{"gone.signed.example.", dns.TypeA, []step{{"tcp", true}, {"udp", false}, {"udp", false}, {"udp", true}}},
		{"gone.nsec3.example.", dns.TypeAAAA, []step{{"udp", false}, {"udp", true}, {"udp", true}, {"tcp", false}}},
	}
	for _, s := range seqs {
		for i, st := range s.steps {
			opts := []qopt{withEDNS(1232, st.do)}
			q := newQuery(s.name, s.qtype, opts...)
			want := mustExchange(t, k.addr, st.netw, q)
			q.Id = dns.Id()
			got := mustExchange(t, j.addr, st.netw, q)
			probs := compareWithKnot(q, got, want)
			has := slices.Contains(types(got), dns.TypeRRSIG)
			if st.do && !has {
				probs = append(probs, "DO=1 but no RRSIG")
			}
			if !st.do && has {
				probs = append(probs, "DO=0 but RRSIGs (a DO=1 answer served from the cache?)")
			}
			for _, p := range probs {
				t.Errorf("%s %s step %d (%s, DO=%v): %s", s.name, dns.TypeToString[s.qtype], i, st.netw, st.do, p)
			}
		}
	}
}

// testBigTXT checks the TXT RRset of more than 1232 bytes explicitly: over
// UDP jurisdns sets TC=1 (as knot does) whatever UDP size the client
// offers, and over TCP it returns the whole set, equal to knot's.
func testBigTXT(t *testing.T, k *knot, j *jurisdns) {
	name := "big.conformance.example."
	full := mustExchange(t, k.addr, "tcp", newQuery(name, dns.TypeTXT, withEDNS(1232, false)))
	if full.Len() <= 1232 || len(full.Answer) != 8 {
		t.Fatalf("knot's TXT RRset is %d bytes, %d records; the suite needs more than 1232 bytes", full.Len(), len(full.Answer))
	}
	for _, opts := range [][]qopt{nil, {withEDNS(1232, false)}, {withEDNS(4096, false)}, {withEDNS(65535, true)}, {withEDNS(100, false)}} {
		q := newQuery(name, dns.TypeTXT, opts...)
		kr := mustExchange(t, k.addr, "udp", q)
		if !kr.Truncated {
			t.Errorf("knot over UDP (%v): TC=0; expected TC=1", q.IsEdns0())
		}
		for pass := 1; pass <= 2; pass++ {
			q.Id = dns.Id()
			r := mustExchange(t, j.addr, "udp", q)
			if !r.Truncated {
				t.Errorf("jurisdns over UDP (%v), query %d: TC=0 for a %d-byte RRset", q.IsEdns0(), pass, full.Len())
			}
			for _, p := range checkReplyHeader(q, r) {
				t.Errorf("jurisdns over UDP, query %d: %s", pass, p)
			}
		}
		q.Id = dns.Id()
		r := mustExchange(t, j.addr, "tcp", q)
		if r.Truncated || len(r.Answer) != 8 {
			t.Errorf("jurisdns over TCP: TC=%v, %d records; want the whole set of 8", r.Truncated, len(r.Answer))
		}
		for _, p := range compareSection("answer", r.Answer, full.Answer) {
			t.Errorf("jurisdns over TCP: %s", p)
		}
	}
}

// testNSID: knot is configured with an NSID. A client asking jurisdns for
// NSID gets none (NSID is off by default, and the request is not
// forwarded, so knot's cannot leak through).
func testNSID(t *testing.T, k *knot, j *jurisdns) {
	for _, n := range nets {
		q := newQuery("www.conformance.example.", dns.TypeA, withOption(&dns.EDNS0_NSID{Code: dns.EDNS0NSID}))
		kr := mustExchange(t, k.addr, n, q)
		if nsid(kr) != "knot-conformance" {
			t.Fatalf("knot over %s returned NSID %q; the suite configures knot-conformance", n, nsid(kr))
		}
		for pass := 1; pass <= 2; pass++ {
			q.Id = dns.Id()
			r := mustExchange(t, j.addr, n, q)
			if got := nsid(r); got != "" {
				t.Errorf("jurisdns over %s, query %d: NSID %q in the reply; NSID is off by default", n, pass, got)
			}
			for _, p := range compareWithKnot(q, r, kr) {
				t.Errorf("jurisdns over %s, query %d: %s", n, pass, p)
			}
		}
	}
}

// nsid returns the decoded NSID option of m, or "".
func nsid(m *dns.Msg) string {
	if o := m.IsEdns0(); o != nil {
		for _, op := range o.Option {
			if n, ok := op.(*dns.EDNS0_NSID); ok {
				if b, err := hex.DecodeString(n.Nsid); err == nil {
					return string(b)
				}
				return n.Nsid
			}
		}
	}
	return ""
}

// testANY: qtype ANY gets a minimal answer (RFC 8482), not the name's
// whole data, over UDP and TCP.
func testANY(t *testing.T, k *knot, j *jurisdns) {
	for _, n := range nets {
		q := newQuery("www.conformance.example.", dns.TypeANY, withEDNS(1232, true))
		r := mustExchange(t, j.addr, n, q)
		for _, p := range checkReplyHeader(q, r) {
			t.Errorf("ANY over %s: %s", n, p)
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) > 1 {
			t.Errorf("ANY over %s: %s with %d records; RFC 8482 wants one small RRset\n%v", n, dns.RcodeToString[r.Rcode], len(r.Answer), r)
		}
	}
}
