package upstream

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// DNS over HTTPS (RFC 8484).
//
// A doh upstream sends each query in its own HTTP request on a shared
// http.Client whose Transport keeps connections alive and speaks HTTP/2
// (falling back to HTTP/1.1 when the server offers only that); concurrent
// queries are multiplexed as HTTP/2 streams. The query has ID 0 on the wire
// (RFC 8484 §4.1, for HTTP caches), is POSTed as application/dns-message by
// default or sent with GET as ?dns=<base64url without padding>. A reply is
// accepted only with status 200, Content-Type application/dns-message, a
// body of at most 65535 bytes, ID 0 and the question of the query.
type doh struct {
	name      string
	url       string // for POST
	getPrefix string // url + "?dns=" (or "&dns=")
	host      string // the HTTP Host when a server name is given
	get       bool
	timeout   time.Duration
	client    *http.Client
	tr        *http.Transport
	dialer    net.Dialer
	closed    atomic.Bool

	mu    sync.Mutex
	conns map[*trackedConn]struct{} // open connections, closed by Close
}

var (
	_ Upstream  = (*doh)(nil)
	_ io.Closer = (*doh)(nil)
)

const dnsMessage = "application/dns-message"

func parseDoH(s, rest string, opts Options, timeout time.Duration) (Upstream, error) {
	const example = "https://192.0.2.1/dns-query#dns.example"
	rest, frag, _ := strings.Cut(rest, "#")
	rest = strings.TrimSuffix(rest, "{?dns}")
	pu, err := url.Parse("https://" + rest)
	if err != nil {
		return nil, fmt.Errorf("upstream %q: %w", s, err)
	}
	if pu.User != nil || pu.Host == "" {
		return nil, fmt.Errorf("upstream %q: want https://IP[:port][/path][#servername][,get]", s)
	}
	host := pu.Hostname()
	addr, err := netip.ParseAddr(host)
	if err != nil || addr.Zone() != "" || addr.Is6() && !strings.HasPrefix(pu.Host, "[") {
		if isHostName(host) {
			return nil, fmt.Errorf("upstream %q: %w", s, errHostName(example))
		}
		return nil, fmt.Errorf("upstream %q: %q is not an IP address", s, host)
	}
	port := pu.Port()
	if port != "" || strings.HasSuffix(pu.Host, ":") {
		if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
			return nil, fmt.Errorf("upstream %q: bad port %q", s, port)
		}
	}
	if pu.Path == "" {
		pu.Path = "/dns-query"
	}
	pu.Fragment, pu.RawFragment = "", ""

	u := &doh{timeout: timeout, dialer: net.Dialer{Timeout: timeout}, conns: make(map[*trackedConn]struct{})}
	var serverName string
	for tok := range strings.SplitSeq(frag, ",") {
		switch strings.ToLower(tok) {
		case "":
		case "get":
			u.get = true
		case "post":
			u.get = false
		default:
			if serverName != "" {
				return nil, fmt.Errorf("upstream %q: two server names in the fragment", s)
			}
			if serverName, err = checkServerName(tok); err != nil {
				return nil, fmt.Errorf("upstream %q: %w", s, err)
			}
		}
	}
	u.url = pu.String()
	if pu.RawQuery == "" {
		u.getPrefix = u.url + "?dns="
	} else {
		u.getPrefix = u.url + "&dns="
	}
	u.name = u.url
	var tags []string
	verifyName := addr.String()
	if serverName != "" {
		verifyName = serverName
		tags = append(tags, serverName)
		u.host = serverName
		if port != "" && port != "443" {
			u.host = net.JoinHostPort(serverName, port)
		}
	}
	if u.get {
		tags = append(tags, "get")
	}
	if len(tags) > 0 {
		u.name += "#" + strings.Join(tags, ",")
	}

	idle := opts.IdleTimeout
	if idle <= 0 {
		idle = defaultIdleTimeout
	}
	u.tr = &http.Transport{
		Proxy:                  nil, // never a proxy from the environment
		DialContext:            u.dial,
		TLSClientConfig:        clientTLS(verifyName, opts),
		TLSHandshakeTimeout:    timeout,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           4,
		MaxIdleConnsPerHost:    4,
		IdleConnTimeout:        idle,
		DisableCompression:     true,
		MaxResponseHeaderBytes: 64 << 10,
		HTTP2: &http.HTTP2Config{
			// Detect a dead connection rather than send queries into it.
			SendPingTimeout: 10 * time.Second,
			PingTimeout:     timeout,
		},
	}
	u.client = &http.Client{
		Transport: u.tr,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return errors.New("redirects are not followed")
		},
	}
	return u, nil
}

func (u *doh) String() string { return u.name }

// Close closes the upstream's connections, failing the queries in flight.
// Exchange fails with net.ErrClosed afterwards. Close is idempotent.
func (u *doh) Close() error {
	u.closed.Store(true)
	u.tr.CloseIdleConnections()
	// Also the connections the Transport does not see as idle yet (the
	// cleanup of a cancelled HTTP/2 stream is asynchronous) or is still
	// dialing: closing them ends their goroutines.
	u.mu.Lock()
	conns := make([]*trackedConn, 0, len(u.conns))
	for c := range u.conns {
		conns = append(conns, c)
	}
	u.mu.Unlock()
	for _, c := range conns {
		_ = c.Close()
	}
	return nil
}

// dial is the Transport's DialContext: it records every connection so that
// Close can close it.
func (u *doh) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := u.dialer.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	tc := &trackedConn{Conn: c, u: u}
	u.mu.Lock()
	u.conns[tc] = struct{}{}
	u.mu.Unlock()
	if u.closed.Load() { // Close may have missed it
		_ = tc.Close()
		return nil, net.ErrClosed
	}
	return tc, nil
}

// trackedConn is a connection of a doh upstream.
type trackedConn struct {
	net.Conn
	u    *doh
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.u.mu.Lock()
		delete(c.u.conns, c)
		c.u.mu.Unlock()
	})
	return c.Conn.Close()
}

// Exchange implements Upstream.
func (u *doh) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	if len(m.Question) != 1 {
		return nil, fmt.Errorf("%s: %w", u.name, ErrBadRequest)
	}
	if u.closed.Load() {
		return nil, fmt.Errorf("%s: %w", u.name, net.ErrClosed)
	}
	ctx, cancel := withDefaultTimeout(ctx, u.timeout)
	defer cancel()
	wire, err := appendPaddedQuery(nil, m) // padded (RFC 8467)
	if err != nil {
		return nil, fmt.Errorf("%s: packing query: %w", u.name, err)
	}
	wire[0], wire[1] = 0, 0 // ID 0 on the wire (RFC 8484 §4.1)
	var req *http.Request
	if u.get {
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.getPrefix+base64.RawURLEncoding.EncodeToString(wire), nil)
	} else {
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, u.url, bytes.NewReader(wire))
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.name, err)
	}
	if !u.get {
		req.Header.Set("Content-Type", dnsMessage)
	}
	req.Header.Set("Accept", dnsMessage)
	if u.host != "" {
		req.Host = u.host
	}
	resp, err := u.client.Do(req)
	if err != nil {
		return nil, ioErr(ctx, u.name, "https", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: HTTP status %s", u.name, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !isDNSMessage(ct) {
		return nil, fmt.Errorf("%s: reply Content-Type %q, want %s", u.name, ct, dnsMessage)
	}
	if resp.ContentLength > maxMsg {
		return nil, fmt.Errorf("%s: reply of %d bytes is larger than a DNS message", u.name, resp.ContentLength)
	}
	// Read into a buffer sized to the reply, not a 64 KB one per query.
	buf, err := io.ReadAll(io.LimitReader(resp.Body, maxMsg+1))
	if err != nil {
		return nil, ioErr(ctx, u.name, "https read", err)
	}
	if len(buf) > maxMsg {
		return nil, fmt.Errorf("%s: reply larger than a DNS message (%d bytes)", u.name, maxMsg)
	}
	n := len(buf)
	r, err := matchReply(0, m.Question[0], buf[:n])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u.name, err)
	}
	r.Id = m.Id
	return r, nil
}

// isDNSMessage reports whether a Content-Type is application/dns-message
// (parameters, if any, ignored).
func isDNSMessage(ct string) bool {
	if ct == dnsMessage {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == dnsMessage
}
