package transfer

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Key is a TSIG key (RFC 8945).
type Key struct {
	// Name is the key's name, lower case and fully qualified.
	Name string
	// Algorithm is a miekg/dns algorithm name (dns.HmacSHA256...).
	Algorithm string
	// Secret is the base64 secret.
	Secret string
}

// Algorithm maps a configuration algorithm name ("hmac-sha256", the
// default when empty) to miekg/dns's.
func Algorithm(s string) (string, error) {
	switch strings.ToLower(strings.TrimSuffix(s, ".")) {
	case "", "hmac-sha256":
		return dns.HmacSHA256, nil
	case "hmac-sha384":
		return dns.HmacSHA384, nil
	case "hmac-sha512":
		return dns.HmacSHA512, nil
	case "hmac-sha1":
		return dns.HmacSHA1, nil
	}
	return "", fmt.Errorf("unknown TSIG algorithm %q", s)
}

// Options configure a Feed.
type Options struct {
	// Name identifies the feed in logs and names its cache file
	// ("jurisdiction/source").
	Name string
	// Zone is the RPZ zone's name.
	Zone string
	// Primaries are tried in order.
	Primaries []netip.AddrPort
	// Key, when set, signs every request; an answer that is not signed
	// with it is rejected.
	Key *Key
	// CacheDir keeps the last good copy of the zone; "" keeps none.
	CacheDir string
	// Timeout bounds one transfer (dial, each read and write); 0 means
	// 10 seconds.
	Timeout time.Duration
	// MaxShrink, between 0 and 1, rejects a transfer that would lose more
	// than this share of the zone's records; 0 turns the guard off.
	MaxShrink float64
	// MinRefresh bounds the SOA refresh and retry timers from below (a
	// zone asking for a refresh every second does not get one); 0 means 5
	// seconds.
	MinRefresh time.Duration
	// OnUpdate receives every change of the zone, from the feed's Run
	// goroutine; the zone is already changed when it is called.
	OnUpdate func(*Update)
	// OnError receives every refresh of Run that failed or was rejected
	// (for a metric); nil means none.
	OnError func(error)
	// Logger receives the feed's logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Update is a change of a feed's zone.
type Update struct {
	// Feed is the feed that changed.
	Feed *Feed
	// OldSerial and Serial are the serials before and after.
	OldSerial, Serial uint32
	// Full is set when the zone was replaced whole (AXFR, or an IXFR
	// answered with the full zone): the caller reloads Text.
	Full bool
	// Old and New hold, for an incremental update, the zone file text of
	// the records of every owner the update touched, before and after
	// (each with $ORIGIN and the SOA, so that each parses alone).
	Old, New []byte
	// Owners is the number of owners the update touched.
	Owners int
	// Expired is set when the SOA expire time passed without a successful
	// refresh: Text now fails, and the caller applies its failure rule.
	Expired bool
}

// Status is what `lists` shows of a feed.
type Status struct {
	Zone   string `json:"zone"`
	Serial uint32 `json:"serial"`
	// Primary is the primary of the last transfer, or "cache".
	Primary      string    `json:"primary,omitempty"`
	LastTransfer time.Time `json:"last_transfer,omitzero"`
	LastNotify   time.Time `json:"last_notify,omitzero"`
	// LastCheck is the last time a primary answered (changed or not).
	LastCheck time.Time `json:"last_check,omitzero"`
	Records   int       `json:"records"`
	Expired   bool      `json:"expired,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	// Rejected counts the transfers rejected (bad TSIG, apex mismatch,
	// malformed record, max_shrink), NotifyRefused the NOTIFY messages
	// from elsewhere than a primary or without the key.
	Rejected      int `json:"rejected,omitempty"`
	NotifyRefused int `json:"notify_refused,omitempty"`
}

// Feed is one RPZ zone followed from its primaries.
type Feed struct {
	opts Options
	log  *slog.Logger
	now  func() time.Time
	kick chan struct{}

	xfrMu sync.Mutex // one transfer at a time
	mu    sync.Mutex // guards what follows
	zone  *Zone
	st    Status
	okAt  time.Time // last successful check with a primary (or the load)
	dirty bool      // the zone changed since the cached copy was written
}

// SaveCache writes the zone to the cache directory if it changed since
// the last write. Run calls it after each update has been handed on (a
// million-name zone takes a while to write), Load after the first
// transfer.
func (f *Feed) SaveCache() {
	if f.opts.CacheDir == "" {
		return
	}
	// Under xfrMu no transfer changes the zone; Text only reads it too.
	f.xfrMu.Lock()
	defer f.xfrMu.Unlock()
	f.mu.Lock()
	z, dirty := f.zone, f.dirty
	f.dirty = false
	f.mu.Unlock()
	if z == nil || !dirty {
		return
	}
	if err := writeCache(cachePath(f.opts.CacheDir, f.opts.Name), z); err != nil {
		f.log.Warn("could not write the zone's cached copy", "feed", f.opts.Name, "err", err)
		f.mu.Lock()
		f.dirty = true
		f.mu.Unlock()
	}
}

// New returns a feed; Load fills it.
func New(opts Options) *Feed {
	opts.Zone = canonical(opts.Zone)
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.MinRefresh <= 0 {
		opts.MinRefresh = 5 * time.Second
	}
	f := &Feed{opts: opts, log: opts.Logger, now: opts.Now, kick: make(chan struct{}, 1)}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if f.now == nil {
		f.now = time.Now
	}
	f.st.Zone = opts.Zone
	return f
}

// Options returns the feed's options.
func (f *Feed) Options() Options { return f.opts }

// Loaded reports whether the feed has a zone.
func (f *Feed) Loaded() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.zone != nil
}

// Status returns the feed's state.
func (f *Feed) Status() Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.st
	if f.zone != nil {
		s.Serial = f.zone.Serial()
		s.Records = f.zone.Len()
	}
	return s
}

// Load gets the zone for the first time: by AXFR from the first primary
// that answers, else from the cached copy. It fails when neither works.
func (f *Feed) Load(ctx context.Context) error {
	_, err := f.Refresh(ctx)
	if err == nil {
		f.SaveCache()
		return nil
	}
	if f.opts.CacheDir == "" {
		return err
	}
	path := cachePath(f.opts.CacheDir, f.opts.Name)
	file, cerr := os.Open(path)
	if cerr != nil {
		if errors.Is(cerr, os.ErrNotExist) {
			return fmt.Errorf("%w (and no cached copy)", err)
		}
		return fmt.Errorf("%w (cached copy: %v)", err, cerr)
	}
	defer file.Close()
	z, cerr := ReadZone(file, f.opts.Zone)
	if cerr != nil {
		return fmt.Errorf("%w (cached copy %s: %v)", err, path, cerr)
	}
	fi, _ := file.Stat()
	f.mu.Lock()
	f.zone = z
	f.st.Primary = "cache"
	if fi != nil {
		f.st.LastTransfer = fi.ModTime()
		f.okAt = fi.ModTime()
	}
	f.mu.Unlock()
	f.log.Warn("zone transfer failed: using the cached copy", "feed", f.opts.Name, "zone", f.opts.Zone,
		"serial", z.Serial(), "cache", path, "err", err)
	return nil
}

// ErrExpired is returned by Open and Text once the SOA expire time passed
// without a successful refresh.
var ErrExpired = errors.New("zone expired: no successful refresh within the SOA expire time")

// Text returns the zone as a zone file.
func (f *Feed) Text() ([]byte, error) {
	rd, _, err := f.Open()
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	return io.ReadAll(rd)
}

// Open returns the zone as a zone file made as it is read, and its serial:
// a million-name zone is not copied into one buffer. No transfer changes
// the zone until the reader is closed (or read to its end), so the caller
// must close it.
func (f *Feed) Open() (io.ReadCloser, uint32, error) {
	f.xfrMu.Lock() // the zone changes only under xfrMu (Refresh)
	f.mu.Lock()
	z, expired := f.zone, f.st.Expired
	f.mu.Unlock()
	switch {
	case z == nil:
		f.xfrMu.Unlock()
		return nil, 0, errors.New("zone not loaded")
	case expired:
		f.xfrMu.Unlock()
		return nil, 0, ErrExpired
	}
	var once sync.Once
	return z.Reader(func() { once.Do(f.xfrMu.Unlock) }), z.Serial(), nil
}

// Notify handles a NOTIFY for the zone from addr (already TSIG-checked by
// the caller when the feed has a key). It reports false, and counts it,
// when addr is not a primary; otherwise it schedules a refresh.
func (f *Feed) Notify(addr netip.Addr) bool {
	addr = addr.Unmap()
	ok := false
	for _, p := range f.opts.Primaries {
		if p.Addr().Unmap() == addr {
			ok = true
		}
	}
	f.mu.Lock()
	if ok {
		f.st.LastNotify = f.now()
	} else {
		f.st.NotifyRefused++
	}
	f.mu.Unlock()
	if ok {
		select {
		case f.kick <- struct{}{}:
		default: // a refresh is already pending
		}
	}
	return ok
}

// NotifyRefused counts a NOTIFY refused for a bad signature.
func (f *Feed) NotifyRefused() {
	f.mu.Lock()
	f.st.NotifyRefused++
	f.mu.Unlock()
}

// Run follows the zone until ctx ends: a refresh when a primary sends
// NOTIFY and when the SOA refresh timer fires (the retry timer after a
// failure), each change passed to OnUpdate; past the SOA expire time
// without a successful refresh, an Update with Expired.
func (f *Feed) Run(ctx context.Context) {
	failed := false
	for {
		wait := f.timer(failed)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-f.kick:
			t.Stop()
		}
		upd, err := f.Refresh(ctx)
		if ctx.Err() != nil {
			return
		}
		failed = err != nil
		if err != nil && f.opts.OnError != nil {
			f.opts.OnError(err)
		}
		if err != nil {
			f.log.Error("zone refresh failed; still serving the previous serial", "feed", f.opts.Name,
				"zone", f.opts.Zone, "err", err)
			if upd = f.checkExpire(); upd == nil {
				continue
			}
		}
		if upd != nil && f.opts.OnUpdate != nil {
			f.opts.OnUpdate(upd)
		}
		f.SaveCache()
	}
}

// timer is the wait before the next refresh: the SOA refresh, or retry
// after a failure, at least MinRefresh; 30 seconds while there is no zone.
func (f *Feed) timer(failed bool) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := 30 * time.Second // no zone yet (the primaries were down at start): try again soon
	if f.zone != nil {
		d = time.Duration(f.zone.SOA.Refresh) * time.Second
		if failed {
			d = time.Duration(f.zone.SOA.Retry) * time.Second
		}
	}
	return max(d, f.opts.MinRefresh)
}

// checkExpire marks the zone expired once the SOA expire time has passed
// since the last successful check.
func (f *Feed) checkExpire() *Update {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.zone == nil || f.st.Expired || f.okAt.IsZero() {
		return nil
	}
	if f.now().Sub(f.okAt) < time.Duration(f.zone.SOA.Expire)*time.Second {
		return nil
	}
	f.st.Expired = true
	f.log.Error("zone expired: no successful refresh within the SOA expire time", "feed", f.opts.Name,
		"zone", f.opts.Zone, "serial", f.zone.Serial())
	return &Update{Feed: f, OldSerial: f.zone.Serial(), Serial: f.zone.Serial(), Expired: true}
}

// Refresh asks the primaries, in order, for changes: IXFR when the feed has
// a zone (AXFR from the same primary when the IXFR fails), else AXFR. It
// returns the update, nil when the zone did not change. A rejected transfer
// (bad TSIG, apex mismatch, malformed record, max_shrink) changes nothing.
func (f *Feed) Refresh(ctx context.Context) (*Update, error) {
	f.xfrMu.Lock()
	defer f.xfrMu.Unlock()
	var errs []error
	for _, p := range f.opts.Primaries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		upd, err := f.refreshFrom(p)
		if err == nil {
			f.mu.Lock()
			f.st.LastCheck = f.now()
			f.st.LastError = ""
			f.okAt = f.st.LastCheck
			expired := f.st.Expired
			f.st.Expired = false
			f.mu.Unlock()
			if expired && upd == nil {
				f.mu.Lock()
				s := f.zone.Serial()
				f.mu.Unlock()
				upd = &Update{Feed: f, OldSerial: s, Serial: s, Full: true}
			}
			return upd, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", p, err))
	}
	err := errors.Join(errs...)
	if len(errs) == 1 {
		err = errs[0]
	}
	f.mu.Lock()
	f.st.LastError = err.Error()
	f.mu.Unlock()
	return nil, err
}

// rejectErr marks a transfer that was received but refused.
type rejectErr struct{ error }

func (f *Feed) refreshFrom(p netip.AddrPort) (*Update, error) {
	f.mu.Lock()
	cur := f.zone
	var serial uint32
	if cur != nil {
		serial = cur.Serial()
	}
	f.mu.Unlock()
	var upd *Update
	var err error
	if cur != nil {
		upd, err = f.ixfr(p, serial)
		var rej rejectErr
		if err != nil && !errors.As(err, &rej) && !errors.Is(err, dns.ErrSig) {
			f.log.Info("IXFR failed, trying AXFR", "feed", f.opts.Name, "primary", p, "err", err)
			upd, err = f.axfr(p)
		}
	} else {
		upd, err = f.axfr(p)
	}
	if err != nil {
		var rej rejectErr
		if errors.As(err, &rej) || errors.Is(err, dns.ErrSig) || errors.Is(err, dns.ErrNoSig) {
			f.mu.Lock()
			f.st.Rejected++
			f.mu.Unlock()
			f.log.Error("zone transfer rejected; the previous serial keeps serving", "feed", f.opts.Name,
				"zone", f.opts.Zone, "primary", p, "err", err)
		}
		return nil, err
	}
	if upd != nil {
		f.mu.Lock()
		f.st.Primary = p.String()
		f.st.LastTransfer = f.now()
		f.dirty = true
		f.mu.Unlock()
		f.log.Info("zone transferred", "feed", f.opts.Name, "zone", f.opts.Zone, "primary", p,
			"serial", upd.Serial, "full", upd.Full, "owners", upd.Owners)
	}
	return upd, nil
}

// xfr runs one transfer of q from p, handing each answer record to fn as
// it arrives; fn's first error stops it.
func (f *Feed) xfr(p netip.AddrPort, q *dns.Msg, fn func(dns.RR) error) error {
	t := &dns.Transfer{DialTimeout: f.opts.Timeout, ReadTimeout: f.opts.Timeout, WriteTimeout: f.opts.Timeout}
	if k := f.opts.Key; k != nil {
		t.TsigSecret = map[string]string{k.Name: k.Secret}
		q.SetTsig(k.Name, k.Algorithm, 300, f.now().Unix())
	}
	ch, err := t.In(q, p.String())
	if err != nil {
		return err
	}
	// With a key, miekg/dns verifies every message of the answer and
	// fails one without a TSIG (dns.ErrNoSig) or with a bad one.
	var xerr error
	for env := range ch { // drained to the end: In's goroutine must finish
		if xerr != nil {
			continue
		}
		if env.Error != nil {
			xerr = env.Error
			continue
		}
		for _, rr := range env.RR {
			if xerr = fn(rr); xerr != nil {
				break
			}
		}
	}
	return xerr
}

// receiver takes the records of a transfer as they arrive. A whole zone
// (AXFR, or an IXFR answered in full) goes into a Zone record by record,
// without holding the answer; the records of an incremental IXFR are kept
// for apply (a delta is small).
type receiver struct {
	f     *Feed
	ixfr  bool
	n     int
	first *dns.SOA
	rrs   []dns.RR // IXFR: the records until it is known to be incremental, then all
	zone  *Zone    // a whole zone being received
	ended bool     // the whole zone's closing SOA was seen
}

func (r *receiver) add(rr dns.RR) error {
	r.n++
	switch {
	case r.n == 1:
		soa, err := r.f.apexSOA(rr)
		if err != nil {
			return err
		}
		r.first = soa
		if r.ixfr {
			r.rrs = append(r.rrs, rr)
		} else {
			r.zone = NewZone(r.f.opts.Zone, soa)
		}
		return nil
	case r.ixfr && r.zone == nil:
		if r.n == 2 {
			if _, incremental := rr.(*dns.SOA); !incremental {
				r.zone, r.rrs = NewZone(r.f.opts.Zone, r.first), nil
				return r.zoneRecord(rr)
			}
		}
		r.rrs = append(r.rrs, rr)
		return nil
	}
	return r.zoneRecord(rr)
}

// zoneRecord adds a record of a whole zone; the zone's SOA again closes it.
func (r *receiver) zoneRecord(rr dns.RR) error {
	if r.ended {
		return rejectErr{fmt.Errorf("record %s after the closing SOA", rr.Header().Name)}
	}
	if soa, ok := rr.(*dns.SOA); ok && soa.Serial == r.first.Serial && canonical(soa.Hdr.Name) == r.zone.Origin {
		r.ended = true
		return nil
	}
	if err := r.zone.check(rr); err != nil {
		return rejectErr{err}
	}
	r.zone.add(rr)
	return nil
}

// full returns the whole zone received, checked complete.
func (r *receiver) full() (*Zone, error) {
	if r.zone == nil || !r.ended {
		return nil, rejectErr{errors.New("transfer does not end with the zone's SOA")}
	}
	return r.zone, nil
}

func (f *Feed) axfr(p netip.AddrPort) (*Update, error) {
	q := new(dns.Msg)
	q.SetAxfr(f.opts.Zone)
	r := &receiver{f: f}
	if err := f.xfr(p, q, r.add); err != nil {
		return nil, err
	}
	z, err := r.full()
	if err != nil {
		return nil, err
	}
	return f.replace(z)
}

// fullZone checks the records of an AXFR (or of an IXFR answered with the
// whole zone): SOA of the zone first and last, every record in the zone.
func (f *Feed) fullZone(rrs []dns.RR) (*Zone, error) {
	if len(rrs) < 2 {
		return nil, rejectErr{fmt.Errorf("transfer of %d records: not a zone", len(rrs))}
	}
	soa, err := f.apexSOA(rrs[0])
	if err != nil {
		return nil, err
	}
	if last, ok := rrs[len(rrs)-1].(*dns.SOA); !ok || last.Serial != soa.Serial {
		return nil, rejectErr{errors.New("transfer does not end with the zone's SOA")}
	}
	z := NewZone(f.opts.Zone, soa)
	for _, rr := range rrs[1 : len(rrs)-1] {
		if err := z.check(rr); err != nil {
			return nil, rejectErr{err}
		}
		z.add(rr)
	}
	return z, nil
}

// apexSOA checks that rr is the SOA of the zone.
func (f *Feed) apexSOA(rr dns.RR) (*dns.SOA, error) {
	soa, ok := rr.(*dns.SOA)
	if !ok {
		return nil, rejectErr{fmt.Errorf("first record is %s %s, not an SOA", rr.Header().Name, dns.TypeToString[rr.Header().Rrtype])}
	}
	if canonical(soa.Hdr.Name) != f.opts.Zone {
		return nil, rejectErr{fmt.Errorf("apex SOA owner %q does not match zone %s", soa.Hdr.Name, f.opts.Zone)}
	}
	if soa.Hdr.Class != dns.ClassINET {
		return nil, rejectErr{fmt.Errorf("apex SOA class %s", dns.Class(soa.Hdr.Class))}
	}
	return soa, nil
}

// shrunk reports a change from old to n records that max_shrink forbids.
func (f *Feed) shrunk(old, n int) error {
	if f.opts.MaxShrink > 0 && f.opts.MaxShrink < 1 && old > 0 && float64(n) < float64(old)*(1-f.opts.MaxShrink) {
		return rejectErr{fmt.Errorf("%d records, shrunk from %d by more than max_shrink %g", n, old, f.opts.MaxShrink)}
	}
	return nil
}

// replace installs a whole new zone.
func (f *Feed) replace(z *Zone) (*Update, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	upd := &Update{Feed: f, Serial: z.Serial(), Full: true, Owners: z.Owners()}
	if cur := f.zone; cur != nil {
		upd.OldSerial = cur.Serial()
		if err := f.shrunk(cur.Len(), z.Len()); err != nil {
			return nil, err
		}
	}
	f.zone = z
	return upd, nil
}

// delta is one difference sequence of an IXFR.
type delta struct {
	from, to *dns.SOA
	del, add []dns.RR
}

func (f *Feed) ixfr(p netip.AddrPort, serial uint32) (*Update, error) {
	q := new(dns.Msg)
	q.SetIxfr(f.opts.Zone, serial, ".", ".")
	r := &receiver{f: f, ixfr: true}
	if err := f.xfr(p, q, r.add); err != nil {
		return nil, err
	}
	if r.zone != nil { // answered with the whole zone
		z, err := r.full()
		if err != nil {
			return nil, err
		}
		return f.replace(z)
	}
	return f.applyIXFR(r.rrs, serial)
}

// applyIXFR applies the records of an IXFR answer (RFC 1995) to a zone at
// serial: nothing when it is up to date, the whole zone when it came in
// full, else each difference sequence.
func (f *Feed) applyIXFR(rrs []dns.RR, serial uint32) (*Update, error) {
	if len(rrs) == 0 {
		return nil, errors.New("empty IXFR answer")
	}
	soa, err := f.apexSOA(rrs[0])
	if err != nil {
		return nil, err
	}
	if len(rrs) == 1 {
		if !serialNewer(soa.Serial, serial) {
			return nil, nil // up to date
		}
		return nil, errors.New("IXFR answered with the new SOA only")
	}
	if _, incremental := rrs[1].(*dns.SOA); !incremental || len(rrs) == 2 {
		z, err := f.fullZone(rrs)
		if err != nil {
			return nil, err
		}
		return f.replace(z)
	}
	if last, ok := rrs[len(rrs)-1].(*dns.SOA); !ok || last.Serial != soa.Serial {
		return nil, rejectErr{errors.New("IXFR does not end with the zone's SOA")}
	}
	var ds []delta
	body := rrs[1 : len(rrs)-1]
	for i := 0; i < len(body); {
		from, ok := body[i].(*dns.SOA)
		if !ok {
			return nil, rejectErr{errors.New("IXFR difference sequence does not start with an SOA")}
		}
		d := delta{from: from}
		i++
		for i < len(body) && body[i].Header().Rrtype != dns.TypeSOA {
			d.del = append(d.del, body[i])
			i++
		}
		if i == len(body) {
			return nil, rejectErr{errors.New("IXFR difference sequence without its new SOA")}
		}
		d.to = body[i].(*dns.SOA)
		i++
		for i < len(body) && body[i].Header().Rrtype != dns.TypeSOA {
			d.add = append(d.add, body[i])
			i++
		}
		ds = append(ds, d)
	}
	if ds[0].from.Serial != serial {
		return nil, fmt.Errorf("IXFR starts at serial %d, the zone is at %d", ds[0].from.Serial, serial)
	}
	return f.apply(ds, soa)
}

// serialNewer compares serials in RFC 1982 arithmetic.
func serialNewer(a, b uint32) bool { return a != b && int32(a-b) > 0 }

// op is one applied change, for undoing.
type op struct {
	rr  dns.RR
	add bool
}

// apply applies the difference sequences of an IXFR to the zone, in
// place, undoing everything when one does not apply.
func (f *Feed) apply(ds []delta, soa *dns.SOA) (*Update, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	z := f.zone
	touched := map[string]bool{}
	var owners []string
	for _, d := range ds {
		for _, list := range [][]dns.RR{d.del, d.add} {
			for _, rr := range list {
				if err := z.check(rr); err != nil {
					return nil, rejectErr{err}
				}
				o := canonical(rr.Header().Name)
				if !touched[o] {
					touched[o] = true
					owners = append(owners, o)
				}
			}
		}
	}
	before := z.Len()
	upd := &Update{Feed: f, OldSerial: z.Serial(), Serial: soa.Serial, Owners: len(owners)}
	upd.Old = z.AppendOwners(nil, owners)
	var done []op
	undo := func() {
		for i := len(done) - 1; i >= 0; i-- {
			if done[i].add {
				z.remove(done[i].rr)
			} else {
				z.add(done[i].rr)
			}
		}
	}
	for _, d := range ds {
		for _, rr := range d.del {
			if !z.remove(rr) {
				undo()
				return nil, fmt.Errorf("IXFR deletes a record the zone does not have: %s", rr)
			}
			done = append(done, op{rr: rr})
		}
		for _, rr := range d.add {
			if z.add(rr) {
				done = append(done, op{rr: rr, add: true})
			}
		}
	}
	if err := f.shrunk(before, z.Len()); err != nil {
		undo()
		return nil, err
	}
	z.SOA = soa
	upd.New = z.AppendOwners(nil, owners)
	return upd, nil
}
