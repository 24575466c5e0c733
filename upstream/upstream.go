// Package upstream sends queries to upstream DNS servers: one server
// (Upstream, built by Parse) or an ordered set of them with a strategy and
// per-server health (Group).
//
// Every query to an upstream is rebuilt from the client's request: a fresh
// random ID, only the question, RD, CD and an OPT record with a 1232-byte UDP
// size and the client's DO bit; over TLS and HTTPS the query is also padded
// to a multiple of 128 octets (EDNS(0) Padding, RFC 8467). Client EDNS
// options (ECS, cookies, padding, ...) are never forwarded. A reply is accepted only if it comes from the
// server, has the ID and the question of the query (RFC 5452): over UDP the
// name in the random mixed case it was sent in (0x20, unless #no-0x20),
// otherwise compared case-insensitively.
//
// Transports: UDP with TCP fallback (a few sockets per server, each with its
// own random source port and a limited number of uses, many queries in
// flight on each: see udpMux), TCP, DNS over TLS (RFC 7858: pooled,
// pipelined connections) and DNS over HTTPS (RFC 8484: HTTP/2, ID 0 on the
// wire). Encrypted upstreams always verify the server's certificate; see
// Parse.
package upstream

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/spec"
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
	// For tls:// and https:// it also bounds a connection's dial and TLS
	// handshake and a write to a DoT connection.
	Timeout time.Duration
	// RootCAs verifies the certificates of tls:// and https:// servers.
	// Default (nil): the system's roots. Verification is always on.
	RootCAs *x509.CertPool
	// MaxConns is the largest number of connections a tls:// upstream
	// keeps open; queries are pipelined on each. Default 2.
	MaxConns int
	// IdleTimeout closes a tls:// or https:// connection that has had no
	// query in flight for this long. Default 20s.
	IdleTimeout time.Duration
	// OnDrop, if set, is called for every reply a plain (udp:// or tcp://)
	// upstream read and threw away: reason is "id" (no query with that ID
	// is waiting: a forgery, a duplicate or a late reply), "question" (the
	// question differs in name, type or class), "case" (the name matches
	// only case-insensitively: 0x20 caught it), "source" (not from the
	// server's address and port), "malformed" or "overflow" (a UDP reply
	// the kernel dropped unread because the socket's receive buffer was
	// full, counted on Linux when the socket's next datagram is read or
	// when it is closed; its query times out). It must be cheap and safe
	// for concurrent use (a metric); it is called from a socket's reader.
	OnDrop func(reason string)
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
	// defaultMaxConns and defaultIdleTimeout are the defaults of
	// Options.MaxConns and Options.IdleTimeout.
	defaultMaxConns    = 2
	defaultIdleTimeout = 20 * time.Second
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
//	IP[:port]                        UDP, retried over TCP when the reply is truncated
//	udp://IP[:port]                  the same
//	tcp://IP[:port]                  TCP only
//	tls://IP[:port][#servername]     DNS over TLS (RFC 7858), default port 853
//	https://IP[:port][/path][#opts]  DNS over HTTPS (RFC 8484), default port 443
//
// The default port is 53 unless said otherwise. IPv6 addresses with a port
// go in brackets ("[2001:db8::1]:5353"); a bare IPv6 address ("2001:db8::1")
// means the default port.
//
// Host names are rejected for every scheme: there is no bootstrap resolver,
// so the address to connect to must be an IP literal. For tls:// and
// https:// the certificate is always verified (against Options.RootCAs,
// default the system roots), for the server name given after '#'
// ("tls://192.0.2.1#dns.example", "https://192.0.2.1/dns-query#dns.example")
// or, without one, for the IP address itself (the certificate must then
// list the IP). The server name is also sent as SNI and, for DoH, as the
// HTTP Host (":authority").
//
// For https:// the path defaults to /dns-query, a trailing RFC 8484 URI
// template "{?dns}" is ignored, and the fragment is a comma-separated list
// of at most one server name and the method: "post" (default) or "get"
// ("https://192.0.2.1/dns-query#dns.example,get").
//
// Upstreams hold sockets or connections (UDP socket pools, DoT and DoH
// connections): they implement io.Closer (see Group.Close).
func Parse(s string, opts Options) (Upstream, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		scheme, rest = "", s
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	switch strings.ToLower(scheme) {
	case "", "udp", "tcp":
	case "tls":
		return parseDoT(s, rest, opts, timeout)
	case "https":
		return parseDoH(s, rest, opts, timeout)
	default:
		return nil, fmt.Errorf("upstream %q: unknown scheme %q (want udp://, tcp://, tls://, https:// or none)", s, scheme)
	}
	tcpOnly := strings.EqualFold(scheme, "tcp")
	rest, frag, _ := strings.Cut(rest, "#")
	noCase := false
	switch {
	case frag == "":
	case frag == NoCaseRandomization && !tcpOnly:
		noCase = true
	default:
		return nil, fmt.Errorf("upstream %q: unknown option %q (udp upstreams take #%s)", s, frag, NoCaseRandomization)
	}
	ap, err := parseAddrPort(rest, 53)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", s, err)
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	u := &server{addr: ap.String(), tcpOnly: tcpOnly, caseRandom: !tcpOnly && !noCase, timeout: timeout, onDrop: opts.OnDrop}
	u.mux.raddr, u.mux.onDrop = ap, opts.OnDrop
	if u.tcpOnly {
		u.name = "tcp://" + u.addr
	} else {
		u.name = "udp://" + u.addr
	}
	return u, nil
}

// parseAddrPort parses IP[:port], with defPort when the port is missing.
func parseAddrPort(s string, defPort uint16) (netip.AddrPort, error) {
	if a, err := netip.ParseAddr(s); err == nil { // IPv4 or bare IPv6, no port
		return netip.AddrPortFrom(a, defPort), nil
	}
	if inner, ok := strings.CutPrefix(s, "["); ok {
		if inner, ok := strings.CutSuffix(inner, "]"); ok { // [IPv6] without port
			a, err := netip.ParseAddr(inner)
			if err != nil || !a.Is6() {
				return netip.AddrPort{}, fmt.Errorf("%q is not an IPv6 address", inner)
			}
			return netip.AddrPortFrom(a, defPort), nil
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

// NoCaseRandomization, as the fragment of a UDP upstream, turns 0x20 off
// for a server that does not echo the question's case: spec's, where the
// configuration checks it.
const NoCaseRandomization = spec.NoCaseRandomization

// server is a plain DNS server over UDP (with TCP on truncation) or TCP only.
type server struct {
	addr       string // "IP:port", IPv6 in brackets
	name       string
	tcpOnly    bool
	caseRandom bool // 0x20: mixed-case query names, answers checked case-exactly
	timeout    time.Duration
	mux        udpMux
	onDrop     func(reason string)
}

// dropped counts a reply read and thrown away.
func (u *server) dropped(err error) {
	if u.onDrop == nil {
		return
	}
	var me *mismatchError
	if errors.As(err, &me) {
		u.onDrop(me.reason)
		return
	}
	u.onDrop("malformed")
}

// Close closes the UDP sockets, each once its queries in flight are over.
// Exchange keeps working afterwards, with a new socket per query.
func (u *server) Close() error {
	u.mux.close()
	return nil
}

var _ Upstream = (*server)(nil)

func (u *server) String() string { return u.name }

// udpBuf is the size of the buffer a UDP reply is read into: the size
// advertised upstream with room to spare. A datagram bigger than that is
// bigger than we asked for and is retried over TCP (see muxSock.dispatch).
const udpBuf = 4096

// Exchange implements Upstream.
func (u *server) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	now := time.Now()
	return u.exchangeBy(ctx, m, now, now.Add(u.timeout))
}

var _ deadlineExchanger = (*server)(nil)

// exchangeBy is Exchange bounded by deadline as well as by ctx (ctx's own
// deadline, if earlier, wins). No context is derived: the deadline goes on
// the socket. now is a time.Now reading the caller took just before.
func (u *server) exchangeBy(ctx context.Context, m *dns.Msg, now, deadline time.Time) (*dns.Msg, error) {
	if len(m.Question) != 1 {
		return nil, fmt.Errorf("%s: %w", u.name, ErrBadRequest)
	}
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	out, err := appendQuery(make([]byte, 0, 12+256+4+11), m)
	if err != nil {
		return nil, fmt.Errorf("%s: packing query: %w", u.name, err)
	}
	q := sentQuery{id: binary.BigEndian.Uint16(out), question: m.Question[0]}
	if u.caseRandom {
		// The question as sent (header excluded): a reply must repeat it
		// byte for byte. The name as the client wrote it is kept to be put
		// back into the reply before it is unpacked.
		qlen := len(out) - 12 - optLen
		if free := out[len(out):cap(out)]; len(free) >= qlen {
			// Behind the query in its own buffer (nothing appends to
			// it): one allocation fewer.
			q.orig = append(free[:0:qlen], out[12:12+qlen]...)
		} else {
			q.orig = append(make([]byte, 0, qlen), out[12:12+qlen]...)
		}
		randomizeCase(out[12 : 12+qlen-4])
		q.sent = out[12 : 12+qlen]
	}
	var resp *dns.Msg
	if u.tcpOnly {
		resp, err = u.exchangeTCP(ctx, deadline, q, out)
	} else {
		resp, err = u.exchangeUDP(ctx, now, deadline, &q, out)
		if err == nil && resp.Truncated {
			// A truncated reply: ask again over TCP with a new ID (RFC 7766),
			// in a copy (out may still be queued to be written: see
			// muxSender).
			out = append([]byte(nil), out...)
			randomID(out)
			q.id = binary.BigEndian.Uint16(out)
			resp, err = u.exchangeTCP(ctx, deadline, q, out)
		}
	}
	if err != nil {
		return nil, err
	}
	if q.sent != nil {
		restoreCase(resp, m.Question[0].Name)
	}
	resp.Id = m.Id
	return resp, nil
}

// restoreCase gives the records owned by the query name, which a server
// that does not compress wrote with the 0x20 case of the query, the name as
// the client asked it.
func restoreCase(resp *dns.Msg, name string) {
	for _, sec := range [][]dns.RR{resp.Answer, resp.Ns, resp.Extra} {
		for _, rr := range sec {
			if h := rr.Header(); h.Name != name && equalFoldASCII(h.Name, name) {
				h.Name = name
			}
		}
	}
}

// sentQuery is what a reply must match: the ID and the question sent.
type sentQuery struct {
	id       uint16
	question dns.Question
	// With 0x20, sent is the question section as sent (mixed-case name,
	// type, class), which the reply must repeat exactly, and orig the same
	// with the client's case, written over the reply's question before it
	// is unpacked: names the server compressed into the question come out as
	// the client wrote them, as they did before 0x20.
	sent, orig []byte
	// caseless (queries of Group.StartUDP to a server without 0x20): the
	// reply's question name may differ from sent in case.
	caseless bool
}

// optLen is the length of the OPT record appendQuery ends a query with.
const optLen = 11

// randomizeCase flips the case of each ASCII letter of the wire-format name
// at the start of b to a random one (draft-vixie-dnsext-dns0x20): an
// off-path forger must now guess one more bit per letter of the name as
// well as the ID and the source port. The bits come from crypto/rand.
func randomizeCase(b []byte) {
	var bits [32]byte // one bit per byte of a name of up to 255 bytes
	_, _ = rand.Read(bits[:(min(len(b), 256)+7)/8])
	setCase(b, &bits)
}

// randomIDAndCase writes a random ID into the header of the query q and
// randomizes the case of name (q's question name) as randomizeCase does,
// with one crypto/rand read for both.
func randomIDAndCase(q, name []byte) {
	var r [2 + 32]byte
	_, _ = rand.Read(r[:2+(min(len(name), 256)+7)/8])
	q[0], q[1] = r[0], r[1]
	setCase(name, (*[32]byte)(r[2:]))
}

// setCase sets the case of each ASCII letter of the wire name at the start
// of b from its bit in bits (set: upper case).
func setCase(b []byte, bits *[32]byte) {
	for i := 0; i < len(b) && i < 256; {
		l := int(b[i])
		if l == 0 || l > 63 {
			return
		}
		for j := i + 1; j <= i+l && j < len(b) && j < 256; j++ {
			// The random bit goes in as arithmetic, not a branch: half
			// of such branches would be mispredicted.
			if c := b[j] | 0x20; c-'a' < 26 {
				b[j] = c &^ (bits[j>>3] >> (j & 7) & 1 << 5)
			}
		}
		i += l + 1
	}
}

// randomID writes a random ID into the header of the query in b.
func randomID(b []byte) {
	_, _ = rand.Read(b[:2]) // never fails (crypto/rand, Go 1.24+)
}

// Header bits of the query appendQuery writes.
const (
	bitRD = 1 << 8
	bitAD = 1 << 5
	bitCD = 1 << 4
	bitDO = 1 << 15 // in the OPT TTL
)

// appendQuery appends to b the query sent upstream for the client's m,
// written as bytes: a fresh random ID, m's opcode, RD and CD, AD, m's
// question, and an OPT with our UDP size and m's DO bit. Nothing else of m
// is copied (no client EDNS option: no ECS leak). AD in a query asks a
// validating upstream to say whether the answer validated, even without DO
// (RFC 6840 §5.7); the server shows AD only to clients that asked for it.
func appendQuery(b []byte, m *dns.Msg) ([]byte, error) {
	q := m.Question[0]
	start := len(b)
	flags := uint16(m.Opcode&0xF)<<11 | bitAD
	if m.RecursionDesired {
		flags |= bitRD
	}
	if m.CheckingDisabled {
		flags |= bitCD
	}
	b = append(b, 0, 0, byte(flags>>8), byte(flags), 0, 1, 0, 0, 0, 0, 0, 1)
	randomID(b[start:])
	// PackDomainName writes into the slice's length: make room for the
	// longest name (255 bytes), then cut to what it wrote.
	nameAt := len(b)
	b = append(b, make([]byte, 256)...)
	end, err := dns.PackDomainName(q.Name, b, nameAt, nil, false)
	if err != nil {
		return nil, err
	}
	b = b[:end]
	var ttl uint32
	if opt := m.IsEdns0(); opt != nil && opt.Do() {
		ttl = bitDO
	}
	b = append(b, byte(q.Qtype>>8), byte(q.Qtype), byte(q.Qclass>>8), byte(q.Qclass),
		0, byte(dns.TypeOPT>>8), byte(dns.TypeOPT), byte(udpSize>>8), byte(udpSize&0xFF),
		byte(ttl>>24), byte(ttl>>16), byte(ttl>>8), byte(ttl), 0, 0)
	return b, nil
}

// padBlock is the block length queries over TLS and HTTPS are padded to
// (RFC 8467 §4.1: "Block-Length Padding", 128 octets for queries).
const padBlock = 128

// appendPaddedQuery is appendQuery with an EDNS(0) Padding option (RFC
// 7830) that brings the query to a multiple of padBlock octets, so that the
// length of an encrypted query says little about the name in it.
func appendPaddedQuery(b []byte, m *dns.Msg) ([]byte, error) {
	start := len(b)
	b, err := appendQuery(b, m)
	if err != nil {
		return nil, err
	}
	pad := (padBlock - (len(b)-start+4)%padBlock) % padBlock // 4: the option's code and length
	// appendQuery ends with the OPT's RDLENGTH, 0 so far.
	binary.BigEndian.PutUint16(b[len(b)-2:], uint16(4+pad))
	b = append(b, byte(dns.EDNS0PADDING>>8), byte(dns.EDNS0PADDING&0xFF), byte(pad>>8), byte(pad))
	return append(b, make([]byte, pad)...), nil
}

// withDefaultTimeout bounds ctx by d when it has no deadline of its own
// (an Exchange must return by the context's deadline).
func withDefaultTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}

// watch makes blocked I/O on c return as soon as ctx is done (miekg and the
// net package honour only deadlines, not cancellation). Call the returned
// stop when the I/O is over. A context that cannot be cancelled costs
// nothing.
func watch(ctx context.Context, c net.Conn) (stop func() bool) {
	if ctx.Done() == nil {
		return func() bool { return true }
	}
	return context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
}

// exchangeTCP sends wire over a new TCP connection and reads one reply.
// A connection per query is simple and good enough for TC fallback and for
// tcp:// upstreams with modest load; reusing connections (RFC 7766
// pipelining) is a later optimisation.
func (u *server) exchangeTCP(ctx context.Context, deadline time.Time, q sentQuery, wire []byte) (*dns.Msg, error) {
	d := net.Dialer{Deadline: deadline}
	c, err := d.DialContext(ctx, "tcp", u.addr)
	if err != nil {
		return nil, u.ioErr(ctx, "tcp dial", err)
	}
	defer c.Close()
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
		u.dropped(err)
		return nil, fmt.Errorf("%s: tcp: %w", u.name, err)
	}
	return resp, nil
}

// ioErr adds context to an I/O error, reporting ctx's error instead when
// ctx ended the I/O (the socket deadline fired or watch cut it short).
func (u *server) ioErr(ctx context.Context, op string, err error) error {
	return ioErr(ctx, u.name, op, err)
}

// ioErr adds the upstream's name and the operation to err, reporting ctx's
// error instead when ctx ended the I/O.
func ioErr(ctx context.Context, name, op string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("%s: %s: %w", name, op, cerr)
	}
	if ne := net.Error(nil); errors.Is(err, os.ErrDeadlineExceeded) || errors.As(err, &ne) && ne.Timeout() {
		// The socket deadline is ctx's deadline; its timer may fire just
		// before ctx's own.
		return fmt.Errorf("%s: %s: %w", name, op, context.DeadlineExceeded)
	}
	return fmt.Errorf("%s: %s: %w", name, op, err)
}

// match unpacks b and checks it is a reply to q: QR set, same ID, one
// question with the same type, class and name (ASCII case-insensitive; 0x20
// randomisation and servers that lowercase names are both fine). A truncated
// reply whose records do not unpack is accepted with what was read (header
// and question), since it is only used to trigger the TCP retry.
//
// With 0x20 (q.sent set) the reply's question must repeat the query's byte
// for byte, case included, and sit uncompressed right after the header; it
// is then given back the client's case (q.orig) before unpacking. b is
// changed.
func match(q sentQuery, b []byte) (*dns.Msg, error) {
	if q.sent != nil && len(b) >= 12 && binary.BigEndian.Uint16(b) == q.id {
		if binary.BigEndian.Uint16(b[4:]) != 1 || len(b) < 12+len(q.sent) {
			return nil, mismatch("question", "%d questions", binary.BigEndian.Uint16(b[4:]))
		}
		got := b[12 : 12+len(q.sent)]
		if !bytes.Equal(got, q.sent) {
			if bytes.EqualFold(got, q.sent) {
				return nil, mismatch("case", "question name %q, sent %q (0x20)", got[:len(got)-4], q.sent[:len(q.sent)-4])
			}
			return nil, mismatch("question", "question differs from the one sent")
		}
		copy(got, q.orig)
	}
	return matchReply(q.id, q.question, b)
}

// matchHead checks the header and question of a reply cut short: QR set,
// q's ID, one question, and with 0x20 the question as sent, byte for byte.
func matchHead(q sentQuery, b []byte) error {
	if len(b) < 12 || binary.BigEndian.Uint16(b) != q.id {
		return mismatch("id", "wrong ID")
	}
	if b[2]&0x80 == 0 || binary.BigEndian.Uint16(b[4:]) != 1 {
		return mismatch("question", "not a reply with one question")
	}
	if q.sent != nil && (len(b) < 12+len(q.sent) || !bytes.Equal(b[12:12+len(q.sent)], q.sent)) {
		return mismatch("question", "question differs from the one sent")
	}
	return nil
}

// mismatchError is an ErrMismatch with the reason counted by OnDrop.
type mismatchError struct {
	reason string
	msg    string
}

func (e *mismatchError) Error() string { return ErrMismatch.Error() + ": " + e.msg }
func (e *mismatchError) Unwrap() error { return ErrMismatch }

func mismatch(reason, format string, args ...any) error {
	return &mismatchError{reason: reason, msg: fmt.Sprintf(format, args...)}
}

// matchReply is match for a query with ID id and question want.
func matchReply(id uint16, want dns.Question, b []byte) (*dns.Msg, error) {
	if len(b) < 12 || binary.BigEndian.Uint16(b) != id {
		return nil, mismatch("id", "wrong ID")
	}
	resp := new(dns.Msg)
	if err := resp.Unpack(b); err != nil && !resp.Truncated {
		return nil, fmt.Errorf("unpacking reply: %w", err)
	}
	if !resp.Response {
		return nil, mismatch("question", "QR not set")
	}
	if len(resp.Question) != 1 {
		return nil, mismatch("question", "%d questions", len(resp.Question))
	}
	got := resp.Question[0]
	if got.Qtype != want.Qtype || got.Qclass != want.Qclass || !equalFoldASCII(got.Name, want.Name) {
		return nil, mismatch("question", "question %s %s, want %s %s",
			got.Name, dns.TypeToString[got.Qtype], want.Name, dns.TypeToString[want.Qtype])
	}
	return resp, nil
}

// equalFoldASCII compares DNS names (presentation or wire form)
// case-insensitively; only ASCII letters fold (RFC 4343), any other byte
// must be equal.
func equalFoldASCII[T ~string | ~[]byte](a, b T) bool {
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
