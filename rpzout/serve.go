package rpzout

import (
	"errors"
	"iter"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/internal/dnsname"
)

// maxEnvelope bounds the records of one transfer message (64 KiB).
const maxEnvelope = 60 << 10

// Serve answers a query for a served zone: SOA (UDP or TCP), AXFR and IXFR
// (TCP; IXFR over UDP gets the SOA, which says "use TCP"). It writes every
// message with write and reports true; it reports false, writing nothing,
// for any other query (another zone, another type), which then takes the
// normal path. pkt is the query as received, for its TSIG.
func (s *Server) Serve(pkt []byte, m *dns.Msg, client netip.AddrPort, tcp bool, write func([]byte) error) bool {
	if m.Opcode != dns.OpcodeQuery || len(m.Question) != 1 || m.Question[0].Qclass != dns.ClassINET {
		return false
	}
	q := m.Question[0]
	switch q.Qtype {
	case dns.TypeSOA, dns.TypeAXFR, dns.TypeIXFR:
	default:
		return false
	}
	if !tcp && q.Qtype == dns.TypeAXFR {
		return false
	}
	s.mu.RLock()
	z := s.zones[dnsname.Canonical(q.Name)]
	opts := s.opts
	s.mu.RUnlock()
	if z == nil {
		return false
	}
	w := &writer{write: write, client: client}
	fail := func(rcode int) bool {
		r := new(dns.Msg)
		r.SetRcode(m, rcode)
		if ts := m.IsTsig(); ts != nil && w.verified {
			r.SetTsig(ts.Hdr.Name, ts.Algorithm, ts.Fudge, time.Now().Unix())
		}
		_ = w.WriteMsg(r)
		return true
	}
	if k := opts.Key; k != nil {
		ts := m.IsTsig()
		if ts == nil || dnsname.Canonical(ts.Hdr.Name) != k.Name {
			s.log.Warn("rpz_out query refused: not signed with rpz_out.tsig_key", "client", client.Addr(), "zone", z.name)
			return fail(dns.RcodeNotAuth)
		}
		if err := dns.TsigVerify(pkt, k.Secret, "", false); err != nil {
			s.log.Warn("rpz_out query refused: bad TSIG", "client", client.Addr(), "zone", z.name, "err", err)
			return fail(dns.RcodeNotAuth)
		}
		w.secret, w.mac, w.verified = k.Secret, ts.MAC, true
	}
	if !allowed(opts.Allow, client.Addr()) {
		s.log.Warn("rpz_out query refused: client not in rpz_out.allow", "client", client.Addr(), "zone", z.name,
			"type", dns.TypeToString[q.Qtype])
		return fail(dns.RcodeRefused)
	}
	single := func(rrs ...dns.RR) bool {
		r := new(dns.Msg)
		r.SetReply(m)
		r.Authoritative = true
		r.Answer = rrs
		if ts := m.IsTsig(); ts != nil && w.verified {
			r.SetTsig(ts.Hdr.Name, ts.Algorithm, ts.Fudge, time.Now().Unix())
		}
		_ = w.WriteMsg(r)
		return true
	}
	switch {
	case q.Qtype == dns.TypeSOA:
		return single(z.soa)
	case q.Qtype == dns.TypeIXFR && !tcp:
		return single(z.soa)
	case q.Qtype == dns.TypeIXFR:
		var have *dns.SOA
		for _, rr := range m.Ns {
			if soa, ok := rr.(*dns.SOA); ok {
				have = soa
			}
		}
		if have == nil {
			return fail(dns.RcodeFormatError)
		}
		if !serialNewer(z.soa.Serial, have.Serial) {
			return single(z.soa) // up to date
		}
		if rrs := z.incremental(have.Serial); rrs != nil {
			s.out(w, m, slices.Values(rrs))
			s.log.Info("rpz_out IXFR", "zone", z.name, "client", client.Addr(), "from", have.Serial, "to", z.soa.Serial)
			return true
		}
	}
	s.out(w, m, z.full)
	s.log.Info("rpz_out AXFR", "zone", z.name, "client", client.Addr(), "serial", z.soa.Serial, "records", z.records())
	return true
}

// full yields the zone as an AXFR: SOA, apex records, triggers, SOA. The
// triggers' records are made as they are sent.
func (z *zone) full(yield func(dns.RR) bool) {
	if !yield(z.soa) {
		return
	}
	for _, rr := range z.apex {
		if !yield(rr) {
			return
		}
	}
	for i := range z.records() {
		if !yield(z.rr(i)) {
			return
		}
	}
	yield(z.soa)
}

// incremental is the IXFR answer (RFC 1995) from serial to the current
// one, or nil when the journal does not reach back to serial.
func (z *zone) incremental(serial uint32) []dns.RR {
	start := -1
	for i, g := range z.journal {
		if g.from.Serial == serial {
			start = i
		}
	}
	if start < 0 {
		return nil
	}
	out := []dns.RR{z.soa}
	for _, g := range z.journal[start:] {
		out = append(out, g.from)
		out = append(out, g.del...)
		out = append(out, g.to)
		out = append(out, g.add...)
	}
	return append(out, z.soa)
}

// out sends rrs with miekg/dns's Transfer.Out, in messages of at most
// maxEnvelope bytes, made while the previous ones are written (a
// million-record zone is never held whole).
func (s *Server) out(w *writer, m *dns.Msg, rrs iter.Seq[dns.RR]) {
	ch := make(chan *dns.Envelope, 1)
	stop := make(chan struct{}) // Out returned: the producer stops
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer close(ch)
		var env []dns.RR
		size := 0
		send := func() bool {
			select {
			case ch <- &dns.Envelope{RR: env}:
				env, size = nil, 0
				return true
			case <-stop:
				return false
			}
		}
		for rr := range rrs {
			l := dns.Len(rr)
			if size+l > maxEnvelope && len(env) > 0 && !send() {
				return
			}
			env = append(env, rr)
			size += l
		}
		send()
	}()
	t := new(dns.Transfer)
	err := t.Out(w, m, ch)
	close(stop)
	<-done
	if err != nil {
		s.log.Warn("rpz_out transfer interrupted", "client", w.client.Addr(), "zone", m.Question[0].Name, "err", err)
	}
}

func allowed(allow []netip.Prefix, a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func serialNewer(a, b uint32) bool { return a != b && int32(a-b) > 0 }

// writer is the dns.ResponseWriter Transfer.Out writes through: each
// message packed (and signed, continuing the TSIG chain of RFC 8945 §5.3.1,
// when the query was) and handed to the listener's write function.
type writer struct {
	write      func([]byte) error
	client     netip.AddrPort
	secret     string
	mac        string // the request's MAC, then each answer's
	verified   bool
	timersOnly bool
}

var errNoTSIG = errors.New("query not signed")

func (w *writer) WriteMsg(m *dns.Msg) error {
	if m.IsTsig() != nil && w.verified {
		out, mac, err := dns.TsigGenerate(m, w.secret, w.mac, w.timersOnly)
		if err != nil {
			return err
		}
		w.mac = mac
		return w.write(out)
	}
	out, err := m.Pack()
	if err != nil {
		return err
	}
	return w.write(out)
}

func (w *writer) Write(b []byte) (int, error) { return len(b), w.write(b) }
func (w *writer) LocalAddr() net.Addr         { return &net.TCPAddr{} }
func (w *writer) RemoteAddr() net.Addr        { return net.TCPAddrFromAddrPort(w.client) }
func (w *writer) Close() error                { return nil }
func (w *writer) Hijack()                     {}
func (w *writer) TsigTimersOnly(b bool)       { w.timersOnly = b }
func (w *writer) TsigStatus() error {
	if w.verified {
		return nil
	}
	return errNoTSIG
}

// notifier sends the queued NOTIFY messages, one secondary after the
// other, each tried three times.
func (s *Server) notifier() {
	defer s.notifyWG.Done()
	for job := range s.notifyQ {
		s.mu.RLock()
		opts := s.opts
		z := s.zones[job.zone]
		s.mu.RUnlock()
		if z == nil || z.soa.Serial != job.serial {
			continue // superseded
		}
		for _, sec := range opts.Notify {
			var err error
			for try := 0; try < 3; try++ {
				if err = s.sendNotify(opts, z, sec); err == nil {
					break
				}
			}
			if err != nil {
				s.log.Warn("rpz_out NOTIFY failed", "zone", z.name, "secondary", sec, "err", err)
			} else {
				s.log.Info("rpz_out NOTIFY sent", "zone", z.name, "secondary", sec, "serial", z.soa.Serial)
			}
		}
	}
}

func (s *Server) sendNotify(opts Options, z *zone, to netip.AddrPort) error {
	m := new(dns.Msg)
	m.SetNotify(z.name)
	m.Answer = []dns.RR{z.soa}
	c := &dns.Client{Net: "udp", Timeout: 2 * time.Second}
	if k := opts.Key; k != nil {
		c.TsigSecret = map[string]string{k.Name: k.Secret}
		m.SetTsig(k.Name, k.Algorithm, 300, time.Now().Unix())
	}
	r, _, err := c.Exchange(m, to.String())
	if err != nil {
		return err
	}
	if r.Rcode != dns.RcodeSuccess {
		return errors.New("answered " + dns.RcodeToString[r.Rcode])
	}
	return nil
}
