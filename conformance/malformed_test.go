package conformance

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/resolver/resolvertest"
)

// reply expectations of a malformed packet.
const (
	anyReply  = -1 // a reply or none; a reply must be a well-formed response
	noReply   = -2 // no reply (checked as far as a datagram can be)
	someReply = -3 // a reply is required; check says which rcodes are fine
	rcodeBase = 0  // >= 0: a reply with this rcode is required
)

// badPacket is one malformed (or unusual) query and what it must get.
type badPacket struct {
	label string
	pkt   []byte
	// want is anyReply, noReply or the rcode the reply must have.
	want int
	// local: the packet must be answered (or dropped) without asking the
	// upstream. The names of local packets start with "local-", and the
	// upstream records every name it is asked.
	local bool
	// check, when set, checks a required reply further.
	check func(q []byte, r *dns.Msg) error
}

func (bp badPacket) required() bool { return bp.want >= rcodeBase || bp.want == someReply }

func pack(m *dns.Msg) []byte {
	b, err := m.Pack()
	if err != nil {
		panic(err) // a bug in the test's own packets
	}
	return b
}

// badPackets builds the list of the issue: garbage, truncated headers,
// QDCOUNT 0 and 2, every opcode, CHAOS/ANY classes, EDNS version 1, and a
// few more ways to be wrong.
func badPackets() []badPacket {
	base := func() *dns.Msg { return newQuery("malformed.example.", dns.TypeA) }
	lq := func(label string, qtype uint16, opts ...qopt) *dns.Msg {
		return newQuery("local-"+label+".example.", qtype, opts...)
	}
	valid := pack(base())
	ednsValid := pack(newQuery("malformed.example.", dns.TypeA, withEDNS(1232, true)))
	var ps []badPacket
	add := func(label string, pkt []byte, want int, local bool) {
		ps = append(ps, badPacket{label: label, pkt: pkt, want: want, local: local})
	}

	// Truncated headers and questions.
	add("empty", nil, noReply, true)
	for _, n := range []int{1, 2, 6, 11} {
		add(fmt.Sprintf("header-%d-bytes", n), valid[:n], noReply, true)
	}
	add("header-only-qdcount-1", valid[:12], anyReply, true)
	add("question-cut-in-name", valid[:20], anyReply, true)
	add("question-cut-in-type", valid[:len(valid)-3], anyReply, true)
	add("opt-cut", ednsValid[:len(ednsValid)-4], anyReply, true)
	add("trailing-garbage", append(append([]byte{}, valid...), 0xde, 0xad, 0xbe, 0xef), anyReply, false)

	// Counts.
	m := base()
	m.Question = nil
	add("qdcount-0", pack(m), dns.RcodeFormatError, true)
	m = lq("qdcount-2", dns.TypeA)
	m.Question = append(m.Question, dns.Question{Name: "local-qdcount-2-second.example.", Qtype: dns.TypeAAAA, Qclass: dns.ClassINET})
	add("qdcount-2", pack(m), dns.RcodeFormatError, true)
	p := append([]byte{}, valid...)
	binary.BigEndian.PutUint16(p[4:], 2) // says 2, holds 1
	add("qdcount-2-holds-1", p, anyReply, true)
	p = append([]byte{}, valid...)
	binary.BigEndian.PutUint16(p[6:], 1) // an answer record that is not there
	add("ancount-1-empty", p, anyReply, true)
	p = append([]byte{}, valid...)
	binary.BigEndian.PutUint16(p[4:], 0xffff)
	add("qdcount-65535", p, anyReply, true)

	// Every opcode: QUERY is answered, the others get NOTIMP.
	for op := 0; op < 16; op++ {
		m = lq(fmt.Sprintf("opcode-%d", op), dns.TypeA)
		want, local := dns.RcodeNotImplemented, true
		if op == dns.OpcodeQuery {
			m, want, local = base(), dns.RcodeSuccess, false
		}
		m.Opcode = op
		ps = append(ps, badPacket{label: fmt.Sprintf("opcode-%d", op), pkt: pack(m), want: want, local: local,
			check: func(q []byte, r *dns.Msg) error {
				if r.Opcode != op {
					return fmt.Errorf("reply opcode %d, query had %d", r.Opcode, op)
				}
				return nil
			}})
	}

	// Classes other than IN are not forwarded.
	m = newQuery("version.bind.", dns.TypeTXT)
	m.Question[0].Qclass = dns.ClassCHAOS
	ps = append(ps, badPacket{label: "chaos-version.bind", pkt: pack(m), want: someReply, local: true,
		check: func(_ []byte, r *dns.Msg) error {
			if r.Rcode != dns.RcodeRefused && r.Rcode != dns.RcodeSuccess {
				return fmt.Errorf("rcode %s; want REFUSED or an answer", dns.RcodeToString[r.Rcode])
			}
			return nil
		}})
	for _, cl := range []uint16{dns.ClassCHAOS, dns.ClassHESIOD, dns.ClassNONE, dns.ClassANY, 42} {
		m = lq(fmt.Sprintf("class-%d", cl), dns.TypeA)
		m.Question[0].Qclass = cl
		add(fmt.Sprintf("class-%s", dns.Class(cl)), pack(m), dns.RcodeRefused, true)
	}
	// Qtype ANY: a minimal answer (RFC 8482), not forwarded.
	m = lq("qtype-any", dns.TypeANY, withEDNS(1232, false))
	ps = append(ps, badPacket{label: "qtype-ANY", pkt: pack(m), want: dns.RcodeSuccess, local: true,
		check: func(_ []byte, r *dns.Msg) error {
			if len(r.Answer) > 1 {
				return fmt.Errorf("%d answer records for ANY", len(r.Answer))
			}
			return nil
		}})

	// EDNS.
	for _, v := range []uint8{1, 255} {
		m = lq(fmt.Sprintf("edns-version-%d", v), dns.TypeA, withEDNS(1232, false))
		m.IsEdns0().SetVersion(v)
		ps = append(ps, badPacket{label: fmt.Sprintf("edns-version-%d", v), pkt: pack(m), want: dns.RcodeBadVers, local: true,
			check: func(_ []byte, r *dns.Msg) error {
				if o := r.IsEdns0(); o == nil || o.Version() != 0 {
					return errors.New("BADVERS needs an OPT of version 0 (RFC 6891 §6.1.3)")
				}
				return nil
			}})
	}
	m = newQuery("malformed.example.", dns.TypeA, withEDNS(100, false)) // below 512: treated as 512
	add("edns-size-100", pack(m), dns.RcodeSuccess, false)
	// Two OPT records: see TestTwoOPTRecords for what RFC 6891 wants.
	m = newQuery("two-opt.example.", dns.TypeA, withEDNS(1232, false))
	m.Extra = append(m.Extra, &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: 512}})
	add("two-opt-records", pack(m), anyReply, false)
	m = newQuery("malformed.example.", dns.TypeA)
	m.Extra = []dns.RR{&dns.OPT{Hdr: dns.RR_Header{Name: "not-root.example.", Rrtype: dns.TypeOPT, Class: 1232}}}
	add("opt-owner-not-root", pack(m), anyReply, false)

	// Flags a query should not have: a response (never answered:
	// reflection), header bits that must not leak into the reply.
	m = lq("qr-set", dns.TypeA)
	m.Response = true
	add("qr-set", pack(m), noReply, true)
	m = base()
	m.Authoritative, m.Truncated, m.Zero, m.AuthenticatedData = true, true, true, true
	ps = append(ps, badPacket{label: "aa-tc-z-ad-in-query", pkt: pack(m), want: dns.RcodeSuccess,
		check: func(q []byte, r *dns.Msg) error {
			if r.Authoritative || r.Truncated || r.Zero {
				return fmt.Errorf("query flags leaked: AA=%v TC=%v Z=%v", r.Authoritative, r.Truncated, r.Zero)
			}
			return nil
		}})
	p = append([]byte{}, valid...)
	p[3] |= 0x5 // an rcode in a query
	add("rcode-in-query", p, anyReply, false)

	// Names.
	hdr := append([]byte{}, valid[:12]...)
	add("compression-loop", append(append([]byte{}, hdr...), 0xc0, 12, 0, 1, 0, 1), anyReply, true)
	add("pointer-forward", append(append([]byte{}, hdr...), 0xc0, 20, 0, 1, 0, 1), anyReply, true)
	add("label-64", append(append(append([]byte{}, hdr...), 64), append(make([]byte, 64), 0, 0, 1, 0, 1)...), anyReply, true)
	long := append([]byte{}, hdr...)
	for range 5 { // 5 labels of 63: 320 octets, over the 255 limit
		long = append(long, 63)
		for range 63 {
			long = append(long, 'a')
		}
	}
	add("name-320-octets", append(long, 0, 0, 1, 0, 1), anyReply, true)
	add("extended-label-type", append(append([]byte{}, hdr...), 0x41, 0, 0, 1, 0, 1), anyReply, true)

	// Garbage: random bytes, and a valid query with random bits flipped.
	rng := rand.New(rand.NewPCG(5, 1232))
	for i := range 40 {
		b := make([]byte, 1+rng.IntN(600))
		for j := range b {
			b[j] = byte(rng.UintN(256))
		}
		if i%2 == 0 && len(b) > 2 {
			b[2] &^= 0x80 // QR=0: looks like a query
		}
		add(fmt.Sprintf("garbage-%d", i), b, anyReply, false)
	}
	for i := range 60 {
		b := append([]byte{}, ednsValid...)
		for range 1 + rng.IntN(4) {
			bit := rng.IntN(len(b) * 8)
			b[bit/8] ^= 1 << (bit % 8)
		}
		add(fmt.Sprintf("bitflip-%d", i), b, anyReply, false)
	}
	return ps
}

// checkBadReply checks a reply to a malformed packet: it must be a
// response with the packet's ID, and whatever the packet asked for.
func checkBadReply(bp badPacket, raw []byte) error {
	if len(raw) < 12 {
		return fmt.Errorf("a %d-byte reply", len(raw))
	}
	if raw[2]&0x80 == 0 {
		return errors.New("the reply has QR=0")
	}
	if len(bp.pkt) >= 2 && binary.BigEndian.Uint16(raw) != binary.BigEndian.Uint16(bp.pkt) {
		return errors.New("the reply has another ID than the packet")
	}
	if bp.want < rcodeBase && bp.want != someReply {
		return nil
	}
	r := new(dns.Msg)
	if err := r.Unpack(raw); err != nil {
		return fmt.Errorf("unparseable reply: %v", err)
	}
	if bp.want != someReply && r.Rcode != bp.want {
		return fmt.Errorf("rcode %s; want %s", dns.RcodeToString[r.Rcode], dns.RcodeToString[bp.want])
	}
	if bp.check != nil {
		return bp.check(bp.pkt, r)
	}
	return nil
}

// malformedServer is a jurisdns forwarding to an upstream that answers
// every A question; probeName is in its cache from the start.
type malformedServer struct {
	j  *jurisdns
	up *resolvertest.Upstream

	mu   sync.Mutex
	seen map[string]bool // every name the upstream was asked, lower case
}

const probeName = "probe.example."

func startMalformedServer(t *testing.T) *malformedServer {
	s := &malformedServer{seen: map[string]bool{}}
	echo := resolvertest.Echo()
	s.up = resolvertest.StartUpstream(t, dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		s.mu.Lock()
		for _, q := range r.Question {
			s.seen[strings.ToLower(q.Name)] = true
		}
		s.mu.Unlock()
		echo(w, r)
	}))
	s.j = startJurisdns(t, []string{s.up.Addr()}, jopts{idle: time.Second})
	s.mustWork(t, "before the malformed input")
	return s
}

// checkLocal fails the test if the upstream was asked a name of a packet
// that must be answered locally.
func (s *malformedServer) checkLocal(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	for n := range s.seen {
		if strings.HasPrefix(n, "local-") || n == "version.bind." {
			t.Errorf("%s was forwarded upstream; it must be answered locally", n)
		}
	}
}

// mustWork checks that a normal query is answered over UDP and TCP.
func (s *malformedServer) mustWork(t *testing.T, when string) {
	t.Helper()
	for _, n := range nets {
		q := newQuery(probeName, dns.TypeA, withEDNS(1232, false))
		r, err := exchange(s.j.addr, n, q)
		if err != nil {
			t.Fatalf("a normal query over %s %s: %v", n, when, err)
		}
		if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 1 {
			t.Fatalf("a normal query over %s %s: %s with %d records", n, when, dns.RcodeToString[r.Rcode], len(r.Answer))
		}
	}
}

// probeFor is the probe query with an ID unlike the packet's.
func probeFor(pkt []byte) (id uint16, b []byte) {
	id = 0x5151
	if len(pkt) >= 2 && binary.BigEndian.Uint16(pkt) == id {
		id = 0x1515
	}
	m := newQuery(probeName, dns.TypeA)
	m.Id = id
	return id, pack(m)
}

// TestMalformedUDP sends every bad packet in its own datagram from its own
// socket, followed by a normal query: the normal query is answered, a
// required reply comes with the right rcode, nothing else that comes back
// is anything but a well-formed response, and nothing local reaches the
// upstream.
func TestMalformedUDP(t *testing.T) {
	s := startMalformedServer(t)
	for _, bp := range badPackets() {
		probeID, probe := probeFor(bp.pkt)
		c, err := net.Dial("udp", s.j.addr)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Write(bp.pkt); err != nil {
			t.Fatalf("%s: %v", bp.label, err)
		}
		if _, err := c.Write(probe); err != nil {
			t.Fatalf("%s: %v", bp.label, err)
		}
		_ = c.SetReadDeadline(time.Now().Add(waitLimit))
		gotProbe, gotReply := false, false
		buf := make([]byte, 65535)
		for !gotProbe || (bp.required() && !gotReply) {
			n, err := c.Read(buf)
			if err != nil {
				if !gotProbe {
					t.Errorf("%s: the normal query sent after it got no reply: %v", bp.label, err)
				} else {
					t.Errorf("%s: no reply; want %s", bp.label, dns.RcodeToString[bp.want])
				}
				break
			}
			raw := buf[:n]
			if n >= 2 && binary.BigEndian.Uint16(raw) == probeID && !gotProbe {
				gotProbe = true
				continue
			}
			gotReply = true
			if bp.want == noReply {
				t.Errorf("%s: a reply to a packet that must not be answered: % x", bp.label, raw)
				continue
			}
			if n > dns.MinMsgSize {
				if m := new(dns.Msg); m.Unpack(bp.pkt) != nil || m.IsEdns0() == nil {
					t.Errorf("%s: a %d-byte reply to a packet without EDNS", bp.label, n)
				}
			}
			if err := checkBadReply(bp, raw); err != nil {
				t.Errorf("%s: %v", bp.label, err)
			}
		}
		_ = c.Close()
	}
	s.mustWork(t, "after the malformed input")
	s.checkLocal(t)
}

// TestMalformedTCP sends every bad packet, correctly framed, on its own
// connection, followed by a normal query on the same connection. The
// server may close the connection after a packet it cannot parse; then the
// normal query is repeated on a new one and must be answered.
func TestMalformedTCP(t *testing.T) {
	s := startMalformedServer(t)
	for _, bp := range badPackets() {
		if len(bp.pkt) == 0 {
			continue // a zero length prefix is a TCP case of its own below
		}
		probeID, probe := probeFor(bp.pkt)
		c, err := net.Dial("tcp", s.j.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(waitLimit))
		if _, err := c.Write(append(frame(bp.pkt), frame(probe)...)); err != nil {
			t.Fatalf("%s: %v", bp.label, err)
		}
		gotProbe, gotReply := false, false
		for !gotProbe || (bp.required() && !gotReply) {
			raw, err := readFrame(c)
			if err != nil {
				if bp.required() && !gotReply {
					t.Errorf("%s: no reply (%v); want %s", bp.label, err, dns.RcodeToString[bp.want])
				}
				if !gotProbe {
					if bp.required() || bp.want == noReply {
						// A parseable packet: the connection should survive it.
						t.Errorf("%s: the connection ended before the normal query behind it was answered: %v", bp.label, err)
					}
					s.mustWork(t, "after "+bp.label)
				}
				break
			}
			if len(raw) >= 2 && binary.BigEndian.Uint16(raw) == probeID && !gotProbe {
				gotProbe = true
				continue
			}
			gotReply = true
			if bp.want == noReply {
				t.Errorf("%s: a reply to a packet that must not be answered", bp.label)
				continue
			}
			if err := checkBadReply(bp, raw); err != nil {
				t.Errorf("%s: %v", bp.label, err)
			}
		}
		_ = c.Close()
	}
	s.mustWork(t, "after the malformed input")
	s.checkLocal(t)
}

func frame(pkt []byte) []byte {
	b := make([]byte, 2, 2+len(pkt))
	binary.BigEndian.PutUint16(b, uint16(len(pkt)))
	return append(b, pkt...)
}

func readFrame(c net.Conn) ([]byte, error) {
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	_, err := io.ReadFull(c, b)
	return b, err
}

// TestTCPStalledAndIdle: connections that send a length prefix with nothing
// behind it, half a prefix, a prefix of 0, a short message followed by
// end-of-stream, or nothing at all, must not stop the server: while they
// are open, normal queries over UDP and new TCP connections are answered,
// and the server closes each of them (tcp_idle_timeout 1s here; the test
// waits at most waitLimit).
func TestTCPStalledAndIdle(t *testing.T) {
	s := startMalformedServer(t)
	_, probe := probeFor(nil)
	cases := []struct {
		label     string
		send      []byte
		closeSend bool
	}{
		{"length-prefix-only", []byte{0x00, 0x40}, false},
		{"half-a-prefix", []byte{0x00}, false},
		{"zero-length", []byte{0x00, 0x00}, false},
		{"short-then-eof", append([]byte{0x00, 0x40}, probe[:10]...), true},
		{"prefix-then-eof", []byte{0x01, 0x00}, true},
	}
	for i := range 20 {
		cases = append(cases, struct {
			label     string
			send      []byte
			closeSend bool
		}{fmt.Sprintf("idle-%d", i), nil, false})
	}
	conns := make([]*net.TCPConn, len(cases))
	for i, c := range cases {
		conn, err := net.Dial("tcp", s.j.addr)
		if err != nil {
			t.Fatal(err)
		}
		tc := conn.(*net.TCPConn)
		conns[i] = tc
		t.Cleanup(func() { _ = tc.Close() })
		if len(c.send) > 0 {
			if _, err := tc.Write(c.send); err != nil {
				t.Fatalf("%s: %v", c.label, err)
			}
		}
		if c.closeSend {
			_ = tc.CloseWrite()
		}
	}
	// The server still serves, with all of them open.
	s.mustWork(t, "with stalled and idle TCP connections open")
	// A pipelined connection works too.
	pc, err := net.Dial("tcp", s.j.addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = pc.SetDeadline(time.Now().Add(waitLimit))
	if _, err := pc.Write(append(frame(probe), frame(probe)...)); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if _, err := readFrame(pc); err != nil {
			t.Errorf("pipelined query %d: %v", i, err)
		}
	}
	_ = pc.Close()

	// Each of them is closed by the server: a read ends with EOF or a
	// reset (or, for zero-length, whatever the server chose to answer),
	// never with our own deadline.
	var wg sync.WaitGroup
	for i, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn := conns[i]
			_ = conn.SetReadDeadline(time.Now().Add(waitLimit))
			_, err := io.Copy(io.Discard, conn)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Errorf("%s: the server kept the connection open for %s", c.label, waitLimit)
			}
		}()
	}
	wg.Wait()
	s.mustWork(t, "after the stalled and idle TCP connections")
}

// TestTwoOPTRecords: RFC 6891 §6.1.1: "If a query message with more than
// one OPT RR is received, a FORMERR (RCODE=1) MUST be returned."
func TestTwoOPTRecords(t *testing.T) {
	s := startMalformedServer(t)
	for _, n := range nets {
		m := newQuery("local-two-opt-"+n+".example.", dns.TypeA, withEDNS(1232, false))
		m.Extra = append(m.Extra, &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT, Class: 512}})
		r, err := exchange(s.j.addr, n, m)
		if err != nil {
			t.Fatalf("over %s: %v", n, err)
		}
		if r.Rcode != dns.RcodeFormatError {
			t.Errorf("over %s: rcode %s; want FORMERR", n, dns.RcodeToString[r.Rcode])
		}
	}
	s.mustWork(t, "after two OPT records")
	s.checkLocal(t)
}
