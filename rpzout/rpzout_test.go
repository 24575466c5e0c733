package rpzout

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/policy"
	"github.com/jurisdns/jurisdns/spec"
	"github.com/jurisdns/jurisdns/transfer"
)

func buildPolicy(t *testing.T, js ...config.Jurisdiction) *policy.Policy {
	t.Helper()
	var ids []string
	for _, j := range js {
		ids = append(ids, j.ID)
	}
	p, err := policy.Build(context.Background(), &config.Config{DefaultJurisdictions: ids, Jurisdictions: js}, policy.BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func inline(id, action string, sinkhole []string, entries ...string) config.Jurisdiction {
	return config.Jurisdiction{
		JurisdictionAttrs: config.JurisdictionAttrs{ID: id, Title: id + " title", Action: spec.Action(action), Sinkhole: sinkhole},
		Instrument:        id + " instrument",
		Links:             []string{"https://example.org/" + id},
		Sources:           []config.Source{{Name: "l", Inline: entries}},
		Allow:             []string{"ok." + strings.TrimPrefix(entries[0], "*.")},
	}
}

// xfr runs q through Serve over TCP and returns every record of the
// answer, and the rcode of its first message.
func xfr(t *testing.T, s *Server, q *dns.Msg, from string) ([]dns.RR, int) {
	t.Helper()
	pkt, err := q.Pack()
	if err != nil {
		t.Fatal(err)
	}
	var rrs []dns.RR
	rcode := -1
	took := s.Serve(pkt, q, netip.MustParseAddrPort(from+":5353"), true, func(b []byte) error {
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Fatal(err)
		}
		if rcode < 0 {
			rcode = m.Rcode
		}
		rrs = append(rrs, m.Answer...)
		return nil
	})
	if !took {
		return nil, -1
	}
	return rrs, rcode
}

func axfr(zone string) *dns.Msg {
	q := new(dns.Msg)
	q.SetAxfr(zone)
	return q
}

func lines(rrs []dns.RR) string {
	var b strings.Builder
	for _, rr := range rrs {
		b.WriteString(rr.String())
		b.WriteByte('\n')
	}
	return b.String()
}

func TestZonesAndActions(t *testing.T) {
	now := time.Now()
	s := New(nil, func() time.Time { return now })
	opts := Options{Suffix: "rpz.test.", Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	pol := buildPolicy(t,
		inline("nx", "nxdomain", nil, "a.example"),
		inline("sink", "ip", []string{"192.0.2.1", "2001:db8::1"}, "b.example"),
		inline("null", "null", nil, "c.example"),
		inline("dr", "drop", nil, "*.d.example"),
		with(inline("rep", "", nil, "e.example"), func(j *config.Jurisdiction) { j.Mode = "report" }),
	)
	s.Update(opts, pol)
	for _, tc := range []struct {
		zone string
		want []string
	}{
		{"nx.rpz.test.", []string{"a.example.nx.rpz.test.\t60\tIN\tCNAME\t.", "*.a.example.nx.rpz.test.\t60\tIN\tCNAME\t.",
			"ok.a.example.nx.rpz.test.\t60\tIN\tCNAME\trpz-passthru.", `nx.rpz.test.	60	IN	TXT	"instrument=nx instrument"`,
			`nx.rpz.test.	60	IN	TXT	"link=https://example.org/nx"`}},
		{"sink.rpz.test.", []string{"b.example.sink.rpz.test.\t60\tIN\tA\t192.0.2.1", "b.example.sink.rpz.test.\t60\tIN\tAAAA\t2001:db8::1"}},
		{"null.rpz.test.", []string{"c.example.null.rpz.test.\t60\tIN\tA\t0.0.0.0", "c.example.null.rpz.test.\t60\tIN\tAAAA\t::"}},
		{"dr.rpz.test.", []string{"*.d.example.dr.rpz.test.\t60\tIN\tCNAME\trpz-drop."}},
	} {
		rrs, rc := xfr(t, s, axfr(tc.zone), "127.0.0.1")
		if rc != dns.RcodeSuccess || len(rrs) < 3 {
			t.Fatalf("%s: rcode %d, %d records", tc.zone, rc, len(rrs))
		}
		got := lines(rrs)
		for _, w := range tc.want {
			if !strings.Contains(got, w+"\n") {
				t.Errorf("%s: no %q in\n%s", tc.zone, w, got)
			}
		}
		if strings.Contains(got, "d.example.dr.rpz.test.\t60\tIN\tCNAME") && !strings.Contains(got, "*.d.example.dr") {
			t.Errorf("%s: a below rule served for the name itself", tc.zone)
		}
	}
	if _, rc := xfr(t, s, axfr("rep.rpz.test."), "127.0.0.1"); rc != -1 {
		t.Error("a report-mode jurisdiction is served")
	}
	if _, rc := xfr(t, s, axfr("nx.rpz.test."), "192.0.2.9"); rc != dns.RcodeRefused {
		t.Errorf("outside allow: rcode %d, want REFUSED", rc)
	}
	q := new(dns.Msg)
	q.SetQuestion("a.example.nx.rpz.test.", dns.TypeA)
	if _, rc := xfr(t, s, q, "127.0.0.1"); rc != -1 {
		t.Error("a query for a name inside the zone was taken (only SOA, AXFR, IXFR are)")
	}
}

func with(j config.Jurisdiction, f func(*config.Jurisdiction)) config.Jurisdiction {
	f(&j)
	return j
}

// TestSerialAndJournal: the serial moves only with the rules; IXFR from
// each kept serial is incremental, from an older one a whole zone.
func TestSerialAndJournal(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	s := New(nil, func() time.Time { return now })
	opts := Options{Suffix: "rpz.test.", Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, Journal: 2}
	s.Update(opts, buildPolicy(t, inline("j", "", nil, "a.example")))
	s1, _ := s.Serial("j.rpz.test.")
	s.Update(opts, buildPolicy(t, inline("j", "", nil, "a.example"), inline("k", "", nil, "k.example")))
	if s2, _ := s.Serial("j.rpz.test."); s2 != s1 {
		t.Fatalf("serial moved from %d to %d without a change of j", s1, s2)
	}
	var serials []uint32
	for i, names := range [][]string{{"a.example", "b.example"}, {"b.example"}, {"b.example", "c.example"}} {
		s.Update(opts, buildPolicy(t, inline("j", "", nil, names...)))
		n, _ := s.Serial("j.rpz.test.")
		if i == 0 && n != s1+1 {
			t.Errorf("serial %d after %d within the same second, want +1", n, s1)
		}
		serials = append(serials, n)
	}
	ixfr := func(from uint32) []dns.RR {
		q := new(dns.Msg)
		q.SetIxfr("j.rpz.test.", from, ".", ".")
		rrs, rc := xfr(t, s, q, "127.0.0.1")
		if rc != dns.RcodeSuccess {
			t.Fatalf("IXFR from %d: rcode %d", from, rc)
		}
		return rrs
	}
	// From serials[0]: two generations kept (journal 2): remove a, add c.
	rrs := ixfr(serials[0])
	if _, ok := rrs[1].(*dns.SOA); !ok {
		t.Fatalf("IXFR from %d not incremental:\n%s", serials[0], lines(rrs))
	}
	got := lines(rrs)
	for _, w := range []string{"a.example.j.rpz.test.", "c.example.j.rpz.test."} {
		if !strings.Contains(got, w) {
			t.Errorf("IXFR has no %s:\n%s", w, got)
		}
	}
	if strings.Contains(got, "\nb.example.j.rpz.test.") {
		t.Errorf("IXFR carries an unchanged record:\n%s", got)
	}
	// From s1: three generations back, past the journal: the whole zone.
	if rrs := ixfr(s1); len(rrs) < 3 {
		t.Errorf("IXFR from %d: %d records", s1, len(rrs))
	} else if _, ok := rrs[1].(*dns.SOA); ok {
		t.Errorf("IXFR from a serial past the journal is incremental:\n%s", lines(rrs))
	}
	// Up to date: the SOA alone.
	if rrs := ixfr(serials[2]); len(rrs) != 1 {
		t.Errorf("IXFR from the current serial: %d records", len(rrs))
	}
}

// TestNotifySigned: a new serial sends a NOTIFY, signed with rpz_out's
// key, to each secondary; an unchanged policy sends none.
func TestNotifySigned(t *testing.T) {
	const secret = "bm90aWZ5LXNlY3JldC1mb3ItdGhlLXJwei1vdXQtdGVzdA=="
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	type got struct {
		zone   string
		serial uint32
		tsig   error
		signed bool
	}
	notes := make(chan got, 8)
	srv := &dns.Server{PacketConn: pc, TsigSecret: map[string]string{"out.": secret},
		Handler: dns.HandlerFunc(func(w dns.ResponseWriter, m *dns.Msg) {
			var serial uint32
			if len(m.Answer) == 1 {
				if soa, ok := m.Answer[0].(*dns.SOA); ok {
					serial = soa.Serial
				}
			}
			notes <- got{zone: m.Question[0].Name, serial: serial, tsig: w.TsigStatus(), signed: m.IsTsig() != nil}
			r := new(dns.Msg)
			r.SetReply(m)
			if m.IsTsig() != nil {
				r.SetTsig("out.", dns.HmacSHA256, 300, time.Now().Unix())
			}
			_ = w.WriteMsg(r)
		})}
	go func() { _ = srv.ActivateAndServe() }()
	t.Cleanup(func() { _ = srv.Shutdown() })

	s := New(nil, nil)
	defer s.Close()
	opts := Options{Suffix: "rpz.test.", Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")},
		Key:    &transfer.Key{Name: "out.", Algorithm: dns.HmacSHA256, Secret: secret},
		Notify: []netip.AddrPort{netip.MustParseAddrPort(pc.LocalAddr().String())}}
	s.Update(opts, buildPolicy(t, inline("j", "", nil, "a.example")))
	serial, _ := s.Serial("j.rpz.test.")
	select {
	case g := <-notes:
		if g.zone != "j.rpz.test." || g.serial != serial || g.tsig != nil || !g.signed {
			t.Errorf("NOTIFY %+v, want j.rpz.test. serial %d, signed", g, serial)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no NOTIFY")
	}
	s.Update(opts, buildPolicy(t, inline("j", "", nil, "a.example")))
	select {
	case g := <-notes:
		t.Errorf("NOTIFY %+v without a change", g)
	case <-time.After(200 * time.Millisecond): // a bound on a non-event, not a wait for one
	}
}

// TestLargeZone: a zone of many messages comes out whole, each record
// once, in messages of at most 64 KiB; a client gone after the first
// message stops the transfer (Serve returns) without the rest being made.
func TestLargeZone(t *testing.T) {
	var names []string
	for i := range 6000 {
		names = append(names, "n"+strconv.Itoa(i)+".example")
	}
	names = append(names, "n1.example") // a duplicate: one trigger
	s := New(nil, nil)
	defer s.Close()
	s.Update(Options{Suffix: "rpz.jurisdns.", Allow: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}},
		buildPolicy(t, inline("big", "", nil, names...)))
	q := axfr("big.rpz.jurisdns.")
	pkt, _ := q.Pack()
	msgs, seen := 0, map[string]int{}
	var rrs []dns.RR
	s.Serve(pkt, q, netip.MustParseAddrPort("127.0.0.1:5353"), true, func(b []byte) error {
		if len(b) > 65535 {
			t.Errorf("message of %d bytes", len(b))
		}
		m := new(dns.Msg)
		if err := m.Unpack(b); err != nil {
			t.Fatal(err)
		}
		msgs++
		rrs = append(rrs, m.Answer...)
		return nil
	})
	for _, rr := range rrs {
		seen[rr.String()]++
	}
	for _, n := range []string{"n0.example", "n5999.example", "n1.example"} {
		for _, o := range []string{n, "*." + n} {
			if k := "\n" + o + ".big.rpz.jurisdns.\t60\tIN\tCNAME\t."; seen[k[1:]] != 1 {
				t.Errorf("%s: %d times", k[1:], seen[k[1:]])
			}
		}
	}
	// SOA twice, NS, the provenance TXT, two triggers a name and two for
	// the allow entry (ok.n0.example: rpz-passthru.).
	if triggers := len(rrs) - 2 - 1 - countType(rrs, dns.TypeTXT); triggers != 2*6000+2 || msgs < 3 {
		t.Errorf("%d triggers in %d messages, want %d in several", triggers, msgs, 2*6000+2)
	}
	if _, ok := rrs[0].(*dns.SOA); !ok {
		t.Errorf("first record %s", rrs[0])
	}
	if _, ok := rrs[len(rrs)-1].(*dns.SOA); !ok {
		t.Errorf("last record %s", rrs[len(rrs)-1])
	}

	// The client goes away after the first message.
	writes := 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(pkt, q, netip.MustParseAddrPort("127.0.0.1:5353"), true, func([]byte) error {
			writes++
			return net.ErrClosed
		})
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Serve still sending to a client that is gone")
	}
	if writes != 1 {
		t.Errorf("%d writes after the client went away", writes)
	}
}

func countType(rrs []dns.RR, t uint16) int {
	n := 0
	for _, rr := range rrs {
		if rr.Header().Rrtype == t {
			n++
		}
	}
	return n
}
