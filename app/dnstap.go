package app

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/dnstap"
	"github.com/jurisdns/jurisdns/metrics"
	"github.com/jurisdns/jurisdns/resolver"
	"github.com/jurisdns/jurisdns/upstream"
)

// dnstapSink is the dnstap output, an observer beside the enforcement log
// and the query log: it turns the server's query events (which carry the
// wire query and reply and the deciding policy hit) into CLIENT_QUERY and
// CLIENT_RESPONSE, and the upstream exchanges of the tapped upstreams into
// FORWARDER_QUERY and FORWARDER_RESPONSE. It exists only when dnstap was
// configured at start (so a server without dnstap has no query-event work on
// its fast path); a reload that changes the dnstap keys replaces the writer
// (a new connection), one that leaves them alone keeps the stream, and one
// that clears socket and tcp stops it.
type dnstapSink struct {
	cur   atomic.Pointer[dnstap.Writer]
	stats dnstap.Stats
	log   *slog.Logger

	mu      sync.Mutex // guards cfg and closing the writers
	cfg     config.Dnstap
	retired sync.WaitGroup // old writers writing out their queues
}

// newDnstapSink starts the writer of cfg and registers the metrics.
func newDnstapSink(cfg config.Dnstap, log *slog.Logger, m *metrics.Metrics) *dnstapSink {
	s := &dnstapSink{log: log}
	s.apply(cfg)
	m.Registry().MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: metrics.Namespace,
			Name:      "dnstap_dropped_total",
			Help:      "dnstap events (a query and its response) dropped: the queue was full (collector too slow or away) or the connection failed.",
		}, func() float64 { return float64(s.stats.Dropped.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: metrics.Namespace,
			Name:      "dnstap_sent_total",
			Help:      "dnstap events (a query and its response) written to the collector.",
		}, func() float64 { return float64(s.stats.Sent.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: metrics.Namespace,
			Name:      "dnstap_connected",
			Help:      "1 while a dnstap collector is connected.",
		}, func() float64 {
			if w := s.cur.Load(); w != nil && w.Connected() {
				return 1
			}
			return 0
		}),
	)
	return s
}

// apply makes cfg the dnstap configuration: nothing happens when it is the
// current one (the stream goes on); otherwise a writer for cfg (or none)
// replaces the current one, which writes out its queue in the background.
// It reports whether anything changed.
func (s *dnstapSink) apply(cfg config.Dnstap) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if w := s.cur.Load(); (w != nil || !cfg.Enabled()) && reflect.DeepEqual(normDnstap(cfg), normDnstap(s.cfg)) {
		return false
	}
	s.cfg = cfg
	var next *dnstap.Writer
	if cfg.Enabled() {
		next = dnstap.New(dnstapOptions(cfg, &s.stats, s.log))
	}
	if old := s.cur.Swap(next); old != nil {
		s.retired.Add(1)
		go func() {
			defer s.retired.Done()
			_ = old.Close()
		}()
	}
	return true
}

// normDnstap is cfg as compared by apply: messages as a set.
func normDnstap(cfg config.Dnstap) config.Dnstap {
	cfg.Messages = nil
	for _, k := range []string{"client", "forwarder"} {
		if cfg.Wants(k) {
			cfg.Messages = append(cfg.Messages, k)
		}
	}
	return cfg
}

// dnstapOptions are the writer options of cfg.
func dnstapOptions(cfg config.Dnstap, stats *dnstap.Stats, log *slog.Logger) dnstap.Options {
	o := dnstap.Options{
		Network: "unix", Address: cfg.Socket,
		Identity:  cfg.Identity,
		Version:   "jurisdns " + Version,
		Client:    cfg.Wants("client"),
		Forwarder: cfg.Wants("forwarder"),
		QueueSize: cfg.QueueSize,
		Stats:     stats,
		Logger:    log,
	}
	if cfg.TCP != "" {
		o.Network, o.Address = "tcp", cfg.TCP
	}
	if o.Identity == "" {
		o.Identity, _ = os.Hostname()
	}
	return o
}

// Close stops the writer after it wrote out its queue, and waits for
// writers replaced by reloads to do the same.
func (s *dnstapSink) Close() error {
	s.mu.Lock()
	old := s.cur.Swap(nil)
	s.mu.Unlock()
	if old != nil {
		_ = old.Close()
	}
	s.retired.Wait()
	return nil
}

// Query sends one answered (or policy-dropped) query as CLIENT_QUERY and
// CLIENT_RESPONSE. It copies what it keeps and never blocks.
func (s *dnstapSink) Query(ev *resolver.QueryEvent) {
	w := s.cur.Load()
	if w == nil {
		return
	}
	de := dnstap.Event{
		Protocol:     dnstapProtocol(ev.Proto),
		Client:       netip.AddrPortFrom(ev.Client, ev.Port),
		QueryTime:    ev.Time.Add(-ev.Duration),
		ResponseTime: ev.Time,
		Query:        ev.Query,
		Response:     ev.Response,
	}
	var pol dnstap.Policy
	if p := ev.Policy; p != nil {
		pol = dnstap.Policy{Entry: p.Rule, Action: dnstapAction(p.Action, p.Mode)}
		if j := p.Jurisdiction; j != nil {
			pol.Jurisdiction, pol.Value = j.ID, j.Instrument
		}
		if p.Name != ev.Name { // the policy matched a CNAME target
			pol.Target = p.Name
		}
		de.Policy = &pol
	}
	w.Log(&de)
}

// dnstapProtocol maps a transport to dnstap's SocketProtocol; one it does
// not know is left out of the message rather than named wrongly.
func dnstapProtocol(p resolver.Proto) dnstap.Protocol {
	switch p {
	case resolver.UDP:
		return dnstap.UDP
	case resolver.TCP:
		return dnstap.TCP
	case resolver.DoT:
		return dnstap.DoT
	case resolver.DoH:
		return dnstap.DoH
	}
	return 0
}

// dnstapAction maps a policy hit to dnstap's Policy.Action: a report-mode
// hit changes nothing (PASS); NXDOMAIN, NODATA and drop are dnstap's own;
// every other answer the policy synthesizes (null and sinkhole addresses,
// REFUSED, the SERVFAIL of a jurisdiction failing closed) is LOCAL_DATA.
func dnstapAction(action, mode string) dnstap.Action {
	if mode == "report" {
		return dnstap.ActionPASS
	}
	switch action {
	case "nxdomain":
		return dnstap.ActionNXDOMAIN
	case "nodata":
		return dnstap.ActionNODATA
	case "drop":
		return dnstap.ActionDROP
	}
	return dnstap.ActionLocalData
}

// upstreamWrapper returns what resolver.BuildOptions.Wrap calls on every
// upstream it builds: tap, or nil without dnstap.
func (s *dnstapSink) upstreamWrapper() func(upstream.Upstream) upstream.Upstream {
	if s == nil {
		return nil
	}
	return s.tap
}

// tap wraps an upstream so that its exchanges become FORWARDER_QUERY and
// FORWARDER_RESPONSE messages.
func (s *dnstapSink) tap(u upstream.Upstream) upstream.Upstream {
	proto, server := upstreamEndpoint(u.String())
	return &tappedUpstream{Upstream: u, sink: s, proto: proto, server: server}
}

// tappedUpstream is an upstream whose exchanges go to dnstap. The messages
// of Exchange are those exchanged, packed again: the upstream's own wire
// form differs in the ID (random per try; the reply shows the query's), the
// AD bit, the 0x20 case and, over TLS and HTTPS, the padding. A UDP try of
// a cache miss started without a worker (upstream.Group.StartUDP) is
// recorded from its wire bytes (TapUDP), as sent and received.
type tappedUpstream struct {
	upstream.Upstream
	sink   *dnstapSink
	proto  dnstap.Protocol
	server netip.AddrPort
}

// Exchange implements upstream.Upstream.
func (u *tappedUpstream) Exchange(ctx context.Context, m *dns.Msg) (*dns.Msg, error) {
	w := u.sink.cur.Load()
	if w == nil || !w.Options().Forwarder {
		return u.Upstream.Exchange(ctx, m)
	}
	start := time.Now()
	resp, err := u.Upstream.Exchange(ctx, m)
	ev := dnstap.Event{Forwarder: true, Protocol: u.proto, Server: u.server, QueryTime: start, ResponseTime: time.Now()}
	// m is shared with the group's other tries (strategy parallel), and
	// Pack writes the extended rcode into the OPT record: pack a shallow
	// copy with its own OPT. The reply is ours alone until we return it.
	q, perr := packShared(m)
	if perr != nil {
		return resp, err
	}
	ev.Query = q
	if err == nil && resp != nil {
		if r, perr := resp.Pack(); perr == nil {
			ev.Response = r
		}
	}
	w.Log(&ev)
	return resp, err
}

// Unwrap implements upstream.UDPTap.
func (u *tappedUpstream) Unwrap() upstream.Upstream { return u.Upstream }

// TapUDP implements upstream.UDPTap: the query and reply bytes of a
// StartUDP try (the reply nil when it got none).
func (u *tappedUpstream) TapUDP(query, reply []byte, queryTime, responseTime time.Time) {
	w := u.sink.cur.Load()
	if w == nil || !w.Options().Forwarder {
		return
	}
	w.Log(&dnstap.Event{Forwarder: true, Protocol: u.proto, Server: u.server, QueryTime: queryTime, ResponseTime: responseTime,
		Query: query, Response: reply})
}

var _ upstream.UDPTap = (*tappedUpstream)(nil)

// packShared packs m without writing to it: the header and question as
// they are, every other record shared except an OPT, which is copied.
func packShared(m *dns.Msg) ([]byte, error) {
	c := &dns.Msg{MsgHdr: m.MsgHdr, Compress: m.Compress, Question: m.Question, Answer: m.Answer, Ns: m.Ns}
	c.Extra = make([]dns.RR, len(m.Extra))
	for i, rr := range m.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			cp := *o
			rr = &cp
		}
		c.Extra[i] = rr
	}
	return c.Pack()
}

// Close closes the wrapped upstream when it holds connections.
func (u *tappedUpstream) Close() error {
	if c, ok := u.Upstream.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// upstreamEndpoint reads the transport and address from an upstream's name
// ("udp://192.0.2.53:53", "tcp://…", "tls://192.0.2.1:853#dns.example",
// "https://192.0.2.1/dns-query").
func upstreamEndpoint(name string) (dnstap.Protocol, netip.AddrPort) {
	scheme, rest, _ := strings.Cut(name, "://")
	proto, port := dnstap.UDP, uint16(53)
	switch scheme {
	case "tcp":
		proto = dnstap.TCP
	case "tls":
		proto, port = dnstap.DoT, 853
	case "https":
		proto, port = dnstap.DoH, 443
		if u, err := url.Parse(name); err == nil {
			rest = u.Host
		}
	}
	rest, _, _ = strings.Cut(rest, "#")
	if ap, err := netip.ParseAddrPort(rest); err == nil {
		return proto, ap
	}
	if a, err := netip.ParseAddr(strings.Trim(rest, "[]")); err == nil {
		return proto, netip.AddrPortFrom(a, port)
	}
	return proto, netip.AddrPort{}
}

// applyDnstap applies a reloaded configuration's dnstap keys. Turning dnstap
// on needs a restart (see dnstapSink); the caller holds reloadMu.
func (a *App) applyDnstap(cfg *config.Config) {
	if a.tap == nil {
		if cfg.Dnstap.Enabled() {
			a.log.Warn("setting changed: restart jurisdns to apply it (a reload does not)", "key", "dnstap",
				"reason", "dnstap was off at start")
		}
		return
	}
	if a.tap.apply(cfg.Dnstap) {
		a.log.Info("dnstap configuration changed", "enabled", cfg.Dnstap.Enabled(), "socket", cfg.Dnstap.Socket, "tcp", cfg.Dnstap.TCP,
			"messages", cfg.Dnstap.Messages)
	}
}
