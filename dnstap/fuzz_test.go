package dnstap

import (
	"bytes"
	"math"
	"net/netip"
	"testing"
	"time"

	tap "github.com/dnstap/golang-dnstap"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

// FuzzAppendFrame: whatever the event, the frame decodes with golang-dnstap's
// generated code to the same fields, and its Policy parses.
func FuzzAppendFrame(f *testing.F) {
	f.Add([]byte{1, 2, 3}, []byte{4, 5}, "au-gov", "deepseek.com", "", "PSPF Direction 001-2025", []byte{192, 0, 2, 7}, uint16(5353), int64(1765000000123456789), true, false)
	f.Add([]byte{}, []byte(nil), "", "", "cdn.example.", "", []byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint16(0), int64(0), false, true)
	f.Fuzz(func(t *testing.T, q, r []byte, jur, entry, target, value string, addr []byte, port uint16, ns int64, withPolicy, forwarder bool) {
		a, _ := netip.AddrFromSlice(addr)
		ev := &Event{Forwarder: forwarder, Protocol: TCP, QueryTime: time.Unix(0, ns), ResponseTime: time.Unix(0, ns+1), Query: q, Response: r}
		if a.IsValid() {
			if forwarder {
				ev.Server = netip.AddrPortFrom(a, port)
			} else {
				ev.Client = netip.AddrPortFrom(a, port)
			}
		}
		if withPolicy {
			ev.Policy = &Policy{Jurisdiction: jur, Entry: entry, Target: target, Action: ActionLocalData, Value: value}
		}
		for _, mt := range []MessageType{ClientQuery, ClientResponse, ForwarderQuery, ForwarderResponse} {
			frame, _ := appendFrame(nil, nil, []byte("id"), nil, mt, ev)
			d := new(tap.Dnstap)
			if err := proto.Unmarshal(frame, d); err != nil {
				t.Fatalf("%v: %v", mt, err)
			}
			m := d.GetMessage()
			if int32(m.GetType()) != int32(mt) || string(d.GetIdentity()) != "id" || d.GetType() != tap.Dnstap_MESSAGE {
				t.Fatalf("type %v identity %q", m.GetType(), d.GetIdentity())
			}
			isQuery := mt == ClientQuery || mt == ForwarderQuery
			if isQuery && !bytes.Equal(m.GetQueryMessage(), q) || !isQuery && !bytes.Equal(m.GetResponseMessage(), r) {
				t.Fatalf("%v: messages %x %x", mt, m.GetQueryMessage(), m.GetResponseMessage())
			}
			if ns >= 0 && ns < math.MaxInt64 && !isQuery && (int64(m.GetResponseTimeSec())*1e9+int64(m.GetResponseTimeNsec()) != ns+1) {
				t.Fatalf("response time %d.%09d, want %d", m.GetResponseTimeSec(), m.GetResponseTimeNsec(), ns+1)
			}
			ap := ev.Client
			got := m.GetQueryAddress()
			gotPort := m.GetQueryPort()
			if forwarder {
				ap, got, gotPort = ev.Server, m.GetResponseAddress(), m.GetResponsePort()
			}
			if ap.IsValid() && (!bytes.Equal(got, ap.Addr().Unmap().AsSlice()) || gotPort != uint32(port)) {
				t.Fatalf("address %x:%d, want %v", got, gotPort, ap)
			}
			unknown := m.ProtoReflect().GetUnknown()
			if !withPolicy {
				if len(unknown) != 0 {
					t.Fatalf("unknown fields without a policy: %x", unknown)
				}
				continue
			}
			num, typ, n := protowire.ConsumeTag(unknown)
			if n < 0 || num != fPolicy || typ != protowire.BytesType {
				t.Fatalf("policy field: %d %d %d", num, typ, n)
			}
			v, n2 := protowire.ConsumeBytes(unknown[n:])
			if n2 < 0 || n+n2 != len(unknown) {
				t.Fatalf("policy length: %d of %d", n2, len(unknown)-n)
			}
			var rule []byte
			for len(v) > 0 {
				fnum, ftyp, k := protowire.ConsumeTag(v)
				if k < 0 {
					t.Fatal(protowire.ParseError(k))
				}
				v = v[k:]
				k = protowire.ConsumeFieldValue(fnum, ftyp, v)
				if k < 0 {
					t.Fatal(protowire.ParseError(k))
				}
				if fnum == fPolicyRule {
					rule, _ = protowire.ConsumeBytes(v)
				}
				v = v[k:]
			}
			want := jur + " " + entry
			if target != "" {
				want += " via CNAME " + target
			}
			if string(rule) != want {
				t.Fatalf("rule %q, want %q", rule, want)
			}
		}
	})
}
