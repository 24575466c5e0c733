package resolver

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/internal/testtool"
)

// replyOf packs a reply to a query for name with the given records, and an
// OPT (the last record, as finish writes it) when edns is set.
func replyOf(t testing.TB, edns bool, ans, ns []string) []byte {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion("www.example.org.", dns.TypeA)
	m.Response = true
	for _, s := range ans {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		m.Answer = append(m.Answer, rr)
	}
	for _, s := range ns {
		rr, err := dns.NewRR(s)
		if err != nil {
			t.Fatal(err)
		}
		m.Ns = append(m.Ns, rr)
	}
	if edns {
		m.SetEdns0(1232, false)
		m.IsEdns0().Option = append(m.IsEdns0().Option, &dns.EDNS0_EDE{InfoCode: 15, ExtraText: "blocked"})
	}
	m.Compress = true
	b, err := m.Pack()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPadReply(t *testing.T) {
	t.Parallel()
	big := make([]string, 40)
	for i := range big {
		big[i] = "www.example.org. 300 IN A 192.0.2." + string(rune('0'+i%10))
	}
	tests := []struct {
		name     string
		msg      []byte
		wantSame bool
	}{
		{name: "edns_small", msg: replyOf(t, true, []string{"www.example.org. 300 IN A 192.0.2.1"}, nil)},
		{name: "edns_above_one_block", msg: replyOf(t, true, big, nil)},
		{name: "no_edns", msg: replyOf(t, false, []string{"www.example.org. 300 IN A 192.0.2.1"}, nil), wantSame: true},
		{name: "short", msg: []byte{1, 2, 3}, wantSame: true},
		{name: "truncated_record", msg: replyOf(t, true, []string{"www.example.org. 300 IN A 192.0.2.1"}, nil)[:40], wantSame: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := append([]byte(nil), tc.msg...)
			out := padReply(in)
			if tc.wantSame {
				if string(out) != string(tc.msg) {
					t.Fatalf("changed a message it must leave alone")
				}
				return
			}
			if len(out)%paddingBlock != 0 || len(out) <= len(tc.msg) {
				t.Fatalf("padded to %d bytes from %d, want a multiple of %d", len(out), len(tc.msg), paddingBlock)
			}
			orig, got := new(dns.Msg), new(dns.Msg)
			if err := orig.Unpack(tc.msg); err != nil {
				t.Fatal(err)
			}
			if err := got.Unpack(out); err != nil {
				t.Fatalf("padded reply does not parse: %v", err)
			}
			opt := got.IsEdns0()
			if opt == nil || len(opt.Option) != 2 {
				t.Fatalf("OPT options %v, want EDE and padding", opt)
			}
			if _, ok := opt.Option[1].(*dns.EDNS0_PADDING); !ok {
				t.Errorf("last option %T, want padding", opt.Option[1])
			}
			if len(got.Answer) != len(orig.Answer) || got.Answer[0].String() != orig.Answer[0].String() {
				t.Error("the answer changed")
			}
			if string(in) != string(tc.msg) {
				t.Error("padReply wrote into its input")
			}
		})
	}
}

func TestMinTTL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		msg  []byte
		want uint32
	}{
		{name: "answers", msg: replyOf(t, true, []string{"www.example.org. 300 IN CNAME a.example.org.", "a.example.org. 60 IN A 192.0.2.1"}, nil), want: 60},
		{name: "negative_soa", msg: replyOf(t, true, nil, []string{"example.org. 900 IN SOA ns. host. 1 2 3 4 5"}), want: 900},
		{name: "opt_ignored", msg: replyOf(t, true, []string{"www.example.org. 4000 IN A 192.0.2.1"}, nil), want: 4000},
		{name: "nothing", msg: replyOf(t, false, nil, nil), want: 0},
		{name: "garbage", msg: []byte{0, 0, 0x80, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0xff}, want: 0},
	}
	for _, tc := range tests {
		if got := minTTL(tc.msg); got != tc.want {
			t.Errorf("%s: minTTL = %d, want %d", tc.name, got, tc.want)
		}
	}
}

// FuzzEncryptedReply runs arbitrary queries through the path of DoT and
// DoH (answerStream: the engine, then padding) and the DoH Cache-Control
// computation: never a panic, and every padded reply parses, with a size
// that is a multiple of the block when the query had EDNS.
func FuzzEncryptedReply(f *testing.F) {
	for _, edns := range []bool{false, true} {
		f.Add(packQuery("www.example.com.", dns.TypeA, edns))
		f.Add(packQuery("chat.deepseek.com.", dns.TypeAAAA, edns))
		f.Add(packQuery("_dns.resolver.arpa.", dns.TypeSVCB, edns))
	}
	s := newInProcess(f)
	client := netip.MustParseAddrPort("127.0.0.1:5353")
	f.Fuzz(func(t *testing.T, pkt []byte) {
		out, _ := s.answerStream(newStreamWorker(), s.Runtime(), append([]byte(nil), pkt...), client, DoH)
		_ = minTTL(pkt)
		_ = padReply(pkt)
		if len(out) < hdrLen {
			return
		}
		_ = minTTL(out)
		r := new(dns.Msg)
		if err := r.Unpack(out); err != nil {
			return // a header-only FORMERR
		}
		if r.IsEdns0() != nil && len(out)%paddingBlock != 0 {
			t.Fatalf("reply with EDNS of %d bytes is not padded", len(out))
		}
	})
}

// TestHTTP2DropReason: the error types net/http's HTTP/2 server reports map
// onto the four dropped_total reasons, unknown ones included.
func TestHTTP2DropReason(t *testing.T) {
	for typ, want := range map[string]string{
		"conn_ENHANCE_YOUR_CALM_too_many_early_resets": "doh_rapid_reset",
		"conn_PROTOCOL_ERROR_headers_even":             "doh_h2_connection",
		"conn_FLOW_CONTROL_ERROR_bad_flow":             "doh_h2_connection",
		"stream_REFUSED_STREAM_over_max_streams_race":  "doh_h2_stream",
		"stream_PROTOCOL_ERROR_over_max_streams":       "doh_h2_stream",
		"frame_windowupdate_zero_inc_stream":           "doh_h2_frame",
		"something_new":                                "doh_h2_frame",
	} {
		if got := http2DropReason(typ); got != want {
			t.Errorf("http2DropReason(%q) = %q, want %q", typ, got, want)
		}
	}
}

// TestPrepareAllOrNothing: a change with an address that cannot be bound
// fails naming its key and lets go of the addresses it bound before; an
// address still served by the other transport is refused with what to do;
// a change that is aborted leaves the served listeners as they were.
func TestPrepareAllOrNothing(t *testing.T) {
	fixed := testtool.FreeAddrOn(t, "127.0.0.1")
	e, err := NewServer(ServerOptions{}).ListenEncrypted(EncryptedOptions{DoT: []string{"127.0.0.1:0", fixed}})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = e.Shutdown(context.Background()) }()
	before := e.DoTAddrs()

	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	free := testtool.FreeAddrOn(t, "127.0.0.3")
	_, err = e.Prepare([]string{"127.0.0.1:0", fixed, free}, []string{held.Addr().String()})
	if err == nil || !strings.HasPrefix(err.Error(), "doh.listen[0]: listen tcp "+held.Addr().String()) {
		t.Fatalf("Prepare with a held address: %v, want an error naming doh.listen[0]", err)
	}
	if l, err := net.Listen("tcp", free); err != nil {
		t.Errorf("%s, bound by the failed Prepare, is still in use: %v", free, err)
	} else {
		l.Close()
	}

	_, err = e.Prepare([]string{"127.0.0.1:0"}, []string{fixed})
	if want := "doh.listen[0]: " + fixed + " is still served by dot.listen"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("Prepare moving an address from dot to doh: %v, want %q...", err, want)
	}

	ch, err := e.Prepare([]string{fixed, free}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := ch.DoTAddrs(); len(got) != 2 || got[0] != fixed || got[1] != free {
		t.Errorf("change serves %v, want [%s %s]", got, fixed, free)
	}
	ch.Abort()
	if got := e.DoTAddrs(); !slices.Equal(got, before) {
		t.Errorf("after Abort: %v, want %v", got, before)
	}
	for _, a := range before {
		if c, err := net.Dial("tcp", a); err != nil {
			t.Errorf("after Abort, %s: %v", a, err)
		} else {
			c.Close()
		}
	}
	if l, err := net.Listen("tcp", free); err != nil {
		t.Errorf("after Abort, %s is still in use: %v", free, err)
	} else {
		l.Close()
	}
}
