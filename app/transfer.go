package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"

	"github.com/jurisdns/jurisdns/config"
	"github.com/jurisdns/jurisdns/internal/dnsname"
	"github.com/jurisdns/jurisdns/policy"
	"github.com/jurisdns/jurisdns/resolver"
	"github.com/jurisdns/jurisdns/rpzout"
	"github.com/jurisdns/jurisdns/transfer"
)

// feeds are the RPZ sources pulled by zone transfer: one transfer.Feed per
// jurisdiction source, kept across reloads while its settings stay the
// same, each followed by its own goroutine (NOTIFY, SOA timers) once a
// runtime that uses it is in service.
type feeds struct {
	mu      sync.Mutex
	byKey   map[string]*feedRun // in service, by "jurisdiction/source"
	pending map[string]*feedRun // used by the build under way (the same or new feeds)
	closed  bool
	wg      sync.WaitGroup
}

type feedRun struct {
	feed         *transfer.Feed
	jur, source  string
	fingerprint  string
	cancel       context.CancelFunc // nil until started
	keyName, alg string
	secret       string
}

// feedKey names a source's feed.
func feedKey(jur string, src config.Source) string { return jur + "/" + sourceName(src) }

// feedOptions maps a transfer source to the feed's options.
func feedOptions(cfg *config.Config, jur string, src config.Source) (transfer.Options, error) {
	t := src.Transfer
	o := transfer.Options{
		Name:      feedKey(jur, src),
		Zone:      t.Zone,
		CacheDir:  cfg.Lists.CacheDir,
		Timeout:   cfg.Lists.Timeout,
		MaxShrink: src.MaxShrink,
	}
	for i, p := range t.Primaries {
		ap, err := config.ServerAddr(p)
		if err != nil {
			return o, fmt.Errorf("transfer.primaries[%d]: %w", i, err)
		}
		o.Primaries = append(o.Primaries, ap)
	}
	if t.TSIGKey != "" {
		k, err := tsigKey(cfg, t.TSIGKey)
		if err != nil {
			return o, fmt.Errorf("transfer.tsig_key: %w", err)
		}
		o.Key = k
	}
	return o, nil
}

// tsigKey looks a key up in tsig_keys and reads its secret.
func tsigKey(cfg *config.Config, name string) (*transfer.Key, error) {
	want := config.TSIGKeyName(name)
	for i := range cfg.TSIGKeys {
		k := &cfg.TSIGKeys[i]
		if config.TSIGKeyName(k.Name) != want {
			continue
		}
		secret, err := k.TSIGSecret()
		if err != nil {
			return nil, fmt.Errorf("tsig_keys[%d]: %w", i, err)
		}
		alg, err := transfer.Algorithm(k.Algorithm)
		if err != nil {
			return nil, fmt.Errorf("tsig_keys[%d].algorithm: %w", i, err)
		}
		return &transfer.Key{Name: want, Algorithm: alg, Secret: secret}, nil
	}
	return nil, fmt.Errorf("no tsig_keys entry %q", name)
}

func fingerprintOf(o transfer.Options) string {
	k := ""
	if o.Key != nil {
		k = o.Key.Name + "/" + o.Key.Algorithm + "/" + o.Key.Secret
	}
	return fmt.Sprint(o.Name, "|", o.Zone, "|", o.Primaries, "|", k, "|", o.CacheDir, "|", o.Timeout, "|", o.MaxShrink)
}

// transferSource is policy.BuildOptions.Transfer: the zone of the source's
// feed, loaded (AXFR, else the cached copy) the first time. It runs inside
// policy.Build, under reloadMu.
func (a *App) transferSource(cfg *config.Config) func(ctx context.Context, j string, src config.Source) (io.ReadCloser, *policy.TransferState, error) {
	return func(ctx context.Context, j string, src config.Source) (io.ReadCloser, *policy.TransferState, error) {
		o, err := feedOptions(cfg, j, src)
		if err != nil {
			return nil, nil, err
		}
		o.Logger = a.log
		o.Now = a.now
		key := feedKey(j, src)
		fp := fingerprintOf(o)
		a.feeds.mu.Lock()
		if a.feeds.pending == nil {
			a.feeds.pending = map[string]*feedRun{}
		}
		fr := a.feeds.pending[key]
		if fr == nil || fr.fingerprint != fp {
			fr = a.feeds.byKey[key]
		}
		if fr == nil || fr.fingerprint != fp {
			// New, or its settings changed: a new feed, put in service (and
			// the old one stopped) only if this build is.
			fr = &feedRun{jur: j, source: sourceName(src), fingerprint: fp}
			if o.Key != nil {
				fr.keyName, fr.alg, fr.secret = o.Key.Name, o.Key.Algorithm, o.Key.Secret
			}
			o.OnUpdate = func(u *transfer.Update) { a.feedUpdate(fr, u) }
			o.OnError = func(error) { a.metrics.ListRefreshFailed(j, fr.source) }
			fr.feed = transfer.New(o)
		}
		a.feeds.pending[key] = fr
		a.feeds.mu.Unlock()
		if !fr.feed.Loaded() {
			if err := fr.feed.Load(ctx); err != nil {
				return nil, stateOf(fr.feed), err
			}
		}
		text, serial, err := fr.feed.Open() // closed by Build once parsed
		st := stateOf(fr.feed)
		st.Serial = serial // the serial of this text (a refresh may follow)
		return text, st, err
	}
}

// stateOf is the policy's view of a feed.
func stateOf(f *transfer.Feed) *policy.TransferState {
	s := f.Status()
	return &policy.TransferState{
		Zone: s.Zone, Serial: s.Serial, Primary: s.Primary, LastTransfer: s.LastTransfer, LastNotify: s.LastNotify,
		Rejected: s.Rejected, NotifyRefused: s.NotifyRefused, LastError: s.LastError,
	}
}

// syncFeeds puts in service the feeds the runtime just swapped in was built
// with (following each: NOTIFY, SOA timers) and stops the others. The caller
// holds reloadMu.
func (a *App) syncFeeds() {
	f := &a.feeds
	f.mu.Lock()
	defer f.mu.Unlock()
	for key, fr := range f.byKey {
		if f.pending[key] != fr && fr.cancel != nil {
			fr.cancel()
		}
	}
	f.byKey, f.pending = f.pending, nil
	if f.byKey == nil {
		f.byKey = map[string]*feedRun{}
	}
	for _, fr := range f.byKey {
		if fr.cancel != nil || f.closed {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		fr.cancel = cancel
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			fr.feed.Run(ctx)
		}()
	}
}

// forgetPending drops the feeds of a build that was not put in service.
func (a *App) forgetPending() {
	a.feeds.mu.Lock()
	a.feeds.pending = nil
	a.feeds.mu.Unlock()
}

// stopFeeds stops every feed for good and waits for them.
func (a *App) stopFeeds() {
	f := &a.feeds
	f.mu.Lock()
	f.closed = true
	for _, fr := range f.byKey {
		if fr.cancel != nil {
			fr.cancel()
		}
	}
	f.mu.Unlock()
	f.wg.Wait()
}

// feedUpdate puts a feed's change in force: an incremental one as a delta
// of the running policy (no rebuild of the index), a whole new zone or an
// expired one by a rebuild with the current configuration.
func (a *App) feedUpdate(fr *feedRun, u *transfer.Update) {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	a.feeds.mu.Lock()
	current := a.feeds.byKey[feedKey(fr.jur, config.Source{Name: fr.source})] == fr
	a.feeds.mu.Unlock()
	if !current || a.cfg == nil {
		return
	}
	start := time.Now()
	old := a.server.Runtime()
	if !u.Full && !u.Expired {
		// A reload since the transfer may have taken the new zone already,
		// or a zone the delta does not start from.
		switch in := sourceSerial(old.Policy, fr.jur, fr.source); {
		case in == u.Serial:
			return
		case in != u.OldSerial:
			u.Full = true
		}
	}
	if !u.Full && !u.Expired {
		st := stateOf(fr.feed)
		st.Serial = u.Serial
		pol, res, err := old.Policy.ApplyDelta(fr.jur, fr.source, u.Old, u.New, st)
		var rt *resolver.Runtime
		var opts resolver.BuildOptions
		if err == nil {
			opts, err = a.buildOptions(context.Background(), a.cfg,
				func(context.Context, *policy.Policy) (*policy.Policy, error) { return pol, nil })
		}
		if err == nil {
			// The parts of the current runtime are taken over: only the
			// policy is new.
			rt, err = a.server.Build(context.Background(), a.cfg, opts)
		}
		if err == nil {
			old = a.server.Swap(rt) // retires the old runtime: closed once its queries are done
			a.publish(rt, old)
			a.metrics.ListRefreshed(fr.jur, a.now())
			a.log.Info("zone delta applied", "jurisdiction", fr.jur, "source", fr.source,
				"serial", u.Serial, "added", res.Added, "removed", res.Removed,
				"policy", shortHash(pol.Hash()), "took", time.Since(start).Round(time.Microsecond))
			return
		}
		if !errors.Is(err, policy.ErrRebuild) {
			a.log.Warn("zone delta not applicable; rebuilding the policy", "jurisdiction", fr.jur, "source", fr.source, "err", err)
		}
	}
	run := &refreshRun{now: a.now(), slack: refreshPeriod(a.cfg) / 2}
	ctx := context.WithValue(context.Background(), refreshRunKey{}, run)
	if err := a.rebuild(ctx, a.cfg, "transfer", start); err != nil {
		for _, e := range flatten(err) {
			a.log.Error("rebuild after a zone transfer failed; still serving the previous policy", "err", e)
		}
	}
}

// notify answers a NOTIFY: a zone of a feed, from one of its primaries,
// signed with its key when it has one, schedules a refresh (NOERROR);
// anything else is REFUSED and counted.
func (a *App) notify(pkt []byte, m *dns.Msg, client netip.AddrPort) ([]byte, bool) {
	r := new(dns.Msg)
	r.SetReply(m)
	r.Authoritative = true
	var fr *feedRun
	a.feeds.mu.Lock()
	following := len(a.feeds.byKey) > 0
	if len(m.Question) == 1 {
		zone := dnsname.Canonical(m.Question[0].Name)
		for _, x := range a.feeds.byKey {
			if x.feed.Options().Zone == zone && x.cancel != nil {
				fr = x
				break
			}
		}
	}
	a.feeds.mu.Unlock()
	if !following {
		return nil, false
	}
	out, _ := a.notifyReply(pkt, m, r, fr, client)
	return out, true
}

// notifyReply checks a NOTIFY for feed fr (nil: no feed has the zone).
func (a *App) notifyReply(pkt []byte, m, r *dns.Msg, fr *feedRun, client netip.AddrPort) ([]byte, error) {
	refuse := func(why string) ([]byte, error) {
		a.metrics.Refused("notify")
		a.log.Warn("NOTIFY refused", "client", client.Addr(), "zone", questionName(m), "reason", why)
		r.Rcode = dns.RcodeRefused
		return r.Pack()
	}
	if fr == nil {
		return refuse("no transfer source has this zone")
	}
	signed := false
	if fr.keyName != "" {
		ts := m.IsTsig()
		if ts == nil || dnsname.Canonical(ts.Hdr.Name) != fr.keyName {
			fr.feed.NotifyRefused()
			return refuse("not signed with the source's TSIG key")
		}
		if err := dns.TsigVerify(pkt, fr.secret, "", false); err != nil {
			fr.feed.NotifyRefused()
			return refuse("bad TSIG: " + err.Error())
		}
		signed = true
	}
	if !fr.feed.Notify(client.Addr()) {
		a.metrics.Refused("notify")
		a.log.Warn("NOTIFY refused", "client", client.Addr(), "zone", questionName(m), "reason", "not a primary of the zone")
		r.Rcode = dns.RcodeRefused
		return r.Pack()
	}
	if signed {
		r.SetTsig(fr.keyName, fr.alg, 300, time.Now().Unix())
		out, _, err := dns.TsigGenerate(r, fr.secret, m.IsTsig().MAC, false)
		return out, err
	}
	return r.Pack()
}

func questionName(m *dns.Msg) string {
	if len(m.Question) == 0 {
		return ""
	}
	return dnsname.Lower(m.Question[0].Name)
}

// rpzOutOptions maps rpz_out to the zone server's options.
func rpzOutOptions(cfg *config.Config) (rpzout.Options, error) {
	o := cfg.RPZOut
	out := rpzout.Options{Suffix: o.ZoneSuffix, Journal: o.Journal}
	if o.ZoneSuffix == "" {
		return out, nil
	}
	for i, s := range o.Allow {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil {
				return out, fmt.Errorf("rpz_out.allow[%d]: %q is not a prefix or an address", i, s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out.Allow = append(out.Allow, p.Masked())
	}
	for i, s := range o.Notify {
		ap, err := config.ServerAddr(s)
		if err != nil {
			return out, fmt.Errorf("rpz_out.notify[%d]: %w", i, err)
		}
		out.Notify = append(out.Notify, ap)
	}
	if o.TSIGKey != "" {
		k, err := tsigKey(cfg, o.TSIGKey)
		if err != nil {
			return out, fmt.Errorf("rpz_out.tsig_key: %w", err)
		}
		out.Key = k
	}
	return out, nil
}

// publishRPZ serves the jurisdictions of rt as RPZ zones (rpz_out).
func (a *App) publishRPZ(cfg *config.Config, pol *policy.Policy) {
	o, err := rpzOutOptions(cfg)
	if err != nil {
		a.log.Error("rpz_out: zones not updated", "err", err)
		return
	}
	a.rpzOut.Update(o, pol)
}

// serveRPZ is the resolver's transfer handler.
func (a *App) serveRPZ(pkt []byte, m *dns.Msg, client netip.AddrPort, tcp bool, write func([]byte) error) bool {
	return a.rpzOut.Serve(pkt, m, client, tcp, write)
}

// sourceSerial is the serial of the zone a policy holds for a transfer
// source, or 0.
func sourceSerial(pol *policy.Policy, jur, source string) uint32 {
	j := pol.Lookup(jur)
	if j == nil {
		return 0
	}
	for _, s := range j.Sources {
		if s.Name == source && s.Transfer != nil && s.Err == "" {
			return s.Transfer.Serial
		}
	}
	return 0
}

// rpzDatesEvery is how often rpz_out looks at the jurisdictions' dates.
const rpzDatesEvery = time.Minute

// watchRPZDates serves, every rpzDatesEvery, the jurisdictions whose
// effective date has come and stops serving those whose expires date has
// passed (reloads, refreshes and deltas update rpz_out at once; this covers
// the time between them). It returns when ctx ends.
func (a *App) watchRPZDates(ctx context.Context) {
	t := time.NewTicker(rpzDatesEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if rt := a.server.Runtime(); rt != nil {
				a.publishRPZ(rt.Config, rt.Policy)
			}
		}
	}
}
