// Package upstream sends queries to upstream DNS servers: one server
// (Upstream, built by Parse) or an ordered set of them with a strategy and
// per-server health (Group).
//
// Every query to an upstream is rebuilt from the client's request: a fresh
// random ID, only the question, RD, CD and an OPT record with a 1232-byte UDP
// size and the client's DO bit. Client EDNS options (ECS, cookies, padding,
// ...) are never forwarded. A reply is accepted only if it comes from the
// server, has the ID and the question (compared case-insensitively) of the
// query (RFC 5452).
package upstream

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Upstream sends one query to one server.
//
// Exchange must be safe for concurrent use, must not modify m, and must
// return by ctx's deadline. m must have exactly one question. The returned
// reply carries m's ID (not the ID used upstream) and is owned by the caller.
type Upstream interface {
	Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error)
	// String names the upstream for logs and metrics, e.g. "udp://192.0.2.53:53".
	String() string
}

// Options tune the upstreams built by Parse. The zero value is usable.
type Options struct {
	// Timeout bounds an Exchange whose context has no deadline. Default 2s.
	Timeout time.Duration
}

const (
	// udpSize is the EDNS0 UDP payload size advertised upstream
	// (DNS flag day 2020: avoids IP fragmentation).
	udpSize = 1232
	// defaultTimeout bounds an exchange whose context has no deadline.
	defaultTimeout = 2 * time.Second
	// maxMsg is the largest DNS message; a UDP read buffer of this size can
	// hold any datagram an upstream sends, even one ignoring our 1232.
	maxMsg = 65535
)

// Errors returned (wrapped) by Exchange.
var (
	// ErrMismatch means the reply's ID or question did not match the query.
	ErrMismatch = errors.New("reply does not match the query")
	// ErrBadRequest means the message to send did not have exactly one question.
	ErrBadRequest = errors.New("request must have exactly one question")
)

// Parse builds an Upstream from s:
//
//	IP[:port]         UDP, retried over TCP when the reply is truncated
//	udp://IP[:port]   the same
//	tcp://IP[:port]   TCP only
//
// The default port is 53. IPv6 addresses with a port go in brackets
// ("[2001:db8::1]:5353"); a bare IPv6 address ("2001:db8::1") means port 53.
// Host names are rejected: there is no bootstrap resolver. tls:// and
// https:// are not supported yet.
func Parse(s string, opts Options) (Upstream, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		scheme, rest = "", s
	}
	switch strings.ToLower(scheme) {
	case "", "udp", "tcp":
	case "tls", "https":
		return nil, fmt.Errorf("upstream %q: %s:// is not supported yet", s, scheme)
	default:
		return nil, fmt.Errorf("upstream %q: unknown scheme %q (want udp://, tcp:// or none)", s, scheme)
	}
	ap, err := parseAddrPort(rest)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", s, err)
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	u := &server{addr: ap.String(), tcpOnly: strings.EqualFold(scheme, "tcp"), timeout: timeout}
	if u.tcpOnly {
		u.name = "tcp://" + u.addr
	} else {
		u.name = "udp://" + u.addr
	}
	return u, nil
}

func parseAddrPort(s string) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil { // IPv4 or bare IPv6, no port
		return netip.AddrPortFrom(a, 53), nil
	}
	if inner, ok := strings.CutPrefix(s, "["); ok {
		if inner, ok := strings.CutSuffix(inner, "]"); ok { // [IPv6] without port
			a, err := netip.ParseAddr(inner)
			if err != nil || !a.Is6() {
				return netip.AddrPort{}, fmt.Errorf("%q is not an IPv6 address", inner)
			}
			return netip.AddrPortFrom(a, 53), nil
		}
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("want IP[:port] (host names are not supported: no bootstrap resolver): %w", err)
	}
	if ap.Port() == 0 {
		return netip.AddrPort{}, errors.New("port 0")
	}
	return ap, nil
}

// server is a plain DNS server over UDP (with TCP on truncation) or TCP only.
type server struct {
	addr    string // "IP:port", IPv6 in brackets
	name    string
	tcpOnly bool
	timeout time.Duration
}

var _ Upstream = (*server)(nil)

func (u *server) String() string { return u.name }

var bufPool = sync.Pool{New: func() any { b := make([]byte, maxMsg); return &b }}

// Exchange implements Upstream.
func (u *server) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	if len(m.Question) != 1 {
		return nil, fmt.Errorf("%s: %w", u.name, ErrBadRequest)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, u.timeout)
		defer cancel()
	}
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	q := upstreamQuery(m)
	wire, err := q.PackBuffer((*bp)[:0])
	if err != nil {
		return nil, fmt.Errorf("%s: packing query: %w", u.name, err)
	}
	// wire aliases the pooled buffer; keep a copy so the UDP read can reuse it.
	out := make([]byte, len(wire))
	copy(out, wire)

	var resp *dns.Msg
	if u.tcpOnly {
		resp, err = u.exchangeTCP(ctx, q, out)
	} else {
		resp, err = u.exchangeUDP(ctx, q, out, *bp)
		if err == nil && resp.Truncated {
			// A truncated reply: ask again over TCP with a new ID (RFC 7766).
			q.Id = dns.Id()
			binary.BigEndian.PutUint16(out, q.Id)
			resp, err = u.exchangeTCP(ctx, q, out)
		}
	}
	if err != nil {
		return nil, err
	}
	resp.Id = m.Id
	return resp, nil
}

// upstreamQuery builds the message sent upstream for the client's m: a fresh
// random ID, m's question, RD and CD, and OPT with our UDP size and m's DO
// bit. Nothing else of m is copied (no client EDNS option: no ECS leak).
func upstreamQuery(m *dns.Msg) *dns.Msg {
	q := &dns.Msg{
		MsgHdr: dns.MsgHdr{
			Id:               dns.Id(),
			Opcode:           m.Opcode,
			RecursionDesired: m.RecursionDesired,
			CheckingDisabled: m.CheckingDisabled,
		},
		Question: []dns.Question{m.Question[0]},
	}
	do := false
	if opt := m.IsEdns0(); opt != nil {
		do = opt.Do()
	}
	q.SetEdns0(udpSize, do)
	return q
}

// watch makes blocked I/O on c return as soon as ctx is done (miekg and the
// net package honour only deadlines, not cancellation). Call the returned
// stop when the I/O is over.
func watch(ctx context.Context, c net.Conn) (stop func() bool) {
	return context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
}

// exchangeUDP sends wire over a new UDP socket and reads until a matching
// reply arrives or ctx is done.
//
// A new connected socket per query gives every query a fresh random source
// port (RFC 5452 §9.2) and lets the kernel drop datagrams from any other
// address than the server's. A reply with the wrong ID or question is
// ignored and reading goes on: a spoofed or stale datagram must not kill the
// real answer that may still come.
func (u *server) exchangeUDP(ctx context.Context, q *dns.Msg, wire, buf []byte) (*dns.Msg, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "udp", u.addr)
	if err != nil {
		return nil, u.ioErr(ctx, "udp dial", err)
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	if err := c.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("%s: set deadline: %w", u.name, err)
	}
	defer watch(ctx, c)()
	if _, err := c.Write(wire); err != nil {
		return nil, u.ioErr(ctx, "udp write", err)
	}
	mismatched := 0
	for {
		n, err := c.Read(buf)
		if err != nil {
			err = u.ioErr(ctx, "udp read", err)
			if mismatched > 0 {
				err = fmt.Errorf("%w (ignored %d non-matching replies)", err, mismatched)
			}
			return nil, err
		}
		resp, err := match(q, buf[:n])
		if err != nil {
			mismatched++
			continue
		}
		return resp, nil
	}
}

// exchangeTCP sends wire over a new TCP connection and reads one reply.
// A connection per query is simple and good enough for TC fallback and for
// tcp:// upstreams with modest load; reusing connections (RFC 7766
// pipelining) is a later optimisation.
func (u *server) exchangeTCP(ctx context.Context, q *dns.Msg, wire []byte) (*dns.Msg, error) {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", u.addr)
	if err != nil {
		return nil, u.ioErr(ctx, "tcp dial", err)
	}
	defer c.Close()
	deadline, _ := ctx.Deadline()
	if err := c.SetDeadline(deadline); err != nil {
		return nil, fmt.Errorf("%s: set deadline: %w", u.name, err)
	}
	defer watch(ctx, c)()
	framed := make([]byte, 2+len(wire))
	binary.BigEndian.PutUint16(framed, uint16(len(wire)))
	copy(framed[2:], wire)
	if _, err := c.Write(framed); err != nil {
		return nil, u.ioErr(ctx, "tcp write", err)
	}
	var l [2]byte
	if _, err := io.ReadFull(c, l[:]); err != nil {
		return nil, u.ioErr(ctx, "tcp read", err)
	}
	b := make([]byte, binary.BigEndian.Uint16(l[:]))
	if _, err := io.ReadFull(c, b); err != nil {
		return nil, u.ioErr(ctx, "tcp read", err)
	}
	resp, err := match(q, b)
	if err != nil {
		return nil, fmt.Errorf("%s: tcp: %w", u.name, err)
	}
	return resp, nil
}

// ioErr adds context to an I/O error, reporting ctx's error instead when
// ctx ended the I/O (the socket deadline fired or watch cut it short).
func (u *server) ioErr(ctx context.Context, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %s: %w", u.name, op, cerr)
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		// The socket deadline is ctx's deadline; its timer may fire just
		// before ctx's own.
		return fmt.Errorf("%s: %s: %w", u.name, op, context.DeadlineExceeded)
	}
	return fmt.Errorf("%s: %s: %w", u.name, op, err)
}

// match unpacks b and checks it is a reply to q: QR set, same ID, one
// question with the same type, class and name (ASCII case-insensitive; 0x20
// randomisation and servers that lowercase names are both fine). A truncated
// reply whose records do not unpack is accepted with what was read (header
// and question), since it is only used to trigger the TCP retry.
func match(q *dns.Msg, b []byte) (*dns.Msg, error) {
	if len(b) < 12 || binary.BigEndian.Uint16(b) != q.Id {
		return nil, fmt.Errorf("%w: wrong ID", ErrMismatch)
	}
	resp := new(dns.Msg)
	if err := resp.Unpack(b); err != nil && !resp.Truncated {
		return nil, fmt.Errorf("unpacking reply: %w", err)
	}
	if !resp.Response {
		return nil, fmt.Errorf("%w: QR not set", ErrMismatch)
	}
	if len(resp.Question) != 1 {
		return nil, fmt.Errorf("%w: %d questions", ErrMismatch, len(resp.Question))
	}
	want, got := q.Question[0], resp.Question[0]
	if got.Qtype != want.Qtype || got.Qclass != want.Qclass || !equalFoldASCII(got.Name, want.Name) {
		return nil, fmt.Errorf("%w: question %s %s, want %s %s", ErrMismatch,
			got.Name, dns.TypeToString[got.Qtype], want.Name, dns.TypeToString[want.Qtype])
	}
	return resp, nil
}

// equalFoldASCII compares DNS names case-insensitively; only ASCII letters
// fold (RFC 4343).
func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
