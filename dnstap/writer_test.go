package dnstap_test

import (
	"bytes"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	tap "github.com/dnstap/golang-dnstap"

	"github.com/jurisdns/jurisdns/dnstap"
	"github.com/jurisdns/jurisdns/dnstap/dnstaptest"
)

var (
	t0    = time.Date(2026, 12, 6, 10, 0, 0, 123456789, time.UTC)
	query = []byte{0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'x', 0, 0, 1, 0, 1}
	reply = []byte{0x12, 0x34, 0x81, 0x83, 0, 1, 0, 0, 0, 0, 0, 0, 1, 'x', 0, 0, 1, 0, 1}
)

func clientEvent() *dnstap.Event {
	return &dnstap.Event{
		Protocol:     dnstap.UDP,
		Client:       netip.MustParseAddrPort("192.0.2.7:5353"),
		QueryTime:    t0,
		ResponseTime: t0.Add(1500 * time.Microsecond),
		Query:        query,
		Response:     reply,
		Policy:       &dnstap.Policy{Jurisdiction: "au-gov", Entry: "deepseek.com", Action: dnstap.ActionNXDOMAIN, Value: "PSPF Direction 001-2025"},
	}
}

func fastOpts(path string) dnstap.Options {
	return dnstap.Options{
		Network: "unix", Address: path, Identity: "ns1.example", Version: "jurisdns test",
		Client: true, Forwarder: true, MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond,
	}
}

// waitConnected waits until w has completed the handshake with a collector.
func waitConnected(t *testing.T, w *dnstap.Writer) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !w.Connected() {
		if time.Now().After(deadline) {
			t.Fatal("the writer did not connect within 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestClientAndForwarderFrames(t *testing.T) {
	path := dnstaptest.SockPath(t)
	c := dnstaptest.StartCollector(t, path)
	w := dnstap.New(fastOpts(path))
	defer w.Close()

	ev := clientEvent()
	if !w.Log(ev) {
		t.Fatal("Log refused an event with a free queue")
	}
	// The caller's buffers are reusable as soon as Log returns.
	ev.Query[0], ev.Response[0] = 0xFF, 0xFF
	ev.Query, ev.Response = query, reply
	query[0], reply[0] = 0x12, 0x12
	w.Log(&dnstap.Event{
		Forwarder: true, Protocol: dnstap.TCP,
		Server:    netip.MustParseAddrPort("[2001:db8::53]:53"),
		QueryTime: t0, ResponseTime: t0.Add(time.Millisecond),
		Query: query, Response: reply,
	})
	w.Log(&dnstap.Event{Protocol: dnstap.UDP, Client: netip.MustParseAddrPort("192.0.2.8:1"), QueryTime: t0, Query: query,
		Policy: &dnstap.Policy{Jurisdiction: "us-gov", Entry: "*.deepseek.com", Target: "cdn.deepseek.com.", Action: dnstap.ActionDROP}})

	check := func(d *tap.Dnstap, typ tap.Message_Type) *tap.Message {
		t.Helper()
		if string(d.GetIdentity()) != "ns1.example" || string(d.GetVersion()) != "jurisdns test" || d.GetType() != tap.Dnstap_MESSAGE {
			t.Errorf("identity %q version %q type %v", d.GetIdentity(), d.GetVersion(), d.GetType())
		}
		m := d.GetMessage()
		if m.GetType() != typ {
			t.Fatalf("message type %v, want %v", m.GetType(), typ)
		}
		if m.GetQueryTimeSec() != uint64(t0.Unix()) || m.GetQueryTimeNsec() != uint32(t0.Nanosecond()) {
			t.Errorf("%v: query time %d.%09d", typ, m.GetQueryTimeSec(), m.GetQueryTimeNsec())
		}
		return m
	}
	wantPolicy := func(m *tap.Message, rule string, action dnstap.Action, value string) {
		t.Helper()
		p := dnstaptest.PolicyOf(t, m)
		if p == nil {
			t.Fatalf("%v has no Policy", m.GetType())
		}
		if p.Type != "jurisdns" || p.Rule != rule || p.Action != int32(action) || p.Match != 1 || p.Value != value {
			t.Errorf("%v policy = %+v", m.GetType(), *p)
		}
	}

	cq := check(c.Next(t), tap.Message_CLIENT_QUERY)
	if cq.GetSocketFamily() != tap.SocketFamily_INET || cq.GetSocketProtocol() != tap.SocketProtocol_UDP ||
		!bytes.Equal(cq.GetQueryAddress(), []byte{192, 0, 2, 7}) || cq.GetQueryPort() != 5353 {
		t.Errorf("client query socket: %v %v %v %d", cq.GetSocketFamily(), cq.GetSocketProtocol(), cq.GetQueryAddress(), cq.GetQueryPort())
	}
	if !bytes.Equal(cq.GetQueryMessage(), query) || cq.ResponseMessage != nil {
		t.Errorf("client query message %x, response %x", cq.GetQueryMessage(), cq.GetResponseMessage())
	}
	wantPolicy(cq, "au-gov deepseek.com", dnstap.ActionNXDOMAIN, "PSPF Direction 001-2025")
	cr := check(c.Next(t), tap.Message_CLIENT_RESPONSE)
	rt := t0.Add(1500 * time.Microsecond)
	if !bytes.Equal(cr.GetResponseMessage(), reply) || cr.GetResponseTimeSec() != uint64(rt.Unix()) || cr.GetResponseTimeNsec() != uint32(rt.Nanosecond()) {
		t.Errorf("client response %x at %d.%09d", cr.GetResponseMessage(), cr.GetResponseTimeSec(), cr.GetResponseTimeNsec())
	}
	wantPolicy(cr, "au-gov deepseek.com", dnstap.ActionNXDOMAIN, "PSPF Direction 001-2025")

	fq := check(c.Next(t), tap.Message_FORWARDER_QUERY)
	if fq.GetSocketFamily() != tap.SocketFamily_INET6 || fq.GetSocketProtocol() != tap.SocketProtocol_TCP ||
		!bytes.Equal(fq.GetResponseAddress(), netip.MustParseAddr("2001:db8::53").AsSlice()) || fq.GetResponsePort() != 53 ||
		fq.QueryAddress != nil || !bytes.Equal(fq.GetQueryMessage(), query) {
		t.Errorf("forwarder query: %v", fq)
	}
	if dnstaptest.PolicyOf(t, fq) != nil {
		t.Error("a forwarder message without a policy carries one")
	}
	fr := check(c.Next(t), tap.Message_FORWARDER_RESPONSE)
	if !bytes.Equal(fr.GetResponseMessage(), reply) {
		t.Errorf("forwarder response %x", fr.GetResponseMessage())
	}

	// A dropped query has no response: only its CLIENT_QUERY is sent.
	dq := check(c.Next(t), tap.Message_CLIENT_QUERY)
	wantPolicy(dq, "us-gov *.deepseek.com via CNAME cdn.deepseek.com.", dnstap.ActionDROP, "")
	select {
	case f := <-c.Frames:
		t.Errorf("unexpected frame after the dropped query: %v", dnstaptest.Decode(t, f))
	case <-time.After(100 * time.Millisecond):
	}
	// Sent counts after the flush returns, a moment after the collector
	// may have read the frames.
	for deadline := time.Now().Add(10 * time.Second); w.Stats().Sent.Load() < 3 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if w.Stats().Sent.Load() != 3 || w.Stats().Dropped.Load() != 0 {
		t.Errorf("sent %d dropped %d, want 3 and 0", w.Stats().Sent.Load(), w.Stats().Dropped.Load())
	}
}

func TestTCPCollector(t *testing.T) {
	c := dnstaptest.StartTCPCollector(t)
	opts := fastOpts("")
	opts.Network, opts.Address = "tcp", c.Addr()
	w := dnstap.New(opts)
	waitConnected(t, w)
	w.Log(clientEvent())
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if m := c.Next(t).GetMessage(); m.GetType() != tap.Message_CLIENT_QUERY || !bytes.Equal(m.GetQueryMessage(), query) {
		t.Fatalf("over TCP: %v", m)
	}
}

func TestMessagesSelectsKinds(t *testing.T) {
	path := dnstaptest.SockPath(t)
	c := dnstaptest.StartCollector(t, path)
	opts := fastOpts(path)
	opts.Client = false
	w := dnstap.New(opts)
	waitConnected(t, w)
	w.Log(clientEvent())
	w.Log(&dnstap.Event{Forwarder: true, Protocol: dnstap.UDP, QueryTime: t0, Query: query, Response: reply})
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if m := c.Next(t).GetMessage(); m.GetType() != tap.Message_FORWARDER_QUERY {
		t.Fatalf("first frame is %v, want FORWARDER_QUERY (client messages are off)", m.GetType())
	}
	if m := c.Next(t).GetMessage(); m.GetType() != tap.Message_FORWARDER_RESPONSE {
		t.Fatalf("second frame is %v", m.GetType())
	}
}

// TestCloseWritesOutTheQueue: what is queued when Close is called reaches
// the collector.
func TestCloseWritesOutTheQueue(t *testing.T) {
	path := dnstaptest.SockPath(t)
	c := dnstaptest.StartCollector(t, path)
	w := dnstap.New(fastOpts(path))
	waitConnected(t, w)
	const n = 500
	for range n {
		if !w.Log(clientEvent()) {
			t.Fatal("queue full with 500 events and the default size")
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range 2 * n {
		select {
		case <-c.Frames:
		case <-time.After(5 * time.Second):
			t.Fatalf("got %d frames of %d after Close", i, 2*n)
		}
	}
	if got := w.Stats().Sent.Load(); got != n {
		t.Errorf("sent = %d, want %d", got, n)
	}
	if w.Log(clientEvent()) {
		t.Error("Log accepted an event after Close")
	}
}

// TestDeadCollector: with no collector, Log never waits; the queue fills,
// the rest is dropped and counted; when the collector comes up the writer
// connects and delivers the queue; when it restarts, the writer reconnects.
func TestDeadCollector(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tap.sock")
	opts := fastOpts(path)
	opts.QueueSize = 100
	w := dnstap.New(opts)
	defer w.Close()

	const n = 5000
	start := time.Now()
	var slowest time.Duration
	for range n {
		s := time.Now()
		w.Log(clientEvent())
		slowest = max(slowest, time.Since(s))
	}
	// Generous bounds for a busy machine: a blocked Log would wait for a
	// connection that never comes.
	if took := time.Since(start); took > 5*time.Second || slowest > time.Second {
		t.Fatalf("%d Log calls took %v (slowest %v) with the collector away", n, took, slowest)
	}
	if got := w.Stats().Dropped.Load(); got != n-100 {
		t.Fatalf("dropped = %d, want %d (all but the queue)", got, n-100)
	}
	if w.Connected() {
		t.Fatal("connected to nothing")
	}

	c := dnstaptest.StartCollector(t, path)
	for i := range 200 {
		select {
		case <-c.Frames:
		case <-time.After(10 * time.Second):
			t.Fatalf("after the collector came up, %d frames of 200 arrived", i)
		}
	}

	// The collector restarts: the writer notices on its next write,
	// reconnects with backoff, and events flow again.
	c.Stop()
	c2 := dnstaptest.StartCollector(t, path)
	deadline := time.Now().Add(10 * time.Second)
	for {
		w.Log(clientEvent())
		select {
		case f := <-c2.Frames:
			if m := dnstaptest.Decode(t, f).GetMessage(); m.GetType() != tap.Message_CLIENT_QUERY && m.GetType() != tap.Message_CLIENT_RESPONSE {
				t.Fatalf("unexpected %v", m.GetType())
			}
			if !w.Connected() {
				t.Error("frames arrive but Connected() is false")
			}
			return
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("no frame reached the restarted collector within 10s")
		}
	}
}

// TestFstrmCapture: Debian's fstrm_capture accepts the stream and what it
// writes decodes as the events sent.
func TestFstrmCapture(t *testing.T) {
	dir := t.TempDir()
	f := dnstaptest.StartFstrm(t, filepath.Join(dir, "tap.sock"), filepath.Join(dir, "cap.fstrm"))
	w := dnstap.New(fastOpts(f.Socket))
	waitConnected(t, w)
	for range 3 {
		w.Log(clientEvent())
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	frames := f.Frames(t)
	if len(frames) != 6 {
		t.Fatalf("fstrm_capture wrote %d frames, want 6", len(frames))
	}
	for i, d := range frames {
		want := tap.Message_CLIENT_QUERY
		if i%2 == 1 {
			want = tap.Message_CLIENT_RESPONSE
		}
		m := d.GetMessage()
		if m.GetType() != want || string(d.GetIdentity()) != "ns1.example" {
			t.Errorf("frame %d: %v from %q", i, m.GetType(), d.GetIdentity())
		}
		if p := dnstaptest.PolicyOf(t, m); p == nil || p.Rule != "au-gov deepseek.com" {
			t.Errorf("frame %d: policy %+v", i, p)
		}
	}
}

// TestHungCollector: a collector that accepts and then stops reading fills
// the socket; the writer's writes time out, it reconnects, and Log never
// waits meanwhile: the queue fills and the rest is dropped and counted.
func TestHungCollector(t *testing.T) {
	path := dnstaptest.SockPath(t)
	c := dnstaptest.StartCollector(t, path)
	opts := fastOpts(path)
	opts.QueueSize = 1000
	opts.Timeout = time.Second
	w := dnstap.New(opts)
	defer w.Close()
	waitConnected(t, w)
	c.Stall()
	big := clientEvent()
	big.Response = make([]byte, 4000) // fills the socket buffer sooner
	deadline := time.Now().Add(20 * time.Second)
	var slowest time.Duration
	for w.Stats().Dropped.Load() == 0 || c.Accepted() < 2 {
		s := time.Now()
		w.Log(big)
		slowest = max(slowest, time.Since(s))
		if time.Now().After(deadline) {
			t.Fatalf("after 20s: dropped %d, %d connections (want drops and a reconnection)", w.Stats().Dropped.Load(), c.Accepted())
		}
		time.Sleep(50 * time.Microsecond)
	}
	// A Log that waited for the writer would wait out its write timeout.
	if slowest > 500*time.Millisecond {
		t.Errorf("a Log call took %v while the collector hung", slowest)
	}
}

// BenchmarkWriter is the cost of one event end to end: Log on the query
// path, then encoding and writing it to fstrm_capture (which writes to
// /dev/null); the queue holds every event, so none is dropped. With -cpu 1
// the writer shares the one P with the caller, as on a server whose every
// core answers queries.
func BenchmarkWriter(b *testing.B) {
	dir := b.TempDir()
	f := dnstaptest.StartFstrm(b, filepath.Join(dir, "tap.sock"), "/dev/null")
	opts := fastOpts(f.Socket)
	opts.QueueSize = b.N
	w := dnstap.New(opts)
	for !w.Connected() {
		time.Sleep(time.Millisecond)
	}
	ev := clientEvent()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		w.Log(ev)
	}
	_ = w.Close()
	b.StopTimer()
	if d := w.Stats().Dropped.Load(); d > 0 {
		b.Fatalf("%d of %d dropped", d, b.N)
	}
}
